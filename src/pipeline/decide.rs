//! docs/requests.md steps 1–7, the decision: whether this request may
//! pass, and as whom. It reads the request and never answers it, so the
//! proxy path and any other listener judge requests by the same code.

use super::normalize;
use super::route::{Route, RouteAuth};
use crate::access_log::RequestRecord;
use crate::auth::AuthServices;
use crate::auth::{self, session, Identity, KindSet};
use crate::clock::unix_now;
use crate::error::{GatewayError, Reason, Scheme};
use crate::ratelimit::{Outcome, RateLimits};
use crate::revocation::RevocationStore;
use crate::secret::Secret;
use crate::snapshot::Snapshot;
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::Version;
use std::sync::Arc;

/// The live services the decision reads, and nothing else of the state:
/// a decision can be made offline (`authgate explain`) with fresh ones.
#[derive(Clone, Copy)]
pub struct Live<'a> {
    pub limits: &'a RateLimits,
    pub revocations: &'a RevocationStore,
    pub auth: &'a AuthServices,
}

/// What the stages pass along for the response that is not logged.
pub struct RequestCtx<'a> {
    pub snapshot: &'a Snapshot,
    pub live: Live<'a>,
    /// The caller's rate-limit numbers, for the `RateLimit-*` headers.
    pub rate_limit: Option<Outcome>,
    /// Sent upstream with the request.
    pub trace: super::headers::TraceParent,
    /// The connection's verified client certificate (`mtls`).
    pub client_cert: Option<&'a auth::mtls::ClientCert>,
}

/// A request let through: its normalized path, its route, its caller.
pub struct Admitted<'a> {
    pub path: String,
    pub route: &'a Route,
    pub identity: Option<Arc<Identity>>,
}

/// Steps 1–7 on a request's head. Step 3 strips the identity headers from
/// `parts`; the rest only reads it. What was learned goes into `record`.
pub async fn decide<'a>(
    ctx: &mut RequestCtx<'a>,
    record: &mut RequestRecord,
    parts: &mut http::request::Parts,
) -> Result<Admitted<'a>, GatewayError> {
    let snapshot = ctx.snapshot;
    refuse_hostile_targets(parts)?;
    // 1. Normalize.
    let path = normalize::normalize(parts.uri.path())
        .map_err(|e| GatewayError::bad_request(e.reason(), e.description()))?
        .into_owned();
    record.path.clone_from(&path);
    // 2. Route.
    let route = snapshot
        .routes
        .find(&parts.method, &path)
        .ok_or(GatewayError::NotFound)?;
    record.route = Some(route.name.clone());
    // 3. Strip what only the gateway may say.
    super::headers::strip_identity(&mut parts.headers, &snapshot.auth.identity);
    // 4–7. Authenticate, check revocation, authorize, rate-limit.
    let identity = match &route.auth {
        RouteAuth::None => {
            limit_anonymous(ctx, record.client_ip).await?;
            None
        }
        RouteAuth::Kinds(accepted) => {
            Some(guarded_admit(ctx, route, *accepted, parts, record).await?)
        }
    };
    Ok(Admitted {
        path,
        route,
        identity,
    })
}

/// `rate_limits.anonymous`: a request that needs no credential (an
/// `auth: none` route, a CORS preflight) spends from its client IP's bucket.
pub(super) async fn limit_anonymous(
    ctx: &mut RequestCtx<'_>,
    client_ip: std::net::IpAddr,
) -> Result<(), GatewayError> {
    let Some(spec) = ctx.snapshot.limits.anonymous else {
        return Ok(());
    };
    let outcome = ctx.live.limits.check_ip(spec, client_ip).await;
    ctx.rate_limit = Some(outcome);
    if outcome.allowed {
        Ok(())
    } else {
        Err(GatewayError::RateLimited {
            retry_after_secs: outcome.retry_after_secs,
        })
    }
}

/// Steps 4–7 behind the failed-authentication guard (step 7): an IP out of
/// failed attempts is not heard, and every refused credential takes a
/// token from its bucket.
async fn guarded_admit(
    ctx: &mut RequestCtx<'_>,
    route: &Route,
    accepted: KindSet,
    parts: &http::request::Parts,
    record: &mut RequestRecord,
) -> Result<Arc<Identity>, GatewayError> {
    let guard = ctx.snapshot.limits.failed_auth_per_ip;
    let result = admit(ctx, route, accepted, parts, record, guard).await;
    if let (Err(GatewayError::InvalidCredential { .. }), Some(guard)) = (&result, guard) {
        ctx.live
            .limits
            .record_failure(guard, record.client_ip)
            .await;
    }
    result
}

/// docs/requests.md steps 4–7 for a route that needs a credential: who is calling,
/// whether their token is revoked, whether they hold the route's scopes,
/// and whether their rate limit lets them through.
async fn admit(
    ctx: &mut RequestCtx<'_>,
    route: &Route,
    accepted: KindSet,
    parts: &http::request::Parts,
    record: &mut RequestRecord,
    guard: Option<crate::ratelimit::LimitSpec>,
) -> Result<Arc<Identity>, GatewayError> {
    let (snapshot, live) = (ctx.snapshot, ctx.live);
    let headers = &parts.headers;
    // A route whose kinds are none of the configured ones admits nobody yet.
    let configured = snapshot.auth.kinds;
    if accepted.intersection(configured).is_empty() {
        return Err(GatewayError::Unauthenticated {
            api_key_configured: configured.api_key,
        });
    }
    // A client certificate is a credential only where the route takes `mtls`.
    let cert = ctx.client_cert.filter(|_| accepted.mtls && configured.mtls);
    let credential = auth::extract(headers, &snapshot.auth.api_keys.header)?;
    if cert.is_some() && credential.is_some() {
        return Err(auth::two_credentials());
    }
    // Brute-force guard: an IP out of failed attempts is not heard.
    if let (Some(guard), true) = (guard, cert.is_some() || credential.is_some()) {
        if let Some(retry_after_secs) = live.limits.ip_blocked(guard, record.client_ip).await {
            ctx.rate_limit = Some(crate::ratelimit::Outcome::refused(guard, retry_after_secs));
            return Err(GatewayError::RateLimited { retry_after_secs });
        }
    }
    if let Some(cert) = cert {
        record.auth_method = Some(auth::Kind::Mtls.as_str());
        let identity = snapshot.auth.mtls.authenticate(cert)?;
        record.subject = Some(identity.subject.clone());
        check_caller(ctx, route, &identity, Scheme::Bearer).await?;
        return Ok(identity);
    }
    // A header credential takes precedence over a session cookie.
    let Some(credential) = credential else {
        // Boxed: a rare, large branch (see `pipeline::run`).
        return Box::pin(admit_session(ctx, route, accepted, parts, record)).await;
    };
    let not_accepted = || GatewayError::InsufficientScope {
        scheme: credential.scheme(),
        reason: Reason::CredentialKindNotAccepted,
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
        .authenticate(&credential, kind, live.auth)
        .await?;
    record.subject = Some(identity.subject.clone());
    record.key_id.clone_from(&identity.key_id);
    check_caller(ctx, route, &identity, credential.scheme()).await?;
    Ok(identity)
}

/// Step 4 by the session cookie, on a route that accepts sessions: a
/// navigation without a valid session is sent to sign in; anything else
/// gets a 401 (a script cannot follow a redirect to a login page).
async fn admit_session(
    ctx: &mut RequestCtx<'_>,
    route: &Route,
    accepted: KindSet,
    parts: &http::request::Parts,
    record: &mut RequestRecord,
) -> Result<Arc<Identity>, GatewayError> {
    let (snapshot, live) = (ctx.snapshot, ctx.live);
    let no_credential = GatewayError::Unauthenticated {
        api_key_configured: snapshot.auth.kinds.api_key,
    };
    let Some(sessions) = snapshot.auth.sessions.as_ref().filter(|_| accepted.session) else {
        return Err(no_credential);
    };
    let host = || super::headers::requested_host(parts);
    // Sign-in runs on the main listener, which answers the callback; a
    // forward-auth check only judges the cookie.
    let main_listener = record.listener == "main";
    let sign_in = || match host() {
        Some(host) if main_listener && session::is_navigation(&parts.method, &parts.headers) => {
            let return_to = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            Some(sessions.start(host, return_to))
        }
        _ => None,
    };
    let Some(cookie) = session::cookies::find(&parts.headers, &sessions.cookie) else {
        return Err(sign_in().unwrap_or(no_credential));
    };
    record.auth_method = Some(auth::Kind::Session.as_str());
    let identity = match sessions
        .authenticate(
            &Secret::new(cookie),
            &snapshot.auth.identity,
            live.auth.session_services(),
            live.revocations,
        )
        .await
    {
        Ok(identity) => identity,
        Err(session::Ended::StoreUnavailable) => {
            return Err(GatewayError::Unavailable {
                reason: Reason::SessionStoreUnavailable,
            })
        }
        Err(session::Ended::Because(reason)) => {
            return Err(sign_in().unwrap_or(GatewayError::SessionEnded {
                reason,
                expire_cookie: session::cookies::expire(&sessions.cookie),
            }))
        }
    };
    record.subject = Some(identity.subject.clone());
    // Cross-site request forgery: a cookie rides along on any site's
    // request, so a state-changing one must come from our own pages.
    let safe = matches!(
        parts.method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    );
    if !safe && !host().is_some_and(|h| session::same_origin(&parts.headers, h)) {
        return Err(GatewayError::CrossSite);
    }
    check_caller(ctx, route, &identity, Scheme::Bearer).await?;
    Ok(identity)
}

/// Steps 5–7 for an authenticated caller: revocation, the route's scopes,
/// the caller's rate limit.
async fn check_caller(
    ctx: &mut RequestCtx<'_>,
    route: &Route,
    identity: &Identity,
    scheme: Scheme,
) -> Result<(), GatewayError> {
    let (snapshot, live) = (ctx.snapshot, ctx.live);
    // 5. Revocation.
    if let Some(facts) = &identity.token {
        let iss = identity.issuer.as_deref().unwrap_or("");
        if live
            .revocations
            .is_revoked(iss, &identity.subject, facts, unix_now())
        {
            return Err(GatewayError::invalid_credential(
                Scheme::Bearer,
                Reason::TokenRevoked,
                "The token has been revoked.",
            ));
        }
    }
    // 6. Authorize.
    if !route.scopes.iter().all(|s| identity.scopes.contains(s)) {
        return Err(GatewayError::InsufficientScope {
            scheme,
            reason: Reason::MissingScope,
            scopes: route.scopes_joined.clone(),
        });
    }
    // 7. Rate-limit the caller.
    let limit = snapshot
        .limits
        .effective(route.rate_limit.as_deref(), identity.rate_limit.as_deref());
    if let Some(spec) = limit {
        let outcome = live.limits.check(spec, &identity.caller).await;
        ctx.rate_limit = Some(outcome);
        if !outcome.allowed {
            return Err(GatewayError::RateLimited {
                retry_after_secs: outcome.retry_after_secs,
            });
        }
    }
    Ok(())
}

/// The methods of RFC 9110 §9 and RFC 5789.
const STANDARD_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Refuses what hyper accepts but a gateway must not pass on: `CONNECT`
/// (no tunnels to arbitrary hosts) and an absolute-form target naming
/// another host than `Host` (RFC 9112 §3.2.2: the two must not disagree).
pub(super) fn refuse_hostile_targets(req: &http::request::Parts) -> Result<(), GatewayError> {
    if req.method == http::Method::CONNECT {
        return Err(GatewayError::bad_request(
            Reason::ConnectNotAllowed,
            "CONNECT is not served.",
        ));
    }
    // Methods are case-sensitive (RFC 9110 §9.1), but some upstreams fold
    // case: `get` would miss a `methods: [GET]` route here and be served as
    // GET there.
    let method = req.method.as_str();
    if STANDARD_METHODS
        .iter()
        .any(|m| *m != method && m.eq_ignore_ascii_case(method))
    {
        return Err(GatewayError::bad_request(
            Reason::MethodCase,
            "The method must be written in upper case.",
        ));
    }
    // Two hosts, or an HTTP/2 host header beside another :authority: the
    // gateway and the upstream could each route by a different one.
    let mut hosts = req.headers.get_all(HOST).iter();
    let first_host = hosts.next();
    let authority_differs = req.version == Version::HTTP_2
        && first_host.is_some_and(|h| {
            req.uri
                .authority()
                .is_some_and(|a| !h.as_bytes().eq_ignore_ascii_case(a.as_str().as_bytes()))
        });
    if hosts.next().is_some() || authority_differs {
        return Err(GatewayError::bad_request(
            Reason::AmbiguousHost,
            "The request names more than one host.",
        ));
    }
    if req.version <= Version::HTTP_11 {
        // Request smuggling (RFC 9112 §6.1, §6.3): one framing, stated once,
        // or the gateway and the upstream may disagree on where a request ends.
        let te: Vec<&http::HeaderValue> = req.headers.get_all(TRANSFER_ENCODING).iter().collect();
        let cl = req.headers.get_all(CONTENT_LENGTH).iter().count();
        let chunked_only = te.len() == 1 && te[0].as_bytes().eq_ignore_ascii_case(b"chunked");
        if cl > 1 || (!te.is_empty() && (cl > 0 || !chunked_only)) {
            return Err(GatewayError::bad_request(
                Reason::AmbiguousFraming,
                "The request's Content-Length and Transfer-Encoding are ambiguous.",
            ));
        }
        if let Some(authority) = req.uri.authority() {
            let host = req.headers.get(HOST).and_then(|h| h.to_str().ok());
            if host.is_none_or(|h| !h.eq_ignore_ascii_case(authority.as_str())) {
                return Err(GatewayError::bad_request(
                    Reason::AbsoluteFormHostMismatch,
                    "The request target names another host than the Host header.",
                ));
            }
        }
    }
    Ok(())
}
