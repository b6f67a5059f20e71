//! The upstream side: a pooled keep-alive client, streaming both ways, with
//! failures classified by source (refused/reset → 502, too slow → 504).

use crate::body::{BodyFlags, LimitedBody};
use crate::error::{GatewayError, Reason};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::path::PathBuf;
use std::time::Duration;

/// How long an idle upstream connection stays in the pool.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// An upstream response head larger than this is a 502, not a memory sink.
pub const MAX_UPSTREAM_HEAD_BYTES: usize = 64 * 1024;

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

pub struct Forwarder {
    client: Client<HttpsConnector<HttpConnector>, LimitedBody>,
}

impl Forwarder {
    pub fn new(settings: &UpstreamSettings) -> Result<Forwarder, crate::tls::CaBundleError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.connect_timeout));
        let tls = crate::tls::client_tls_config(settings.ca.as_deref())?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .http1_max_buf_size(MAX_UPSTREAM_HEAD_BYTES)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Forwarder { client })
    }

    /// Sends the request and waits for the response head within `timeout`
    /// (the policy's, read per request so a reload changes it).
    pub async fn send(
        &self,
        req: Request<LimitedBody>,
        body: &BodyFlags,
        timeout: Duration,
    ) -> Result<Response<Incoming>, GatewayError> {
        match tokio::time::timeout(timeout, self.client.request(req)).await {
            Err(_) => Err(body.error().unwrap_or(GatewayError::GatewayTimeout)),
            Ok(Ok(response)) => {
                let head: usize = response
                    .headers()
                    .iter()
                    .map(|(n, v)| n.as_str().len() + v.len() + 4)
                    .sum();
                if head > MAX_UPSTREAM_HEAD_BYTES {
                    tracing::warn!(bytes = head, "upstream response head too large");
                    return Err(GatewayError::BadGateway {
                        reason: Reason::UpstreamHeadTooLarge,
                    });
                }
                Ok(response)
            }
            Ok(Err(e)) if body.error().is_some() => {
                tracing::debug!(error = %e, "request body failed while forwarding");
                Err(body.error().unwrap_or(GatewayError::PayloadTooLarge))
            }
            Ok(Err(e)) => {
                let reason = if e.is_connect() {
                    Reason::UpstreamConnectFailed
                } else {
                    Reason::UpstreamReset
                };
                tracing::warn!(reason = reason.as_str(), error = %e, "upstream request failed");
                Err(GatewayError::BadGateway { reason })
            }
        }
    }
}

/// The upstream URI for a normalized path and the caller's query.
pub fn upstream_uri(
    target: &UpstreamTarget,
    path: &str,
    query: Option<&str>,
) -> Result<http::Uri, GatewayError> {
    let malformed =
        || GatewayError::bad_request(Reason::MalformedPath, "The request path is malformed.");
    let base_path = match target {
        UpstreamTarget::Http { base_path, .. } => base_path.as_str(),
        UpstreamTarget::Echo => "",
    };
    let mut pq =
        String::with_capacity(base_path.len() + path.len() + 1 + query.map_or(0, str::len));
    pq.push_str(base_path);
    pq.push_str(path);
    if let Some(q) = query {
        pq.push('?');
        pq.push_str(q);
    }
    match target {
        UpstreamTarget::Echo => pq.parse().map_err(|_| malformed()),
        UpstreamTarget::Http {
            scheme, authority, ..
        } => http::Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|_| malformed()),
    }
}
