//! `authgate explain`: one request judged offline by the gateway's own
//! decision code (`pipeline::decide`), with fresh live state: no network,
//! no buckets spent, no revocations. It says what the access log would say.

use crate::access_log::RequestRecord;
use crate::auth::api_key::{ApiKeyIndex, KEY_PREFIX};
use crate::auth::jwt::IssuerKeys;
use crate::auth::{AuthServices, Kind};
use crate::pipeline::decide::{self, Live, RequestCtx};
use crate::pipeline::headers::TraceParent;
use crate::pipeline::route::{Route, RouteAuth};
use crate::ratelimit::RateLimits;
use crate::revocation::RevocationStore;
use crate::snapshot::Snapshot;
use base64::Engine;
use http::header::{HeaderValue, AUTHORIZATION, HOST};
use std::fmt::Write;
use std::sync::Arc;

/// The credential to judge the request with.
pub enum Credential {
    None,
    /// An API key as a client would send it.
    Key(String),
    /// The key of this id, whatever it is (the policy holds only its hash).
    KeyId(String),
    /// A bearer token (JWT).
    Token(String),
}

/// How the request would fare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Refused,
    /// A JWT of a remote issuer, or an opaque token: deciding needs the
    /// network, which `explain` does not use.
    Undecided,
}

/// The report and the verdict; `text` never contains the credential.
pub struct Explanation {
    pub text: String,
    pub verdict: Verdict,
}

/// Judges `method target` (a path, or a URL whose host goes in `Host`).
/// `snapshot` is the explain's own copy of the policy: `--key-id` adds a
/// stand-in key to it.
pub async fn explain(
    mut snapshot: Snapshot,
    method: &str,
    target: &str,
    credential: Credential,
) -> Result<Explanation, String> {
    let (mut head, path) = match request_head(&mut snapshot, method, target, &credential)? {
        Ok(head) => head,
        Err(undecided) => return Ok(undecided),
    };
    let limits = RateLimits::default();
    limits.adopt(&snapshot.limits);
    let revocations = RevocationStore::default();
    let auth = AuthServices::default();
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let mut record = RequestRecord::start(String::new(), ip, &head, None, "explain");
    let mut ctx = RequestCtx {
        snapshot: &snapshot,
        live: Live {
            limits: &limits,
            revocations: &revocations,
            auth: &auth,
        },
        rate_limit: None,
        trace: TraceParent::of(&head.headers),
        client_cert: None,
    };
    let result = decide::decide(&mut ctx, &mut record, &mut head)
        .await
        .map(|_| ());
    Ok(render(&snapshot, &path, &record, result))
}

/// The request head a client would send, or why it cannot be judged offline.
fn request_head(
    snapshot: &mut Snapshot,
    method: &str,
    target: &str,
    credential: &Credential,
) -> Result<Result<(http::request::Parts, String), Explanation>, String> {
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method"))?;
    let uri: http::Uri = target
        .parse()
        .map_err(|_| format!("`{target}` is not a path or URL"))?;
    let host = uri.authority().map(|a| a.as_str().to_string());
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    if !path.starts_with('/') {
        return Err(format!("`{target}` is not a path (/…) or an http(s) URL"));
    }
    let mut request = http::Request::builder()
        .method(method)
        .uri(path.as_str())
        .header(HOST, host.as_deref().unwrap_or("localhost"));
    match credential {
        Credential::None => {}
        Credential::Key(key) => {
            request = request.header(&snapshot.auth.api_keys.header, key.as_str());
        }
        Credential::KeyId(id) => {
            let stand_in = stand_in_key(&mut snapshot.auth.api_keys, id)?;
            request = request.header(&snapshot.auth.api_keys.header, stand_in);
        }
        Credential::Token(token) => {
            if !crate::auth::jwt::looks_like_jws(token) {
                return Ok(Err(undecided(
                    "an opaque token is checked by the introspection endpoint, which explain does not call",
                )));
            }
            if remote_issuer(snapshot, token) {
                return Ok(Err(undecided(
                    "this token's issuer publishes its keys at a URL (needs the issuer's keys); explain checks offline only tokens of `jwks_file` and `hs_secret_env` issuers",
                )));
            }
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "the token is not a header value".to_string())?;
            request = request.header(AUTHORIZATION, value);
        }
    }
    let (head, ()) = request
        .body(())
        .map_err(|e| format!("cannot build the request: {e}"))?
        .into_parts();
    Ok(Ok((head, path)))
}

/// What the access log would say, for a person.
fn render(
    snapshot: &Snapshot,
    path: &str,
    record: &RequestRecord,
    result: Result<(), crate::error::GatewayError>,
) -> Explanation {
    let mut text = String::new();
    let _ = writeln!(text, "request:   {} {path}", record.method);
    let route = record
        .route
        .as_deref()
        .and_then(|name| snapshot.routes.routes.iter().find(|r| &*r.name == name));
    match (&result, route) {
        (Err(e), None) if e.reason() != crate::reason::Reason::NoRoute => {
            let _ = writeln!(text, "path:      refused before routing");
        }
        _ => {
            let _ = writeln!(text, "path:      {}", record.path);
        }
    }
    match route {
        Some(route) => describe_route(&mut text, snapshot, route),
        None => {
            let _ = writeln!(text, "route:     none");
        }
    }
    if let Some(method) = record.auth_method {
        let _ = writeln!(text, "caller:    {method} {}", caller(record));
    }
    let verdict = match &result {
        Ok(()) => {
            let _ = writeln!(text, "decision:  allowed (forwarded to the upstream)");
            Verdict::Allowed
        }
        Err(e) => {
            let _ = writeln!(
                text,
                "decision:  {} — {} {}",
                e.decision().as_str(),
                e.status().as_u16(),
                e.code()
            );
            let _ = writeln!(
                text,
                "reason:    {} ({})",
                e.reason().as_str(),
                e.description()
            );
            Verdict::Refused
        }
    };
    Explanation { text, verdict }
}

fn undecided(why: &str) -> Explanation {
    Explanation {
        text: format!("decision:  not decided offline: {why}\n"),
        verdict: Verdict::Undecided,
    }
}

fn caller(record: &RequestRecord) -> String {
    match (&record.key_id, &record.subject) {
        (Some(id), Some(sub)) => format!("key {id} (subject {sub})"),
        (None, Some(sub)) => format!("subject {sub}"),
        _ => "not authenticated".into(),
    }
}

/// Makes the key of `id` usable without knowing it: a random stand-in is
/// entered under the same entry, in this copy of the policy only.
fn stand_in_key(keys: &mut ApiKeyIndex, id: &str) -> Result<String, String> {
    let entry = keys
        .by_digest
        .values()
        .find(|e| e.identity.key_id.as_deref() == Some(id))
        .cloned()
        .ok_or_else(|| format!("the policy has no API key with id `{id}`"))?;
    let mut random = [0u8; 24];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| "the system random generator failed")?;
    let stand_in = format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    keys.by_digest
        .insert(crate::secret::sha256(stand_in.as_bytes()), entry);
    Ok(stand_in)
}

/// Whether the token names an issuer whose keys are fetched over the network.
fn remote_issuer(snapshot: &Snapshot, token: &str) -> bool {
    let iss = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("iss").and_then(|i| i.as_str()).map(str::to_string));
    iss.and_then(|iss| snapshot.auth.jwt.issuers.get(&iss))
        .is_some_and(|issuer| matches!(issuer.keys, IssuerKeys::Remote(_)))
}

fn kinds_of(route: &Route) -> String {
    match &route.auth {
        RouteAuth::None => "none (public)".into(),
        RouteAuth::Kinds(set) => Kind::ALL
            .iter()
            .filter(|k| set.contains(**k))
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn limit_of(snapshot: &Snapshot, route: &Route) -> String {
    let named = route.rate_limit.as_deref();
    match snapshot.limits.effective(named, None) {
        Some(spec) => format!(
            "{} ({} per {:?}, burst {}){}",
            named.unwrap_or("default"),
            spec.count,
            spec.per,
            spec.burst,
            if named.is_none() {
                "; a caller's own limit takes its place"
            } else {
                ""
            }
        ),
        None => "none".into(),
    }
}

fn describe_route(text: &mut String, snapshot: &Snapshot, route: &Route) {
    let methods = route
        .methods
        .as_ref()
        .map_or("any method".to_string(), |m| {
            m.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(" ")
        });
    let _ = writeln!(
        text,
        "route:     {} ({}, {methods})",
        route.name,
        route.pattern.as_str()
    );
    let _ = writeln!(text, "accepts:   {}", kinds_of(route));
    let scopes = if route.scopes.is_empty() {
        "none".to_string()
    } else {
        route.scopes_joined.to_string()
    };
    let _ = writeln!(text, "scopes:    {scopes}");
    let _ = writeln!(text, "limit:     {}", limit_of(snapshot, route));
}

/// `explain --routes`: the route table, and per route the API key ids
/// whose scopes suffice (disabled and expired keys marked).
pub fn routes(snapshot: &Snapshot) -> String {
    let mut text = String::new();
    let now = std::time::SystemTime::now();
    let mut keys: Vec<&Arc<crate::auth::api_key::ApiKeyEntry>> =
        snapshot.auth.api_keys.by_digest.values().collect();
    keys.sort_by(|a, b| a.identity.key_id.cmp(&b.identity.key_id));
    for route in &snapshot.routes.routes {
        describe_route(&mut text, snapshot, route);
        let takes_keys = match &route.auth {
            RouteAuth::None => None,
            RouteAuth::Kinds(set) => Some(set.contains(Kind::ApiKey)),
        };
        let holders: Vec<String> = keys
            .iter()
            .filter(|k| route.scopes.iter().all(|s| k.identity.scopes.contains(s)))
            .filter_map(|k| {
                let id = k.identity.key_id.as_deref()?;
                Some(if k.disabled {
                    format!("{id} (disabled)")
                } else if k.expires.is_some_and(|e| e <= now) {
                    format!("{id} (expired)")
                } else {
                    id.to_string()
                })
            })
            .collect();
        let line = match takes_keys {
            None => "anyone (public route)".to_string(),
            Some(false) => "none (the route takes no API keys)".to_string(),
            Some(true) if holders.is_empty() => "none".to_string(),
            Some(true) => holders.join(", "),
        };
        let _ = writeln!(text, "keys:      {line}\n");
    }
    text
}
