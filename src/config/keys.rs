//! The identity header names and the API keys.

use super::diagnostics::Diagnostics;
use super::file;
use super::values::{check_scopes, header_name};
use crate::auth::api_key::{parse_digest, ApiKeyEntry, ApiKeyIndex};
use crate::auth::{IdentityHeaders, IdentityParts, Kind};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

/// The identity header names; `assertion` is `identity.assertion`, taken
/// out of `f` to be compiled on its own.
pub(super) fn identity(
    f: file::IdentityFile,
    assertion: Option<&file::AssertionFile>,
    diag: &mut Diagnostics,
) -> Option<IdentityHeaders> {
    let mut one = |value: Option<String>, default: &str, field: &str| {
        header_name(
            value.as_deref().unwrap_or(default),
            &format!("identity.{field}"),
            diag,
        )
    };
    let subject = one(f.subject, "X-Auth-Subject", "subject");
    let method = one(f.method, "X-Auth-Method", "method");
    let scopes = one(f.scopes, "X-Auth-Scopes", "scopes");
    let key_id = one(f.key_id, "X-Auth-Key-Id", "key_id");
    let issuer = one(f.issuer, "X-Auth-Issuer", "issuer");
    let cert_sha256 = one(f.cert_sha256, "X-Auth-Cert-Sha256", "cert_sha256");
    let assertion = match assertion {
        None => None,
        Some(a) => Some(header_name(
            a.header.as_deref().unwrap_or("X-Auth-Assertion"),
            "identity.assertion.header",
            diag,
        )?),
    };
    let mut claims = Vec::new();
    for (claim, header) in f.claims {
        if let Some(h) = header_name(&header, &format!("identity.claims.{claim}"), diag) {
            claims.push((claim, h));
        }
    }
    Some(IdentityHeaders {
        subject: subject?,
        method: method?,
        scopes: scopes?,
        key_id: key_id?,
        issuer: issuer?,
        claims,
        cert_sha256: cert_sha256?,
        assertion,
    })
}

pub(super) fn api_keys(
    f: file::ApiKeysFile,
    names: &IdentityHeaders,
    diag: &mut Diagnostics,
) -> ApiKeyIndex {
    let mut index = ApiKeyIndex::default();
    if let Some(h) = f.header.as_deref() {
        if let Some(h) = header_name(h, "api_keys.header", diag) {
            index.header = h;
        }
    }
    let mut ids = HashSet::new();
    for (i, k) in f.keys.into_iter().enumerate() {
        let at = |field: &str| format!("api_keys.keys[{i}].{field}");
        if k.id.is_empty() {
            diag.error(
                &format!("api_keys.keys[{i}]"),
                "every key needs a non-empty `id` (a stable, non-secret name)",
            );
            continue;
        }
        if !ids.insert(k.id.clone()) {
            diag.error(
                &at("id"),
                format!("key id `{}` is used twice; ids must be unique", k.id),
            );
        }
        let digest = match parse_digest(&k.sha256) {
            Ok(d) => d,
            Err(m) => {
                diag.error(&at("sha256"), m);
                continue;
            }
        };
        let expires = expires(&k, &at("expires"), diag);
        check_scopes(&k.scopes, &at("scopes"), diag);
        let subject = k.subject.as_deref().unwrap_or(&k.id);
        // Both go upstream as header values and into the log.
        for (field, value) in [("id", k.id.as_str()), ("subject", subject)] {
            printable(value, &at(field), diag);
        }
        let identity = IdentityParts {
            method: Kind::ApiKey,
            subject: subject.into(),
            scopes: k.scopes.iter().map(|s| Arc::from(s.as_str())).collect(),
            key_id: Some(k.id.as_str().into()),
            issuer: None,
            rate_limit: k.rate_limit.as_deref().map(Arc::from),
            token: None,
            claims: None,
        }
        .build(names);
        // The printable-ASCII check above has already named the field.
        let Ok(identity) = identity else { continue };
        let entry = ApiKeyEntry {
            identity: Arc::new(identity),
            expires,
            disabled: k.disabled,
        };
        if index.by_digest.insert(digest, Arc::new(entry)).is_some() {
            diag.error(
                &at("sha256"),
                "two keys have the same sha256; each key must be distinct",
            );
        }
    }
    index
}

/// A key's `expires`, with the rotation warnings `check` prints.
fn expires(k: &file::ApiKeyFile, path: &str, diag: &mut Diagnostics) -> Option<SystemTime> {
    let expires = match k.expires.as_deref().map(humantime::parse_rfc3339) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            diag.error(
                path,
                "`expires` must be an RFC 3339 UTC time such as 2027-01-31T00:00:00Z",
            );
            None
        }
    };
    if let Some(t) = expires {
        expiry_warning(&k.id, t, path, diag);
    }
    expires
}

/// Values sent upstream in a header must be printable ASCII.
fn printable(value: &str, path: &str, diag: &mut Diagnostics) {
    if !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        diag.error(
            path,
            format!("`{value}` must be printable ASCII: it is sent upstream in a header"),
        );
    }
}

/// Keys already expired, or expiring within this, are named by `check`.
pub const KEY_EXPIRY_WARNING: std::time::Duration = std::time::Duration::from_secs(14 * 86_400);

/// Forced rotation: a key past or near its `expires` is named with its date.
fn expiry_warning(id: &str, expires: std::time::SystemTime, path: &str, diag: &mut Diagnostics) {
    let date = humantime::format_rfc3339_seconds(expires);
    let now = std::time::SystemTime::now();
    if expires <= now {
        diag.warning(path, format!("API key `{id}` expired at {date}; it is refused, so rotate it (authgate keygen) and remove this entry"));
    } else if expires <= now + KEY_EXPIRY_WARNING {
        diag.warning(path, format!("API key `{id}` expires at {date}, within 14 days; issue its successor with authgate keygen"));
    }
}
