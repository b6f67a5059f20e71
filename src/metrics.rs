//! Prometheus metrics (docs/operations.md). One process-wide set: the request path
//! records through `observe_request`, the rest through the small helpers.

use crate::error::Decision;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Shared with the compiled route: labelling a request allocates nothing.
    pub route: Option<std::sync::Arc<str>>,
    pub status: u16,
    pub decision: &'static str,
    /// `main` or `forward_auth`.
    pub listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuerLabels {
    pub issuer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuerResultLabels {
    pub issuer: String,
    pub result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Histogram,
    pub upstream_seconds: Histogram,
    pub auth_failures: Family<ReasonLabels, Counter>,
    pub rate_limited: Counter,
    pub upstream_errors: Family<ReasonLabels, Counter>,
    pub jwks_refreshes: Family<IssuerResultLabels, Counter>,
    pub token_verifications: Family<IssuerLabels, Counter>,
    pub reloads: Family<ResultLabels, Counter>,
    /// Sign-ins, session refreshes and logouts, by result.
    pub sign_ins: Family<ResultLabels, Counter>,
    pub session_refreshes: Family<ResultLabels, Counter>,
    pub logouts: Family<ResultLabels, Counter>,
    pub open_connections: Gauge,
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~13 s.
    Histogram::new(exponential_buckets(0.0001, 2.5, 14))
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("authgate");
    let m = Metrics {
        registry: Registry::default(),
        requests: Family::default(),
        request_seconds: latency_histogram(),
        upstream_seconds: latency_histogram(),
        auth_failures: Family::default(),
        rate_limited: Counter::default(),
        upstream_errors: Family::default(),
        jwks_refreshes: Family::default(),
        token_verifications: Family::default(),
        reloads: Family::default(),
        sign_ins: Family::default(),
        session_refreshes: Family::default(),
        logouts: Family::default(),
        open_connections: Gauge::default(),
    };
    registry.register(
        "requests",
        "Requests by route, status and decision",
        m.requests.clone(),
    );
    registry.register(
        "request_duration_seconds",
        "Time from request head to last response byte",
        m.request_seconds.clone(),
    );
    registry.register(
        "upstream_duration_seconds",
        "Time from forwarding to the upstream's response head",
        m.upstream_seconds.clone(),
    );
    registry.register(
        "auth_failures",
        "Refused credentials by reason",
        m.auth_failures.clone(),
    );
    registry.register(
        "rate_limited",
        "Requests refused by a rate limit",
        m.rate_limited.clone(),
    );
    registry.register(
        "upstream_errors",
        "Upstream failures by reason",
        m.upstream_errors.clone(),
    );
    registry.register(
        "jwks_refreshes",
        "JWKS fetches by issuer and result",
        m.jwks_refreshes.clone(),
    );
    registry.register(
        "token_verifications",
        "JWT signature checks by issuer (a token found in the verified-token cache is not checked again)",
        m.token_verifications.clone(),
    );
    registry.register(
        "policy_reloads",
        "Policy reloads by result",
        m.reloads.clone(),
    );
    registry.register(
        "sign_ins",
        "Sign-in callbacks by result (ok, or the refusal reason)",
        m.sign_ins.clone(),
    );
    registry.register(
        "session_refreshes",
        "Session refreshes at the provider's token endpoint by result",
        m.session_refreshes.clone(),
    );
    registry.register(
        "logouts",
        "Logouts by result (ok, no_session)",
        m.logouts.clone(),
    );
    registry.register(
        "open_connections",
        "Open client connections",
        m.open_connections.clone(),
    );
    Metrics { registry, ..m }
});

/// What the metrics want of a finished request (the access log's record
/// says the same and more; metrics sit below it and do not know it).
pub struct FinishedRequest<'a> {
    pub route: &'a Option<std::sync::Arc<str>>,
    pub listener: &'static str,
    pub status: u16,
    pub decision: Decision,
    pub reason: Option<crate::reason::Reason>,
    pub upstream_secs: Option<f64>,
    pub duration_secs: f64,
}

/// Records one finished request.
pub fn observe_request(done: &FinishedRequest<'_>) {
    let m = &*METRICS;
    count_request(RequestLabels {
        route: done.route.clone(),
        status: done.status,
        decision: done.decision.as_str(),
        listener: done.listener,
    });
    m.request_seconds.observe(done.duration_secs);
    if let Some(secs) = done.upstream_secs {
        m.upstream_seconds.observe(secs);
    }
    let reason = done.reason.map_or("", crate::reason::Reason::as_str);
    match done.decision {
        Decision::InvalidToken | Decision::Unauthenticated => {
            m.auth_failures
                .get_or_create(&ReasonLabels { reason })
                .inc();
        }
        Decision::RateLimited => {
            m.rate_limited.inc();
        }
        Decision::UpstreamError => {
            m.upstream_errors
                .get_or_create(&ReasonLabels { reason })
                .inc();
        }
        Decision::Allowed
        | Decision::Forbidden
        | Decision::NotFound
        | Decision::BadRequest
        | Decision::Unavailable => {}
    }
}

thread_local! {
    /// This thread's handles to the `requests` counters it has counted in.
    /// A handle shares its count with the family's, and the family never
    /// drops one, so a request is counted with a fast hash and no lock
    /// instead of the family's read lock and SipHash of the labels.
    static REQUEST_COUNTERS: RefCell<HashMap<RequestLabels, Counter, foldhash::fast::FixedState>> =
        RefCell::new(HashMap::with_hasher(foldhash::fast::FixedState::default()));
}

fn count_request(labels: RequestLabels) {
    REQUEST_COUNTERS.with_borrow_mut(|counters| {
        if let Some(counter) = counters.get(&labels) {
            counter.inc();
            return;
        }
        let counter = METRICS.requests.get_or_create(&labels).clone();
        counter.inc();
        counters.insert(labels, counter);
    });
}

/// One JWT signature check: a miss of the verified-token cache.
pub fn token_verified(issuer: &str) {
    METRICS
        .token_verifications
        .get_or_create(&IssuerLabels {
            issuer: issuer.to_string(),
        })
        .inc();
}

fn count(family: &Family<ResultLabels, Counter>, result: &'static str) {
    family.get_or_create(&ResultLabels { result }).inc();
}

fn ok_or_error(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "error"
    }
}

/// A sign-in callback: `ok`, or the reason it was refused.
pub fn sign_in(result: &'static str) {
    count(&METRICS.sign_ins, result);
}

/// A refresh grant at the provider.
pub fn session_refresh(ok: bool) {
    count(&METRICS.session_refreshes, ok_or_error(ok));
}

/// A logout: `ok` (a session ended) or `no_session`.
pub fn logout(result: &'static str) {
    count(&METRICS.logouts, result);
}

pub fn reload(ok: bool) {
    count(&METRICS.reloads, ok_or_error(ok));
}

pub fn jwks_refresh(issuer: &str, ok: bool) {
    let result = ok_or_error(ok);
    METRICS
        .jwks_refreshes
        .get_or_create(&IssuerResultLabels {
            issuer: issuer.to_string(),
            result,
        })
        .inc();
}

/// The Prometheus text exposition.
pub fn render() -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &METRICS.registry).is_err() {
        out.clear();
    }
    out
}
