//! Compiling the token sections: `jwt` issuers and `introspection` endpoints.

use super::diagnostics::Diagnostics;
use super::file::{IntrospectionFile, IssuerFile};
use super::values::parse_url;
use crate::auth::introspection::{Endpoint, Introspector};
use crate::auth::jwks::{KeySet, RemoteRef, RemoteSource, RemoteSpec};
use crate::auth::jwt::{Issuer, IssuerKeys, JwtVerifier};
use crate::secret::Secret;
use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(600);
pub const DEFAULT_INTROSPECTION_CACHE_TTL: Duration = Duration::from_secs(60);
/// RFC 7518 §3.2: an HMAC key at least as long as the hash output of HS256.
pub const MIN_HS_SECRET_BYTES: usize = 32;

/// `iss` and `aud` are always required; naming them is allowed and changes nothing.
const CLAIMS_WE_CAN_REQUIRE: [&str; 7] = ["exp", "nbf", "iat", "sub", "iss", "aud", "jti"];

/// Reads a secret from the environment variable the policy names.
pub(super) fn secret_from_env(
    var: &str,
    path: &str,
    min_len: usize,
    env: &dyn Fn(&str) -> Option<String>,
    diag: &mut Diagnostics,
) -> Option<Secret<String>> {
    match env(var) {
        None => {
            diag.error(
                path,
                format!(
                    "environment variable {var} is not set; export it before starting authgate"
                ),
            );
            None
        }
        Some(v) if v.len() < min_len => {
            diag.error(
                path,
                format!(
                    "the secret in {var} is {} bytes; it must be at least {min_len}",
                    v.len()
                ),
            );
            None
        }
        Some(v) => Some(Secret::new(v)),
    }
}

pub(super) fn issuers(
    files: Vec<IssuerFile>,
    diag: &mut Diagnostics,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
) -> JwtVerifier {
    let mut issuers = HashMap::new();
    for (i, f) in files.into_iter().enumerate() {
        let at = |field: &str| format!("jwt[{i}].{field}");
        if let Some(issuer) = issuer(f, &at, diag, resolve, env) {
            let name = issuer.issuer.to_string();
            if issuers.insert(name.clone(), issuer).is_some() {
                diag.error(&at("issuer"), format!("issuer `{name}` is listed twice; `iss` selects the issuer, so each must be unique"));
            }
        }
    }
    JwtVerifier {
        issuers,
        cache_capacity: crate::auth::token_cache::DEFAULT_CAPACITY,
    }
}

pub(super) fn issuer(
    f: IssuerFile,
    at: &dyn Fn(&str) -> String,
    diag: &mut Diagnostics,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Issuer> {
    let errors_before = diag.error_count();
    // Every field as written; the key material itself joins below.
    let written = format!("{f:?}");
    if f.issuer.is_empty() {
        diag.error(
            &at("issuer"),
            "`issuer` is required: the exact `iss` value of this issuer's tokens",
        );
    }
    if f.audiences.is_empty() {
        diag.error(&at("audiences"), "`audiences` is required: the `aud` values that mean this API (a token for another API must not pass)");
    }
    let sources = [
        f.jwks_url.is_some(),
        f.discovery_url.is_some(),
        f.jwks_file.is_some(),
        f.hs_secret_env.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        diag.error(
            &at("issuer"),
            "set exactly one of `jwks_url`, `discovery_url`, `jwks_file`, `hs_secret_env`",
        );
        return None;
    }
    let algorithms = algorithms(&f, at, diag);
    let require = required_claims(&f, at, diag);
    let keys = issuer_keys(&f, at, diag, resolve, env);
    let leeway = f.leeway.map_or(DEFAULT_LEEWAY, |d| d.0);
    if diag.error_count() > errors_before {
        return None;
    }
    let enforced: Vec<&'static str> = crate::auth::jwt::REQUIRABLE_CLAIMS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| require.iter().any(|r| r == name))
        .collect();
    let validations = validations(&f, &algorithms, &require, leeway);
    let keys = keys?;
    let static_digest = match &keys {
        IssuerKeys::Static(set) => set.digest,
        IssuerKeys::Remote(_) => [0; 32],
    };
    let fingerprint = crate::secret::sha256(&[written.as_bytes(), &static_digest].concat());
    Some(Issuer {
        issuer: f.issuer.as_str().into(),
        fingerprint: u64::from_le_bytes(fingerprint[..8].try_into().unwrap_or_default()),
        keys,
        validations,
        leeway,
        scope_claim: f.scope_claim.unwrap_or_else(|| "scope".into()),
        subject_claim: f.subject_claim.unwrap_or_else(|| "sub".into()),
        rate_limit: f.rate_limit.as_deref().map(Arc::from),
        required: enforced,
        max_lifetime: f.max_lifetime.map(|d| d.0),
    })
}

/// The allowed algorithms. An HS algorithm beside public keys is refused:
/// a token signed with the public key as HMAC secret would pass
/// (algorithm confusion).
fn algorithms(
    f: &IssuerFile,
    at: &dyn Fn(&str) -> String,
    diag: &mut Diagnostics,
) -> Vec<Algorithm> {
    let symmetric = f.hs_secret_env.is_some();
    let mut algorithms = Vec::new();
    if f.algorithms.is_empty() {
        diag.error(
            &at("algorithms"),
            "`algorithms` is required, e.g. [RS256]; `none` is never allowed",
        );
    }
    for (j, name) in f.algorithms.iter().enumerate() {
        let path = format!("{}[{j}]", at("algorithms"));
        match name.parse::<Algorithm>() {
            Err(_) => diag.error(&path, format!("`{name}` is not an algorithm authgate accepts (HS256/384/512, RS256/384/512, PS256/384/512, ES256/384, EdDSA); `none` is never allowed")),
            Ok(alg) if (alg.family() == AlgorithmFamily::Hmac) != symmetric => diag.error(
                &path,
                if symmetric {
                    format!("`{name}` needs public keys; an `hs_secret_env` issuer can only use HS256/384/512")
                } else {
                    format!("`{name}` is an HMAC algorithm; it is only allowed with `hs_secret_env`, never with public keys")
                },
            ),
            Ok(alg) => algorithms.push(alg),
        }
    }
    algorithms
}

/// `require_claims` as written (default `[exp]`), each one checked.
fn required_claims(
    f: &IssuerFile,
    at: &dyn Fn(&str) -> String,
    diag: &mut Diagnostics,
) -> Vec<String> {
    let require = f
        .require_claims
        .clone()
        .unwrap_or_else(|| vec!["exp".into()]);
    for (j, claim) in require.iter().enumerate() {
        if !CLAIMS_WE_CAN_REQUIRE.contains(&claim.as_str()) {
            diag.error(
                &format!("{}[{j}]", at("require_claims")),
                format!(
                    "`{claim}` cannot be required; choose from {}",
                    CLAIMS_WE_CAN_REQUIRE.join(", ")
                ),
            );
        }
    }
    require
}

/// The issuer's keys: an HS secret or a JWKS file read now, or a reference
/// to a remote set that the gateway's registry fetches.
fn issuer_keys(
    f: &IssuerFile,
    at: &dyn Fn(&str) -> String,
    diag: &mut Diagnostics,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<IssuerKeys> {
    let ca = f.ca.clone().map(resolve);
    let refresh = f.jwks_refresh.map_or(DEFAULT_JWKS_REFRESH, |d| d.0);
    let remote = |source: RemoteSource, diag: &mut Diagnostics| -> Option<IssuerKeys> {
        // Read now so `check` names a bad file; the client is built at load.
        if let Some(ca) = &ca {
            crate::tls::client_tls_config(Some(ca))
                .map_err(|e| diag.error(&at("ca"), e.to_string()))
                .ok()?;
        }
        let spec = RemoteSpec {
            issuer: f.issuer.clone(),
            source,
            ca: ca.clone(),
        };
        Some(IssuerKeys::Remote(Arc::new(RemoteRef::new(spec, refresh))))
    };
    if let Some(var) = &f.hs_secret_env {
        secret_from_env(var, &at("hs_secret_env"), MIN_HS_SECRET_BYTES, env, diag)
            .map(|s| IssuerKeys::Static(Arc::new(KeySet::hmac(s.expose().as_bytes()))))
    } else if let Some(file) = &f.jwks_file {
        let path = resolve(file.clone());
        match std::fs::read(&path) {
            Err(e) => {
                diag.error(
                    &at("jwks_file"),
                    format!("cannot read {}: {e}", path.display()),
                );
                None
            }
            Ok(doc) => KeySet::from_jwks(&doc, 1)
                .map(|k| IssuerKeys::Static(Arc::new(k)))
                .map_err(|e| diag.error(&at("jwks_file"), format!("{}: {e}", path.display())))
                .ok(),
        }
    } else if let Some(url) = &f.jwks_url {
        parse_url(url, &at("jwks_url"), diag).and_then(|u| remote(RemoteSource::Jwks(u), diag))
    } else if let Some(url) = &f.discovery_url {
        parse_url(url, &at("discovery_url"), diag)
            .and_then(|u| remote(RemoteSource::Discovery(u), diag))
    } else {
        None
    }
}

/// One prepared `Validation` per allowed algorithm.
fn validations(
    f: &IssuerFile,
    algorithms: &[Algorithm],
    require: &[String],
    leeway: Duration,
) -> Vec<(Algorithm, Validation)> {
    let mut required: Vec<&str> = require.iter().map(String::as_str).collect();
    // Requiring `aud` makes a wrongly typed `aud` fail instead of being skipped.
    required.push("aud");
    algorithms
        .iter()
        .map(|alg| {
            let mut v = Validation::new(*alg);
            v.leeway = leeway.as_secs();
            // exp is checked whenever present; `require_claims` decides if it must be.
            v.validate_exp = true;
            v.validate_nbf = true;
            v.set_audience(&f.audiences);
            v.set_issuer(&[&f.issuer]);
            v.set_required_spec_claims(&required);
            (*alg, v)
        })
        .collect()
}

pub(super) fn introspection(
    files: Vec<IntrospectionFile>,
    diag: &mut Diagnostics,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
) -> Introspector {
    let mut endpoints = Vec::new();
    for (i, f) in files.into_iter().enumerate() {
        let at = |field: &str| format!("introspection[{i}].{field}");
        let uri = parse_url(&f.endpoint, &at("endpoint"), diag);
        if f.client_id.is_empty() {
            diag.error(
                &at("client_id"),
                "`client_id` is required: the gateway's client id at the authorization server",
            );
        }
        let secret = match &f.client_secret_env {
            Some(var) => secret_from_env(var, &at("client_secret_env"), 1, env, diag),
            None => {
                diag.error(&at("endpoint"), "`client_secret_env` is required: the variable holding the gateway's client secret");
                None
            }
        };
        let ca = f.ca.map(resolve);
        // Read now so `check` names a bad file; the client is built at load.
        let ca_ok = match &ca {
            Some(path) => crate::tls::client_tls_config(Some(path))
                .map_err(|e| diag.error(&at("ca"), e.to_string()))
                .is_ok(),
            None => true,
        };
        if let (Some(uri), Some(client_secret), true) = (uri, secret, ca_ok) {
            endpoints.push(Endpoint {
                uri,
                client_id: f.client_id,
                client_secret,
                cache_ttl: f.cache_ttl.map_or(DEFAULT_INTROSPECTION_CACHE_TTL, |d| d.0),
                ca,
            });
        }
    }
    let fingerprint = Introspector::fingerprint_of(&endpoints);
    Introspector {
        endpoints,
        fingerprint,
    }
}
