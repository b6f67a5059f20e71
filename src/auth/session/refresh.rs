//! A session cookie turned into an `Identity` on each request, and the
//! session refreshed at the provider, one refresh at a time per session,
//! when its ID token has expired.

use super::policy::{session_key, Ended, Services, SessionPolicy};
use super::provider;
use super::store::{Backend, Lookup, Session, SessionRecord};
use crate::auth::identity::{Identity, IdentityHeaders};
use crate::clock::unix_now;
use crate::error::Reason;
use crate::revocation::{RevocationStore, TokenFacts};
use crate::secret::Secret;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one replica may hold the right to refresh a session.
const REFRESH_HOLD: Duration = Duration::from_secs(10);
/// How often a request waiting for another replica's refresh looks again.
const REFRESH_POLL: Duration = Duration::from_millis(100);

impl SessionPolicy {
    /// The identity behind a session cookie, refreshing the session first
    /// when its ID token has expired.
    pub async fn authenticate(
        &self,
        cookie_value: &Secret<&str>,
        names: &IdentityHeaders,
        services: Services<'_>,
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
        services: Services<'_>,
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
        services: Services<'_>,
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
        if self.store.backend == Backend::Redis {
            // Read again under the claim: a replica that refreshed between our
            // read and our claim stored its result before releasing the claim.
            match self.reload_session(key, services).await {
                Ok(current) if fresh(&current) => {
                    store.release_refresh(&self.store, key).await;
                    return Ok(current);
                }
                Ok(current) => session = current,
                Err(ended) => {
                    store.release_refresh(&self.store, key).await;
                    return Err(ended);
                }
            }
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
        services: Services<'_>,
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
        services: Services<'_>,
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
