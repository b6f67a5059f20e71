//! Compiling `routes`: patterns, methods, accepted credential kinds,
//! scopes, and the shadowed-route warnings of `authgate check`.

use super::diagnostics::Diagnostics;
use super::file;
use super::values::check_scopes;
use crate::auth::KindSet;
use crate::pipeline::route::{PathPattern, Route, RouteAuth, RouteTable};
use crate::ratelimit::LimitPolicy;
use http::Method;
use std::collections::HashMap;
use std::sync::Arc;

pub(super) fn routes(
    files: Vec<file::RouteFile>,
    kinds: KindSet,
    limits: &LimitPolicy,
    diag: &mut Diagnostics,
) -> RouteTable {
    let mut table = RouteTable::default();
    let mut names = HashMap::new();
    for (i, r) in files.into_iter().enumerate() {
        let at = |field: &str| format!("routes[{i}].{field}");
        let pattern = match PathPattern::parse(&r.path) {
            Ok(p) => Some(p),
            Err(m) => {
                diag.error(&at("path"), m);
                None
            }
        };
        let name = r.name.clone().unwrap_or_else(|| r.path.clone());
        if let Some(first) = names.insert(name.clone(), i) {
            diag.error(&at("name"), format!("route name `{name}` is already used by route {first}; names must be unique (they label logs and metrics)"));
        }
        let methods = r
            .methods
            .as_ref()
            .map(|ms| methods(ms, &at("methods"), diag));
        if let Some(limit) = &r.rate_limit {
            if !limits.named.contains_key(limit) {
                diag.error(
                    &at("rate_limit"),
                    super::operations::unknown_limit(limit, limits),
                );
            }
        }
        let auth = route_auth(r.auth.as_ref(), kinds, &at("auth"), diag);
        if auth == Some(RouteAuth::None) && !r.scopes.is_empty() {
            diag.error(
                &at("scopes"),
                "a route with `auth: none` cannot require scopes; remove `scopes` or `auth: none`",
            );
        }
        check_scopes(&r.scopes, &at("scopes"), diag);
        let (Some(pattern), Some(auth)) = (pattern, auth) else {
            continue;
        };
        table.routes.push(Route {
            name: name.into(),
            pattern,
            methods,
            auth,
            scopes_joined: r.scopes.join(" ").into(),
            scopes: r.scopes.iter().map(|s| Arc::from(s.as_str())).collect(),
            rate_limit: r.rate_limit,
            websocket: r.websocket,
        });
    }
    table_warnings(&table, diag);
    table
}

/// A route's `methods`, upper-cased.
fn methods(written: &[String], path: &str, diag: &mut Diagnostics) -> Vec<Method> {
    written
        .iter()
        .enumerate()
        .filter_map(
            |(j, m)| match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                Ok(m) => Some(m),
                Err(_) => {
                    diag.error(
                        &format!("{path}[{j}]"),
                        format!("`{m}` is not an HTTP method"),
                    );
                    None
                }
            },
        )
        .collect()
}

/// What only the whole table shows: no route at all, routes that can never
/// match, and requests that fall past a method-restricted route.
fn table_warnings(table: &RouteTable, diag: &mut Diagnostics) {
    if table.routes.is_empty() && diag.errors.is_empty() {
        diag.error(
            "",
            "`routes` is empty, so every request would get 404; add at least one route",
        );
    }
    for (earlier, later) in table.shadowed() {
        diag.warning(
            &format!("routes[{later}]"),
            format!(
                "route `{}` can never match: route `{}` above it matches every request it would",
                table.routes[later].name, table.routes[earlier].name
            ),
        );
    }
    for (earlier, later, method) in table.method_gaps() {
        let (e, l) = (&table.routes[earlier], &table.routes[later]);
        diag.warning(
            &format!("routes[{earlier}].methods"),
            format!(
                "a {method} request can fall past route `{}` (it lists only some methods) to route `{}` below, which demands less; add a route for the other methods of this path that demands as much, or narrow `{}`",
                e.name, l.name, l.name
            ),
        );
    }
}

fn route_auth(
    value: Option<&serde_yaml::Value>,
    configured: KindSet,
    path: &str,
    diag: &mut Diagnostics,
) -> Option<RouteAuth> {
    let hint =
        "write `auth: none`, or a list of kinds from api_key, jwt, introspection, session, mtls";
    let kinds = match value {
        None => configured,
        Some(serde_yaml::Value::String(s)) if s == "none" => return Some(RouteAuth::None),
        Some(serde_yaml::Value::Sequence(items)) => {
            let mut set = KindSet::default();
            for (j, item) in items.iter().enumerate() {
                let (flag, is_configured) = match item.as_str() {
                    Some("api_key") => (&mut set.api_key, configured.api_key),
                    Some("jwt") => (&mut set.jwt, configured.jwt),
                    Some("introspection") => (&mut set.introspection, configured.introspection),
                    Some("session") => (&mut set.session, configured.session),
                    Some("mtls") => (&mut set.mtls, configured.mtls),
                    _ => {
                        diag.error(
                            &format!("{path}[{j}]"),
                            format!("unknown credential kind; {hint}"),
                        );
                        continue;
                    }
                };
                if !is_configured {
                    diag.warning(&format!("{path}[{j}]"), "this credential kind is not configured in the policy yet, so nobody can use it on this route until its section is added");
                }
                *flag = true;
            }
            set
        }
        Some(_) => {
            diag.error(path, format!("`auth` is malformed; {hint}"));
            return None;
        }
    };
    if kinds.is_empty() {
        // Valid, so a route can be written before its first key: it answers 401.
        diag.warning(path, "this route needs a credential but the policy configures no api_keys, jwt, introspection, sessions or mtls yet, so it answers 401 to everyone; add one, or make the route `auth: none`");
    }
    Some(RouteAuth::Kinds(kinds))
}
