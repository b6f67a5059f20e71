//! A real headless Chromium (Debian's `chromium` + `chromium-driver`)
//! driven over WebDriver with fantoccini. It trusts exactly the test
//! servers' keys (`--ignore-certificate-errors-spki-list`) and can reach
//! nothing but loopback.

use fantoccini::{Client, ClientBuilder, Locator};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The SPKI hash of the gateway's development certificate, for `trusting`.
pub fn gateway_spki(gateway: &crate::harness::Gateway) -> String {
    let pem = std::fs::read_to_string(gateway.dir.path().join("gw-key.pem")).expect("gw key");
    let key = rcgen::KeyPair::from_pem(&pem).expect("gw key parses");
    use rcgen::PublicKeyData;
    crate::oidc::spki_hash(&key.subject_public_key_info())
}

impl Browser {
    /// A fresh browser (new profile) trusting the servers whose leaf keys are `spki`.
    pub async fn start(spki: &[String]) -> Browser {
        let port = free_port();
        let profile = tempfile::tempdir().expect("profile dir");
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) must be installed");
        let binary = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("/usr/bin/chromium");
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--no-proxy-server".into(),
            "--disable-features=NetworkTimeServiceQuerying,AutofillServerCommunication,PasswordLeakDetection,OptimizationHints,MediaRouter,Translate".into(),
            // Nothing but loopback resolves: the test must not reach out.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1".into(),
            format!("--ignore-certificate-errors-spki-list={}", spki.join(",")),
            format!("--user-data-dir={}", profile.path().display()),
            "--window-size=1200,900".into(),
        ];
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "acceptInsecureCerts": false,
            "goog:chromeOptions": {
                "binary": binary,
                "args": args,
                "prefs": {
                    "credentials_enable_service": false,
                    "profile": {"password_manager_enabled": false, "password_manager_leak_detection": false}
                }
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal")
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Browser {
                        client,
                        driver,
                        profile,
                    }
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = driver.kill();
        let _ = driver.wait();
        panic!("chromedriver did not start a browser: {last_error}");
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.expect("current url")
    }

    /// Waits for an element (pages arrive through redirects).
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// The page's text.
    pub async fn text(&self) -> String {
        self.find("body").await.text().await.expect("page text")
    }

    /// Signs in at the test provider's forms as `login`: the login form
    /// (skipped when the provider remembers the person) and the consent form.
    pub async fn sign_in_at_provider(&self, login: &str) {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if self.has("#login").await {
                self.find("#login")
                    .await
                    .send_keys(login)
                    .await
                    .expect("type login");
                self.find("#password")
                    .await
                    .send_keys("secret")
                    .await
                    .expect("type password");
                self.find("#login-submit")
                    .await
                    .click()
                    .await
                    .expect("submit login");
            } else if self.has("#consent-submit").await {
                self.find("#consent-submit")
                    .await
                    .click()
                    .await
                    .expect("consent");
            } else if self.url().await.host_str() == Some("127.0.0.1") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("sign-in at the provider did not finish");
    }

    /// Waits until the page is served by `host` (after redirects).
    pub async fn wait_for_host(&self, host: &str) -> url::Url {
        let start = std::time::Instant::now();
        loop {
            let url = self.url().await;
            if url.host_str() == Some(host) || start.elapsed() > Duration::from_secs(15) {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // A Chromium whose driver died goes with its profile directory.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self.profile.path())
            .status();
    }
}
