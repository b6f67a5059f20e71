//! JWT validation for the trusted issuers (docs/policy.md `jwt`, docs/operations.md "keys in tokens
//! are never trusted"). The token's header and claims are pre-read only to
//! choose the issuer and to refuse early; acceptance always comes from
//! jsonwebtoken's signature and claim checks with the issuer's own keys.

use super::identity::{Identity, IdentityHeaders, IdentityParts, Kind};
use super::jwks::{KeySet, RemoteRef};
use super::token_cache::{Stamp, TokenCache};
use crate::clock::unix_now;
use crate::error::{GatewayError, Reason, Scheme};
use crate::revocation::TokenFacts;
use crate::secret::Secret;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Where an issuer's verification keys come from.
#[derive(Debug, Clone)]
pub enum IssuerKeys {
    /// An HS secret or a JWKS file, loaded with the policy.
    Static(Arc<KeySet>),
    /// A JWKS fetched over HTTP(S); the live set is shared across reloads.
    Remote(Arc<RemoteRef>),
}

impl IssuerKeys {
    fn live_remote(&self) -> Option<&Arc<super::jwks::RemoteKeys>> {
        match self {
            IssuerKeys::Static(_) => None,
            IssuerKeys::Remote(r) => r.live(),
        }
    }

    pub fn current(&self) -> Arc<KeySet> {
        match self {
            IssuerKeys::Static(k) => k.clone(),
            IssuerKeys::Remote(r) => r.current(),
        }
    }
}

/// One trusted issuer, compiled.
#[derive(Debug)]
pub struct Issuer {
    pub issuer: Arc<str>,
    /// A digest of everything configured for this issuer (static keys
    /// included): a reload that changes any of it retires cached tokens.
    pub fingerprint: u64,
    pub keys: IssuerKeys,
    /// One prepared `Validation` per allowed algorithm.
    pub validations: Vec<(Algorithm, Validation)>,
    pub leeway: Duration,
    pub scope_claim: String,
    pub subject_claim: String,
    pub rate_limit: Option<Arc<str>>,
    /// `require_claims`: each must be present with its JSON type.
    pub required: Vec<&'static str>,
    /// Longest `exp - iat` accepted; with it set, `iat` is required too.
    pub max_lifetime: Option<Duration>,
}

/// Claims `require_claims` may name, with the JSON type each must have.
pub const REQUIRABLE_CLAIMS: [(&str, bool); 5] = [
    ("exp", true),
    ("nbf", true),
    ("iat", true),
    ("jti", false),
    ("sub", false),
];

/// Every required claim present and of its type (numbers for times, strings
/// otherwise). jsonwebtoken enforces presence only for some names, so the
/// gateway checks them all itself.
fn check_required(claims: &Map<String, Value>, required: &[&str]) -> Result<(), GatewayError> {
    for name in required {
        let numeric = REQUIRABLE_CLAIMS
            .iter()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, numeric)| *numeric);
        match claims.get(*name) {
            None | Some(Value::Null) => {
                return Err(invalid(
                    Reason::MissingClaim,
                    "The token lacks a required claim.",
                ))
            }
            Some(Value::Number(_)) if numeric => {}
            Some(Value::String(_)) if !numeric => {}
            Some(_) => {
                return Err(invalid(
                    Reason::MalformedClaim,
                    "A required claim has the wrong type.",
                ))
            }
        }
    }
    Ok(())
}

impl Issuer {
    fn stamp(&self) -> Stamp {
        (self.fingerprint, self.keys.current().generation)
    }

    /// The key for `kid` and `alg`. A `kid` this issuer's remote set lacks
    /// makes it fetch once (rate-limited), for a key just rotated in.
    async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<KeySet>, GatewayError> {
        let mut keys = self.keys.current();
        if keys.find(kid, alg).is_none() {
            if let Some(remote) = self.keys.live_remote() {
                if kid.is_some() && remote.refetch_for_unknown_kid().await {
                    keys = remote.current();
                }
            }
        }
        match (keys.find(kid, alg), kid) {
            (Some(_), _) => Ok(keys),
            (None, Some(_)) => Err(invalid(
                Reason::UnknownKid,
                "The token's key id is not known.",
            )),
            (None, None) => Err(invalid(
                Reason::NoMatchingKey,
                "No key of the issuer fits the token.",
            )),
        }
    }

    /// The time rules jsonwebtoken leaves to us: an `iat` in the future, and
    /// `max_lifetime`. Returns `iat`.
    fn check_times(
        &self,
        claims: &Map<String, Value>,
        now: u64,
    ) -> Result<Option<u64>, GatewayError> {
        // jsonwebtoken checks exp and nbf; an iat in the future is ours to refuse.
        let iat = numeric_date(claims, "iat")?;
        if iat.is_some_and(|iat| iat > now + self.leeway.as_secs()) {
            return Err(invalid(
                Reason::TokenIssuedInFuture,
                "The token claims to be issued in the future.",
            ));
        }
        if let Some(max) = self.max_lifetime {
            let exp = numeric_date(claims, "exp")?;
            match (iat, exp) {
                (None, _) => {
                    return Err(invalid(
                        Reason::MissingClaim,
                        "The token has no iat, so its lifetime is unknown.",
                    ))
                }
                (Some(iat), Some(exp)) if exp.saturating_sub(iat) <= max.as_secs() => {}
                _ => {
                    return Err(invalid(
                        Reason::TokenLifetimeTooLong,
                        "The token lives longer than this issuer allows.",
                    ))
                }
            }
        }
        Ok(iat)
    }
}

/// All issuers, by their exact `iss`.
#[derive(Debug, Default)]
pub struct JwtVerifier {
    pub issuers: HashMap<String, Issuer>,
    /// `server.token_cache_entries`: the bound of the (live) verified-token cache.
    pub cache_capacity: usize,
}

impl JwtVerifier {
    /// The remote key sets this policy refers to (bound by the registry).
    pub fn remote_keys(&self) -> impl Iterator<Item = &RemoteRef> {
        self.issuers.values().filter_map(|i| match &i.keys {
            IssuerKeys::Remote(r) => Some(&**r),
            IssuerKeys::Static(_) => None,
        })
    }
}

fn invalid(reason: Reason, description: &'static str) -> GatewayError {
    GatewayError::invalid_credential(Scheme::Bearer, reason, description)
}

fn malformed() -> GatewayError {
    invalid(
        Reason::MalformedToken,
        "The token is not a well-formed JWT.",
    )
}

fn b64_json(segment: &str) -> Option<Map<String, Value>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A JWS in compact form: three segments whose first decodes to a JSON
/// object with an `alg`. Anything else is an opaque token.
pub fn looks_like_jws(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    b64_json(header).is_some_and(|h| h.contains_key("alg"))
}

/// A NumericDate claim: absent, or a non-negative number (RFC 7519 §2).
/// Any other type makes the token invalid, never unchecked.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, GatewayError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.is_finite())
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    Reason::MalformedClaim,
                    "A time claim is not a valid number.",
                )
            }),
        Some(_) => Err(invalid(
            Reason::MalformedClaim,
            "A time claim is not a number.",
        )),
    }
}

/// Refuses claims of the wrong JSON type before anything else reads them.
fn check_claim_types(claims: &Map<String, Value>) -> Result<(), GatewayError> {
    for name in ["exp", "nbf", "iat"] {
        numeric_date(claims, name)?;
    }
    let aud_ok = match claims.get("aud") {
        None | Some(Value::String(_)) => true,
        Some(Value::Array(items)) => items.iter().all(Value::is_string),
        Some(_) => false,
    };
    if !aud_ok {
        return Err(invalid(
            Reason::MalformedClaim,
            "The aud claim is not a string or list of strings.",
        ));
    }
    if claims.get("jti").is_some_and(|v| !v.is_string()) {
        return Err(invalid(
            Reason::MalformedClaim,
            "The jti claim is not a string.",
        ));
    }
    Ok(())
}

fn map_error(kind: &ErrorKind) -> GatewayError {
    match kind {
        ErrorKind::InvalidSignature => {
            invalid(Reason::BadSignature, "The token signature is invalid.")
        }
        ErrorKind::ExpiredSignature => invalid(Reason::TokenExpired, "The token has expired."),
        ErrorKind::ImmatureSignature => {
            invalid(Reason::TokenNotYetValid, "The token is not valid yet.")
        }
        ErrorKind::InvalidAudience => invalid(
            Reason::WrongAudience,
            "The token is not meant for this API.",
        ),
        ErrorKind::InvalidIssuer => {
            invalid(Reason::WrongIssuer, "The token's issuer is not trusted.")
        }
        ErrorKind::MissingRequiredClaim(_) => {
            invalid(Reason::MissingClaim, "The token lacks a required claim.")
        }
        ErrorKind::InvalidClaimFormat(_) => {
            invalid(Reason::MalformedClaim, "A token claim has the wrong type.")
        }
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName => invalid(
            Reason::AlgNotAllowed,
            "The token's algorithm is not allowed.",
        ),
        _ => malformed(),
    }
}

/// Scopes from `scope` (space-separated) or an array claim such as `scp` or `permissions`.
fn scopes_of(claims: &Map<String, Value>, claim: &str) -> Result<Vec<Arc<str>>, GatewayError> {
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split_whitespace().map(Arc::from).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(Arc::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                invalid(
                    Reason::MalformedClaim,
                    "The scope claim is not a list of strings.",
                )
            }),
        Some(_) => Err(invalid(
            Reason::MalformedClaim,
            "The scope claim has the wrong type.",
        )),
    }
}

/// A token's header, algorithm and claims, not yet verified.
type PreRead = (Map<String, Value>, Algorithm, Map<String, Value>);

/// The token's header and claims, read before any key is chosen, with the
/// refusals that need no key: malformed, `crit`, `alg: none`, unknown `alg`.
fn pre_read(token: &str) -> Result<PreRead, GatewayError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64)) = (parts.next(), parts.next()) else {
        return Err(malformed());
    };
    let header = b64_json(header_b64).ok_or_else(malformed)?;
    // RFC 7515 §4.1.11: a `crit` we do not understand must be refused; we understand none.
    if header.contains_key("crit") {
        return Err(invalid(
            Reason::CritNotSupported,
            "The token names critical header parameters.",
        ));
    }
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(malformed)?;
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(invalid(
            Reason::AlgNone,
            "Unsigned tokens are never accepted.",
        ));
    }
    let alg: Algorithm = alg_name.parse().map_err(|_| {
        invalid(
            Reason::AlgNotAllowed,
            "The token's algorithm is not allowed.",
        )
    })?;
    let claims = b64_json(claims_b64).ok_or_else(malformed)?;
    Ok((header, alg, claims))
}

impl JwtVerifier {
    /// Verifies a JWS bearer token and returns who it speaks for.
    pub async fn verify(
        &self,
        token: &Secret<&str>,
        names: &IdentityHeaders,
        cache: &TokenCache,
    ) -> Result<Arc<Identity>, GatewayError> {
        let token = *token.expose();
        let now = unix_now();
        // The cache is asked first: a token verified before costs one hash.
        let digest = crate::secret::sha256(token.as_bytes());
        let stamp_of = |id: &Identity| {
            let issuer = self.issuers.get(id.issuer.as_deref()?)?;
            Some(issuer.stamp())
        };
        if let Some(hit) = cache.get(&digest, now, stamp_of) {
            return Ok(hit);
        }
        let (header, alg, claims) = pre_read(token)?;
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .and_then(|iss| self.issuers.get(iss))
            .ok_or_else(|| invalid(Reason::UnknownIssuer, "The token's issuer is not trusted."))?;
        let Some((_, validation)) = issuer.validations.iter().find(|(a, _)| *a == alg) else {
            return Err(invalid(
                Reason::AlgNotAllowed,
                "The token's algorithm is not allowed.",
            ));
        };
        check_claim_types(&claims)?;
        check_required(&claims, &issuer.required)?;

        let kid = header.get("kid").and_then(Value::as_str);
        let keys = issuer.key_for(kid, alg).await?;
        // `key_for` found it in this very set.
        let key = keys.find(kid, alg).ok_or_else(malformed)?;
        crate::metrics::token_verified(&issuer.issuer);
        jsonwebtoken::decode::<Value>(token, &key.key, validation)
            .map_err(|e| map_error(e.kind()))?;

        let iat = issuer.check_times(&claims, now)?;
        let subject = claims
            .get(&issuer.subject_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(Reason::MissingClaim, "The token has no subject."))?;
        let exp = numeric_date(&claims, "exp")?;
        let identity = Arc::new(
            IdentityParts {
                method: Kind::Jwt,
                subject: subject.into(),
                scopes: scopes_of(&claims, &issuer.scope_claim)?,
                key_id: None,
                issuer: Some(issuer.issuer.clone()),
                rate_limit: issuer.rate_limit.clone(),
                token: Some(TokenFacts {
                    jti: claims
                        .get("jti")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    iat,
                    exp,
                }),
                claims: Some(&claims),
            }
            .build(names)?,
        );
        // Without exp the entry lives for the cache's own maximum age.
        let valid_until = exp.map(|e| e.saturating_add(issuer.leeway.as_secs()));
        cache.insert(
            digest,
            identity.clone(),
            (issuer.fingerprint, keys.generation),
            valid_until,
            now,
        );
        Ok(identity)
    }
}
