//! The buckets and the failed-auth guard against a fake clock.

use super::*;
use governor::clock::FakeRelativeClock;

fn spec(count: u32, per_secs: u64, burst: u32) -> LimitSpec {
    LimitSpec {
        count,
        per: Duration::from_secs(per_secs),
        burst,
    }
}

fn limits() -> (RateLimits<FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    (RateLimits::with_clock(clock.clone()), clock)
}

#[test]
fn burst_then_refusal_with_retry_after_and_reset() {
    let (l, _) = limits();
    let s = spec(10, 60, 3); // one request per 6 s, bucket of 3
    let who = Caller::new("key:a");
    let first = l.check_local(s, &who);
    assert_eq!(
        (
            first.allowed,
            first.limit,
            first.remaining,
            first.reset_secs
        ),
        (true, 3, 2, 6)
    );
    let second = l.check_local(s, &who);
    assert_eq!((second.remaining, second.reset_secs), (1, 12));
    let third = l.check_local(s, &who);
    assert_eq!((third.remaining, third.reset_secs), (0, 18));
    let refused = l.check_local(s, &who);
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after_secs, 6);
    assert_eq!(refused.reset_secs, 18);
    assert_eq!(refused.remaining, 0);
}

#[test]
fn buckets_refill_with_time() {
    let (l, clock) = limits();
    let s = spec(1, 1, 2);
    let who = Caller::new("key:a");
    assert!(l.check_local(s, &who).allowed);
    assert!(l.check_local(s, &who).allowed);
    let refused = l.check_local(s, &who);
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after_secs, 1);
    clock.advance(Duration::from_millis(400));
    let still = l.check_local(s, &who);
    assert!(!still.allowed);
    assert_eq!(still.retry_after_secs, 1, "0.6 s rounds up to 1");
    clock.advance(Duration::from_millis(600));
    assert!(l.check_local(s, &who).allowed);
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        l.check_local(s, &who).remaining,
        1,
        "full again after idling"
    );
}

#[test]
fn callers_have_separate_buckets() {
    let (l, _) = limits();
    let s = spec(1, 60, 1);
    assert!(l.check_local(s, &Caller::new("key:a")).allowed);
    assert!(!l.check_local(s, &Caller::new("key:a")).allowed);
    assert!(l.check_local(s, &Caller::new("key:b")).allowed);
}

#[test]
fn route_limit_overrides_the_callers_own_which_overrides_the_default() {
    let mut policy = LimitPolicy {
        default: Some(spec(100, 60, 20)),
        ..Default::default()
    };
    policy.named.insert("bulk".into(), spec(1000, 1, 200));
    policy.named.insert("per-user".into(), spec(10, 1, 20));
    assert_eq!(policy.effective(None, None), Some(spec(100, 60, 20)));
    assert_eq!(
        policy.effective(None, Some("bulk")),
        Some(spec(1000, 1, 200))
    );
    assert_eq!(
        policy.effective(Some("per-user"), Some("bulk")),
        Some(spec(10, 1, 20))
    );
}

#[test]
fn unchanged_limits_keep_their_buckets_across_a_reload() {
    let (l, _) = limits();
    let s = spec(1, 60, 1);
    let who = Caller::new("key:a");
    assert!(l.check_local(s, &who).allowed);
    l.adopt(&LimitPolicy {
        default: Some(s),
        ..Default::default()
    });
    assert!(!l.check_local(s, &who).allowed, "bucket survived");
    l.adopt(&LimitPolicy {
        default: Some(spec(2, 60, 2)),
        ..Default::default()
    });
    assert!(
        l.check_local(s, &who).allowed,
        "a changed limit starts afresh"
    );
}

#[tokio::test]
async fn failed_auth_guard_keys_ipv6_callers_by_their_64() {
    let (l, _clock) = limits();
    let s = spec(10, 60, 2);
    let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
    let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
    let elsewhere: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
    l.record_failure(s, a).await;
    l.record_failure(s, b).await;
    // Two addresses of one /64 emptied one bucket between them.
    assert!(l.ip_blocked(s, a).await.is_some());
    assert!(l
        .ip_blocked(s, "2001:db8:1:2::77".parse().expect("ip"))
        .await
        .is_some());
    assert_eq!(l.ip_blocked(s, elsewhere).await, None);
    assert_eq!(
        guard_key("::ffff:192.0.2.1".parse().expect("ip")),
        "192.0.2.1".parse::<IpAddr>().expect("ip")
    );
}

#[tokio::test]
async fn failed_auth_guard_blocks_an_ip_once_its_bucket_is_empty() {
    let (l, clock) = limits();
    let s = spec(10, 60, 2);
    let ip: IpAddr = "192.0.2.1".parse().expect("ip");
    let other: IpAddr = "192.0.2.2".parse().expect("ip");
    assert_eq!(l.ip_blocked(s, ip).await, None);
    l.record_failure(s, ip).await;
    assert_eq!(l.ip_blocked(s, ip).await, None);
    l.record_failure(s, ip).await;
    assert_eq!(l.ip_blocked(s, ip).await, Some(6));
    assert_eq!(l.ip_blocked(s, other).await, None);
    clock.advance(Duration::from_secs(6));
    assert_eq!(
        l.ip_blocked(s, ip).await,
        None,
        "one failure's worth refilled"
    );
}

#[test]
fn idle_callers_are_evicted() {
    let (l, clock) = limits();
    let s = spec(10, 1, 5);
    for i in 0..1000 {
        l.check_local(s, &Caller::new(format!("key:{i}")));
    }
    assert_eq!(l.tracked_callers(), 1000);
    clock.advance(Duration::from_secs(5));
    l.evict_idle();
    assert_eq!(l.tracked_callers(), 0);
}
