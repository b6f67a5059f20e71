//! The README's promise: its curl example against the shipped policy returns
//! the echoed request with `X-Auth-Subject`.

use crate::harness::*;

fn manifest_file(name: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_curl_example_works_against_the_shipped_policy() {
    let readme = manifest_file("README.md");
    let example = readme
        .split("```sh")
        .find(|block| block.contains("curl -sk 'https://127.0.0.1:8443/orders/42?expand=lines'"))
        .expect("README quick-start curl example");
    let key = example
        .split("X-API-Key: ")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("demo key in the README example");

    // The shipped policy as is, only on an ephemeral port.
    let shipped = manifest_file("gateway.yaml");
    assert!(shipped.contains("listen: 127.0.0.1:8443"));
    let policy = shipped.replace("listen: 127.0.0.1:8443", "listen: 127.0.0.1:0");
    let gw = Gateway::start_file(tempfile::tempdir().expect("tempdir"), &policy);
    let client = TestClient::trusting(&gw.dir.path().join("certs/gateway.pem"));
    let reply = client
        .get(&gw.url("/orders/42?expand=lines"), &[("x-api-key", key)])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let echoed = reply.json();
    assert_eq!(echoed["path"], "/orders/42");
    assert_eq!(echoed["query"], "expand=lines");
    assert_eq!(echoed["headers"]["x-auth-subject"], "demo-client");
    assert!(echoed["headers"].get("x-api-key").is_none());
    assert!(!gw.output().contains(key));
}

/// The README's "Signing people in" walkthrough: `examples/signin.yaml`
/// against the test provider (its address and CA put in place of the
/// walkthrough's `localhost:9443`), signed in as `alice`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_sign_in_walkthrough_policy_signs_people_in() {
    use crate::oidc::{Provider, ProviderOptions, SignInDriver};
    let readme = manifest_file("README.md");
    let walkthrough = readme
        .split("## Signing people in")
        .nth(1)
        .expect("README section");
    assert!(walkthrough.contains("cargo run -- run -c examples/signin.yaml"));
    assert!(walkthrough.contains("IDP_CLIENT_ID=authgate"));
    let example = manifest_file("examples/signin.yaml");
    assert!(example.contains("client_id: authgate"));
    assert!(example.contains("provider: https://localhost:9443"));

    let provider = Provider::start(ProviderOptions {
        extra_claims: Some(r#"{"scope":"orders:read"}"#.into()),
        ..Default::default()
    });
    let policy = example
        .replace("listen: 127.0.0.1:8443", "listen: 127.0.0.1:0")
        .replace("../certs/gateway-key.pem", "gw-key.pem")
        .replace("../certs/gateway.pem", "gw.pem")
        .replace("https://localhost:9443", &provider.issuer)
        .replace(
            "client_id: authgate\n",
            &format!("client_id: {}\n", crate::oidc::CLIENT_ID),
        )
        .replace("ca: gw.pem", &format!("ca: {}", provider.ca_path.display()))
        .replace("AUTHGATE_OIDC_SECRET", "AUTHGATE_TEST_OIDC_SECRET")
        .replace("AUTHGATE_SESSION_KEY", "AUTHGATE_TEST_SESSION_KEY");
    let gw = Gateway::start_file(tempfile::tempdir().expect("tempdir"), &policy);
    provider.register(&[&gw]).await;
    let mut driver = SignInDriver::new(&gw, &provider);
    let (url, page) = driver.sign_in(&gw.url("/orders/42"), "alice").await;
    assert_eq!(url, gw.url("/orders/42"));
    let echoed = page.expect("the echo").json();
    assert_eq!(echoed["headers"]["x-auth-method"], "session");
    assert_eq!(echoed["headers"]["x-auth-subject"], "alice");
    assert_eq!(echoed["headers"]["x-auth-scopes"], "orders:read");
    assert_eq!(echoed["headers"]["x-auth-email"], "alice@example.test");
    assert!(echoed["headers"]
        .get("cookie")
        .is_none_or(|c| !c.as_str().unwrap_or_default().contains("__Host-authgate")));
}
