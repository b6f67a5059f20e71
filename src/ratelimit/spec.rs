//! A limit and one decision of it, as plain numbers: shared by the
//! in-process buckets and the Redis backend, which both run GCRA on them.

use crate::config::units::Rate;
use governor::Quota;
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};
use std::num::NonZeroU32;
use std::time::Duration;

/// A limit as the policy states it: `rate` refills, `burst` is the capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitSpec {
    pub count: u32,
    pub per: Duration,
    pub burst: u32,
}

impl LimitSpec {
    pub fn new(rate: Rate, burst: Option<u32>) -> LimitSpec {
        LimitSpec {
            count: rate.count,
            per: rate.per,
            // Without `burst`, a bucket holds one period's worth.
            burst: burst.unwrap_or(rate.count).max(1),
        }
    }

    /// Time for one request's worth to refill (the GCRA emission interval).
    pub fn interval(&self) -> Duration {
        self.per / self.count
    }

    pub(super) fn quota(&self) -> Quota {
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(self.interval().max(Duration::from_nanos(1)))
            .map(|q| q.allow_burst(burst))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
    }
}

// Parsed once: a name given as `&str` is parsed again on every insert.
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// A rate-limit decision and the numbers for its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// The bucket's capacity (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests the bucket allows right now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Whole seconds, rounded up, until the bucket is full (`RateLimit-Reset`).
    pub reset_secs: u64,
    /// Whole seconds, at least 1, until a request would pass (`Retry-After`).
    pub retry_after_secs: u64,
}

impl Outcome {
    /// A refusal by `spec`'s bucket, empty for `retry_after_secs` more: what
    /// the failed-auth guard shows in `RateLimit-*`, like a caller's limit.
    pub fn refused(spec: LimitSpec, retry_after_secs: u64) -> Outcome {
        let refill = spec.interval() * spec.burst.saturating_sub(1);
        Outcome {
            allowed: false,
            limit: spec.burst,
            remaining: 0,
            reset_secs: retry_after_secs + ceil_secs(refill),
            retry_after_secs,
        }
    }
}

pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Outcome {
    pub fn headers(&self, headers: &mut HeaderMap) {
        headers.insert(RATELIMIT_LIMIT, HeaderValue::from(self.limit));
        headers.insert(RATELIMIT_REMAINING, HeaderValue::from(self.remaining));
        headers.insert(RATELIMIT_RESET, HeaderValue::from(self.reset_secs));
    }
}
