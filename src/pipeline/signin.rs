//! The gateway's own sign-in paths (docs/sign-in.md), answered before
//! route matching so that a catch-all route never swallows them: the
//! provider's callback, and logout (`GET` a page, `POST` the act).

use super::headers::requested_host;
use crate::access_log::RequestRecord;
use crate::auth::session::{same_origin, OwnPath, SessionPolicy};
use crate::auth::AuthServices;
use crate::body::Payload;
use crate::error::{GatewayError, Reason};
use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{Method, Response, StatusCode};

/// The logout page: one button that posts the form. No script, no
/// outside resource.
const LOGOUT_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign out</title>
<style>body{font:16px system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;margin:0}
button{font:inherit;padding:.6em 1.4em;border-radius:.4em;border:1px solid #888;background:#f4f4f4;cursor:pointer}</style>
</head><body><form method="post" action="LOGOUT_PATH"><p>Sign out of this site?</p><button type="submit" id="sign-out">Sign out</button></form></body></html>
"#;

fn redirect(status: StatusCode, location: &str) -> Result<Response<()>, GatewayError> {
    let location = HeaderValue::from_str(location).map_err(|_| GatewayError::LoginFailed {
        reason: Reason::StateMismatch,
    })?;
    let mut response = Response::new(());
    *response.status_mut() = status;
    response.headers_mut().insert(LOCATION, location);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Answers `callback_path` or `logout_path`.
pub async fn answer(
    which: OwnPath,
    sessions: &SessionPolicy,
    services: &AuthServices,
    record: &mut RequestRecord,
    parts: &http::request::Parts,
) -> Result<(http::response::Parts, Payload), GatewayError> {
    record.path = parts.uri.path().to_string();
    record.auth_method = Some("session");
    let host = requested_host(parts).ok_or(GatewayError::bad_request(
        Reason::AmbiguousHost,
        "The request names no host.",
    ))?;
    let (response, body) = match (which, &parts.method) {
        (OwnPath::Callback, &Method::GET) => {
            let signed_in = sessions
                .finish_sign_in(
                    parts.uri.query(),
                    &parts.headers,
                    host,
                    services.session_services(),
                )
                .await?;
            record.subject = Some(signed_in.subject.as_str().into());
            let mut response = redirect(StatusCode::SEE_OTHER, &signed_in.location)?;
            for cookie in signed_in.set_cookies {
                response
                    .headers_mut()
                    .append(SET_COOKIE, cookie.expose().clone());
            }
            (response, Bytes::new())
        }
        (OwnPath::Callback, _) => {
            return Err(GatewayError::LoginFailed {
                reason: Reason::StateMismatch,
            })
        }
        (OwnPath::Logout, &Method::POST) => {
            if !same_origin(&parts.headers, host) {
                return Err(GatewayError::CrossSite);
            }
            let out = sessions
                .logout(&parts.headers, host, services.session_services())
                .await?;
            record.subject = out.subject.as_deref().map(Into::into);
            let mut response = redirect(StatusCode::SEE_OTHER, &out.location)?;
            response.headers_mut().append(SET_COOKIE, out.expire_cookie);
            (response, Bytes::new())
        }
        (OwnPath::Logout, _) => {
            let mut response = Response::new(());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response.headers_mut().insert(
                http::header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
            );
            let page = LOGOUT_PAGE.replace("LOGOUT_PATH", &sessions.logout_path);
            (response, Bytes::from(page))
        }
    };
    let (parts, ()) = response.into_parts();
    Ok((parts, Payload::json(body)))
}
