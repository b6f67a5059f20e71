//! Browser sessions from OpenID Connect sign-in (docs/sign-in.md): the
//! compiled `SessionPolicy`, the live `SessionServices`, and a session
//! cookie turned into an `Identity` — refreshed at the provider, one
//! refresh at a time per session, when its ID token has expired.

pub mod cookies;
mod login;
pub mod provider;
pub mod store;

pub use login::{is_local_path, is_navigation, same_origin, LoggedOut, SignedIn};

use super::jwks::RemoteRef;
use super::jwt::{Issuer, IssuerKeys};
use super::{AuthServices, Identity, IdentityHeaders, IdentityParts, Kind};
use crate::clock::unix_now;
use crate::error::Reason;
use crate::redis_backend::Unreachable;
use crate::revocation::{RevocationStore, TokenFacts};
use crate::secret::Secret;
use cookies::SealKey;
use dashmap::DashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{Backend, Lookup, Session, SessionRecord, StoreSettings};

/// How long a login state (and its cookie) lives.
pub const LOGIN_STATE_LIFETIME: Duration = Duration::from_secs(600);
/// How long one replica may hold the right to refresh a session.
const REFRESH_HOLD: Duration = Duration::from_secs(10);
/// How often a request waiting for another replica's refresh looks again.
const REFRESH_POLL: Duration = Duration::from_millis(100);

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
    flights: DashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>,
}

impl SessionServices {
    pub fn new(redis: Option<Arc<crate::redis_backend::RedisBackend>>) -> SessionServices {
        SessionServices {
            store: store::SessionStore::new(redis),
            flights: DashMap::new(),
        }
    }
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

    fn identity_of(
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

    /// The identity behind a session cookie, refreshing the session first
    /// when its ID token has expired.
    pub async fn authenticate(
        &self,
        cookie_value: &Secret<&str>,
        names: &IdentityHeaders,
        services: &AuthServices,
        revocations: &RevocationStore,
    ) -> Result<Arc<Identity>, Ended> {
        let key = session_key(cookie_value);
        let store = &services.sessions.store;
        let now = unix_now();
        let mut session = match store.load(&self.store, &self.seal, &key, now).await? {
            Lookup::Found(session) => session,
            Lookup::Expired => return Err(Ended::Because(Reason::SessionExpired)),
            Lookup::Unknown => return Err(Ended::Because(Reason::SessionUnknown)),
        };
        let record = session.record();
        let facts = TokenFacts {
            jti: None,
            iat: Some(record.created),
            exp: None,
        };
        if revocations.is_revoked(&self.provider, &record.subject, &facts, now) {
            store.delete(&self.store, &key).await?;
            return Err(Ended::Because(Reason::TokenRevoked));
        }
        if now >= record.expires_at {
            if record.refresh_token.is_some() {
                session = self.refreshed(&key, session, services).await?;
            } else if now > record.expires_at + self.id_tokens.leeway.as_secs() {
                // No refresh token: the session lives as long as its ID token.
                store.delete(&self.store, &key).await?;
                return Err(Ended::Because(Reason::SessionExpired));
            }
        }
        session
            .identity(self.generation, |r| self.identity_of(r, names))
            .map_err(Ended::Because)
    }

    /// The session with a fresh ID token. One refresh per session at a
    /// time: in this process a lock per session, across replicas a claim
    /// in Redis; the others wait and use its result.
    async fn refreshed(
        &self,
        key: &[u8; 32],
        session: Arc<Session>,
        services: &AuthServices,
    ) -> Result<Arc<Session>, Ended> {
        let flight = services.sessions.flights.entry(*key).or_default().clone();
        let result = {
            let _turn = flight.lock().await;
            self.refresh_in_turn(key, session, services).await
        };
        services
            .sessions
            .flights
            .remove_if(key, |_, f| Arc::strong_count(f) <= 2);
        result
    }

    async fn refresh_in_turn(
        &self,
        key: &[u8; 32],
        mut session: Arc<Session>,
        services: &AuthServices,
    ) -> Result<Arc<Session>, Ended> {
        let store = &services.sessions.store;
        let fresh = |s: &Session| s.record().expires_at > unix_now();
        if self.store.backend == Backend::Redis {
            // Another replica may have refreshed it meanwhile.
            session = self.reload_session(key, services).await?;
        }
        if fresh(&session) {
            return Ok(session);
        }
        if !store.claim_refresh(&self.store, key, REFRESH_HOLD).await? {
            // Another replica is refreshing: wait for its result.
            let deadline = Instant::now() + REFRESH_HOLD;
            while Instant::now() < deadline {
                tokio::time::sleep(REFRESH_POLL).await;
                let current = self.reload_session(key, services).await?;
                if fresh(&current) {
                    return Ok(current);
                }
            }
            return Err(Ended::Because(Reason::RefreshFailed));
        }
        let record = session.record();
        let outcome = self.refresh_at_provider(&record, services).await;
        crate::metrics::session_refresh(outcome.is_ok());
        let result = match outcome {
            Ok(next) => store
                .update(&self.store, &self.seal, key, &session, next)
                .await
                .map(|()| session)
                .map_err(Ended::from),
            Err(error) => {
                tracing::warn!(provider = %self.provider, subject = %record.subject, error, "session refresh failed; the session ends");
                store.delete(&self.store, key).await?;
                Err(Ended::Because(Reason::RefreshFailed))
            }
        };
        store.release_refresh(&self.store, key).await;
        result
    }

    async fn reload_session(
        &self,
        key: &[u8; 32],
        services: &AuthServices,
    ) -> Result<Arc<Session>, Ended> {
        let store = &services.sessions.store;
        match store.load(&self.store, &self.seal, key, unix_now()).await? {
            Lookup::Found(s) => Ok(s),
            Lookup::Expired => Err(Ended::Because(Reason::SessionExpired)),
            Lookup::Unknown => Err(Ended::Because(Reason::SessionUnknown)),
        }
    }

    /// The refresh grant, and the new ID token checked like the first one
    /// (same subject: OpenID Connect Core §12.2).
    async fn refresh_at_provider(
        &self,
        record: &SessionRecord,
        services: &AuthServices,
    ) -> Result<SessionRecord, String> {
        let refresh_token = record
            .refresh_token
            .clone()
            .map(Secret::new)
            .ok_or("no refresh token")?;
        let endpoints = self
            .endpoints()
            .ok_or("the provider's discovery document is not loaded")?;
        let http = services
            .clients
            .get(self.ca.as_deref())
            .ok_or("no client for the provider's CA")?;
        let tokens = provider::refresh(&http, &endpoints, &self.client, &refresh_token).await?;
        let verified = self
            .id_tokens
            .verify_own(tokens.id_token.expose())
            .await
            .map_err(|e| format!("the new ID token is invalid ({})", e.reason()))?;
        let subject = verified.claims.get("sub").and_then(|s| s.as_str());
        if subject != Some(record.subject.as_str()) {
            return Err("the new ID token names another subject".into());
        }
        Ok(SessionRecord {
            subject: record.subject.clone(),
            expires_at: verified.exp.unwrap_or(0),
            claims: verified.claims,
            id_token: tokens.id_token.expose().clone(),
            refresh_token: tokens
                .refresh_token
                .map(|t| t.expose().clone())
                .or_else(|| record.refresh_token.clone()),
            created: record.created,
        })
    }
}
