//! JWT validation for the trusted issuers (docs/policy.md `jwt`, docs/operations.md "keys in tokens
//! are never trusted"). The token's header and claims are pre-read only to
//! choose the issuer and to refuse early; acceptance always comes from
//! jsonwebtoken's signature and claim checks with the issuer's own keys.

use super::claims::{
    check_claim_types, check_required, invalid, malformed, map_error, numeric_date, pre_read,
    scopes_of,
};
use super::identity::{Identity, IdentityHeaders, IdentityParts, Kind};

pub use super::claims::{looks_like_jws, REQUIRABLE_CLAIMS};
use super::jwks::{KeySet, RemoteRef};
use super::token_cache::{Stamp, TokenCache};
use crate::clock::unix_now;
use crate::error::{GatewayError, Reason};
use crate::revocation::TokenFacts;
use crate::secret::Secret;
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

    /// A token of this issuer, checked: its algorithm, claim types and
    /// required claims, its signature with this issuer's own keys, its time
    /// claims. `header` and `claims` come from `pre_read` of the same token.
    async fn check(
        &self,
        token: &str,
        header: &Map<String, Value>,
        alg: Algorithm,
        claims: Map<String, Value>,
        now: u64,
    ) -> Result<Verified, GatewayError> {
        let Some((_, validation)) = self.validations.iter().find(|(a, _)| *a == alg) else {
            return Err(invalid(
                Reason::AlgNotAllowed,
                "The token's algorithm is not allowed.",
            ));
        };
        check_claim_types(&claims)?;
        check_required(&claims, &self.required)?;
        let kid = header.get("kid").and_then(Value::as_str);
        let keys = self.key_for(kid, alg).await?;
        // `key_for` found it in this very set.
        let key = keys.find(kid, alg).ok_or_else(malformed)?;
        crate::metrics::token_verified(&self.issuer);
        jsonwebtoken::decode::<Value>(token, &key.key, validation)
            .map_err(|e| map_error(e.kind()))?;
        let iat = self.check_times(&claims, now)?;
        let exp = numeric_date(&claims, "exp")?;
        Ok(Verified {
            claims,
            iat,
            exp,
            generation: keys.generation,
        })
    }

    /// Verifies a token that must come from this issuer (an ID token at
    /// sign-in): the same checks as a bearer JWT, without the cache.
    pub async fn verify_own(&self, token: &str) -> Result<Verified, GatewayError> {
        let (header, alg, claims) = pre_read(token)?;
        if claims.get("iss").and_then(Value::as_str) != Some(&*self.issuer) {
            return Err(invalid(
                Reason::UnknownIssuer,
                "The token's issuer is not trusted.",
            ));
        }
        self.check(token, &header, alg, claims, unix_now()).await
    }

    /// The scopes `scope_claim` grants in `claims`.
    pub fn scopes_in(&self, claims: &Map<String, Value>) -> Result<Vec<Arc<str>>, GatewayError> {
        scopes_of(claims, &self.scope_claim)
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

/// A token whose signature and claims passed.
pub struct Verified {
    pub claims: Map<String, Value>,
    pub iat: Option<u64>,
    pub exp: Option<u64>,
    /// The generation of the key set that verified it.
    pub generation: u64,
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
        // A miss may fetch keys: boxed, so a cache hit does not carry its size.
        let Verified {
            claims,
            iat,
            exp,
            generation,
        } = Box::pin(issuer.check(token, &header, alg, claims, now)).await?;
        let subject = claims
            .get(&issuer.subject_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(Reason::MissingClaim, "The token has no subject."))?;
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
            (issuer.fingerprint, generation),
            valid_until,
            now,
        );
        Ok(identity)
    }
}
