//! `authgate explain` against the decision a real gateway logs for the same
//! request: the same decision and reason, offline.

use crate::harness::*;
use std::process::Command;

fn explain(policy: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary())
        .arg("explain")
        .arg("-c")
        .arg(policy)
        .args(args)
        .output()
        .expect("run explain");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_gives_the_decision_and_reason_the_gateway_logs() {
    let upstream = Upstream::start().await;
    let gw = Gateway::in_process(&format!(
        "upstream:\n  url: {}\n{}{STANDARD_ROUTES}",
        upstream.url(),
        standard_keys()
    ));
    let policy = gw.dir.path().join("gateway.yaml");
    let client = gw.client();
    let cases: [(&str, &str, Option<&str>, i32); 6] = [
        ("GET", "/orders/7", Some(READER_KEY), 0),
        ("DELETE", "/orders/7", Some(READER_KEY), 3),
        ("GET", "/orders/%2F..%2Fadmin", Some(READER_KEY), 3),
        ("GET", "/orders/7", Some("agk_not_a_key_of_this_policy"), 3),
        ("GET", "/orders/7", Some(EXPIRED_KEY), 3),
        ("GET", "/nowhere", None, 3),
    ];
    for (method, path, key, exit) in cases {
        let mut req = http::Request::builder().method(method).uri(gw.url(path));
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        let reply = client
            .send(
                req.body(http_body_util::Full::new(bytes::Bytes::new()))
                    .expect("request"),
            )
            .await;
        let log = gw.log_for(&reply.request_id()).await;
        let mut args = vec![method, path];
        if let Some(key) = key {
            args.extend(["--key", key]);
        }
        let (code, out, err) = explain(&policy, &args);
        assert_eq!(code, exit, "{method} {path}: {out}{err}");
        let decision = log["decision"].as_str().expect("decision");
        match log["reason"].as_str() {
            None => assert!(out.contains("decision:  allowed"), "{out}"),
            Some(reason) => {
                assert!(
                    out.contains(&format!(
                        "decision:  {decision} — {}",
                        reply.status.as_u16()
                    )),
                    "{out}\n{log}"
                );
                assert!(
                    out.contains(&format!("reason:    {reason} (")),
                    "{out}\n{log}"
                );
            }
        }
        if let Some(key) = key {
            assert!(
                !out.contains(key) && !err.contains(key),
                "the key was printed"
            );
        }
    }
    // By key id, without the key: the admin key may delete.
    let (code, out, _) = explain(&policy, &["DELETE", "/orders/7", "--key-id", "admin"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("route:     orders-write"), "{out}");
    let (code, _, err) = explain(&policy, &["GET", "/orders/7", "--key-id", "nobody"]);
    assert_eq!(code, 1, "{err}");
    // The route table names the keys whose scopes suffice.
    let (code, out, _) = explain(&policy, &["--routes"]);
    assert_eq!(code, 0);
    let admin_route = out.split("route:     admin").nth(1).expect("admin route");
    assert!(admin_route.contains("keys:      admin\n"), "{out}");
    let read_route = out
        .split("route:     orders-read")
        .nth(1)
        .expect("read route");
    let read_keys = read_route
        .lines()
        .find(|l| l.starts_with("keys:"))
        .expect("keys line");
    assert_eq!(
        read_keys,
        "keys:      admin, disabled (disabled), expired (expired), reader"
    );
    // Bad input.
    let (code, _, _) = explain(&policy, &["G E T", "/x"]);
    assert_eq!(code, 1);
}
