//! Turning one credential into an `Identity` (docs/requests.md step 4).

pub mod api_key;
pub mod assertion;
pub mod assertion_key;
mod claims;
pub mod fetch;
pub mod identity;
pub mod introspection;
pub mod jwks;
pub mod jwks_registry;
pub mod jwt;
pub mod mtls;
pub mod session;
pub mod token_cache;

use crate::error::{GatewayError, Reason, Scheme};
use crate::secret::Secret;
use http::header::AUTHORIZATION;
use http::HeaderMap;
use std::sync::Arc;

pub use identity::{Identity, IdentityHeaders, IdentityParts, Kind, KindSet, NotAHeaderValue};

/// Bearer tokens longer than this are refused before any parsing (docs/requests.md).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

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

pub fn two_credentials() -> GatewayError {
    GatewayError::bad_request(
        Reason::MultipleCredentials,
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
            Reason::MalformedCredential,
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
                Reason::MalformedCredential,
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
                Reason::UnsupportedScheme,
                "The Authorization scheme is not supported.",
            ));
        });
    }
    Ok(found)
}

/// Classifies a credential (docs/requests.md step 4): a bearer token that parses as
/// a JWS goes to the JWT issuers, any other to introspection.
pub fn classify(credential: &Credential<'_>, configured: KindSet) -> Result<Kind, GatewayError> {
    let (Credential::ApiKey(secret) | Credential::Bearer(secret)) = credential;
    // Any credential over the bound is refused before it is parsed or hashed.
    if secret.expose().len() > MAX_TOKEN_BYTES {
        return Err(GatewayError::invalid_credential(
            credential.scheme(),
            Reason::TokenTooLarge,
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
            Reason::NoTokenIssuer,
            "Bearer tokens are not accepted by this gateway.",
        ))
    }
}

/// The credential rules of one policy, compiled: everything the auth stage
/// reads, and nothing it does not.
#[derive(Debug)]
pub struct AuthPolicy {
    /// Names of the identity headers sent upstream.
    pub identity: IdentityHeaders,
    /// Kinds the policy configures (a route's default `auth`).
    pub kinds: KindSet,
    pub api_keys: api_key::ApiKeyIndex,
    pub jwt: jwt::JwtVerifier,
    pub introspection: introspection::Introspector,
    /// Browser sign-in (docs/sign-in.md), when `sessions` is configured.
    pub sessions: Option<session::SessionPolicy>,
    /// Client certificates of listed subjects (`mtls`).
    pub mtls: mtls::MtlsPolicy,
    /// The signed identity statement sent upstream (`identity.assertion`).
    pub assertion: Option<assertion::AssertionSigner>,
}

impl AuthPolicy {
    /// Verifies a credential of an accepted kind with the live services.
    pub async fn authenticate(
        &self,
        credential: &Credential<'_>,
        kind: Kind,
        services: &AuthServices,
    ) -> Result<Arc<Identity>, GatewayError> {
        match (credential, kind) {
            (Credential::ApiKey(key), _) => self
                .api_keys
                .authenticate(key, std::time::SystemTime::now()),
            (Credential::Bearer(token), Kind::Jwt) => {
                self.jwt
                    .verify(token, &self.identity, &services.token_cache)
                    .await
            }
            // Boxed: an HTTP exchange, a large future every request would
            // otherwise carry the size of.
            (Credential::Bearer(token), _) => {
                Box::pin(self.introspection.introspect(
                    token,
                    &self.identity,
                    &services.clients,
                    &services.token_cache,
                ))
                .await
            }
        }
    }
}

/// The live side of authentication: what a compiled `AuthPolicy` refers to
/// by value, built once and carried across reloads.
#[derive(Default)]
pub struct AuthServices {
    /// HTTP clients for JWKS, discovery and introspection, by CA.
    pub clients: fetch::FetchClients,
    /// Remote key sets, by issuer, source and CA.
    pub jwks: jwks_registry::JwksRegistry,
    /// Verified JWTs and introspection answers; entries outlive reloads
    /// that leave what made them as it was.
    pub token_cache: token_cache::TokenCache,
    /// Browser sessions and the sign-ins in progress.
    pub sessions: session::SessionServices,
    /// Identity assertions recently signed, reused for up to half their lifetime.
    pub assertions: assertion::AssertionCache,
}

impl AuthServices {
    /// The part sign-in and sessions reach.
    pub fn session_services(&self) -> session::Services<'_> {
        session::Services {
            clients: &self.clients,
            sessions: &self.sessions,
        }
    }

    /// Readies the services for `next` before it serves: clients for the CAs
    /// it names, its remote key sets bound (new ones fetched once, so
    /// readiness can wait for them), and what `previous` cached dropped
    /// where its identity headers differ (stamps retire the rest). A CA that cannot be read
    /// fails before anything changes.
    pub async fn adopt(
        &self,
        next: &AuthPolicy,
        previous: Option<&AuthPolicy>,
    ) -> Result<(), crate::tls::CaBundleError> {
        let session_keys = next.sessions.as_ref().and_then(|s| s.remote_keys());
        let remote_keys = || next.jwt.remote_keys().chain(session_keys);
        let jwks_cas = remote_keys().map(|r| r.spec.ca.as_deref());
        let introspection_cas = next.introspection.endpoints.iter().map(|e| e.ca.as_deref());
        self.clients.adopt(jwks_cas.chain(introspection_cas))?;
        self.jwks.adopt(remote_keys(), &self.clients).await;
        self.token_cache.set_capacity(next.jwt.cache_capacity);
        if let Some(previous) = previous {
            // Cached identities carry the claim headers of the old names.
            if previous.identity != next.identity {
                self.token_cache.clear();
            }
        }
        Ok(())
    }
}
