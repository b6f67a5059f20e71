//! The verified-token cache: a token seen before skips signature
//! verification (an RSA verify costs tens of microseconds) or, for an
//! opaque token, the call to the introspection endpoint. Keyed by the
//! SHA-256 of the token, never the token; entries die at the token's `exp`
//! and whenever the issuer's key set or its configuration changes (its
//! stamp moves on). The cache is live state: it outlives policy reloads, and
//! the stamp is what keeps an entry from outliving the rules that made it.

use super::identity::Identity;
use dashmap::DashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What verified a token: the issuer's configuration fingerprint and the
/// generation of its key set. An entry counts only while both are current.
pub type Stamp = (u64, u64);

/// Entries kept at most, unless the policy says otherwise.
pub const DEFAULT_CAPACITY: usize = 100_000;
/// A token without `exp` is re-verified at least this often (seconds).
pub const MAX_AGE_WITHOUT_EXP: u64 = 300;

#[derive(Debug)]
struct Entry {
    identity: Arc<Identity>,
    stamp: Stamp,
    /// Unix seconds after which the entry is dead.
    until: u64,
}

#[derive(Debug)]
pub struct TokenCache {
    entries: DashMap<[u8; 32], Entry>,
    /// Set from the policy on every load.
    capacity: AtomicUsize,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new(DEFAULT_CAPACITY)
    }
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            entries: DashMap::new(),
            capacity: AtomicUsize::new(capacity),
        }
    }

    /// A reload may change the bound; entries over a lower one go as new ones come.
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Ordering::Relaxed);
        if capacity == 0 {
            self.entries.clear();
        }
    }

    /// Forgets every entry (identity header names changed, so every cached identity is stale).
    pub fn clear(&self) {
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A live entry made under its issuer's current configuration and keys;
    /// `stamp_of` gives the current stamp for a cached identity (`None`:
    /// whatever made it is gone).
    pub fn get(
        &self,
        digest: &[u8; 32],
        now: u64,
        stamp_of: impl Fn(&Identity) -> Option<Stamp>,
    ) -> Option<Arc<Identity>> {
        let entry = self.entries.get(digest)?;
        let current = stamp_of(&entry.identity);
        if current == Some(entry.stamp) && now <= entry.until {
            return Some(entry.identity.clone());
        }
        drop(entry);
        self.entries.remove(digest);
        None
    }

    pub fn insert(
        &self,
        digest: [u8; 32],
        identity: Arc<Identity>,
        stamp: Stamp,
        expires: Option<u64>,
        now: u64,
    ) {
        let capacity = self.capacity.load(Ordering::Relaxed);
        if capacity == 0 {
            return;
        }
        if self.entries.len() >= capacity {
            self.make_room(now, capacity);
        }
        let until = expires
            .unwrap_or(u64::MAX)
            .min(now.saturating_add(MAX_AGE_WITHOUT_EXP));
        self.entries.insert(
            digest,
            Entry {
                identity,
                stamp,
                until,
            },
        );
    }

    /// Drops dead entries; if the cache is still full, drops an arbitrary
    /// tenth, so a flood of distinct valid tokens costs re-verification, not memory.
    fn make_room(&self, now: u64, capacity: usize) {
        self.entries.retain(|_, e| e.until >= now);
        let excess = self.entries.len() + capacity / 10 + 1;
        if excess > capacity {
            let victims: Vec<[u8; 32]> = self
                .entries
                .iter()
                .take(excess - capacity)
                .map(|e| *e.key())
                .collect();
            for key in victims {
                self.entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{IdentityParts, Kind};

    fn identity() -> Arc<Identity> {
        Arc::new(
            IdentityParts {
                method: Kind::Jwt,
                subject: "s".into(),
                scopes: vec![],
                key_id: None,
                issuer: Some("https://idp/".into()),
                rate_limit: None,
                token: None,
                claims: None,
            }
            .build(&crate::auth::IdentityHeaders::default())
            .expect("fixed test values are header values"),
        )
    }

    #[test]
    fn entries_die_at_exp_on_key_rotation_and_on_a_new_issuer_configuration() {
        let cache = TokenCache::new(10);
        cache.insert([1; 32], identity(), (3, 7), Some(1_100), 1_000);
        assert!(cache.get(&[1; 32], 1_050, |_| Some((3, 7))).is_some());
        assert!(
            cache.get(&[1; 32], 1_050, |_| Some((3, 8))).is_none(),
            "new key generation"
        );
        cache.insert([1; 32], identity(), (3, 7), Some(1_100), 1_000);
        assert!(
            cache.get(&[1; 32], 1_050, |_| Some((4, 7))).is_none(),
            "issuer configured differently"
        );
        cache.insert([1; 32], identity(), (3, 7), Some(1_100), 1_000);
        assert!(
            cache.get(&[1; 32], 1_050, |_| None).is_none(),
            "issuer gone"
        );
        cache.insert([1; 32], identity(), (3, 7), Some(1_100), 1_000);
        assert!(
            cache.get(&[1; 32], 1_101, |_| Some((3, 7))).is_none(),
            "expired"
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn stays_within_capacity() {
        let cache = TokenCache::new(100);
        for i in 0..1_000u32 {
            let mut d = [0u8; 32];
            d[..4].copy_from_slice(&i.to_le_bytes());
            cache.insert(d, identity(), (1, 1), Some(u64::MAX), 0);
            assert!(cache.len() <= 100);
        }
    }
}
