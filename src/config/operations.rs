//! Compiling the operational sections: `rate_limits` (and the limit names
//! keys, issuers and routes refer to) and `admin`.

use super::diagnostics::Diagnostics;
use super::file;
use super::values::parse_addr;
use crate::auth::api_key::ApiKeyIndex;
use crate::ratelimit::{LimitPolicy, LimitSpec};
use crate::secret::Secret;
use crate::snapshot::{AdminSettings, ForwardAuthSettings};

pub(super) fn unknown_limit(name: &str, limits: &LimitPolicy) -> String {
    let mut known: Vec<&str> = limits.named.keys().map(String::as_str).collect();
    known.sort_unstable();
    if known.is_empty() {
        format!("`{name}` names a limit, but `rate_limits.limits` defines none")
    } else {
        format!(
            "`{name}` is not a limit in `rate_limits.limits` (known: {})",
            known.join(", ")
        )
    }
}

/// Keys and issuers may name their own limit; each name must exist.
pub(super) fn check_limit_names(
    keys: &ApiKeyIndex,
    jwt: &crate::auth::jwt::JwtVerifier,
    limits: &LimitPolicy,
    diag: &mut Diagnostics,
) {
    let mut named: Vec<(String, &str)> = Vec::new();
    for entry in keys.by_digest.values() {
        if let (Some(limit), Some(id)) = (&entry.identity.rate_limit, &entry.identity.key_id) {
            named.push((format!("key `{id}`"), limit));
        }
    }
    for issuer in jwt.issuers.values() {
        if let Some(limit) = &issuer.rate_limit {
            named.push((format!("issuer `{}`", issuer.issuer), limit));
        }
    }
    for (who, limit) in named {
        if !limits.named.contains_key(limit) {
            diag.error(
                "rate_limits",
                format!("{who}: {}", unknown_limit(limit, limits)),
            );
        }
    }
}

fn limit(f: &file::LimitFile, path: &str, diag: &mut Diagnostics) -> LimitSpec {
    if f.burst == Some(0) {
        diag.error(path, "`burst` must be at least 1");
    }
    LimitSpec::new(f.rate, f.burst)
}

pub(super) fn rate_limits(
    f: Option<file::RateLimitsFile>,
    diag: &mut Diagnostics,
    env: &dyn Fn(&str) -> Option<String>,
) -> (LimitPolicy, Option<Secret<String>>) {
    let Some(f) = f else {
        return (LimitPolicy::default(), None);
    };
    let mut policy = LimitPolicy {
        default: f
            .default
            .as_ref()
            .map(|l| limit(l, "rate_limits.default", diag)),
        failed_auth_per_ip: f
            .failed_auth_per_ip
            .as_ref()
            .map(|l| limit(l, "rate_limits.failed_auth_per_ip", diag)),
        anonymous: f
            .anonymous
            .as_ref()
            .map(|l| limit(l, "rate_limits.anonymous", diag)),
        ..Default::default()
    };
    for (name, l) in &f.limits {
        let spec = limit(l, &format!("rate_limits.limits.{name}"), diag);
        policy.named.insert(name.clone(), spec);
    }
    let redis_url = match f.backend.as_deref() {
        None | Some("memory") => None,
        Some("redis") => {
            let var = f.redis_url_env.as_deref().unwrap_or("AUTHGATE_REDIS_URL");
            match env(var) {
                Some(url) if redis::Client::open(url.as_str()).is_ok() => Some(Secret::new(url)),
                Some(_) => {
                    diag.error(
                        "rate_limits.redis_url_env",
                        format!("{var} does not hold a Redis URL such as redis://127.0.0.1:6379/"),
                    );
                    None
                }
                None => {
                    diag.error("rate_limits.backend", format!("`backend: redis` needs the Redis URL in {var}; export it, e.g. {var}=redis://127.0.0.1:6379/"));
                    None
                }
            }
        }
        Some(other) => {
            diag.error(
                "rate_limits.backend",
                format!("`{other}` is not a backend; write `memory` or `redis`"),
            );
            None
        }
    };
    (policy, redis_url)
}

/// How long an admin bearer token must be at least.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 16;
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";

pub(super) fn admin(
    f: Option<file::AdminFile>,
    diag: &mut Diagnostics,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<AdminSettings> {
    let f = f?;
    let listen = parse_addr(
        f.listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN),
        "admin.listen",
        diag,
    )?;
    if !listen.ip().is_loopback() {
        // /metrics and /readyz answer anyone who can reach the port.
        diag.warning("admin.listen", format!("the admin listener {listen} is not on loopback: /healthz, /readyz and /metrics answer without a token to anyone who can reach it (plain HTTP); bind it to 127.0.0.1 or firewall the port"));
    }
    let var = f.token_env.as_deref().unwrap_or("AUTHGATE_ADMIN_TOKEN");
    let token = match env(var) {
        Some(t) if t.len() >= MIN_ADMIN_TOKEN_BYTES => Some(Secret::new(t)),
        Some(t) => {
            diag.error("admin.token_env", format!("the admin token in {var} is {} bytes; it must be at least {MIN_ADMIN_TOKEN_BYTES}", t.len()));
            None
        }
        None => {
            diag.error("admin", format!("the admin API needs a bearer token in {var}; export it (e.g. {var}=$(head -c 24 /dev/urandom | base64))"));
            None
        }
    };
    Some(AdminSettings {
        listen,
        token,
        dashboard: f.dashboard.unwrap_or(true),
    })
}

pub const DEFAULT_FORWARD_AUTH_LISTEN: &str = "127.0.0.1:9091";

/// `forward_auth`. Its port may be neither the main nor the admin one, and
/// only `trusted` peers (default loopback) are heard.
pub(super) fn forward_auth(
    f: Option<file::ForwardAuthFile>,
    server: Option<&crate::snapshot::ServerSettings>,
    admin: Option<&AdminSettings>,
    diag: &mut Diagnostics,
) -> Option<ForwardAuthSettings> {
    let f = f?;
    let listen = parse_addr(
        f.listen.as_deref().unwrap_or(DEFAULT_FORWARD_AUTH_LISTEN),
        "forward_auth.listen",
        diag,
    )?;
    let clash = |other: std::net::SocketAddr| other.port() == listen.port() && other.port() != 0;
    if server.is_some_and(|s| clash(s.listen)) {
        diag.error("forward_auth.listen", format!("`{listen}` is the port of `server.listen`; the decision listener needs a port of its own (e.g. 127.0.0.1:9091)"));
    } else if admin.is_some_and(|a| clash(a.listen)) {
        diag.error("forward_auth.listen", format!("`{listen}` is the port of `admin.listen`; the decision listener needs a port of its own (e.g. 127.0.0.1:9091)"));
    }
    if !listen.ip().is_loopback() {
        diag.warning("forward_auth.listen", format!("the decision listener {listen} is not on loopback: it is plain HTTP and must be reachable only by the front proxy; firewall the port and list the proxy in `trusted`"));
    }
    let trusted = match &f.trusted {
        Some(list) => super::values::cidrs(list, "forward_auth.trusted", diag),
        None => ["127.0.0.0/8", "::1/128"]
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect(),
    };
    Some(ForwardAuthSettings { listen, trusted })
}
