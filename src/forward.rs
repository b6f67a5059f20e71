//! The upstream side: keep-alive connections of the gateway's own pool
//! (`upstream_pool`), streaming both ways, with failures classified by
//! source (refused/reset → 502, too slow → 504).

use crate::body::{BodyFlags, LimitedBody};
use crate::error::{GatewayError, Reason};
use crate::upstream_pool::{Checkin, SendFailure, UpstreamPool, MAX_UPSTREAM_HEAD_BYTES};
use http::{Request, Response};
use hyper::body::Incoming;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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

/// Sends requests to the upstream of the policy in force: one pool of
/// connections for its origin, replaced when a reload names another.
pub struct Forwarder {
    tls: Arc<rustls::ClientConfig>,
    pool: arc_swap::ArcSwapOption<UpstreamPool<LimitedBody>>,
}

impl Forwarder {
    pub fn new(settings: &UpstreamSettings) -> Result<Forwarder, crate::tls::CaBundleError> {
        let mut tls = crate::tls::client_tls_config(settings.ca.as_deref())?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Forwarder {
            tls: Arc::new(tls),
            pool: arc_swap::ArcSwapOption::empty(),
        })
    }

    /// The pool for `scheme://authority`, made on first use.
    fn pool_for(
        &self,
        scheme: &http::uri::Scheme,
        authority: &http::uri::Authority,
    ) -> Result<Arc<UpstreamPool<LimitedBody>>, GatewayError> {
        if let Some(pool) = &*self.pool.load() {
            if pool.origin.scheme == *scheme && pool.origin.authority == *authority {
                return Ok(pool.clone());
            }
        }
        let origin = crate::upstream_pool::Origin {
            scheme: scheme.clone(),
            authority: authority.clone(),
        };
        let pool = UpstreamPool::new(origin, self.tls.clone()).map_err(|e| {
            tracing::warn!(error = %e, "cannot reach the upstream");
            GatewayError::BadGateway {
                reason: Reason::UpstreamConnectFailed,
            }
        })?;
        let pool = Arc::new(pool);
        self.pool.store(Some(pool.clone()));
        Ok(pool)
    }

    /// Sends the request and waits for the response head within the
    /// policy's `timeout` (read per request, so a reload changes it). The
    /// connection comes back with the response, to be returned to the pool
    /// when its body has ended.
    pub async fn send(
        &self,
        req: Request<LimitedBody>,
        body: &BodyFlags,
        settings: &UpstreamSettings,
    ) -> Result<(Response<Incoming>, Checkin<LimitedBody>), GatewayError> {
        let UpstreamTarget::Http {
            scheme, authority, ..
        } = &settings.target
        else {
            return Err(GatewayError::BadGateway {
                reason: Reason::UpstreamConnectFailed,
            });
        };
        let pool = self.pool_for(scheme, authority)?;
        let sent = pool.send(req, settings.connect_timeout);
        match tokio::time::timeout(settings.timeout, sent).await {
            Err(_) => Err(body.error().unwrap_or(GatewayError::GatewayTimeout)),
            Ok(Ok((response, checkin))) => {
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
                Ok((response, checkin))
            }
            Ok(Err(e)) if body.error().is_some() => {
                tracing::debug!(error = ?e, "request body failed while forwarding");
                Err(body.error().unwrap_or(GatewayError::PayloadTooLarge))
            }
            Ok(Err(SendFailure::Connect(e))) => {
                tracing::warn!(reason = "upstream_connect_failed", error = %e, "upstream request failed");
                Err(GatewayError::BadGateway {
                    reason: Reason::UpstreamConnectFailed,
                })
            }
            Ok(Err(SendFailure::Exchange(e))) => {
                tracing::warn!(reason = "upstream_reset", error = %e, "upstream request failed");
                Err(GatewayError::BadGateway {
                    reason: Reason::UpstreamReset,
                })
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
