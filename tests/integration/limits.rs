//! Rate limits, the failed-auth guard, the admin listener, metrics and the
//! revocation API, in one process.

use crate::harness::*;
use crate::idp::*;
use http::StatusCode;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use std::time::Duration;

fn limited_policy(extra_limits: &str, routes: &str) -> String {
    format!(
        "upstream:\n  url: echo\n{ADMIN}{}rate_limits:
  backend: memory
  default: {{ rate: 1/min, burst: 3 }}
  limits:
    tight: {{ rate: 1/min, burst: 1 }}
{extra_limits}{routes}",
        standard_keys()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_gets_its_burst_then_429_with_retry_after_and_headers() {
    let gw = Gateway::start(&limited_policy("", STANDARD_ROUTES));
    let client = gw.client();
    for remaining in [2, 1, 0] {
        let reply = client
            .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            reply.header("ratelimit-remaining"),
            Some(remaining.to_string())
        );
        let reset: u64 = reply
            .header("ratelimit-reset")
            .expect("reset")
            .parse()
            .expect("number");
        assert!((1..=180).contains(&reset), "{reset}");
    }
    let reply = client
        .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.json()["error"], "rate_limited");
    let retry: u64 = reply
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .expect("secs");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(reply.header("ratelimit-remaining").as_deref(), Some("0"));
    let log = gw.log_for(&reply.request_id()).await;
    assert_eq!(log["decision"], "rate_limited");
    // Another caller has its own bucket; public routes are not limited.
    let other = client
        .get(&gw.url("/orders/1"), &[("x-api-key", ADMIN_KEY)])
        .await;
    assert_eq!(other.status, 200);
    assert_eq!(other.header("ratelimit-remaining").as_deref(), Some("2"));
    let public = client.get(&gw.url("/healthz"), &[]).await;
    assert!(public.header("ratelimit-limit").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routes_limit_overrides_the_callers() {
    let routes = "routes:
  - name: tight
    path: /tight/**
    rate_limit: tight
  - name: orders
    path: /orders/**
";
    let gw = Gateway::start(&limited_policy("", routes));
    let client = gw.client();
    let first = client
        .get(&gw.url("/tight/1"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit-limit").as_deref(), Some("1"));
    let second = client
        .get(&gw.url("/tight/1"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(second.status, 429);
    let elsewhere = client
        .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(elsewhere.status, 200);
    assert_eq!(elsewhere.header("ratelimit-limit").as_deref(), Some("3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_lock_out_the_client_ip_before_credentials_are_checked() {
    let guard = "  failed_auth_per_ip: { rate: 1/min, burst: 2 }\n";
    let policy = limited_policy(guard, STANDARD_ROUTES);
    let gw = Gateway::start_with("  trusted_proxies: [127.0.0.0/8]", &policy);
    let client = gw.client();
    let from = |ip: &'static str| ("x-forwarded-for", ip);
    for _ in 0..2 {
        let reply = client
            .get(
                &gw.url("/orders/1"),
                &[("x-api-key", "agk_guess"), from("203.0.113.9")],
            )
            .await;
        assert_eq!(reply.status, 401);
    }
    // Out of attempts: even the right key is not checked.
    let reply = client
        .get(
            &gw.url("/orders/1"),
            &[("x-api-key", READER_KEY), from("203.0.113.9")],
        )
        .await;
    assert_eq!(reply.status, 429, "{:?}", reply.body);
    assert!(reply.header("retry-after").is_some());
    // The guard's bucket in the same headers a caller's own limit sends.
    assert_eq!(reply.header("ratelimit-limit").as_deref(), Some("2"));
    assert_eq!(reply.header("ratelimit-remaining").as_deref(), Some("0"));
    let reset: u64 = reply
        .header("ratelimit-reset")
        .and_then(|r| r.parse().ok())
        .expect("RateLimit-Reset");
    assert!(
        reset >= 60,
        "a 1/min bucket of 2 refills in over a minute: {reset}"
    );
    assert_eq!(
        gw.log_for(&reply.request_id()).await["decision"],
        "rate_limited"
    );
    // Requests without a credential still get their 401; other IPs are unaffected.
    let reply = client
        .get(&gw.url("/orders/1"), &[from("203.0.113.9")])
        .await;
    assert_eq!(reply.status, 401);
    let reply = client
        .get(
            &gw.url("/orders/1"),
            &[("x-api-key", READER_KEY), from("203.0.113.10")],
        )
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_health_and_metrics_count_every_request() {
    let gw = Gateway::start(&format!(
        "upstream:\n  url: echo\n{ADMIN}{}{STANDARD_ROUTES}",
        standard_keys()
    ));
    let (status, body) = admin_call(&gw, "GET", "/healthz", None, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = admin_call(&gw, "GET", "/readyz", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["status"],
        "ready"
    );

    let (_, before) = admin_call(&gw, "GET", "/metrics", None, "").await;
    let start = prometheus_total(&before, "authgate_requests_total");
    let client = gw.client();
    for _ in 0..7 {
        client
            .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
            .await;
    }
    client
        .get(&gw.url("/orders/1"), &[("x-api-key", "agk_bad")])
        .await;
    let mut text = String::new();
    for _ in 0..100 {
        text = admin_call(&gw, "GET", "/metrics", None, "").await.1;
        if prometheus_total(&text, "authgate_requests_total") >= start + 8.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        prometheus_total(&text, "authgate_requests_total"),
        start + 8.0,
        "{text}"
    );
    assert!(
        text.contains("authgate_auth_failures_total{reason=\"unknown_key\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("authgate_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("authgate_open_connections"), "{text}");
    assert!(!text.contains(READER_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_not_ready_while_an_issuer_has_no_keys() {
    let rs = SigningKey::generate(Algorithm::RS256, "rs");
    let idp = Idp::start(&[&rs]).await;
    idp.state
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let policy = format!(
        "upstream:\n  url: echo\n{ADMIN}jwt:
  - issuer: https://down.test/
    audiences: [{AUDIENCE}]
    algorithms: [RS256]
    jwks_url: {}
routes:
  - path: /**
",
        idp.url("/jwks.json")
    );
    let gw = Gateway::start(&policy);
    let (status, body) = admin_call(&gw, "GET", "/readyz", None, "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["status"], "not_ready");
    assert_eq!(v["failing"], json!(["jwks:https://down.test/"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revocation_api_needs_the_token_and_takes_effect_at_once() {
    let rs = SigningKey::generate(Algorithm::RS256, "rs");
    let idp = Idp::start(&[&rs]).await;
    let issuer = "https://rev.test/";
    let policy = format!(
        "upstream:\n  url: echo\n{ADMIN}jwt:
  - issuer: {issuer}
    audiences: [{AUDIENCE}]
    algorithms: [RS256]
    jwks_url: {}
routes:
  - path: /**
",
        idp.url("/jwks.json")
    );
    let gw = Gateway::start(&policy);
    let client = gw.client();
    let token = rs.sign(&claims(issuer, json!({"jti": "t-1"})), json!({}));
    let other = rs.sign(&claims(issuer, json!({"jti": "t-2"})), json!({}));
    let bearer = |t: &str| format!("Bearer {t}");
    assert_eq!(
        client
            .get(&gw.url("/x"), &[("authorization", &bearer(&token))])
            .await
            .status,
        200
    );

    let body = json!({"jti": "t-1", "exp": now() + 600}).to_string();
    for wrong in [None, Some("wrong-token"), Some("")] {
        let (status, _) = admin_call(&gw, "POST", "/revocations", wrong, &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong:?}");
    }
    assert_eq!(
        client
            .get(&gw.url("/x"), &[("authorization", &bearer(&token))])
            .await
            .status,
        200
    );
    for bad in [
        "{}",
        "{\"jti\": \"t-1\"}",
        "{\"jti\":\"t\",\"exp\":1,\"sub\":\"s\"}",
        "nope",
    ] {
        let (status, body) = admin_call(&gw, "POST", "/revocations", Some(ADMIN_TOKEN), bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).expect("json")["error"],
            "invalid_request"
        );
    }
    let (status, stored) = admin_call(&gw, "POST", "/revocations", Some(ADMIN_TOKEN), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    assert_eq!(
        serde_json::from_str::<Value>(&stored).expect("json")["jti"],
        "t-1"
    );

    let reply = client
        .get(&gw.url("/x"), &[("authorization", &bearer(&token))])
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        gw.log_for(&reply.request_id()).await["reason"],
        "token_revoked"
    );
    assert_eq!(
        client
            .get(&gw.url("/x"), &[("authorization", &bearer(&other))])
            .await
            .status,
        200
    );

    // Every token of a subject issued before a time.
    let sub_body = json!({"sub": "user-1", "iss": issuer, "before": now() + 1}).to_string();
    let (status, _) = admin_call(&gw, "POST", "/revocations", Some(ADMIN_TOKEN), &sub_body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        client
            .get(&gw.url("/x"), &[("authorization", &bearer(&other))])
            .await
            .status,
        401
    );
    let (status, list) = admin_call(&gw, "GET", "/revocations", Some(ADMIN_TOKEN), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&list)
            .expect("json")
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert!(!gw.output().contains(ADMIN_TOKEN));
}
