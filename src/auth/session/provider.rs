//! The OpenID provider's side of sign-in: its endpoints (from the
//! discovery document the JWKS machinery already keeps fresh), and the
//! three calls the gateway makes to it — the code exchange, the refresh
//! grant (RFC 6749 §6), the revocation of a refresh token (RFC 7009).

use crate::auth::fetch::{self, FetchClient, FetchError};
use crate::secret::Secret;
use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use serde_json::Value;

/// The endpoints of the provider's discovery document that sign-in uses.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorization: String,
    pub token: Uri,
    pub revocation: Option<Uri>,
    pub end_session: Option<String>,
}

impl Endpoints {
    /// Reads them from a discovery document. Over https, every endpoint
    /// must be https too: the code and the client secret travel to them.
    pub fn from_discovery(doc: &Value, https: bool) -> Option<Endpoints> {
        let url = |name: &str| -> Option<String> {
            let text = doc.get(name)?.as_str()?;
            let uri: Uri = text.parse().ok()?;
            let secure = uri.scheme_str() == Some("https");
            (secure || (!https && uri.scheme_str() == Some("http"))).then(|| text.to_string())
        };
        Some(Endpoints {
            authorization: url("authorization_endpoint")?,
            token: url("token_endpoint")?.parse().ok()?,
            revocation: url("revocation_endpoint").and_then(|u| u.parse().ok()),
            end_session: url("end_session_endpoint"),
        })
    }
}

/// The client as the token endpoint knows it.
#[derive(Debug)]
pub struct Client {
    pub id: String,
    /// `None`: a public client, identified by `client_id` in the form.
    pub secret: Option<Secret<String>>,
}

/// What the token endpoint answered; never printed.
pub struct Tokens {
    pub id_token: Secret<String>,
    pub refresh_token: Option<Secret<String>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(***)")
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

/// POSTs a form with client authentication: HTTP Basic with a secret
/// (RFC 6749 §2.3.1: id and secret form-encoded first), else `client_id`.
async fn post_form(
    http: &FetchClient,
    uri: &Uri,
    client: &Client,
    pairs: &[(&str, &str)],
) -> Result<Bytes, FetchError> {
    let mut pairs = pairs.to_vec();
    let mut req = http::Request::post(uri.clone())
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json");
    match &client.secret {
        Some(secret) => {
            let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            let credentials = format!("{}:{}", enc(&client.id), enc(secret.expose()));
            use base64::Engine;
            let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
            req = req.header(http::header::AUTHORIZATION, format!("Basic {basic}"));
        }
        None => pairs.push(("client_id", &client.id)),
    }
    let req = req
        .body(Full::new(Bytes::from(form(&pairs))))
        .map_err(|e| FetchError::Transport(e.to_string()))?;
    fetch::send(http, req).await
}

fn tokens_of(body: &[u8]) -> Result<Tokens, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| "the token endpoint did not answer JSON")?;
    let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    Ok(Tokens {
        id_token: Secret::new(text("id_token").ok_or("the answer has no id_token")?),
        refresh_token: text("refresh_token").map(Secret::new),
    })
}

/// Exchanges an authorization code with its PKCE verifier.
pub async fn exchange_code(
    http: &FetchClient,
    endpoints: &Endpoints,
    client: &Client,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<Tokens, String> {
    let body = post_form(
        http,
        &endpoints.token,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
    .map_err(|e| format!("token endpoint: {e}"))?;
    tokens_of(&body)
}

/// Renews the tokens with a refresh token.
pub async fn refresh(
    http: &FetchClient,
    endpoints: &Endpoints,
    client: &Client,
    refresh_token: &Secret<String>,
) -> Result<Tokens, String> {
    let body = post_form(
        http,
        &endpoints.token,
        client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ],
    )
    .await
    .map_err(|e| format!("token endpoint: {e}"))?;
    tokens_of(&body)
}

/// Revokes a refresh token (RFC 7009), when the provider has the endpoint.
pub async fn revoke(
    http: &FetchClient,
    endpoints: &Endpoints,
    client: &Client,
    refresh_token: &Secret<String>,
) -> Result<(), String> {
    let Some(uri) = &endpoints.revocation else {
        return Ok(());
    };
    post_form(
        http,
        uri,
        client,
        &[
            ("token", refresh_token.expose()),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("revocation endpoint: {e}"))
}
