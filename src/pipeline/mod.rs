//! `handle()`: the stages of docs/requests.md, in order, as plain async functions.
//! Only `handle` turns an error into a response, and the access log is
//! written exactly once, by the response body, whatever happened.

pub mod check;
pub mod cors;
pub mod decide;
pub mod headers;
pub mod normalize;
pub mod route;
pub mod signin;

pub use crate::state::GatewayState;

use crate::access_log::RequestRecord;
use crate::auth::Identity;
use crate::body::{LimitedBody, Payload, ResponseBody};
use crate::error::{GatewayError, Reason};
use crate::forward::{self, UpstreamTarget};
use crate::snapshot::Snapshot;
use crate::upstream_pool::PooledBody;
use decide::RequestCtx;
use headers::X_REQUEST_ID;
use http::header::{HeaderValue, CONTENT_LENGTH, HOST};
use http::{Request, Response, Version};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// What the connection knows about itself.
#[derive(Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls_version: &'static str,
    /// The verified client certificate, when the client presented one.
    pub client_cert: Option<crate::auth::mtls::ClientCert>,
    /// Keeps the connection counted (open connections, `max_connections`)
    /// while anything that outlives its HTTP exchange, a WebSocket tunnel,
    /// holds a clone.
    pub hold: ConnHold,
}

/// What keeps a connection counted; the accept loop decides what is inside.
#[derive(Clone)]
pub struct ConnHold(pub Arc<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for ConnHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnHold")
    }
}

/// Serves one request: never fails, never panics on caller input.
pub async fn handle(
    state: Arc<GatewayState>,
    conn: Arc<ConnInfo>,
    in_flight: Option<crate::activity::InFlight>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let snapshot = state.snapshot.load_full();
    let (head, body) = req.into_parts();
    let request_id = headers::request_id(&head.headers, &state.request_ids);
    let client_ip = headers::client_ip(conn.peer.ip(), &head.headers, |ip| {
        snapshot.server.is_trusted_proxy(ip)
    });
    let mut record =
        RequestRecord::start(request_id, client_ip, &head, Some(conn.tls_version), "main");
    let trace = headers::TraceParent::of(&head.headers);
    // Kept for the CORS headers of the answer, whatever it will be (a
    // preflight's answer is made whole by `cors::preflight`).
    let origin = (!snapshot.cors.is_empty() && !cors::is_preflight(&head))
        .then(|| head.headers.get(http::header::ORIGIN).cloned())
        .flatten();
    record.trace_id = trace.trace_id().to_string();
    let req = Request::from_parts(head, body);
    let mut ctx = RequestCtx {
        snapshot: &snapshot,
        live: state.live(),
        rate_limit: None,
        trace,
        client_cert: conn.client_cert.as_ref(),
    };
    let result = run(&mut ctx, &state, &conn, &mut record, req).await;
    let rate_limit = ctx.rate_limit;
    let (mut response, payload) = match result {
        Ok((parts, payload)) => (Response::from_parts(parts, ()), payload),
        Err(e) => {
            record.decision = e.decision();
            record.reason = Some(e.reason());
            let mut response = Response::new(());
            *response.status_mut() = e.status();
            let (name, value) = GatewayError::content_type();
            response.headers_mut().insert(name, value);
            e.extra_headers(response.headers_mut());
            (response, Payload::json(e.json_body(&record.request_id)))
        }
    };
    if let Ok(mut v) = HeaderValue::from_str(&record.request_id) {
        // New on every response: HTTP/2 would add each one to the
        // connection's HPACK table, evicting entries that do repeat.
        v.set_sensitive(true);
        response.headers_mut().insert(X_REQUEST_ID, v);
    }
    if let Some(outcome) = &rate_limit {
        outcome.headers(response.headers_mut());
    }
    if let Some(origin) = &origin {
        if record.reason != Some(Reason::CorsOriginNotAllowed) {
            let route = record.route.as_deref();
            snapshot
                .cors
                .decorate(origin, route, response.headers_mut());
        }
    }
    record.status = response.status().as_u16();
    let stats = snapshot.collects_stats().then(|| state.stats.clone());
    let body = ResponseBody::new(payload, record, state.access_log.clone(), stats, in_flight);
    response.map(|()| body)
}

async fn run(
    ctx: &mut RequestCtx<'_>,
    state: &GatewayState,
    conn: &ConnInfo,
    record: &mut RequestRecord,
    req: Request<Incoming>,
) -> Result<(http::response::Parts, Payload), GatewayError> {
    let snapshot = ctx.snapshot;
    // hyper enforces the limit on HTTP/1 buffers in coarse steps; this is the exact check.
    if headers::header_bytes(req.headers()) > snapshot.server.max_header_bytes {
        return Err(GatewayError::HeadersTooLarge);
    }
    let (mut parts, body) = req.into_parts();
    // Answered before route matching: CORS preflights, the sign-in paths.
    if !snapshot.cors.is_empty() && cors::is_preflight(&parts) {
        decide::limit_anonymous(ctx, record.client_ip).await?;
        return answer_preflight(snapshot, record, &parts);
    }
    if let Some(sessions) = &snapshot.auth.sessions {
        if let Some(which) = sessions.own_path(parts.uri.path()) {
            decide::refuse_hostile_targets(&parts)?;
            // Boxed, as are the other rare paths that wait on the network:
            // the request future is as large as its largest branch, and
            // every request would carry their size.
            return Box::pin(signin::answer(which, sessions, &state.auth, record, &parts)).await;
        }
    }
    // 1–7. The decision.
    let admitted = decide::decide(ctx, record, &mut parts).await?;
    let mut req = Request::from_parts(parts, body);
    // 8. Forward.
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > snapshot.server.max_body_bytes) {
        return Err(GatewayError::PayloadTooLarge);
    }
    // Only a route that opts in may open a tunnel; elsewhere `Upgrade` goes
    // with the other hop-by-hop headers and the request is a plain one.
    let websocket = admitted
        .route
        .websocket
        .then(|| crate::upgrade::expected_accept(&req))
        .flatten()
        .map(|accept| (accept, hyper::upgrade::on(&mut req)));
    let caller = Upstreamed {
        identity: admitted.identity.as_deref(),
        peer: conn.peer.ip(),
        client_cert: conn.client_cert.as_ref(),
        request_id: &record.request_id,
        trace: &ctx.trace,
        assertions: &state.auth.assertions,
    };
    let mut req = prepare_upstream_request(snapshot, req, &admitted.path, &caller)?;
    if websocket.is_some() {
        crate::upgrade::restore_headers(req.headers_mut());
    }
    forward(snapshot, state, record, req, websocket, conn).await
}

/// A CORS preflight, answered here and never forwarded.
fn answer_preflight(
    snapshot: &Snapshot,
    record: &mut RequestRecord,
    parts: &http::request::Parts,
) -> Result<(http::response::Parts, Payload), GatewayError> {
    decide::refuse_hostile_targets(parts)?;
    let mut response = Response::new(());
    let (status, route) =
        snapshot
            .cors
            .preflight(&snapshot.routes, parts, response.headers_mut())?;
    *response.status_mut() = status;
    record.route = route;
    let (parts, ()) = response.into_parts();
    Ok((parts, Payload::json(bytes::Bytes::new())))
}

/// An upstream's 101: a tunnel only for the WebSocket the caller asked for
/// on a route that allows one; any other 101 is a broken upstream (502).
fn switch_protocols(
    mut response: Response<Incoming>,
    websocket: Option<(String, hyper::upgrade::OnUpgrade)>,
    idle: std::time::Duration,
    conn: &ConnInfo,
    grace_over: tokio::sync::watch::Receiver<bool>,
) -> Result<(http::response::Parts, Payload), GatewayError> {
    let Some((expected, client)) = websocket else {
        return Err(GatewayError::BadGateway {
            reason: Reason::UnexpectedUpgrade,
        });
    };
    if !crate::upgrade::accepted(response.headers(), &expected) {
        return Err(GatewayError::BadGateway {
            reason: Reason::WebsocketNotAccepted,
        });
    }
    let upstream = hyper::upgrade::on(&mut response);
    let (mut parts, body) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers);
    crate::upgrade::restore_headers(&mut parts.headers);
    tokio::spawn(crate::upgrade::tunnel(
        client,
        upstream,
        idle,
        conn.hold.clone(),
        grace_over,
    ));
    // The connection is the tunnel's now: it never goes back to the pool.
    Ok((parts, Payload::Upstream(PooledBody::new(body, None))))
}

/// What the upstream request says beside the caller's own request.
pub struct Upstreamed<'a> {
    pub identity: Option<&'a Identity>,
    pub peer: std::net::IpAddr,
    pub client_cert: Option<&'a crate::auth::mtls::ClientCert>,
    pub request_id: &'a str,
    pub trace: &'a headers::TraceParent,
    pub assertions: &'a crate::auth::assertion::AssertionCache,
}

/// Rewrites the caller's request into the one the upstream receives (docs/requests.md step 8).
pub fn prepare_upstream_request<B>(
    snapshot: &Snapshot,
    req: Request<B>,
    path: &str,
    caller: &Upstreamed<'_>,
) -> Result<Request<B>, GatewayError> {
    let (mut parts, body) = req.into_parts();
    // HTTP/2 carries the host in :authority, HTTP/1.1 in Host (RFC 9110 §7.2).
    let requested_host = parts
        .uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        .or_else(|| parts.headers.get(HOST).cloned());
    let headers = &mut parts.headers;
    headers::remove_hop_by_hop(headers);
    if !snapshot.upstream.pass_credentials {
        headers::strip_credentials(headers, &snapshot.auth.api_keys.header);
    }
    // The session cookie is a credential the upstream never sees, on any route.
    if let Some(sessions) = &snapshot.auth.sessions {
        crate::auth::session::cookies::strip(headers, |name| sessions.is_own_cookie(name));
    }
    // The upstream sees its own authority as Host; the caller's is in X-Forwarded-Host.
    headers.remove(HOST);
    headers::add_forwarded(headers, caller.peer, requested_host, &snapshot.server);
    if let Some(identity) = caller.identity {
        headers::add_caller(
            headers,
            &snapshot.auth,
            identity,
            caller.client_cert,
            caller.assertions,
        )?;
    }
    // Added after hop-by-hop removal, so `Connection: X-Request-Id` cannot
    // take it away; the caller's id goes upstream once, as kept or generated.
    if let Ok(v) = HeaderValue::from_str(caller.request_id) {
        headers.insert(X_REQUEST_ID, v);
    }
    headers.insert(headers::TRACEPARENT, caller.trace.header.clone());
    parts.uri = forward::upstream_uri(&snapshot.upstream.target, path, parts.uri.query())?;
    parts.version = Version::HTTP_11;
    Ok(Request::from_parts(parts, body))
}

async fn forward(
    snapshot: &Snapshot,
    state: &GatewayState,
    record: &mut RequestRecord,
    req: Request<Incoming>,
    websocket: Option<(String, hyper::upgrade::OnUpgrade)>,
    conn: &ConnInfo,
) -> Result<(http::response::Parts, Payload), GatewayError> {
    let (parts, body) = req.into_parts();
    let (body, exceeded) = LimitedBody::new(
        body,
        snapshot.server.max_body_bytes,
        snapshot.server.body_timeout,
    );
    let req = Request::from_parts(parts, body);
    let started = Instant::now();
    let result = match snapshot.upstream.target {
        UpstreamTarget::Echo => crate::echo::respond(req, &exceeded).await.map(|r| {
            let (parts, bytes) = r.into_parts();
            (parts, Payload::json(bytes))
        }),
        UpstreamTarget::Http { .. } => match state
            .forwarder
            .send(req, &exceeded, &snapshot.upstream)
            .await
        {
            Ok((r, _)) if r.status() == http::StatusCode::SWITCHING_PROTOCOLS => switch_protocols(
                r,
                websocket,
                snapshot.server.idle_timeout,
                conn,
                state.grace_over.subscribe(),
            ),
            Ok((r, checkin)) => {
                let (mut parts, body) = r.into_parts();
                headers::remove_hop_by_hop(&mut parts.headers);
                Ok((
                    parts,
                    Payload::Upstream(PooledBody::new(body, Some(checkin))),
                ))
            }
            Err(e) => Err(e),
        },
    };
    record.upstream = Some(started.elapsed());
    result
}
