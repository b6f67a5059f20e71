//! The forward-auth listener, called directly as nginx (`X-Original-*`) and
//! as Caddy or Traefik (`X-Forwarded-*`) would: every decision the main
//! listener makes, relayable, and the header tricks a client could try.

use crate::harness::*;

fn policy(forward_auth: &str, limits: &str) -> String {
    format!(
        "upstream:\n  url: echo\nforward_auth:\n  listen: 127.0.0.1:0\n{forward_auth}{limits}{}{STANDARD_ROUTES}",
        standard_keys()
    )
}

/// One check over plain HTTP, as a front proxy sends it.
async fn check(gw: &Gateway, headers: &[(&str, &str)]) -> Reply {
    let addr = gw.forward_auth.expect("forward-auth listener");
    plain_get(&format!("http://{addr}/check"), headers).await
}

fn nginx<'a>(method: &'a str, uri: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("x-original-method", method), ("x-original-uri", uri)]
}

fn traefik<'a>(method: &'a str, uri: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("x-forwarded-method", method),
        ("x-forwarded-uri", uri),
        ("x-forwarded-host", "api.example"),
        ("x-forwarded-proto", "https"),
    ]
}

fn with<'a>(
    mut h: Vec<(&'a str, &'a str)>,
    more: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    h.extend_from_slice(more);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_conventions_get_the_decision_of_the_main_listener() {
    let gw = Gateway::in_process(&policy("", ""));
    for convention in [nginx, traefik] {
        // Allowed: 200, empty body, the identity for the front proxy to copy.
        let key = [("x-api-key", READER_KEY)];
        let ok = check(&gw, &with(convention("GET", "/orders/7?x=1"), &key)).await;
        assert_eq!(ok.status, 200, "{ok:?}");
        assert!(ok.body.is_empty());
        assert_eq!(ok.header("x-auth-subject").as_deref(), Some("alice"));
        assert_eq!(ok.header("x-auth-key-id").as_deref(), Some("reader"));
        assert_eq!(ok.header("x-auth-method").as_deref(), Some("api_key"));
        // Present though empty: a JWT caller would have no key id.
        assert_eq!(ok.header("x-auth-issuer").as_deref(), Some(""));
        let log = gw.log_for(&ok.request_id()).await;
        assert_eq!(log["listener"], "forward_auth");
        assert_eq!(log["path"], "/orders/7");
        assert_eq!(log["route"], "orders-read");
        assert_eq!(log["decision"], "allowed");

        // No credential: 401, every challenge in one field.
        let none = check(&gw, &convention("GET", "/orders/7")).await;
        assert_eq!(none.status, 401);
        let challenges = none.headers_all("www-authenticate");
        assert_eq!(challenges.len(), 1, "{challenges:?}");
        assert!(challenges[0].contains("Bearer") && challenges[0].contains("ApiKey"));
        assert_eq!(none.json()["error"], "unauthorized");

        // A refused credential.
        let bad = check(
            &gw,
            &with(convention("GET", "/orders/7"), &[("x-api-key", "agk_nope")]),
        )
        .await;
        assert_eq!(bad.status, 401);
        assert_eq!(bad.json()["error"], "invalid_token");

        // The method of the original request decides: a reader may not POST.
        let post = check(&gw, &with(convention("POST", "/orders/7"), &key)).await;
        assert_eq!(post.status, 403);
        assert_eq!(post.json()["error"], "insufficient_scope");
        assert!(post
            .header("www-authenticate")
            .is_some_and(|w| w.contains("scope=\"orders:write\"")));

        // No route: 403 here, with the same body code.
        let lost = check(&gw, &with(convention("GET", "/nowhere"), &key)).await;
        assert_eq!(lost.status, 403);
        assert_eq!(lost.json()["error"], "not_found");
        let log = gw.log_for(&lost.request_id()).await;
        assert_eq!(log["reason"], "no_route");

        // An `auth: none` route passes without identity.
        let open = check(&gw, &convention("GET", "/healthz")).await;
        assert_eq!(open.status, 200);
        assert_eq!(open.header("x-auth-subject").as_deref(), Some(""));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarded_path_is_normalized_and_refused_as_on_the_main_listener() {
    let gw = Gateway::in_process(&policy("", ""));
    // The public route's path climbs into /admin: judged as /admin/x.
    let climbed = check(&gw, &nginx("GET", "/healthz/../admin/x")).await;
    assert_eq!(climbed.status, 401, "{climbed:?}");
    let log = gw.log_for(&climbed.request_id()).await;
    assert_eq!(log["path"], "/admin/x");
    assert_eq!(log["route"], "admin");
    // An encoded slash is refused, as on the main listener.
    let encoded = check(&gw, &traefik("GET", "/healthz%2F..%2Fadmin")).await;
    assert_eq!(encoded.status, 400);
    let log = gw.log_for(&encoded.request_id()).await;
    assert_eq!(log["reason"], "encoded_separator");
    // A lower-case method that an upstream might fold.
    let folded = check(&gw, &nginx("get", "/admin/x")).await;
    assert_eq!(folded.status, 400);
    // A client-sent X-Forwarded-Uri beside nginx's X-Original-URI: the
    // client must not choose which path is judged.
    let both = check(
        &gw,
        &with(nginx("GET", "/admin/x"), &[("x-forwarded-uri", "/healthz")]),
    )
    .await;
    assert_eq!(both.status, 400);
    let log = gw.log_for(&both.request_id()).await;
    assert_eq!(log["reason"], "ambiguous_original_request");
    // A check naming no original request at all.
    let nothing = check(&gw, &[]).await;
    assert_eq!(nothing.status, 400);
    // Still serving: the admin key passes on the admin path.
    let admin = check(
        &gw,
        &with(nginx("GET", "/admin/x"), &[("x-api-key", ADMIN_KEY)]),
    )
    .await;
    assert_eq!(admin.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_its_limit_gets_429_with_retry_after_and_ratelimit_headers() {
    let limits = "rate_limits:\n  backend: memory\n  default: { rate: 1/min, burst: 1 }\n";
    let gw = Gateway::in_process(&policy("", limits));
    let key = [("x-api-key", READER_KEY)];
    let first = check(&gw, &with(nginx("GET", "/orders/1"), &key)).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit-limit").as_deref(), Some("1"));
    assert_eq!(first.header("ratelimit-remaining").as_deref(), Some("0"));
    let second = check(&gw, &with(nginx("GET", "/orders/1"), &key)).await;
    assert_eq!(second.status, 429);
    assert!(second
        .header("retry-after")
        .and_then(|r| r.parse::<u64>().ok())
        .is_some_and(|r| r >= 1));
    assert_eq!(second.header("ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(second.json()["error"], "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_outside_trusted_is_refused_whatever_it_claims() {
    let gw = Gateway::in_process(&policy("  trusted: [10.0.0.0/8]\n", ""));
    let reply = check(
        &gw,
        &with(nginx("GET", "/orders/7"), &[("x-api-key", READER_KEY)]),
    )
    .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["error"], "forbidden");
    assert!(reply.header("x-auth-subject").is_none());
    let log = gw.log_for(&reply.request_id()).await;
    assert_eq!(log["reason"], "untrusted_peer");
    assert_eq!(log["listener"], "forward_auth");
    // The main listener still serves that caller.
    let direct = gw
        .client()
        .get(&gw.url("/orders/7"), &[("x-api-key", READER_KEY)])
        .await;
    assert_eq!(direct.status, 200);
}
