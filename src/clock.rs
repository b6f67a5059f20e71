//! Where the gateway reads the time. Wall-clock seconds (`unix_now`) for
//! token and key lifetimes, and a monotonic `Clock` that tests can replace
//! for the rules that count intervals (the JWKS refetch limit). The rate
//! limiter keeps governor's own clock type, which its buckets require.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 on a clock set before 1970.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How far `coarse_unix_now` may lag the wall clock.
pub const COARSE_TICK: std::time::Duration = std::time::Duration::from_millis(100);

static COARSE_SECS: AtomicU64 = AtomicU64::new(0);
static COARSE_TICKER: Once = Once::new();

/// `unix_now` as of the last tick (at most `COARSE_TICK` old), for a
/// per-request decision that needs whole seconds but not a clock read of
/// its own (the identity assertion's `iat` and reuse): one atomic load
/// instead of a system call's worth. A thread keeps it current.
pub fn coarse_unix_now() -> u64 {
    COARSE_TICKER.call_once(|| {
        COARSE_SECS.store(unix_now(), Ordering::Relaxed);
        let ticker = std::thread::Builder::new()
            .name("authgate-clock".into())
            .spawn(|| loop {
                std::thread::sleep(COARSE_TICK);
                COARSE_SECS.store(unix_now(), Ordering::Relaxed);
            });
        if ticker.is_err() {
            // No thread: every read asks the clock itself.
            COARSE_SECS.store(0, Ordering::Relaxed);
        }
    });
    match COARSE_SECS.load(Ordering::Relaxed) {
        0 => unix_now(),
        secs => secs,
    }
}

/// A monotonic time source.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The real one.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}
