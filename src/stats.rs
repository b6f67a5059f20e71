//! The dashboard's window of statistics (docs/operations.md "Dashboard"):
//! what the last 15 minutes looked like, in bounded memory — a fixed ring
//! of per-second buckets (requests, refusals, upstream errors, a latency
//! histogram), totals by decision and reason, and bounded top-k tables of
//! routes and callers. Live state of one gateway, carried across reloads;
//! recording is a handful of atomic adds and two short locks per request.

use crate::error::Decision;
use crate::reason::Reason;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Seconds the ring covers.
pub const WINDOW_SECS: u64 = 900;
/// Latency histogram: bucket `i` holds durations up to `FIRST_BOUND_MS * GROWTH^i`.
const LATENCY_BUCKETS: usize = 40;
const FIRST_BOUND_MS: f64 = 0.05;
const GROWTH: f64 = 1.5;
/// Entries each top-k table tracks (it shows fewer).
const TOP_CAPACITY: usize = 100;
const TOP_SHOWN: usize = 10;

/// One second of traffic.
struct Second {
    /// The unix second this bucket holds; a bucket of another second is stale.
    at: AtomicU64,
    requests: AtomicU32,
    refused: AtomicU32,
    upstream_errors: AtomicU32,
    latency: [AtomicU32; LATENCY_BUCKETS],
}

impl Second {
    fn new() -> Second {
        Second {
            at: AtomicU64::new(0),
            requests: AtomicU32::new(0),
            refused: AtomicU32::new(0),
            upstream_errors: AtomicU32::new(0),
            latency: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// Makes this bucket `second`'s, emptying it if it held an older one.
    /// The thread that wins the swap clears it; a count racing the clear at
    /// the turn of a second can be lost, which a dashboard can bear.
    fn claim(&self, second: u64) {
        let held = self.at.load(Relaxed);
        if held != second
            && self
                .at
                .compare_exchange(held, second, Relaxed, Relaxed)
                .is_ok()
        {
            self.requests.store(0, Relaxed);
            self.refused.store(0, Relaxed);
            self.upstream_errors.store(0, Relaxed);
            for b in &self.latency {
                b.store(0, Relaxed);
            }
        }
    }
}

fn latency_bucket(ms: f64) -> usize {
    if ms <= FIRST_BOUND_MS {
        return 0;
    }
    let i = ((ms / FIRST_BOUND_MS).ln() / GROWTH.ln()).ceil() as usize;
    i.min(LATENCY_BUCKETS - 1)
}

fn bucket_bound_ms(i: usize) -> f64 {
    FIRST_BOUND_MS * GROWTH.powi(i as i32)
}

/// The `q` quantile of a histogram, as the upper bound of its bucket.
fn quantile(hist: &[u64; LATENCY_BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some((bucket_bound_ms(i) * 1000.0).round() / 1000.0);
        }
    }
    None
}

/// The space-saving algorithm (Metwally et al.): at most `TOP_CAPACITY`
/// names; a new name at capacity takes the place of the smallest count and
/// inherits it, so heavy hitters are never lost and memory stays bounded.
#[derive(Default)]
struct TopK {
    // foldhash: every request looks a name up here. Its seed is random per
    // map, and the map never holds more than `TOP_CAPACITY` names.
    counts: HashMap<Arc<str>, (u64, u64), foldhash::fast::RandomState>,
}

impl TopK {
    /// Adds one request, and one refusal if `refused`.
    fn add(&mut self, name: &Arc<str>, refused: bool) {
        let r = u64::from(refused);
        if let Some((n, d)) = self.counts.get_mut(name) {
            *n += 1;
            *d += r;
            return;
        }
        if self.counts.len() >= TOP_CAPACITY {
            let smallest = self
                .counts
                .iter()
                .min_by_key(|(_, (n, _))| *n)
                .map(|(k, v)| (k.clone(), *v));
            if let Some((k, (n, _))) = smallest {
                self.counts.remove(&k);
                self.counts.insert(name.clone(), (n + 1, r));
                return;
            }
        }
        self.counts.insert(name.clone(), (1, r));
    }

    fn top(&self, by_refusals: bool) -> Vec<Value> {
        let mut rows: Vec<(&Arc<str>, &(u64, u64))> = self
            .counts
            .iter()
            .filter(|(_, (_, d))| !by_refusals || *d > 0)
            .collect();
        rows.sort_by(|a, b| {
            let key = |r: &(u64, u64)| if by_refusals { (r.1, r.0) } else { (r.0, r.1) };
            key(b.1).cmp(&key(a.1)).then_with(|| a.0.cmp(b.0))
        });
        rows.into_iter()
            .take(TOP_SHOWN)
            .map(|(name, (n, d))| json!({"name": &**name, "requests": n, "refused": d}))
            .collect()
    }
}

/// What the dashboard needs of one finished request.
pub struct Finished<'a> {
    pub route: Option<&'a Arc<str>>,
    /// The key id or subject; for a refusal without one, `ip:<client ip>`.
    pub caller: Option<Arc<str>>,
    pub decision: Decision,
    pub reason: Option<Reason>,
    pub duration_ms: f64,
}

/// A reload's outcome, for the dashboard.
#[derive(Clone)]
struct ReloadOutcome {
    at: u64,
    ok: bool,
    detail: String,
}

/// The window of one gateway.
pub struct Stats {
    started: u64,
    ring: Box<[Second]>,
    decisions: [AtomicU64; Decision::ALL.len()],
    reasons: Box<[AtomicU64]>,
    routes: Mutex<TopK>,
    callers: Mutex<TopK>,
    last_reload: Mutex<Option<ReloadOutcome>>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats::new(crate::clock::unix_now())
    }
}

/// A request the gateway refused (the caller's doing, not the upstream's or a dependency's).
pub fn is_refusal(d: Decision) -> bool {
    !matches!(
        d,
        Decision::Allowed | Decision::UpstreamError | Decision::Unavailable
    )
}

impl Stats {
    pub fn new(now: u64) -> Stats {
        Stats {
            started: now,
            ring: (0..WINDOW_SECS).map(|_| Second::new()).collect(),
            decisions: std::array::from_fn(|_| AtomicU64::new(0)),
            reasons: Reason::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            routes: Mutex::new(TopK::default()),
            callers: Mutex::new(TopK::default()),
            last_reload: Mutex::new(None),
        }
    }

    pub fn record(&self, done: &Finished<'_>, now: u64) {
        let second = &self.ring[(now % WINDOW_SECS) as usize];
        second.claim(now);
        second.requests.fetch_add(1, Relaxed);
        let refused = is_refusal(done.decision);
        if refused {
            second.refused.fetch_add(1, Relaxed);
        }
        if done.decision == Decision::UpstreamError {
            second.upstream_errors.fetch_add(1, Relaxed);
        }
        second.latency[latency_bucket(done.duration_ms)].fetch_add(1, Relaxed);
        self.decisions[done.decision as usize].fetch_add(1, Relaxed);
        if let Some(reason) = done.reason {
            if let Some(n) = self.reasons.get(reason as usize) {
                n.fetch_add(1, Relaxed);
            }
        }
        if let Some(route) = done.route {
            self.routes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(route, refused);
        }
        if let Some(caller) = &done.caller {
            self.callers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(caller, refused);
        }
    }

    pub fn reload_finished(&self, ok: bool, detail: String, now: u64) {
        *self.last_reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(ReloadOutcome {
            at: now,
            ok,
            detail,
        });
    }

    /// A point per `step` seconds over the last 15 minutes, oldest first,
    /// and the whole window's totals.
    fn series(&self, now: u64, step: u64) -> (Vec<Value>, Value) {
        let first = now.saturating_sub(WINDOW_SECS - 1);
        let mut points = Vec::new();
        let mut window_hist = [0u64; LATENCY_BUCKETS];
        let mut window = [0u64; 3];
        let mut t = first - first % step;
        while t <= now {
            let mut hist = [0u64; LATENCY_BUCKETS];
            let mut counts = [0u64; 3];
            for s in t.max(first)..(t + step).min(now + 1) {
                let b = &self.ring[(s % WINDOW_SECS) as usize];
                if b.at.load(Relaxed) != s {
                    continue;
                }
                counts[0] += u64::from(b.requests.load(Relaxed));
                counts[1] += u64::from(b.refused.load(Relaxed));
                counts[2] += u64::from(b.upstream_errors.load(Relaxed));
                for (h, l) in hist.iter_mut().zip(&b.latency) {
                    *h += u64::from(l.load(Relaxed));
                }
            }
            for (w, h) in window_hist.iter_mut().zip(&hist) {
                *w += h;
            }
            for (w, c) in window.iter_mut().zip(&counts) {
                *w += c;
            }
            points.push(json!({
                "t": t,
                "rps": (counts[0] as f64 / step as f64 * 100.0).round() / 100.0,
                "refused": counts[1],
                "upstream_errors": counts[2],
                "p50_ms": quantile(&hist, 0.5),
                "p99_ms": quantile(&hist, 0.99),
            }));
            t += step;
        }
        let totals = json!({
            "requests": window[0],
            "refused": window[1],
            "upstream_errors": window[2],
            "p50_ms": quantile(&window_hist, 0.5),
            "p99_ms": quantile(&window_hist, 0.99),
        });
        (points, totals)
    }

    /// The window as JSON (`step`-second points) and the totals since start.
    pub fn to_json(&self, now: u64, step: u64) -> Value {
        let step = step.clamp(1, WINDOW_SECS);
        let (series, window) = self.series(now, step);
        let decisions: serde_json::Map<String, Value> = Decision::ALL
            .iter()
            .map(|d| {
                (
                    d.as_str().to_string(),
                    json!(self.decisions[*d as usize].load(Relaxed)),
                )
            })
            .collect();
        let reasons: serde_json::Map<String, Value> = Reason::ALL
            .iter()
            .filter_map(|r| {
                let n = self.reasons.get(*r as usize)?.load(Relaxed);
                (n > 0).then(|| (r.as_str().to_string(), json!(n)))
            })
            .collect();
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let callers = self.callers.lock().unwrap_or_else(|e| e.into_inner());
        let reload = self
            .last_reload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        json!({
            "now": now,
            "started": self.started,
            "window_secs": WINDOW_SECS,
            "step_secs": step,
            "window": window,
            "series": series,
            "decisions": decisions,
            "reasons": reasons,
            "top_routes": routes.top(false),
            "top_callers": callers.top(false),
            "top_refused_callers": callers.top(true),
            "last_reload": reload.map(|r| json!({"at": r.at, "ok": r.ok, "detail": r.detail})),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(decision: Decision, caller: &str, ms: f64) -> Finished<'static> {
        Finished {
            route: None,
            caller: Some(caller.into()),
            decision,
            reason: (decision != Decision::Allowed).then_some(Reason::UnknownKey),
            duration_ms: ms,
        }
    }

    #[test]
    fn the_window_counts_by_second_and_forgets_what_is_older() {
        let stats = Stats::new(1_000);
        for _ in 0..9 {
            stats.record(&done(Decision::Allowed, "a", 1.0), 1_000);
        }
        stats.record(&done(Decision::InvalidToken, "b", 100.0), 1_001);
        let j = stats.to_json(1_001, 1);
        assert_eq!(j["window"]["requests"], 10);
        assert_eq!(j["window"]["refused"], 1);
        assert_eq!(j["decisions"]["invalid_token"], 1);
        assert_eq!(j["reasons"]["unknown_key"], 1);
        let p50 = j["window"]["p50_ms"].as_f64().unwrap_or(0.0);
        assert!((1.0..1.6).contains(&p50), "{p50}");
        assert!(j["window"]["p99_ms"].as_f64().unwrap_or(0.0) >= 100.0);
        assert_eq!(j["top_refused_callers"][0]["name"], "b");
        assert_eq!(j["series"].as_array().map(Vec::len), Some(900));
        // 15 minutes later the ring has moved on; the totals stay.
        let later = stats.to_json(1_001 + WINDOW_SECS, 1);
        assert_eq!(later["window"]["requests"], 0);
        assert_eq!(later["decisions"]["allowed"], 9);
        // The slot of second 1000 reused by second 1900 starts empty: the
        // window [1001, 1900] holds the refusal of 1001 and the new one.
        stats.record(&done(Decision::Allowed, "a", 1.0), 1_000 + WINDOW_SECS);
        assert_eq!(
            stats.to_json(1_000 + WINDOW_SECS, 1)["window"]["requests"],
            2
        );
    }

    #[test]
    fn top_k_stays_bounded_and_keeps_the_heavy_hitters() {
        let mut top = TopK::default();
        let heavy: Arc<str> = "heavy".into();
        for i in 0..10_000 {
            top.add(&heavy, false);
            top.add(&Arc::from(format!("once-{i}")), i % 2 == 0);
        }
        assert!(top.counts.len() <= TOP_CAPACITY);
        assert_eq!(top.top(false)[0]["name"], "heavy");
    }
}
