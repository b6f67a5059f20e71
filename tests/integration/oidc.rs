//! The real OpenID provider of the sign-in tests: `oidc-provider` from npm
//! (tests/idp/idp.mjs), started on a free port over https from a test CA
//! and stopped on drop; and a small HTTP driver that signs in through it
//! with a cookie jar, for the attack tests that need the callback URL in
//! hand (the browser tests click through the same pages).

use crate::harness::{Gateway, Reply, TestClient};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

pub const CLIENT_ID: &str = "authgate-test";
pub const CLIENT_SECRET: &str = "test-oidc-client-secret-0123456789";
/// `sessions.key_env` of the test gateways (`AUTHGATE_TEST_SESSION_KEY`).
pub const SESSION_KEY: &str = "test-session-key-0123456789abcdefghijklmnopqrstuvwxyz";

fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/idp")
}

/// `npm ci` once per test run when `node_modules` is missing.
fn install_provider() {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut done = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *done || idp_dir().join("node_modules/oidc-provider").exists() {
        *done = true;
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(idp_dir())
        .status()
        .expect("npm is needed for the sign-in tests (Node 20 and npm)");
    assert!(status.success(), "npm ci in tests/idp failed");
    *done = true;
}

/// A test CA and a leaf for `localhost` signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub leaf_chain_pem: String,
    pub leaf_key_pem: String,
    /// base64(SHA-256(SubjectPublicKeyInfo)) of the leaf, for Chromium.
    pub leaf_spki: String,
}

pub fn spki_hash(spki_der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(authgate::secret::sha256(spki_der))
}

impl TestPki {
    pub fn localhost() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PublicKeyData};
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "authgate test IdP CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        let leaf = CertificateParams::new(names)
            .expect("leaf params")
            .signed_by(&leaf_key, &Issuer::from_params(&ca_params, &ca_key))
            .expect("leaf cert");
        TestPki {
            ca_pem: ca_cert.pem(),
            leaf_chain_pem: format!("{}{}", leaf.pem(), ca_cert.pem()),
            leaf_key_pem: leaf_key.serialize_pem(),
            leaf_spki: spki_hash(&leaf_key.subject_public_key_info()),
        }
    }
}

/// How the provider is set up for one test.
#[derive(Clone, Default)]
pub struct ProviderOptions {
    /// ID-token lifetime; default an hour.
    pub id_token_ttl: Option<u64>,
    /// Claims added to every ID token, as a JSON object.
    pub extra_claims: Option<String>,
}

/// Starts the provider and waits for its `listening` line; on failure,
/// why: its exit status and what it printed.
fn launch(command: &mut Command) -> Result<(Child, String), String> {
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run node tests/idp/idp.mjs: {e}"))?;
    let stderr = std::sync::Arc::new(Mutex::new(Vec::new()));
    let sink = stderr.clone();
    let err = child.stderr.take().expect("stderr");
    let stderr_reader = std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push(line);
        }
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => Ok((child, url)),
        Err(e) => {
            let _ = child.kill();
            let status = child.wait();
            let _ = stderr_reader.join();
            Err(format!(
                "{} ({status:?}):\n{}",
                match e {
                    std::sync::mpsc::RecvTimeoutError::Timeout => "no `listening` line in 60 s",
                    std::sync::mpsc::RecvTimeoutError::Disconnected => "it exited before listening",
                },
                stderr.lock().expect("lock").join("\n")
            ))
        }
    }
}

/// A running `oidc-provider`.
pub struct Provider {
    child: Child,
    /// The issuer, `https://localhost:PORT`.
    pub issuer: String,
    /// The CA file the gateway trusts for it (`sessions.ca`).
    pub ca_path: PathBuf,
    pub spki: String,
    client: TestClient,
    _dir: tempfile::TempDir,
}

impl Provider {
    pub fn start(options: ProviderOptions) -> Provider {
        install_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = TestPki::localhost();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write pem");
            path
        };
        let ca_path = write("idp-ca.pem", &pki.ca_pem);
        let cert = write("idp.pem", &pki.leaf_chain_pem);
        let key = write("idp-key.pem", &pki.leaf_key_pem);
        let mut command = Command::new("node");
        command
            .arg(idp_dir().join("idp.mjs"))
            .env("IDP_CERT", &cert)
            .env("IDP_KEY", &key)
            .env("IDP_CLIENT_ID", CLIENT_ID)
            .env("IDP_CLIENT_SECRET", CLIENT_SECRET)
            // The gateway's port is known only later: `register` sets them.
            .env(
                "IDP_REDIRECT_URIS",
                "https://127.0.0.1:1/_authgate/callback",
            )
            .env("IDP_EXIT_ON_STDIN_CLOSE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(ttl) = options.id_token_ttl {
            command.env("IDP_ID_TOKEN_TTL", ttl.to_string());
        }
        if let Some(claims) = &options.extra_claims {
            command.env("IDP_EXTRA_CLAIMS", claims);
        }
        // A start that fails is tried once more (two busy cores and many
        // tests at once can starve a start); a second failure says why.
        let mut failures = Vec::new();
        let (child, issuer) = loop {
            match launch(&mut command) {
                Ok(started) => break started,
                Err(why) if failures.is_empty() => failures.push(why),
                Err(why) => panic!(
                    "the test provider did not start, twice:\n{}\n---\n{why}",
                    failures[0]
                ),
            }
        };
        Provider {
            child,
            issuer,
            client: TestClient::trusting(&ca_path),
            ca_path,
            spki: pki.leaf_spki,
            _dir: dir,
        }
    }

    /// Registers the gateways' callback and post-logout URIs at the provider.
    pub async fn register(&self, gateways: &[&Gateway]) {
        let redirect: Vec<String> = gateways
            .iter()
            .map(|g| g.url("/_authgate/callback"))
            .collect();
        let after_logout: Vec<String> = gateways.iter().map(|g| g.url("/")).collect();
        let body = serde_json::json!({
            "redirect_uris": redirect,
            "post_logout_redirect_uris": after_logout,
        });
        let reply = self.post("/_test/client", &body.to_string()).await;
        assert_eq!(reply.status, 200, "register: {:?}", reply.body);
    }

    pub async fn post(&self, path: &str, body: &str) -> Reply {
        let req = Request::post(format!("{}{path}", self.issuer))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        self.client.send(req).await
    }

    /// The provider's counters (`code_grants`, `refresh_grants`, `refresh_revocations`, ...).
    pub async fn counts(&self) -> serde_json::Value {
        self.client
            .get(&format!("{}/_test/counts", self.issuer), &[])
            .await
            .json()
    }

    pub async fn count(&self, name: &str) -> u64 {
        self.counts().await[name].as_u64().unwrap_or(u64::MAX)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `sessions:` section for a gateway signing in at `provider`.
pub fn sessions_section(provider: &Provider, extra: &str) -> String {
    format!(
        "sessions:\n  provider: {}\n  client_id: {CLIENT_ID}\n  client_secret_env: AUTHGATE_TEST_OIDC_SECRET\n  ca: {}\n  key_env: AUTHGATE_TEST_SESSION_KEY\n{extra}",
        provider.issuer,
        provider.ca_path.display()
    )
}

/// A browser stand-in over plain HTTP: follows redirects by hand, keeps
/// cookies per host (names only, paths ignored: enough for these two
/// servers), and signs in at the provider's own forms.
pub struct SignInDriver {
    /// A client per gateway (each has its own development certificate).
    gateways: Vec<(String, TestClient)>,
    provider: TestClient,
    /// host:port → cookie name → value.
    pub jar: BTreeMap<String, BTreeMap<String, String>>,
}

fn authority_of(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
        .unwrap_or_default()
}

/// Resolves a `Location` against the URL that answered.
pub fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("https://") || location.starts_with("http://") {
        return location.to_string();
    }
    let uri: http::Uri = base.parse().expect("base URL");
    format!(
        "{}://{}{location}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map(|a| a.as_str()).unwrap_or("")
    )
}

impl SignInDriver {
    pub fn new(gateway: &Gateway, provider: &Provider) -> SignInDriver {
        SignInDriver::for_all(&[gateway], provider)
    }

    pub fn for_all(gateways: &[&Gateway], provider: &Provider) -> SignInDriver {
        SignInDriver {
            gateways: gateways
                .iter()
                .map(|g| (g.addr.to_string(), g.client()))
                .collect(),
            provider: TestClient::trusting(&provider.ca_path),
            jar: BTreeMap::new(),
        }
    }

    fn cookie_header(&self, url: &str) -> Option<String> {
        let host = authority_of(url);
        let host = host.split(':').next().unwrap_or_default();
        // Cookies ignore ports: merge every jar entry of the same host.
        let mut all: BTreeMap<&String, &String> = BTreeMap::new();
        for (authority, jar) in &self.jar {
            if authority.split(':').next() == Some(host) {
                all.extend(jar.iter());
            }
        }
        Some(
            all.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .filter(|s| !s.is_empty())
    }

    fn store_cookies(&mut self, url: &str, reply: &Reply) {
        let jar = self.jar.entry(authority_of(url)).or_default();
        for set in reply.headers_all("set-cookie") {
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let expired = set.to_ascii_lowercase().contains("max-age=0");
                if expired || value.is_empty() {
                    jar.remove(name.trim());
                } else {
                    jar.insert(name.trim().to_string(), value.trim().to_string());
                }
            }
        }
    }

    /// One request, cookies in and out, no redirect followed.
    pub async fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(url);
        if let Some(cookies) = self.cookie_header(url) {
            req = req.header("cookie", cookies);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        let authority = authority_of(url);
        let client = self
            .gateways
            .iter()
            .find(|(a, _)| *a == authority)
            .map_or(&self.provider, |(_, c)| c);
        let reply = client.send(req).await;
        self.store_cookies(url, &reply);
        reply
    }

    /// A navigation: follows redirects until a page that is no redirect,
    /// or until `stop(url)` says the next URL is to be kept unvisited.
    /// Returns the last URL and its reply (or the URL not visited).
    pub async fn navigate(
        &mut self,
        url: &str,
        stop: impl Fn(&str) -> bool,
    ) -> (String, Option<Reply>) {
        let mut url = url.to_string();
        for _ in 0..20 {
            if stop(&url) {
                return (url, None);
            }
            let reply = self
                .request("GET", &url, &[("sec-fetch-mode", "navigate")], "")
                .await;
            match reply.header("location") {
                Some(location) if reply.status.is_redirection() => {
                    url = resolve(&url, &location);
                }
                _ => return (url, Some(reply)),
            }
        }
        panic!("too many redirects from {url}");
    }

    /// Signs in as `login` starting from `url` and stops before the
    /// callback: returns the callback URL (with `code` and `state`).
    pub async fn sign_in_until_callback(&mut self, url: &str, login: &str) -> String {
        let is_callback = |u: &str| u.contains("/_authgate/callback");
        let (mut at, mut page) = self.navigate(url, is_callback).await;
        for _ in 0..4 {
            let Some(reply) = page else { return at };
            let text = String::from_utf8_lossy(&reply.body).to_string();
            let action = form_action(&text)
                .unwrap_or_else(|| panic!("no form on the provider's page {at}: {text}"));
            let target = resolve(&at, &action);
            let body = if text.contains("id=\"login\"") {
                format!("login={login}&password=secret")
            } else {
                String::new()
            };
            let posted = self.request("POST", &target, &[], &body).await;
            let next = resolve(
                &target,
                &posted
                    .header("location")
                    .unwrap_or_else(|| panic!("the provider's form did not redirect: {posted:?}")),
            );
            (at, page) = self.navigate(&next, is_callback).await;
        }
        panic!("sign-in did not reach the callback");
    }

    /// The whole sign-in: returns where the gateway sent the browser last.
    pub async fn sign_in(&mut self, url: &str, login: &str) -> (String, Option<Reply>) {
        let callback = self.sign_in_until_callback(url, login).await;
        self.navigate(&callback, |_| false).await
    }

    /// The session cookie's value, if the jar holds one.
    pub fn session_cookie(&self, gateway: &Gateway) -> Option<String> {
        self.jar
            .get(&gateway.addr.to_string())
            .and_then(|j| j.get("__Host-authgate").cloned())
    }
}

/// The `action` of the first form of a page.
fn form_action(html: &str) -> Option<String> {
    let start = html.find("<form")?;
    let tag = &html[start..start + html[start..].find('>')?];
    let at = tag.find("action=\"")? + "action=\"".len();
    let end = tag[at..].find('"')?;
    Some(tag[at..at + end].replace("&amp;", "&"))
}
