//! Compiling `sessions` (docs/sign-in.md): the provider becomes a JWT
//! issuer for its ID tokens (keys from its discovery document, `aud` =
//! `client_id`), the key from `key_env` a sealing key, the paths checked.

use super::diagnostics::Diagnostics;
use super::file::{IssuerFile, SessionsFile};
use super::values::parse_url;
use crate::auth::session::cookies::SealKey;
use crate::auth::session::provider::Client;
use crate::auth::session::store::{Backend, StoreSettings};
use crate::auth::session::{is_local_path, SessionPolicy};
use crate::ratelimit::LimitPolicy;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(12 * 3600);
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// The sealing key's minimum: 256 bits.
pub const MIN_KEY_BYTES: usize = 32;
/// What providers sign ID tokens with (HMAC is never accepted: the
/// provider's keys are public).
const ID_TOKEN_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

static GENERATION: AtomicU64 = AtomicU64::new(1);

fn path_setting(value: Option<String>, default: &str, at: &str, diag: &mut Diagnostics) -> String {
    let value = value.unwrap_or_else(|| default.to_string());
    if !is_local_path(&value) || value.contains('?') || value.contains('#') {
        diag.error(
            at,
            format!("`{value}` is not a local path; write one that starts with a single `/`, such as `{default}`"),
        );
    }
    value
}

/// `provider`, `client_id` and `scopes`: who signs people in, and for what.
fn check_provider(f: &SessionsFile, diag: &mut Diagnostics) -> Vec<String> {
    if f.provider.is_empty() {
        diag.error("sessions.provider", "`provider` is required: the issuer URL of your OpenID provider, e.g. https://idp.example.com/");
    } else if parse_url(&f.provider, "sessions.provider", diag).is_some()
        && !f.provider.starts_with("https://")
    {
        diag.error("sessions.provider", "the provider must be an https:// URL: the authorization code and the client secret travel to it");
    }
    if f.client_id.is_empty() {
        diag.error(
            "sessions.client_id",
            "`client_id` is required: the client id registered at the provider",
        );
    }
    let scopes = f
        .scopes
        .clone()
        .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
    super::values::check_scopes(&scopes, "sessions.scopes", diag);
    if !scopes.iter().any(|s| s == "openid") {
        diag.error(
            "sessions.scopes",
            "`scopes` must include `openid`: without it the provider sends no ID token",
        );
    }
    scopes
}

/// The gateway's own paths and the cookie's name.
struct Paths {
    callback: String,
    logout: String,
    post_logout_redirect: String,
    cookie: String,
}

fn paths(f: &SessionsFile, diag: &mut Diagnostics) -> Paths {
    let callback = path_setting(
        f.callback_path.clone(),
        "/_authgate/callback",
        "sessions.callback_path",
        diag,
    );
    let logout = path_setting(
        f.logout_path.clone(),
        "/_authgate/logout",
        "sessions.logout_path",
        diag,
    );
    if callback == logout {
        diag.error(
            "sessions.logout_path",
            "`logout_path` and `callback_path` must differ",
        );
    }
    let post_logout_redirect = path_setting(
        f.post_logout_redirect.clone(),
        "/",
        "sessions.post_logout_redirect",
        diag,
    );
    let cookie = f.cookie.clone().unwrap_or_else(|| "__Host-authgate".into());
    let cookie_chars = cookie
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !cookie.starts_with("__Host-") || !cookie_chars {
        diag.error("sessions.cookie", format!("`{cookie}` cannot be the session cookie; its name must start with `__Host-` (the browser then keeps it to this host, over https, for every path) and use only letters, digits, `-` and `_`"));
    }
    Paths {
        callback,
        logout,
        post_logout_redirect,
        cookie,
    }
}

/// `store`, its bound and the two lifetimes.
fn store_settings(
    f: &SessionsFile,
    redis_configured: bool,
    diag: &mut Diagnostics,
) -> StoreSettings {
    let backend = match f.store.as_deref() {
        None | Some("memory") => Backend::Memory,
        Some("redis") => {
            if !redis_configured {
                diag.error("sessions.store", "`store: redis` uses the Redis of `rate_limits`; set `rate_limits.backend: redis` and `redis_url_env` too");
            }
            Backend::Redis
        }
        Some(other) => {
            diag.error(
                "sessions.store",
                format!("`{other}` is not a store; write `memory` or `redis`"),
            );
            Backend::Memory
        }
    };
    let max_entries = match f.max_entries {
        Some(0) => {
            diag.error(
                "sessions.max_entries",
                "`max_entries: 0` would keep no session; give at least 1 (default 100000)",
            );
            DEFAULT_MAX_ENTRIES
        }
        Some(n) => n,
        None => DEFAULT_MAX_ENTRIES,
    };
    StoreSettings {
        backend,
        idle_timeout: f.idle_timeout.map_or(DEFAULT_IDLE_TIMEOUT, |d| d.0),
        max_lifetime: f.max_lifetime.map_or(DEFAULT_MAX_LIFETIME, |d| d.0),
        max_entries,
    }
}

/// The provider as a JWT issuer of ID tokens: keys from its discovery
/// document, `aud` = `client_id`, `exp`, `iat` and `sub` required.
fn id_token_issuer(f: &SessionsFile) -> IssuerFile {
    IssuerFile {
        issuer: f.provider.clone(),
        audiences: vec![f.client_id.clone()],
        algorithms: ID_TOKEN_ALGORITHMS.iter().map(|a| a.to_string()).collect(),
        discovery_url: Some(format!(
            "{}/.well-known/openid-configuration",
            f.provider.trim_end_matches('/')
        )),
        ca: f.ca.clone(),
        scope_claim: f.scope_claim.clone(),
        require_claims: Some(vec!["exp".into(), "iat".into(), "sub".into()]),
        ..IssuerFile::default()
    }
}

pub(super) fn sessions(
    f: SessionsFile,
    limits: &LimitPolicy,
    redis_configured: bool,
    diag: &mut Diagnostics,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<SessionPolicy> {
    let errors_before = diag.error_count();
    let scopes = check_provider(&f, diag);
    let client_secret = f.client_secret_env.as_deref().and_then(|var| {
        super::tokens::secret_from_env(var, "sessions.client_secret_env", 1, env, diag)
    });
    let key = if f.key_env.is_empty() {
        diag.error("sessions.key_env", "`key_env` is required: a variable holding at least 32 random bytes (e.g. `openssl rand -base64 48`), the same on every replica");
        None
    } else {
        super::tokens::secret_from_env(&f.key_env, "sessions.key_env", MIN_KEY_BYTES, env, diag)
    };
    let paths = paths(&f, diag);
    let store = store_settings(&f, redis_configured, diag);
    if let Some(name) = &f.rate_limit {
        if !limits.named.contains_key(name) {
            diag.error(
                "sessions.rate_limit",
                format!("`{name}` is not a limit of `rate_limits.limits`"),
            );
        }
    }
    if diag.error_count() > errors_before {
        return None;
    }
    let at = |field: &str| format!("sessions.{field}");
    let id_tokens = super::tokens::issuer(id_token_issuer(&f), &at, diag, resolve, env)?;
    Some(SessionPolicy {
        provider: f.provider.as_str().into(),
        client: Client {
            id: f.client_id,
            secret: client_secret,
        },
        ca: f.ca.map(resolve),
        offline: scopes.iter().any(|s| s == "offline_access"),
        scopes: scopes.join(" "),
        id_tokens,
        callback_path: paths.callback,
        logout_path: paths.logout,
        post_logout_redirect: paths.post_logout_redirect,
        cookie: paths.cookie,
        seal: SealKey::derive(key?.expose().as_bytes()),
        store,
        rate_limit: f.rate_limit.as_deref().map(Arc::from),
        generation: GENERATION.fetch_add(1, Ordering::Relaxed),
    })
}
