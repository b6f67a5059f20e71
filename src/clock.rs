//! Where the gateway reads the time. Wall-clock seconds (`unix_now`) for
//! token and key lifetimes, and a monotonic `Clock` that tests can replace
//! for the rules that count intervals (the JWKS refetch limit). The rate
//! limiter keeps governor's own clock type, which its buckets require.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 on a clock set before 1970.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
