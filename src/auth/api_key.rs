//! API keys: looked up by the SHA-256 of the presented key, so the policy
//! never holds a usable key and a leaked policy file grants nothing.

use crate::error::{GatewayError, Reason, Scheme};
use crate::secret::{sha256, Secret};
use http::HeaderName;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::identity::Identity;

/// Prefix of keys minted by `authgate keygen`.
pub const KEY_PREFIX: &str = "agk_";

#[derive(Debug)]
pub struct ApiKeyEntry {
    /// Built once at load: a request with this key allocates nothing for it.
    pub identity: Arc<Identity>,
    pub expires: Option<SystemTime>,
    pub disabled: bool,
}

#[derive(Debug)]
pub struct ApiKeyIndex {
    /// The header keys arrive in (besides `Authorization: ApiKey …`).
    pub header: HeaderName,
    pub by_digest: HashMap<[u8; 32], Arc<ApiKeyEntry>>,
}

impl Default for ApiKeyIndex {
    fn default() -> Self {
        ApiKeyIndex {
            header: HeaderName::from_static("x-api-key"),
            by_digest: HashMap::new(),
        }
    }
}

/// `sha256:<64 hex>`, as `hash-key` prints and the policy stores.
pub fn format_digest(digest: &[u8; 32]) -> String {
    format!("sha256:{}", hex::encode(digest))
}

/// Accepts `sha256:<64 hex>` or bare hex, either case.
pub fn parse_digest(text: &str) -> Result<[u8; 32], String> {
    let hex_part = text.strip_prefix("sha256:").unwrap_or(text);
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).map_err(|_| {
        "`sha256` must be 64 hex digits (optionally after `sha256:`); print it with `authgate hash-key`"
            .to_string()
    })?;
    Ok(out)
}

impl ApiKeyIndex {
    /// Checks a presented key. Reasons name what failed without echoing the key.
    pub fn authenticate(
        &self,
        key: &Secret<&str>,
        now: SystemTime,
    ) -> Result<Arc<Identity>, GatewayError> {
        let digest = sha256(key.expose().trim().as_bytes());
        let Some(entry) = self.by_digest.get(&digest) else {
            return Err(GatewayError::invalid_credential(
                Scheme::ApiKey,
                Reason::UnknownKey,
                "The API key is not valid.",
            ));
        };
        if entry.disabled {
            return Err(GatewayError::invalid_credential(
                Scheme::ApiKey,
                Reason::KeyDisabled,
                "The API key is disabled.",
            ));
        }
        if entry.expires.is_some_and(|at| now >= at) {
            return Err(GatewayError::invalid_credential(
                Scheme::ApiKey,
                Reason::KeyExpired,
                "The API key has expired.",
            ));
        }
        Ok(entry.identity.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn index(expires: Option<SystemTime>, disabled: bool) -> ApiKeyIndex {
        let mut idx = ApiKeyIndex::default();
        let identity = crate::auth::IdentityParts {
            method: crate::auth::Kind::ApiKey,
            subject: "billing".into(),
            scopes: vec!["orders:read".into()],
            key_id: Some("svc".into()),
            issuer: None,
            rate_limit: None,
            token: None,
            claims: None,
        }
        .build(&crate::auth::IdentityHeaders::default())
        .expect("fixed test values are header values");
        idx.by_digest.insert(
            sha256(b"agk_good"),
            Arc::new(ApiKeyEntry {
                identity: Arc::new(identity),
                expires,
                disabled,
            }),
        );
        idx
    }

    #[test]
    fn known_key_gives_its_identity() {
        let id = index(None, false)
            .authenticate(&Secret::new("agk_good"), SystemTime::now())
            .expect("accepted");
        assert_eq!(&*id.subject, "billing");
        assert_eq!(id.key_id.as_deref(), Some("svc"));
    }

    #[test]
    fn unknown_disabled_and_expired_keys_are_refused_with_their_reason() {
        let now = SystemTime::now();
        let reason = |idx: &ApiKeyIndex, k: &str| {
            idx.authenticate(&Secret::new(k), now)
                .err()
                .map(|e| e.reason().as_str())
        };
        assert_eq!(reason(&index(None, false), "agk_bad"), Some("unknown_key"));
        assert_eq!(reason(&index(None, true), "agk_good"), Some("key_disabled"));
        let past = now - Duration::from_secs(1);
        assert_eq!(
            reason(&index(Some(past), false), "agk_good"),
            Some("key_expired")
        );
    }

    #[test]
    fn digests_round_trip() {
        let d = sha256(b"abc");
        assert_eq!(
            format_digest(&d),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(parse_digest(&format_digest(&d)), Ok(d));
        assert_eq!(parse_digest(&hex::encode_upper(d)), Ok(d));
        assert!(parse_digest("sha256:abc").is_err());
    }
}
