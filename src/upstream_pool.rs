//! Keep-alive HTTP/1.1 connections to the upstream, held by the gateway
//! itself: a stack of idle hyper `SendRequest`s for the one upstream origin.
//! A connection goes back on the stack when its response body has ended
//! (`PooledBody`), so no task or timer is needed per request; one whose
//! response was abandoned, upgraded or failed is dropped, which closes it.

use crate::tcp_send::TcpSend;
use http::header::HOST;
use http::{HeaderValue, Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// How long an idle upstream connection stays in the pool.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept at most; more are closed when they come back.
pub const MAX_IDLE: usize = 1024;
/// An upstream response head larger than this is a 502, not a memory sink.
pub const MAX_UPSTREAM_HEAD_BYTES: usize = 64 * 1024;

/// Where the pool's connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
}

/// Why a request did not get a response head.
#[derive(Debug)]
pub enum SendFailure {
    /// No connection could be opened (refused, unreachable, TLS, timeout).
    Connect(String),
    /// The request was sent, or could not be, on an open connection.
    Exchange(hyper::Error),
}

/// What a request body must be to go upstream (the gateway sends its
/// `LimitedBody`; the pool does not need to know it).
pub trait RequestBody:
    Body<Data = bytes::Bytes, Error: Into<BoxError>> + Send + Unpin + 'static
{
}
impl<B: Body<Data = bytes::Bytes, Error: Into<BoxError>> + Send + Unpin + 'static> RequestBody
    for B
{
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The idle connections to one origin.
pub struct UpstreamPool<B> {
    pub origin: Origin,
    /// `Host` of every request: the upstream's own authority.
    host: HeaderValue,
    /// `host:port` to connect to.
    address: String,
    /// For an `https` origin: the TLS client and the name to verify.
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    idle: Mutex<Vec<Idle<B>>>,
}

struct Idle<B> {
    sender: SendRequest<B>,
    since: u64,
}

impl<B: RequestBody> UpstreamPool<B> {
    pub fn new(origin: Origin, tls: Arc<rustls::ClientConfig>) -> Result<UpstreamPool<B>, String> {
        let https = origin.scheme == http::uri::Scheme::HTTPS;
        let host = origin.authority.host();
        let port = origin
            .authority
            .port_u16()
            .unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let name = host.trim_start_matches('[').trim_end_matches(']');
            let name = rustls::pki_types::ServerName::try_from(name.to_string())
                .map_err(|e| format!("`{host}` is not a TLS server name: {e}"))?;
            Some((tokio_rustls::TlsConnector::from(tls), name))
        } else {
            None
        };
        Ok(UpstreamPool {
            host: HeaderValue::from_str(origin.authority.as_str())
                .map_err(|e| format!("the upstream authority is not a Host value: {e}"))?,
            address: format!("{host}:{port}"),
            origin,
            tls,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `req` (its URI absolute, for this origin) on an idle connection,
    /// or on a new one. A pooled connection that closed before the request
    /// went out is passed over; the request then goes on the next one.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<B>,
        connect_timeout: Duration,
    ) -> Result<(Response<Incoming>, Checkin<B>), SendFailure> {
        // Origin-form target, and the upstream's own authority as Host.
        if let Some(pq) = req.uri().path_and_query().cloned() {
            let mut parts = http::uri::Parts::default();
            parts.path_and_query = Some(pq);
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
        req.headers_mut().insert(HOST, self.host.clone());
        while let Some(mut sender) = self.take_idle() {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(response) => return Ok((response, self.checkin(sender))),
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(SendFailure::Exchange(failed.into_error())),
                },
            }
        }
        // Boxed: a connect (and TLS handshake) is rare on a warm pool, and
        // its future is large.
        let mut sender = Box::pin(self.connect(connect_timeout)).await?;
        match sender.try_send_request(req).await {
            Ok(response) => Ok((response, self.checkin(sender))),
            Err(failed) => Err(SendFailure::Exchange(failed.into_error())),
        }
    }

    fn checkin(self: &Arc<Self>, sender: SendRequest<B>) -> Checkin<B> {
        Checkin {
            sender,
            pool: self.clone(),
        }
    }

    /// The most recently used idle connection (its socket and TLS state are
    /// the warmest); ones idle too long are closed on the way.
    fn take_idle(&self) -> Option<SendRequest<B>> {
        let now = crate::clock::coarse_unix_now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(entry) = idle.pop() {
            if entry.sender.is_closed() || now > entry.since + POOL_IDLE_TIMEOUT.as_secs() {
                continue;
            }
            return Some(entry.sender);
        }
        None
    }

    fn give_back(&self, sender: SendRequest<B>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                sender,
                since: crate::clock::coarse_unix_now(),
            });
        }
    }

    /// A new connection: TCP (no Nagle), TLS for `https`, the HTTP/1.1
    /// handshake, all within `connect_timeout`; its task runs on its own.
    async fn connect(&self, limit: Duration) -> Result<SendRequest<B>, SendFailure> {
        let connecting = async {
            let tcp = tokio::net::TcpStream::connect(&self.address)
                .await
                .map_err(|e| e.to_string())?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                None => handshake(TcpSend(tcp)).await,
                Some((connector, name)) => {
                    let tls = connector
                        .connect(name.clone(), TcpSend(tcp))
                        .await
                        .map_err(|e| format!("TLS: {e}"))?;
                    handshake(tls).await
                }
            }
        };
        match tokio::time::timeout(limit, connecting).await {
            Ok(Ok(sender)) => Ok(sender),
            Ok(Err(e)) => Err(SendFailure::Connect(e)),
            Err(_) => Err(SendFailure::Connect(format!(
                "no connection within {}",
                humantime::format_duration(limit)
            ))),
        }
    }
}

async fn handshake<T, B>(io: T) -> Result<SendRequest<B>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    B: RequestBody,
{
    let (sender, connection) = http1::Builder::new()
        .max_buf_size(MAX_UPSTREAM_HEAD_BYTES)
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

/// A connection lent to one exchange, returned when its response has ended.
pub struct Checkin<B> {
    sender: SendRequest<B>,
    pool: Arc<UpstreamPool<B>>,
}

impl<B> std::fmt::Debug for Checkin<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Checkin")
    }
}

/// The upstream's response body; its connection goes back to the pool when
/// the body ends, and closes if the body is dropped before that.
pub struct PooledBody<B: RequestBody> {
    body: Incoming,
    checkin: Option<Checkin<B>>,
}

impl<B: RequestBody> PooledBody<B> {
    pub fn new(body: Incoming, checkin: Option<Checkin<B>>) -> PooledBody<B> {
        let mut pooled = PooledBody { body, checkin };
        // An empty body (204, 304, HEAD) may never be polled.
        if pooled.body.is_end_stream() {
            pooled.give_back();
        }
        pooled
    }

    fn give_back(&mut self) {
        if let Some(checkin) = self.checkin.take() {
            checkin.pool.give_back(checkin.sender);
        }
    }
}

impl<B: RequestBody> Drop for PooledBody<B> {
    fn drop(&mut self) {
        // Ended but never polled to the end: the connection is still clean.
        if self.body.is_end_stream() {
            self.give_back();
        }
    }
}

impl<B: RequestBody> Body for PooledBody<B> {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.give_back(),
            // A body of known length that has had its last byte is not
            // polled again: it ends here.
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.give_back(),
            Poll::Ready(Some(Err(_))) => self.checkin = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
