//! Browser sign-in (docs/sign-in.md) against a real OpenID provider
//! (`oidc-provider`, tests/idp) and a real headless Chromium. The attacks
//! on the callback use the HTTP driver, which holds the callback URL in
//! hand; the person's own journey is clicked through in Chromium.

use crate::browser::{gateway_spki, Browser};
use crate::harness::{admin_call, Gateway, Redis, Reply, Upstream, ADMIN};
use crate::oidc::{sessions_section, Provider, ProviderOptions, SignInDriver, SESSION_KEY};
use std::time::Duration;

const ROUTES: &str = "routes:\n  - name: orders\n    path: /orders/**\n    scopes: [orders:read]\n  - name: home\n    path: /**\n";
const SCOPE_CLAIM: &str = r#"{"scope":"orders:read"}"#;

fn provider_with(ttl: Option<u64>) -> Provider {
    Provider::start(ProviderOptions {
        id_token_ttl: ttl,
        extra_claims: Some(SCOPE_CLAIM.into()),
    })
}

/// A gateway in front of `upstream` whose routes accept sessions.
fn gateway_for(provider: &Provider, upstream: &Upstream, sessions_extra: &str) -> Gateway {
    Gateway::in_process(&format!(
        "upstream:\n  url: {}\n{ADMIN}{}{ROUTES}",
        upstream.url(),
        sessions_section(provider, sessions_extra)
    ))
}

fn session_cookie_set(reply: &Reply) -> bool {
    reply
        .headers_all("set-cookie")
        .iter()
        .any(|c| c.starts_with("__Host-authgate=") && !c.starts_with("__Host-authgate=;"))
}

/// An API call (no navigation) with the driver's cookies.
async fn api_get(driver: &mut SignInDriver, url: &str) -> Reply {
    driver
        .request("GET", url, &[("accept", "application/json")], "")
        .await
}

#[tokio::test]
async fn a_person_signs_in_in_chromium_and_the_upstream_sees_them_never_their_tokens() {
    let provider = provider_with(None);
    let upstream = Upstream::start().await;
    let gw = gateway_for(&provider, &upstream, "");
    provider.register(&[&gw]).await;
    let browser = Browser::start(&[provider.spki.clone(), gateway_spki(&gw)]).await;

    // Sign-in ends on the path and query it started from.
    browser.goto(&gw.url("/orders/7?x=1")).await;
    assert_eq!(
        browser.url().await.host_str(),
        Some("localhost"),
        "a navigation without a session goes to the provider"
    );
    browser.sign_in_at_provider("alice").await;
    let landed = browser.wait_for_host("127.0.0.1").await;
    assert_eq!((landed.path(), landed.query()), ("/orders/7", Some("x=1")));
    assert!(browser.text().await.contains("upstream ok"));

    // The upstream sees the person, and neither the cookie nor a token.
    let seen = upstream.last();
    assert_eq!(seen.headers["x-auth-subject"], "alice");
    assert_eq!(seen.headers["x-auth-method"], "session");
    assert_eq!(seen.headers["x-auth-issuer"], provider.issuer.as_str());
    assert_eq!(seen.headers["x-auth-scopes"], "orders:read");
    assert!(seen.headers.get("authorization").is_none());
    for (name, value) in &seen.headers {
        let value = value.to_str().unwrap_or_default();
        assert!(
            !value.contains("__Host-authgate"),
            "{name} carries the session cookie"
        );
        assert!(!value.contains("eyJ"), "{name} carries a token: {value}");
    }

    // The cookie's attributes, as the browser stored them.
    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    let session = cookies
        .iter()
        .find(|c| c.name() == "__Host-authgate")
        .expect("the session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.secure(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Lax)");
    assert_eq!(session.path(), Some("/"));
    assert!(session.domain().is_none_or(|d| d == "127.0.0.1"));
    assert_eq!(session.value().len(), 43, "256 random bits, base64url");
    assert!(
        !cookies.iter().any(|c| c.name().contains("-login-")),
        "the login state is consumed"
    );
    let cookie_value = session.value().to_string();

    // A script's request without the cookie gets a 401, never a redirect;
    // with it (same origin, unsafe method) it passes.
    let script = r#"const [path, credentials, method, done] = arguments;
        fetch(path, {credentials, method, headers: {'accept': 'text/html'}})
          .then(r => done([r.status, r.redirected]), e => done([0, String(e)]));"#;
    let run = |args: Vec<serde_json::Value>| browser.client.execute_async(script, args);
    let anonymous = run(vec!["/orders/9".into(), "omit".into(), "GET".into()])
        .await
        .expect("fetch");
    assert_eq!(anonymous, serde_json::json!([401, false]));
    let own_post = run(vec![
        "/orders/9".into(),
        "same-origin".into(),
        "POST".into(),
    ])
    .await
    .expect("fetch");
    assert_eq!(own_post, serde_json::json!([200, false]));

    // The same POST from another origin is refused before the upstream.
    let before = upstream.requests().len();
    let cookie = format!("__Host-authgate={cookie_value}");
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("sec-fetch-site", "cross-site")],
        vec![],
    ] {
        let mut req = http::Request::post(gw.url("/orders/9")).header("cookie", &cookie);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let reply = gw
            .client()
            .send(req.body(Default::default()).expect("request"))
            .await;
        assert_eq!(reply.status, 403, "{headers:?}");
        assert_eq!(reply.json()["error"], "forbidden");
        let log = gw.log_for(&reply.request_id()).await;
        assert_eq!(log["reason"], "cross_site_request");
        assert_eq!(log["auth_method"], "session");
    }
    assert_eq!(
        upstream.requests().len(),
        before,
        "no cross-site POST reached the upstream"
    );

    // Nothing the gateway wrote holds the session id.
    let log = std::fs::read_to_string(gw.dir.path().join("access.log")).expect("log");
    assert!(log.contains("\"auth_method\":\"session\""));
    assert!(
        !log.contains(&cookie_value),
        "the session id is in the access log"
    );

    // Return paths that would leave the site come back home instead.
    browser
        .client
        .delete_all_cookies()
        .await
        .expect("forget the session");
    browser.goto(&gw.url("//evil.example/")).await;
    browser.sign_in_at_provider("alice").await;
    let landed = browser.wait_for_host("127.0.0.1").await;
    assert_eq!(landed.port(), Some(gw.addr.port()), "{landed}");

    // Logout: the page's button posts; the provider's session ends too, so
    // the next navigation signs in again.
    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    let current = cookies
        .iter()
        .find(|c| c.name() == "__Host-authgate")
        .expect("the new session cookie");
    let cookie = format!("__Host-authgate={}", current.value());
    browser.goto(&gw.url("/_authgate/logout")).await;
    browser
        .find("#sign-out")
        .await
        .click()
        .await
        .expect("sign out");
    let start = std::time::Instant::now();
    while !browser.has("#login").await {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "after logout the browser is at {} instead of the provider's login form",
            browser.url().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(provider.count("logouts").await, 1, "RP-initiated logout");
    let after = gw
        .client()
        .get(&gw.url("/orders/7"), &[("cookie", &cookie)])
        .await;
    assert_eq!(after.status, 401, "the old session cookie is no credential");

    // At the provider's sign-in form the person cancels: the provider sends
    // `error` back, and the gateway refuses with no session.
    browser
        .find("#abort")
        .await
        .click()
        .await
        .expect("cancel sign-in");
    browser.wait_for_host("127.0.0.1").await;
    assert!(browser.text().await.contains("login_failed"));
    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    assert!(
        !cookies.iter().any(|c| c.name() == "__Host-authgate"),
        "a cancelled sign-in left a session cookie"
    );
    browser.close().await;
}

#[tokio::test]
async fn wrong_replayed_stale_or_refused_states_get_401_and_no_session() {
    let provider = provider_with(None);
    let upstream = Upstream::start().await;
    let gw = gateway_for(&provider, &upstream, "");
    provider.register(&[&gw]).await;
    let mut driver = SignInDriver::new(&gw, &provider);
    let callback = driver
        .sign_in_until_callback(&gw.url("/orders/1"), "alice")
        .await;
    let jar_before = driver.jar.clone();

    // A second tab signs in meanwhile, and finishes first: each sign-in has
    // a login state of its own.
    let second_tab = driver
        .sign_in_until_callback(&gw.url("/orders/2"), "alice")
        .await;
    let done = driver.request("GET", &second_tab, &[], "").await;
    assert_eq!(done.status, 303, "{done:?}");
    assert_eq!(done.header("location").as_deref(), Some("/orders/2"));

    let refused = |reply: &Reply| {
        assert_eq!(reply.status, 401, "{reply:?}");
        assert_eq!(reply.json()["error"], "login_failed");
        assert!(
            !session_cookie_set(reply),
            "a refused sign-in set a session"
        );
    };
    let cases = [
        (callback.replace("state=", "state=x"), "state_mismatch"),
        (gw.url("/_authgate/callback?code=abc"), "state_mismatch"),
        (
            gw.url("/_authgate/callback?error=access_denied&state=abc"),
            "provider_error",
        ),
    ];
    for (url, reason) in cases {
        let reply = driver.request("GET", &url, &[], "").await;
        refused(&reply);
        assert_eq!(
            gw.log_for(&reply.request_id()).await["reason"],
            reason,
            "{url}"
        );
    }

    // The real callback signs in once...
    let first = driver.request("GET", &callback, &[], "").await;
    assert_eq!(first.status, 303, "{first:?}");
    assert_eq!(first.header("location").as_deref(), Some("/orders/1"));
    assert!(session_cookie_set(&first));
    // ...and its replay, with the login-state cookie copied back, does not.
    let mut replayer = SignInDriver::new(&gw, &provider);
    replayer.jar = jar_before;
    let replay = replayer.request("GET", &callback, &[], "").await;
    refused(&replay);
    assert_eq!(
        gw.log_for(&replay.request_id()).await["reason"],
        "state_mismatch"
    );

    // A return path that would leave the site, sealed into a real sign-in's
    // login state (only the gateway's key can do that): the callback still
    // sends the browser home.
    let seal = authgate::auth::session::cookies::SealKey::derive(SESSION_KEY.as_bytes());
    let mut forger = SignInDriver::new(&gw, &provider);
    let callback = forger
        .sign_in_until_callback(&gw.url("/orders/3"), "alice")
        .await;
    let state = url::Url::parse(&callback)
        .expect("callback URL")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let name = format!("__Host-authgate-login-{state}");
    let jar = forger
        .jar
        .get_mut(&gw.addr.to_string())
        .expect("gateway cookies");
    let sealed = jar.get(&name).cloned().expect("login cookie");
    let plain = seal.open(name.as_bytes(), &sealed).expect("opens");
    let mut login: serde_json::Value = serde_json::from_slice(&plain).expect("json");
    login["return_to"] = "https://evil.example/".into();
    jar.insert(
        name.clone(),
        seal.seal(name.as_bytes(), login.to_string().as_bytes()),
    );
    let home = forger.request("GET", &callback, &[], "").await;
    assert_eq!(home.status, 303, "{home:?}");
    assert_eq!(home.header("location").as_deref(), Some("/"));

    // A login state older than 10 minutes (sealed with the gateway's own
    // key, so only its age is wrong) and a tampered one.
    let state = "staleStateValue0123456";
    let name = format!("__Host-authgate-login-{state}");
    let now = authgate::clock::unix_now();
    let stale = serde_json::json!({"state": state, "verifier": "v", "nonce": "n",
        "return_to": "/", "created": now - 601});
    let sealed = seal.seal(name.as_bytes(), stale.to_string().as_bytes());
    let url = gw.url(&format!("/_authgate/callback?code=abc&state={state}"));
    for (cookie, reason) in [
        (format!("{name}={sealed}"), "state_expired"),
        (format!("{name}={}", tamper(&sealed)), "state_mismatch"),
    ] {
        let reply = gw.client().get(&url, &[("cookie", &cookie)]).await;
        refused(&reply);
        assert_eq!(gw.log_for(&reply.request_id()).await["reason"], reason);
    }
    assert!(
        upstream
            .requests()
            .iter()
            .all(|r| !r.uri.contains("_authgate")),
        "the callback is the gateway's own path"
    );
}

/// `sealed` with one character in its middle changed. Not the last one: it
/// may already be the replacement, and some of its bits are padding.
fn tamper(sealed: &str) -> String {
    let mut chars: Vec<char> = sealed.chars().collect();
    let middle = chars.len() / 2;
    chars[middle] = if chars[middle] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    assert_ne!(tampered, sealed);
    tampered
}

/// Ten requests of one session at once, spread over `gateways`, after its
/// ID token expired: every one passes, and the provider sees one refresh.
async fn ten_parallel_requests_refresh_once(
    provider: &Provider,
    gateways: &[&Gateway],
    upstream: &Upstream,
) -> String {
    let mut driver = SignInDriver::for_all(gateways, provider);
    let (_, page) = driver.sign_in(&gateways[0].url("/orders/1"), "alice").await;
    assert_eq!(page.expect("page").status, 200);
    let cookie = format!(
        "__Host-authgate={}",
        driver.session_cookie(gateways[0]).expect("session")
    );
    assert_eq!(provider.count("refresh_grants").await, 0);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let gw = gateways[i % gateways.len()];
            let (client, url, cookie) = (gw.client(), gw.url("/orders/2"), cookie.clone());
            tokio::spawn(async move { client.get(&url, &[("cookie", &cookie)]).await.status })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.expect("request task"), 200);
    }
    assert_eq!(
        provider.count("refresh_grants").await,
        1,
        "exactly one refresh grant for ten requests"
    );
    assert_eq!(upstream.last().headers["x-auth-subject"], "alice");
    cookie
}

#[tokio::test]
async fn an_expired_id_token_is_refreshed_once_for_ten_parallel_requests() {
    let provider = provider_with(Some(3));
    let upstream = Upstream::start().await;
    let gw = gateway_for(&provider, &upstream, "  scopes: [openid, offline_access]\n");
    provider.register(&[&gw]).await;
    let cookie = ten_parallel_requests_refresh_once(&provider, &[&gw], &upstream).await;

    // A refresh the provider refuses ends the session.
    provider.post("/_test/fail-refresh", "").await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let (client, url) = (gw.client(), gw.url("/orders/2"));
    let failed = client.get(&url, &[("cookie", &cookie)]).await;
    assert_eq!(failed.status, 401);
    assert_eq!(
        gw.log_for(&failed.request_id()).await["reason"],
        "refresh_failed"
    );
    let after = client.get(&url, &[("cookie", &cookie)]).await;
    assert_eq!(
        gw.log_for(&after.request_id()).await["reason"],
        "session_unknown"
    );
}

#[tokio::test]
async fn two_replicas_with_redis_refresh_a_session_once() {
    let redis = Redis::start();
    let provider = provider_with(Some(3));
    let upstream = Upstream::start().await;
    let (a, b) = (
        redis_replica(
            &redis,
            &provider,
            &upstream,
            "  scopes: [openid, offline_access]\n",
        ),
        redis_replica(
            &redis,
            &provider,
            &upstream,
            "  scopes: [openid, offline_access]\n",
        ),
    );
    provider.register(&[&a, &b]).await;
    ten_parallel_requests_refresh_once(&provider, &[&a, &b], &upstream).await;
}

/// A replica keeping its sessions in the shared Redis.
fn redis_replica(redis: &Redis, provider: &Provider, upstream: &Upstream, extra: &str) -> Gateway {
    let var = format!("AUTHGATE_TEST_REDIS_{}", redis.port);
    std::env::set_var(&var, redis.url());
    Gateway::in_process(&format!(
        "upstream:\n  url: {}\nrate_limits:\n  backend: redis\n  redis_url_env: {var}\n{}{ROUTES}",
        upstream.url(),
        sessions_section(provider, &format!("  store: redis\n{extra}"))
    ))
}

#[tokio::test]
async fn logout_ends_the_session_and_revokes_the_refresh_token_at_the_provider() {
    let provider = provider_with(None);
    let upstream = Upstream::start().await;
    let gw = gateway_for(&provider, &upstream, "  scopes: [openid, offline_access]\n");
    provider.register(&[&gw]).await;
    let mut driver = SignInDriver::new(&gw, &provider);
    driver.sign_in(&gw.url("/orders/1"), "alice").await;
    let orders = gw.url("/orders/1");
    assert_eq!(api_get(&mut driver, &orders).await.status, 200);

    // A logout posted from another site is refused and ends nothing.
    let logout = gw.url("/_authgate/logout");
    let forged = driver
        .request("POST", &logout, &[("origin", "https://evil.example")], "")
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(api_get(&mut driver, &orders).await.status, 200);

    let page = driver.request("GET", &logout, &[], "").await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body).to_string();
    assert!(html.contains("method=\"post\""), "{html}");

    let own_origin = format!("https://{}", gw.addr);
    let out = driver
        .request("POST", &logout, &[("origin", &own_origin)], "")
        .await;
    assert_eq!(out.status, 303);
    let location = out.header("location").expect("location");
    assert!(
        location.starts_with(&format!("{}/session/end?", provider.issuer)),
        "{location}"
    );
    assert!(location.contains("id_token_hint="));
    assert!(location.contains("post_logout_redirect_uri="));
    assert!(out
        .headers_all("set-cookie")
        .iter()
        .any(|c| c.starts_with("__Host-authgate=;") && c.contains("Max-Age=0")));
    assert_eq!(provider.count("refresh_revocations").await, 1);
    let after = api_get(&mut driver, &orders).await;
    assert_eq!(after.status, 401);
    let (_, metrics) = admin_call(&gw, "GET", "/metrics", None, "").await;
    for line in [
        "authgate_sign_ins_total{result=\"ok\"}",
        "authgate_logouts_total{result=\"ok\"}",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(line)),
            "{line} missing from /metrics"
        );
    }
}

#[tokio::test]
async fn an_admin_revocation_of_the_subject_ends_the_session_at_once() {
    let provider = provider_with(None);
    let upstream = Upstream::start().await;
    let gw = gateway_for(&provider, &upstream, "");
    provider.register(&[&gw]).await;
    let mut driver = SignInDriver::new(&gw, &provider);
    driver.sign_in(&gw.url("/orders/1"), "alice").await;
    let orders = gw.url("/orders/1");
    assert_eq!(api_get(&mut driver, &orders).await.status, 200);
    let cookie = format!(
        "__Host-authgate={}",
        driver.session_cookie(&gw).expect("cookie")
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let body = serde_json::json!({"sub": "alice", "iss": provider.issuer,
        "before": authgate::clock::unix_now()});
    let (status, text) = admin_call(
        &gw,
        "POST",
        "/revocations",
        Some(crate::harness::ADMIN_TOKEN),
        &body.to_string(),
    )
    .await;
    assert!(status.is_success(), "{status} {text}");
    let revoked = api_get(&mut driver, &orders).await;
    assert_eq!(revoked.status, 401);
    assert_eq!(
        gw.log_for(&revoked.request_id()).await["reason"],
        "token_revoked"
    );
    assert!(
        revoked
            .headers_all("set-cookie")
            .iter()
            .any(|c| c.starts_with("__Host-authgate=;")),
        "the browser is told to forget the ended session"
    );
    let again = gw.client().get(&orders, &[("cookie", &cookie)]).await;
    assert_eq!(
        gw.log_for(&again.request_id()).await["reason"],
        "session_unknown"
    );
}

#[tokio::test]
async fn sessions_end_when_idle_or_too_old_and_are_rate_limited_per_person() {
    // Session times are whole seconds and a session ends once more than the
    // limit has passed: with a limit of N s it is sure to be valid for N s
    // and sure to have ended after N + 1 s. The limits leave the steps that
    // expect a valid session well clear of both, on a slow machine too.
    const IDLE_TIMEOUT_SECS: u64 = 2;
    const MAX_LIFETIME_SECS: u64 = 3;
    let provider = provider_with(None);
    let upstream = Upstream::start().await;
    let idle = gateway_for(
        &provider,
        &upstream,
        &format!("  idle_timeout: {IDLE_TIMEOUT_SECS}s\n"),
    );
    let old = gateway_for(
        &provider,
        &upstream,
        &format!("  max_lifetime: {MAX_LIFETIME_SECS}s\n"),
    );
    let limited = Gateway::in_process(&format!(
        "upstream:\n  url: {}\nrate_limits:\n  limits:\n    people: {{rate: 2/min, burst: 2}}\n{}{ROUTES}",
        upstream.url(),
        sessions_section(&provider, "  rate_limit: people\n")
    ));
    provider.register(&[&idle, &old, &limited]).await;
    let mut on_idle = SignInDriver::new(&idle, &provider);
    let (_, landing) = on_idle.sign_in(&idle.url("/orders/1"), "alice").await;
    // The landing used the new session; from here on it is left alone.
    let idle_since = std::time::Instant::now();
    assert_eq!(landing.expect("landing page").status, 200);
    let mut on_limited = SignInDriver::new(&limited, &provider);
    on_limited.sign_in(&limited.url("/orders/1"), "alice").await;

    // Two in the bucket; the sign-in's own landing took one.
    let second = api_get(&mut on_limited, &limited.url("/orders/2")).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("ratelimit-limit").as_deref(), Some("2"));
    let third = api_get(&mut on_limited, &limited.url("/orders/3")).await;
    assert_eq!(third.status, 429);

    // Used every half second, the old session still ends at its lifetime.
    // Signed in just before its first use, which comes about half a second
    // into a lifetime of three; the last use comes at least five seconds in.
    let mut on_old = SignInDriver::new(&old, &provider);
    on_old.sign_in(&old.url("/orders/1"), "alice").await;
    let mut used = Vec::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        used.push(
            api_get(&mut on_old, &old.url("/orders/1"))
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(used[0], 200, "{used:?}");
    assert_eq!(*used.last().expect("ten"), 401, "{used:?}");

    // Unused for longer than idle_timeout + 1 s (the loop above already
    // took longer than that; this only makes sure of it).
    let quiet = Duration::from_millis(IDLE_TIMEOUT_SECS * 1000 + 1500);
    if let Some(rest) = quiet.checked_sub(idle_since.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let stale = api_get(&mut on_idle, &idle.url("/orders/1")).await;
    assert_eq!(stale.status, 401);
    assert_eq!(
        idle.log_for(&stale.request_id()).await["reason"],
        "session_expired"
    );
}

#[tokio::test]
async fn two_replicas_with_the_redis_store_share_a_session() {
    let redis = Redis::start();
    let provider = provider_with(None);
    let upstream = Upstream::start().await;
    let (a, b) = (
        redis_replica(&redis, &provider, &upstream, ""),
        redis_replica(&redis, &provider, &upstream, ""),
    );
    provider.register(&[&a, &b]).await;
    let mut driver = SignInDriver::for_all(&[&a, &b], &provider);
    let (_, page) = driver.sign_in(&a.url("/orders/1"), "alice").await;
    assert_eq!(page.expect("page").status, 200);
    // The browser sends the cookie to both (cookies ignore ports).
    let on_b = api_get(&mut driver, &b.url("/orders/2")).await;
    assert_eq!(on_b.status, 200, "{on_b:?}");
    assert_eq!(upstream.last().headers["x-auth-subject"], "alice");
    // Logout at B ends it at A at once.
    let cookie = format!(
        "__Host-authgate={}",
        driver.session_cookie(&a).expect("cookie")
    );
    let origin = format!("https://{}", b.addr);
    let out = driver
        .request(
            "POST",
            &b.url("/_authgate/logout"),
            &[("origin", &origin)],
            "",
        )
        .await;
    assert_eq!(out.status, 303);
    let on_a = a
        .client()
        .get(&a.url("/orders/1"), &[("cookie", &cookie)])
        .await;
    assert_eq!(on_a.status, 401);
}

#[tokio::test]
async fn a_reload_keeps_sessions() {
    let provider = provider_with(None);
    let upstream = Upstream::start().await;
    let rest = format!(
        "upstream:\n  url: {}\n{}{ROUTES}",
        upstream.url(),
        sessions_section(&provider, "")
    );
    let gw = Gateway::start(&rest);
    provider.register(&[&gw]).await;
    let mut driver = SignInDriver::new(&gw, &provider);
    driver.sign_in(&gw.url("/orders/1"), "alice").await;
    let added = rest.replace(
        "routes:\n",
        "routes:\n  - name: health\n    path: /health\n    auth: none\n",
    );
    crate::live_state::reload_with(&gw, &added).await;
    let after = api_get(&mut driver, &gw.url("/orders/1")).await;
    assert_eq!(after.status, 200, "{after:?}");
    assert_eq!(upstream.last().headers["x-auth-subject"], "alice");
}

#[tokio::test]
async fn an_unreachable_provider_starts_not_ready_and_says_so() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let gw = Gateway::start(&format!(
        "upstream:\n  url: echo\n{ADMIN}sessions:\n  provider: https://127.0.0.1:{port}/\n  client_id: c\n  key_env: AUTHGATE_TEST_SESSION_KEY\nroutes:\n  - path: /**\n"
    ));
    let (status, body) = admin_call(&gw, "GET", "/readyz", None, "").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains(&format!("oidc:https://127.0.0.1:{port}/")),
        "{body}"
    );
    assert!(
        gw.stderr_text().contains("OpenID provider"),
        "{}",
        gw.stderr_text()
    );
    let navigation = gw
        .client()
        .get(&gw.url("/"), &[("sec-fetch-mode", "navigate")])
        .await;
    assert_eq!(navigation.status, 503);
    let api = gw.client().get(&gw.url("/"), &[]).await;
    assert_eq!(
        api.status, 401,
        "a request that is no navigation still gets 401"
    );
}

#[tokio::test]
async fn the_gateways_own_paths_come_before_a_catch_all_route() {
    let provider = provider_with(None);
    let upstream = Upstream::start().await;
    let gw = Gateway::in_process(&format!(
        "upstream:\n  url: {}\n{}routes:\n  - path: /**\n    auth: none\n",
        upstream.url(),
        sessions_section(&provider, "")
    ));
    let callback = gw
        .client()
        .get(&gw.url("/_authgate/callback?code=a&state=b"), &[])
        .await;
    assert_eq!(callback.status, 401);
    assert_eq!(callback.json()["error"], "login_failed");
    let logout = gw.client().get(&gw.url("/_authgate/logout"), &[]).await;
    assert_eq!(logout.status, 200);
    assert!(upstream.requests().is_empty(), "{:?}", upstream.requests());
    // Elsewhere the catch-all still serves, and strips the session cookie.
    let other = gw
        .client()
        .get(
            &gw.url("/page"),
            &[(
                "cookie",
                "a=1; __Host-authgate=zzz; __Host-authgate-login-s=y; b=2",
            )],
        )
        .await;
    assert_eq!(other.status, 200);
    assert_eq!(upstream.last().headers["cookie"], "a=1; b=2");
}

#[test]
fn check_names_each_bad_sessions_setting_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.yaml");
    std::fs::write(
        &path,
        "server:\n  tls:\n    cert: c.pem\n    key: k.pem\n    generate_self_signed: true\nupstream:\n  url: echo\nsessions:\n  provider: https://idp.example/\n  client_id: c\n  key_env: SHORT_KEY\n  scopes: [email]\n  post_logout_redirect: https://evil.example/\nroutes:\n  - path: /**\n",
    )
    .expect("write");
    let out = std::process::Command::new(crate::harness::binary())
        .args(["check", "-c"])
        .arg(&path)
        .env("SHORT_KEY", "too-short")
        .output()
        .expect("run check");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    let file = path.display().to_string();
    for (line, needle) in [
        (11, "at least 32"),
        (12, "must include `openid`"),
        (13, "not a local path"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{file}:{line}:")) && l.contains(needle)),
            "no `{file}:{line}:` error saying {needle}:\n{text}"
        );
    }
    assert!(!text.contains("too-short"), "check printed the key");
}
