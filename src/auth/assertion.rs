//! The signed identity assertion (docs/policy.md `identity.assertion`): a
//! short-lived ES256 or EdDSA JWT stating who the caller is, so an upstream
//! can tell a request that came through the gateway from one that did not.
//! Signing costs tens of microseconds, so one assertion serves the same
//! caller for up to half its lifetime (`AssertionCache`).

use super::assertion_key::AssertionKey;
use super::identity::{Identity, Kind, SignedAssertion};
use dashmap::DashMap;
use http::{HeaderName, HeaderValue};
use jsonwebtoken::{EncodingKey, Header};
use std::sync::Arc;

/// `identity.assertion`, compiled: the key that signs, the JWKS published
/// beside it, and the fixed claims.
pub struct AssertionSigner {
    pub header: HeaderName,
    pub issuer: String,
    pub audience: String,
    pub ttl_secs: u64,
    pub key: AssertionKey,
    encoding: EncodingKey,
    /// `{"keys": [...]}`: the signing key first, then `published_keys`.
    pub jwks: bytes::Bytes,
    /// Tells this signer's cached assertions from another's: a reload that
    /// changes the key or the claims stops their reuse.
    stamp: u64,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionSigner")
            .field("header", &self.header)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl_secs", &self.ttl_secs)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    scope: String,
    auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    iat: u64,
    exp: u64,
}

impl AssertionSigner {
    pub fn new(
        header: HeaderName,
        issuer: String,
        audience: String,
        ttl_secs: u64,
        key: AssertionKey,
        published: &[AssertionKey],
    ) -> AssertionSigner {
        let keys: Vec<&serde_json::Value> = std::iter::once(&key)
            .chain(published.iter().filter(|p| p.kid != key.kid))
            .map(|k| &k.jwk)
            .collect();
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap_or_default();
        let stamp = {
            use std::hash::BuildHasher;
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one((&key.kid, &issuer, &audience, ttl_secs))
        };
        AssertionSigner {
            encoding: key.encoding_key(),
            header,
            issuer,
            audience,
            ttl_secs,
            key,
            jwks: jwks.into(),
            stamp,
        }
    }

    /// A fresh assertion for `identity`, issued at `now`.
    fn sign(&self, identity: &Identity, now: u64) -> Option<HeaderValue> {
        let scopes: Vec<&str> = identity.scopes.iter().map(|s| &**s).collect();
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: &identity.subject,
            scope: scopes.join(" "),
            auth_method: identity.method.as_str(),
            key_id: identity
                .key_id
                .as_deref()
                .filter(|_| identity.method == Kind::ApiKey),
            iat: now,
            exp: now + self.ttl_secs,
        };
        let mut header = Header::new(self.key.algorithm);
        header.kid = Some(self.key.kid.clone());
        header.typ = Some("JWT".into());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| tracing::error!(error = %e, "signing an identity assertion failed"))
            .ok()?;
        HeaderValue::from_str(&token).ok()
    }

    /// The assertion for `identity`: a cached one still within half its
    /// lifetime, else a new one. `None` only if signing itself failed (the
    /// request then fails; an upstream relying on the header must not get
    /// one without it).
    pub fn assertion(
        &self,
        identity: &Identity,
        cache: &AssertionCache,
        now: u64,
    ) -> Option<HeaderValue> {
        let reusable =
            |stamp: u64, issued_at: u64| stamp == self.stamp && now < issued_at + self.ttl_secs / 2;
        if let Some(value) = identity.assertion.reuse(|s| reusable(s.stamp, s.issued_at)) {
            return Some(value);
        }
        // An identity rebuilt per request (a session read from Redis) has
        // an empty slot: its caller's last assertion may still serve.
        let slot = identity.caller.hash();
        if let Some(entry) = cache.entries.get(&slot) {
            if reusable(entry.stamp, entry.issued_at) && entry.is_for(identity) {
                identity.assertion.put(SignedAssertion {
                    stamp: entry.stamp,
                    issued_at: entry.issued_at,
                    value: entry.value.clone(),
                });
                return Some(entry.value.clone());
            }
        }
        let value = self.sign(identity, now)?;
        identity.assertion.put(SignedAssertion {
            stamp: self.stamp,
            issued_at: now,
            value: value.clone(),
        });
        cache.put(
            slot,
            Issued {
                stamp: self.stamp,
                issued_at: now,
                method: identity.method,
                subject: identity.subject.clone(),
                issuer: identity.issuer.clone(),
                key_id: identity.key_id.clone(),
                scopes: identity.scopes.clone(),
                value: value.clone(),
            },
            now,
            self.ttl_secs / 2,
        );
        Some(value)
    }
}

/// Assertions recently issued, by caller: live state, kept across reloads
/// (an entry of another signer is never reused) and bounded.
pub struct AssertionCache {
    entries: DashMap<u64, Issued, PreHashed>,
    capacity: usize,
}

/// The slots are keyed by `Caller::hash`, already a keyed hash: hashing it
/// again would only cost time.
#[derive(Clone, Default)]
struct PreHashed;

impl std::hash::BuildHasher for PreHashed {
    type Hasher = PreHashedHasher;
    fn build_hasher(&self) -> PreHashedHasher {
        PreHashedHasher(0)
    }
}

struct PreHashedHasher(u64);

impl std::hash::Hasher for PreHashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys reach here; fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl std::fmt::Debug for AssertionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AssertionCache({} entries)", self.entries.len())
    }
}

/// Callers whose assertion is kept at most.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;

impl Default for AssertionCache {
    fn default() -> Self {
        AssertionCache {
            entries: DashMap::with_hasher(PreHashed),
            capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

impl AssertionCache {
    fn put(&self, slot: u64, issued: Issued, now: u64, reuse_secs: u64) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&slot) {
            self.entries.retain(|_, e| now < e.issued_at + reuse_secs);
            if self.entries.len() >= self.capacity {
                return;
            }
        }
        self.entries.insert(slot, issued);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One issued assertion and the identity it states. The caller's hash picks
/// the slot; the fields decide whether it may be reused.
struct Issued {
    stamp: u64,
    issued_at: u64,
    method: Kind,
    subject: Arc<str>,
    issuer: Option<Arc<str>>,
    key_id: Option<Arc<str>>,
    scopes: Vec<Arc<str>>,
    value: HeaderValue,
}

impl Issued {
    /// Same method, issuer, subject, key id and scopes.
    fn is_for(&self, identity: &Identity) -> bool {
        // The same shared strings (a key's or a client's identity, built
        // once) compare by address; others by content.
        fn same(a: &Arc<str>, b: &Arc<str>) -> bool {
            Arc::ptr_eq(a, b) || a == b
        }
        fn same_opt(a: &Option<Arc<str>>, b: &Option<Arc<str>>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => same(a, b),
                (None, None) => true,
                _ => false,
            }
        }
        self.method == identity.method
            && same(&self.subject, &identity.subject)
            && same_opt(&self.issuer, &identity.issuer)
            && same_opt(&self.key_id, &identity.key_id)
            && self.scopes.len() == identity.scopes.len()
            && self
                .scopes
                .iter()
                .zip(&identity.scopes)
                .all(|(a, b)| same(a, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::assertion_key::{write_new, NewKey};
    use crate::auth::identity::{AssertionSlot, IdentityHeaders, IdentityParts};

    fn signer(dir: &std::path::Path, name: &str, ttl_secs: u64) -> AssertionSigner {
        let path = dir.join(name);
        write_new(&path, NewKey::Es256).expect("key");
        let key = AssertionKey::load(&path).expect("load");
        AssertionSigner::new(
            HeaderName::from_static("x-auth-assertion"),
            "authgate".into(),
            "api".into(),
            ttl_secs,
            key,
            &[],
        )
    }

    fn identity(scopes: &[&str]) -> Identity {
        IdentityParts {
            method: Kind::ApiKey,
            subject: "svc".into(),
            scopes: scopes.iter().map(|s| Arc::from(*s)).collect(),
            key_id: Some("svc".into()),
            issuer: None,
            rate_limit: None,
            token: None,
            claims: None,
        }
        .build(&IdentityHeaders::default())
        .expect("identity")
    }

    #[test]
    fn an_assertion_is_reused_for_less_than_half_its_ttl_and_by_one_signer_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = signer(dir.path(), "a.pem", 60);
        let cache = AssertionCache::default();
        let caller = identity(&["read"]);
        let t = 1_900_000_000;
        let issued = first.assertion(&caller, &cache, t).expect("signed");
        assert_eq!(
            first.assertion(&caller, &cache, t + 29),
            Some(issued.clone())
        );
        let renewed = first.assertion(&caller, &cache, t + 30).expect("signed");
        assert_ne!(renewed, issued, "reused for half the ttl or more");
        // Another key: nothing of the first signer's is reused.
        let second = signer(dir.path(), "b.pem", 60);
        assert_ne!(second.assertion(&caller, &cache, t + 31), Some(renewed));
    }

    #[test]
    fn a_rebuilt_identity_reuses_its_callers_assertion_only_if_it_states_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = signer(dir.path(), "a.pem", 60);
        let cache = AssertionCache::default();
        let t = 1_900_000_000;
        let issued = signer.assertion(&identity(&["read"]), &cache, t);
        // Same caller, same claims, a fresh identity (as a session read from Redis).
        let mut rebuilt = identity(&["read"]);
        rebuilt.assertion = AssertionSlot::default();
        assert_eq!(signer.assertion(&rebuilt, &cache, t + 1), issued);
        // Same caller, other scopes: a new statement.
        let widened = identity(&["read", "write"]);
        assert_ne!(signer.assertion(&widened, &cache, t + 2), issued);
    }
}
