//! Per-caller rate limits (docs/requests.md step 7, 429 and `RateLimit-*`), and
//! the failed-authentication guard per client IP. In one process the
//! buckets are governor's keyed GCRA limiters over a DashMap; with the
//! Redis backend the same GCRA runs in Redis, shared by every replica, and
//! this process's limiters stand in while Redis is unreachable.

pub mod spec;

pub use spec::{ceil_secs, LimitSpec, Outcome};

use crate::redis_backend::RedisBackend;
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::RateLimiter;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often buckets of callers gone idle are dropped.
pub const EVICTION_INTERVAL: Duration = Duration::from_secs(60);

/// The limits of one policy, compiled.
#[derive(Debug, Clone, Default)]
pub struct LimitPolicy {
    pub default: Option<LimitSpec>,
    pub named: HashMap<String, LimitSpec>,
    pub failed_auth_per_ip: Option<LimitSpec>,
    /// Requests on `auth: none` routes and preflights, per client IP.
    pub anonymous: Option<LimitSpec>,
}

impl LimitPolicy {
    /// The route's limit, else the caller's own, else the default (docs/policy.md).
    pub fn effective(&self, route: Option<&str>, caller: Option<&str>) -> Option<LimitSpec> {
        route
            .or(caller)
            .and_then(|name| self.named.get(name).copied())
            .or(self.default)
    }
}

/// Whose bucket: the caller's name (key id, or token `iss`+`sub`) and a
/// keyed 64-bit hash of it. In-process buckets are keyed by the hash, so a
/// million callers cost no small allocation each (which the allocator would
/// keep after eviction); the random hash key keeps collisions unforgeable.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: Arc<str>,
    hash: u64,
}

static CALLER_HASHER: std::sync::LazyLock<std::collections::hash_map::RandomState> =
    std::sync::LazyLock::new(std::collections::hash_map::RandomState::new);

impl Caller {
    pub fn new(name: impl Into<Arc<str>>) -> Caller {
        use std::hash::BuildHasher;
        let name = name.into();
        let hash = CALLER_HASHER.hash_one(&*name);
        Caller { name, hash }
    }

    /// The keyed hash of the name: equal names, equal hashes; an attacker
    /// cannot pick names that collide.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

/// One spec's buckets, keyed by caller or IP, shared across reloads.
type Pool<K, C> = Mutex<HashMap<LimitSpec, Arc<Keyed<K, C>>>>;

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, StateInformationMiddleware>;

/// The pool's limiter for `spec`, made on first use.
fn pooled<K: std::hash::Hash + Eq + Clone, C: Clock + Clone>(
    pool: &Pool<K, C>,
    spec: LimitSpec,
    clock: &C,
) -> Arc<Keyed<K, C>> {
    let mut map = pool.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(spec)
        .or_insert_with(|| {
            Arc::new(
                RateLimiter::dashmap_with_clock(spec.quota(), clock.clone())
                    .with_middleware::<StateInformationMiddleware>(),
            )
        })
        .clone()
}

/// All in-process buckets. Limiters are shared by identical specs, so a
/// caller whose effective limit is unchanged keeps its bucket across a reload.
pub struct RateLimits<C: Clock + Clone = DefaultClock> {
    clock: C,
    callers: Pool<u64, C>,
    ips: Pool<IpAddr, C>,
    /// `rate_limits.anonymous`, by client IP: a pool of its own, so that
    /// anonymous requests never spend failed-auth tokens.
    anonymous: Pool<IpAddr, C>,
    /// IPs whose failed-auth bucket is empty, until when.
    blocked: dashmap::DashMap<IpAddr, C::Instant>,
    /// The gateway's Redis service, with `backend: redis`.
    redis: Option<Arc<RedisBackend>>,
}

impl Default for RateLimits<DefaultClock> {
    fn default() -> Self {
        RateLimits::with_clock(DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    pub fn with_clock(clock: C) -> Self {
        RateLimits {
            clock,
            callers: Mutex::new(HashMap::new()),
            ips: Mutex::new(HashMap::new()),
            anonymous: Mutex::new(HashMap::new()),
            blocked: dashmap::DashMap::new(),
            redis: None,
        }
    }

    /// Shares buckets through `redis`, when there is one.
    pub fn with_redis(mut self, redis: Option<Arc<RedisBackend>>) -> Self {
        self.redis = redis;
        self
    }

    fn caller_limiter(&self, spec: LimitSpec) -> Arc<Keyed<u64, C>> {
        pooled(&self.callers, spec, &self.clock)
    }

    fn ip_limiter(&self, spec: LimitSpec) -> Arc<Keyed<IpAddr, C>> {
        pooled(&self.ips, spec, &self.clock)
    }

    /// Keeps the limiters a new policy uses (unchanged specs keep their
    /// buckets) and drops the rest.
    pub fn adopt(&self, policy: &LimitPolicy) {
        let used: Vec<LimitSpec> = policy
            .default
            .iter()
            .chain(policy.named.values())
            .copied()
            .collect();
        self.callers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|spec, _| used.contains(spec));
        for spec in used {
            self.caller_limiter(spec);
        }
        self.ips
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|spec, _| Some(*spec) == policy.failed_auth_per_ip);
        self.anonymous
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|spec, _| Some(*spec) == policy.anonymous);
    }

    /// Checks (and spends one request of) `caller`'s bucket in this process.
    pub fn check_local(&self, spec: LimitSpec, caller: &Caller) -> Outcome {
        self.spend(&self.caller_limiter(spec), &caller.hash, spec)
    }

    /// One request from `key`'s bucket of `limiter`, and the numbers for the headers.
    fn spend<K: std::hash::Hash + Eq + Clone>(
        &self,
        limiter: &Keyed<K, C>,
        key: &K,
        spec: LimitSpec,
    ) -> Outcome {
        match limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = spec.burst.saturating_sub(remaining);
                Outcome {
                    allowed: true,
                    limit: spec.burst,
                    remaining,
                    reset_secs: ceil_secs(spec.interval() * used),
                    retry_after_secs: 0,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Outcome {
                    allowed: false,
                    limit: spec.burst,
                    remaining: 0,
                    reset_secs: ceil_secs(wait + spec.interval() * (spec.burst - 1)),
                    retry_after_secs: ceil_secs(wait).max(1),
                }
            }
        }
    }

    /// Checks an anonymous request's client IP (an IPv6 client by its /64):
    /// in Redis when the backend is Redis and reachable, else here.
    pub async fn check_ip(&self, spec: LimitSpec, ip: IpAddr) -> Outcome {
        let ip = guard_key(ip);
        if let Some(redis) = &self.redis {
            if let Some(outcome) = redis.gcra(&format!("anon:{ip}"), spec, 1).await {
                return outcome;
            }
        }
        let limiter = pooled(&self.anonymous, spec, &self.clock);
        self.spend(&limiter, &ip, spec)
    }

    /// Checks `caller`: in Redis when the backend is Redis and reachable,
    /// else in this process.
    pub async fn check(&self, spec: LimitSpec, caller: &Caller) -> Outcome {
        if let Some(redis) = &self.redis {
            if let Some(outcome) = redis.gcra(&format!("c:{}", caller.name), spec, 1).await {
                return outcome;
            }
        }
        self.check_local(spec, caller)
    }

    /// While an IP's failed-auth bucket is empty: the seconds to wait.
    pub async fn ip_blocked(&self, spec: LimitSpec, ip: IpAddr) -> Option<u64> {
        let ip = guard_key(ip);
        if let Some(redis) = &self.redis {
            if let Some(outcome) = redis.gcra(&format!("ip:{ip}"), spec, 0).await {
                return (!outcome.allowed).then_some(outcome.retry_after_secs);
            }
        }
        let until = *self.blocked.get(&ip)?;
        let now = self.clock.now();
        if until > now {
            Some(ceil_secs(Duration::from(until.duration_since(now))).max(1))
        } else {
            self.blocked.remove(&ip);
            None
        }
    }

    /// Takes one token from the IP's bucket for a refused credential.
    pub async fn record_failure(&self, spec: LimitSpec, ip: IpAddr) {
        let ip = guard_key(ip);
        if let Some(redis) = &self.redis {
            if redis.gcra(&format!("ip:{ip}"), spec, 1).await.is_some() {
                return;
            }
        }
        let limiter = self.ip_limiter(spec);
        let now = self.clock.now();
        let until = match limiter.check_key(&ip) {
            // The bucket just ran dry: empty until one request's worth refills.
            Ok(snapshot) if snapshot.remaining_burst_capacity() == 0 => {
                Some(now + governor::nanos::Nanos::from(spec.interval()))
            }
            Ok(_) => None,
            Err(not_until) => Some(not_until.earliest_possible()),
        };
        if let Some(until) = until {
            self.blocked.insert(ip, until);
        }
    }

    /// Drops buckets that have refilled completely (idle callers).
    pub fn evict_idle(&self) {
        for limiter in self
            .callers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        for pool in [&self.ips, &self.anonymous] {
            for limiter in pool.lock().unwrap_or_else(|e| e.into_inner()).values() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        let now = self.clock.now();
        self.blocked.retain(|_, until| *until > now);
    }

    /// Buckets held in this process (for tests and the memory figure).
    pub fn tracked_callers(&self) -> usize {
        self.callers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|l| l.len())
            .sum()
    }

    pub fn redis_degraded(&self) -> bool {
        self.redis.as_ref().is_some_and(|r| r.is_degraded())
    }
}

/// The failed-auth guard's bucket for a client address. One IPv6 host
/// usually holds a whole /64 (SLAAC, privacy addresses), so a guard per
/// address would give an attacker 2^64 fresh buckets; IPv4 stays per address.
pub fn guard_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests;
