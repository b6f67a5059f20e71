//! The `sessions` section compiled (`SessionPolicy`), the live state it
//! needs (`SessionServices`), and the small facts both sides share.

use super::cookies::SealKey;
use super::provider;
use super::store::{self, SessionRecord, StoreSettings};
use crate::auth::fetch::FetchClients;
use crate::auth::identity::{Identity, IdentityHeaders, IdentityParts, Kind};
use crate::auth::jwks::RemoteRef;
use crate::auth::jwt::{Issuer, IssuerKeys};
use crate::error::Reason;
use crate::redis_backend::Unreachable;
use crate::revocation::TokenFacts;
use crate::secret::Secret;
use dashmap::DashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a login state (and its cookie) lives.
pub const LOGIN_STATE_LIFETIME: Duration = Duration::from_secs(600);

/// The `sessions` section, compiled.
#[derive(Debug)]
pub struct SessionPolicy {
    /// The provider's issuer, exactly as its ID tokens name it.
    pub provider: Arc<str>,
    pub client: provider::Client,
    /// Extra CA trusted for the provider.
    pub ca: Option<PathBuf>,
    /// Requested scopes, space-separated.
    pub scopes: String,
    /// `offline_access` requested: ask for a refresh token (with `prompt=consent`).
    pub offline: bool,
    /// Verifies ID tokens as a JWT issuer: `aud` must hold `client_id`,
    /// keys from the provider's discovery document (the §6 JWKS rules).
    pub id_tokens: Issuer,
    pub callback_path: String,
    pub logout_path: String,
    pub post_logout_redirect: String,
    pub cookie: String,
    /// From `key_env`: seals the login state and the records in Redis.
    pub seal: SealKey,
    pub store: StoreSettings,
    pub rate_limit: Option<Arc<str>>,
    /// Unique per compiled policy: identities cached in sessions are
    /// rebuilt after a reload (identity header names or scopes may change).
    pub generation: u64,
}

/// A path the gateway answers itself when sessions are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnPath {
    Callback,
    Logout,
}

/// The live side of sessions: the store and the refreshes in flight.
#[derive(Default)]
pub struct SessionServices {
    pub store: store::SessionStore,
    pub(super) flights: DashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>,
}

impl SessionServices {
    pub fn new(redis: Option<Arc<crate::redis_backend::RedisBackend>>) -> SessionServices {
        SessionServices {
            store: store::SessionStore::new(redis),
            flights: DashMap::new(),
        }
    }
}

/// What sign-in reaches while it runs: the provider's HTTP clients and the
/// live sessions.
#[derive(Clone, Copy)]
pub struct Services<'a> {
    pub clients: &'a FetchClients,
    pub sessions: &'a SessionServices,
}

/// Why a session cookie is no credential; `Unavailable` is the store's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Because(Reason),
    StoreUnavailable,
}

impl From<Unreachable> for Ended {
    fn from(_: Unreachable) -> Ended {
        Ended::StoreUnavailable
    }
}

/// The store key of a session: the SHA-256 of its cookie value.
pub fn session_key(cookie_value: &Secret<&str>) -> [u8; 32] {
    crate::secret::sha256(cookie_value.expose().as_bytes())
}

impl SessionPolicy {
    pub fn own_path(&self, path: &str) -> Option<OwnPath> {
        if path == self.callback_path {
            Some(OwnPath::Callback)
        } else if path == self.logout_path {
            Some(OwnPath::Logout)
        } else {
            None
        }
    }

    /// The provider's key set (bound by the JWKS registry, like an issuer's).
    pub fn remote_keys(&self) -> Option<&RemoteRef> {
        match &self.id_tokens.keys {
            IssuerKeys::Remote(r) => Some(r),
            IssuerKeys::Static(_) => None,
        }
    }

    /// The provider's endpoints, once its discovery document was read.
    pub fn endpoints(&self) -> Option<provider::Endpoints> {
        let doc = self.remote_keys()?.live()?.discovery()?;
        let https = self.provider.starts_with("https://");
        provider::Endpoints::from_discovery(&doc, https)
    }

    /// The session cookie and the login-state cookies: never sent upstream.
    pub fn is_own_cookie(&self, name: &str) -> bool {
        name.strip_prefix(self.cookie.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("-login-"))
    }

    pub(super) fn identity_of(
        &self,
        record: &SessionRecord,
        names: &IdentityHeaders,
    ) -> Result<Identity, Reason> {
        let scopes = self
            .id_tokens
            .scopes_in(&record.claims)
            .map_err(|e| e.reason())?;
        IdentityParts {
            method: Kind::Session,
            subject: record.subject.as_str().into(),
            scopes,
            key_id: None,
            issuer: Some(self.provider.clone()),
            rate_limit: self.rate_limit.clone(),
            // The sign-in time stands for `iat`: a subject revocation dated
            // after it ends the session.
            token: Some(TokenFacts {
                jti: None,
                iat: Some(record.created),
                exp: None,
            }),
            claims: Some(&record.claims),
        }
        .build(names)
        .map_err(|_| Reason::MalformedClaim)
    }
}
