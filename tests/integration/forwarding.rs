//! What the upstream actually receives: identity headers, forwarding
//! headers, no spoofed identity, no credential unless asked, streamed bodies.

use crate::harness::*;
use bytes::Bytes;
use http_body_util::Full;

fn policy(upstream: &str, upstream_extra: &str) -> String {
    format!(
        "upstream:\n  url: {upstream}\n{upstream_extra}\n{}{STANDARD_ROUTES}",
        standard_keys()
    )
}

fn header(r: &Received, name: &str) -> Option<String> {
    r.headers
        .get(name)
        .map(|v| v.to_str().expect("ascii").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_arrive_and_spoofed_ones_never_do() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&policy(&upstream.url(), ""));
    let client = gw.client();
    let spoofed = [
        ("X-Auth-Subject", "root"),
        ("x-auth-scopes", "admin"),
        ("X-AUTH-KEY-ID", "admin"),
        ("X-Auth-Anything-Else", "1"),
        ("x-api-key", READER_KEY),
    ];
    let reply = client.get(&gw.url("/orders/1"), &spoofed).await;
    assert_eq!(reply.status, 200);
    let got = upstream.last();
    assert_eq!(header(&got, "x-auth-subject").as_deref(), Some("alice"));
    assert_eq!(header(&got, "x-auth-method").as_deref(), Some("api_key"));
    assert_eq!(
        header(&got, "x-auth-scopes").as_deref(),
        Some("orders:read")
    );
    assert_eq!(header(&got, "x-auth-key-id").as_deref(), Some("reader"));
    assert!(header(&got, "x-auth-anything-else").is_none());
    assert_eq!(got.headers.get_all("x-auth-subject").iter().count(), 1);

    // A public route still strips them: callers cannot inject identity anywhere.
    let reply = client
        .get(
            &gw.url("/healthz"),
            &[("X-Auth-Subject", "root"), ("x-AUTH-method", "jwt")],
        )
        .await;
    assert_eq!(reply.status, 200);
    let got = upstream.last();
    assert!(
        got.headers
            .keys()
            .all(|k| !k.as_str().starts_with("x-auth-")),
        "{:?}",
        got.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_header_cannot_remove_what_the_gateway_sets() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&policy(&upstream.url(), ""));
    let reply = gw
        .client()
        .get(
            &gw.url("/orders/1"),
            &[
                ("x-api-key", READER_KEY),
                ("connection", "X-Auth-Subject, X-Forwarded-For, x-private"),
                ("x-private", "hop"),
                ("keep-alive", "timeout=5"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200);
    let got = upstream.last();
    assert_eq!(header(&got, "x-auth-subject").as_deref(), Some("alice"));
    assert_eq!(
        header(&got, "x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert!(header(&got, "x-private").is_none());
    assert!(header(&got, "keep-alive").is_none());
    // The upstream's own hop-by-hop headers do not reach the client either.
    assert!(reply.header("x-upstream-private").is_none());
    assert_eq!(reply.header("x-upstream").as_deref(), Some("yes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_forwarded_only_with_pass_credentials() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&policy(&upstream.url(), ""));
    gw.client()
        .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
        .await;
    assert!(header(&upstream.last(), "x-api-key").is_none());
    gw.client()
        .get(
            &gw.url("/orders/1"),
            &[("authorization", &format!("ApiKey {READER_KEY}"))],
        )
        .await;
    assert!(header(&upstream.last(), "authorization").is_none());

    let gw = Gateway::start(&policy(&upstream.url(), "  pass_credentials: true"));
    gw.client()
        .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(
        header(&upstream.last(), "x-api-key").as_deref(),
        Some(READER_KEY)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_and_request_id() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&policy(&upstream.url(), ""));
    let client = gw.client();
    // An untrusted peer's X-Forwarded-For is replaced, not appended to.
    let reply = client
        .get(
            &gw.url("/healthz"),
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-request-id", "trace-42.a_b"),
            ],
        )
        .await;
    assert_eq!(reply.request_id(), "trace-42.a_b");
    let got = upstream.last();
    assert_eq!(
        header(&got, "x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(header(&got, "x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(header(&got, "x-forwarded-host"), Some(gw.addr.to_string()));
    assert_eq!(
        header(&got, "x-request-id").as_deref(),
        Some("trace-42.a_b")
    );
    assert_eq!(gw.log_for("trace-42.a_b").await["client_ip"], "127.0.0.1");

    // A malformed id is replaced by a generated one, sent both ways.
    let reply = client
        .get(
            &gw.url("/healthz"),
            &[("x-request-id", "bad id with spaces")],
        )
        .await;
    let id = reply.request_id();
    assert_ne!(id, "bad id with spaces");
    assert_eq!(header(&upstream.last(), "x-request-id"), Some(id));

    // From a trusted proxy, the list is kept and the client is the right-most untrusted entry.
    let trusted = Gateway::start_with(
        "  trusted_proxies: [127.0.0.0/8]",
        &policy(&upstream.url(), ""),
    );
    let reply = trusted
        .client()
        .get(
            &trusted.url("/healthz"),
            &[("x-forwarded-for", "6.6.6.6, 198.51.100.9")],
        )
        .await;
    assert_eq!(
        header(&upstream.last(), "x-forwarded-for").as_deref(),
        Some("6.6.6.6, 198.51.100.9, 127.0.0.1")
    );
    assert_eq!(
        trusted.log_for(&reply.request_id()).await["client_ip"],
        "198.51.100.9"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_through_alpn_works_end_to_end() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&policy(&upstream.url(), ""));
    let reply = gw
        .client_h2()
        .get(
            &gw.url("/orders/9"),
            &[("x-api-key", READER_KEY), ("x-auth-subject", "root")],
        )
        .await;
    assert_eq!(reply.version, http::Version::HTTP_2);
    assert_eq!(reply.status, 200);
    let got = upstream.last();
    assert_eq!(got.uri, "/orders/9");
    assert_eq!(header(&got, "x-auth-subject").as_deref(), Some("alice"));
    assert_eq!(header(&got, "x-forwarded-host"), Some(gw.addr.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_stream_through_and_oversized_ones_get_413() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start_with("  max_body_bytes: 64KiB", &policy(&upstream.url(), ""));
    let client = gw.client();
    let post = |body: Bytes| {
        http::Request::post(gw.url("/orders/1"))
            .header("x-api-key", ADMIN_KEY)
            .body(Full::new(body))
            .expect("request")
    };
    let reply = client.send(post(Bytes::from(vec![b'a'; 60_000]))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(upstream.last().body_bytes, 60_000);
    assert_eq!(upstream.last().method, "POST");
    let before = upstream.requests().len();

    // Announced length over the limit: refused before anything is forwarded.
    // Raw socket, since the gateway answers before reading the body and a
    // client library may fail on the unread rest instead of reading the 413.
    let raw = gw
        .raw(format!("POST /orders/1 HTTP/1.1\r\nhost: localhost\r\nx-api-key: {ADMIN_KEY}\r\ncontent-length: 70000\r\n\r\n").as_bytes())
        .await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("payload_too_large"), "{raw}");
    assert_eq!(upstream.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_the_limit_gets_413_and_never_fully_reaches_the_upstream() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = Upstream::start().await;
    let gw = Gateway::start_with("  max_body_bytes: 64KiB", &policy(&upstream.url(), ""));
    let mut tls = gw.tls_connect().await;
    let head = format!(
        "POST /orders/1 HTTP/1.1\r\nhost: localhost\r\nx-api-key: {ADMIN_KEY}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![b'z'; 16 * 1024];
    // 10 chunks of 16 KiB = 160 KiB against a 64 KiB limit; stop writing once refused.
    for _ in 0..10 {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        if tls.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = tls.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(CLIENT_TIMEOUT, tls.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
    for got in upstream.requests() {
        assert!(
            got.body_bytes <= 64 * 1024,
            "upstream saw {} bytes",
            got.body_bytes
        );
        assert!(!got.body_complete, "upstream saw a complete oversized body");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_upstream_answers_with_the_forwarded_request() {
    let gw = Gateway::start(&policy("echo", ""));
    let reply = gw
        .client()
        .get(&gw.url("/orders/./5?x=1&y=2"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(reply.status, 200);
    let echoed = reply.json();
    assert_eq!(echoed["method"], "GET");
    assert_eq!(echoed["path"], "/orders/5");
    assert_eq!(echoed["query"], "x=1&y=2");
    assert_eq!(echoed["headers"]["x-auth-subject"], "alice");
    assert!(echoed["headers"].get("x-api-key").is_none());
}
