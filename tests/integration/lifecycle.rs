//! The process and its connections over time: signals, reload, timeouts.

use crate::harness::*;
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    // One worker: the current-thread runtime drains too.
    let mut gw = Gateway::start_with(
        "  workers: 1",
        &format!("upstream:\n  url: {}\n{routes}", upstream.url()),
    );
    let client = gw.client();
    let url = gw.url("/slow");
    let in_flight = tokio::spawn(async move { client.get(&url, &[]).await });
    while upstream.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.signal("-TERM");
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
    gw.signal("-HUP");
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
    gw.signal("-HUP");
    // The refusal is one event over several lines, each captured on its own:
    // wait for every line asserted on, not only the first.
    let stderr = gw
        .stderr_when(&["reload refused", "gateway.yaml:", "unknown field `scopez`"])
        .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_may_rest_longer_than_header_read_timeout() {
    // header_read_timeout bounds a head on its way; the quiet between two
    // requests is idle_timeout's to judge.
    let routes = "routes:\n  - name: health\n    path: /healthz\n    auth: none\n";
    let gw = Gateway::start_with(
        "  header_read_timeout: 300ms\n  idle_timeout: 60s",
        &format!("upstream:\n  url: echo\n{routes}"),
    );
    let mut tls = gw.tls_connect().await;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut first = vec![0u8; 16 * 1024];
    let n = tls.read(&mut first).await.expect("read");
    // Three times header_read_timeout without a byte either way.
    tokio::time::sleep(Duration::from_millis(900)).await;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let rest = read_until_closed(&mut tls)
        .await
        .expect("closed after the second answer");
    let text = format!("{}{rest}", String::from_utf8_lossy(&first[..n]));
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
}

fn reader_policy(keys: &[(&str, &str)], extra: &str) -> String {
    let mut text = String::from("upstream:\n  url: echo\napi_keys:\n  keys:\n");
    for (id, key) in keys {
        text.push_str(&format!(
            "    - id: {id}\n      sha256: {}\n      scopes: [orders:read]\n",
            digest(key)
        ));
    }
    text.push_str(extra);
    text.push_str("routes:\n  - name: orders\n    path: /orders/**\n");
    text
}

/// Writes the policy as editors do: a new file renamed over the old one.
fn replace_file(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

async fn status_with(gw: &Gateway, key: &str) -> u16 {
    gw.client()
        .get(&gw.url("/orders/1"), &[("x-api-key", key)])
        .await
        .status
        .as_u16()
}

async fn eventually(gw: &Gateway, key: &str, wanted: u16) {
    let mut got = 0;
    for _ in 0..200 {
        got = status_with(gw, key).await;
        if got == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "status stayed {got}, wanted {wanted}:\n{}",
        gw.stderr_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_file_adds_and_removes_keys_without_a_restart() {
    let server = "server:\n  listen: 127.0.0.1:0\n  tls:\n    cert: gw.pem\n    key: gw-key.pem\n    generate_self_signed: true\n";
    let gw = Gateway::start_file(
        tempfile::tempdir().expect("tempdir"),
        &format!("{server}{}", reader_policy(&[("admin", ADMIN_KEY)], "")),
    );
    let path = gw.dir.path().join("gateway.yaml");
    assert_eq!(status_with(&gw, READER_KEY).await, 401);
    // The file watcher sees a rename-over, no signal needed.
    replace_file(
        &path,
        &format!(
            "{server}{}",
            reader_policy(&[("admin", ADMIN_KEY), ("reader", READER_KEY)], "")
        ),
    );
    eventually(&gw, READER_KEY, 200).await;
    replace_file(
        &path,
        &format!("{server}{}", reader_policy(&[("reader", READER_KEY)], "")),
    );
    eventually(&gw, ADMIN_KEY, 401).await;
    assert_eq!(status_with(&gw, READER_KEY).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_during_a_reload_completes() {
    let upstream = Upstream::start().await;
    let routes = "routes:\n  - name: slow\n    path: /slow\n    auth: none\n";
    let gw = Gateway::start(&format!("upstream:\n  url: {}\n{routes}", upstream.url()));
    let client = gw.client();
    let url = gw.url("/slow");
    let in_flight = tokio::spawn(async move { client.get(&url, &[]).await });
    while upstream.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let path = gw.dir.path().join("gateway.yaml");
    let text = std::fs::read_to_string(&path).expect("policy");
    std::fs::write(&path, text.replace("name: slow", "name: slow-renamed")).expect("write");
    gw.signal("-HUP");
    let reply = in_flight.await.expect("task");
    assert_eq!(reply.status, 200);
    // The request that started under the old policy logs the old route name.
    assert_eq!(gw.log_for(&reply.request_id()).await["route"], "slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_certificate_is_served_to_new_connections_after_reload() {
    let gw = Gateway::start(&reader_policy(&[("reader", READER_KEY)], ""));
    let peer_cert = |tls: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>| {
        tls.get_ref().1.peer_certificates().expect("cert")[0]
            .as_ref()
            .to_vec()
    };
    let before = peer_cert(&gw.tls_connect().await);
    // A new pair for the same names, written over the files the policy names.
    let out = Command::new(binary())
        .args(["certs", "--out"])
        .arg(gw.dir.path().join("next"))
        .output()
        .expect("certs");
    assert!(out.status.success());
    for (from, to) in [
        ("next/gateway.pem", "gw.pem"),
        ("next/gateway-key.pem", "gw-key.pem"),
    ] {
        std::fs::rename(gw.dir.path().join(from), gw.dir.path().join(to)).expect("move");
    }
    gw.signal("-HUP");
    let expected = {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        CertificateDer::from_pem_file(gw.cert_path())
            .expect("new cert")
            .as_ref()
            .to_vec()
    };
    assert_ne!(before, expected);
    let mut served = before.clone();
    for _ in 0..200 {
        // The new certificate is trusted by a client built from the new file.
        let config = tls_client_config(&gw.cert_path(), &[b"http/1.1"]);
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(gw.addr)
            .await
            .expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        if let Ok(tls) = connector.connect(name, tcp).await {
            served = peer_cert(&tls);
            if served == expected {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(served, expected, "{}", gw.stderr_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reopens_the_log_file_without_losing_a_line() {
    let gw = Gateway::start(&reader_policy(
        &[("reader", READER_KEY)],
        "access_log:\n  format: json\n  output: access.log\n",
    ));
    let log = gw.dir.path().join("access.log");
    let rotated = gw.dir.path().join("access.log.1");
    let client = gw.client();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            client
                .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
                .await
                .request_id(),
        );
    }
    std::fs::rename(&log, &rotated).expect("rotate");
    gw.signal("-USR1");
    for _ in 0..200 {
        if gw.stderr_text().contains("access log reopened") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for _ in 0..5 {
        ids.push(
            client
                .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
                .await
                .request_id(),
        );
    }
    let mut lines = Vec::new();
    for _ in 0..200 {
        lines = [&rotated, &log]
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        if lines.len() >= ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for id in &ids {
        assert_eq!(
            lines.iter().filter(|l| l.contains(id.as_str())).count(),
            1,
            "{id} in {lines:?}"
        );
    }
    let new_file = std::fs::read_to_string(&log).expect("a new log file");
    assert!(
        new_file.contains(&ids[9]),
        "the newest line goes to the new file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_size_limits_and_names_what_needs_a_restart() {
    let gw = Gateway::start_with(
        "  max_body_bytes: 1KiB\n  workers: 1\n",
        "upstream:\n  url: echo\nroutes:\n  - name: all\n    path: /**\n    auth: none\n",
    );
    let post = |url: String| {
        http::Request::post(url)
            .body(http_body_util::Full::new(bytes::Bytes::from(vec![
                b'x';
                4096
            ])))
            .expect("request")
    };
    assert_eq!(gw.client().send(post(gw.url("/up"))).await.status, 413);

    let path = gw.dir.path().join("gateway.yaml");
    let policy = std::fs::read_to_string(&path).expect("policy");
    let raised = policy
        .replace("max_body_bytes: 1KiB", "max_body_bytes: 64KiB")
        .replace("workers: 1", "workers: 2");
    std::fs::write(&path, raised).expect("write");
    gw.signal("-HUP");
    let mut status = 0;
    for _ in 0..200 {
        // A fresh client: a new connection under the reloaded policy.
        status = gw.client().send(post(gw.url("/up"))).await.status.as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, 200, "{}", gw.stderr_text());
    // Written before the swap, but captured by a reader thread of its own.
    let stderr = gw.stderr_when(&["apply only after a restart"]).await;
    let line = stderr
        .lines()
        .find(|l| l.contains("apply only after a restart"))
        .unwrap_or_else(|| panic!("no restart line:\n{stderr}"));
    assert!(line.contains("server.workers"), "{line}");
    assert!(!line.contains("max_body_bytes"), "{line}");
}
