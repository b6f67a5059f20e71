//! The process and its connections over time: signals, reload, timeouts.

use crate::harness::*;
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn signal(gw: &Gateway, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &gw.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Reads until the peer closes; `None` if it was still open at the timeout.
async fn read_until_closed(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> Option<String> {
    let mut out = Vec::new();
    match tokio::time::timeout(CLIENT_TIMEOUT, tls.read_to_end(&mut out)).await {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let upstream = Upstream::start().await;
    let routes = "routes:\n  - name: slow\n    path: /slow\n    auth: none\n";
    let mut gw = Gateway::start(&format!("upstream:\n  url: {}\n{routes}", upstream.url()));
    let client = gw.client();
    let url = gw.url("/slow");
    let in_flight = tokio::spawn(async move { client.get(&url, &[]).await });
    while upstream.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&gw, "-TERM");
    let reply = in_flight.await.expect("request task");
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"upstream ok");
    let status = gw.wait().expect("gateway exited");
    assert_eq!(status.code(), Some(0), "{}", gw.stderr_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_valid_policy_and_keeps_the_old_one_when_broken() {
    let only_admin = format!(
        "api_keys:\n  keys:\n    - id: admin\n      sha256: {}\n      scopes: [orders:read]\n",
        digest(ADMIN_KEY)
    );
    let routes = "routes:\n  - name: orders\n    path: /orders/**\n    scopes: [orders:read]\n";
    let gw = Gateway::start(&format!("upstream:\n  url: echo\n{only_admin}{routes}"));
    let client = gw.client();
    let path = gw.dir.path().join("gateway.yaml");
    let original = std::fs::read_to_string(&path).expect("policy");
    let reply = client
        .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(reply.status, 401);

    // Add the reader key: it works after SIGHUP, without a restart.
    let with_reader = original.replace(
        "api_keys:\n  keys:\n",
        &format!(
            "api_keys:\n  keys:\n    - id: reader\n      sha256: {}\n      scopes: [orders:read]\n",
            digest(READER_KEY)
        ),
    );
    std::fs::write(&path, &with_reader).expect("write");
    signal(&gw, "-HUP");
    let mut status = 0;
    for _ in 0..200 {
        status = client
            .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
            .await
            .status
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, 200, "{}", gw.stderr_text());

    // A broken file is refused; the previous policy keeps serving.
    std::fs::write(
        &path,
        with_reader.replace("scopes: [orders:read]\n", "scopez: [orders:read]\n"),
    )
    .expect("write");
    signal(&gw, "-HUP");
    for _ in 0..200 {
        if gw.stderr_text().contains("reload refused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let stderr = gw.stderr_text();
    assert!(stderr.contains("reload refused"), "{stderr}");
    assert!(stderr.contains("gateway.yaml:"), "{stderr}");
    assert!(stderr.contains("unknown field `scopez`"), "{stderr}");
    let reply = client
        .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let routes = "routes:\n  - name: health\n    path: /healthz\n    auth: none\n";
    let gw = Gateway::start_with(
        "  idle_timeout: 300ms",
        &format!("upstream:\n  url: echo\n{routes}"),
    );
    let mut tls = gw.tls_connect().await;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("write");
    let text = read_until_closed(&mut tls)
        .await
        .expect("idle connection closed by the gateway");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_cut_off() {
    let routes = "routes:\n  - name: health\n    path: /healthz\n    auth: none\n";
    let gw = Gateway::start_with(
        "  header_read_timeout: 300ms",
        &format!("upstream:\n  url: echo\n{routes}"),
    );
    let mut tls = gw.tls_connect().await;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-slow: ")
        .await
        .expect("write");
    assert!(
        read_until_closed(&mut tls).await.is_some(),
        "half-sent headers kept the connection open"
    );
    // Another client is served normally.
    let reply = gw.client().get(&gw.url("/healthz"), &[]).await;
    assert_eq!(reply.status, 200);
}
