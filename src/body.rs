//! Body wrappers on the request path: the request body capped at
//! `max_body_bytes` as it streams, and the response body that writes the
//! access-log line once it has been sent (or dropped).

use crate::access_log::{AccessLog, RequestRecord};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body past the limit.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds max_body_bytes")]
pub struct BodyTooLarge;

/// The request body paused too long.
#[derive(Debug, thiserror::Error)]
#[error("request body stalled")]
pub struct BodyStalled;

/// Why a request body stopped, for the one who turns it into a response.
#[derive(Debug, Default)]
pub struct BodyFlags {
    exceeded: AtomicBool,
    stalled: AtomicBool,
}

impl BodyFlags {
    /// The error a failed body read stands for, if the body itself failed.
    pub fn error(&self) -> Option<crate::error::GatewayError> {
        if self.exceeded.load(Ordering::Acquire) {
            Some(crate::error::GatewayError::PayloadTooLarge)
        } else if self.stalled.load(Ordering::Acquire) {
            Some(crate::error::GatewayError::RequestTimeout)
        } else {
            None
        }
    }
}

/// The caller's body, streamed, failing once it grows past the limit (this
/// works for chunked bodies, whose length nobody announced) or pauses
/// longer than the idle timeout (slow POST).
pub struct LimitedBody {
    inner: Incoming,
    remaining: u64,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    flags: Arc<BodyFlags>,
}

impl LimitedBody {
    pub fn new(inner: Incoming, limit: u64, idle: Duration) -> (Self, Arc<BodyFlags>) {
        let flags = Arc::new(BodyFlags::default());
        (
            LimitedBody {
                inner,
                remaining: limit,
                idle,
                timer: None,
                flags: flags.clone(),
            },
            flags,
        )
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.timer = None;
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > self.remaining {
                        self.flags.exceeded.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge))));
                    }
                    self.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let idle = self.idle;
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.flags.stalled.store(true, Ordering::Release);
                        Poll::Ready(Some(Err(Box::new(BodyStalled))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What a response carries: the gateway's own JSON, or the upstream's stream.
pub enum Payload {
    Full(Full<Bytes>),
    Upstream(crate::upstream_pool::PooledBody<LimitedBody>),
}

impl Payload {
    pub fn json(bytes: Bytes) -> Self {
        Payload::Full(Full::new(bytes))
    }
}

/// The response body: counts bytes out and writes the access-log record when
/// the body ends or is dropped, so every request logs exactly once.
pub struct ResponseBody {
    payload: Payload,
    bytes_out: u64,
    log: Option<(Box<RequestRecord>, AccessLog)>,
    stats: Option<Arc<crate::stats::Stats>>,
    /// Held until the response is done; marks the connection busy for the idle timer.
    _in_flight: Option<crate::activity::InFlight>,
}

impl ResponseBody {
    pub fn new(
        payload: Payload,
        record: Box<RequestRecord>,
        log: AccessLog,
        stats: Option<Arc<crate::stats::Stats>>,
        in_flight: Option<crate::activity::InFlight>,
    ) -> Self {
        ResponseBody {
            payload,
            bytes_out: 0,
            log: Some((record, log)),
            stats,
            _in_flight: in_flight,
        }
    }

    fn finish(&mut self) {
        if let Some((mut record, log)) = self.log.take() {
            record.bytes_out = self.bytes_out;
            let duration = record.started.elapsed();
            record.duration = Some(duration);
            crate::metrics::observe_request(&crate::metrics::FinishedRequest {
                route: &record.route,
                listener: record.listener,
                status: record.status,
                decision: record.decision,
                reason: record.reason,
                upstream_secs: record.upstream.map(|d| d.as_secs_f64()),
                duration_secs: duration.as_secs_f64(),
            });
            if let Some(stats) = &self.stats {
                record_stats(stats, &record, duration);
            }
            log.write(&record);
        }
    }
}

/// The dashboard's view of a finished request.
fn record_stats(stats: &crate::stats::Stats, record: &RequestRecord, duration: Duration) {
    let refused = crate::stats::is_refusal(record.decision);
    let caller = match (&record.key_id, &record.subject) {
        (Some(id), _) => Some(id.clone()),
        (None, Some(subject)) => Some(subject.clone()),
        // A refusal without a caller is charged to the client's address.
        (None, None) if refused => Some(format!("ip:{}", record.client_ip).into()),
        (None, None) => None,
    };
    stats.record(
        &crate::stats::Finished {
            route: record.route.as_ref(),
            caller,
            decision: record.decision,
            reason: record.reason,
            duration_ms: duration.as_secs_f64() * 1e3,
        },
        crate::clock::unix_now(),
    );
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled: Poll<Option<Result<Frame<Bytes>, BoxError>>> = match &mut self.payload {
            Payload::Full(full) => match Pin::new(full).poll_frame(cx) {
                Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            Payload::Upstream(incoming) => match Pin::new(incoming).poll_frame(cx) {
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
                Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes_out += data.len() as u64;
                }
            }
            Poll::Ready(None) => self.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.payload {
            Payload::Full(f) => f.is_end_stream(),
            Payload::Upstream(i) => i.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.payload {
            Payload::Full(f) => f.size_hint(),
            Payload::Upstream(i) => i.size_hint(),
        }
    }
}
