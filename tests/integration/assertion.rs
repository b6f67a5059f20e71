//! The signed identity assertion: made by the gateway, verified here by
//! jsonwebtoken against the JWKS fetched over HTTP from the admin listener,
//! every claim checked; and a key rotation with both keys published.

use crate::harness::{admin_call, binary, digest, Gateway, Upstream, ADMIN};
use crate::mtls::Pki;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::path::Path;

const KEY: &str = "agk_assertion_test_key_0123456789";
const AUDIENCE: &str = "orders-api";
const ISSUER: &str = "authgate-test";

/// `authgate certs --assertion-key`, as an operator runs it; returns the kid it printed.
fn new_key(path: &Path, algorithm: &str) -> String {
    let out = std::process::Command::new(binary())
        .args(["certs", "--assertion-key"])
        .arg(path)
        .args(["--algorithm", algorithm])
        .output()
        .expect("run certs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .split("(kid ")
        .nth(1)
        .and_then(|r| r.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("no kid in {stdout:?}"))
        .to_string()
}

fn policy(upstream: &str, assertion: &str, extra: &str) -> String {
    format!(
        "upstream:\n  url: {upstream}\n{ADMIN}identity:\n  assertion:\n{assertion}    issuer: {ISSUER}\n    audience: {AUDIENCE}\n    ttl: 60s\napi_keys:\n  keys:\n    - id: ops\n      subject: operations\n      sha256: {}\n      scopes: [orders:read, orders:write]\n{extra}routes:\n  - name: orders\n    path: /orders/**\n",
        digest(KEY)
    )
}

async fn jwks(gw: &Gateway) -> JwkSet {
    let (status, body) = admin_call(gw, "GET", "/.well-known/jwks.json", None, "").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not a JWKS ({e}): {body}"))
}

/// Verifies an assertion as an upstream would: the key by `kid` from the
/// served JWKS, the algorithm the key names, `aud`, `iss`, `exp`.
fn verify(token: &str, keys: &JwkSet) -> Result<(jsonwebtoken::Header, Value), String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.clone().ok_or("no kid")?;
    let jwk = keys
        .find(&kid)
        .ok_or(format!("kid {kid} is not published"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let data =
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| e.to_string())?;
    Ok((data.header, data.claims))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assertion_states_the_caller_and_verifies_against_the_served_jwks() {
    let upstream = Upstream::start().await;
    let keys = tempfile::tempdir().expect("tempdir");
    let key_path = keys.path().join("assertion-key.pem");
    let kid = new_key(&key_path, "es256");
    // An mtls client too, for an identity without a key id.
    let pki = Pki::new("clients");
    let leaf = pki.leaf(
        Some("spiffe://example.org/billing"),
        "billing",
        vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth],
        3,
    );
    std::fs::write(keys.path().join("ca.pem"), &pki.ca_pem).expect("ca");
    let server = format!(
        "    client_ca: {}\n    client_auth: optional\n",
        keys.path().join("ca.pem").display()
    );
    let mtls = "mtls:\n  clients:\n    - subject: spiffe://example.org/billing\n      scopes: [orders:read]\n";
    let gw = Gateway::in_process_with(
        &server,
        &policy(
            &upstream.url(),
            &format!("    key: {}\n", key_path.display()),
            mtls,
        ),
    );
    let published = jwks(&gw).await;
    assert_eq!(published.keys.len(), 1);
    assert_eq!(
        published.keys[0].common.key_id.as_deref(),
        Some(kid.as_str())
    );

    // A caller's own X-Auth-Assertion never reaches the upstream.
    let client = gw.client();
    let before = now();
    let reply = client
        .get(
            &gw.url("/orders/1"),
            &[("x-api-key", KEY), ("x-auth-assertion", "forged.by.caller")],
        )
        .await;
    assert_eq!(reply.status, 200);
    let first = upstream.last().headers["x-auth-assertion"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_ne!(first, "forged.by.caller");
    let (header, claims) = verify(&first, &published).expect("the assertion verifies");
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["sub"], "operations");
    assert_eq!(claims["scope"], "orders:read orders:write");
    assert_eq!(claims["auth_method"], "api_key");
    assert_eq!(claims["key_id"], "ops");
    let iat = claims["iat"].as_u64().expect("iat");
    assert!((before..=now()).contains(&iat), "iat {iat}");
    assert_eq!(claims["exp"].as_u64(), Some(iat + 60));
    let members: Vec<&String> = claims.as_object().expect("object").keys().collect();
    assert_eq!(members.len(), 8, "unexpected claims: {members:?}");

    // The same caller again, within half the ttl: the same assertion.
    client
        .get(&gw.url("/orders/2"), &[("x-api-key", KEY)])
        .await;
    assert_eq!(upstream.last().headers["x-auth-assertion"], first.as_str());

    // Another identity: its own assertion, without key_id.
    let billing = gw.client_with_cert(&leaf.cert_pem, &leaf.key_pem);
    assert_eq!(billing.get(&gw.url("/orders/3"), &[]).await.status, 200);
    let cert_assertion = upstream.last().headers["x-auth-assertion"]
        .to_str()
        .expect("ascii")
        .to_string();
    let (_, claims) = verify(&cert_assertion, &published).expect("verifies");
    assert_eq!(claims["sub"], "spiffe://example.org/billing");
    assert_eq!(claims["auth_method"], "mtls");
    assert_eq!(claims["scope"], "orders:read");
    assert!(claims.get("key_id").is_none(), "{claims}");

    // A tampered assertion does not verify: the check above is real.
    let mut parts: Vec<String> = first.split('.').map(str::to_string).collect();
    let forged_claims = serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "admin", "scope": "orders:read orders:write", "auth_method": "api_key", "key_id": "ops", "iat": iat, "exp": iat + 60});
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged_claims.to_string());
    assert!(verify(&parts.join("."), &published).is_err());
    // No assertion: no route on the admin listener.
    let plain = Gateway::in_process(&format!(
        "upstream:\n  url: echo\n{ADMIN}routes:\n  - path: /x\n    auth: none\n"
    ));
    let (status, _) = admin_call(&plain, "GET", "/.well-known/jwks.json", None, "").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_publishes_both_keys_and_tokens_of_both_verify() {
    let upstream = Upstream::start().await;
    let keys = tempfile::tempdir().expect("tempdir");
    let old_path = keys.path().join("assertion-1.pem");
    let new_path = keys.path().join("assertion-2.pem");
    let old_kid = new_key(&old_path, "es256");
    let new_kid = new_key(&new_path, "eddsa");
    let gw = Gateway::in_process(&policy(
        &upstream.url(),
        &format!("    key: {}\n", old_path.display()),
        "",
    ));
    let client = gw.client();
    let assertion = || {
        upstream.last().headers["x-auth-assertion"]
            .to_str()
            .expect("ascii")
            .to_string()
    };
    client
        .get(&gw.url("/orders/1"), &[("x-api-key", KEY)])
        .await;
    let old_token = assertion();

    // Sign with the new key, keep the old one published.
    let file = gw.dir.path().join("gateway.yaml");
    let text = std::fs::read_to_string(&file).expect("policy");
    let rotated = text.replace(
        &format!("    key: {}\n", old_path.display()),
        &format!(
            "    key: {}\n    published_keys: [{}]\n",
            new_path.display(),
            old_path.display()
        ),
    );
    assert_ne!(rotated, text);
    std::fs::write(&file, rotated).expect("write policy");
    gw.reload();
    let mut published = jwks(&gw).await;
    for _ in 0..100 {
        if published.keys.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        published = jwks(&gw).await;
    }
    let kids: Vec<Option<&str>> = published
        .keys
        .iter()
        .map(|k| k.common.key_id.as_deref())
        .collect();
    assert_eq!(kids, vec![Some(new_kid.as_str()), Some(old_kid.as_str())]);

    // The same caller, right after: signed by the new key, not the cached old one.
    client
        .get(&gw.url("/orders/2"), &[("x-api-key", KEY)])
        .await;
    let new_token = assertion();
    let (header, claims) = verify(&new_token, &published).expect("new token verifies");
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    assert_eq!(claims["sub"], "operations");
    let (header, _) = verify(&old_token, &published).expect("old token still verifies");
    assert_eq!(header.kid.as_deref(), Some(old_kid.as_str()));

    // The rotation's end: the old key withdrawn, its tokens no longer verify.
    let text = std::fs::read_to_string(&file).expect("policy");
    let done = text.replace(
        &format!("    published_keys: [{}]\n", old_path.display()),
        "",
    );
    std::fs::write(&file, done).expect("write policy");
    gw.reload();
    for _ in 0..100 {
        published = jwks(&gw).await;
        if published.keys.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(published.keys.len(), 1);
    assert!(verify(&old_token, &published).is_err());
    assert!(verify(&new_token, &published).is_ok());
}
