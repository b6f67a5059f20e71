//! Scale-out through a real `redis-server` that the test starts and stops:
//! shared limits, shared revocations, and an outage lived through.

use crate::harness::*;
use crate::idp::*;
use http::StatusCode;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use std::time::Duration;

/// A replica of the gateway on `redis`. The URL reaches the process through
/// a variable named after this Redis's port: the tests here run in
/// parallel, and one variable shared by all could be set by another test
/// between this test's set and its spawn.
fn replica(redis: &Redis, jwt: &str) -> Gateway {
    let var = format!("AUTHGATE_TEST_REDIS_URL_{}", redis.port);
    std::env::set_var(&var, redis.url());
    let policy = format!(
        "upstream:\n  url: echo\n{ADMIN}{}{jwt}rate_limits:
  backend: redis
  redis_url_env: {var}
  default: {{ rate: 1/min, burst: 3 }}
revocation:
  backend: redis
routes:
  - name: orders
    path: /orders/**
",
        standard_keys()
    );
    Gateway::start(&policy)
}

async fn readiness(gw: &Gateway) -> Value {
    let (_, body) = admin_call(gw, "GET", "/readyz", None, "").await;
    serde_json::from_str(&body).expect("readyz json")
}

async fn wait_for_status(gw: &Gateway, wanted: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = readiness(gw).await;
        if last["status"] == wanted {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("readyz never became {wanted}: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_burst() {
    let redis = Redis::start();
    let a = replica(&redis, "");
    let b = replica(&redis, "");
    let mut allowed = 0;
    let mut limited = 0;
    for i in 0..6 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let reply = gw
            .client()
            .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
            .await;
        match reply.status.as_u16() {
            200 => allowed += 1,
            429 => {
                limited += 1;
                assert!(reply.header("retry-after").is_some());
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(reply.header("ratelimit-limit").as_deref(), Some("3"));
    }
    assert_eq!(
        (allowed, limited),
        (3, 3),
        "the burst of 3 holds across both replicas"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_posted_to_one_replica_is_refused_by_the_other() {
    let redis = Redis::start();
    let rs = SigningKey::generate(Algorithm::RS256, "rs");
    let idp = Idp::start(&[&rs]).await;
    let issuer = "https://shared.test/";
    let jwt = format!(
        "jwt:\n  - issuer: {issuer}\n    audiences: [{AUDIENCE}]\n    algorithms: [RS256]\n    jwks_url: {}\n",
        idp.url("/jwks.json")
    );
    let a = replica(&redis, &jwt);
    let b = replica(&redis, &jwt);
    let token = format!(
        "Bearer {}",
        rs.sign(&claims(issuer, json!({"jti": "shared-1"})), json!({}))
    );
    assert_eq!(
        b.client()
            .get(&b.url("/orders/1"), &[("authorization", &token)])
            .await
            .status,
        200
    );
    let body = json!({"jti": "shared-1", "exp": now() + 600}).to_string();
    let (status, _) = admin_call(&a, "POST", "/revocations", Some(ADMIN_TOKEN), &body).await;
    assert_eq!(status, StatusCode::CREATED);
    // Replica B's mirror refreshes from Redis at least every 5 s.
    let mut refused = false;
    for _ in 0..200 {
        let reply = b
            .client()
            .get(&b.url("/orders/1"), &[("authorization", &token)])
            .await;
        if reply.status == 401 {
            assert_eq!(
                b.log_for(&reply.request_id()).await["reason"],
                "token_revoked"
            );
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "replica B never saw the revocation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_degrades_to_local_limits_and_recovers() {
    let mut redis = Redis::start();
    let gw = replica(&redis, "");
    assert_eq!(readiness(&gw).await["status"], "ready");
    let client = gw.client();
    assert_eq!(
        client
            .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
            .await
            .status,
        200
    );

    redis.stop();
    // Requests are still answered, limited per process.
    let reply = client
        .get(&gw.url("/orders/1"), &[("x-api-key", ADMIN_KEY)])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("ratelimit-limit").as_deref(), Some("3"));
    let degraded = wait_for_status(&gw, "degraded").await;
    assert_eq!(degraded["failing"], json!(["redis"]));
    for _ in 0..5 {
        let status = client
            .get(&gw.url("/orders/1"), &[("x-api-key", ADMIN_KEY)])
            .await
            .status;
        assert!(status == 200 || status == 429, "{status}");
    }
    // The line is written as the outage is marked; it reaches the captured
    // stderr a moment later.
    let stderr = gw.stderr_when(&["Redis unreachable"]).await;
    let outage_logs = stderr.matches("Redis unreachable").count();
    assert_eq!(outage_logs, 1, "logged once per outage:\n{stderr}");

    redis.restart();
    wait_for_status(&gw, "ready").await;
    let stderr = gw.stderr_when(&["Redis reachable"]).await;
    assert!(stderr.contains("Redis reachable"), "{stderr}");
    let reply = client
        .get(&gw.url("/orders/1"), &[("x-api-key", DISABLED_KEY)])
        .await;
    assert_eq!(reply.status, 401);
}
