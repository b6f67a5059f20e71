//! The command line: check, keygen, hash-key, certs, token; exit codes.

use crate::harness::binary;
use std::io::Write;
use std::process::{Command, Stdio};

fn check(policy: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, policy).expect("write");
    let out = Command::new(binary())
        .args(["check", "-c"])
        .arg(&path)
        .env("AUTHGATE_TEST_ADMIN_TOKEN", crate::harness::ADMIN_TOKEN)
        .output()
        .expect("run check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_lists_every_error_with_line_and_column() {
    let policy = "\
server:
  listen: 127.0.0.1:8443
  tls:
    cert: c.pem
    key: k.pem
  idle_timeout: 10 parsecs
upstream:
  url: echo
  timout: 5s
routes:
  - path: /orders/**/lines
    auth: none
";
    let (code, _, stderr) = check(policy);
    assert_eq!(code, 1, "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("gateway.yaml:"))
        .collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].contains("gateway.yaml:6:17: server.idle_timeout"),
        "{stderr}"
    );
    assert!(lines[0].contains("parsecs"), "{stderr}");
    assert!(
        lines[1].contains("gateway.yaml:9:3: upstream.timout: unknown field `timout`"),
        "{stderr}"
    );
    assert!(lines[2].contains("gateway.yaml:11:11:"), "{stderr}");
    assert!(
        lines[2].contains("`**` is only allowed as the last segment"),
        "{stderr}"
    );
}

#[test]
fn check_refuses_a_forward_auth_listener_on_a_taken_port_or_with_bad_cidrs() {
    let policy = |forward_auth: &str| {
        format!(
            "server:
  listen: 127.0.0.1:8443
  tls: {{cert: c.pem, key: k.pem}}
admin:
  listen: 127.0.0.1:9090
  token_env: AUTHGATE_TEST_ADMIN_TOKEN
upstream: {{url: echo}}
forward_auth:
{forward_auth}routes:
  - path: /**
    auth: none
"
        )
    };
    let (code, _, stderr) = check(&policy("  listen: 127.0.0.1:8443\n"));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("gateway.yaml:9:11:") && stderr.contains("port of `server.listen`"),
        "{stderr}"
    );
    let (code, _, stderr) = check(&policy("  listen: 127.0.0.1:9090\n"));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("gateway.yaml:9:11:") && stderr.contains("port of `admin.listen`"),
        "{stderr}"
    );
    let (code, _, stderr) = check(&policy(
        "  listen: 127.0.0.1:9091\n  trusted: [10.0.0.0/8, nonsense]\n",
    ));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("gateway.yaml:10:25:") && stderr.contains("`nonsense` is not a CIDR"),
        "{stderr}"
    );
    let (code, _, stderr) = check(&policy("  listen: 127.0.0.1:9091\n  trusted: 10.0.0.0/8\n"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("gateway.yaml:10:"), "{stderr}");
    // A port of its own passes.
    let (code, _, stderr) = check(&policy("  listen: 127.0.0.1:9091\n"));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn scan_names_where_live_keys_leaked_and_never_prints_them() {
    use crate::harness::{digest, ADMIN_KEY, READER_KEY};
    let dir = tempfile::tempdir().expect("tempdir");
    let disabled_key = "agk_disabled_but_still_leaked_1234";
    let unknown_key = "agk_nobody_knows_this_key_0000";
    let policy = format!(
        "server:\n  tls: {{cert: c.pem, key: k.pem}}\nupstream: {{url: echo}}\napi_keys:\n  keys:\n    - id: reader\n      sha256: {}\n    - id: admin\n      sha256: {}\n    - id: retired\n      sha256: {}\n      disabled: true\nroutes:\n  - path: /**\n",
        digest(READER_KEY),
        digest(ADMIN_KEY),
        digest(disabled_key)
    );
    let policy_path = dir.path().join("gateway.yaml");
    std::fs::write(&policy_path, policy).expect("policy");
    let tree = dir.path().join("repo");
    std::fs::create_dir_all(tree.join("src/deep")).expect("dirs");
    std::fs::create_dir_all(tree.join(".git")).expect("git dir");
    std::fs::write(
        tree.join("src/deep/client.py"),
        format!("import os\n\nHEADERS = {{'X-API-Key': '{READER_KEY}'}}\n"),
    )
    .expect("file");
    std::fs::write(
        tree.join("notes.md"),
        format!("old: {disabled_key}\nexample: {unknown_key}\n"),
    )
    .expect("file");
    std::fs::write(tree.join(".git/config"), ADMIN_KEY).expect("file");
    std::fs::write(
        tree.join("blob.bin"),
        [b"\0\0".as_slice(), ADMIN_KEY.as_bytes()].concat(),
    )
    .expect("file");
    let scan = |target: &std::path::Path| {
        let out = Command::new(binary())
            .args(["scan", "-c"])
            .arg(&policy_path)
            .arg(target)
            .output()
            .expect("run scan");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = scan(&tree);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let t = tree.display();
    assert_eq!(
        lines,
        vec![
            format!("{t}/notes.md:1: key of retired (disabled)"),
            format!("{t}/notes.md:2: unknown authgate key"),
            format!("{t}/src/deep/client.py:3: key of reader"),
        ],
        "{stderr}"
    );
    for key in [READER_KEY, ADMIN_KEY, disabled_key, unknown_key] {
        assert!(
            !stdout.contains(key) && !stderr.contains(key),
            "a key was printed"
        );
    }
    assert!(stderr.contains("1 binary skipped"), "{stderr}");
    // Once the live key is gone, what is left is no reason to fail.
    std::fs::remove_file(tree.join("src/deep/client.py")).expect("remove");
    let (code, stdout, stderr) = scan(&tree);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout.lines().count(), 2);
}

#[test]
fn check_accepts_the_shipped_policy_and_warns_about_shadowed_routes() {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.yaml"))
        .expect("shipped gateway.yaml");
    let (code, stdout, stderr) = check(&shipped);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok"), "{stdout}");

    let shadowed = "\
server:
  tls: {cert: c.pem, key: k.pem}
upstream: {url: echo}
routes:
  - name: everything
    path: /api/**
    auth: none
  - name: users
    path: /api/users/*
    methods: [GET]
    auth: none
";
    let (code, _, stderr) = check(shadowed);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "gateway.yaml:8:5: warning: route `users` can never match: route `everything`"
        ),
        "{stderr}"
    );
}

#[test]
fn check_refuses_unknown_keys_at_every_level_and_invalid_yaml() {
    let (code, _, stderr) = check("servr:\n  listen: x\n");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("gateway.yaml:1:1: servr: unknown field `servr`"),
        "{stderr}"
    );
    let (code, _, stderr) = check("routes: [\n");
    assert_eq!(code, 1);
    assert!(stderr.contains("not valid YAML"), "{stderr}");
}

#[test]
fn missing_policy_file_is_a_runtime_failure() {
    let out = Command::new(binary())
        .args(["check", "-c", "/nonexistent/gateway.yaml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
}

#[test]
fn keygen_prints_a_key_once_and_its_entry_and_hash_key_agrees() {
    let out = Command::new(binary())
        .args([
            "keygen",
            "--id",
            "svc",
            "--scopes",
            "a,b",
            "--expires",
            "90d",
        ])
        .output()
        .expect("keygen");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let key = lines.next().expect("key line");
    assert!(key.starts_with("agk_") && key.len() == 4 + 43, "{key}");
    assert_eq!(lines.next(), Some(""));
    assert!(text.contains("- id: svc"));
    assert!(text.contains("scopes: [a, b]"));
    assert!(text.contains("expires: 20"));

    let mut hasher = Command::new(binary())
        .arg("hash-key")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("hash-key");
    hasher
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("  {key}\n").as_bytes())
        .expect("write");
    let hashed = hasher.wait_with_output().expect("hash-key output");
    let digest = String::from_utf8_lossy(&hashed.stdout).trim().to_string();
    assert!(
        text.contains(&format!("sha256: {digest}")),
        "{text} vs {digest}"
    );
    assert_eq!(digest, crate::harness::digest(key));
}

#[test]
fn certs_writes_a_pair_the_gateway_can_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(binary())
        .args(["certs", "--out"])
        .arg(dir.path())
        .output()
        .expect("certs");
    assert!(out.status.success());
    let cert = std::fs::read_to_string(dir.path().join("gateway.pem")).expect("cert");
    assert!(cert.contains("BEGIN CERTIFICATE"));
    let key = dir.path().join("gateway-key.pem");
    assert!(std::fs::read_to_string(&key)
        .expect("key")
        .contains("PRIVATE KEY"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
    assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
}

#[test]
fn token_refuses_a_short_secret() {
    let out = Command::new(binary())
        .args(["token", "--secret-env", "AG_TEST_SHORT", "--sub", "x"])
        .env("AG_TEST_SHORT", "short")
        .output()
        .expect("token");
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("short\n"));
}

#[test]
fn check_resolves_secrets_and_names_the_variable() {
    let policy = "\
server:
  tls: {cert: c.pem, key: k.pem}
upstream: {url: echo}
jwt:
  - issuer: https://hs/
    audiences: [api]
    algorithms: [HS256, RS256]
    hs_secret_env: AUTHGATE_TEST_SHORT_SECRET
  - issuer: https://none/
    audiences: [api]
    algorithms: [none]
    jwks_url: https://idp.example/jwks.json
routes:
  - path: /**
";
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, policy).expect("write");
    let out = Command::new(binary())
        .args(["check", "-c"])
        .arg(&path)
        .env("AUTHGATE_TEST_SHORT_SECRET", "too-short")
        .output()
        .expect("check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("AUTHGATE_TEST_SHORT_SECRET is 9 bytes; it must be at least 32"),
        "{stderr}"
    );
    assert!(stderr.contains("`RS256` needs public keys"), "{stderr}");
    assert!(
        stderr.contains("`none` is not an algorithm authgate accepts"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("too-short"),
        "the secret itself was printed: {stderr}"
    );
}

#[test]
fn check_warns_about_unconfigured_kinds_and_expiring_keys() {
    let soon = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3 * 86_400),
    );
    let policy = format!(
        "server:
  tls:
    cert: gw.pem
    key: gw-key.pem
    generate_self_signed: true
upstream:
  url: echo
api_keys:
  keys:
    - id: old
      sha256: {}
      expires: 2020-01-01T00:00:00Z
    - id: soon
      sha256: {}
      expires: {soon}
routes:
  - name: tokens
    path: /tokens/**
    auth: [jwt]
  - name: orders
    path: /orders/**
  - name: admin
    path: /admin/**
    methods: [GET]
    scopes: [admin]
  - name: public
    path: /**
    auth: none
admin:
  listen: 0.0.0.0:9090
  token_env: AUTHGATE_TEST_ADMIN_TOKEN
",
        crate::harness::digest("agk_one"),
        crate::harness::digest("agk_two")
    );
    let (code, _, stderr) = check(&policy);
    assert_eq!(code, 0, "{stderr}");
    let warning_at = |needle: &str, line: usize| {
        assert!(
            stderr.lines().any(|l| l.contains(needle)
                && l.contains(&format!("gateway.yaml:{line}:"))
                && l.contains("warning:")),
            "no warning with {needle:?} on line {line}:\n{stderr}"
        );
    };
    warning_at("`old` expired at 2020-01-01T00:00:00Z", 12);
    warning_at("`soon` expires at", 15);
    warning_at("not configured in the policy yet", 19);
    warning_at("can fall past route `admin`", 24);
    warning_at("the admin listener 0.0.0.0:9090 is not on loopback", 30);
}

#[test]
fn check_refuses_unusable_assertion_keys_and_certificate_settings_with_positions() {
    let keys = tempfile::tempdir().expect("tempdir");
    let rsa = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .expect("rsa key");
    let rsa_path = keys.path().join("rsa.pem");
    std::fs::write(&rsa_path, rsa.serialize_pem()).expect("write");
    // SEC1 (`EC PRIVATE KEY`) is how `openssl ecparam -genkey` writes EC keys.
    let sec1_path = keys.path().join("sec1.pem");
    std::fs::write(
        &sec1_path,
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBYr\n-----END EC PRIVATE KEY-----\n",
    )
    .expect("write");
    let missing = keys.path().join("missing.pem");
    let policy = |key: &std::path::Path, mtls: &str| {
        format!(
            "server:\n  tls:\n    cert: c.pem\n    key: k.pem\nupstream:\n  url: echo\nidentity:\n  assertion:\n    key: {}\n    audience: api\n{mtls}routes:\n  - path: /x\n",
            key.display()
        )
    };
    for (key, expected) in [
        (&missing, "cannot read the key file"),
        (&rsa_path, "is an RSA key"),
        (&sec1_path, "SEC1"),
    ] {
        let (code, _, stderr) = check(&policy(key, ""));
        assert_eq!(code, 1, "{stderr}");
        let line = stderr
            .lines()
            .find(|l| l.contains("gateway.yaml:"))
            .unwrap_or_else(|| panic!("no positioned error: {stderr}"));
        assert!(line.contains("gateway.yaml:9:10:"), "{line}");
        assert!(line.contains(expected), "{line}");
    }
    // A good key: the other errors stand alone.
    let good = keys.path().join("good.pem");
    let out = std::process::Command::new(binary())
        .args(["certs", "--assertion-key"])
        .arg(&good)
        .output()
        .expect("certs");
    assert!(out.status.success());
    let (code, _, stderr) = check(&policy(
        &good,
        "mtls:\n  subject_from: []\n  clients:\n    - subject: spiffe://x/y\n",
    ));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("gateway.yaml:12:3: `mtls` needs `server.tls.client_ca`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("gateway.yaml:12:17: `subject_from` is empty"),
        "{stderr}"
    );
    // `certs --assertion-key` never overwrites a key.
    let again = std::process::Command::new(binary())
        .args(["certs", "--assertion-key"])
        .arg(&good)
        .output()
        .expect("certs");
    assert_eq!(again.status.code(), Some(1));
}
