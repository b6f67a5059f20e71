//! What a client connection is doing: when it last moved a byte, how many
//! responses it has open, and since when an HTTP/1.1 request head has been
//! arriving. The accept loop reads it to close idle connections and cut off
//! slow heads (slowloris); response bodies hold an `InFlight` so a
//! connection waiting on a slow upstream is not taken for idle.
//!
//! The head deadline is kept here rather than given to hyper: hyper arms
//! its header timer as soon as it waits for a request, so a keep-alive
//! connection would be closed after `header_read_timeout` of quiet instead
//! of `idle_timeout`, and it would cost a timer per request.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// When a connection last moved bytes, and how many responses it has open.
pub struct Activity {
    epoch: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// When the request head now arriving sent its first byte (ms since
    /// `epoch`), or `NO_HEAD` while none is.
    head_since_ms: AtomicU64,
}

const NO_HEAD: u64 = u64::MAX;

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            head_since_ms: AtomicU64::new(NO_HEAD),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn touch(&self) -> u64 {
        let ms = self.now_ms();
        self.last_ms.store(ms, Ordering::Relaxed);
        ms
    }

    fn idle_for(&self) -> Duration {
        let now = self.now_ms();
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }

    /// How long the request head now arriving has taken so far.
    fn head_for(&self) -> Option<Duration> {
        match self.head_since_ms.load(Ordering::Relaxed) {
            NO_HEAD => None,
            since => Some(Duration::from_millis(self.now_ms().saturating_sub(since))),
        }
    }
}

/// Held by a response until its body is done, so a connection waiting on a
/// slow upstream is not taken for idle.
pub struct InFlight(Arc<Activity>);

impl InFlight {
    /// A request has arrived whole (hyper hands it over once its head is read).
    pub fn new(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_since_ms.store(NO_HEAD, Ordering::Relaxed);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An IO stream that records when it last read or wrote.
pub struct ActivityIo<T> {
    pub inner: T,
    pub activity: Arc<Activity>,
    /// HTTP/1.1: a byte read between requests begins a request head. (An
    /// HTTP/2 connection reads frames between requests: pings, settings.)
    pub heads: bool,
}

impl<T: AsyncRead + Unpin> AsyncRead for ActivityIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let ms = self.activity.touch();
            let activity = &self.activity;
            if self.heads
                && activity.in_flight.load(Ordering::Relaxed) == 0
                && activity.head_since_ms.load(Ordering::Relaxed) == NO_HEAD
            {
                activity.head_since_ms.store(ms, Ordering::Relaxed);
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ActivityIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Resolves once a request head has been arriving for `limit` or longer.
/// Looked at every half `limit` while no head is: a head that begins
/// between two looks is cut off within 1.5 × `limit`.
pub async fn head_overdue(activity: Arc<Activity>, limit: Duration) {
    loop {
        let wait = match activity.head_for() {
            Some(taken) if taken >= limit => return,
            Some(taken) => limit - taken,
            None => limit / 2,
        };
        tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
    }
}

/// Resolves once the connection has had no traffic and no open response for `idle`.
pub async fn idle_expired(activity: Arc<Activity>, idle: Duration) {
    loop {
        let quiet = activity.idle_for();
        if quiet >= idle && activity.in_flight.load(Ordering::Relaxed) == 0 {
            return;
        }
        tokio::time::sleep(idle.saturating_sub(quiet).max(Duration::from_millis(50))).await;
    }
}
