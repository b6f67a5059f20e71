//! Signing in and out (docs/sign-in.md steps 1, 2 and 5): the redirect to
//! the provider with a sealed login state, the callback that turns a code
//! into a session, and logout. Also the request tests sign-in relies on:
//! what a navigation is, what the gateway's own origin is, what a local
//! path is.

use super::cookies::{self, random_token};
use super::policy::{session_key, Services, SessionPolicy, LOGIN_STATE_LIFETIME};
use super::provider;
use super::store::SessionRecord;
use crate::clock::unix_now;
use crate::error::{GatewayError, Reason};
use crate::secret::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::header::{HeaderValue, ACCEPT};
use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};

/// What the login-state cookie holds, sealed.
#[derive(Serialize, Deserialize)]
struct LoginState {
    state: String,
    verifier: String,
    nonce: String,
    return_to: String,
    created: u64,
}

/// A finished sign-in: the cookies to set and where the browser goes.
#[derive(Debug)]
pub struct SignedIn {
    pub subject: String,
    pub location: String,
    pub set_cookies: Vec<Secret<HeaderValue>>,
}

/// A logout: where the browser goes, the cookie to expire, whether a
/// session ended.
#[derive(Debug)]
pub struct LoggedOut {
    pub location: String,
    pub expire_cookie: HeaderValue,
    pub subject: Option<String>,
}

/// A top-level page load: `GET`/`HEAD` that says it navigates, or wants HTML.
pub fn is_navigation(method: &Method, headers: &HeaderMap) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match header("sec-fetch-mode") {
        Some(mode) => mode.eq_ignore_ascii_case("navigate"),
        None => headers.get_all(ACCEPT).iter().any(|v| {
            v.as_bytes()
                .windows(9)
                .any(|w| w.eq_ignore_ascii_case(b"text/html"))
        }),
    }
}

/// Whether a request comes from the gateway's own origin,
/// `https://<host>`: by `Origin`, else by `Sec-Fetch-Site`; with neither, no.
pub fn same_origin(headers: &HeaderMap, host: &str) -> bool {
    if let Some(origin) = headers.get(http::header::ORIGIN) {
        let own = format!("https://{host}");
        return origin.as_bytes().eq_ignore_ascii_case(own.as_bytes());
    }
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"same-origin"))
}

/// A path on this site: one leading `/`, no `//`, no `\`, no control
/// characters (browsers drop tabs and newlines, which would turn `/\t/x`
/// into `//x`), so a `Location` made of it never leaves the site.
pub fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.bytes().any(|b| b.is_ascii_control() || b == b' ')
}

fn store_unavailable() -> GatewayError {
    GatewayError::Unavailable {
        reason: Reason::SessionStoreUnavailable,
    }
}

fn login_failed(reason: Reason) -> GatewayError {
    crate::metrics::sign_in(reason.as_str());
    GatewayError::LoginFailed { reason }
}

impl SessionPolicy {
    fn login_cookie_name(&self, state: &str) -> String {
        format!("{}-login-{state}", self.cookie)
    }

    fn redirect_uri(&self, host: &str) -> String {
        format!("https://{host}{}", self.callback_path)
    }

    /// Step 1: the 302 to the provider for a navigation without a session.
    /// Each start has a cookie of its own, so several tabs can sign in at once.
    pub fn start(&self, host: &str, return_to: &str) -> GatewayError {
        let Some(endpoints) = self.endpoints() else {
            return GatewayError::Unavailable {
                reason: Reason::ProviderUnavailable,
            };
        };
        let state = random_token(16);
        let nonce = random_token(16);
        let verifier = random_token(32);
        let challenge = URL_SAFE_NO_PAD.encode(crate::secret::sha256(verifier.as_bytes()));
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client.id)
            .append_pair("redirect_uri", &self.redirect_uri(host))
            .append_pair("scope", &self.scopes)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if self.offline {
            // Most providers issue a refresh token only after consent.
            query.append_pair("prompt", "consent");
        }
        let separator = if endpoints.authorization.contains('?') {
            '&'
        } else {
            '?'
        };
        let location = format!("{}{separator}{}", endpoints.authorization, query.finish());
        let login = LoginState {
            state: state.clone(),
            verifier,
            nonce,
            return_to: return_to.to_string(),
            created: unix_now(),
        };
        let name = self.login_cookie_name(&state);
        let sealed = self.seal.seal(
            name.as_bytes(),
            &serde_json::to_vec(&login).unwrap_or_default(),
        );
        match (
            HeaderValue::from_str(&location),
            cookies::set(&name, &sealed, LOGIN_STATE_LIFETIME.as_secs()),
        ) {
            (Ok(location), Some(cookie)) => GatewayError::SignIn {
                location,
                login_cookie: Secret::new(cookie),
            },
            _ => GatewayError::Unavailable {
                reason: Reason::ProviderUnavailable,
            },
        }
    }

    /// The login state the callback's `state` names, opened and checked:
    /// this browser's, at most 10 minutes old.
    fn login_state(&self, headers: &HeaderMap, state: &str) -> Result<LoginState, GatewayError> {
        // A state the gateway made is base64url; anything else names no cookie.
        if state.is_empty()
            || state.len() > 64
            || !state
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(login_failed(Reason::StateMismatch));
        }
        let name = self.login_cookie_name(state);
        let login = cookies::find(headers, &name)
            .and_then(|sealed| self.seal.open(name.as_bytes(), sealed))
            .and_then(|plain| serde_json::from_slice::<LoginState>(&plain).ok())
            .filter(|login| login.state == state)
            .ok_or_else(|| login_failed(Reason::StateMismatch))?;
        if unix_now().saturating_sub(login.created) > LOGIN_STATE_LIFETIME.as_secs() {
            return Err(login_failed(Reason::StateExpired));
        }
        Ok(login)
    }

    /// The callback's `state`, checked and used up: the login state it
    /// names, and the `code`.
    async fn consume_state(
        &self,
        query: Option<&str>,
        headers: &HeaderMap,
        services: Services<'_>,
    ) -> Result<(String, LoginState, String), GatewayError> {
        let mut code = None;
        let mut state = None;
        let mut provider_error = false;
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*k {
                "code" => code = Some(v.into_owned()),
                "state" => state = Some(v.into_owned()),
                "error" => provider_error = true,
                _ => {}
            }
        }
        if provider_error {
            return Err(login_failed(Reason::ProviderError));
        }
        let state = state.ok_or_else(|| login_failed(Reason::StateMismatch))?;
        let login = self.login_state(headers, &state)?;
        let first_use = services
            .sessions
            .store
            .first_use_of_state(
                &self.store,
                &crate::secret::sha256(state.as_bytes()),
                LOGIN_STATE_LIFETIME,
                unix_now(),
            )
            .await
            .map_err(|_| store_unavailable())?;
        if !first_use {
            return Err(login_failed(Reason::StateMismatch));
        }
        let code = code.ok_or_else(|| login_failed(Reason::CodeExchangeFailed))?;
        Ok((state, login, code))
    }

    /// The code exchanged at the token endpoint, and the ID token checked,
    /// its `nonce` this sign-in's.
    async fn redeem(
        &self,
        code: &str,
        login: &LoginState,
        host: &str,
        services: Services<'_>,
    ) -> Result<(provider::Tokens, crate::auth::jwt::Verified), GatewayError> {
        let (endpoints, http) = match (self.endpoints(), services.clients.get(self.ca.as_deref())) {
            (Some(e), Some(h)) => (e, h),
            _ => {
                return Err(GatewayError::Unavailable {
                    reason: Reason::ProviderUnavailable,
                })
            }
        };
        let tokens = provider::exchange_code(
            &http,
            &endpoints,
            &self.client,
            code,
            &self.redirect_uri(host),
            &login.verifier,
        )
        .await
        .map_err(|error| {
            tracing::warn!(provider = %self.provider, error, "sign-in: the code exchange failed");
            login_failed(Reason::CodeExchangeFailed)
        })?;
        let verified = self
            .id_tokens
            .verify_own(tokens.id_token.expose())
            .await
            .map_err(|e| {
                tracing::warn!(provider = %self.provider, reason = %e.reason(), "sign-in: the ID token is invalid");
                login_failed(Reason::IdTokenInvalid)
            })?;
        if verified.claims.get("nonce").and_then(|v| v.as_str()) != Some(login.nonce.as_str()) {
            tracing::warn!(provider = %self.provider, "sign-in: the ID token's nonce is not this sign-in's");
            return Err(login_failed(Reason::IdTokenInvalid));
        }
        Ok((tokens, verified))
    }

    /// Step 2: `GET <callback_path>?code&state`.
    pub async fn finish_sign_in(
        &self,
        query: Option<&str>,
        headers: &HeaderMap,
        host: &str,
        services: Services<'_>,
    ) -> Result<SignedIn, GatewayError> {
        let (state, login, code) = self.consume_state(query, headers, services).await?;
        let (tokens, verified) = self.redeem(&code, &login, host, services).await?;
        let subject = verified
            .claims
            .get("sub")
            .and_then(|v| v.as_str())
            .ok_or_else(|| login_failed(Reason::IdTokenInvalid))?
            .to_string();
        // The cookie carries 256 random bits and nothing else.
        let id = random_token(32);
        let now = unix_now();
        let record = SessionRecord {
            subject: subject.clone(),
            expires_at: verified.exp.unwrap_or(now),
            claims: verified.claims,
            id_token: tokens.id_token.expose().clone(),
            refresh_token: tokens.refresh_token.map(|t| t.expose().clone()),
            created: now,
        };
        let key = session_key(&Secret::new(&id));
        services
            .sessions
            .store
            .create(&self.store, &self.seal, &key, record, now)
            .await
            .map_err(|_| store_unavailable())?;
        crate::metrics::sign_in("ok");
        let session_cookie = cookies::set(&self.cookie, &id, self.store.max_lifetime.as_secs())
            .ok_or_else(|| login_failed(Reason::IdTokenInvalid))?;
        let location = if is_local_path(&login.return_to) {
            login.return_to
        } else {
            "/".to_string()
        };
        Ok(SignedIn {
            subject,
            location,
            set_cookies: vec![
                Secret::new(session_cookie),
                Secret::new(cookies::expire(&self.login_cookie_name(&state))),
            ],
        })
    }

    /// Step 5: ends the session everywhere, revokes its refresh token at
    /// the provider, and names the provider's logout page (or the local one).
    pub async fn logout(
        &self,
        headers: &HeaderMap,
        host: &str,
        services: Services<'_>,
    ) -> Result<LoggedOut, GatewayError> {
        let store = &services.sessions.store;
        let back = format!("https://{host}{}", self.post_logout_redirect);
        let mut out = LoggedOut {
            location: self.post_logout_redirect.clone(),
            expire_cookie: cookies::expire(&self.cookie),
            subject: None,
        };
        let Some(value) = cookies::find(headers, &self.cookie) else {
            crate::metrics::logout("no_session");
            return Ok(out);
        };
        let key = session_key(&Secret::new(value));
        let lookup = store
            .load(&self.store, &self.seal, &key, unix_now())
            .await
            .map_err(|_| store_unavailable())?;
        let super::store::Lookup::Found(session) = lookup else {
            crate::metrics::logout("no_session");
            return Ok(out);
        };
        store
            .delete(&self.store, &key)
            .await
            .map_err(|_| store_unavailable())?;
        crate::metrics::logout("ok");
        let record = session.record();
        out.subject = Some(record.subject.clone());
        let endpoints = self.endpoints();
        if let (Some(endpoints), Some(token), Some(http)) = (
            &endpoints,
            &record.refresh_token,
            services.clients.get(self.ca.as_deref()),
        ) {
            let token = Secret::new(token.clone());
            if let Err(error) = provider::revoke(&http, endpoints, &self.client, &token).await {
                tracing::warn!(provider = %self.provider, error, "logout: the refresh token could not be revoked");
            }
        }
        if let Some(end_session) = endpoints.and_then(|e| e.end_session) {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query
                .append_pair("id_token_hint", &record.id_token)
                .append_pair("post_logout_redirect_uri", &back)
                .append_pair("client_id", &self.client.id);
            let separator = if end_session.contains('?') { '&' } else { '?' };
            out.location = format!("{end_session}{separator}{}", query.finish());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_return_paths() {
        for good in ["/", "/orders/7?x=1", "/a//b"] {
            assert!(is_local_path(good), "{good}");
        }
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "/\t/evil.example",
            "evil",
            "",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn navigations_and_origins() {
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-mode", HeaderValue::from_static("cors"));
        h.insert(ACCEPT, HeaderValue::from_static("text/html"));
        assert!(
            !is_navigation(&Method::GET, &h),
            "fetch() that accepts html"
        );
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_static("text/html,*/*"));
        assert!(is_navigation(&Method::GET, &h));
        assert!(!is_navigation(&Method::POST, &h));
        let mut h = HeaderMap::new();
        h.insert(
            "origin",
            HeaderValue::from_static("https://gw.example:8443"),
        );
        assert!(same_origin(&h, "gw.example:8443"));
        assert!(!same_origin(&h, "gw.example"));
        h.insert("origin", HeaderValue::from_static("https://evil.example"));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(
            !same_origin(&h, "gw.example:8443"),
            "Origin decides when present"
        );
        let mut h = HeaderMap::new();
        assert!(!same_origin(&h, "gw.example"));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&h, "gw.example"));
    }
}
