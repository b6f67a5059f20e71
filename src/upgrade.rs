//! WebSocket (RFC 6455) over HTTP/1.1, on routes with `websocket: true`
//! only: an `Upgrade: websocket` request is authenticated and authorized
//! like any other, and the two connections are joined byte for byte only
//! when the upstream really accepted a WebSocket (101, `Upgrade: websocket`,
//! the `Sec-WebSocket-Accept` of the request's key). Anything else that
//! answers 101 would hand the caller a raw channel to the upstream past
//! every later check. RFC 8441 (WebSocket over HTTP/2) is not offered.

use base64::Engine;
use http::header::{HeaderValue, CONNECTION, UPGRADE};
use http::{HeaderMap, Request, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const SEC_WEBSOCKET_KEY: &str = "sec-websocket-key";
const SEC_WEBSOCKET_ACCEPT: &str = "sec-websocket-accept";
/// RFC 6455 §1.3: appended to the key before hashing.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The `Sec-WebSocket-Accept` an upstream must answer for this request,
/// when the request asks for a WebSocket upgrade (RFC 6455 §4.1).
pub fn expected_accept<B>(req: &Request<B>) -> Option<String> {
    let headers = req.headers();
    if req.version() != Version::HTTP_11
        || !has_token(headers, UPGRADE, "websocket")
        || !has_token(headers, CONNECTION, "upgrade")
    {
        return None;
    }
    let key = headers.get(SEC_WEBSOCKET_KEY)?.as_bytes();
    let mut input = key.to_vec();
    input.extend_from_slice(ACCEPT_GUID.as_bytes());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    Some(base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
}

/// Whether a 101 is the WebSocket the caller asked for (RFC 6455 §4.2.2).
pub fn accepted(response: &HeaderMap, expected: &str) -> bool {
    has_token(response, UPGRADE, "websocket")
        && response
            .get(SEC_WEBSOCKET_ACCEPT)
            .is_some_and(|v| v.as_bytes() == expected.as_bytes())
}

/// Puts back the two hop-by-hop headers an upgrade needs (hop-by-hop
/// removal took them out with everything else).
pub fn restore_headers(headers: &mut HeaderMap) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
}

/// Joins the caller's and the upstream's upgraded connections until either
/// closes, no byte moved either way for `idle`, or `grace_over` turns true
/// (shutdown grace spent). `hold` keeps the connection counted (so within
/// `max_connections`) meanwhile.
pub async fn tunnel<H: Send + 'static>(
    client: OnUpgrade,
    upstream: OnUpgrade,
    idle: Duration,
    hold: H,
    mut grace_over: tokio::sync::watch::Receiver<bool>,
) {
    let _hold = hold;
    let (client, upstream) = match tokio::join!(client, upstream) {
        (Ok(c), Ok(u)) => (TokioIo::new(c), TokioIo::new(u)),
        (Err(e), _) | (_, Err(e)) => {
            tracing::debug!(error = %e, "websocket upgrade did not complete");
            return;
        }
    };
    let epoch = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let (client_read, client_write) = tokio::io::split(client);
    let (upstream_read, upstream_write) = tokio::io::split(upstream);
    let up = pump(client_read, upstream_write, epoch, last.clone());
    let down = pump(upstream_read, client_write, epoch, last.clone());
    let quiet = async {
        loop {
            let since = epoch
                .elapsed()
                .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
            if since >= idle {
                return;
            }
            tokio::time::sleep(idle - since).await;
        }
    };
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = quiet => tracing::debug!("websocket tunnel closed after idle_timeout"),
        _ = grace_over.wait_for(|over| *over) => {
            tracing::debug!("websocket tunnel closed: shutdown grace over");
        }
    }
}

/// Copies one direction, stamping the time of every chunk.
async fn pump<R, W>(mut from: R, mut to: W, epoch: Instant, last: Arc<AtomicU64>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        last.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
