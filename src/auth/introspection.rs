//! Opaque OAuth2 access tokens, checked with the authorization server's
//! RFC 7662 introspection endpoint. Answers are cached under a hash of the
//! token (never the token) for `cache_ttl`, never past the token's `exp`.

use super::fetch::{self, FetchClient, FetchClients};
use super::identity::{Identity, IdentityHeaders, IdentityParts, Kind};
use super::token_cache::TokenCache;
use crate::error::{GatewayError, Reason, Scheme};
use crate::revocation::TokenFacts;
use crate::secret::Secret;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One introspection endpoint, compiled: data only; its client is live
/// state (`FetchClients`), found by `ca`.
pub struct Endpoint {
    pub uri: http::Uri,
    pub client_id: String,
    pub client_secret: Secret<String>,
    pub cache_ttl: Duration,
    pub ca: Option<PathBuf>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("uri", &self.uri)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish()
    }
}

#[derive(Debug, Default)]
pub struct Introspector {
    pub endpoints: Vec<Endpoint>,
    /// `fingerprint_of(endpoints)`, the stamp of the answers it caches.
    pub fingerprint: u64,
}

fn invalid(reason: Reason, description: &'static str) -> GatewayError {
    GatewayError::invalid_credential(Scheme::Bearer, reason, description)
}

fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

enum Answer {
    Active(Value),
    Inactive,
}

impl Introspector {
    /// What a cached answer depends on besides the token: every endpoint's
    /// address, client, secret, cache time and CA. Cached answers carry it
    /// as their stamp, so a reload that changes any of it retires them.
    pub fn fingerprint_of(endpoints: &[Endpoint]) -> u64 {
        let text: String = endpoints
            .iter()
            .map(|e| {
                let secret =
                    hex::encode(crate::secret::sha256(e.client_secret.expose().as_bytes()));
                format!(
                    "{}|{}|{secret}|{:?}|{:?}\n",
                    e.uri, e.client_id, e.cache_ttl, e.ca
                )
            })
            .collect();
        let digest = crate::secret::sha256(text.as_bytes());
        u64::from_le_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ])
    }

    async fn ask(
        client: &FetchClient,
        endpoint: &Endpoint,
        token: &str,
    ) -> Result<Answer, fetch::FetchError> {
        // RFC 6749 §2.3.1: client id and secret are form-encoded, then Basic.
        let credentials = format!(
            "{}:{}",
            form_encode(&endpoint.client_id),
            form_encode(endpoint.client_secret.expose())
        );
        let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
        let body = format!("token={}&token_type_hint=access_token", form_encode(token));
        let req = http::Request::post(endpoint.uri.clone())
            .header(http::header::AUTHORIZATION, format!("Basic {basic}"))
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| fetch::FetchError::Transport(e.to_string()))?;
        let bytes = fetch::send(client, req).await?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| fetch::FetchError::Body)?;
        // RFC 7662 §2.2: anything but `"active": true` is inactive.
        Ok(if value.get("active") == Some(&Value::Bool(true)) {
            Answer::Active(value)
        } else {
            Answer::Inactive
        })
    }

    pub async fn introspect(
        &self,
        token: &Secret<&str>,
        names: &IdentityHeaders,
        clients: &FetchClients,
        cache: &TokenCache,
    ) -> Result<Arc<Identity>, GatewayError> {
        let token = *token.expose();
        let digest = crate::secret::sha256(token.as_bytes());
        let now = crate::clock::unix_now();
        // Answers share the verified-token cache, stamped by this
        // configuration (a token is either a JWT or opaque, never both).
        let stamp = (self.fingerprint, 0);
        if let Some(hit) = cache.get(&digest, now, |_| Some(stamp)) {
            return Ok(hit);
        }
        let mut unavailable = false;
        for endpoint in &self.endpoints {
            let answer = match clients.get(endpoint.ca.as_deref()) {
                Some(client) => Self::ask(&client, endpoint, token).await,
                None => Err(fetch::FetchError::Transport("no client for its CA".into())),
            };
            match answer {
                Ok(Answer::Active(value)) => {
                    let (identity, ttl) = identity_from(&value, endpoint.cache_ttl, names)?;
                    // Whole seconds: an answer cached for under one is not cached.
                    if ttl.as_secs() > 0 {
                        let until = now.saturating_add(ttl.as_secs());
                        cache.insert(digest, identity.clone(), stamp, Some(until), now);
                    }
                    return Ok(identity);
                }
                Ok(Answer::Inactive) => {}
                Err(e) => {
                    unavailable = true;
                    tracing::error!(endpoint = %endpoint.uri, error = %e, "introspection endpoint unavailable; opaque tokens are refused");
                }
            }
        }
        Err(if unavailable {
            invalid(
                Reason::IntrospectionUnavailable,
                "The token could not be checked right now.",
            )
        } else {
            invalid(Reason::InactiveToken, "The token is not active.")
        })
    }
}

/// A time member of an introspection answer: absent, or a non-negative integer.
fn integer_time(value: &Value, name: &str) -> Result<Option<u64>, GatewayError> {
    match value.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            invalid(
                Reason::MalformedClaim,
                "A time in the introspection answer is not an integer.",
            )
        }),
    }
}

/// The identity an active answer describes, and how long it may be cached.
fn identity_from(
    value: &Value,
    cache_ttl: Duration,
    names: &IdentityHeaders,
) -> Result<(Arc<Identity>, Duration), GatewayError> {
    let now = crate::clock::unix_now();
    // RFC 7662 §2.2: the times are integers. Another type is no exp at all
    // to a lenient reader, which would cache the token for the whole TTL.
    let exp = integer_time(value, "exp")?;
    let iat = integer_time(value, "iat")?;
    integer_time(value, "nbf")?;
    if exp.is_some_and(|e| e <= now) {
        return Err(invalid(Reason::TokenExpired, "The token has expired."));
    }
    let subject = value
        .get("sub")
        .or_else(|| value.get("username"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            invalid(
                Reason::MissingClaim,
                "The introspection answer names no subject.",
            )
        })?;
    let scopes = value
        .get("scope")
        .and_then(Value::as_str)
        .map(|s| s.split_whitespace().map(Arc::from).collect())
        .unwrap_or_default();
    let ttl = match exp {
        Some(e) => cache_ttl.min(Duration::from_secs(e - now)),
        None => cache_ttl,
    };
    let identity = IdentityParts {
        method: Kind::Introspection,
        subject: subject.into(),
        scopes,
        key_id: None,
        issuer: value.get("iss").and_then(Value::as_str).map(Arc::from),
        rate_limit: None,
        token: Some(TokenFacts {
            jti: value.get("jti").and_then(Value::as_str).map(str::to_string),
            iat,
            exp,
        }),
        claims: value.as_object(),
    }
    .build(names)?;
    Ok((Arc::new(identity), ttl))
}
