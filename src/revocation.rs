//! Revoked tokens (docs/requests.md step 5, docs/operations.md): by `jti`, or every token of an
//! `iss`+`sub` issued before a time. Lives outside the policy snapshot, so
//! a reload keeps it. Entries expire once the tokens they cover would have.

use dashmap::DashMap;
use serde::Serialize;
use std::time::Duration;

/// How long a sub-before entry is kept: tokens carry no bound on their
/// lifetime that the store could know, so it outlives any sane access token.
pub const SUBJECT_ENTRY_LIFETIME: Duration = Duration::from_secs(90 * 86_400);
/// `revocation.max_entries` unless the policy says otherwise.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Revocation {
    Jti {
        jti: String,
        exp: u64,
        /// Only this issuer's token with the `jti`; every issuer's when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iss: Option<String>,
    },
    Subject {
        sub: String,
        iss: String,
        before: u64,
    },
}

/// What a token says about itself, for the revocation check.
#[derive(Debug, Clone, Default)]
pub struct TokenFacts {
    pub jti: Option<String>,
    pub iat: Option<u64>,
    pub exp: Option<u64>,
}

/// The store holds `max_entries` already; the new entry was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFull {
    pub max_entries: usize,
}

/// `iss` of a jti entry that covers every issuer. The admin API refuses an
/// empty `iss`, so no issuer-scoped entry can take this key.
const ANY_ISSUER: &str = "";

#[derive(Debug, Default)]
pub struct RevocationStore {
    /// (iss or ANY_ISSUER, jti) → the token's exp.
    jtis: DashMap<(String, String), u64>,
    /// (iss, sub) → revoke tokens issued before this time.
    subjects: DashMap<(String, String), u64>,
    /// Inserts one at a time, so the bound holds exactly.
    insert_lock: std::sync::Mutex<()>,
    /// Whether either map may hold an entry: read by every request with a
    /// token, where counting DashMap's shards would cost more than the check.
    /// Set under `insert_lock`; cleared only by a purge that empties both.
    populated: std::sync::atomic::AtomicBool,
}

impl RevocationStore {
    /// Stores an entry unless that would take the store past `max_entries`
    /// live entries; an entry that replaces one already there always fits.
    pub fn insert(&self, entry: &Revocation, max_entries: usize) -> Result<(), StoreFull> {
        let _one_at_a_time = self.insert_lock.lock().unwrap_or_else(|e| e.into_inner());
        let full = self.jtis.len() + self.subjects.len() >= max_entries;
        match entry {
            Revocation::Jti { jti, exp, iss } => {
                let key = (
                    iss.as_deref().unwrap_or(ANY_ISSUER).to_string(),
                    jti.clone(),
                );
                if full && !self.jtis.contains_key(&key) {
                    return Err(StoreFull { max_entries });
                }
                let mut slot = self.jtis.entry(key).or_insert(0);
                *slot = (*slot).max(*exp);
            }
            Revocation::Subject { sub, iss, before } => {
                let key = (iss.clone(), sub.clone());
                if full && !self.subjects.contains_key(&key) {
                    return Err(StoreFull { max_entries });
                }
                // A later cut-off covers everything an earlier one did.
                let mut slot = self.subjects.entry(key).or_insert(0);
                *slot = (*slot).max(*before);
            }
        }
        self.populated
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Whether the token is revoked at `now` (unix seconds).
    pub fn is_revoked(&self, iss: &str, sub: &str, facts: &TokenFacts, now: u64) -> bool {
        if !self.populated.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        if let Some(jti) = &facts.jti {
            let live = |scope: &str| {
                self.jtis
                    .get(&(scope.to_string(), jti.clone()))
                    .is_some_and(|exp| *exp >= now)
            };
            if !self.jtis.is_empty() && (live(ANY_ISSUER) || live(iss)) {
                return true;
            }
        }
        match self.subjects.get(&(iss.to_string(), sub.to_string())) {
            // Tokens without `iat` are covered too: nothing proves they are newer.
            Some(before) => facts.iat.is_none_or(|iat| iat < *before),
            None => false,
        }
    }

    /// Drops entries whose tokens can no longer be valid.
    pub fn purge(&self, now: u64) {
        self.jtis.retain(|_, exp| *exp >= now);
        let keep = SUBJECT_ENTRY_LIFETIME.as_secs();
        self.subjects
            .retain(|_, before| before.saturating_add(keep) >= now);
        let _no_insert_meanwhile = self.insert_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.jtis.is_empty() && self.subjects.is_empty() {
            self.populated
                .store(false, std::sync::atomic::Ordering::Release);
        }
    }

    pub fn list(&self, now: u64) -> Vec<Revocation> {
        self.purge(now);
        let mut out: Vec<Revocation> = self
            .jtis
            .iter()
            .map(|e| Revocation::Jti {
                jti: e.key().1.clone(),
                exp: *e.value(),
                iss: Some(e.key().0.clone()).filter(|iss| iss != ANY_ISSUER),
            })
            .collect();
        out.extend(self.subjects.iter().map(|e| Revocation::Subject {
            iss: e.key().0.clone(),
            sub: e.key().1.clone(),
            before: *e.value(),
        }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(jti: Option<&str>, iat: Option<u64>) -> TokenFacts {
        TokenFacts {
            jti: jti.map(str::to_string),
            iat,
            exp: None,
        }
    }

    #[test]
    fn jti_entries_revoke_until_the_token_expires() {
        let store = RevocationStore::default();
        let jti = |jti: &str, iss: Option<&str>| Revocation::Jti {
            jti: jti.into(),
            exp: 1_000,
            iss: iss.map(str::to_string),
        };
        store.insert(&jti("t1", None), 10).expect("room");
        store
            .insert(&jti("t3", Some("https://a/")), 10)
            .expect("room");
        assert!(store.is_revoked("i", "s", &facts(Some("t1"), None), 999));
        assert!(!store.is_revoked("i", "s", &facts(Some("t2"), None), 999));
        assert!(store.is_revoked("https://a/", "s", &facts(Some("t3"), None), 999));
        assert!(
            !store.is_revoked("https://b/", "s", &facts(Some("t3"), None), 999),
            "an entry naming its issuer spares the same jti of another"
        );
        assert_eq!(store.list(999).len(), 2);
        assert!(store.list(999).contains(&jti("t3", Some("https://a/"))));
        store.purge(1_001);
        assert!(store.list(1_001).is_empty());
    }

    #[test]
    fn subject_entries_revoke_older_tokens_and_those_without_iat() {
        let store = RevocationStore::default();
        store
            .insert(
                &Revocation::Subject {
                    sub: "alice".into(),
                    iss: "https://idp/".into(),
                    before: 500,
                },
                10,
            )
            .expect("room");
        assert!(store.is_revoked("https://idp/", "alice", &facts(None, Some(499)), 600));
        assert!(store.is_revoked("https://idp/", "alice", &facts(None, None), 600));
        assert!(!store.is_revoked("https://idp/", "alice", &facts(None, Some(500)), 600));
        assert!(!store.is_revoked("https://other/", "alice", &facts(None, Some(1)), 600));
        assert!(!store.is_revoked("https://idp/", "bob", &facts(None, Some(1)), 600));
    }

    #[test]
    fn the_bound_refuses_new_entries_but_not_updates() {
        let store = RevocationStore::default();
        let subject = |sub: &str, before| Revocation::Subject {
            sub: sub.into(),
            iss: "https://idp/".into(),
            before,
        };
        store.insert(&subject("a", 1), 2).expect("room");
        store.insert(&subject("b", 1), 2).expect("room");
        assert_eq!(
            store.insert(&subject("c", 1), 2),
            Err(StoreFull { max_entries: 2 })
        );
        assert!(store.insert(&subject("a", 5), 2).is_ok(), "replaces a");
        let listed = store.list(10);
        assert_eq!(listed.len(), 2);
        assert!(listed.contains(&subject("a", 5)));
        assert!(!listed
            .iter()
            .any(|e| matches!(e, Revocation::Subject { sub, .. } if sub == "c")));
    }
}
