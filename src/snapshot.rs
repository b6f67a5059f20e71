//! The compiled, immutable policy. Built once per load off the hot path;
//! requests read it through one `ArcSwap` load.

use crate::access_log::AccessLogSettings;
use crate::auth::AuthPolicy;
use crate::forward::UpstreamSettings;
use crate::pipeline::route::RouteTable;
use crate::tls::TlsSettings;
use arc_swap::ArcSwap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
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
    pub server: ServerSettings,
    pub upstream: UpstreamSettings,
    pub auth: AuthPolicy,
    pub routes: RouteTable,
    /// Answers to browser apps on other origins (docs/policy.md `cors`).
    pub cors: crate::pipeline::cors::CorsPolicy,
    pub access_log: AccessLogSettings,
    pub admin: Option<AdminSettings>,
    /// The decision listener for a front proxy (docs/forward-auth.md).
    pub forward_auth: Option<ForwardAuthSettings>,
    pub limits: crate::ratelimit::LimitPolicy,
    /// Set when `rate_limits.backend: redis`.
    pub redis_url: Option<crate::secret::Secret<String>>,
    /// `revocation.max_entries`.
    pub revocation_max_entries: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardAuthSettings {
    pub listen: SocketAddr,
    /// Peers whose `X-Forwarded-*` / `X-Original-*` headers are believed.
    pub trusted: Vec<IpNet>,
}

impl ForwardAuthSettings {
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted.iter().any(|net| net.contains(&peer))
    }
}

#[derive(Debug)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    pub token: Option<crate::secret::Secret<String>>,
    /// `admin.dashboard`: the page, `/stats`, and the collection behind them.
    pub dashboard: bool,
}

impl Snapshot {
    /// Whether requests feed the dashboard's window.
    pub fn collects_stats(&self) -> bool {
        self.admin.as_ref().is_some_and(|a| a.dashboard)
    }
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

impl ServerSettings {
    /// Whether X-Forwarded-For from this peer is believed (docs/policy.md `trusted_proxies`).
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        // A dual-stack listener sees an IPv4 peer as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// The live policy: swapped whole on reload, read once per request.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

#[cfg(test)]
mod tests {
    #[test]
    fn a_trusted_ipv4_proxy_is_trusted_as_an_ipv4_mapped_ipv6_peer_too() {
        let text = "server:\n  tls: {cert: c.pem, key: k.pem}\n  trusted_proxies: [10.0.0.0/8]\nupstream: {url: echo}\nroutes:\n  - {path: /x, auth: none}\n";
        let loaded = crate::config::load_str(text, std::path::Path::new("t.yaml"), &|_| None)
            .unwrap_or_else(|e| panic!("{e}"));
        let server = &loaded.snapshot.server;
        for (peer, trusted) in [
            ("10.1.2.3", true),
            ("::ffff:10.1.2.3", true),
            ("::ffff:192.0.2.1", false),
            ("192.0.2.1", false),
        ] {
            let ip: std::net::IpAddr = peer.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(server.is_trusted_proxy(ip), trusted, "{peer}");
        }
    }
}
