//! `authgate report` on the access log a real gateway wrote: plain, gzip
//! and stdin, text and JSON, and `--since`.

use crate::harness::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn report(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let mut child = Command::new(binary())
        .arg("report")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run report");
    if let Some(bytes) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(bytes)
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("report output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateways_log_is_summarized_from_a_file_gzip_or_stdin() {
    let gw = Gateway::in_process(&format!(
        "upstream:\n  url: echo\n{}{STANDARD_ROUTES}",
        standard_keys()
    ));
    let client = gw.client();
    let mut last = String::new();
    for _ in 0..5 {
        last = client
            .get(&gw.url("/orders/1"), &[("x-api-key", READER_KEY)])
            .await
            .request_id();
    }
    for _ in 0..3 {
        client.get(&gw.url("/orders/1"), &[]).await;
    }
    for _ in 0..2 {
        last = client
            .get(&gw.url("/admin/x"), &[("x-api-key", READER_KEY)])
            .await
            .request_id();
    }
    gw.log_for(&last).await;
    let log_path = gw.dir.path().join("access.log");
    let log = std::fs::read(&log_path).expect("access log");
    // The text summary of the file.
    let (code, text, stderr) = report(&[log_path.to_str().expect("path")], None);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.starts_with("10 requests, 5 denied"), "{text}");
    assert!(text.contains("statuses: 200 5, 401 3, 403 2"), "{text}");
    assert!(
        text.contains("denial reasons: missing_credential 3, missing_scope 2"),
        "{text}"
    );
    assert!(
        text.contains("top callers: reader 7, (anonymous) 3"),
        "{text}"
    );
    assert!(
        text.contains("top callers by denials: (anonymous) 3, reader 2"),
        "{text}"
    );
    assert!(
        text.contains("top routes: orders-read 8, admin 2"),
        "{text}"
    );
    // The same from gzip, as JSON.
    let gz_path = gw.dir.path().join("access.log.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&log).expect("gzip");
    std::fs::write(&gz_path, gz.finish().expect("gzip")).expect("write gz");
    let (code, json, stderr) = report(&[gz_path.to_str().expect("path"), "--json"], None);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["total"]["requests"], 10);
    assert_eq!(v["total"]["decisions"]["forbidden"], 2);
    assert_eq!(v["top_routes"][0]["name"], "orders-read");
    assert!(v["total"]["latency_ms"]["p99"]
        .as_f64()
        .is_some_and(|p| p > 0.0));
    assert_eq!(v["slices"].as_object().map(|s| s.len()), Some(1));
    // From stdin, with a line that is not a log line and an old one.
    let mut piped = b"not a log line\n".to_vec();
    piped.extend_from_slice(
        br#"{"ts":"2020-01-01T00:00:00.000Z","status":200,"decision":"allowed","duration_ms":1.0}"#,
    );
    piped.push(b'\n');
    piped.extend_from_slice(&log);
    let (code, text, stderr) = report(&["-", "--since", "1h"], Some(&piped));
    assert_eq!(code, 0, "{stderr}");
    assert!(text.starts_with("10 requests"), "{text}");
    assert!(text.contains("skipped 1 lines"), "{text}");
    let (code, text, _) = report(&["-"], Some(&piped));
    assert_eq!(code, 0);
    assert!(text.starts_with("11 requests"), "{text}");
    // Bad input is a clear error, not a panic.
    let (code, _, stderr) = report(&["/nonexistent/access.log"], None);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot read /nonexistent/access.log"),
        "{stderr}"
    );
    let (code, _, stderr) = report(&["-", "--since", "soon"], Some(b""));
    assert_eq!(code, 1, "{stderr}");
}
