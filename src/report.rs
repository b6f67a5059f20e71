//! `authgate report`: a summary of a JSON access log (docs/logs.md), read
//! as a stream — requests, statuses, decisions, denial reasons, top callers
//! and routes, latency percentiles, and the same per time slice.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many callers and routes the tops list.
pub const TOP: usize = 10;

/// The fields of a log line the report reads; the rest is skipped unparsed.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    ts: std::borrow::Cow<'a, str>,
    status: u16,
    #[serde(borrow)]
    decision: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    reason: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    route: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    key_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    subject: Option<std::borrow::Cow<'a, str>>,
    duration_ms: f64,
}

/// What to count.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Lines older than this are left out.
    pub since: Option<SystemTime>,
    /// Width of a time slice.
    pub slice: Duration,
}

/// Counts for the whole log or one slice.
#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub requests: u64,
    pub denied: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub decisions: BTreeMap<String, u64>,
    pub reasons: BTreeMap<String, u64>,
    #[serde(skip)]
    latencies: Vec<f32>,
    pub latency_ms: Percentiles,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// One entry of a top list.
#[derive(Debug, Serialize)]
pub struct Ranked {
    pub name: String,
    pub count: u64,
}

/// The summary.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub first: Option<String>,
    pub last: Option<String>,
    pub total: Counts,
    pub top_callers: Vec<Ranked>,
    pub top_denied_callers: Vec<Ranked>,
    pub top_routes: Vec<Ranked>,
    /// Slice start (RFC 3339) → its counts.
    pub slices: BTreeMap<String, Counts>,
    /// Lines that were not JSON access-log lines (skipped).
    pub unreadable_lines: u64,
    /// Slices by start (Unix seconds) while reading; named once at the end.
    #[serde(skip)]
    by_start: HashMap<u64, Counts>,
    #[serde(skip)]
    callers: HashMap<String, (u64, u64)>,
    #[serde(skip)]
    routes: HashMap<String, u64>,
}

impl Counts {
    fn add(&mut self, line: &Line<'_>, denied: bool) {
        self.requests += 1;
        self.denied += u64::from(denied);
        *self.statuses.entry(line.status).or_default() += 1;
        *self.decisions.entry(line.decision.to_string()).or_default() += 1;
        if let Some(reason) = &line.reason {
            *self.reasons.entry(reason.to_string()).or_default() += 1;
        }
        self.latencies.push(line.duration_ms as f32);
    }

    fn finish(&mut self) {
        self.latencies.sort_unstable_by(f32::total_cmp);
        let at = |q: f64| -> f64 {
            if self.latencies.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest value with at least q of all below or at it.
            let rank = (q * self.latencies.len() as f64).ceil() as usize;
            f64::from(self.latencies[rank.clamp(1, self.latencies.len()) - 1])
        };
        self.latency_ms = Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
        };
        self.latencies = Vec::new();
    }
}

fn ranked(counts: impl Iterator<Item = (String, u64)>) -> Vec<Ranked> {
    let mut all: Vec<Ranked> = counts
        .filter(|(_, n)| *n > 0)
        .map(|(name, count)| Ranked { name, count })
        .collect();
    all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    all.truncate(TOP);
    all
}

/// Reads a whole log, one line at a time.
pub fn read(input: &mut dyn BufRead, options: Options) -> std::io::Result<Report> {
    let mut report = Report::default();
    let mut buf = Vec::new();
    let slice = options.slice.as_secs().max(1);
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let Ok(line) = serde_json::from_slice::<Line<'_>>(text) else {
            report.unreadable_lines += 1;
            continue;
        };
        let Ok(at) = humantime::parse_rfc3339_weak(&line.ts) else {
            report.unreadable_lines += 1;
            continue;
        };
        if options.since.is_some_and(|since| at < since) {
            continue;
        }
        report.count(&line, at, slice);
    }
    report.total.finish();
    for (start, mut counts) in std::mem::take(&mut report.by_start) {
        counts.finish();
        let name = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(start));
        report.slices.insert(name.to_string(), counts);
    }
    report.top_callers = ranked(report.callers.iter().map(|(k, v)| (k.clone(), v.0)));
    report.top_denied_callers = ranked(report.callers.iter().map(|(k, v)| (k.clone(), v.1)));
    report.top_routes = ranked(report.routes.iter().map(|(k, v)| (k.clone(), *v)));
    Ok(report)
}

impl Report {
    fn count(&mut self, line: &Line<'_>, at: SystemTime, slice: u64) {
        let denied = line.decision != "allowed";
        if self.first.is_none() {
            self.first = Some(line.ts.to_string());
        }
        // Reuses the string's buffer: no allocation per line.
        let last = self.last.get_or_insert_with(String::new);
        last.clear();
        last.push_str(&line.ts);
        self.total.add(line, denied);
        let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.by_start
            .entry(secs - secs % slice)
            .or_default()
            .add(line, denied);
        // A caller is its key id, else its subject; anonymous requests have neither.
        let caller = line
            .key_id
            .as_deref()
            .or(line.subject.as_deref())
            .unwrap_or("(anonymous)");
        let entry = self.callers.entry(caller.to_string()).or_default();
        entry.0 += 1;
        entry.1 += u64::from(denied);
        let route = line.route.as_deref().unwrap_or("(no route)");
        *self.routes.entry(route.to_string()).or_default() += 1;
    }

    /// The human-readable summary.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let t = &self.total;
        let _ = writeln!(
            out,
            "{} requests, {} denied, from {} to {}",
            t.requests,
            t.denied,
            self.first.as_deref().unwrap_or("-"),
            self.last.as_deref().unwrap_or("-")
        );
        let join = |m: &BTreeMap<String, u64>| {
            let mut v: Vec<_> = m.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            v.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let statuses: Vec<String> = t.statuses.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let _ = writeln!(out, "statuses: {}", statuses.join(", "));
        let _ = writeln!(out, "decisions: {}", join(&t.decisions));
        let _ = writeln!(out, "denial reasons: {}", join(&t.reasons));
        let list = |r: &[Ranked]| {
            r.iter()
                .map(|e| format!("{} {}", e.name, e.count))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "top callers: {}", list(&self.top_callers));
        let _ = writeln!(
            out,
            "top callers by denials: {}",
            list(&self.top_denied_callers)
        );
        let _ = writeln!(out, "top routes: {}", list(&self.top_routes));
        let p = t.latency_ms;
        let _ = writeln!(
            out,
            "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}",
            p.p50, p.p90, p.p99
        );
        let _ = writeln!(out, "per slice:");
        for (start, c) in &self.slices {
            let p = c.latency_ms;
            let _ = writeln!(
                out,
                "  {start}  requests {}  denied {}  p50 {:.2}  p99 {:.2} ms",
                c.requests, c.denied, p.p50, p.p99
            );
        }
        if self.unreadable_lines > 0 {
            let _ = writeln!(
                out,
                "skipped {} lines that are not JSON access-log lines",
                self.unreadable_lines
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ts: &str, status: u16, decision: &str, reason: Option<&str>, ms: f64) -> String {
        serde_json::json!({"ts": ts, "status": status, "decision": decision, "reason": reason,
            "route": "r", "key_id": "k", "subject": "s", "duration_ms": ms})
        .to_string()
    }

    #[test]
    fn percentiles_are_nearest_rank_and_slices_split_by_time() {
        let mut log = String::new();
        for i in 1..=100 {
            log.push_str(&line(
                "2026-11-25T12:00:01.000Z",
                200,
                "allowed",
                None,
                f64::from(i),
            ));
            log.push('\n');
        }
        log.push_str(&line(
            "2026-11-25T13:30:00.000Z",
            401,
            "unauthenticated",
            Some("missing_credential"),
            1.0,
        ));
        log.push_str("\nnot json\n");
        let options = Options {
            since: None,
            slice: Duration::from_secs(3600),
        };
        let r = read(&mut log.as_bytes(), options).expect("read");
        assert_eq!(r.total.requests, 101);
        assert_eq!(r.total.denied, 1);
        assert_eq!(r.unreadable_lines, 1);
        let hour = &r.slices["2026-11-25T12:00:00Z"];
        assert_eq!(
            (
                hour.latency_ms.p50,
                hour.latency_ms.p90,
                hour.latency_ms.p99
            ),
            (50.0, 90.0, 99.0)
        );
        assert_eq!(r.slices["2026-11-25T13:00:00Z"].requests, 1);
        assert_eq!(r.total.reasons["missing_credential"], 1);
        let since = humantime::parse_rfc3339("2026-11-25T13:00:00Z").ok();
        let later = read(&mut log.as_bytes(), Options { since, ..options }).expect("read");
        assert_eq!(later.total.requests, 1);
    }
}
