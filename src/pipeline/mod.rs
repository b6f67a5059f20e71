//! `handle()`: the stages of docs/requests.md, in order, as plain async functions.
//! Only `handle` turns an error into a response, and the access log is
//! written exactly once, by the response body, whatever happened.

pub mod headers;
pub mod normalize;
pub mod route;

use crate::access_log::{AccessLog, RequestRecord};
use crate::auth::KindSet;
use crate::auth::{self, Identity};
use crate::body::{LimitedBody, Payload, ResponseBody};
use crate::clock::unix_now;
use crate::error::{Decision, GatewayError};
use crate::forward::UpstreamTarget;
use crate::forward::{self, Forwarder};
use crate::snapshot::{SharedSnapshot, Snapshot};
use headers::{RequestIds, X_REQUEST_ID};
use http::header::{HeaderValue, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, USER_AGENT};
use http::{Request, Response, Version};
use hyper::body::Incoming;
use route::RouteAuth;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Everything a request needs that outlives one policy snapshot.
pub struct GatewayState {
    pub snapshot: SharedSnapshot,
    pub revocations: Arc<crate::revocation::RevocationStore>,
    pub limits: crate::ratelimit::RateLimits,
    /// Fetch clients, remote key sets, token and introspection caches.
    pub auth: crate::auth::AuthServices,
    /// The one Redis service (limits, revocations), with `backend: redis`.
    pub redis: Option<Arc<crate::redis_backend::RedisBackend>>,
    pub forwarder: Forwarder,
    pub access_log: AccessLog,
    pub request_ids: RequestIds,
    /// TLS settings for new handshakes; replaced on reload.
    pub tls: arc_swap::ArcSwap<rustls::ServerConfig>,
    /// Turns true when the shutdown grace is spent: what still runs on its
    /// own (WebSocket tunnels) closes then.
    pub grace_over: tokio::sync::watch::Sender<bool>,
}

impl GatewayState {
    /// Enters a revocation here at once and, with Redis, for every replica.
    /// Past `revocation.max_entries` it is stored nowhere.
    pub async fn revoke(
        &self,
        entry: &crate::revocation::Revocation,
    ) -> Result<(), crate::revocation::StoreFull> {
        let max_entries = self.snapshot.load().revocation_max_entries;
        self.revocations.insert(entry, max_entries)?;
        if let Some(redis) = &self.redis {
            redis.store_revocation(entry).await;
        }
        Ok(())
    }
}

/// What the connection knows about itself.
#[derive(Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls_version: &'static str,
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
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(headers::valid_request_id)
        .map(str::to_string)
        .unwrap_or_else(|| state.request_ids.next());
    let mut record = Box::new(RequestRecord {
        started: Instant::now(),
        request_id,
        client_ip: headers::client_ip(conn.peer.ip(), req.headers(), &snapshot.server),
        method: req.method().clone(),
        version: req.version(),
        path: req.uri().path().to_string(),
        status: 0,
        bytes_out: 0,
        upstream_ms: None,
        route: None,
        auth_method: None,
        subject: None,
        key_id: None,
        decision: Decision::Allowed,
        reason: None,
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        tls_version: conn.tls_version,
        rate_limit: None,
    });
    let result = run(&snapshot, &state, &conn, &mut record, req).await;
    // docs/requests.md step 7: every refused credential takes a token from the IP's bucket.
    if let (Err(GatewayError::InvalidCredential { .. }), Some(guard)) =
        (&result, snapshot.limits.failed_auth_per_ip)
    {
        state.limits.record_failure(guard, record.client_ip).await;
    }
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
    if let Ok(v) = HeaderValue::from_str(&record.request_id) {
        response.headers_mut().insert(X_REQUEST_ID, v);
    }
    if let Some(outcome) = &record.rate_limit {
        outcome.headers(response.headers_mut());
    }
    record.status = response.status().as_u16();
    let body = ResponseBody::new(payload, record, state.access_log.clone(), in_flight);
    response.map(|()| body)
}

/// Header bytes as they would stand on the wire (`name: value\r\n`).
fn header_bytes(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum()
}

async fn run(
    snapshot: &Snapshot,
    state: &GatewayState,
    conn: &ConnInfo,
    record: &mut RequestRecord,
    mut req: Request<Incoming>,
) -> Result<(http::response::Parts, Payload), GatewayError> {
    // hyper enforces the limit on HTTP/1 buffers in coarse steps; this is the exact check.
    if header_bytes(req.headers()) > snapshot.server.max_header_bytes {
        return Err(GatewayError::HeadersTooLarge);
    }
    refuse_hostile_targets(&req)?;
    // 1. Normalize.
    let path = normalize::normalize(req.uri().path())
        .map_err(|e| GatewayError::bad_request(e.reason(), e.description()))?
        .into_owned();
    record.path.clone_from(&path);
    // 2. Route.
    let route = snapshot
        .routes
        .find(req.method(), &path)
        .ok_or(GatewayError::NotFound)?;
    record.route = Some(route.name.clone());
    // 3. Strip what only the gateway may say.
    headers::strip_identity(req.headers_mut(), &snapshot.auth.identity);
    // 4–7. Authenticate, check revocation, authorize, rate-limit.
    let identity = match &route.auth {
        RouteAuth::None => None,
        RouteAuth::Kinds(accepted) => {
            Some(admit(snapshot, state, route, *accepted, req.headers(), record).await?)
        }
    };
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
    let websocket = route
        .websocket
        .then(|| crate::upgrade::expected_accept(&req))
        .flatten()
        .map(|accept| (accept, hyper::upgrade::on(&mut req)));
    let mut req = prepare_upstream_request(
        snapshot,
        conn,
        req,
        &path,
        identity.as_deref(),
        &record.request_id,
    )?;
    if websocket.is_some() {
        crate::upgrade::restore_headers(req.headers_mut());
    }
    forward(snapshot, state, record, req, websocket, conn).await
}

/// docs/requests.md steps 4–7 for a route that needs a credential: who is calling,
/// whether their token is revoked, whether they hold the route's scopes,
/// and whether their rate limit lets them through.
async fn admit(
    snapshot: &Snapshot,
    state: &GatewayState,
    route: &route::Route,
    accepted: KindSet,
    headers: &http::HeaderMap,
    record: &mut RequestRecord,
) -> Result<Arc<Identity>, GatewayError> {
    // A route whose kinds are none of the configured ones admits nobody yet.
    let configured = snapshot.auth.kinds;
    if accepted.intersection(configured).is_empty() {
        return Err(GatewayError::Unauthenticated {
            api_key_configured: configured.api_key,
        });
    }
    let credential = auth::extract(headers, &snapshot.auth.api_keys.header)?.ok_or(
        GatewayError::Unauthenticated {
            api_key_configured: configured.api_key,
        },
    )?;
    // Brute-force guard: an IP out of failed attempts is not heard.
    if let Some(guard) = snapshot.limits.failed_auth_per_ip {
        if let Some(retry_after_secs) = state.limits.ip_blocked(guard, record.client_ip).await {
            return Err(GatewayError::RateLimited { retry_after_secs });
        }
    }
    let not_accepted = || GatewayError::InsufficientScope {
        scheme: credential.scheme(),
        reason: "credential_kind_not_accepted",
        scopes: route.scopes_joined.clone(),
    };
    // A bearer token where the route takes none is refused unread.
    let bearer = matches!(credential, auth::Credential::Bearer(_));
    if bearer && configured.bearer() && !accepted.bearer() {
        return Err(not_accepted());
    }
    let kind = auth::classify(&credential, configured)?;
    record.auth_method = Some(kind.as_str());
    if !accepted.contains(kind) {
        return Err(not_accepted());
    }
    let identity = snapshot
        .auth
        .authenticate(&credential, kind, &state.auth)
        .await?;
    record.subject = Some(identity.subject.clone());
    record.key_id.clone_from(&identity.key_id);
    // 5. Revocation.
    if let Some(facts) = &identity.token {
        let iss = identity.issuer.as_deref().unwrap_or("");
        if state
            .revocations
            .is_revoked(iss, &identity.subject, facts, unix_now())
        {
            return Err(GatewayError::invalid_credential(
                crate::error::Scheme::Bearer,
                "token_revoked",
                "The token has been revoked.",
            ));
        }
    }
    // 6. Authorize.
    if !route.scopes.iter().all(|s| identity.scopes.contains(s)) {
        return Err(GatewayError::InsufficientScope {
            scheme: credential.scheme(),
            reason: "missing_scope",
            scopes: route.scopes_joined.clone(),
        });
    }
    // 7. Rate-limit the caller.
    let limit = snapshot
        .limits
        .effective(route.rate_limit.as_deref(), identity.rate_limit.as_deref());
    if let Some(spec) = limit {
        let outcome = state.limits.check(spec, &identity.caller).await;
        record.rate_limit = Some(outcome);
        if !outcome.allowed {
            return Err(GatewayError::RateLimited {
                retry_after_secs: outcome.retry_after_secs,
            });
        }
    }
    Ok(identity)
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
            reason: "unexpected_upgrade",
        });
    };
    if !crate::upgrade::accepted(response.headers(), &expected) {
        return Err(GatewayError::BadGateway {
            reason: "websocket_not_accepted",
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
    Ok((parts, Payload::Upstream(body)))
}

/// The methods of RFC 9110 §9 and RFC 5789.
const STANDARD_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Refuses what hyper accepts but a gateway must not pass on: `CONNECT`
/// (no tunnels to arbitrary hosts) and an absolute-form target naming
/// another host than `Host` (RFC 9112 §3.2.2: the two must not disagree).
fn refuse_hostile_targets(req: &Request<Incoming>) -> Result<(), GatewayError> {
    if req.method() == http::Method::CONNECT {
        return Err(GatewayError::bad_request(
            "connect_not_allowed",
            "CONNECT is not served.",
        ));
    }
    // Methods are case-sensitive (RFC 9110 §9.1), but some upstreams fold
    // case: `get` would miss a `methods: [GET]` route here and be served as
    // GET there.
    let method = req.method().as_str();
    if STANDARD_METHODS
        .iter()
        .any(|m| *m != method && m.eq_ignore_ascii_case(method))
    {
        return Err(GatewayError::bad_request(
            "method_case",
            "The method must be written in upper case.",
        ));
    }
    // Two hosts, or an HTTP/2 host header beside another :authority: the
    // gateway and the upstream could each route by a different one.
    let mut hosts = req.headers().get_all(HOST).iter();
    let first_host = hosts.next();
    let authority_differs = req.version() == Version::HTTP_2
        && first_host.is_some_and(|h| {
            req.uri()
                .authority()
                .is_some_and(|a| !h.as_bytes().eq_ignore_ascii_case(a.as_str().as_bytes()))
        });
    if hosts.next().is_some() || authority_differs {
        return Err(GatewayError::bad_request(
            "ambiguous_host",
            "The request names more than one host.",
        ));
    }
    if req.version() <= Version::HTTP_11 {
        // Request smuggling (RFC 9112 §6.1, §6.3): one framing, stated once,
        // or the gateway and the upstream may disagree on where a request ends.
        let te: Vec<&http::HeaderValue> = req.headers().get_all(TRANSFER_ENCODING).iter().collect();
        let cl = req.headers().get_all(CONTENT_LENGTH).iter().count();
        let chunked_only = te.len() == 1 && te[0].as_bytes().eq_ignore_ascii_case(b"chunked");
        if cl > 1 || (!te.is_empty() && (cl > 0 || !chunked_only)) {
            return Err(GatewayError::bad_request(
                "ambiguous_framing",
                "The request's Content-Length and Transfer-Encoding are ambiguous.",
            ));
        }
        if let Some(authority) = req.uri().authority() {
            let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
            if host.is_none_or(|h| !h.eq_ignore_ascii_case(authority.as_str())) {
                return Err(GatewayError::bad_request(
                    "absolute_form_host_mismatch",
                    "The request target names another host than the Host header.",
                ));
            }
        }
    }
    Ok(())
}

/// Rewrites the caller's request into the one the upstream receives (docs/requests.md step 8).
fn prepare_upstream_request(
    snapshot: &Snapshot,
    conn: &ConnInfo,
    req: Request<Incoming>,
    path: &str,
    identity: Option<&Identity>,
    request_id: &str,
) -> Result<Request<Incoming>, GatewayError> {
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
    // The upstream sees its own authority as Host; the caller's is in X-Forwarded-Host.
    headers.remove(HOST);
    headers::add_forwarded(headers, conn.peer.ip(), requested_host, &snapshot.server);
    if let Some(identity) = identity {
        headers::add_identity(headers, identity);
    }
    // Added after hop-by-hop removal, so `Connection: X-Request-Id` cannot
    // take it away; the caller's id goes upstream once, as kept or generated.
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(X_REQUEST_ID, v);
    }
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
            .send(req, &exceeded, snapshot.upstream.timeout)
            .await
        {
            Ok(r) if r.status() == http::StatusCode::SWITCHING_PROTOCOLS => switch_protocols(
                r,
                websocket,
                snapshot.server.idle_timeout,
                conn,
                state.grace_over.subscribe(),
            ),
            Ok(r) => {
                let (mut parts, body) = r.into_parts();
                headers::remove_hop_by_hop(&mut parts.headers);
                Ok((parts, Payload::Upstream(body)))
            }
            Err(e) => Err(e),
        },
    };
    record.upstream_ms = Some((started.elapsed().as_secs_f64() * 1e6).round() / 1e3);
    result
}
