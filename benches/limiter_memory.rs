//! Resident memory of the in-process rate limiter: idle, after 1,000,000
//! distinct callers made one request each, and after idle buckets are evicted.
//! Run: `cargo bench --bench limiter_memory`

use authgate::ratelimit::{Caller, LimitSpec, RateLimits};
use governor::clock::FakeRelativeClock;
use std::time::{Duration, Instant};

fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    // `cargo bench` passes --bench; any filter argument is ignored here.
    let clock = FakeRelativeClock::default();
    let limits = RateLimits::with_clock(clock.clone());
    let spec = LimitSpec {
        count: 100,
        per: Duration::from_secs(60),
        burst: 20,
    };
    let baseline = resident_mib();
    let started = Instant::now();
    for i in 0..1_000_000u32 {
        let caller = Caller::new(format!("key:client-{i}"));
        limits.check_local(spec, &caller);
    }
    let elapsed = started.elapsed();
    let loaded = resident_mib();
    let tracked = limits.tracked_callers();
    clock.advance(Duration::from_secs(60));
    limits.evict_idle();
    let evicted = resident_mib();
    println!("limiter memory: 1,000,000 distinct callers, one request each");
    println!("  baseline            {baseline:8.1} MiB");
    println!(
        "  after 1M callers    {loaded:8.1} MiB  ({tracked} buckets, {:.0} ns per first check)",
        elapsed.as_nanos() as f64 / 1e6
    );
    println!(
        "  after eviction      {evicted:8.1} MiB  ({} buckets)",
        limits.tracked_callers()
    );
}
