//! `rate_limits.anonymous`: one bucket per client IP for requests that need
//! no credential (`auth: none` routes, CORS preflights), in one process and
//! shared by replicas through a real Redis.

use crate::harness::{standard_keys, Gateway, Redis, READER_KEY};

const APP: &str = "https://app.example.com";

fn policy(backend: &str) -> String {
    format!(
        "upstream:\n  url: echo\n{}rate_limits:\n{backend}  anonymous: {{ rate: 1/min, burst: 3 }}\ncors:\n  - origins: [{APP}]\nroutes:\n  - name: public\n    path: /public/**\n    auth: none\n  - name: orders\n    path: /orders/**\n    scopes: [orders:read]\n",
        standard_keys()
    )
}

fn preflight() -> [(&'static str, &'static str); 2] {
    [("origin", APP), ("access-control-request-method", "GET")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_and_preflights_spend_the_ips_bucket_and_nothing_else_does() {
    let gw = Gateway::in_process(&policy(""));
    // Refused requests on a protected route do not count here.
    for _ in 0..5 {
        assert_eq!(gw.send("GET", "/orders/1", &[]).await.status, 401);
    }
    let first = gw.send("GET", "/public/a", &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit-limit").as_deref(), Some("3"));
    assert_eq!(first.header("ratelimit-remaining").as_deref(), Some("2"));
    assert_eq!(
        gw.send("OPTIONS", "/public/a", &preflight()).await.status,
        204
    );
    let third = gw.send("GET", "/public/b", &[]).await;
    assert_eq!(third.status, 200);
    assert_eq!(third.header("ratelimit-remaining").as_deref(), Some("0"));

    let refused = gw.send("GET", "/public/c", &[]).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["error"], "rate_limited");
    let retry: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(refused.header("ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(
        gw.send("OPTIONS", "/public/a", &preflight()).await.status,
        429
    );
    let line = gw.log_for(&refused.request_id()).await;
    assert_eq!(line["decision"], "rate_limited");

    // A caller with a credential is not anonymous: still served.
    let keyed = gw
        .send("GET", "/orders/1", &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(keyed.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_anonymous_bucket_through_redis() {
    const VAR: &str = "AUTHGATE_TEST_ANON_REDIS_URL";
    let redis = Redis::start();
    std::env::set_var(VAR, redis.url());
    let backend = format!("  backend: redis\n  redis_url_env: {VAR}\n");
    let one = Gateway::in_process(&policy(&backend));
    let two = Gateway::in_process(&policy(&backend));
    let mut statuses = Vec::new();
    for gw in [&one, &two, &one, &two] {
        statuses.push(gw.send("GET", "/public/x", &[]).await.status.as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    // The preflight's count is shared too.
    assert_eq!(
        one.send("OPTIONS", "/public/x", &preflight()).await.status,
        429
    );
}
