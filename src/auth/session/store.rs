//! Where sessions live: this process's memory (the default; bounded, the
//! longest idle evicted first), or the Redis of `rate_limits` (`store:
//! redis`: shared by replicas, kept across restarts, sealed with the
//! session key so a copy of Redis reads as noise). Both sit behind
//! `SessionStore`; a session is keyed by the SHA-256 of its cookie value,
//! never by the value itself.

use super::cookies::SealKey;
use crate::auth::identity::Identity;
use crate::redis_backend::{RedisBackend, Unreachable};
use arc_swap::{ArcSwap, ArcSwapOption};
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `sessions.store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
}

/// The store's part of the policy.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub backend: Backend,
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    pub max_entries: usize,
}

/// What the gateway keeps of one sign-in.
#[derive(Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub subject: String,
    /// The ID token's claims (scopes, `identity.claims`).
    pub claims: Map<String, Value>,
    /// For `id_token_hint` at logout.
    pub id_token: String,
    pub refresh_token: Option<String>,
    /// The ID token's `exp`: refreshed (or ended) from then on.
    pub expires_at: u64,
    /// Sign-in time: the absolute lifetime counts from it, and a subject
    /// revocation dated after it ends the session.
    pub created: u64,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("subject", &self.subject)
            .field("expires_at", &self.expires_at)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// A session as requests share it.
pub struct Session {
    record: ArcSwap<SessionRecord>,
    last_seen: AtomicU64,
    /// The identity built for a policy generation, so a request pays one
    /// hash and one lookup, like an API key.
    identity: ArcSwapOption<(u64, Arc<Identity>)>,
}

impl Session {
    fn new(record: SessionRecord, now: u64) -> Session {
        Session {
            record: ArcSwap::from_pointee(record),
            last_seen: AtomicU64::new(now),
            identity: ArcSwapOption::empty(),
        }
    }

    pub fn record(&self) -> Arc<SessionRecord> {
        self.record.load_full()
    }

    /// The identity for policy `generation`, built once per record.
    pub fn identity<E>(
        &self,
        generation: u64,
        build: impl FnOnce(&SessionRecord) -> Result<Identity, E>,
    ) -> Result<Arc<Identity>, E> {
        if let Some(cached) = &*self.identity.load() {
            if cached.0 == generation {
                return Ok(cached.1.clone());
            }
        }
        let identity = Arc::new(build(&self.record.load())?);
        self.identity
            .store(Some(Arc::new((generation, identity.clone()))));
        Ok(identity)
    }

    fn replace(&self, record: SessionRecord) {
        self.record.store(Arc::new(record));
        self.identity.store(None);
    }
}

/// What a lookup found.
pub enum Lookup {
    Found(Arc<Session>),
    /// Past its idle timeout or absolute lifetime (and now removed).
    Expired,
    Unknown,
}

/// The sessions and the used login states, in memory and (with `store:
/// redis`) in Redis. Live state: carried across reloads.
#[derive(Default)]
pub struct SessionStore {
    memory: DashMap<[u8; 32], Arc<Session>>,
    used_states: DashMap<[u8; 32], u64>,
    redis: Option<Arc<RedisBackend>>,
}

fn redis_key(kind: &str, key: &[u8; 32]) -> String {
    format!("{kind}:{}", hex::encode(key))
}

impl SessionStore {
    pub fn new(redis: Option<Arc<RedisBackend>>) -> SessionStore {
        SessionStore {
            redis,
            ..SessionStore::default()
        }
    }

    fn redis(&self, s: &StoreSettings) -> Option<&RedisBackend> {
        match s.backend {
            Backend::Redis => self.redis.as_deref(),
            Backend::Memory => None,
        }
    }

    fn too_old(s: &StoreSettings, record: &SessionRecord, now: u64) -> bool {
        now.saturating_sub(record.created) > s.max_lifetime.as_secs()
    }

    pub async fn load(
        &self,
        s: &StoreSettings,
        seal: &SealKey,
        key: &[u8; 32],
        now: u64,
    ) -> Result<Lookup, Unreachable> {
        if let Some(redis) = self.redis(s) {
            let Some(sealed) = redis
                .take_alive(&redis_key("session", key), s.idle_timeout.as_secs())
                .await?
            else {
                return Ok(Lookup::Unknown);
            };
            let record = std::str::from_utf8(&sealed)
                .ok()
                .and_then(|text| seal.open(&redis_key("session", key).into_bytes(), text))
                .and_then(|plain| serde_json::from_slice::<SessionRecord>(&plain).ok());
            let Some(record) = record else {
                // Sealed with another key (key_env changed): no session.
                return Ok(Lookup::Unknown);
            };
            if Self::too_old(s, &record, now) {
                redis.delete(&redis_key("session", key)).await?;
                return Ok(Lookup::Expired);
            }
            return Ok(Lookup::Found(Arc::new(Session::new(record, now))));
        }
        let Some(session) = self.memory.get(key).map(|e| e.value().clone()) else {
            return Ok(Lookup::Unknown);
        };
        let idle = now.saturating_sub(session.last_seen.load(Ordering::Relaxed));
        if idle > s.idle_timeout.as_secs() || Self::too_old(s, &session.record.load(), now) {
            self.memory.remove(key);
            return Ok(Lookup::Expired);
        }
        if idle > 0 {
            session.last_seen.store(now, Ordering::Relaxed);
        }
        Ok(Lookup::Found(session))
    }

    /// Stores a new session.
    pub async fn create(
        &self,
        s: &StoreSettings,
        seal: &SealKey,
        key: &[u8; 32],
        record: SessionRecord,
        now: u64,
    ) -> Result<(), Unreachable> {
        if let Some(redis) = self.redis(s) {
            return Self::write(redis, s, seal, key, &record).await;
        }
        if self.memory.len() >= s.max_entries {
            self.evict(s, now);
        }
        self.memory
            .insert(*key, Arc::new(Session::new(record, now)));
        Ok(())
    }

    /// Replaces a session's record (after a refresh).
    pub async fn update(
        &self,
        s: &StoreSettings,
        seal: &SealKey,
        key: &[u8; 32],
        session: &Session,
        record: SessionRecord,
    ) -> Result<(), Unreachable> {
        if let Some(redis) = self.redis(s) {
            Self::write(redis, s, seal, key, &record).await?;
        }
        session.replace(record);
        Ok(())
    }

    async fn write(
        redis: &RedisBackend,
        s: &StoreSettings,
        seal: &SealKey,
        key: &[u8; 32],
        record: &SessionRecord,
    ) -> Result<(), Unreachable> {
        let name = redis_key("session", key);
        let json = serde_json::to_vec(record).map_err(|_| Unreachable)?;
        let sealed = seal.seal(name.as_bytes(), &json);
        redis
            .put_for(&name, sealed.as_bytes(), s.idle_timeout.as_secs())
            .await
    }

    /// Ends a session here and, with Redis, for every replica.
    pub async fn delete(&self, s: &StoreSettings, key: &[u8; 32]) -> Result<(), Unreachable> {
        self.memory.remove(key);
        match self.redis(s) {
            Some(redis) => redis.delete(&redis_key("session", key)).await,
            None => Ok(()),
        }
    }

    /// Whether this is the first use of a login `state` (single use, in
    /// every replica with Redis). Entries outlive the state's 10 minutes.
    pub async fn first_use_of_state(
        &self,
        s: &StoreSettings,
        state_digest: &[u8; 32],
        lifetime: Duration,
        now: u64,
    ) -> Result<bool, Unreachable> {
        if let Some(redis) = self.redis(s) {
            let millis = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
            return redis
                .claim(&redis_key("login-state", state_digest), millis)
                .await;
        }
        if self.used_states.len() >= s.max_entries {
            self.used_states.retain(|_, until| *until > now);
            if self.used_states.len() >= s.max_entries {
                // Still full: forget the oldest half. The provider refuses a
                // second use of a code anyway; this list is the second lock.
                let mut by_age: Vec<([u8; 32], u64)> = self
                    .used_states
                    .iter()
                    .map(|e| (*e.key(), *e.value()))
                    .collect();
                by_age.sort_by_key(|(_, until)| *until);
                for (key, _) in by_age.into_iter().take(s.max_entries / 2 + 1) {
                    self.used_states.remove(&key);
                }
                tracing::warn!(
                    max_entries = s.max_entries,
                    "too many sign-ins in 10 minutes: the oldest used login states were forgotten"
                );
            }
        }
        let until = now + lifetime.as_secs();
        Ok(match self.used_states.entry(*state_digest) {
            dashmap::mapref::entry::Entry::Occupied(_) => false,
            dashmap::mapref::entry::Entry::Vacant(slot) => {
                slot.insert(until);
                true
            }
        })
    }

    /// Claims the right to refresh a session across replicas (Redis);
    /// within one process a lock per session already serializes.
    pub async fn claim_refresh(
        &self,
        s: &StoreSettings,
        key: &[u8; 32],
        hold: Duration,
    ) -> Result<bool, Unreachable> {
        match self.redis(s) {
            Some(redis) => {
                let millis = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
                redis.claim(&redis_key("refresh", key), millis).await
            }
            None => Ok(true),
        }
    }

    pub async fn release_refresh(&self, s: &StoreSettings, key: &[u8; 32]) {
        if let Some(redis) = self.redis(s) {
            // A lock not released expires on its own.
            let _ = redis.delete(&redis_key("refresh", key)).await;
        }
    }

    /// Sessions in memory (for tests and the log line).
    pub fn in_memory(&self) -> usize {
        self.memory.len()
    }

    /// At the bound: drop what has expired, then the longest idle sixteenth.
    fn evict(&self, s: &StoreSettings, now: u64) {
        let before = self.memory.len();
        self.memory.retain(|_, session| {
            let idle = now.saturating_sub(session.last_seen.load(Ordering::Relaxed));
            idle <= s.idle_timeout.as_secs() && !Self::too_old(s, &session.record(), now)
        });
        if self.memory.len() >= s.max_entries {
            let mut by_idle: Vec<([u8; 32], u64)> = self
                .memory
                .iter()
                .map(|e| (*e.key(), e.value().last_seen.load(Ordering::Relaxed)))
                .collect();
            by_idle.sort_by_key(|(_, seen)| *seen);
            let excess = self.memory.len() + 1 - s.max_entries;
            let count = excess.max(s.max_entries / 16).max(1);
            for (key, _) in by_idle.into_iter().take(count) {
                self.memory.remove(&key);
            }
            tracing::warn!(
                evicted = before - self.memory.len(),
                max_entries = s.max_entries,
                "session store full: the longest idle sessions were ended; raise sessions.max_entries or use store: redis"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(created: u64) -> SessionRecord {
        SessionRecord {
            subject: "alice".into(),
            claims: Map::new(),
            id_token: "t".into(),
            refresh_token: None,
            expires_at: created + 3600,
            created,
        }
    }

    #[tokio::test]
    async fn the_memory_store_is_bounded_and_evicts_the_longest_idle() {
        let settings = StoreSettings {
            backend: Backend::Memory,
            idle_timeout: Duration::from_secs(3600),
            max_lifetime: Duration::from_secs(7200),
            max_entries: 4,
        };
        let seal = SealKey::derive(&[1u8; 32]);
        let store = SessionStore::default();
        for i in 0..4u8 {
            let now = 1_000 + u64::from(i);
            assert!(store
                .create(&settings, &seal, &[i; 32], record(now), now)
                .await
                .is_ok());
        }
        // The first session was used last, so the second is the longest idle.
        assert!(matches!(
            store.load(&settings, &seal, &[0; 32], 1_010).await,
            Ok(Lookup::Found(_))
        ));
        assert!(store
            .create(&settings, &seal, &[9; 32], record(1_011), 1_011)
            .await
            .is_ok());
        assert_eq!(store.in_memory(), 4);
        assert!(matches!(
            store.load(&settings, &seal, &[1; 32], 1_012).await,
            Ok(Lookup::Unknown)
        ));
        assert!(matches!(
            store.load(&settings, &seal, &[0; 32], 1_012).await,
            Ok(Lookup::Found(_))
        ));
        // Past the idle timeout or the absolute lifetime: expired, and gone.
        assert!(matches!(
            store.load(&settings, &seal, &[9; 32], 1_011 + 3601).await,
            Ok(Lookup::Expired)
        ));
        assert!(matches!(
            store.load(&settings, &seal, &[9; 32], 1_011).await,
            Ok(Lookup::Unknown)
        ));
        assert!(matches!(
            store.load(&settings, &seal, &[0; 32], 1_000 + 7201).await,
            Ok(Lookup::Expired)
        ));
    }
}
