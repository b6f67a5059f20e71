//! WebSocket (RFC 6455) over HTTP/1.1: an `Upgrade: websocket` request is
//! authenticated and authorized like any other, then, if the upstream
//! answers 101, the two connections are joined byte for byte. RFC 8441
//! (WebSocket over HTTP/2) is not offered.

use http::header::{HeaderValue, CONNECTION, UPGRADE};
use http::{HeaderMap, Request, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Whether the request asks for a WebSocket upgrade (RFC 6455 §4.1).
pub fn requested<B>(req: &Request<B>) -> bool {
    let has_token = |name, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    req.version() == Version::HTTP_11
        && has_token(UPGRADE, "websocket")
        && has_token(CONNECTION, "upgrade")
}

/// Puts back the two hop-by-hop headers an upgrade needs (hop-by-hop
/// removal took them out with everything else).
pub fn restore_headers(headers: &mut HeaderMap) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
}

/// Joins the caller's and the upstream's upgraded connections until either closes.
pub async fn tunnel(client: OnUpgrade, upstream: OnUpgrade) {
    match tokio::join!(client, upstream) {
        (Ok(client), Ok(upstream)) => {
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(error = %e, "websocket tunnel ended with an error");
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::debug!(error = %e, "websocket upgrade did not complete")
        }
    }
}
