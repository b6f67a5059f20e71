//! Turning one credential into an `Identity` (SPEC §3 step 4).

pub mod api_key;

use crate::error::{GatewayError, Scheme};
use crate::secret::Secret;
use crate::snapshot::{KindSet, Snapshot};
use http::header::AUTHORIZATION;
use http::HeaderMap;
use std::sync::Arc;

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

/// Who is calling, as established by one credential.
#[derive(Debug, Clone)]
pub struct Identity {
    pub method: Method,
    pub subject: Arc<str>,
    pub scopes: Vec<Arc<str>>,
    pub key_id: Option<Arc<str>>,
    pub issuer: Option<Arc<str>>,
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

/// Whether the route takes this kind of credential; checked before the
/// credential is validated (SPEC §3 step 4).
pub fn kind_accepted(accepted: KindSet, credential: &Credential<'_>) -> bool {
    match credential {
        Credential::ApiKey(_) => accepted.api_key,
        Credential::Bearer(_) => accepted.bearer(),
    }
}

/// Verifies a credential of an accepted kind.
pub fn authenticate(
    snapshot: &Snapshot,
    credential: &Credential<'_>,
    now: std::time::SystemTime,
) -> Result<Identity, GatewayError> {
    match credential {
        Credential::ApiKey(key) => snapshot.api_keys.authenticate(key, now),
        // Token validation arrives with JWT/introspection support; until then
        // the policy loader refuses those sections, so no bearer is accepted.
        Credential::Bearer(_) => Err(GatewayError::invalid_credential(
            Scheme::Bearer,
            "no_token_issuer",
            "Bearer tokens are not accepted by this gateway.",
        )),
    }
}
