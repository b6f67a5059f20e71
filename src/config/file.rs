//! The serde mirror of `gateway.yaml` (docs/policy.md). No logic lives here: every
//! struct denies unknown fields so a typo can never silently weaken security,
//! and every section has a default so each can be checked on its own.

use super::units::{ByteSize, Duration, Rate};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub server: ServerFile,
    pub admin: Option<AdminFile>,
    pub forward_auth: Option<ForwardAuthFile>,
    pub upstream: Option<UpstreamFile>,
    pub identity: IdentityFile,
    /// Present (even empty) = the kind is configured.
    pub api_keys: Option<ApiKeysFile>,
    pub jwt: Option<Vec<IssuerFile>>,
    pub introspection: Option<Vec<IntrospectionFile>>,
    pub rate_limits: Option<RateLimitsFile>,
    pub revocation: Option<RevocationFile>,
    pub routes: Vec<RouteFile>,
    pub access_log: AccessLogFile,
}

/// `forward_auth`: the decision listener for a front proxy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardAuthFile {
    pub listen: Option<String>,
    pub trusted: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerFile {
    pub listen: Option<String>,
    pub tls: Option<TlsFile>,
    /// `auto` or a number of worker threads.
    pub workers: Option<serde_yaml::Value>,
    pub header_read_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub max_header_bytes: Option<ByteSize>,
    pub max_body_bytes: Option<ByteSize>,
    pub shutdown_grace: Option<Duration>,
    pub trusted_proxies: Vec<String>,
    /// Open client connections at most; more wait in the backlog.
    pub max_connections: Option<usize>,
    /// Longest pause inside a request body (408 past it).
    pub body_timeout: Option<Duration>,
    /// Entries of the verified-token cache.
    pub token_cache_entries: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsFile {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub generate_self_signed: bool,
    pub min_version: Option<String>,
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminFile {
    pub listen: Option<String>,
    pub token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamFile {
    pub url: Option<String>,
    pub connect_timeout: Option<Duration>,
    pub timeout: Option<Duration>,
    pub ca: Option<PathBuf>,
    pub pass_credentials: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityFile {
    pub subject: Option<String>,
    pub method: Option<String>,
    pub scopes: Option<String>,
    pub key_id: Option<String>,
    pub issuer: Option<String>,
    pub claims: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysFile {
    pub header: Option<String>,
    pub keys: Vec<ApiKeyFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeyFile {
    pub id: String,
    pub subject: Option<String>,
    pub sha256: String,
    pub scopes: Vec<String>,
    /// RFC 3339 timestamp; YAML may hand it over unquoted, so it stays a string here.
    pub expires: Option<String>,
    pub disabled: bool,
    pub rate_limit: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerFile {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    pub jwks_url: Option<String>,
    pub discovery_url: Option<String>,
    pub jwks_file: Option<PathBuf>,
    pub hs_secret_env: Option<String>,
    pub ca: Option<PathBuf>,
    pub jwks_refresh: Option<Duration>,
    pub leeway: Option<Duration>,
    pub scope_claim: Option<String>,
    pub subject_claim: Option<String>,
    pub require_claims: Option<Vec<String>>,
    pub max_lifetime: Option<Duration>,
    pub rate_limit: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntrospectionFile {
    pub endpoint: String,
    pub client_id: String,
    pub client_secret_env: Option<String>,
    pub cache_ttl: Option<Duration>,
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsFile {
    pub backend: Option<String>,
    pub redis_url_env: Option<String>,
    pub default: Option<LimitFile>,
    pub limits: BTreeMap<String, LimitFile>,
    pub failed_auth_per_ip: Option<LimitFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitFile {
    pub rate: Rate,
    pub burst: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationFile {
    pub backend: Option<String>,
    /// Live entries kept at most; a revocation past it is refused.
    pub max_entries: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteFile {
    pub name: Option<String>,
    pub path: String,
    pub methods: Option<Vec<String>>,
    /// `none`, or a list of credential kinds.
    pub auth: Option<serde_yaml::Value>,
    pub scopes: Vec<String>,
    pub rate_limit: Option<String>,
    /// WebSocket upgrades pass on this route (and only on routes that say so).
    pub websocket: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLogFile {
    pub format: Option<String>,
    pub output: Option<String>,
}
