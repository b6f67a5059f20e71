//! JWT and opaque-token validation against a real JWKS server and a real
//! RFC 7662 endpoint, with tokens minted here — valid ones, and the attacks.

use crate::harness::*;
use crate::idp::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

const ISSUER: &str = "https://idp.test/";
const HS_ISSUER: &str = "https://hs.test/";
const SECRET_VAR: &str = "AUTHGATE_TEST_HS_SECRET";

/// Routes for a policy with only token issuers.
const TOKEN_ROUTES: &str = "routes:
  - name: orders
    path: /orders/**
    scopes: [orders:read]
";

const ROUTES: &str = "routes:
  - name: orders
    path: /orders/**
    scopes: [orders:read]
  - name: admin
    path: /admin/**
    auth: [jwt]
    scopes: [admin]
  - name: keys-only
    path: /keys-only/**
    auth: [api_key]
";

fn issuer_block(idp: &Idp, algorithms: &str, extra: &str) -> String {
    format!(
        "  - issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    algorithms: [{algorithms}]
    jwks_url: {}
    leeway: 30s
{extra}",
        idp.url("/jwks.json")
    )
}

/// A gateway trusting the test IdP (asymmetric) and an HS256 issuer.
fn gateway(idp: &Idp, algorithms: &str, extra: &str) -> Gateway {
    std::env::set_var(SECRET_VAR, HS_SECRET);
    let policy = format!(
        "upstream:
  url: echo
identity:
  claims:
    email: X-Auth-Email
{}jwt:
{}  - issuer: {HS_ISSUER}
    audiences: [{AUDIENCE}]
    algorithms: [HS256]
    hs_secret_env: {SECRET_VAR}
{ROUTES}",
        standard_keys(),
        issuer_block(idp, algorithms, extra)
    );
    Gateway::start(&policy)
}

async fn expect_refused(gw: &Gateway, token: &str, reason: &str) {
    let reply = gw
        .client()
        .get(
            &gw.url("/orders/1"),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(reply.status, 401, "{reason}: {:?}", reply.body);
    assert_eq!(reply.json()["error"], "invalid_token");
    let challenge = reply.header("www-authenticate").expect("challenge");
    assert!(
        challenge.starts_with("Bearer realm=\"authgate\", error=\"invalid_token\""),
        "{challenge}"
    );
    let log = gw.log_for(&reply.request_id()).await;
    assert_eq!(log["decision"], "invalid_token", "{log}");
    assert_eq!(log["reason"], reason, "{log}");
    // An oversized token is refused before anyone looks at what kind it is.
    if reason != "token_too_large" {
        assert_eq!(log["auth_method"], "jwt", "{log}");
    }
}

async fn expect_ok(gw: &Gateway, token: &str) -> Value {
    let reply = gw
        .client()
        .get(
            &gw.url("/orders/1"),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_tokens_of_every_algorithm_family_pass_with_their_identity() {
    let keys: Vec<SigningKey> = [
        (Algorithm::RS256, "rs"),
        (Algorithm::PS256, "ps"),
        (Algorithm::ES256, "es"),
        (Algorithm::ES384, "es384"),
        (Algorithm::EdDSA, "ed"),
    ]
    .iter()
    .map(|(alg, kid)| SigningKey::generate(*alg, kid))
    .collect();
    let idp = Idp::start(&keys.iter().collect::<Vec<_>>()).await;
    let gw = gateway(&idp, "RS256, PS256, ES256, ES384, EdDSA", "");
    for key in &keys {
        let echoed = expect_ok(&gw, &key.sign(&claims(ISSUER, json!({})), json!({}))).await;
        let headers = &echoed["headers"];
        assert_eq!(headers["x-auth-subject"], "user-1", "{:?}", key.alg);
        assert_eq!(headers["x-auth-method"], "jwt");
        assert_eq!(headers["x-auth-issuer"], ISSUER);
        assert_eq!(headers["x-auth-scopes"], "orders:read");
        assert_eq!(headers["x-auth-email"], "user1@example.com");
        assert!(headers.get("authorization").is_none());
    }
    // HS256 from the secret in the environment.
    let hs = SigningKey::hmac(HS_SECRET);
    expect_ok(
        &gw,
        &hs.sign(&claims(HS_ISSUER, json!({})), json!({"kid": null})),
    )
    .await;
    // The token command mints what the gateway accepts.
    let out = std::process::Command::new(binary())
        .args([
            "token",
            "--secret-env",
            SECRET_VAR,
            "--sub",
            "cli-user",
            "--scope",
            "orders:read",
            "--iss",
            HS_ISSUER,
            "--aud",
            AUDIENCE,
        ])
        .env(SECRET_VAR, HS_SECRET)
        .output()
        .expect("token command");
    let minted = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let echoed = expect_ok(&gw, &minted).await;
    assert_eq!(echoed["headers"]["x-auth-subject"], "cli-user");
    assert!(
        !gw.output().contains(&minted),
        "a token leaked into the output"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_come_from_the_configured_claim_and_are_enforced() {
    let rs = SigningKey::generate(Algorithm::RS256, "rs");
    let idp = Idp::start(&[&rs]).await;
    let gw = gateway(&idp, "RS256", "    scope_claim: scp\n");
    let token = rs.sign(
        &claims(
            ISSUER,
            json!({"scope": null, "scp": ["orders:read", "admin"]}),
        ),
        json!({}),
    );
    let echoed = expect_ok(&gw, &token).await;
    assert_eq!(echoed["headers"]["x-auth-scopes"], "orders:read admin");
    let reply = gw
        .client()
        .get(
            &gw.url("/admin/x"),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(reply.status, 200);
    let reader = rs.sign(
        &claims(ISSUER, json!({"scope": null, "scp": ["orders:read"]})),
        json!({}),
    );
    let reply = gw
        .client()
        .get(
            &gw.url("/admin/x"),
            &[("authorization", &format!("Bearer {reader}"))],
        )
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"authgate\", error=\"insufficient_scope\", scope=\"admin\"")
    );
    // A token on a keys-only route: refused before it is validated.
    let reply = gw
        .client()
        .get(
            &gw.url("/keys-only/x"),
            &[("authorization", "Bearer a.b.c")],
        )
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        gw.log_for(&reply.request_id()).await["reason"],
        "credential_kind_not_accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_malformed_tokens_are_refused_with_their_reason() {
    let rs = SigningKey::generate(Algorithm::RS256, "rs");
    let idp = Idp::start(&[&rs]).await;
    let gw = gateway(&idp, "RS256", "");
    let good_claims = claims(ISSUER, json!({"scope": "orders:read admin"}));
    let good = rs.sign(&good_claims, json!({}));
    let (signing_input, _) = good.rsplit_once('.').expect("jws");
    let (header_b64, _) = signing_input.split_once('.').expect("jws");

    // alg: none, in several spellings, with and without a signature.
    for none in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": none, "typ": "JWT"});
        let unsigned = format!(
            "{}.{}.",
            b64(header.to_string().as_bytes()),
            b64(good_claims.to_string().as_bytes())
        );
        expect_refused(&gw, &unsigned, "alg_none").await;
    }
    // Algorithm confusion: HS256 keyed with the issuer's public key PEM.
    let pem = rs.public_pem.clone().expect("pem");
    let confused = sign_raw(
        &json!({"alg": "HS256", "typ": "JWT", "kid": "rs"}),
        &good_claims,
        &EncodingKey::from_secret(pem.as_bytes()),
        Algorithm::HS256,
    );
    expect_refused(&gw, &confused, "alg_not_allowed").await;
    // Tampered payload: scope raised after signing.
    let raised = claims(ISSUER, json!({"scope": "orders:read admin superuser"}));
    let tampered = format!(
        "{header_b64}.{}.{}",
        b64(raised.to_string().as_bytes()),
        good.rsplit_once('.').expect("sig").1
    );
    expect_refused(&gw, &tampered, "bad_signature").await;
    // Stripped signature.
    expect_refused(&gw, &format!("{signing_input}."), "bad_signature").await;
    // crit names a parameter we cannot understand.
    expect_refused(
        &gw,
        &rs.sign(&good_claims, json!({"crit": ["exp"]})),
        "crit_not_supported",
    )
    .await;
    // Oversized token, before any parsing.
    let huge = rs.sign(
        &claims(ISSUER, json!({"pad": "x".repeat(9 * 1024)})),
        json!({}),
    );
    expect_refused(&gw, &huge, "token_too_large").await;
    // Garbage that is not a JWS at all (no introspection configured).
    expect_refused(&gw, "not-a-jwt", "malformed_token").await;
    expect_refused(&gw, "e30.%%%.x", "malformed_token").await;
    // A good token still works on a fresh connection.
    expect_ok(&gw, &good).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_named_by_the_token_are_never_fetched() {
    let rs = SigningKey::generate(Algorithm::RS256, "rs");
    let attacker = SigningKey::generate(Algorithm::RS256, "evil");
    let idp = Idp::start(&[&rs]).await;
    let gw = gateway(&idp, "RS256", "");
    let c = claims(ISSUER, json!({}));
    for header in [
        json!({"jku": idp.url("/evil/jwks.json")}),
        json!({"x5u": idp.url("/evil/cert.pem")}),
        json!({"jwk": attacker.jwk}),
        json!({"x5c": ["MIIB"]}),
    ] {
        let token = attacker.sign(&c, header);
        let reply = gw
            .client()
            .get(
                &gw.url("/orders/1"),
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert_eq!(reply.status, 401);
    }
    assert_eq!(
        idp.state.other_hits.load(Ordering::SeqCst),
        0,
        "the gateway fetched a URL named in a token"
    );
    // The same header parameters on a correctly signed token are simply ignored.
    expect_ok(
        &gw,
        &rs.sign(&c, json!({"jku": idp.url("/evil/jwks.json")})),
    )
    .await;
    assert_eq!(idp.state.other_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_issuer_and_audience_claims_are_checked() {
    let rs = SigningKey::generate(Algorithm::RS256, "rs");
    let idp = Idp::start(&[&rs]).await;
    let gw = gateway(&idp, "RS256", "");
    let t = |extra: Value| rs.sign(&claims(ISSUER, extra), json!({}));
    let n = now();
    expect_refused(&gw, &t(json!({"exp": n - 120})), "token_expired").await;
    expect_ok(&gw, &t(json!({"exp": n - 10}))).await; // within the 30 s leeway
    expect_refused(&gw, &t(json!({"nbf": n + 120})), "token_not_yet_valid").await;
    expect_ok(&gw, &t(json!({"nbf": n + 10}))).await;
    expect_refused(&gw, &t(json!({"iat": n + 120})), "token_issued_in_future").await;
    expect_refused(&gw, &t(json!({"exp": null})), "missing_claim").await;
    // CVE-2026-25537: a wrongly typed claim must never skip its check.
    expect_refused(&gw, &t(json!({"exp": "never"})), "malformed_claim").await;
    expect_refused(&gw, &t(json!({"nbf": "later"})), "malformed_claim").await;
    expect_refused(&gw, &t(json!({"aud": 5})), "malformed_claim").await;
    expect_refused(&gw, &t(json!({"aud": "another-api"})), "wrong_audience").await;
    expect_refused(
        &gw,
        &t(json!({"aud": ["another-api", "third"]})),
        "wrong_audience",
    )
    .await;
    expect_ok(&gw, &t(json!({"aud": ["another-api", AUDIENCE]}))).await;
    expect_refused(&gw, &t(json!({"aud": null})), "missing_claim").await;
    expect_refused(
        &gw,
        &rs.sign(&claims("https://evil.test/", json!({})), json!({})),
        "unknown_issuer",
    )
    .await;
    expect_refused(&gw, &t(json!({"iss": null})), "unknown_issuer").await;
    // The wrong key for a known kid is a bad signature, not a pass.
    let other = SigningKey::generate(Algorithm::RS256, "rs");
    expect_refused(
        &gw,
        &other.sign(&claims(ISSUER, json!({})), json!({})),
        "bad_signature",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_cannot_make_the_gateway_hammer_the_jwks_server() {
    let rs = SigningKey::generate(Algorithm::RS256, "rs");
    let idp = Idp::start(&[&rs]).await;
    let gw = gateway(&idp, "RS256", "");
    assert_eq!(idp.state.fetches(), 1, "fetched once at start");
    let rotated = SigningKey::generate(Algorithm::RS256, "rotated");
    for i in 0..20 {
        let token = rotated.sign(
            &claims(ISSUER, json!({})),
            json!({"kid": format!("unknown-{i}")}),
        );
        expect_refused(&gw, &token, "unknown_kid").await;
    }
    // The start fetch was under 30 s ago, so no kid could trigger another.
    assert_eq!(idp.state.fetches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_good_keys_keep_working_while_the_jwks_server_is_down() {
    let rs = SigningKey::generate(Algorithm::RS256, "rs");
    let idp = Idp::start(&[&rs]).await;
    let gw = gateway(&idp, "RS256", "    jwks_refresh: 200ms\n");
    idp.state.down.store(true, Ordering::SeqCst);
    let before = idp.state.fetches();
    // Wait until a refresh has actually failed against the down server.
    for _ in 0..400 {
        if idp.state.fetches() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(idp.state.fetches() > before, "no refresh happened");
    expect_ok(&gw, &rs.sign(&claims(ISSUER, json!({})), json!({}))).await;
    // The failed fetch's warning follows the server's answer; it may not be
    // captured yet.
    let stderr = gw.stderr_when(&["keeping the last good keys"]).await;
    assert!(stderr.contains("keeping the last good keys"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_jwks_file_are_key_sources_too() {
    let es = SigningKey::generate(Algorithm::ES256, "es");
    let idp = Idp::start(&[&es]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("jwks.json"),
        json!({"keys": [es.jwk]}).to_string(),
    )
    .expect("write jwks");
    let policy = format!(
        "upstream:\n  url: echo\njwt:
  - issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    algorithms: [ES256]
    discovery_url: {}
  - issuer: https://file.test/
    audiences: [{AUDIENCE}]
    algorithms: [ES256]
    jwks_file: jwks.json
{TOKEN_ROUTES}",
        idp.url("/.well-known/openid-configuration")
    );
    let gw = Gateway::start_file(dir, &format!(
        "server:\n  listen: 127.0.0.1:0\n  tls:\n    cert: gw.pem\n    key: gw-key.pem\n    generate_self_signed: true\n{policy}"
    ));
    assert_eq!(idp.state.discovery_fetches.load(Ordering::SeqCst), 1);
    expect_ok(&gw, &es.sign(&claims(ISSUER, json!({})), json!({}))).await;
    expect_ok(
        &gw,
        &es.sign(&claims("https://file.test/", json!({})), json!({})),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_tokens_are_introspected_cached_and_refused_when_inactive_or_unreachable() {
    let idp = Idp::start(&[]).await;
    idp.state.tokens.lock().expect("lock").insert(
        "opaque-good".into(),
        json!({"active": true, "sub": "svc-7", "scope": "orders:read", "exp": now() + 600, "iss": ISSUER}),
    );
    idp.state
        .tokens
        .lock()
        .expect("lock")
        .insert("opaque-old".into(), json!({"active": false}));
    std::env::set_var("AUTHGATE_TEST_INTROSPECTION_SECRET", "s3cr3t");
    let policy = format!(
        "upstream:\n  url: echo\nintrospection:
  - endpoint: {}
    client_id: gateway
    client_secret_env: AUTHGATE_TEST_INTROSPECTION_SECRET
    cache_ttl: 60s
{TOKEN_ROUTES}",
        idp.url("/introspect")
    );
    let gw = Gateway::start(&policy);
    let get = |token: &'static str| {
        let client = gw.client();
        let url = gw.url("/orders/1");
        async move {
            client
                .get(&url, &[("authorization", &format!("Bearer {token}"))])
                .await
        }
    };
    let reply = get("opaque-good").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["headers"]["x-auth-method"], "introspection");
    assert_eq!(reply.json()["headers"]["x-auth-subject"], "svc-7");
    let auth = idp
        .state
        .last_auth
        .lock()
        .expect("lock")
        .clone()
        .expect("basic auth");
    assert_eq!(
        auth,
        format!(
            "Basic {}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "gateway:s3cr3t")
        )
    );
    // Cached: a second request does not ask again.
    let calls = idp.state.introspections.load(Ordering::SeqCst);
    assert_eq!(get("opaque-good").await.status, 200);
    assert_eq!(idp.state.introspections.load(Ordering::SeqCst), calls);

    let reply = get("opaque-old").await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        gw.log_for(&reply.request_id()).await["reason"],
        "inactive_token"
    );

    idp.state.down.store(true, Ordering::SeqCst);
    let reply = get("opaque-unknown").await;
    assert_eq!(reply.status, 401);
    let log = gw.log_for(&reply.request_id()).await;
    assert_eq!(log["reason"], "introspection_unavailable");
    let stderr = gw
        .stderr_when(&["introspection endpoint unavailable"])
        .await;
    assert!(
        stderr.contains("introspection endpoint unavailable"),
        "{stderr}"
    );
    // The cached answer still serves while the endpoint is down.
    assert_eq!(get("opaque-good").await.status, 200);
    assert!(!gw.output().contains("opaque-good") && !gw.output().contains("s3cr3t"));
}
