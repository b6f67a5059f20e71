//! The admin listener (docs/operations.md): plain HTTP on `admin.listen`, meant for
//! loopback. Health and metrics are open; the revocation API needs the
//! bearer token from `admin.token_env`, compared in constant time.

use crate::pipeline::GatewayState;
use crate::revocation::Revocation;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 64 * 1024;

type AdminResponse = Response<Full<Bytes>>;

fn json_response(status: StatusCode, body: serde_json::Value) -> AdminResponse {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, code: &str, description: &str) -> AdminResponse {
    json_response(
        status,
        json!({"error": code, "error_description": description}),
    )
}

/// Serves the admin API until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    state: Arc<GatewayState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (tcp, _) = tokio::select! {
            accepted = crate::server::accept(&listener) => accepted,
            _ = shutdown.changed() => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(route(req, &state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn route(req: Request<Incoming>, state: &GatewayState) -> AdminResponse {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => json_response(StatusCode::OK, json!({"status": "ok"})),
        (&Method::GET, "/readyz") => readiness(state),
        (&Method::GET, "/" | "/stats") if !state.snapshot.load().collects_stats() => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "The dashboard is off (admin.dashboard: false).",
        ),
        (&Method::GET, "/") => dashboard_page(),
        (&Method::GET, "/stats") => json_response(StatusCode::OK, stats(state)),
        (&Method::GET, "/.well-known/jwks.json") => assertion_keys(state),
        (&Method::GET, "/metrics") => {
            let mut r = Response::new(Full::new(Bytes::from(crate::metrics::render())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        (method, "/revocations") => {
            if !authorized(&req, state) {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "The admin API needs the admin bearer token.",
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer realm=\"authgate-admin\""),
                );
                return r;
            }
            match *method {
                Method::GET => {
                    let list = state.revocations.list(crate::clock::unix_now());
                    json_response(
                        StatusCode::OK,
                        serde_json::to_value(list).unwrap_or_default(),
                    )
                }
                Method::POST => post_revocation(req, state).await,
                _ => error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "Use GET or POST.",
                ),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "No such admin endpoint.",
        ),
    }
}

/// The public keys of the identity assertion (docs/policy.md
/// `identity.assertion`), for upstreams to verify it.
fn assertion_keys(state: &GatewayState) -> AdminResponse {
    let snapshot = state.snapshot.load();
    let Some(signer) = &snapshot.auth.assertion else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "No identity assertion is configured (identity.assertion).",
        );
    };
    let mut r = Response::new(Full::new(signer.jwks.clone()));
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    // Short, so a key added for a rotation is seen within a minute.
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("max-age=60"),
    );
    r
}

/// The dashboard page, allowed by its CSP nothing but its own script and `/stats`.
fn dashboard_page() -> AdminResponse {
    let mut r = Response::new(Full::new(Bytes::from_static(
        crate::dashboard::PAGE.as_bytes(),
    )));
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = header::HeaderValue::from_str(&crate::dashboard::CSP) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// The dashboard's JSON: the window of statistics and the state of what
/// the gateway depends on. Names only: no key, token or secret.
fn stats(state: &GatewayState) -> serde_json::Value {
    let mut body = state.stats.to_json(crate::clock::unix_now(), 5);
    let mut dependencies: Vec<serde_json::Value> = state
        .auth
        .jwks
        .states()
        .into_iter()
        .map(|(issuer, has_keys)| {
            json!({"name": format!("JWKS {issuer}"), "ok": has_keys,
                "state": if has_keys { "keys loaded" } else { "no keys" }})
        })
        .collect();
    if let Some(sessions) = &state.snapshot.load().auth.sessions {
        let ok = sessions.endpoints().is_some();
        dependencies.push(
            json!({"name": format!("OpenID provider {}", sessions.provider),
            "ok": ok, "state": if ok { "discovered" } else { "unreachable" }}),
        );
    }
    if let Some(redis) = &state.redis {
        let ok = !redis.is_degraded();
        dependencies.push(json!({"name": "Redis", "ok": ok,
            "state": if ok { "reachable" } else { "unreachable" }}));
    }
    body["dependencies"] = serde_json::Value::Array(dependencies);
    body
}

fn readiness(state: &GatewayState) -> AdminResponse {
    let mut failing: Vec<String> = state
        .auth
        .jwks
        .without_keys()
        .into_iter()
        .map(|issuer| format!("jwks:{issuer}"))
        .collect();
    if let Some(sessions) = &state.snapshot.load().auth.sessions {
        if sessions.endpoints().is_none() {
            failing.push(format!("oidc:{}", sessions.provider));
        }
    }
    if !failing.is_empty() {
        failing.sort();
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "failing": failing}),
        );
    }
    if state.limits.redis_degraded() {
        return json_response(
            StatusCode::OK,
            json!({"status": "degraded", "failing": ["redis"]}),
        );
    }
    json_response(StatusCode::OK, json!({"status": "ready"}))
}

fn authorized(req: &Request<Incoming>, state: &GatewayState) -> bool {
    let snapshot = state.snapshot.load();
    let Some(expected) = snapshot.admin.as_ref().and_then(|a| a.token.as_ref()) else {
        return false;
    };
    let Some(presented) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    aws_lc_rs::constant_time::verify_slices_are_equal(
        presented.trim().as_bytes(),
        expected.expose().as_bytes(),
    )
    .is_ok()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevocationBody {
    jti: Option<String>,
    exp: Option<u64>,
    sub: Option<String>,
    iss: Option<String>,
    before: Option<u64>,
}

/// Parses a revocation; anything but exactly one of the two shapes is refused whole.
fn parse_revocation(bytes: &[u8]) -> Result<Revocation, &'static str> {
    let body: RevocationBody = serde_json::from_slice(bytes).map_err(|_| {
        "The body must be JSON: {\"jti\", \"exp\"} (optionally \"iss\") or {\"sub\", \"iss\", \"before\"}."
    })?;
    match body {
        RevocationBody {
            jti: Some(jti),
            exp: Some(exp),
            sub: None,
            iss,
            before: None,
        } if !jti.is_empty() && iss.as_ref().is_none_or(|i| !i.is_empty()) => {
            Ok(Revocation::Jti { jti, exp, iss })
        }
        RevocationBody {
            jti: None,
            exp: None,
            sub: Some(sub),
            iss: Some(iss),
            before: Some(before),
        } if !sub.is_empty() && !iss.is_empty() => Ok(Revocation::Subject { sub, iss, before }),
        _ => Err("Send either {\"jti\", \"exp\"} (optionally \"iss\") or {\"sub\", \"iss\", \"before\"}, with non-empty strings and unix times."),
    }
}

async fn post_revocation(req: Request<Incoming>, state: &GatewayState) -> AdminResponse {
    let bytes = match Limited::new(req.into_body(), MAX_ADMIN_BODY)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The body could not be read or is too large.",
            )
        }
    };
    match parse_revocation(&bytes) {
        Ok(entry) => match state.revoke(&entry).await {
            Ok(()) => json_response(
                StatusCode::CREATED,
                serde_json::to_value(&entry).unwrap_or_default(),
            ),
            Err(full) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "revocation_list_full",
                &format!(
                    "The list holds {} live entries, the bound set by revocation.max_entries; nothing was stored. Entries leave as the tokens they cover expire; a subject entry revokes many tokens at once.",
                    full.max_entries
                ),
            ),
        },
        Err(description) => error(StatusCode::BAD_REQUEST, "invalid_request", description),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_bodies_take_one_shape_exactly() {
        assert_eq!(
            parse_revocation(br#"{"jti":"a","exp":5}"#),
            Ok(Revocation::Jti {
                jti: "a".into(),
                exp: 5,
                iss: None,
            })
        );
        assert_eq!(
            parse_revocation(br#"{"jti":"a","exp":5,"iss":"https://idp/"}"#),
            Ok(Revocation::Jti {
                jti: "a".into(),
                exp: 5,
                iss: Some("https://idp/".into()),
            })
        );
        assert!(parse_revocation(br#"{"sub":"s","iss":"i","before":9}"#).is_ok());
        for bad in [
            &br#"{"jti":"a"}"#[..],
            br#"{"jti":"a","exp":5,"sub":"s"}"#,
            br#"{"jti":"","exp":5}"#,
            br#"{"jti":"a","exp":5,"iss":""}"#,
            br#"{"jti":"a","exp":"soon"}"#,
            br#"{"sub":"s","iss":"i"}"#,
            br#"{"jti":"a","exp":5,"extra":1}"#,
            br#"not json"#,
        ] {
            assert!(
                parse_revocation(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
