//! Accept loop: TLS handshake, HTTP/1.1 and HTTP/2 on one port (ALPN),
//! per-connection timeouts, and graceful shutdown.

use crate::activity::{head_overdue, idle_expired, Activity, ActivityIo, InFlight};
use crate::pipeline::{self, ConnInfo, GatewayState};
use crate::snapshot::ServerSettings;
use crate::tcp_send::TcpSend;
use crate::write_batch::BatchedWrites;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// HTTP/2 streams one connection may have open at once.
pub const MAX_CONCURRENT_STREAMS: u32 = 100;
/// HTTP/2 streams reset by the client before the gateway saw them, at most.
pub const MAX_PENDING_RESET_STREAMS: usize = 20;
/// HTTP/2 streams the gateway may reset for protocol errors on one connection.
pub const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
/// hyper refuses an HTTP/1 read buffer below this size.
const HYPER_MIN_BUF: usize = 8192;

/// HTTP/1.1 settings from the policy.
fn http1_builder(server: &ServerSettings) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Kept by `drive` (see activity.rs): hyper's would also close a
        // keep-alive connection after this long between two requests.
        .header_read_timeout(None)
        .max_buf_size(server.max_header_bytes.max(HYPER_MIN_BUF))
        // Head and body flattened into one buffer: one TLS record (one
        // seal, one write) per small response instead of one per piece.
        .writev(false)
        .keep_alive(true);
    builder
}

/// HTTP/2 settings from the policy.
fn http2_builder(server: &ServerSettings) -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        // Rapid reset (CVE-2023-44487): a client resetting streams faster
        // than it lets them finish loses its connection.
        .max_pending_accept_reset_streams(MAX_PENDING_RESET_STREAMS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS)
        .max_header_list_size(server.max_header_bytes as u32)
        .keep_alive_interval(Some(server.idle_timeout))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// How often a full accept loop looks at `max_connections` again.
const LIMIT_RECHECK: Duration = Duration::from_millis(250);

/// Counts open connections so shutdown can wait for them and the accept
/// loop can hold to `max_connections`.
#[derive(Clone, Default)]
pub struct Connections(Arc<(AtomicUsize, tokio::sync::Notify)>);

impl Connections {
    fn open(&self) -> ConnGuard {
        self.0 .0.fetch_add(1, Ordering::AcqRel);
        crate::metrics::METRICS.open_connections.inc();
        ConnGuard(self.clone())
    }

    pub fn count(&self) -> usize {
        self.0 .0.load(Ordering::Acquire)
    }

    /// Waits until fewer than `limit()` connections are open. The limit is
    /// asked again now and then, so a reload that raises it lets waiting
    /// connections in without one closing first.
    async fn below(&self, limit: impl Fn() -> usize) {
        loop {
            let notified = self.0 .1.notified();
            if self.count() < limit() {
                return;
            }
            let _ = tokio::time::timeout(LIMIT_RECHECK, notified).await;
        }
    }

    /// Waits until every connection has closed.
    pub async fn drained(&self) {
        loop {
            let notified = self.0 .1.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

struct ConnGuard(Connections);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0 .0 .0.fetch_sub(1, Ordering::AcqRel);
        crate::metrics::METRICS.open_connections.dec();
        self.0 .0 .1.notify_waiters();
    }
}

/// Accepts connections until `shutdown` turns true, then asks every open
/// connection to finish its in-flight requests and close.
pub async fn serve(
    listener: TcpListener,
    state: Arc<GatewayState>,
    connections: Connections,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        // Past `max_connections` (of the policy in force now), new
        // connections wait in the kernel's backlog.
        tokio::select! {
            () = connections.below(|| state.snapshot.load().server.max_connections) => {}
            _ = shutdown.changed() => break,
        }
        let (tcp, peer) = tokio::select! {
            accepted = accept(&listener) => accepted,
            _ = shutdown.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let guard = connections.open();
        tokio::spawn(serve_connection(
            tcp,
            peer,
            guard,
            state.clone(),
            shutdown.clone(),
        ));
    }
}

/// One connection: the TLS handshake (bounded like the headers), then
/// HTTP/1.1 or HTTP/2 until the peer leaves, it idles past `idle_timeout`,
/// or the gateway shuts down (gracefully: requests in flight finish).
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    guard: ConnGuard,
    state: Arc<GatewayState>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Certificates loaded by a reload apply from the next handshake on.
    let acceptor = TlsAcceptor::from(state.tls.load_full());
    // Timeouts and size limits of the policy in force when it was accepted.
    let server = state.snapshot.load().server.clone();
    // A WebSocket tunnel takes a clone: it stays counted after this task ends.
    let hold = pipeline::ConnHold(Arc::new(guard));
    let activity = Activity::new();
    // A client that never finishes its handshake is a slowloris too.
    let tls = match tokio::time::timeout(server.header_read_timeout, acceptor.accept(TcpSend(tcp)))
        .await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let session = tls.get_ref().1;
    // RFC 9113 §3.2: over TLS, HTTP/2 is what ALPN chose; without ALPN the
    // client speaks HTTP/1.1 (as HAProxy and nginx read it too).
    let http2 = session.alpn_protocol() == Some(b"h2");
    let conn = Arc::new(ConnInfo {
        peer,
        tls_version: crate::tls::version_name(session.protocol_version()),
        // Read once per connection; rustls has verified it already.
        client_cert: session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| crate::auth::mtls::ClientCert::from_der(leaf)),
        hold,
    });
    // Like nginx, nothing of HTTP (read buffer, parser, h2 state) exists
    // until the client sends its first byte: a connection opened ahead of
    // need, or held idle, costs only its socket and TLS state. rustls may
    // already hold decrypted bytes that came with the handshake; then
    // there is nothing to wait for.
    if session.wants_read() {
        tokio::select! {
            readable = tls.get_ref().0 .0.readable() => if readable.is_err() { return },
            () = idle_expired(activity.clone(), server.idle_timeout) => return,
            _ = shutdown.changed() => return,
        }
    }
    let io = ActivityIo {
        inner: tls,
        activity: activity.clone(),
        heads: !http2,
    };
    let service_activity = activity.clone();
    let service = service_fn(move |req| {
        let in_flight = InFlight::new(&service_activity);
        // Boxed once here: hyper moves the service future (into its HTTP/1
        // dispatcher, or into a new task per HTTP/2 stream), and moving a
        // pointer is cheaper than copying the whole request future each time.
        let handled = Box::pin(pipeline::handle(
            state.clone(),
            conn.clone(),
            Some(in_flight),
            req,
        ));
        async move { Ok::<_, Infallible>(handled.await) }
    });
    let mut watch = Watch {
        activity,
        idle: server.idle_timeout,
        head: None,
    };
    // Boxed: the connection's HTTP state is allocated now, not at accept.
    if http2 {
        let io = TokioIo::new(BatchedWrites::new(io));
        let connection = http2_builder(&server).serve_connection(io, service);
        Box::pin(drive(
            connection,
            |c| c.graceful_shutdown(),
            watch,
            shutdown,
            peer,
        ))
        .await;
    } else {
        watch.head = Some(server.header_read_timeout);
        let connection = http1_builder(&server)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        Box::pin(drive(
            connection,
            |c| c.graceful_shutdown(),
            watch,
            shutdown,
            peer,
        ))
        .await;
    }
}

/// What `drive` watches a connection for.
struct Watch {
    activity: Arc<Activity>,
    idle: Duration,
    /// HTTP/1.1: how long a request head may take to arrive.
    head: Option<Duration>,
}

/// Runs one HTTP connection to its end; past `idle_timeout` without
/// traffic, or when the gateway shuts down, asks it to finish the requests
/// in flight and close. A request head slower than `header_read_timeout`
/// closes it at once: the head would never be answered.
async fn drive<C>(
    connection: C,
    graceful_shutdown: impl Fn(Pin<&mut C>),
    watch: Watch,
    mut shutdown: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
) where
    C: Future<Output = Result<(), hyper::Error>>,
{
    tokio::pin!(connection);
    let idle = idle_expired(watch.activity.clone(), watch.idle);
    tokio::pin!(idle);
    let head = head_overdue(watch.activity, watch.head.unwrap_or(Duration::MAX));
    tokio::pin!(head);
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            () = &mut head, if watch.head.is_some() => {
                tracing::debug!(%peer, "request head not complete within header_read_timeout");
                break;
            }
            _ = &mut idle, if !closing => {
                graceful_shutdown(connection.as_mut());
                closing = true;
            }
            _ = shutdown.changed(), if !closing => {
                graceful_shutdown(connection.as_mut());
                closing = true;
            }
        }
    }
}

/// The next connection. An accept error (EMFILE and friends) is logged and
/// waited out for a moment instead of spinning on it.
pub async fn accept(listener: &TcpListener) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// The pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
