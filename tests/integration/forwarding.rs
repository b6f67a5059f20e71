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
    let gw = Gateway::in_process(&policy(&upstream.url(), ""));
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
    let gw = Gateway::in_process(&policy(&upstream.url(), ""));
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
    let gw = Gateway::in_process(&policy(&upstream.url(), ""));
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

    let gw = Gateway::in_process(&policy(&upstream.url(), "  pass_credentials: true"));
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
    let gw = Gateway::in_process(&policy(&upstream.url(), ""));
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
    let trusted = Gateway::in_process_with(
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
    let gw = Gateway::in_process(&policy(&upstream.url(), ""));
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
    let gw = Gateway::in_process_with("  max_body_bytes: 64KiB", &policy(&upstream.url(), ""));
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
    let gw = Gateway::in_process_with("  max_body_bytes: 64KiB", &policy(&upstream.url(), ""));
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
    let gw = Gateway::in_process(&policy("echo", ""));
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

/// An HTTPS upstream with its own self-signed certificate; returns its
/// address, the certificate file, and a counter of requests served.
async fn tls_upstream(
    dir: &std::path::Path,
) -> (
    std::net::SocketAddr,
    std::path::PathBuf,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let (cert_pem, key_pem) =
        authgate::tls::self_signed(&["127.0.0.1".into(), "localhost".into()]).expect("cert");
    let cert_path = dir.join("upstream.pem");
    std::fs::write(&cert_path, &cert_pem).expect("write cert");
    let certs = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("cert der")];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key der");
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let count = count.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let subject = req.headers().get("x-auth-subject").cloned();
                        async move {
                            let mut r =
                                http::Response::new(Full::new(Bytes::from_static(b"tls upstream")));
                            if let Some(s) = subject {
                                r.headers_mut().insert("x-saw-subject", s);
                            }
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, cert_path, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstreams_are_verified_against_the_configured_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr, ca, served) = tls_upstream(dir.path()).await;
    let trusted = Gateway::in_process(&policy(
        &format!("https://{addr}"),
        &format!("  ca: {}", ca.display()),
    ));
    let reply = trusted
        .client()
        .get(&trusted.url("/orders/1"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"tls upstream");
    assert_eq!(reply.header("x-saw-subject").as_deref(), Some("alice"));
    // Without the CA the upstream's certificate is not trusted: 502, nothing served.
    let before = served.load(std::sync::atomic::Ordering::SeqCst);
    let untrusting = Gateway::in_process(&policy(&format!("https://{addr}"), ""));
    let reply = untrusting
        .client()
        .get(&untrusting.url("/orders/1"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(reply.status, 502);
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_version_1_3_refuses_tls_1_2_clients() {
    let gw = Gateway::in_process_with("    min_version: \"1.3\"", &policy("echo", ""));
    let connect = |versions: &'static [&'static rustls::SupportedProtocolVersion]| {
        let cert = gw.cert_path();
        let addr = gw.addr;
        async move {
            use rustls::pki_types::{pem::PemObject, CertificateDer};
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_file(cert).expect("cert"))
                .expect("root");
            let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(versions)
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
                .connect(name, tcp)
                .await
                .is_ok()
        }
    };
    static TLS12_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    assert!(!connect(&TLS12_ONLY).await, "a TLS 1.2 handshake succeeded");
    assert!(connect(&TLS13_ONLY).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ca_requires_a_client_certificate_it_signed() {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let ca_path = dir.path().join("clients-ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).expect("write ca");
    let client_key = KeyPair::generate().expect("client key");
    let mut client_params =
        CertificateParams::new(vec!["client.test".to_string()]).expect("params");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params
        .signed_by(&client_key, &Issuer::from_params(&ca_params, &ca_key))
        .expect("client cert");

    let gw = Gateway::in_process_with(
        &format!("    client_ca: {}", ca_path.display()),
        &policy("echo", ""),
    );
    let handshake = |identity: Option<(String, String)>| {
        let (cert, addr) = (gw.cert_path(), gw.addr);
        async move {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_file(cert).expect("cert"))
                .expect("root");
            let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots);
            let config = match identity {
                None => builder.with_no_client_auth(),
                Some((cert_pem, key_pem)) => builder
                    .with_client_auth_cert(
                        vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("der")],
                        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key"),
                    )
                    .expect("client auth"),
            };
            let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            let Ok(mut tls) = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
                .connect(name, tcp)
                .await
            else {
                return None;
            };
            // TLS 1.3 reports a refused client certificate on first use, so make one request.
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = tls
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                .await;
            let mut out = Vec::new();
            let _ = tokio::time::timeout(CLIENT_TIMEOUT, tls.read_to_end(&mut out)).await;
            Some(String::from_utf8_lossy(&out).into_owned())
        }
    };
    let without = handshake(None).await.unwrap_or_default();
    assert!(
        !without.starts_with("HTTP/1.1 200"),
        "served without a client certificate"
    );
    let with = handshake(Some((client_cert.pem(), client_key.serialize_pem())))
        .await
        .unwrap_or_default();
    assert!(with.starts_with("HTTP/1.1 200"), "{with}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_traceparent_goes_upstream_unchanged_and_any_other_is_replaced() {
    let upstream = Upstream::start().await;
    let gw = Gateway::in_process(&policy(&upstream.url(), ""));
    let client = gw.client();
    let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let kept = client
        .get(
            &gw.url("/healthz"),
            &[("traceparent", valid), ("tracestate", "vendor=1")],
        )
        .await;
    assert_eq!(kept.status, 200);
    let seen = upstream.last();
    assert_eq!(header(&seen, "traceparent").as_deref(), Some(valid));
    assert_eq!(header(&seen, "tracestate").as_deref(), Some("vendor=1"));
    let log = gw.log_for(&kept.request_id()).await;
    assert_eq!(log["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");

    // An all-zero trace id is invalid: the gateway starts a trace instead,
    // and a `Connection` header cannot take the gateway's away.
    let zero = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
    let replaced = client
        .get(
            &gw.url("/healthz"),
            &[("traceparent", zero), ("connection", "traceparent")],
        )
        .await;
    let sent = header(&upstream.last(), "traceparent").expect("a traceparent upstream");
    assert_ne!(sent, zero);
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("00", 32, 16));
    let log = gw.log_for(&replaced.request_id()).await;
    assert_eq!(log["trace_id"], parts[1]);

    // None at all: a fresh trace per request.
    client.get(&gw.url("/healthz"), &[]).await;
    let first = header(&upstream.last(), "traceparent").expect("traceparent");
    client.get(&gw.url("/healthz"), &[]).await;
    let second = header(&upstream.last(), "traceparent").expect("traceparent");
    assert_ne!(first[3..35], second[3..35]);
}

/// A minimal HTTP/1.1 upstream that counts its connections and, when
/// `close_idle` is set, hangs up on each one right after answering (as an
/// upstream whose keep-alive timeout has passed does).
async fn counting_upstream(
    close_idle: bool,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = tcp.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if tcp.write_all(reply).await.is_err() {
                            return;
                        }
                        if close_idle {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_reused_and_one_the_upstream_closed_is_replaced() {
    use std::sync::atomic::Ordering;
    for close_idle in [false, true] {
        let (addr, accepted) = counting_upstream(close_idle).await;
        let gw = Gateway::in_process(&policy(&format!("http://{addr}"), ""));
        let client = gw.client();
        for i in 0..10 {
            let reply = client
                .get(
                    &gw.url(&format!("/orders/{i}")),
                    &[("x-api-key", READER_KEY)],
                )
                .await;
            assert_eq!(reply.status, 200, "request {i}, close_idle {close_idle}");
            assert_eq!(&reply.body[..], b"ok");
            if close_idle {
                // Let the hang-up arrive before the next request.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        let connections = accepted.load(Ordering::SeqCst);
        if close_idle {
            assert_eq!(connections, 10, "a closed connection was used again");
        } else {
            assert_eq!(connections, 1, "sequential requests opened new connections");
        }
    }
}
