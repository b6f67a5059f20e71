//! Turning one credential into an `Identity` (docs/requests.md step 4).

pub mod api_key;
pub mod fetch;
pub mod introspection;
pub mod jwks;
pub mod jwt;
pub mod token_cache;

use crate::error::{GatewayError, Scheme};
use crate::revocation::TokenFacts;
use crate::secret::Secret;
use crate::snapshot::{IdentityHeaders, KindSet, Snapshot};
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::HeaderMap;
use std::sync::Arc;

/// Bearer tokens longer than this are refused before any parsing (docs/requests.md).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// How the caller authenticated (`X-Auth-Method`, access log `auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    ApiKey,
    Jwt,
    Introspection,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::ApiKey => "api_key",
            Method::Jwt => "jwt",
            Method::Introspection => "introspection",
        }
    }
}

/// Who is calling, as established by one credential. Built once per key or
/// verified token and shared, with its upstream headers already encoded.
#[derive(Debug, Clone)]
pub struct Identity {
    pub method: Method,
    pub subject: Arc<str>,
    pub scopes: Vec<Arc<str>>,
    pub key_id: Option<Arc<str>>,
    pub issuer: Option<Arc<str>>,
    /// The name of this caller's own rate limit, if any.
    pub rate_limit: Option<Arc<str>>,
    /// The caller's rate-limit bucket: the key id, or the token's `iss`+`sub`.
    pub caller: crate::ratelimit::Caller,
    pub token: Option<TokenFacts>,
    /// The identity headers to send upstream (docs/policy.md `identity`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// The parts of an identity, before its headers are encoded.
pub struct IdentityParts<'a> {
    pub method: Method,
    pub subject: Arc<str>,
    pub scopes: Vec<Arc<str>>,
    pub key_id: Option<Arc<str>>,
    pub issuer: Option<Arc<str>>,
    pub rate_limit: Option<Arc<str>>,
    pub token: Option<TokenFacts>,
    /// Claim values for `identity.claims` headers.
    pub claims: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// A claim as a header value: strings as they are, numbers and booleans
/// printed, arrays space-joined (docs/policy.md `identity.claims`).
fn claim_text(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| match v {
                    Value::Array(_) | Value::Object(_) | Value::Null => None,
                    other => claim_text(other),
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Value::Null | Value::Object(_) => None,
    }
}

/// A value that would go into an identity header but cannot be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAHeaderValue;

impl From<NotAHeaderValue> for GatewayError {
    /// RFC 9110 §5.5: a control character (other than HTAB) cannot travel in
    /// a field value. Dropping the header would let the request through
    /// without its identity, so the credential itself is refused.
    fn from(_: NotAHeaderValue) -> GatewayError {
        GatewayError::invalid_credential(
            Scheme::Bearer,
            "malformed_claim",
            "A claim cannot be sent as a header value.",
        )
    }
}

impl IdentityParts<'_> {
    /// Encodes the headers once. A value that cannot be a header value (a
    /// control character in a claim) is an error, never a missing header.
    pub fn build(self, names: &IdentityHeaders) -> Result<Identity, NotAHeaderValue> {
        let mut headers = Vec::with_capacity(5);
        let mut push = |name: &HeaderName, value: &str| {
            let v = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| NotAHeaderValue)?;
            headers.push((name.clone(), v));
            Ok::<(), NotAHeaderValue>(())
        };
        push(&names.subject, &self.subject)?;
        push(&names.method, self.method.as_str())?;
        let scopes: Vec<&str> = self.scopes.iter().map(|s| &**s).collect();
        push(&names.scopes, &scopes.join(" "))?;
        if let Some(key_id) = &self.key_id {
            push(&names.key_id, key_id)?;
        }
        if let Some(issuer) = &self.issuer {
            push(&names.issuer, issuer)?;
        }
        if let Some(claims) = self.claims {
            for (claim, header) in &names.claims {
                if let Some(text) = claims.get(claim).and_then(claim_text) {
                    push(header, &text)?;
                }
            }
        }
        let caller = crate::ratelimit::Caller::new(match (&self.key_id, self.method) {
            (Some(id), Method::ApiKey) => format!("key:{id}"),
            _ => format!(
                "tok:{} {}",
                self.issuer.as_deref().unwrap_or(""),
                self.subject
            ),
        });
        Ok(Identity {
            caller,
            method: self.method,
            subject: self.subject,
            scopes: self.scopes,
            key_id: self.key_id,
            issuer: self.issuer,
            rate_limit: self.rate_limit,
            token: self.token,
            headers,
        })
    }
}

/// The one credential a request carries, still unverified.
#[derive(Debug)]
pub enum Credential<'a> {
    ApiKey(Secret<&'a str>),
    Bearer(Secret<&'a str>),
}

impl Credential<'_> {
    pub fn scheme(&self) -> Scheme {
        match self {
            Credential::ApiKey(_) => Scheme::ApiKey,
            Credential::Bearer(_) => Scheme::Bearer,
        }
    }
}

fn two_credentials() -> GatewayError {
    GatewayError::bad_request(
        "multiple_credentials",
        "The request carries more than one credential.",
    )
}

/// Finds the request's credential. More than one (two kinds, or a repeated
/// header) is refused: which one wins would otherwise depend on the reader.
pub fn extract<'a>(
    headers: &'a HeaderMap,
    key_header: &http::HeaderName,
) -> Result<Option<Credential<'a>>, GatewayError> {
    let mut found: Option<Credential<'a>> = None;
    let malformed = || {
        GatewayError::invalid_credential(
            Scheme::Bearer,
            "malformed_credential",
            "The credential is malformed.",
        )
    };
    for value in headers.get_all(key_header) {
        if found.is_some() {
            return Err(two_credentials());
        }
        let key = value.to_str().map_err(|_| {
            GatewayError::invalid_credential(
                Scheme::ApiKey,
                "malformed_credential",
                "The API key is malformed.",
            )
        })?;
        found = Some(Credential::ApiKey(Secret::new(key.trim())));
    }
    for value in headers.get_all(AUTHORIZATION) {
        if found.is_some() {
            return Err(two_credentials());
        }
        let text = value.to_str().map_err(|_| malformed())?.trim();
        let (scheme, rest) = text.split_once(' ').ok_or_else(malformed)?;
        let rest = rest.trim();
        // Auth schemes are case-insensitive (RFC 9110 §11.1).
        found = Some(if scheme.eq_ignore_ascii_case("bearer") {
            Credential::Bearer(Secret::new(rest))
        } else if scheme.eq_ignore_ascii_case("apikey") {
            Credential::ApiKey(Secret::new(rest))
        } else {
            return Err(GatewayError::invalid_credential(
                Scheme::Bearer,
                "unsupported_scheme",
                "The Authorization scheme is not supported.",
            ));
        });
    }
    Ok(found)
}

/// Which validator a credential goes to, decided from its shape alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ApiKey,
    Jwt,
    Introspection,
}

/// Classifies a credential (docs/requests.md step 4): a bearer token that parses as
/// a JWS goes to the JWT issuers, any other to introspection.
pub fn classify(credential: &Credential<'_>, configured: KindSet) -> Result<Kind, GatewayError> {
    let (Credential::ApiKey(secret) | Credential::Bearer(secret)) = credential;
    // Any credential over the bound is refused before it is parsed or hashed.
    if secret.expose().len() > MAX_TOKEN_BYTES {
        return Err(GatewayError::invalid_credential(
            credential.scheme(),
            "token_too_large",
            "The credential is larger than 8 KiB.",
        ));
    }
    let token = match credential {
        Credential::ApiKey(_) => return Ok(Kind::ApiKey),
        Credential::Bearer(t) => t.expose(),
    };
    // With no introspection endpoint, a malformed token is a malformed JWT.
    if configured.jwt && (!configured.introspection || jwt::looks_like_jws(token)) {
        Ok(Kind::Jwt)
    } else if configured.introspection {
        Ok(Kind::Introspection)
    } else {
        Err(GatewayError::invalid_credential(
            Scheme::Bearer,
            "no_token_issuer",
            "Bearer tokens are not accepted by this gateway.",
        ))
    }
}

/// Whether the route takes this kind of credential; checked before the
/// credential is validated (docs/requests.md step 4).
pub fn kind_accepted(accepted: KindSet, kind: Kind) -> bool {
    match kind {
        Kind::ApiKey => accepted.api_key,
        Kind::Jwt => accepted.jwt,
        Kind::Introspection => accepted.introspection,
    }
}

/// Verifies a credential of an accepted kind.
pub async fn authenticate(
    snapshot: &Snapshot,
    credential: &Credential<'_>,
    kind: Kind,
    token_cache: &token_cache::TokenCache,
) -> Result<Arc<Identity>, GatewayError> {
    let now = std::time::SystemTime::now();
    match (credential, kind) {
        (Credential::ApiKey(key), _) => snapshot.api_keys.authenticate(key, now),
        (Credential::Bearer(token), Kind::Jwt) => {
            snapshot
                .jwt
                .verify(token, &snapshot.identity, token_cache)
                .await
        }
        (Credential::Bearer(token), _) => {
            snapshot
                .introspection
                .introspect(token, &snapshot.identity)
                .await
        }
    }
}
