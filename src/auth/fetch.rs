//! The small HTTP client used to reach an authorization server (JWKS,
//! OIDC discovery, RFC 7662 introspection): bounded in time and size.

use crate::tls::{client_tls_config, CaBundleError};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::hash_map::{Entry, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long one call to an authorization server may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS, discovery or introspection document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

pub type FetchClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client trusting the web PKI plus `ca`.
pub fn client(ca: Option<&Path>) -> Result<FetchClient, CaBundleError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(FETCH_TIMEOUT));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_tls_config(ca)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The fetch clients of the running policy, one per extra CA it names
/// (and one trusting the web PKI alone). Live state: built by `adopt` when
/// a policy is loaded, so compiling a policy builds no client, and a CA
/// file changed on disk applies to the next reload.
#[derive(Default)]
pub struct FetchClients {
    by_ca: ArcSwap<HashMap<Option<PathBuf>, FetchClient>>,
}

impl FetchClients {
    /// Builds the clients for `cas`. On error nothing changes: the running
    /// policy keeps its clients.
    pub fn adopt<'a>(
        &self,
        cas: impl Iterator<Item = Option<&'a Path>>,
    ) -> Result<(), CaBundleError> {
        let mut next = HashMap::new();
        next.insert(None, client(None)?);
        for ca in cas.flatten() {
            if let Entry::Vacant(slot) = next.entry(Some(ca.to_path_buf())) {
                slot.insert(client(Some(ca))?);
            }
        }
        self.by_ca.store(Arc::new(next));
        Ok(())
    }

    /// The client for `ca`; `None` for a CA the last `adopt` was not given.
    pub fn get(&self, ca: Option<&Path>) -> Option<FetchClient> {
        self.by_ca.load().get(&ca.map(Path::to_path_buf)).cloned()
    }
}

/// Why a fetch failed; the text never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {FETCH_TIMEOUT:?}")]
    Timeout,
    #[error("request failed: {0}")]
    Transport(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("document larger than {MAX_DOCUMENT_BYTES} bytes or unreadable")]
    Body,
}

/// Sends a request and reads a 2xx body whole.
pub async fn send(client: &FetchClient, req: Request<Full<Bytes>>) -> Result<Bytes, FetchError> {
    let call = async {
        let response = client
            .request(req)
            .await
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|_| FetchError::Body)
    };
    tokio::time::timeout(FETCH_TIMEOUT, call)
        .await
        .map_err(|_| FetchError::Timeout)?
}

/// GET a JSON document.
pub async fn get(client: &FetchClient, uri: &Uri) -> Result<Bytes, FetchError> {
    let req = Request::get(uri.clone())
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()))
        .map_err(|e| FetchError::Transport(e.to_string()))?;
    send(client, req).await
}
