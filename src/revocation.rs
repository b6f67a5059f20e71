//! Revoked tokens (docs/requests.md step 5, docs/operations.md): by `jti`, or every token of an
//! `iss`+`sub` issued before a time. Lives outside the policy snapshot, so
//! a reload keeps it. Entries expire once the tokens they cover would have.

use dashmap::DashMap;
use serde::Serialize;
use std::time::Duration;

/// How long a sub-before entry is kept: tokens carry no bound on their
/// lifetime that the store could know, so it outlives any sane access token.
pub const SUBJECT_ENTRY_LIFETIME: Duration = Duration::from_secs(90 * 86_400);

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Revocation {
    Jti {
        jti: String,
        exp: u64,
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

#[derive(Debug, Default)]
pub struct RevocationStore {
    /// jti → the token's exp.
    jtis: DashMap<String, u64>,
    /// (iss, sub) → revoke tokens issued before this time.
    subjects: DashMap<(String, String), u64>,
}

impl RevocationStore {
    pub fn insert(&self, entry: &Revocation) {
        match entry {
            Revocation::Jti { jti, exp } => {
                self.jtis.insert(jti.clone(), *exp);
            }
            Revocation::Subject { sub, iss, before } => {
                // A later cut-off covers everything an earlier one did.
                let mut slot = self.subjects.entry((iss.clone(), sub.clone())).or_insert(0);
                *slot = (*slot).max(*before);
            }
        }
    }

    /// Whether the token is revoked at `now` (unix seconds).
    pub fn is_revoked(&self, iss: &str, sub: &str, facts: &TokenFacts, now: u64) -> bool {
        if self.jtis.is_empty() && self.subjects.is_empty() {
            return false;
        }
        if let Some(jti) = &facts.jti {
            if self.jtis.get(jti).is_some_and(|exp| *exp >= now) {
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
    }

    pub fn list(&self, now: u64) -> Vec<Revocation> {
        self.purge(now);
        let mut out: Vec<Revocation> = self
            .jtis
            .iter()
            .map(|e| Revocation::Jti {
                jti: e.key().clone(),
                exp: *e.value(),
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
        store.insert(&Revocation::Jti {
            jti: "t1".into(),
            exp: 1_000,
        });
        assert!(store.is_revoked("i", "s", &facts(Some("t1"), None), 999));
        assert!(!store.is_revoked("i", "s", &facts(Some("t2"), None), 999));
        store.purge(1_001);
        assert!(store.list(1_001).is_empty());
    }

    #[test]
    fn subject_entries_revoke_older_tokens_and_those_without_iat() {
        let store = RevocationStore::default();
        store.insert(&Revocation::Subject {
            sub: "alice".into(),
            iss: "https://idp/".into(),
            before: 500,
        });
        assert!(store.is_revoked("https://idp/", "alice", &facts(None, Some(499)), 600));
        assert!(store.is_revoked("https://idp/", "alice", &facts(None, None), 600));
        assert!(!store.is_revoked("https://idp/", "alice", &facts(None, Some(500)), 600));
        assert!(!store.is_revoked("https://other/", "alice", &facts(None, Some(1)), 600));
        assert!(!store.is_revoked("https://idp/", "bob", &facts(None, Some(1)), 600));
    }
}
