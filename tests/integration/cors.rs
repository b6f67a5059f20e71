//! CORS for browser apps on other origins (docs/policy.md `cors`):
//! preflights answered by the gateway and never forwarded, the allow
//! headers on every answer to a listed origin (errors too), the
//! upstream's own `Access-Control-*` replaced, never doubled.

use crate::harness::{standard_keys, Gateway, Reply, Upstream, READER_KEY};

const APP: &str = "https://app.example.com";

fn gateway(upstream: &Upstream) -> Gateway {
    Gateway::in_process(&format!(
        "upstream:\n  url: {}\n{}cors:\n  - origins: [{APP}]\n    routes: [orders, cors]\n    headers: [Authorization, X-API-Key, Content-Type]\n    credentials: true\n    max_age: 5m\nroutes:\n  - name: orders\n    path: /orders/**\n    scopes: [orders:read]\n  - name: cors\n    path: /cors/**\n  - name: private\n    path: /private/**\n",
        upstream.url(),
        standard_keys()
    ))
}

fn assert_allowed_for_app(reply: &Reply) {
    assert_eq!(
        reply.headers_all("access-control-allow-origin"),
        vec![APP.to_string()],
        "{reply:?}"
    );
    assert_eq!(
        reply.headers_all("access-control-allow-credentials"),
        vec!["true".to_string()]
    );
    let vary = reply.headers_all("vary").join(",").to_ascii_lowercase();
    assert_eq!(vary.matches("origin").count(), 1, "Vary: {vary}");
}

#[tokio::test]
async fn a_preflight_from_a_listed_origin_is_answered_and_never_forwarded() {
    let upstream = Upstream::start().await;
    let gw = gateway(&upstream);
    let reply = gw
        .send(
            "OPTIONS",
            "/orders/7",
            &[
                ("origin", APP),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "authorization"),
            ],
        )
        .await;
    assert_eq!(reply.status, 204);
    assert_allowed_for_app(&reply);
    assert_eq!(
        reply.header("access-control-allow-methods").as_deref(),
        Some("GET")
    );
    assert_eq!(
        reply.header("access-control-allow-headers").as_deref(),
        Some("Authorization, X-API-Key, Content-Type")
    );
    assert_eq!(
        reply.header("access-control-max-age").as_deref(),
        Some("300")
    );
    let log = gw.log_for(&reply.request_id()).await;
    assert_eq!(log["route"], "orders");
    assert!(upstream.requests().is_empty(), "a preflight was forwarded");
}

#[tokio::test]
async fn a_preflight_from_an_unlisted_origin_or_for_an_unlisted_route_is_refused() {
    let upstream = Upstream::start().await;
    let gw = gateway(&upstream);
    for (origin, path) in [
        ("https://evil.example", "/orders/7"),
        ("https://app.example.com.evil.example", "/orders/7"),
        (APP, "/private/x"),
    ] {
        let reply = gw
            .send(
                "OPTIONS",
                path,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "DELETE"),
                ],
            )
            .await;
        assert_eq!(reply.status, 403, "{origin} {path}");
        assert!(reply.header("access-control-allow-origin").is_none());
        assert_eq!(
            gw.log_for(&reply.request_id()).await["reason"],
            "cors_origin_not_allowed"
        );
    }
    assert!(upstream.requests().is_empty());
    // A plain OPTIONS without CORS headers is an ordinary request.
    let plain = gw
        .send("OPTIONS", "/orders/7", &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(plain.status, 200);
    assert_eq!(upstream.requests().len(), 1);
}

#[tokio::test]
async fn every_answer_to_a_listed_origin_carries_the_headers_errors_included() {
    let upstream = Upstream::start().await;
    let gw = gateway(&upstream);
    let allowed = gw
        .send(
            "GET",
            "/orders/7",
            &[("origin", APP), ("x-api-key", READER_KEY)],
        )
        .await;
    assert_eq!(allowed.status, 200);
    assert_allowed_for_app(&allowed);
    let exposed = allowed
        .header("access-control-expose-headers")
        .expect("expose");
    assert!(exposed.contains("RateLimit-Remaining") && exposed.contains("X-Request-Id"));
    // The app can read its 401.
    let refused = gw.send("GET", "/orders/7", &[("origin", APP)]).await;
    assert_eq!(refused.status, 401);
    assert_allowed_for_app(&refused);
    // Another origin gets none of them, on success or error.
    for headers in [
        vec![
            ("origin", "https://evil.example"),
            ("x-api-key", READER_KEY),
        ],
        vec![("origin", "https://evil.example")],
    ] {
        let other = gw.send("GET", "/orders/7", &headers).await;
        assert!(
            other.header("access-control-allow-origin").is_none(),
            "{other:?}"
        );
    }
    // A route the rule does not list gets none either.
    let private = gw
        .send(
            "GET",
            "/private/x",
            &[("origin", APP), ("x-api-key", READER_KEY)],
        )
        .await;
    assert!(private.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_upstreams_own_cors_headers_are_replaced_never_doubled() {
    let upstream = Upstream::start().await;
    let gw = gateway(&upstream);
    let reply = gw
        .send(
            "GET",
            "/cors/x",
            &[("origin", APP), ("x-api-key", READER_KEY)],
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_allowed_for_app(&reply);
    let expose = reply.headers_all("access-control-expose-headers");
    assert_eq!(expose.len(), 1);
    assert!(!expose[0].contains("x-upstream-secret"), "{expose:?}");
    let vary = reply.headers_all("vary").join(",");
    assert!(
        vary.contains("Accept-Encoding"),
        "the upstream's Vary stays: {vary}"
    );
    // To another origin, the upstream's wildcard does not pass either.
    let other = gw
        .send(
            "GET",
            "/cors/x",
            &[
                ("origin", "https://evil.example"),
                ("x-api-key", READER_KEY),
            ],
        )
        .await;
    assert_eq!(
        other.headers_all("access-control-allow-origin"),
        vec!["*".to_string()],
        "an origin no rule lists sees the upstream's answer as it is"
    );
}

#[test]
fn check_refuses_a_wildcard_origin_with_credentials() {
    let policy = "upstream:\n  url: echo\nroutes:\n  - path: /**\n    auth: none\ncors:\n  - origins: ['*']\n    credentials: true\n  - origins: [https://app.example.com/]\n";
    let text = format!(
        "server:\n  tls:\n    cert: c.pem\n    key: k.pem\n    generate_self_signed: true\n{policy}"
    );
    let path = std::path::Path::new("/tmp/authgate-cors-check.yaml");
    let err = authgate::config::load_str(&text, path, &|_| None)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("authgate-cors-check.yaml:12:"), "{err}");
    assert!(
        err.contains("`*` cannot be used with `credentials: true`"),
        "{err}"
    );
    assert!(
        err.contains("authgate-cors-check.yaml:14:") && err.contains("not an origin"),
        "{err}"
    );
}
