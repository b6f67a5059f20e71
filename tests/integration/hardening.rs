//! The bypasses of the security review (issue 11), each tried as the attack
//! itself over real sockets, then a legitimate request that still passes.

use crate::harness::*;
use crate::idp::*;
use serde_json::json;

const HS_ISSUER: &str = "https://hs.test/";
const SECRET_VAR: &str = "AUTHGATE_TEST_HARDENING_HS_SECRET";

fn key_policy(upstream: &str) -> String {
    format!(
        "upstream:\n  url: {upstream}\n{}{STANDARD_ROUTES}  - name: public\n    path: /**\n    auth: none\n",
        standard_keys()
    )
}

/// An HS256 issuer on the echo upstream, with `extra` lines for the issuer.
fn token_gateway(extra: &str) -> Gateway {
    std::env::set_var(SECRET_VAR, HS_SECRET);
    Gateway::start(&format!(
        "upstream:\n  url: echo\nidentity:\n  claims:\n    email: X-Auth-Email\njwt:
  - issuer: {HS_ISSUER}
    audiences: [{AUDIENCE}]
    algorithms: [HS256]
    hs_secret_env: {SECRET_VAR}
{extra}routes:
  - name: orders
    path: /orders/**
    scopes: [orders:read]
"
    ))
}

async fn bearer(gw: &Gateway, token: &str) -> Reply {
    gw.client()
        .get(
            &gw.url("/orders/1"),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
}

async fn expect_reason(gw: &Gateway, reply: &Reply, status: u16, reason: &str) {
    assert_eq!(reply.status, status, "{reason}: {:?}", reply.body);
    let log = gw.log_for(&reply.request_id()).await;
    assert_eq!(log["reason"], reason, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_rewrite_the_request_or_claim_an_address_never_reach_the_upstream() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&key_policy(&upstream.url()));
    let spoofed = [
        ("x-original-url", "/admin/x"),
        ("x-rewrite-url", "/admin/x"),
        ("x-original-uri", "/admin/x"),
        ("x-forwarded-uri", "/admin/x"),
        ("x-forwarded-path", "/admin/x"),
        ("x-forwarded-prefix", "/admin"),
        ("x-http-method-override", "DELETE"),
        ("x-http-method", "DELETE"),
        ("x-method-override", "DELETE"),
        ("x-real-ip", "10.0.0.1"),
        ("true-client-ip", "10.0.0.1"),
        ("x-client-ip", "10.0.0.1"),
        ("x-cluster-client-ip", "10.0.0.1"),
        ("cf-connecting-ip", "10.0.0.1"),
        ("fastly-client-ip", "10.0.0.1"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-scheme", "https"),
        ("x-forwarded-ssl", "on"),
        ("front-end-https", "on"),
    ];
    let mut headers: Vec<(&str, &str)> = spoofed.to_vec();
    headers.push(("x-api-key", READER_KEY));
    headers.push(("x-kept", "yes"));
    let reply = gw.client().get(&gw.url("/orders/7"), &headers).await;
    assert_eq!(reply.status, 200);
    let got = upstream.last();
    for (name, _) in spoofed {
        assert!(
            !got.headers.contains_key(name),
            "{name} reached the upstream"
        );
    }
    assert_eq!(got.method, "GET");
    assert_eq!(got.uri, "/orders/7");
    assert_eq!(got.headers["x-kept"], "yes");
    assert_eq!(got.headers["x-auth-subject"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cannot_remove_the_gateways_request_id() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&key_policy(&upstream.url()));
    let reply = gw
        .client()
        .get(
            &gw.url("/orders/7"),
            &[
                ("x-api-key", READER_KEY),
                (
                    "connection",
                    "X-Request-Id, X-Forwarded-For, X-Auth-Subject",
                ),
                ("x-request-id", "caller-id-1"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200);
    let got = upstream.last();
    assert_eq!(got.headers["x-request-id"], "caller-id-1");
    assert_eq!(got.headers["x-auth-subject"], "alice");
    assert!(got.headers.contains_key("x-forwarded-for"));
    assert_eq!(reply.request_id(), "caller-id-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_lower_case_methods_cannot_fall_past_a_get_route() {
    let upstream = Upstream::start().await;
    // `/admin/**` takes only GET and demands `admin`; a public `/**` follows.
    let policy = format!(
        "upstream:\n  url: {}\n{}routes:
  - name: admin
    path: /admin/**
    methods: [GET]
    scopes: [admin]
  - name: public
    path: /**
    auth: none
",
        upstream.url(),
        standard_keys()
    );
    let gw = Gateway::start(&policy);
    let raw = |method: &str| {
        format!("{method} /admin/x HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
    };
    let head = gw.raw(raw("HEAD").as_bytes()).await;
    assert_eq!(status_of(&head), 401, "{head}");
    for method in ["get", "Get", "dElEtE"] {
        let reply = gw.raw(raw(method).as_bytes()).await;
        assert_eq!(status_of(&reply), 400, "{method}: {reply}");
    }
    assert!(upstream.requests().is_empty());
    // A method that is no standard one in any case is served as it is.
    let custom = gw.raw(raw("PURGE").as_bytes()).await;
    assert_eq!(status_of(&custom), 200, "{custom}");
    assert_eq!(upstream.last().method, "PURGE");
    let ok = gw
        .client()
        .get(&gw.url("/admin/x"), &[("x-api-key", ADMIN_KEY)])
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(upstream.last().headers["x-auth-key-id"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_and_an_h2_host_beside_another_authority_are_400() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&key_policy(&upstream.url()));
    let two = gw
        .raw(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nhost: evil.example\r\nconnection: close\r\n\r\n")
        .await;
    assert_eq!(status_of(&two), 400, "{two}");
    let reply = gw
        .client_h2()
        .get(&gw.url("/healthz"), &[("host", "evil.example")])
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        gw.log_for(&reply.request_id()).await["reason"],
        "ambiguous_host"
    );
    assert!(upstream.requests().is_empty());
    assert_eq!(
        gw.client_h2().get(&gw.url("/healthz"), &[]).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_over_8_kib_is_refused_unhashed() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&key_policy(&upstream.url()));
    let huge = format!("agk_{}", "A".repeat(9000));
    let reply = gw
        .client()
        .get(&gw.url("/orders/1"), &[("x-api-key", &huge)])
        .await;
    expect_reason(&gw, &reply, 401, "token_too_large").await;
    assert!(reply
        .header("www-authenticate")
        .is_some_and(|c| c.starts_with("ApiKey")));
    let ok = gw
        .client()
        .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_required_claim_is_enforced_with_its_type() {
    let gw = token_gateway("    require_claims: [exp, iat, jti, sub, nbf]\n");
    let key = SigningKey::hmac(HS_SECRET);
    let sign = |extra| key.sign(&claims(HS_ISSUER, extra), json!({"kid": null}));
    let full = json!({"jti": "t-1", "nbf": now() - 10});
    for (missing, reason) in [
        (json!({"nbf": now() - 10}), "missing_claim"),
        (json!({"jti": "t-1"}), "missing_claim"),
        (
            json!({"jti": "t-1", "nbf": now() - 10, "iat": null}),
            "missing_claim",
        ),
        (json!({"jti": 7, "nbf": now() - 10}), "malformed_claim"),
    ] {
        expect_reason(&gw, &bearer(&gw, &sign(missing)).await, 401, reason).await;
    }
    assert_eq!(bearer(&gw, &sign(full)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_lifetime_refuses_long_lived_tokens_and_tokens_without_iat() {
    let gw = token_gateway("    max_lifetime: 1h\n");
    let key = SigningKey::hmac(HS_SECRET);
    let sign = |extra| key.sign(&claims(HS_ISSUER, extra), json!({"kid": null}));
    let long = sign(json!({"iat": now(), "exp": now() + 86_400}));
    expect_reason(
        &gw,
        &bearer(&gw, &long).await,
        401,
        "token_lifetime_too_long",
    )
    .await;
    let no_iat = sign(json!({"iat": null}));
    expect_reason(&gw, &bearer(&gw, &no_iat).await, 401, "missing_claim").await;
    let short = sign(json!({"iat": now(), "exp": now() + 1800}));
    assert_eq!(bearer(&gw, &short).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_cannot_be_a_header_value_refuses_the_token() {
    let gw = token_gateway("");
    let key = SigningKey::hmac(HS_SECRET);
    let sign = |extra| key.sign(&claims(HS_ISSUER, extra), json!({"kid": null}));
    for extra in [
        json!({"sub": "alice\nX-Injected: 1"}),
        json!({"email": "a@b\r\nX-Injected: 1"}),
    ] {
        let reply = bearer(&gw, &sign(extra)).await;
        expect_reason(&gw, &reply, 401, "malformed_claim").await;
        assert_eq!(reply.json()["error"], "invalid_token");
    }
    // Non-ASCII text is a legal field value (obs-text) and still passes.
    let reply = bearer(&gw, &sign(json!({"sub": "jos\u{e9}"}))).await;
    assert_eq!(reply.status, 200);
    assert!(reply.json()["headers"]["x-auth-subject"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_times_that_are_not_integers_make_the_token_invalid() {
    let idp = Idp::start(&[]).await;
    {
        let mut tokens = idp.state.tokens.lock().expect("lock");
        let active = |exp: serde_json::Value| json!({"active": true, "sub": "svc", "scope": "orders:read", "exp": exp});
        tokens.insert("float-exp".into(), active(json!(1.5e9)));
        tokens.insert("string-exp".into(), active(json!("never")));
        tokens.insert("good".into(), active(json!(now() + 600)));
    }
    std::env::set_var("AUTHGATE_TEST_HARDENING_INTRO_SECRET", "s3cr3t");
    let gw = Gateway::start(&format!(
        "upstream:\n  url: echo\nintrospection:
  - endpoint: {}
    client_id: gateway
    client_secret_env: AUTHGATE_TEST_HARDENING_INTRO_SECRET
routes:
  - name: orders
    path: /orders/**
    scopes: [orders:read]
",
        idp.url("/introspect")
    ));
    for token in ["float-exp", "string-exp"] {
        expect_reason(&gw, &bearer(&gw, token).await, 401, "malformed_claim").await;
    }
    assert_eq!(bearer(&gw, "good").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn common_log_lines_cannot_be_forged_through_the_path() {
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&format!(
        "{}access_log:\n  format: common\n",
        key_policy(&upstream.url())
    ));
    // `"` is legal in a request target to hyper; a CLF parser would end the field there.
    let raw = gw
        .raw(b"GET /x\"%20200%201%20\"/y HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await;
    assert_eq!(status_of(&raw), 200, "{raw}");
    let mut line = None;
    for _ in 0..200 {
        line = gw
            .output()
            .lines()
            .find(|l| l.contains("/x"))
            .map(str::to_string);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let line = line.expect("a common log line");
    assert_eq!(line.matches('"').count(), 2, "{line}");
    assert!(
        line.contains("/x\\x22%20200%201%20\\x22/y HTTP/1.1\" 200"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_may_name_kinds_before_their_first_key_is_added() {
    // A new user's first policy: routes written, `keys: []` still empty.
    let upstream = Upstream::start().await;
    let gw = Gateway::start(&format!(
        "upstream:\n  url: {}\napi_keys:\n  keys: []\nroutes:
  - name: orders
    path: /orders/**
  - name: tokens
    path: /tokens/**
    auth: [jwt]
  - name: health
    path: /healthz
    auth: none
",
        upstream.url()
    ));
    let reply = gw
        .client()
        .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
        .await;
    expect_reason(&gw, &reply, 401, "unknown_key").await;
    let reply = gw
        .client()
        .get(&gw.url("/tokens/1"), &[("authorization", "Bearer abc")])
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"], "unauthorized");
    assert!(upstream.requests().is_empty());
    assert_eq!(gw.client().get(&gw.url("/healthz"), &[]).await.status, 200);
    assert!(gw
        .stderr_text()
        .contains("not configured in the policy yet"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_document_for_another_issuer_gives_no_keys() {
    let es = SigningKey::generate(jsonwebtoken::Algorithm::ES256, "es");
    let idp = Idp::start(&[&es]).await;
    *idp.state.discovery_issuer.lock().expect("lock") = "https://evil.test/".into();
    let gw = Gateway::start(&format!(
        "upstream:\n  url: echo\njwt:
  - issuer: https://idp.test/
    audiences: [{AUDIENCE}]
    algorithms: [ES256]
    discovery_url: {}
routes:
  - name: orders
    path: /orders/**
    scopes: [orders:read]
",
        idp.url("/.well-known/openid-configuration")
    ));
    let token = es.sign(&claims("https://idp.test/", json!({})), json!({}));
    let reply = bearer(&gw, &token).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        idp.state.fetches(),
        0,
        "keys were fetched from a foreign document"
    );
    assert!(gw.stderr_text().contains("names another issuer"));
}

fn websocket_policy(upstream: &str) -> String {
    format!(
        "upstream:\n  url: {upstream}\n{}routes:
  - name: live
    path: /ws/**
    scopes: [orders:read]
    websocket: true
  - name: plain
    path: /wsplain/**
    auth: none
",
        standard_keys()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_tunnels_open_only_where_allowed_and_only_when_accepted() {
    use crate::hostile::upgrade_request_to;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = Upstream::start().await;
    let gw = Gateway::start_with("  idle_timeout: 1s\n", &websocket_policy(&upstream.url()));
    let sample = "dGhlIHNhbXBsZSBub25jZQ==";

    // A public route without `websocket: true`: no Upgrade reaches the
    // upstream, and its 101 (this one answers 101 to any `/ws…` path) is a 502.
    let (head, _) = upgrade_request_to(&gw, "/wsplain/chat", None, sample).await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    let got = upstream.last();
    assert!(!got.headers.contains_key("upgrade"), "{:?}", got.headers);

    // The upstream answers 101 with the accept of another key: 502, no tunnel.
    let (head, _) =
        upgrade_request_to(&gw, "/ws/x", Some(READER_KEY), "b3RoZXIga2V5IDEyMzQ1Ng==").await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");

    // The real thing: a tunnel, closed once no byte moved for idle_timeout.
    let (head, mut tls) = upgrade_request_to(&gw, "/ws/x", Some(READER_KEY), sample).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tls.write_all(b"ping").await.expect("send");
    let mut echoed = [0u8; 4];
    tokio::time::timeout(CLIENT_TIMEOUT, tls.read_exact(&mut echoed))
        .await
        .expect("echo in time")
        .expect("echo");
    assert_eq!(&echoed, b"ping");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(CLIENT_TIMEOUT, tls.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the idle tunnel stayed open");
}
