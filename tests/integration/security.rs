//! Attacks, sent as the attacker would send them: path tricks over a raw TLS
//! socket, identity spoofing, and a scan for leaked keys.

use crate::harness::*;

fn policy(upstream: &str) -> String {
    format!(
        "upstream:\n  url: {upstream}\n{}{STANDARD_ROUTES}",
        standard_keys()
    )
}

async fn raw_get(gw: &Gateway, target: &str, extra: &str) -> String {
    gw.raw(
        format!("GET {target} HTTP/1.1\r\nhost: localhost\r\n{extra}connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_are_judged_and_forwarded_as_the_normalized_path() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&policy(&upstream.url()));
    // A reader key may read orders; `/orders/../admin/x` must be judged as /admin/x.
    let key = format!("x-api-key: {READER_KEY}\r\n");
    let raw = raw_get(&gw, "/orders/../admin/x", &key).await;
    assert_eq!(status_of(&raw), 403, "{raw}");
    let raw = raw_get(&gw, "/orders/%2e%2e/admin/x", &key).await;
    assert_eq!(status_of(&raw), 403, "{raw}");
    assert!(upstream.requests().is_empty());

    let admin = format!("x-api-key: {ADMIN_KEY}\r\n");
    let raw = raw_get(&gw, "/orders/../admin/x?q=1", &admin).await;
    assert_eq!(status_of(&raw), 200, "{raw}");
    assert_eq!(upstream.last().uri, "/admin/x?q=1");
    let raw = raw_get(&gw, "//orders//./7/", &admin).await;
    assert_eq!(status_of(&raw), 200, "{raw}");
    assert_eq!(upstream.last().uri, "/orders/7/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_separators_backslashes_nul_and_parameters_get_400() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&policy(&upstream.url()));
    let admin = format!("x-api-key: {ADMIN_KEY}\r\n");
    for (target, reason) in [
        ("/orders%2F..%2Fadmin/x", "encoded_separator"),
        ("/orders/%5c..%5cadmin", "encoded_separator"),
        ("/orders/7%00.json", "nul_in_path"),
        ("/admin;x=1/keys", "path_parameter"),
        ("/orders/%3B", "path_parameter"),
        ("/../admin", "path_above_root"),
    ] {
        let raw = raw_get(&gw, target, &admin).await;
        assert_eq!(status_of(&raw), 400, "{target}: {raw}");
        assert!(
            raw.contains("\"error\":\"invalid_request\""),
            "{target}: {raw}"
        );
        let id = raw
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .expect("request id")
            .trim()
            .to_string();
        let log = gw.log_for(&id).await;
        assert_eq!(log["decision"], "bad_request");
        assert_eq!(log["reason"], reason, "{target}");
    }
    // A raw backslash never reaches routing either (hyper or the gateway refuses it).
    let raw = raw_get(&gw, "/orders\\..\\admin", &admin).await;
    assert_eq!(status_of(&raw), 400, "{raw}");
    assert!(upstream.requests().is_empty(), "{:?}", upstream.requests());

    // The gateway still serves a legitimate request on a fresh connection.
    let reply = gw
        .client()
        .get(&gw.url("/orders/1"), &[("x-api-key", ADMIN_KEY)])
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_slash_cannot_slip_past_an_exact_route() {
    let upstream = Upstream::start().await;
    let routes = "routes:
  - name: keys-admin
    path: /admin/keys
    scopes: [admin]
  - name: admin-read
    path: /admin/**
    scopes: [orders:read]
";
    let gw = Gateway::start(&format!(
        "upstream:\n  url: {}\n{}{routes}",
        upstream.url(),
        standard_keys()
    ));
    let reply = gw
        .client()
        .get(&gw.url("/admin/keys/"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(gw.log_for(&reply.request_id()).await["route"], "keys-admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_the_gateway_prints_contains_a_key() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&policy(&upstream.url()));
    let client = gw.client();
    for key in ALL_KEYS {
        client
            .get(&gw.url("/orders/1"), &[("x-api-key", key)])
            .await;
        client
            .get(
                &gw.url("/admin/1"),
                &[("authorization", &format!("ApiKey {key}"))],
            )
            .await;
        client
            .get(
                &gw.url("/orders/1"),
                &[("authorization", &format!("Bearer {key}"))],
            )
            .await;
        client
            .get(
                &gw.url("/orders/1"),
                &[
                    ("x-api-key", key),
                    ("authorization", &format!("ApiKey {key}")),
                ],
            )
            .await;
        client.get(&gw.url(&format!("/orders/1?{key}")), &[]).await;
    }
    // Let the access-log writer catch up before reading.
    let last = client.get(&gw.url("/healthz"), &[]).await;
    gw.log_for(&last.request_id()).await;
    let output = gw.output();
    assert!(output.lines().count() > 20, "{output}");
    for key in ALL_KEYS {
        assert!(!output.contains(key), "key leaked into output:\n{output}");
        // Not even its distinctive tail.
        assert!(
            !output.contains(&key[10..]),
            "key fragment leaked:\n{output}"
        );
    }
}
