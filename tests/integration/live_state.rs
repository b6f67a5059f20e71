//! State that lives beside the policy: what a reload carries over (the
//! verified-token cache, the connection limit), what is bounded (the
//! revocation list), and what the end of the shutdown grace closes.

use crate::harness::*;
use crate::idp::*;
use http::StatusCode;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rs_policy(issuers: &[&str], jwks_url: &str, revocation: &str, issuer_extra: &str) -> String {
    let mut policy = format!("upstream:\n  url: echo\n{ADMIN}{revocation}jwt:\n");
    for issuer in issuers {
        policy.push_str(&format!(
            "  - issuer: {issuer}\n    audiences: [{AUDIENCE}]\n    algorithms: [RS256]\n    jwks_url: {jwks_url}\n{issuer_extra}"
        ));
    }
    policy.push_str("routes:\n  - name: all\n    path: /**\n");
    policy
}

async fn bearer_status(gw: &Gateway, token: &str) -> u16 {
    gw.client()
        .get(
            &gw.url("/x"),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
        .status
        .as_u16()
}

async fn metric(gw: &Gateway, name: &str) -> f64 {
    let (status, text) = admin_call(gw, "GET", "/metrics", None, "").await;
    assert_eq!(status, StatusCode::OK);
    prometheus_total(&text, name)
}

async fn revoke(gw: &Gateway, body: Value) -> (StatusCode, Value) {
    let (status, text) = admin_call(
        gw,
        "POST",
        "/revocations",
        Some(ADMIN_TOKEN),
        &body.to_string(),
    )
    .await;
    (status, serde_json::from_str(&text).expect("json answer"))
}

/// The line a reload logs once the new policy is in force. The warning
/// about settings that need a restart also starts with "policy reloaded"
/// (and is logged before the swap), so the `file=` field is part of it.
const RELOADED: &str = "policy reloaded file=";

fn reloads_taken(gw: &Gateway) -> usize {
    gw.stderr_text().matches(RELOADED).count()
}

/// Waits until `count` reloads have been taken, failing at once on a
/// refused one.
async fn wait_for_reloads(gw: &Gateway, count: usize, trigger: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let stderr = gw.stderr_text();
        assert!(!stderr.contains("policy reload refused"), "{stderr}");
        if stderr.matches(RELOADED).count() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "the reload ({trigger}) was not taken:\n{}",
        gw.stderr_text()
    );
}

/// Replaces everything after the `server:` section of the policy and waits
/// until the gateway has taken the reload.
///
/// Changing the file is a reload request of its own (the file watcher's,
/// a debounce after the change) besides SIGHUP's. The two are taken one
/// after the other, each waited for: a reload left pending here could
/// otherwise be counted by the next call while it still reads this
/// call's policy. Both are asked for after the file is in place, so the
/// first one taken already runs on the new policy.
pub async fn reload_with(gw: &Gateway, rest: &str) {
    let path = gw.dir.path().join("gateway.yaml");
    let current = std::fs::read_to_string(&path).expect("policy");
    let server = &current[..current.find("upstream:").expect("an upstream section")];
    let before = reloads_taken(gw);
    // A new file renamed over the old one, as editors write: no reload can
    // read it half written.
    let next = path.with_extension("yaml.next");
    std::fs::write(&next, format!("{server}{rest}")).expect("write policy");
    std::fs::rename(&next, &path).expect("replace policy");
    // Without a watcher (it says why, and to use SIGHUP), only SIGHUP reloads.
    let watched = !gw.stderr_text().contains("reload with SIGHUP");
    if watched {
        wait_for_reloads(gw, before + 1, "the file watcher's").await;
    }
    let before = reloads_taken(gw);
    gw.signal("-HUP");
    wait_for_reloads(gw, before + 1, "SIGHUP's").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_verified_tokens_unless_their_issuer_changed() {
    let rs = SigningKey::generate(Algorithm::RS256, "rs");
    let idp = Idp::start(&[&rs]).await;
    let issuer = "https://cache.test/";
    let jwks = idp.url("/jwks.json");
    let gw = Gateway::start(&rs_policy(&[issuer], &jwks, "", ""));
    let verifications = "authgate_token_verifications_total";
    let token = rs.sign(&claims(issuer, json!({})), json!({"kid": "rs"}));

    assert_eq!(bearer_status(&gw, &token).await, 200);
    assert_eq!(metric(&gw, verifications).await, 1.0);
    assert_eq!(bearer_status(&gw, &token).await, 200);
    assert_eq!(metric(&gw, verifications).await, 1.0, "a cache hit");

    // A reload that leaves the issuer as it was (a route is added).
    let unrelated = rs_policy(&[issuer], &jwks, "", "")
        + "  - name: public\n    path: /public/**\n    auth: none\n";
    reload_with(&gw, &unrelated).await;
    assert_eq!(bearer_status(&gw, &token).await, 200);
    assert_eq!(
        metric(&gw, verifications).await,
        1.0,
        "the reload emptied the cache of an unchanged issuer"
    );

    // A reload that changes how the issuer's tokens are judged.
    let stricter = rs_policy(&[issuer], &jwks, "", "    leeway: 5s\n");
    reload_with(&gw, &stricter).await;
    assert_eq!(bearer_status(&gw, &token).await, 200);
    assert_eq!(
        metric(&gw, verifications).await,
        2.0,
        "a token verified under the old issuer settings was trusted under the new:\n{}",
        gw.stderr_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_are_bounded_and_a_jti_entry_may_name_its_issuer() {
    let rs = SigningKey::generate(Algorithm::RS256, "rs");
    let idp = Idp::start(&[&rs]).await;
    let (a, b) = ("https://a.test/", "https://b.test/");
    let policy = rs_policy(
        &[a, b],
        &idp.url("/jwks.json"),
        "revocation:\n  max_entries: 2\n",
        "",
    );
    let gw = Gateway::start(&policy);
    let shared_jti = |iss: &str| rs.sign(&claims(iss, json!({"jti": "j-1"})), json!({}));
    let (from_a, from_b) = (shared_jti(a), shared_jti(b));
    let unrelated = rs.sign(&claims(a, json!({"jti": "k-1"})), json!({}));
    let exp = now() + 600;

    // Issuers pick their own jti values: revoking A's j-1 must spare B's.
    let entry = json!({"jti": "j-1", "exp": exp, "iss": a});
    let (status, stored) = revoke(&gw, entry.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    assert_eq!(stored, entry);
    assert_eq!(bearer_status(&gw, &from_a).await, 401);
    assert_eq!(bearer_status(&gw, &from_b).await, 200);

    let (status, _) = revoke(&gw, json!({"sub": "user-9", "iss": b, "before": now()})).await;
    assert_eq!(status, StatusCode::CREATED);

    // The list is full: a third entry is refused and stored nowhere.
    let (status, refused) = revoke(&gw, json!({"jti": "k-1", "exp": exp})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    assert_eq!(refused["error"], "revocation_list_full");
    assert_eq!(bearer_status(&gw, &unrelated).await, 200);
    let (_, list) = admin_call(&gw, "GET", "/revocations", Some(ADMIN_TOKEN), "").await;
    let list: Value = serde_json::from_str(&list).expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    assert!(!list.to_string().contains("k-1"), "{list}");

    // An entry that replaces one already there still fits.
    let (status, _) = revoke(&gw, json!({"jti": "j-1", "exp": exp + 60, "iss": a})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(bearer_status(&gw, &from_a).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_raises_max_connections_lets_waiting_connections_in() {
    let policy = "upstream:\n  url: echo\nroutes:\n  - path: /**\n    auth: none\n";
    let gw = Gateway::start_with("  max_connections: 1\n  workers: 1\n", policy);
    let held = gw.tls_connect().await;
    let raised = std::fs::read_to_string(gw.dir.path().join("gateway.yaml"))
        .expect("policy")
        .replace("max_connections: 1", "max_connections: 3");
    std::fs::write(gw.dir.path().join("gateway.yaml"), raised).expect("write");
    gw.signal("-HUP");
    // With the first connection still open, a second one is served once
    // the new limit applies; under the old limit it would wait forever.
    let reply = gw.client().get(&gw.url("/healthz"), &[]).await;
    assert_eq!(reply.status, 200);
    assert!(
        !gw.stderr_text().contains("server.max_connections"),
        "the limit was named as needing a restart:\n{}",
        gw.stderr_text()
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_the_shutdown_grace_closes_open_websocket_tunnels() {
    use crate::hostile::upgrade_request_to;
    let upstream = Upstream::start().await;
    let policy = format!(
        "upstream:\n  url: {}\nroutes:\n  - name: live\n    path: /ws/**\n    auth: none\n    websocket: true\n",
        upstream.url()
    );
    let mut gw = Gateway::start_with("  shutdown_grace: 1s\n  idle_timeout: 1h\n", &policy);
    let (head, mut tls) = upgrade_request_to(&gw, "/ws/x", None, "dGhlIHNhbXBsZSBub25jZQ==").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tls.write_all(b"ping").await.expect("send");
    let mut echoed = [0u8; 4];
    tls.read_exact(&mut echoed).await.expect("echo");
    assert_eq!(&echoed, b"ping");

    gw.signal("-TERM");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(CLIENT_TIMEOUT, tls.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the tunnel outlived the shutdown grace");
    let status = gw.wait().expect("gateway exited");
    assert_eq!(status.code(), Some(0), "{}", gw.stderr_text());
    // Exited, but the reader thread may still be taking its last lines.
    let stderr = gw.stderr_when(&["shutdown grace period over"]).await;
    assert!(stderr.contains("shutdown grace period over"), "{stderr}");
}
