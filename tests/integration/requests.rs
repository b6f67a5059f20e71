//! Each docs/requests.md row this gateway produces: status, error code, headers,
//! JSON body with the request id, and the access log's decision and reason.

use crate::harness::*;

fn policy(upstream: &str) -> String {
    format!(
        "upstream:\n  url: {upstream}\n{}{STANDARD_ROUTES}",
        standard_keys()
    )
}

async fn assert_error(
    gw: &Gateway,
    reply: &Reply,
    status: u16,
    code: &str,
    decision: &str,
    reason: &str,
) {
    assert_eq!(reply.status.as_u16(), status, "{reply:?}");
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    let body = reply.json();
    assert_eq!(body["error"], code, "{body}");
    assert!(body["error_description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
    assert_eq!(body["request_id"], reply.request_id());
    let log = gw.log_for(&reply.request_id()).await;
    assert_eq!(log["status"], status);
    assert_eq!(log["decision"], decision, "{log}");
    assert_eq!(log["reason"], reason, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_request_reaches_the_upstream_and_is_logged() {
    let upstream = Upstream::start().await;
    let gw = Gateway::in_process(&policy(&upstream.url()));
    let reply = gw
        .client()
        .get(
            &gw.url("/orders/7?expand=lines"),
            &[("x-api-key", READER_KEY), ("user-agent", "itest/1")],
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"upstream ok");
    assert_eq!(upstream.last().uri, "/orders/7?expand=lines");
    let log = gw.log_for(&reply.request_id()).await;
    assert_eq!(log["decision"], "allowed");
    assert!(log["reason"].is_null());
    assert_eq!(log["route"], "orders-read");
    assert_eq!(log["auth_method"], "api_key");
    assert_eq!(log["subject"], "alice");
    assert_eq!(log["key_id"], "reader");
    assert_eq!(log["path"], "/orders/7");
    assert_eq!(log["method"], "GET");
    assert_eq!(log["client_ip"], "127.0.0.1");
    assert_eq!(log["bytes_out"], 11);
    assert_eq!(log["user_agent"], "itest/1");
    assert_eq!(log["tls_version"], "TLSv1.3");
    assert!(log["upstream_ms"].is_number());
    assert!(log["duration_ms"].is_number());
    assert!(log["ts"].as_str().is_some_and(|t| t.ends_with('Z')));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_gets_401_with_both_challenges() {
    let gw = Gateway::in_process(&policy("echo"));
    let reply = gw.client().get(&gw.url("/orders/7"), &[]).await;
    assert_error(
        &gw,
        &reply,
        401,
        "unauthorized",
        "unauthenticated",
        "missing_credential",
    )
    .await;
    assert_eq!(
        reply.headers_all("www-authenticate"),
        vec!["Bearer realm=\"authgate\"", "ApiKey realm=\"authgate\""]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_expired_and_disabled_keys_get_401_invalid_token() {
    let gw = Gateway::in_process(&policy("echo"));
    let client = gw.client();
    for (key, reason) in [
        ("agk_not-a-key-at-all", "unknown_key"),
        (EXPIRED_KEY, "key_expired"),
        (DISABLED_KEY, "key_disabled"),
    ] {
        let reply = client
            .get(&gw.url("/orders/7"), &[("x-api-key", key)])
            .await;
        assert_error(&gw, &reply, 401, "invalid_token", "invalid_token", reason).await;
        let challenge = reply.header("www-authenticate").expect("challenge");
        assert!(
            challenge.starts_with(
                "ApiKey realm=\"authgate\", error=\"invalid_token\", error_description=\""
            ),
            "{challenge}"
        );
    }
    // The Authorization form is the same credential.
    let reply = client
        .get(
            &gw.url("/orders/7"),
            &[("authorization", "ApiKey agk_wrong")],
        )
        .await;
    assert_error(
        &gw,
        &reply,
        401,
        "invalid_token",
        "invalid_token",
        "unknown_key",
    )
    .await;
    let reply = client
        .get(
            &gw.url("/orders/7"),
            &[("authorization", &format!("ApiKey {READER_KEY}"))],
        )
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_without_any_issuer_is_an_invalid_token() {
    let gw = Gateway::in_process(&policy("echo"));
    let reply = gw
        .client()
        .get(
            &gw.url("/orders/7"),
            &[("authorization", "Bearer eyJhbGciOiJub25lIn0.e30.")],
        )
        .await;
    assert_error(
        &gw,
        &reply,
        401,
        "invalid_token",
        "invalid_token",
        "no_token_issuer",
    )
    .await;
    assert!(reply
        .header("www-authenticate")
        .is_some_and(|c| c.starts_with("Bearer realm=\"authgate\", error=\"invalid_token\"")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_scope_gets_403_naming_all_route_scopes() {
    let gw = Gateway::in_process(&policy("echo"));
    let client = gw.client();
    let reply = client
        .get(&gw.url("/admin/users"), &[("x-api-key", READER_KEY)])
        .await;
    assert_error(
        &gw,
        &reply,
        403,
        "insufficient_scope",
        "forbidden",
        "missing_scope",
    )
    .await;
    assert_eq!(
        reply.header("www-authenticate").as_deref(),
        Some("ApiKey realm=\"authgate\", error=\"insufficient_scope\", scope=\"admin\"")
    );
    // Same path, other method: the write route's scope is what is missing.
    let req = http::Request::post(gw.url("/orders/7"))
        .header("x-api-key", READER_KEY)
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
        .expect("request");
    let reply = client.send(req).await;
    assert_error(
        &gw,
        &reply,
        403,
        "insufficient_scope",
        "forbidden",
        "missing_scope",
    )
    .await;
    assert!(reply
        .header("www-authenticate")
        .is_some_and(|c| c.ends_with("scope=\"orders:write\"")));
    let reply = client
        .get(&gw.url("/admin/users"), &[("x-api-key", ADMIN_KEY)])
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_paths_and_methods_get_404() {
    let gw = Gateway::in_process(&policy("echo"));
    let client = gw.client();
    // `/orders/**` must not match a sibling that merely shares the prefix.
    for path in ["/ordersx", "/nothing/here"] {
        let reply = client.get(&gw.url(path), &[("x-api-key", ADMIN_KEY)]).await;
        assert_error(&gw, &reply, 404, "not_found", "not_found", "no_route").await;
    }
    let req = http::Request::delete(gw.url("/healthz"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let reply = client.send(req).await;
    assert_eq!(reply.status, 200, "health route has no method list");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_credentials_get_400() {
    let gw = Gateway::in_process(&policy("echo"));
    let client = gw.client();
    let reply = client
        .get(
            &gw.url("/orders/7"),
            &[
                ("x-api-key", READER_KEY),
                ("authorization", &format!("ApiKey {ADMIN_KEY}")),
            ],
        )
        .await;
    assert_error(
        &gw,
        &reply,
        400,
        "invalid_request",
        "bad_request",
        "multiple_credentials",
    )
    .await;
    let reply = client
        .get(
            &gw.url("/orders/7"),
            &[("x-api-key", READER_KEY), ("x-api-key", READER_KEY)],
        )
        .await;
    assert_error(
        &gw,
        &reply,
        400,
        "invalid_request",
        "bad_request",
        "multiple_credentials",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_over_max_header_bytes_get_431() {
    let gw = Gateway::in_process_with("  max_header_bytes: 2KiB", &policy("echo"));
    let big = "x".repeat(3000);
    let reply = gw
        .client()
        .get(&gw.url("/healthz"), &[("x-big", &big)])
        .await;
    assert_error(
        &gw,
        &reply,
        431,
        "request_header_fields_too_large",
        "bad_request",
        "headers_too_large",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_refusing_connections_gives_502_and_a_slow_one_504() {
    // A port that was just free: connecting to it is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_addr = closed.local_addr().expect("addr");
    drop(closed);
    let gw = Gateway::in_process(&policy(&format!("http://{closed_addr}")));
    let reply = gw.client().get(&gw.url("/healthz"), &[]).await;
    assert_error(
        &gw,
        &reply,
        502,
        "bad_gateway",
        "upstream_error",
        "upstream_connect_failed",
    )
    .await;

    let upstream = Upstream::start().await;
    let slow = format!(
        "upstream:\n  url: {}\n  timeout: 300ms\n{}{STANDARD_ROUTES}\n  - name: slow\n    path: /slow\n    auth: none\n",
        upstream.url(),
        standard_keys()
    );
    let gw = Gateway::in_process(&slow);
    let reply = gw.client().get(&gw.url("/slow"), &[]).await;
    assert_error(
        &gw,
        &reply,
        504,
        "gateway_timeout",
        "upstream_error",
        "upstream_timeout",
    )
    .await;
}
