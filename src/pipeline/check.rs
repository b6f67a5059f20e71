//! A forward-auth check (docs/forward-auth.md): a front proxy asks whether
//! the request it holds may pass. The original request is rebuilt from the
//! `X-Forwarded-*` (Traefik, Caddy) or `X-Original-*` (nginx) headers and
//! judged by `decide`, the code the main listener runs; the answer is the
//! decision alone, in a form front proxies can relay.

use super::decide::{self, RequestCtx};
use super::headers::{self, X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REQUEST_ID};
use crate::access_log::RequestRecord;
use crate::auth::Identity;
use crate::body::{Payload, ResponseBody};
use crate::error::{GatewayError, Reason};
use crate::state::GatewayState;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, HOST, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use std::net::SocketAddr;
use std::sync::Arc;

const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");

/// Answers one check. Never fails; the access log gets one line.
pub async fn handle_check<B>(
    state: Arc<GatewayState>,
    peer: SocketAddr,
    req: Request<B>,
) -> Response<ResponseBody> {
    let snapshot = state.snapshot.load_full();
    let (mut head, _body) = req.into_parts();
    let request_id = headers::request_id(&head.headers, &state.request_ids);
    let trusted = |ip| {
        snapshot
            .forward_auth
            .as_ref()
            .is_some_and(|f| f.is_trusted(ip))
    };
    let client_ip = headers::client_ip(peer.ip(), &head.headers, trusted);
    let mut record = RequestRecord::start(request_id, client_ip, &head, None, "forward_auth");
    let trace = headers::TraceParent::of(&head.headers);
    record.trace_id = trace.trace_id().to_string();
    let mut ctx = RequestCtx {
        snapshot: &snapshot,
        live: state.live(),
        rate_limit: None,
        trace,
        client_cert: None,
    };
    let result = if !trusted(peer.ip()) {
        Err(GatewayError::UntrustedPeer)
    } else {
        judge(&mut ctx, &mut record, &mut head).await
    };
    let rate_limit = ctx.rate_limit;
    let result = result
        .and_then(|identity| allowed(&snapshot.auth, &state.auth.assertions, identity.as_deref()));
    let mut response = match result {
        Ok(response) => response,
        Err(e) => {
            record.decision = e.decision();
            record.reason = Some(e.reason());
            refused(&e, &record.request_id)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&record.request_id) {
        response.headers_mut().insert(X_REQUEST_ID, v);
    }
    if let Some(outcome) = &rate_limit {
        outcome.headers(response.headers_mut());
    }
    record.status = response.status().as_u16();
    let (parts, payload) = response.into_parts();
    let stats = snapshot.collects_stats().then(|| state.stats.clone());
    let body = ResponseBody::new(payload, record, state.access_log.clone(), stats, None);
    Response::from_parts(parts, body)
}

/// Rebuilds the original request's head and runs steps 1–7 on it.
async fn judge(
    ctx: &mut RequestCtx<'_>,
    record: &mut RequestRecord,
    head: &mut http::request::Parts,
) -> Result<Option<Arc<Identity>>, GatewayError> {
    if headers::header_bytes(&head.headers) > ctx.snapshot.server.max_header_bytes {
        return Err(GatewayError::HeadersTooLarge);
    }
    original_request(head)?;
    record.method = head.method.clone();
    record.path = head.uri.path().to_string();
    let admitted = decide::decide(ctx, record, head).await?;
    Ok(admitted.identity)
}

fn bad(reason: Reason, description: &'static str) -> GatewayError {
    GatewayError::bad_request(reason, description)
}

/// Turns the check request into the original one: its method, target and
/// host from the front proxy's headers, which are then removed. Exactly one
/// convention may name the target: front proxies pass client headers into
/// the check, so a client must never choose which path is judged.
fn original_request(head: &mut http::request::Parts) -> Result<(), GatewayError> {
    let one = |name: &HeaderName| -> Result<Option<HeaderValue>, GatewayError> {
        let mut values = head.headers.get_all(name).iter();
        let first = values.next().cloned();
        if values.next().is_some() {
            return Err(bad(
                Reason::AmbiguousOriginalRequest,
                "The check names the original request more than once.",
            ));
        }
        Ok(first)
    };
    let (target, method) = match (one(&X_FORWARDED_URI)?, one(&X_ORIGINAL_URI)?) {
        (Some(uri), None) => (uri, one(&X_FORWARDED_METHOD)?),
        (None, Some(uri)) => (uri, one(&X_ORIGINAL_METHOD)?),
        (Some(_), Some(_)) => {
            return Err(bad(
                Reason::AmbiguousOriginalRequest,
                "The check carries both X-Forwarded-Uri and X-Original-URI.",
            ))
        }
        (None, None) => {
            return Err(bad(
                Reason::MissingOriginalRequest,
                "The check names no original request (X-Forwarded-Uri or X-Original-URI).",
            ))
        }
    };
    let host = one(&X_FORWARDED_HOST)?;
    let uri: Uri = target
        .to_str()
        .ok()
        .filter(|t| t.starts_with('/'))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad(Reason::MalformedPath, "The request path is malformed."))?;
    if let Some(method) = method {
        head.method = Method::from_bytes(method.as_bytes())
            .map_err(|_| bad(Reason::MalformedPath, "The original method is malformed."))?;
    }
    head.uri = uri;
    for name in [
        X_FORWARDED_METHOD,
        X_FORWARDED_PROTO,
        X_FORWARDED_HOST,
        X_FORWARDED_URI,
        X_ORIGINAL_METHOD,
        X_ORIGINAL_URI,
    ] {
        head.headers.remove(name);
    }
    if let Some(host) = host {
        head.headers.insert(HOST, host);
    }
    Ok(())
}

/// 200 with the identity headers for the front proxy to copy. Every
/// identity header is present, empty when the caller has no such value: a
/// front proxy that copies a header the answer lacks may send its own
/// placeholder text upstream instead (Caddy 2.6).
fn allowed(
    auth: &crate::auth::AuthPolicy,
    assertions: &crate::auth::assertion::AssertionCache,
    identity: Option<&Identity>,
) -> Result<Response<Payload>, GatewayError> {
    let mut response = Response::new(Payload::json(Bytes::new()));
    let headers = response.headers_mut();
    for name in auth.identity.all() {
        headers.insert(name.clone(), HeaderValue::from_static(""));
    }
    if let Some(identity) = identity {
        headers::add_caller(headers, auth, identity, None, assertions)?;
    }
    Ok(response)
}

/// The refusal as the main listener gives it, but relayable: no route is
/// 403 (front proxies turn other codes into their own errors), and every
/// challenge goes in one `WWW-Authenticate` field (nginx copies one).
fn refused(e: &GatewayError, request_id: &str) -> Response<Payload> {
    let mut response = Response::new(Payload::json(e.json_body(request_id)));
    *response.status_mut() = match e {
        GatewayError::NotFound => StatusCode::FORBIDDEN,
        _ => e.status(),
    };
    let (name, value) = GatewayError::content_type();
    response.headers_mut().insert(name, value);
    let mut extra = HeaderMap::new();
    e.extra_headers(&mut extra);
    let challenges: Vec<&str> = extra
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !challenges.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&challenges.join(", ")) {
            extra.insert(WWW_AUTHENTICATE, v);
        }
    }
    response.headers_mut().extend(extra);
    response
}
