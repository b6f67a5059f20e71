//! Compiling `cors`: exact origins, route names that exist, header names,
//! and no `*` beside `credentials: true` (the Fetch standard forbids it,
//! and echoing any origin with credentials would hand every site the
//! caller's cookies).

use super::diagnostics::Diagnostics;
use super::file::CorsFile;
use crate::pipeline::cors::{CorsPolicy, CorsRule};
use crate::pipeline::route::RouteTable;
use http::HeaderValue;
use std::sync::Arc;

const DEFAULT_HEADERS: [&str; 2] = ["Authorization", "Content-Type"];
const DEFAULT_EXPOSE: [&str; 5] = [
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
    "X-Request-Id",
];
const DEFAULT_MAX_AGE_SECS: u64 = 600;

/// `scheme://host[:port]` and nothing else.
fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
        && rest.parse::<http::uri::Authority>().is_ok()
}

fn header_list(names: &[String], at: &str, diag: &mut Diagnostics) -> Option<HeaderValue> {
    for (i, name) in names.iter().enumerate() {
        super::values::header_name(name, &format!("{at}[{i}]"), diag);
    }
    if names.is_empty() {
        return None;
    }
    HeaderValue::from_str(&names.join(", ")).ok()
}

pub(super) fn cors(
    files: Vec<CorsFile>,
    routes: &RouteTable,
    diag: &mut Diagnostics,
) -> CorsPolicy {
    let mut rules = Vec::new();
    for (i, f) in files.into_iter().enumerate() {
        let at = |field: &str| format!("cors[{i}].{field}");
        if f.origins.is_empty() {
            diag.error(
                &at("origins"),
                "`origins` is required: the exact origins allowed, such as https://app.example.com",
            );
        }
        let any = f.origins.iter().any(|o| o == "*");
        for (j, origin) in f.origins.iter().enumerate() {
            if origin != "*" && !is_origin(origin) {
                diag.error(&format!("{}[{j}]", at("origins")), format!("`{origin}` is not an origin; write scheme://host[:port] with no path or trailing slash, e.g. https://app.example.com"));
            }
        }
        if any && f.credentials {
            diag.error(&at("origins"), "`*` cannot be used with `credentials: true`: list the exact origins that may send credentials");
        }
        if let Some(names) = &f.routes {
            for (j, name) in names.iter().enumerate() {
                if !routes.routes.iter().any(|r| &*r.name == name) {
                    diag.error(
                        &format!("{}[{j}]", at("routes")),
                        format!("no route is named `{name}`"),
                    );
                }
            }
        }
        let default = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let allow_headers = header_list(
            &f.headers.unwrap_or_else(|| default(&DEFAULT_HEADERS)),
            &at("headers"),
            diag,
        );
        let expose = header_list(
            &f.expose.unwrap_or_else(|| default(&DEFAULT_EXPOSE)),
            &at("expose"),
            diag,
        );
        let max_age = f.max_age.map_or(DEFAULT_MAX_AGE_SECS, |d| d.0.as_secs());
        rules.push(CorsRule {
            origins: (!any).then(|| f.origins.iter().map(|o| o.to_ascii_lowercase()).collect()),
            routes: f
                .routes
                .map(|names| names.iter().map(|n| Arc::from(n.as_str())).collect()),
            allow_headers,
            expose,
            credentials: f.credentials,
            max_age: HeaderValue::from(max_age),
        });
    }
    CorsPolicy { rules }
}
