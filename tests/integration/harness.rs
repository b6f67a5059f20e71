//! Real parts for integration tests: the real `authgate` binary on an
//! ephemeral port with real TLS, a recording upstream, and real clients.

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Test keys. Their hashes go into policies; the keys themselves must never
/// show up in anything the gateway prints.
pub const READER_KEY: &str = "agk_test-reader-0123456789abcdefghijklmnopqrstuv";
pub const ADMIN_KEY: &str = "agk_test-admin-0123456789abcdefghijklmnopqrstuvw";
pub const EXPIRED_KEY: &str = "agk_test-expired-0123456789abcdefghijklmnopqrst";
pub const DISABLED_KEY: &str = "agk_test-disabled-0123456789abcdefghijklmnopqrs";
pub const ALL_KEYS: [&str; 4] = [READER_KEY, ADMIN_KEY, EXPIRED_KEY, DISABLED_KEY];

/// A generous bound so a hung gateway fails the test instead of hanging it.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long `Gateway::stderr_when` waits for a line to be captured.
pub const STDERR_WAIT: Duration = Duration::from_secs(10);

pub fn digest(key: &str) -> String {
    authgate::auth::api_key::format_digest(&authgate::secret::sha256(key.as_bytes()))
}

/// The status code of a raw HTTP/1.1 response.
pub fn status_of(raw: &str) -> u16 {
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"))
}

/// The api_keys section the standard test policy uses.
pub fn standard_keys() -> String {
    format!(
        r#"api_keys:
  keys:
    - id: reader
      subject: alice
      sha256: {}
      scopes: [orders:read]
    - id: admin
      sha256: {}
      scopes: [orders:read, orders:write, admin]
    - id: expired
      sha256: {}
      scopes: [orders:read]
      expires: 2020-01-01T00:00:00Z
    - id: disabled
      sha256: {}
      scopes: [orders:read]
      disabled: true
"#,
        digest(READER_KEY),
        digest(ADMIN_KEY),
        digest(EXPIRED_KEY),
        digest(DISABLED_KEY)
    )
}

/// The standard routes: public, scoped read/write, admin.
pub const STANDARD_ROUTES: &str = r#"routes:
  - name: health
    path: /healthz
    auth: none
  - name: orders-read
    path: /orders/**
    methods: [GET, HEAD]
    scopes: [orders:read]
  - name: orders-write
    path: /orders/**
    methods: [POST, PUT, PATCH, DELETE]
    scopes: [orders:write]
  - name: admin
    path: /admin/**
    scopes: [admin]
"#;

/// What the recording upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    pub body_bytes: usize,
    pub body_complete: bool,
}

/// A real HTTP/1.1 server that records every request. `/slow/…` answers after
/// five seconds; everything else at once with `upstream ok`.
pub struct Upstream {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let log = log.clone();
                        async move { Ok::<_, std::convert::Infallible>(record(req, log).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Upstream {
            addr,
            received,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    pub fn last(&self) -> Received {
        self.requests()
            .pop()
            .expect("the upstream received a request")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    mut req: Request<Incoming>,
    log: Arc<Mutex<Vec<Received>>>,
) -> Response<Full<Bytes>> {
    // `/ws…`: accept the upgrade, then echo every byte back.
    let upgrade = req
        .uri()
        .path()
        .starts_with("/ws")
        .then(|| hyper::upgrade::on(&mut req));
    let (parts, mut body) = req.into_parts();
    let mut body_bytes = 0;
    let mut body_complete = true;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => body_bytes += f.data_ref().map_or(0, |d| d.len()),
            Err(_) => {
                body_complete = false;
                break;
            }
        }
    }
    log.lock().expect("lock").push(Received {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers.clone(),
        body_bytes,
        body_complete,
    });
    if parts.uri.path().starts_with("/slow") {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    if let Some(upgrade) = upgrade {
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            .body(Full::new(Bytes::new()))
            .expect("101");
    }
    // `/cors…`: an upstream that answers CORS itself (the gateway replaces it).
    if parts.uri.path().starts_with("/cors") {
        return Response::builder()
            .header("access-control-allow-origin", "*")
            .header("access-control-allow-credentials", "true")
            .header("access-control-expose-headers", "x-upstream-secret")
            .header("vary", "Accept-Encoding")
            .body(Full::new(Bytes::from_static(b"upstream ok")))
            .expect("response");
    }
    if parts.uri.path().starts_with("/huge-header") {
        return Response::builder()
            .header("x-huge", "h".repeat(100 * 1024))
            .body(Full::new(Bytes::from_static(b"never")))
            .expect("response");
    }
    Response::builder()
        .header("x-upstream", "yes")
        .header("connection", "x-upstream-private")
        .header("x-upstream-private", "hop")
        .body(Full::new(Bytes::from_static(b"upstream ok")))
        .expect("response")
}

/// A running gateway: an `authgate run` process with its output captured,
/// or (`in_process`) the library's `serve` on a thread of this test binary.
pub struct Gateway {
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    /// The forward-auth listener, with a `forward_auth` section.
    pub forward_auth: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    running: Running,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

enum Running {
    Binary(Child),
    /// Its access log goes to `access.log` in `dir`; there is no stderr
    /// and no process to signal.
    InProcess {
        control: tokio::sync::mpsc::Sender<authgate::Control>,
        done: std::sync::mpsc::Receiver<()>,
    },
}

/// The admin bearer token every test gateway gets in `AUTHGATE_TEST_ADMIN_TOKEN`.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// An `admin:` section on an ephemeral port.
pub const ADMIN: &str = "admin:\n  listen: 127.0.0.1:0\n  token_env: AUTHGATE_TEST_ADMIN_TOKEN\n";

/// What the gateway announced on stderr: ("main" | "admin", address).
type Announce = std::sync::mpsc::Sender<(&'static str, String)>;

fn capture(
    stream: impl std::io::Read + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
    ready: Option<Announce>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if let Some(tx) = &ready {
                if let Some(addr) = line.split("admin_addr=").nth(1) {
                    let _ = tx.send(("admin", addr.trim().to_string()));
                } else if let Some(addr) = line.split("forward_auth_addr=").nth(1) {
                    let _ = tx.send(("forward_auth", addr.trim().to_string()));
                } else if let Some(addr) = line.split("listening addr=").nth(1) {
                    let _ = tx.send(("main", addr.trim().to_string()));
                }
            }
            sink.lock().expect("lock").push(line);
        }
    });
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_authgate")
}

impl Gateway {
    /// Starts the gateway with `server_extra` (indented `server:` keys) and
    /// the rest of the policy; TLS is a development certificate in a temp dir.
    pub fn start_with(server_extra: &str, rest: &str) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy = format!(
            "server:\n  listen: 127.0.0.1:0\n  tls:\n    cert: gw.pem\n    key: gw-key.pem\n    generate_self_signed: true\n{server_extra}\n{rest}"
        );
        Gateway::start_file(dir, &policy)
    }

    pub fn start(rest: &str) -> Gateway {
        Gateway::start_with("", rest)
    }

    /// Starts the gateway on a policy written into `dir`.
    pub fn start_file(dir: tempfile::TempDir, policy: &str) -> Gateway {
        let errors = crate::schema::schema_errors(policy);
        assert!(
            errors.is_empty(),
            "the policy fails gateway.schema.json: {errors:?}"
        );
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, policy).expect("write policy");
        let mut child = Command::new(binary())
            .args(["run", "-c"])
            .arg(&path)
            .env("RUST_LOG", "debug")
            .env("AUTHGATE_TEST_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("AUTHGATE_TEST_SESSION_KEY", crate::oidc::SESSION_KEY)
            .env("AUTHGATE_TEST_OIDC_SECRET", crate::oidc::CLIENT_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn authgate");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        capture(child.stdout.take().expect("stdout"), stdout.clone(), None);
        capture(
            child.stderr.take().expect("stderr"),
            stderr.clone(),
            Some(tx),
        );
        let mut admin = None;
        let mut forward_auth = None;
        let addr = loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(("admin", a)) => admin = Some(a.parse().expect("admin address")),
                Ok(("forward_auth", a)) => {
                    forward_auth = Some(a.parse().expect("forward-auth address"))
                }
                Ok((_, a)) => break a.parse().expect("listen address"),
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "gateway did not start:\n{}",
                        stderr.lock().expect("lock").join("\n")
                    );
                }
            }
        };
        Gateway {
            addr,
            admin,
            forward_auth,
            dir,
            running: Running::Binary(child),
            stdout,
            stderr,
        }
    }

    /// Like `start`, but the gateway runs in this process (`authgate::serve`
    /// on listeners bound here): for tests that need only its answers and
    /// access log, not its process, signals or stderr.
    pub fn in_process(rest: &str) -> Gateway {
        Gateway::in_process_with("", rest)
    }

    pub fn in_process_with(server_extra: &str, rest: &str) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut policy = format!(
            "server:\n  listen: 127.0.0.1:0\n  tls:\n    cert: gw.pem\n    key: gw-key.pem\n    generate_self_signed: true\n{server_extra}\n{rest}"
        );
        if !policy.contains("\naccess_log:") {
            policy.push_str("\naccess_log:\n  output: access.log\n");
        }
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, &policy).expect("write policy");
        let errors = crate::schema::schema_errors(&policy);
        assert!(
            errors.is_empty(),
            "the policy fails gateway.schema.json: {errors:?}"
        );
        // In this process's environment, so that a reload (which reads the
        // environment, as the binary does) sees the same variables as the start.
        for (name, value) in [
            ("AUTHGATE_TEST_ADMIN_TOKEN", ADMIN_TOKEN),
            ("AUTHGATE_TEST_SESSION_KEY", crate::oidc::SESSION_KEY),
            ("AUTHGATE_TEST_OIDC_SECRET", crate::oidc::CLIENT_SECRET),
        ] {
            std::env::set_var(name, value);
        }
        let env = |name: &str| std::env::var(name).ok();
        let loaded = authgate::config::load_str(&policy, &path, &env).expect("valid policy");
        // Writes the development certificate now, so clients can trust it
        // before the gateway has finished starting.
        authgate::tls::server_config(&loaded.snapshot.server.tls).expect("TLS files");
        let bind = |addr: SocketAddr| {
            let listener = std::net::TcpListener::bind(addr).expect("bind");
            listener.set_nonblocking(true).expect("nonblocking");
            listener
        };
        let main = bind(loaded.snapshot.server.listen);
        let admin_listener = loaded.snapshot.admin.as_ref().map(|a| bind(a.listen));
        let addr = main.local_addr().expect("address");
        let admin = admin_listener
            .as_ref()
            .map(|l| l.local_addr().expect("address"));
        let check_listener = loaded
            .snapshot
            .forward_auth
            .as_ref()
            .map(|f| bind(f.listen));
        let forward_auth = check_listener
            .as_ref()
            .map(|l| l.local_addr().expect("address"));
        let (control, commands) = tokio::sync::mpsc::channel(8);
        let (finished, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let served = runtime.block_on(async move {
                let listeners = authgate::Listeners {
                    main: tokio::net::TcpListener::from_std(main).expect("listener"),
                    admin: admin_listener
                        .map(|l| tokio::net::TcpListener::from_std(l).expect("listener")),
                    forward_auth: check_listener
                        .map(|l| tokio::net::TcpListener::from_std(l).expect("listener")),
                };
                authgate::serve(path, loaded, listeners, commands).await
            });
            if let Err(e) = served {
                eprintln!("in-process gateway failed: {e}");
            }
            let _ = finished.send(());
        });
        Gateway {
            addr,
            admin,
            forward_auth,
            dir,
            running: Running::InProcess { control, done },
            stdout: Arc::new(Mutex::new(Vec::new())),
            stderr: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Access-log lines so far: captured stdout, or the in-process log file.
    fn log_lines(&self) -> Vec<String> {
        match &self.running {
            Running::Binary(_) => self.stdout.lock().expect("lock").clone(),
            Running::InProcess { .. } => {
                std::fs::read_to_string(self.dir.path().join("access.log"))
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect()
            }
        }
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("gw.pem")
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{}", self.addr, path)
    }

    /// Everything the process printed so far, stdout and stderr.
    pub fn output(&self) -> String {
        let mut all = self.log_lines().join("\n");
        all.push('\n');
        all.push_str(&self.stderr.lock().expect("lock").join("\n"));
        all
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().expect("lock").join("\n")
    }

    /// Stderr once it holds every one of `needles`, or as it is after
    /// `STDERR_WAIT`: a reader thread captures each line some time after
    /// the gateway wrote it, so the line of something just observed (a
    /// state change, an exit) may not be there yet. The caller asserts.
    pub async fn stderr_when(&self, needles: &[&str]) -> String {
        let deadline = std::time::Instant::now() + STDERR_WAIT;
        loop {
            let text = self.stderr_text();
            if needles.iter().all(|n| text.contains(n)) || std::time::Instant::now() >= deadline {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The access-log record of a request, waiting briefly since it is written
    /// when the response body is done.
    pub async fn log_for(&self, request_id: &str) -> serde_json::Value {
        for _ in 0..200 {
            let found = self
                .log_lines()
                .iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| v["request_id"] == request_id);
            if let Some(v) = found {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no access-log line for {request_id}:\n{}", self.output());
    }

    /// Sends a signal (`-HUP`, `-TERM`, …) with kill(1), as an operator would.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    fn child(&self) -> &Child {
        match &self.running {
            Running::Binary(child) => child,
            Running::InProcess { .. } => panic!("an in-process gateway has no process of its own"),
        }
    }

    pub fn wait(&mut self) -> Option<std::process::ExitStatus> {
        let Running::Binary(child) = &mut self.running else {
            panic!("an in-process gateway has no process of its own");
        };
        for _ in 0..400 {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        None
    }

    /// Asks the gateway to load its policy file again, as SIGHUP does.
    pub fn reload(&self) {
        match &self.running {
            Running::Binary(_) => self.signal("-HUP"),
            Running::InProcess { control, .. } => control
                .try_send(authgate::Control::Reload)
                .expect("control channel"),
        }
    }

    /// An HTTP/1.1 client presenting a client certificate (PEM chain and key).
    pub fn client_with_cert(&self, cert_pem: &str, key_pem: &str) -> TestClient {
        use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("client chain");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("client key");
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.cert_path()).expect("read cert") {
            roots.add(cert.expect("cert")).expect("add root");
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .expect("client certificate");
        TestClient::from_config(config, false)
    }

    /// One request with this method, path and headers, on a fresh client.
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.client()
            .send(req.body(Full::new(Bytes::new())).expect("request"))
            .await
    }

    /// An HTTP/1.1 client that trusts this gateway's certificate.
    pub fn client(&self) -> TestClient {
        TestClient::new(&self.cert_path(), false)
    }

    /// A client that speaks only HTTP/2 (negotiated through ALPN).
    pub fn client_h2(&self) -> TestClient {
        TestClient::new(&self.cert_path(), true)
    }

    /// Sends raw bytes over a fresh TLS connection and returns everything the
    /// gateway answered before closing (or before the timeout).
    pub async fn raw(&self, request: &[u8]) -> String {
        let mut tls = self.tls_connect().await;
        tls.write_all(request).await.expect("write raw request");
        let mut out = Vec::new();
        let _ = tokio::time::timeout(CLIENT_TIMEOUT, tls.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    pub async fn tls_connect(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let config = tls_client_config(&self.cert_path(), &[b"http/1.1"]);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        connector.connect(name, tcp).await.expect("TLS handshake")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        match &mut self.running {
            Running::Binary(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Running::InProcess { control, done } => {
                // Stopped as SIGTERM would; a drain still waiting on a
                // client the test leaked is left to end with the binary.
                let _ = control.try_send(authgate::Control::Stop);
                let _ = done.recv_timeout(Duration::from_secs(5));
            }
        }
    }
}

pub fn tls_client_config(ca: &Path, alpn: &[&[u8]]) -> rustls::ClientConfig {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read cert") {
        roots.add(cert.expect("cert")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A real HTTP client (hyper over rustls) for the gateway.
pub struct TestClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_string())
    }

    pub fn headers_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("ascii header").to_string())
            .collect()
    }

    pub fn request_id(&self) -> String {
        self.header("x-request-id")
            .expect("x-request-id on every response")
    }
}

impl TestClient {
    /// An HTTP/1.1 client trusting the certificate at `ca`.
    pub fn trusting(ca: &Path) -> TestClient {
        TestClient::new(ca, false)
    }

    fn new(ca: &Path, h2: bool) -> TestClient {
        // hyper-rustls sets ALPN itself from the enabled versions.
        TestClient::from_config(tls_client_config(ca, &[]), h2)
    }

    fn from_config(config: rustls::ClientConfig, h2: bool) -> TestClient {
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only();
        let connector = if h2 {
            builder.enable_http2().build()
        } else {
            builder.enable_http1().build()
        };
        let client = Client::builder(TokioExecutor::new())
            .http2_only(h2)
            .build(connector);
        TestClient { client }
    }

    pub async fn send(&self, req: Request<Full<Bytes>>) -> Reply {
        self.try_send(req).await.expect("request succeeded")
    }

    /// Like `send`, but a failed connection (a refused handshake) is an `Err`.
    pub async fn try_send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<Reply, hyper_util::client::legacy::Error> {
        let response = tokio::time::timeout(CLIENT_TIMEOUT, self.client.request(req))
            .await
            .expect("gateway answered in time")?;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(CLIENT_TIMEOUT, body.collect())
            .await
            .expect("body in time")
            .expect("body")
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
        })
    }

    /// GET with extra headers.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = Request::get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Full::new(Bytes::new())).expect("request"))
            .await
    }
}

/// A GET over plain HTTP/1.1 (forward-auth listener, front proxies).
pub async fn plain_get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = tokio::time::timeout(
        CLIENT_TIMEOUT,
        client.request(req.body(Full::new(Bytes::new())).expect("request")),
    )
    .await
    .expect("answered in time")
    .expect("answered");
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body: body.collect().await.expect("body").to_bytes(),
    }
}

/// A plain-HTTP call to the admin listener.
pub async fn admin_call(
    gw: &Gateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let addr = gw.admin.expect("gateway has an admin listener");
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let response = tokio::time::timeout(CLIENT_TIMEOUT, client.request(req))
        .await
        .expect("admin answered in time")
        .expect("admin request");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// A real `redis-server` on a free port, stopped on drop.
pub struct Redis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Redis {
        let mut dir = tempfile::tempdir().expect("tempdir");
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut redis = Redis {
                port,
                dir,
                child: None,
            };
            if redis.launch() {
                return redis;
            }
            dir = redis.take_dir();
        }
        panic!("could not start redis-server (is it installed? `apt-get install redis-server`)");
    }

    fn take_dir(mut self) -> tempfile::TempDir {
        self.stop();
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
    }

    /// Starts redis-server on `self.port`; false if it did not come up.
    fn launch(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        for _ in 0..200 {
            // The port was free when picked; whoever answers on it now must
            // be this child, not a server another test started meanwhile.
            if self.answering_pid() == self.child.as_ref().map(Child::id) {
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    /// The `process_id` of the Redis answering on `self.port`, if one does.
    fn answering_pid(&self) -> Option<u32> {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"INFO server\r\n").ok()?;
        BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
            .take(100)
            .find_map(|line| line.strip_prefix("process_id:")?.trim().parse().ok())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.launch(),
            "redis-server did not come back on port {}",
            self.port
        );
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The sum of every sample of `metric` in a Prometheus text exposition.
pub fn prometheus_total(text: &str, metric: &str) -> f64 {
    let mut total = 0.0;
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (name_and_labels, value) = line.rsplit_once(' ').expect("`name value` line");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad sample value: {line}"));
        let name = name_and_labels.split('{').next().expect("name");
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name == metric {
            total += value;
        }
    }
    total
}
