//! Verification keys: a static set (HS secret, JWKS file) or a remote JWKS
//! that is fetched at start, refreshed, re-fetched on an unknown `kid` at
//! most once per 30 s, and kept at its last good value when a fetch fails.

use super::fetch::{self, FetchClient};
use crate::clock::Clock;
use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The shortest time between two fetches triggered by unknown `kid`s (docs/operations.md).
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Retry delay after a failed background refresh (capped by `jwks_refresh`).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// One verification key.
pub struct VerifyKey {
    pub kid: Option<String>,
    /// The JWK's own `alg`, when it names one.
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("family", &self.key.family())
            .finish()
    }
}

/// A set of keys, with a generation that changes whenever the set does
/// (the verified-token cache drops entries of older generations).
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<VerifyKey>,
    pub generation: u64,
    /// SHA-256 of the document the set came from, to tell whether a fetch changed it.
    pub digest: [u8; 32],
}

impl KeySet {
    /// A shared HMAC secret (`hs_secret_env`).
    pub fn hmac(secret: &[u8]) -> KeySet {
        KeySet {
            keys: vec![VerifyKey {
                kid: None,
                alg: None,
                key: DecodingKey::from_secret(secret),
            }],
            generation: 1,
            // Only hashed into the issuer's fingerprint, never shown.
            digest: crate::secret::sha256(secret),
        }
    }

    /// Parses a JWKS document. Keys for encryption (`use: enc`), symmetric
    /// keys (a JWKS is public) and unsupported types are skipped.
    pub fn from_jwks(document: &[u8], generation: u64) -> Result<KeySet, String> {
        #[derive(serde::Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(document)
            .map_err(|e| format!("not a JWKS document (expected {{\"keys\": [...]}}): {e}"))?;
        let mut keys = Vec::new();
        for value in doc.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            if key.family() == AlgorithmFamily::Hmac {
                continue;
            }
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok());
            keys.push(VerifyKey {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            });
        }
        if keys.is_empty() {
            return Err("the JWKS has no usable signature key".into());
        }
        Ok(KeySet {
            keys,
            generation,
            digest: crate::secret::sha256(document),
        })
    }

    /// The key for a token: by `kid` when the token names one, else the
    /// first key whose type fits the algorithm (docs/operations.md).
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&VerifyKey> {
        let fits =
            |k: &&VerifyKey| k.key.family() == alg.family() && k.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .find(fits),
            None => self.keys.iter().find(fits),
        }
    }
}

/// Where a remote key set comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RemoteSource {
    Jwks(http::Uri),
    /// OIDC discovery: the document's `jwks_uri` names the JWKS.
    Discovery(http::Uri),
}

/// A remote key set as a policy names it: data only. Two policies naming
/// the same spec share one live set (its keys and fetch history).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteSpec {
    pub issuer: String,
    pub source: RemoteSource,
    /// Extra CA trusted for the fetches.
    pub ca: Option<PathBuf>,
}

/// A compiled policy's reference to a remote key set. The live set is
/// bound to it by the `JwksRegistry` before the policy serves; until then
/// (and in `authgate check`) the issuer has no keys.
#[derive(Debug)]
pub struct RemoteRef {
    pub spec: RemoteSpec,
    /// How often the set is fetched again.
    pub refresh: Duration,
    bound: OnceLock<Arc<RemoteKeys>>,
}

impl RemoteRef {
    pub fn new(spec: RemoteSpec, refresh: Duration) -> RemoteRef {
        RemoteRef {
            spec,
            refresh,
            bound: OnceLock::new(),
        }
    }

    /// The live set, once bound.
    pub fn live(&self) -> Option<&Arc<RemoteKeys>> {
        self.bound.get()
    }

    /// Binds a live set (tests bind their own, with a fake clock).
    /// A reference is bound once; a second call changes nothing.
    pub fn bind(&self, keys: Arc<RemoteKeys>) {
        let _ = self.bound.set(keys);
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.live()
            .map_or_else(|| Arc::new(KeySet::default()), |k| k.current())
    }
}

/// A JWKS fetched over HTTP(S): live state, shared across reloads.
pub struct RemoteKeys {
    pub spec: RemoteSpec,
    client: FetchClient,
    keys: ArcSwap<KeySet>,
    /// The last discovery document that named good keys (OIDC sign-in reads
    /// the provider's endpoints from it).
    discovery: arc_swap::ArcSwapOption<serde_json::Value>,
    last_fetch: Mutex<Option<Instant>>,
    fetch_lock: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("spec", &self.spec)
            .finish()
    }
}

impl RemoteKeys {
    pub fn new(spec: RemoteSpec, client: FetchClient, clock: Arc<dyn Clock>) -> RemoteKeys {
        RemoteKeys {
            spec,
            client,
            keys: ArcSwap::from_pointee(KeySet::default()),
            discovery: arc_swap::ArcSwapOption::empty(),
            last_fetch: Mutex::new(None),
            fetch_lock: tokio::sync::Mutex::new(()),
            clock,
        }
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    pub fn has_keys(&self) -> bool {
        !self.keys.load().keys.is_empty()
    }

    /// The provider's discovery document, once a fetch brought good keys.
    pub fn discovery(&self) -> Option<Arc<serde_json::Value>> {
        self.discovery.load_full()
    }

    async fn download(&self) -> Result<KeySet, String> {
        let (jwks_uri, discovery) = match &self.spec.source {
            RemoteSource::Jwks(uri) => (uri.clone(), None),
            RemoteSource::Discovery(uri) => {
                let doc = fetch::get(&self.client, uri)
                    .await
                    .map_err(|e| format!("discovery document: {e}"))?;
                let jwks_uri = discovered_jwks_uri(&doc, &self.spec.issuer, uri)?;
                (jwks_uri, serde_json::from_slice(&doc).ok())
            }
        };
        let doc = fetch::get(&self.client, &jwks_uri)
            .await
            .map_err(|e| format!("JWKS: {e}"))?;
        let generation = self.keys.load().generation;
        let set = KeySet::from_jwks(&doc, generation)?;
        if let Some(discovery) = discovery {
            self.discovery.store(Some(Arc::new(discovery)));
        }
        Ok(set)
    }

    /// Fetches now. On failure the last good set stays.
    pub async fn refresh(&self) -> Result<(), String> {
        let _one_at_a_time = self.fetch_lock.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> Result<(), String> {
        if let Ok(mut last) = self.last_fetch.lock() {
            *last = Some(self.clock.now());
        }
        match self.download().await {
            Ok(mut set) => {
                let old = self.keys.load();
                if set.digest != old.digest {
                    set.generation = old.generation + 1;
                    tracing::info!(issuer = %self.spec.issuer, keys = set.keys.len(), "JWKS updated");
                } else {
                    set.generation = old.generation;
                }
                self.keys.store(Arc::new(set));
                crate::metrics::jwks_refresh(&self.spec.issuer, true);
                Ok(())
            }
            Err(e) => {
                crate::metrics::jwks_refresh(&self.spec.issuer, false);
                tracing::warn!(issuer = %self.spec.issuer, error = %e, "JWKS fetch failed; keeping the last good keys");
                Err(e)
            }
        }
    }

    /// Called when a token names a `kid` the set lacks: fetches again unless
    /// the issuer's last fetch of any kind was under 30 s ago. Concurrent
    /// callers share one fetch. Returns whether the set may have changed.
    pub async fn refetch_for_unknown_kid(&self) -> bool {
        let generation_before = self.keys.load().generation;
        let _one_at_a_time = self.fetch_lock.lock().await;
        if self.keys.load().generation != generation_before {
            return true; // someone else's fetch brought new keys while we waited
        }
        let recent = self
            .last_fetch
            .lock()
            .ok()
            .and_then(|l| *l)
            .is_some_and(|at| {
                self.clock.now().saturating_duration_since(at) < MIN_REFETCH_INTERVAL
            });
        if recent {
            return false;
        }
        self.fetch_locked().await.is_ok()
    }
}

/// The `jwks_uri` of a discovery document, if the document speaks for the
/// configured issuer: its `issuer` must equal it exactly (OpenID Connect
/// Discovery §4.3), and a document fetched over https may not send the keys
/// over http, or whoever controls that document or path controls the keys.
pub fn discovered_jwks_uri(
    doc: &[u8],
    issuer: &str,
    discovery: &http::Uri,
) -> Result<http::Uri, String> {
    let value: serde_json::Value =
        serde_json::from_slice(doc).map_err(|_| "discovery document is not JSON".to_string())?;
    if value["issuer"].as_str() != Some(issuer) {
        return Err(format!(
            "discovery document names another issuer than `{issuer}`; its keys are not used"
        ));
    }
    let jwks_uri: http::Uri = value["jwks_uri"]
        .as_str()
        .and_then(|u| u.parse().ok())
        .ok_or_else(|| "discovery document has no valid jwks_uri".to_string())?;
    let secure = |u: &http::Uri| u.scheme_str() == Some("https");
    if !matches!(jwks_uri.scheme_str(), Some("http" | "https"))
        || (secure(discovery) && !secure(&jwks_uri))
    {
        return Err("discovery document over https names a jwks_uri that is not https".into());
    }
    Ok(jwks_uri)
}

#[cfg(test)]
mod tests {
    use super::discovered_jwks_uri;

    #[test]
    fn discovery_must_name_the_issuer_and_keep_https() {
        let https: http::Uri = "https://idp/.well-known/openid-configuration"
            .parse()
            .expect("uri");
        let http_doc: http::Uri = "http://idp/.well-known/openid-configuration"
            .parse()
            .expect("uri");
        let doc = |iss: &str, jwks: &str| format!(r#"{{"issuer":"{iss}","jwks_uri":"{jwks}"}}"#);
        let ok = doc("https://idp/", "https://idp/jwks");
        assert!(discovered_jwks_uri(ok.as_bytes(), "https://idp/", &https).is_ok());
        // Not the same string: a trailing slash matters (Discovery §4.3).
        assert!(discovered_jwks_uri(ok.as_bytes(), "https://idp", &https).is_err());
        let other = doc("https://evil/", "https://idp/jwks");
        assert!(discovered_jwks_uri(other.as_bytes(), "https://idp/", &https).is_err());
        let downgrade = doc("https://idp/", "http://idp/jwks");
        assert!(discovered_jwks_uri(downgrade.as_bytes(), "https://idp/", &https).is_err());
        assert!(discovered_jwks_uri(downgrade.as_bytes(), "https://idp/", &http_doc).is_ok());
        assert!(discovered_jwks_uri(b"{}", "https://idp/", &https).is_err());
    }
}
