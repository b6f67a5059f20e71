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
