//! File model → immutable `Snapshot`. Every check records its error and goes
//! on, so one run of `authgate check` lists every problem in the file.

use super::file::{self, FileConfig};
use super::Diagnostics;
use crate::auth::api_key::{parse_digest, ApiKeyEntry, ApiKeyIndex};
use crate::auth::{IdentityParts, Method as AuthMethod};
use crate::snapshot::*;
use http::HeaderName;
use ipnet::IpNet;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) fn compile(
    file: FileConfig,
    diag: &mut Diagnostics,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Snapshot> {
    let resolve = |p: PathBuf| {
        if p.is_absolute() {
            p
        } else {
            base_dir.join(p)
        }
    };
    let admin = super::operations::admin(file.admin, diag, env);
    let (limits, redis_url) = super::operations::rate_limits(file.rate_limits, diag, env);
    if let Some(r) = &file.revocation {
        match r.backend.as_deref() {
            None | Some("memory") => {}
            Some("redis") if redis_url.is_some() => {}
            Some("redis") => diag.error("revocation.backend", "`revocation.backend: redis` uses the Redis of `rate_limits`; set `rate_limits.backend: redis` and `redis_url_env` too"),
            Some(other) => diag.error("revocation.backend", format!("`{other}` is not a backend; write `memory` or `redis`")),
        }
    }
    let revocation_max_entries = match file.revocation.as_ref().and_then(|r| r.max_entries) {
        Some(0) => {
            diag.error("revocation.max_entries", "`max_entries: 0` would refuse every revocation; give a bound of at least 1 (default 100000)");
            crate::revocation::DEFAULT_MAX_ENTRIES
        }
        Some(n) => n,
        None => crate::revocation::DEFAULT_MAX_ENTRIES,
    };
    let token_cache_entries = file.server.token_cache_entries;
    let server = server(file.server, diag, &resolve);
    let upstream = upstream(file.upstream, diag, &resolve);
    // On error the defaults stand in, so the rest of the file is still checked.
    let identity = identity(file.identity, diag).unwrap_or_default();
    // A section that is present configures its kind even when empty: a
    // route may name it before the first key or issuer is added.
    let kinds = KindSet {
        api_key: file.api_keys.is_some(),
        jwt: file.jwt.is_some(),
        introspection: file.introspection.is_some(),
    };
    let api_keys = api_keys(file.api_keys.unwrap_or_default(), &identity, diag);
    let mut jwt = super::tokens::issuers(file.jwt.unwrap_or_default(), diag, &resolve, env);
    jwt.cache_capacity = token_cache_entries.unwrap_or(crate::auth::token_cache::DEFAULT_CAPACITY);
    let introspection =
        super::tokens::introspection(file.introspection.unwrap_or_default(), diag, &resolve, env);
    let routes = super::routes::routes(file.routes, kinds, &limits, diag);
    super::operations::check_limit_names(&api_keys, &jwt, &limits, diag);
    let access_log = access_log(file.access_log, diag, &resolve);
    Some(Snapshot {
        source: PathBuf::new(),
        server: server?,
        upstream: upstream?,
        identity,
        api_keys,
        jwt,
        introspection,
        routes,
        access_log: access_log?,
        kinds,
        admin,
        limits,
        redis_url,
        revocation_max_entries,
    })
}

fn server(
    f: file::ServerFile,
    diag: &mut Diagnostics,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Option<ServerSettings> {
    let listen = parse_addr(
        f.listen.as_deref().unwrap_or(DEFAULT_LISTEN),
        "server.listen",
        diag,
    );
    let tls = match f.tls {
        None => {
            diag.error("server", "`server.tls` is required: authgate serves HTTPS only; for a development certificate set `generate_self_signed: true` with `cert` and `key` paths");
            None
        }
        Some(t) => {
            let tls13_only = match t.min_version.as_deref() {
                None | Some("1.2") => Some(false),
                Some("1.3") => Some(true),
                Some(other) => {
                    diag.error("server.tls.min_version", format!("`{other}` is not a TLS version authgate offers; write \"1.2\" or \"1.3\" (quoted)"));
                    None
                }
            };
            if t.cert.is_none() {
                diag.error(
                    "server.tls",
                    "`server.tls.cert` is required: the path of the PEM certificate chain",
                );
            }
            if t.key.is_none() {
                diag.error(
                    "server.tls",
                    "`server.tls.key` is required: the path of the PEM private key",
                );
            }
            match (t.cert, t.key, tls13_only) {
                (Some(cert), Some(key), Some(tls13_only)) => Some(TlsSettings {
                    cert: resolve(cert),
                    key: resolve(key),
                    generate_self_signed: t.generate_self_signed,
                    tls13_only,
                    client_ca: t.client_ca.map(resolve),
                }),
                _ => None,
            }
        }
    };
    let workers = match &f.workers {
        None => Some(None),
        Some(serde_yaml::Value::String(s)) if s == "auto" => Some(None),
        Some(serde_yaml::Value::Number(n))
            if n.as_u64().is_some_and(|n| (1..=1024).contains(&n)) =>
        {
            n.as_u64().map(|n| Some(n as usize))
        }
        Some(_) => {
            diag.error(
                "server.workers",
                "`workers` must be `auto` or a number of threads from 1 to 1024",
            );
            None
        }
    };
    let max_header_bytes = f
        .max_header_bytes
        .map_or(DEFAULT_MAX_HEADER_BYTES as u64, |b| b.0);
    if !(1024..=1 << 20).contains(&max_header_bytes) {
        diag.error(
            "server.max_header_bytes",
            "`max_header_bytes` must be between 1KiB and 1MiB",
        );
    }
    let mut trusted_proxies = Vec::new();
    for (i, cidr) in f.trusted_proxies.iter().enumerate() {
        let parsed = cidr
            .parse::<IpNet>()
            .or_else(|_| cidr.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => trusted_proxies.push(net),
            Err(_) => diag.error(
                &format!("server.trusted_proxies[{i}]"),
                format!("`{cidr}` is not a CIDR or IP address; write e.g. 10.0.0.0/8 or 192.0.2.7"),
            ),
        }
    }
    Some(ServerSettings {
        listen: listen?,
        tls: tls?,
        workers: workers?,
        header_read_timeout: f
            .header_read_timeout
            .map_or(DEFAULT_HEADER_READ_TIMEOUT, |d| d.0),
        idle_timeout: f.idle_timeout.map_or(DEFAULT_IDLE_TIMEOUT, |d| d.0),
        max_header_bytes: max_header_bytes as usize,
        max_body_bytes: f.max_body_bytes.map_or(DEFAULT_MAX_BODY_BYTES, |b| b.0),
        shutdown_grace: f.shutdown_grace.map_or(DEFAULT_SHUTDOWN_GRACE, |d| d.0),
        trusted_proxies,
        max_connections: f.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS).max(1),
        body_timeout: f.body_timeout.map_or(DEFAULT_BODY_TIMEOUT, |d| d.0),
    })
}

pub(super) fn parse_addr(text: &str, path: &str, diag: &mut Diagnostics) -> Option<SocketAddr> {
    match text.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            diag.error(
                path,
                format!(
                    "`{text}` is not an address; write IP:PORT such as 127.0.0.1:8443 or [::]:443"
                ),
            );
            None
        }
    }
}

fn upstream(
    f: Option<file::UpstreamFile>,
    diag: &mut Diagnostics,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Option<UpstreamSettings> {
    let Some(f) = f else {
        diag.error(
            "",
            "`upstream` is required: set `upstream.url` to your API (http://host:port) or `echo`",
        );
        return None;
    };
    let target = match f.url.as_deref() {
        None => {
            diag.error(
                "upstream",
                "`upstream.url` is required: http://host:port, https://host:port or `echo`",
            );
            None
        }
        Some("echo") => Some(UpstreamTarget::Echo),
        Some(url) => parse_upstream_url(url)
            .map_err(|m| diag.error("upstream.url", m))
            .ok(),
    };
    Some(UpstreamSettings {
        target: target?,
        connect_timeout: f
            .connect_timeout
            .map_or(DEFAULT_UPSTREAM_CONNECT_TIMEOUT, |d| d.0),
        timeout: f.timeout.map_or(DEFAULT_UPSTREAM_TIMEOUT, |d| d.0),
        ca: f.ca.map(resolve),
        pass_credentials: f.pass_credentials,
    })
}

fn parse_upstream_url(url: &str) -> Result<UpstreamTarget, String> {
    let bad = || {
        format!("`{url}` is not an upstream URL; write http://host:port or https://host:port (a path prefix is allowed), or `echo`")
    };
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    let scheme = uri.scheme().cloned().ok_or_else(bad)?;
    if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
        return Err(bad());
    }
    let authority = uri.authority().cloned().ok_or_else(bad)?;
    if uri.query().is_some() || authority.as_str().contains('@') {
        return Err(format!("`{url}` may not carry a query or user info"));
    }
    Ok(UpstreamTarget::Http {
        scheme,
        authority,
        base_path: uri.path().trim_end_matches('/').to_string(),
    })
}

fn header_name(text: &str, path: &str, diag: &mut Diagnostics) -> Option<HeaderName> {
    match HeaderName::from_bytes(text.as_bytes()) {
        Ok(h) => Some(h),
        Err(_) => {
            diag.error(path, format!("`{text}` is not a valid header name"));
            None
        }
    }
}

fn identity(f: file::IdentityFile, diag: &mut Diagnostics) -> Option<IdentityHeaders> {
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
    })
}

fn api_keys(f: file::ApiKeysFile, names: &IdentityHeaders, diag: &mut Diagnostics) -> ApiKeyIndex {
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
        let expires = match k.expires.as_deref().map(humantime::parse_rfc3339) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(_)) => {
                diag.error(
                    &at("expires"),
                    "`expires` must be an RFC 3339 UTC time such as 2027-01-31T00:00:00Z",
                );
                None
            }
        };
        if let Some(t) = expires {
            expiry_warning(&k.id, t, &at("expires"), diag);
        }
        check_scopes(&k.scopes, &at("scopes"), diag);
        let subject = k.subject.as_deref().unwrap_or(&k.id);
        // Both go upstream as header values and into the log.
        for (field, value) in [("id", k.id.as_str()), ("subject", subject)] {
            if !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
                diag.error(
                    &at(field),
                    format!("`{value}` must be printable ASCII: it is sent upstream in a header"),
                );
            }
        }
        let identity = IdentityParts {
            method: AuthMethod::ApiKey,
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

pub(super) fn check_scopes(scopes: &[String], path: &str, diag: &mut Diagnostics) {
    for (i, s) in scopes.iter().enumerate() {
        // RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`.
        if s.is_empty()
            || !s
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        {
            diag.error(
                &format!("{path}[{i}]"),
                format!("`{s}` is not a scope; scopes are non-empty and have no spaces or quotes"),
            );
        }
    }
}

fn access_log(
    f: file::AccessLogFile,
    diag: &mut Diagnostics,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Option<AccessLogSettings> {
    let format = match f.format.as_deref() {
        None | Some("json") => Some(AccessLogFormat::Json),
        Some("common") => Some(AccessLogFormat::Common),
        Some(other) => {
            diag.error(
                "access_log.format",
                format!("`{other}` is not a log format; write `json` or `common`"),
            );
            None
        }
    };
    let output = match f.output.as_deref() {
        None | Some("stdout") => AccessLogOutput::Stdout,
        Some(path) => AccessLogOutput::File(resolve(PathBuf::from(path))),
    };
    Some(AccessLogSettings {
        format: format?,
        output,
    })
}
