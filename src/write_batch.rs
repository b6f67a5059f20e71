//! Writes of an HTTP/2 connection held back until the worker has run the
//! other tasks that are ready, so the responses of several streams leave in
//! one TLS record and one send(2) instead of one each.
//!
//! Each stream's response is produced on its own task; each wakes the
//! connection, whose next flush would carry just the frames queued so far.
//! The first write of a flush therefore yields once, the way
//! `tokio::task::yield_now` does: the scheduler polls the connection again
//! after it has run out of ready tasks and polled the IO driver, by which
//! time the other streams whose upstream answered in the same round have
//! queued their frames too. h2 keeps its frames in its own buffer meanwhile
//! (nothing is copied here). The cost when there is nothing to batch is one
//! scheduler round: no timer, no sleep. HAProxy gets the same effect from
//! sending its HTTP/2 connections' output at the end of its event loop.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub struct BatchedWrites<T> {
    inner: T,
    /// The next write starts a new flush: it yields first.
    yield_next: bool,
}

impl<T> BatchedWrites<T> {
    pub fn new(inner: T) -> Self {
        BatchedWrites {
            inner,
            yield_next: true,
        }
    }

    /// `Pending` once per flush, with the task woken after this round.
    fn yielded(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.yield_next {
            return false;
        }
        self.yield_next = false;
        // A fresh `yield_now` polled once hands the waker to the scheduler's
        // deferred list and is done with; the task is woken from there.
        let yield_now = std::pin::pin!(tokio::task::yield_now());
        yield_now.poll(cx).is_pending()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for BatchedWrites<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for BatchedWrites<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.yielded(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.yielded(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if flushed.is_ready() {
            self.yield_next = true;
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncWriteExt;

    type Events = Arc<Mutex<Vec<String>>>;

    /// A sink that notes each write among the other events.
    struct Noted(Events);

    impl AsyncWrite for Noted {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let text = String::from_utf8_lossy(buf);
            self.0.lock().expect("events").push(format!("write {text}"));
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn other_task(events: &Events, name: &'static str) -> tokio::task::JoinHandle<()> {
        let events = events.clone();
        tokio::spawn(async move { events.lock().expect("events").push(name.into()) })
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_flush_goes_out_after_the_tasks_that_were_ready_with_it() {
        let events: Events = Arc::default();
        let mut io = BatchedWrites::new(Noted(events.clone()));

        // The first write of a flush lets the ready task run first.
        let first = other_task(&events, "task 1");
        io.write_all(b"a").await.expect("write");
        // Within the same flush nothing waits again.
        let second = other_task(&events, "task 2");
        io.write_all(b"b").await.expect("write");
        io.flush().await.expect("flush");
        // A new flush waits again.
        let third = other_task(&events, "task 3");
        io.write_all(b"c").await.expect("write");
        for task in [first, second, third] {
            task.await.expect("task");
        }
        assert_eq!(
            *events.lock().expect("events"),
            ["task 1", "write a", "write b", "task 2", "task 3", "write c"]
        );
    }
}
