//! The verified-token cache: a token seen before skips signature
//! verification (an RSA verify costs tens of microseconds). Keyed by the
//! SHA-256 of the token, never the token; entries die at the token's `exp`
//! and whenever the issuer's key set changes (its generation moves on).

use super::Identity;
use dashmap::DashMap;
use std::sync::Arc;

/// Entries kept at most, unless the policy says otherwise.
pub const DEFAULT_CAPACITY: usize = 100_000;
/// A token without `exp` is re-verified at least this often (seconds).
pub const MAX_AGE_WITHOUT_EXP: u64 = 300;

#[derive(Debug)]
struct Entry {
    identity: Arc<Identity>,
    generation: u64,
    /// Unix seconds after which the entry is dead.
    until: u64,
}

#[derive(Debug)]
pub struct TokenCache {
    entries: DashMap<[u8; 32], Entry>,
    capacity: usize,
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
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A live entry made with its issuer's current keys; `generation_of`
    /// gives an issuer's current key generation (`None`: issuer gone).
    pub fn get(
        &self,
        digest: &[u8; 32],
        now: u64,
        generation_of: impl Fn(&str) -> Option<u64>,
    ) -> Option<Arc<Identity>> {
        let entry = self.entries.get(digest)?;
        let current = entry.identity.issuer.as_deref().and_then(&generation_of);
        if current == Some(entry.generation) && now <= entry.until {
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
        generation: u64,
        expires: Option<u64>,
        now: u64,
    ) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.make_room(now);
        }
        let until = expires
            .unwrap_or(u64::MAX)
            .min(now.saturating_add(MAX_AGE_WITHOUT_EXP));
        self.entries.insert(
            digest,
            Entry {
                identity,
                generation,
                until,
            },
        );
    }

    /// Drops dead entries; if the cache is still full, drops an arbitrary
    /// tenth, so a flood of distinct valid tokens costs re-verification, not memory.
    fn make_room(&self, now: u64) {
        self.entries.retain(|_, e| e.until >= now);
        let excess = self.entries.len() + self.capacity / 10 + 1;
        if excess > self.capacity {
            let victims: Vec<[u8; 32]> = self
                .entries
                .iter()
                .take(excess - self.capacity)
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
    use crate::auth::{IdentityParts, Method};

    fn identity() -> Arc<Identity> {
        Arc::new(
            IdentityParts {
                method: Method::Jwt,
                subject: "s".into(),
                scopes: vec![],
                key_id: None,
                issuer: Some("https://idp/".into()),
                rate_limit: None,
                token: None,
                claims: None,
            }
            .build(&crate::snapshot::IdentityHeaders::default())
            .expect("fixed test values are header values"),
        )
    }

    #[test]
    fn entries_die_at_exp_and_on_key_rotation() {
        let cache = TokenCache::new(10);
        cache.insert([1; 32], identity(), 7, Some(1_100), 1_000);
        assert!(cache.get(&[1; 32], 1_050, |_| Some(7)).is_some());
        assert!(
            cache.get(&[1; 32], 1_050, |_| Some(8)).is_none(),
            "new key generation"
        );
        cache.insert([1; 32], identity(), 7, Some(1_100), 1_000);
        assert!(
            cache.get(&[1; 32], 1_050, |_| None).is_none(),
            "issuer gone"
        );
        cache.insert([1; 32], identity(), 7, Some(1_100), 1_000);
        assert!(cache.get(&[1; 32], 1_101, |_| Some(7)).is_none(), "expired");
        assert!(cache.is_empty());
    }

    #[test]
    fn stays_within_capacity() {
        let cache = TokenCache::new(100);
        for i in 0..1_000u32 {
            let mut d = [0u8; 32];
            d[..4].copy_from_slice(&i.to_le_bytes());
            cache.insert(d, identity(), 1, Some(u64::MAX), 0);
            assert!(cache.len() <= 100);
        }
    }
}
