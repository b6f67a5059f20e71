//! Hostile clients and broken upstreams, sent as raw bytes over TLS, each
//! followed by proof that the gateway still serves a legitimate request.

use crate::harness::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn policy(upstream: &str) -> String {
    format!("upstream:\n  url: {upstream}\n{}{STANDARD_ROUTES}  - name: ws\n    path: /ws/**\n    scopes: [orders:read]\n    websocket: true\n", standard_keys())
}

fn refused(raw: &str) -> bool {
    raw.is_empty() || raw.starts_with("HTTP/1.1 400")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_and_malformed_framing_are_refused_and_never_forwarded() {
    let upstream = Upstream::start().await;
    let gw = Gateway::in_process(&policy(&upstream.url()));
    let key = format!("x-api-key: {ADMIN_KEY}\r\nconnection: close\r\n");
    let cases: Vec<(&str, String)> = vec![
        ("differing CL", format!("POST /orders/1 HTTP/1.1\r\nhost: localhost\r\n{key}content-length: 5\r\ncontent-length: 6\r\n\r\nhello!")),
        ("empty CL", format!("POST /orders/1 HTTP/1.1\r\nhost: localhost\r\n{key}content-length: \r\n\r\n")),
        ("non-numeric CL", format!("POST /orders/1 HTTP/1.1\r\nhost: localhost\r\n{key}content-length: five\r\n\r\nhello")),
        ("TE not chunked", format!("POST /orders/1 HTTP/1.1\r\nhost: localhost\r\n{key}transfer-encoding: gzip\r\n\r\nxxxx")),
        ("TE chunked not last", format!("POST /orders/1 HTTP/1.1\r\nhost: localhost\r\n{key}transfer-encoding: chunked, gzip\r\n\r\n0\r\n\r\n")),
        ("TE with extra coding", format!("POST /orders/1 HTTP/1.1\r\nhost: localhost\r\n{key}transfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n")),
        ("obs-fold", format!("GET /orders/1 HTTP/1.1\r\nhost: localhost\r\n{key}x-folded: a\r\n  b\r\n\r\n")),
        ("empty header name", format!("GET /orders/1 HTTP/1.1\r\nhost: localhost\r\n{key}: nameless\r\n\r\n")),
        ("NUL in value", format!("GET /orders/1 HTTP/1.1\r\nhost: localhost\r\n{key}x-nul: a\0b\r\n\r\n")),
        ("bare CR in value", format!("GET /orders/1 HTTP/1.1\r\nhost: localhost\r\n{key}x-cr: a\rb\r\n\r\n")),
        ("absolute-form for another host", format!("GET http://evil.example/orders/1 HTTP/1.1\r\nhost: localhost\r\n{key}\r\n")),
        ("CONNECT", format!("CONNECT evil.example:443 HTTP/1.1\r\nhost: evil.example:443\r\n{key}\r\n")),
    ];
    for (name, raw) in &cases {
        let answer = gw.raw(raw.as_bytes()).await;
        assert!(
            refused(&answer),
            "{name}: {}",
            answer.lines().next().unwrap_or("")
        );
    }
    assert!(
        upstream.requests().is_empty(),
        "forwarded: {:?}",
        upstream.requests()
    );
    // CL and TE together: hyper drops the Content-Length, reads the body as
    // chunked and closes the connection after answering (RFC 9112 §6.3), so
    // the smuggled second request is never even parsed.
    let smuggle = format!("POST /orders/1 HTTP/1.1\r\nhost: localhost\r\n{key}content-length: 40\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/x HTTP/1.1\r\nhost: localhost\r\n\r\n");
    let answer = gw.raw(smuggle.as_bytes()).await;
    assert_eq!(
        answer.matches("HTTP/1.1 ").count(),
        1,
        "{}",
        answer.lines().next().unwrap_or("")
    );
    assert!(answer.contains("connection: close"));
    let seen: Vec<String> = upstream.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(seen, vec!["/orders/1".to_string()]);
    assert_eq!(upstream.last().body_bytes, 0);
    assert!(upstream
        .last()
        .headers
        .get("content-length")
        .is_none_or(|v| v == "0"));

    // The same Content-Length twice is one unambiguous length (RFC 9110 §8.6):
    // hyper keeps a single value, and that is what the upstream gets.
    let twice = format!("POST /orders/2 HTTP/1.1\r\nhost: localhost\r\n{key}content-length: 5\r\ncontent-length: 5\r\n\r\nhello");
    assert!(gw.raw(twice.as_bytes()).await.starts_with("HTTP/1.1 200"));
    let got = upstream.last();
    assert_eq!(got.uri, "/orders/2");
    assert_eq!(got.headers.get_all("content-length").iter().count(), 1);
    assert_eq!(got.body_bytes, 5);

    let reply = gw
        .client()
        .get(&gw.url("/orders/1"), &[("x-api-key", ADMIN_KEY)])
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_gets_408() {
    let upstream = Upstream::start().await;
    let gw = Gateway::in_process_with("  body_timeout: 300ms", &policy(&upstream.url()));
    let mut tls = gw.tls_connect().await;
    let head = format!("POST /orders/1 HTTP/1.1\r\nhost: localhost\r\nx-api-key: {ADMIN_KEY}\r\ncontent-length: 100\r\n\r\nonly-a-little");
    tls.write_all(head.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(CLIENT_TIMEOUT, tls.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_upstream_answers_become_502() {
    // A "server" that answers with a malformed status line.
    let garbage = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let garbage_addr = garbage.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = garbage.accept().await {
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp.write_all(b"HTTP/1.1 OK maybe\r\nx: y\r\n\r\n").await;
        }
    });
    let gw = Gateway::in_process(&policy(&format!("http://{garbage_addr}")));
    let reply = gw.client().get(&gw.url("/healthz"), &[]).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json()["error"], "bad_gateway");

    let upstream = Upstream::start().await;
    let routes = format!(
        "{}  - name: huge\n    path: /huge-header\n    auth: none\n",
        policy(&upstream.url())
    );
    let gw = Gateway::in_process(&routes);
    let reply = gw.client().get(&gw.url("/huge-header"), &[]).await;
    assert_eq!(reply.status, 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_max_connections_wait_for_a_free_slot() {
    let gw = Gateway::in_process_with("  max_connections: 2\n  workers: 1", &policy("echo"));
    let first = gw.tls_connect().await;
    let second = gw.tls_connect().await;
    let addr = gw.addr;
    let cert = gw.cert_path();
    let third = tokio::spawn(async move {
        let client = TestClient::trusting(&cert);
        client
            .get(&format!("https://{addr}/healthz"), &[])
            .await
            .status
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served while two were open"
    );
    drop(first);
    let status = third.await.expect("third request");
    assert_eq!(status, 200);
    drop(second);
}

async fn upgrade_request(
    gw: &Gateway,
    key: Option<&str>,
) -> (
    String,
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) {
    upgrade_request_to(gw, "/ws/chat", key, "dGhlIHNhbXBsZSBub25jZQ==").await
}

/// A raw WebSocket upgrade request; returns the response head and the stream.
pub async fn upgrade_request_to(
    gw: &Gateway,
    path: &str,
    key: Option<&str>,
    websocket_key: &str,
) -> (
    String,
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) {
    let mut tls = gw.tls_connect().await;
    let credential = key
        .map(|k| format!("x-api-key: {k}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: localhost\r\n{credential}connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: {websocket_key}\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(CLIENT_TIMEOUT, tls.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => break,
        }
    }
    (String::from_utf8_lossy(&head).into_owned(), tls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_pass_after_auth_and_frames_flow_both_ways() {
    let upstream = Upstream::start().await;
    let gw = Gateway::in_process(&policy(&upstream.url()));
    let (head, mut tls) = upgrade_request(&gw, Some(READER_KEY)).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );
    let got = upstream.last();
    assert_eq!(
        got.headers.get("x-auth-subject").map(|v| v.as_bytes()),
        Some(&b"alice"[..])
    );
    assert!(got.headers.get("x-api-key").is_none());
    // A masked text frame "hi", and back the same bytes through the tunnel.
    let frame = [0x81u8, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
    tls.write_all(&frame).await.expect("send frame");
    let mut echoed = [0u8; 8];
    tokio::time::timeout(CLIENT_TIMEOUT, tls.read_exact(&mut echoed))
        .await
        .expect("echo in time")
        .expect("echo");
    assert_eq!(echoed, frame);

    // Without a credential: the normal 401, and no upgrade.
    let before = upstream.requests().len();
    let (head, _) = upgrade_request(&gw, None).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert_eq!(upstream.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_refusing_the_upgrade_ends_the_exchange_cleanly() {
    let gw = Gateway::in_process(&policy("echo"));
    let (head, _) = upgrade_request(&gw, Some(READER_KEY)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let reply = gw
        .client()
        .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(reply.status, 200);
}

async fn h2_connect(
    gw: &Gateway,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    tokio::task::JoinHandle<()>,
) {
    let config = tls_client_config(&gw.cert_path(), &[b"h2"]);
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(gw.addr)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("tls");
    let (client, connection) = h2::client::handshake(tls).await.expect("h2 handshake");
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, task)
}

fn h2_request(gw: &Gateway, path: &str) -> http::Request<()> {
    http::Request::get(format!("https://localhost:{}{path}", gw.addr.port()))
        .body(())
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_does_not_starve_other_clients() {
    let upstream = Upstream::start().await;
    let gw = Gateway::in_process(&policy(&upstream.url()));
    let (client, task) = h2_connect(&gw).await;
    let mut client = client;
    let flood_request = h2_request(&gw, "/slow");
    // CVE-2023-44487: open a stream and cancel it at once, again and again,
    // while a well-behaved client on another connection keeps asking.
    let flood = tokio::spawn(async move {
        let mut sent = 0;
        for _ in 0..10_000 {
            let ready = tokio::time::timeout(CLIENT_TIMEOUT, client.clone().ready()).await;
            let Ok(Ok(ready)) = ready else { break };
            client = ready;
            let req = http::Request::get(flood_request.uri().clone())
                .body(())
                .expect("request");
            match client.send_request(req, true) {
                Ok((_response, mut stream)) => {
                    stream.send_reset(h2::Reason::CANCEL);
                    sent += 1;
                }
                Err(_) => break,
            }
        }
        sent
    });
    let polite = gw.client_h2();
    for _ in 0..5 {
        assert_eq!(polite.get(&gw.url("/healthz"), &[]).await.status, 200);
    }
    // Whether h2 closed the flooding connection (GOAWAY after too many
    // resets before accept) or kept up with it, the flood ends and nobody starved.
    let sent = flood.await.expect("flood task");
    assert!(sent > 0);
    task.abort();
    assert_eq!(
        gw.client_h2().get(&gw.url("/healthz"), &[]).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_held_connections_do_not_stop_a_new_client() {
    let gw = Gateway::in_process(&policy("echo"));
    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(gw.tls_connect().await);
    }
    let reply = gw.client().get(&gw.url("/healthz"), &[]).await;
    assert_eq!(reply.status, 200);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_header_lists_over_the_limit_are_refused() {
    let gw = Gateway::in_process_with("  max_header_bytes: 4KiB", &policy("echo"));
    let (client, _task) = h2_connect(&gw).await;
    let mut client = client.ready().await.expect("ready");
    let mut req = h2_request(&gw, "/healthz");
    for i in 0..20 {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(format!("x-pad-{i}").as_bytes()).expect("name"),
            http::HeaderValue::from_str(&"p".repeat(1000)).expect("value"),
        );
    }
    let outcome = match client.send_request(req, true) {
        Ok((response, _)) => tokio::time::timeout(CLIENT_TIMEOUT, response)
            .await
            .expect("in time")
            .map(|r| r.status().as_u16()),
        Err(e) => Err(e),
    };
    // Either a 431 or a refused stream/connection: never a 200 for 20 KB of headers.
    assert!(!matches!(outcome, Ok(200)), "{outcome:?}");
    let reply = gw.client_h2().get(&gw.url("/healthz"), &[]).await;
    assert_eq!(reply.status, 200);
}
