//! Compiling `mtls` (client certificates as credentials) and
//! `identity.assertion` (the signed statement sent upstream).

use super::diagnostics::Diagnostics;
use super::file::{AssertionFile, MtlsFile};
use super::operations::unknown_limit;
use super::values::check_scopes;
use crate::auth::assertion::AssertionSigner;
use crate::auth::assertion_key::AssertionKey;
use crate::auth::mtls::{MtlsPolicy, SubjectSource};
use crate::auth::{IdentityHeaders, IdentityParts, Kind};
use crate::ratelimit::LimitPolicy;
use crate::tls::TlsSettings;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_ASSERTION_TTL: Duration = Duration::from_secs(60);
const ASSERTION_TTL_BOUNDS: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(10)..=Duration::from_secs(3600);

pub(super) fn mtls(
    f: MtlsFile,
    tls: Option<&TlsSettings>,
    names: &IdentityHeaders,
    limits: &LimitPolicy,
    diag: &mut Diagnostics,
) -> MtlsPolicy {
    if tls.is_some_and(|t| t.client_ca.is_none()) {
        diag.error("mtls", "`mtls` needs `server.tls.client_ca`: the PEM bundle of the CA that signs client certificates (without it no client can present one)");
    }
    let subject_from = subject_sources(f.subject_from, diag);
    let mut policy = MtlsPolicy {
        subject_from,
        clients: Default::default(),
    };
    for (i, client) in f.clients.into_iter().enumerate() {
        let at = |field: &str| format!("mtls.clients[{i}].{field}");
        if client.subject.is_empty() {
            diag.error(&at("subject"), "every client needs a non-empty `subject`: the certificate's URI SAN, DNS SAN or CN");
            continue;
        }
        check_scopes(&client.scopes, &at("scopes"), diag);
        if let Some(limit) = client.rate_limit.as_deref() {
            if !limits.named.contains_key(limit) {
                diag.error(&at("rate_limit"), unknown_limit(limit, limits));
            }
        }
        let identity = IdentityParts {
            method: Kind::Mtls,
            subject: client.subject.as_str().into(),
            scopes: client
                .scopes
                .iter()
                .map(|s| Arc::from(s.as_str()))
                .collect(),
            key_id: None,
            issuer: None,
            rate_limit: client.rate_limit.as_deref().map(Arc::from),
            token: None,
            claims: None,
        }
        .build(names);
        let Ok(identity) = identity else {
            diag.error(
                &at("subject"),
                "the subject goes upstream in a header, so it may not hold control characters",
            );
            continue;
        };
        if policy
            .clients
            .insert(client.subject.clone(), Arc::new(identity))
            .is_some()
        {
            diag.error(
                &at("subject"),
                format!(
                    "client `{}` is listed twice; subjects must be unique",
                    client.subject
                ),
            );
        }
    }
    policy
}

/// `mtls.subject_from`: the default order when absent, never empty.
fn subject_sources(list: Option<Vec<String>>, diag: &mut Diagnostics) -> Vec<SubjectSource> {
    let Some(list) = list else {
        return vec![
            SubjectSource::SanUri,
            SubjectSource::SanDns,
            SubjectSource::Cn,
        ];
    };
    if list.is_empty() {
        diag.error("mtls.subject_from", "`subject_from` is empty, so no certificate would have a subject; list one or more of san_uri, san_dns, cn");
    }
    list.iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let source = SubjectSource::parse(name);
            if source.is_none() {
                diag.error(
                    &format!("mtls.subject_from[{i}]"),
                    format!("`{name}` is not a certificate name; write san_uri, san_dns or cn"),
                );
            }
            source
        })
        .collect()
}

pub(super) fn assertion(
    f: AssertionFile,
    names: &IdentityHeaders,
    diag: &mut Diagnostics,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Option<AssertionSigner> {
    let key = match f.key {
        None => {
            diag.error("identity.assertion", "`key` is required: a PKCS#8 EC P-256 or Ed25519 key file; write one with `authgate certs --assertion-key certs/assertion-key.pem`");
            None
        }
        Some(path) => AssertionKey::load(&resolve(path))
            .map_err(|m| diag.error("identity.assertion.key", m))
            .ok(),
    };
    let published: Vec<AssertionKey> = f
        .published_keys
        .into_iter()
        .enumerate()
        .filter_map(|(i, path)| {
            AssertionKey::load(&resolve(path))
                .map_err(|m| diag.error(&format!("identity.assertion.published_keys[{i}]"), m))
                .ok()
        })
        .collect();
    let audience = f.audience.filter(|a| !a.is_empty());
    if audience.is_none() {
        diag.error(
            "identity.assertion",
            "`audience` is required: the `aud` the upstream checks, e.g. `orders-api`",
        );
    }
    let issuer = f.issuer.unwrap_or_else(|| "authgate".into());
    if issuer.is_empty() {
        diag.error("identity.assertion.issuer", "`issuer` may not be empty");
    }
    let ttl = f.ttl.map_or(DEFAULT_ASSERTION_TTL, |d| d.0);
    if !ASSERTION_TTL_BOUNDS.contains(&ttl) {
        diag.error(
            "identity.assertion.ttl",
            "`ttl` must be from 10s to 1h: long enough to be reused, short enough that a leaked assertion soon expires",
        );
    }
    Some(AssertionSigner::new(
        names.assertion.clone()?,
        issuer,
        audience?,
        ttl.as_secs(),
        key?,
        &published,
    ))
}
