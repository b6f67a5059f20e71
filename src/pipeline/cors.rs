//! CORS (the Fetch standard) for browser apps on other origins: a
//! preflight is answered here before authentication and never forwarded;
//! every other response to an origin listed for its route, errors
//! included, carries the allow headers, and the upstream's own
//! `Access-Control-*` headers are replaced, never doubled.

use super::normalize;
use super::route::RouteTable;
use crate::error::GatewayError;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use std::sync::Arc;

/// The `cors` section, compiled.
#[derive(Debug, Default)]
pub struct CorsPolicy {
    pub rules: Vec<CorsRule>,
}

/// One entry of `cors`.
#[derive(Debug)]
pub struct CorsRule {
    /// Exact origins, lower-case; `None` = `*`.
    pub origins: Option<Vec<String>>,
    /// Route names; `None` = every route (and answers no route matched).
    pub routes: Option<Vec<Arc<str>>>,
    pub allow_headers: Option<HeaderValue>,
    pub expose: Option<HeaderValue>,
    pub credentials: bool,
    pub max_age: HeaderValue,
}

impl CorsRule {
    fn covers(&self, origin: &str, route: Option<&str>) -> bool {
        let origin_listed = self
            .origins
            .as_ref()
            .is_none_or(|list| list.iter().any(|o| o.eq_ignore_ascii_case(origin)));
        let route_listed = match (&self.routes, route) {
            (None, _) => true,
            (Some(names), Some(route)) => names.iter().any(|n| &**n == route),
            (Some(_), None) => false,
        };
        origin_listed && route_listed
    }

    /// `Access-Control-Allow-Origin`: the origin itself (always, with
    /// credentials; `*` only for an any-origin rule without them).
    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        if self.origins.is_none() && !self.credentials {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    fn common(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin(origin),
        );
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        add_vary_origin(headers);
    }
}

/// `Vary: Origin`, once, beside whatever the upstream varies on.
fn add_vary_origin(headers: &mut HeaderMap) {
    let present = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("origin") || v.trim() == "*");
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

impl CorsPolicy {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn rule_for(&self, origin: &HeaderValue, route: Option<&str>) -> Option<&CorsRule> {
        let origin = origin.to_str().ok()?;
        self.rules.iter().find(|r| r.covers(origin, route))
    }

    /// Decorates a response to `origin` answered for `route`: the
    /// upstream's `Access-Control-*` out, ours in.
    pub fn decorate(&self, origin: &HeaderValue, route: Option<&str>, headers: &mut HeaderMap) {
        let Some(rule) = self.rule_for(origin, route) else {
            return;
        };
        strip_access_control(headers);
        rule.common(origin, headers);
        if let Some(expose) = &rule.expose {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }

    /// The answer to a preflight: 204 with the allow headers when the
    /// origin is listed for the route the requested method would match.
    /// Returns the route name matched, for the log.
    pub fn preflight(
        &self,
        routes: &RouteTable,
        parts: &http::request::Parts,
        headers: &mut HeaderMap,
    ) -> Result<(StatusCode, Option<Arc<str>>), GatewayError> {
        let refused = GatewayError::PreflightRefused;
        let origin = parts.headers.get(header::ORIGIN).ok_or(refused.clone())?;
        let requested = parts
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .ok_or(refused.clone())?;
        let path = normalize::normalize(parts.uri.path()).map_err(|_| refused.clone())?;
        let route = routes.find(&requested, &path).map(|r| r.name.clone());
        let rule = self
            .rule_for(origin, route.as_deref())
            .ok_or(refused.clone())?;
        rule.common(origin, headers);
        if let Ok(method) = HeaderValue::from_str(requested.as_str()) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, method);
        }
        if let Some(allowed) = &rule.allow_headers {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed.clone());
        }
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, rule.max_age.clone());
        Ok((StatusCode::NO_CONTENT, route))
    }
}

/// A preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
pub fn is_preflight(parts: &http::request::Parts) -> bool {
    parts.method == Method::OPTIONS
        && parts.headers.contains_key(header::ORIGIN)
        && parts
            .headers
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn strip_access_control(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}
