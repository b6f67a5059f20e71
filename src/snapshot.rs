//! The compiled, immutable policy. Built once per load off the hot path;
//! requests read it through one `ArcSwap` load.

use crate::auth::api_key::ApiKeyIndex;
use crate::auth::introspection::Introspector;
use crate::auth::jwt::JwtVerifier;
use crate::pipeline::route::RouteTable;
use arc_swap::ArcSwap;
use http::HeaderName;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// The policy every request is judged by.
#[derive(Debug)]
pub struct Snapshot {
    pub source: PathBuf,
    pub server: ServerSettings,
    pub upstream: UpstreamSettings,
    pub identity: IdentityHeaders,
    pub api_keys: ApiKeyIndex,
    pub jwt: JwtVerifier,
    pub introspection: Introspector,
    pub routes: RouteTable,
    pub access_log: AccessLogSettings,
    /// Credential kinds the policy configures (a route's default `auth`).
    pub kinds: KindSet,
    pub admin: Option<AdminSettings>,
    pub limits: crate::ratelimit::LimitPolicy,
    /// Set when `rate_limits.backend: redis`.
    pub redis_url: Option<crate::secret::Secret<String>>,
    /// `revocation.max_entries`.
    pub revocation_max_entries: usize,
}

#[derive(Debug)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    pub token: Option<crate::secret::Secret<String>>,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub tls: TlsSettings,
    /// `None` = one per core.
    pub workers: Option<usize>,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    pub shutdown_grace: Duration,
    pub trusted_proxies: Vec<IpNet>,
    pub max_connections: usize,
    pub body_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub generate_self_signed: bool,
    pub tls13_only: bool,
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub enum UpstreamTarget {
    /// The built-in echo service.
    Echo,
    Http {
        /// `http` or `https`.
        scheme: http::uri::Scheme,
        authority: http::uri::Authority,
        /// Prefix put before every forwarded path; empty for `/`.
        base_path: String,
    },
}

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub target: UpstreamTarget,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub ca: Option<PathBuf>,
    pub pass_credentials: bool,
}

/// Header names the gateway sets upstream, parsed once.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub subject: HeaderName,
    pub method: HeaderName,
    pub scopes: HeaderName,
    pub key_id: HeaderName,
    pub issuer: HeaderName,
    pub claims: Vec<(String, HeaderName)>,
}

impl Default for IdentityHeaders {
    /// The docs/policy.md names.
    fn default() -> Self {
        IdentityHeaders {
            subject: HeaderName::from_static("x-auth-subject"),
            method: HeaderName::from_static("x-auth-method"),
            scopes: HeaderName::from_static("x-auth-scopes"),
            key_id: HeaderName::from_static("x-auth-key-id"),
            issuer: HeaderName::from_static("x-auth-issuer"),
            claims: Vec::new(),
        }
    }
}

impl IdentityHeaders {
    /// Whether a header is one the gateway owns, so a caller may not send it (docs/requests.md step 3).
    pub fn is_reserved(&self, name: &HeaderName) -> bool {
        let n = name.as_str();
        // HeaderName is always lower-case, so one prefix test covers every spelling.
        n.starts_with("x-auth-")
            || *name == self.subject
            || *name == self.method
            || *name == self.scopes
            || *name == self.key_id
            || *name == self.issuer
            || self.claims.iter().any(|(_, h)| h == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    Json,
    Common,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogOutput {
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct AccessLogSettings {
    pub format: AccessLogFormat,
    pub output: AccessLogOutput,
}

/// Credential kinds (docs/policy.md `routes[].auth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindSet {
    pub api_key: bool,
    pub jwt: bool,
    pub introspection: bool,
}

impl KindSet {
    pub fn is_empty(&self) -> bool {
        !(self.api_key || self.jwt || self.introspection)
    }

    /// Bearer tokens are JWTs or opaque tokens.
    pub fn bearer(&self) -> bool {
        self.jwt || self.introspection
    }
}

impl ServerSettings {
    /// Whether X-Forwarded-For from this peer is believed (docs/policy.md `trusted_proxies`).
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// The live policy: swapped whole on reload, read once per request.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;
