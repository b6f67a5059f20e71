//! The README's nginx and Caddy configurations, run as they stand by the
//! real front proxies (child processes on free ports) in front of the
//! recording upstream, asking a real gateway's forward-auth listener.

use crate::harness::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The first fenced block of `lang` in the README.
fn readme_block(lang: &str) -> String {
    let readme = include_str!("../../README.md");
    let fence = format!("```{lang}\n");
    let start = readme.find(&fence).expect("README block") + fence.len();
    let end = readme[start..].find("```").expect("closing fence") + start;
    readme[start..end].to_string()
}

/// The README's configuration with the documented gateway and API
/// addresses replaced by the test's.
fn readme_config(lang: &str, gateway: &Gateway, api: &Upstream) -> String {
    let decision = gateway.forward_auth.expect("forward_auth listener");
    readme_block(lang)
        .replace("127.0.0.1:9091", &decision.to_string())
        .replace("127.0.0.1:8080", &api.addr.to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A front proxy started from the README's block, with the documented
/// addresses replaced by the test's.
struct FrontProxy {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl FrontProxy {
    fn nginx(gateway: &Gateway, api: &Upstream) -> FrontProxy {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let block = readme_config("nginx", gateway, api)
            .replace("listen 8000;", &format!("listen 127.0.0.1:{port};"));
        let d = dir.path().display();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\nevents {{}}\nhttp {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n{block}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (`apt-get install nginx`)");
        FrontProxy { port, child, dir }.ready("nginx", "error.log")
    }

    fn caddy(gateway: &Gateway, api: &Upstream) -> FrontProxy {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let block =
            readme_config("caddyfile", gateway, api).replace(":8001 {", &format!(":{port} {{"));
        let conf = format!("{{\n\tadmin off\n\tauto_https off\n}}\n{block}");
        let path = dir.path().join("Caddyfile");
        std::fs::write(&path, conf).expect("write Caddyfile");
        let log = std::fs::File::create(dir.path().join("caddy.log")).expect("log file");
        let child = Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            // Caddy keeps state under HOME / XDG dirs: keep it in the test's.
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("caddy is installed (`apt-get install caddy`)");
        FrontProxy { port, child, dir }.ready("caddy", "caddy.log")
    }

    /// Waits until the proxy accepts connections.
    fn ready(mut self, name: &str, log: &str) -> FrontProxy {
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return self;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let text = std::fs::read_to_string(self.dir.path().join(log)).unwrap_or_default();
                panic!("{name} exited with {status}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("{name} did not start listening");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for FrontProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway() -> Gateway {
    Gateway::in_process(&format!(
        "upstream:\n  url: echo\nforward_auth:\n  listen: 127.0.0.1:0\nrate_limits:\n  backend: memory\n  limits:\n    tight: {{ rate: 1/min, burst: 1 }}\n{}routes:
  - name: limited
    path: /limited/**
    rate_limit: tight
    scopes: [orders:read]
{}",
        standard_keys(),
        STANDARD_ROUTES.trim_start_matches("routes:\n")
    ))
}

/// What both front proxies must do with the README's configuration.
async fn behaves_like_the_gateway(proxy: &FrontProxy, api: &Upstream) {
    // Allowed: the API gets the caller's identity, never the client's
    // spoofed one, and not the credential.
    let ok = plain_get(
        &proxy.url("/orders/7"),
        &[
            ("x-api-key", READER_KEY),
            ("x-auth-subject", "root"),
            ("x-auth-scopes", "admin"),
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let seen = api.last();
    assert_eq!(seen.uri, "/orders/7");
    let header = |name: &str| {
        seen.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(header("x-auth-subject").as_deref(), Some("alice"));
    assert_eq!(header("x-auth-scopes").as_deref(), Some("orders:read"));
    assert_eq!(header("x-auth-key-id").as_deref(), Some("reader"));
    assert!(
        header("x-api-key").is_none(),
        "the credential reached the API"
    );
    assert!(header("x-request-id").is_some_and(|id| !id.is_empty()));

    // A public route: the client's X-Auth-* never arrives as theirs.
    let before = api.requests().len();
    let open = plain_get(&proxy.url("/healthz"), &[("x-auth-subject", "root")]).await;
    assert_eq!(open.status, 200);
    assert_eq!(api.requests().len(), before + 1);
    let seen = api.last();
    assert!(
        seen.headers
            .get("x-auth-subject")
            .is_none_or(|v| v.is_empty()),
        "{:?}",
        seen.headers
    );

    // Refusals reach the client with the gateway's status and headers, and
    // nothing reaches the API.
    let before = api.requests().len();
    let none = plain_get(&proxy.url("/orders/7"), &[]).await;
    assert_eq!(none.status, 401);
    let challenge = none.header("www-authenticate").expect("challenge");
    assert!(
        challenge.contains("Bearer") && challenge.contains("ApiKey"),
        "{challenge}"
    );
    let bad = plain_get(&proxy.url("/orders/7"), &[("x-api-key", "agk_wrong")]).await;
    assert_eq!(bad.status, 401);
    assert!(bad
        .header("www-authenticate")
        .is_some_and(|c| c.contains("invalid_token")));
    let scope = plain_get(&proxy.url("/admin/x"), &[("x-api-key", READER_KEY)]).await;
    assert_eq!(scope.status, 403);
    assert!(scope
        .header("www-authenticate")
        .is_some_and(|c| c.contains("scope=\"admin\"")));
    let tricky = plain_get(&proxy.url("/orders/%2F"), &[("x-api-key", READER_KEY)]).await;
    assert_eq!(tricky.status, 400);
    // A client naming another path for the check is refused, not judged.
    let named = plain_get(
        &proxy.url("/admin/x"),
        &[
            ("x-original-uri", "/healthz"),
            ("x-forwarded-uri", "/healthz"),
        ],
    )
    .await;
    assert!(matches!(named.status.as_u16(), 400 | 401), "{named:?}");
    let first = plain_get(&proxy.url("/limited/1"), &[("x-api-key", READER_KEY)]).await;
    assert_eq!(first.status, 200);
    let limited = plain_get(&proxy.url("/limited/1"), &[("x-api-key", READER_KEY)]).await;
    assert_eq!(limited.status, 429, "{limited:?}");
    assert!(limited
        .header("retry-after")
        .and_then(|r| r.parse::<u64>().ok())
        .is_some_and(|r| r >= 1));
    assert_eq!(limited.header("ratelimit-limit").as_deref(), Some("1"));
    assert_eq!(
        api.requests().len(),
        before + 1,
        "only the allowed /limited request passed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_with_the_readme_config_relays_every_decision() {
    let api = Upstream::start().await;
    let gw = gateway();
    let proxy = FrontProxy::nginx(&gw, &api);
    behaves_like_the_gateway(&proxy, &api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_with_the_readme_config_relays_every_decision() {
    let api = Upstream::start().await;
    let gw = gateway();
    let proxy = FrontProxy::caddy(&gw, &api);
    behaves_like_the_gateway(&proxy, &api).await;
}
