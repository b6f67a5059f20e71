//! The process's own settings: the listener and its limits, TLS, the
//! upstream, the access log.

use super::diagnostics::Diagnostics;
use super::file;
use super::values::{cidrs, parse_addr};
use crate::access_log::{AccessLogFormat, AccessLogOutput, AccessLogSettings};
use crate::forward::{UpstreamSettings, UpstreamTarget};
use crate::snapshot::*;
use crate::tls::TlsSettings;
use std::path::PathBuf;

pub(super) fn server(
    f: file::ServerFile,
    diag: &mut Diagnostics,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Option<ServerSettings> {
    let listen = parse_addr(
        f.listen.as_deref().unwrap_or(DEFAULT_LISTEN),
        "server.listen",
        diag,
    );
    let tls = tls(f.tls, diag, resolve);
    let workers = workers(f.workers.as_ref(), diag);
    let max_header_bytes = f
        .max_header_bytes
        .map_or(DEFAULT_MAX_HEADER_BYTES as u64, |b| b.0);
    if !(1024..=1 << 20).contains(&max_header_bytes) {
        diag.error(
            "server.max_header_bytes",
            "`max_header_bytes` must be between 1KiB and 1MiB",
        );
    }
    let trusted_proxies = cidrs(&f.trusted_proxies, "server.trusted_proxies", diag);
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

fn tls(
    f: Option<file::TlsFile>,
    diag: &mut Diagnostics,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Option<TlsSettings> {
    match f {
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
            let client_auth_optional = client_auth(t.client_auth.as_deref(), &t, diag);
            let client_ca = t.client_ca.map(resolve);
            let client_crl = t.client_crl.map(resolve);
            if let Some(ca) = &client_ca {
                if let Err(e) = crate::tls::client_roots(ca) {
                    diag.error("server.tls.client_ca", format!("{e}; give a PEM bundle of the CA certificates that sign client certificates"));
                }
            }
            if let Some(crl) = &client_crl {
                if let Err(e) = crate::tls::client_crls(crl) {
                    diag.error(
                        "server.tls.client_crl",
                        format!("{e}; give a PEM file of `X509 CRL` blocks from the client CA"),
                    );
                }
            }
            match (t.cert, t.key, tls13_only, client_auth_optional) {
                (Some(cert), Some(key), Some(tls13_only), Some(client_auth_optional)) => {
                    Some(TlsSettings {
                        cert: resolve(cert),
                        key: resolve(key),
                        generate_self_signed: t.generate_self_signed,
                        tls13_only,
                        client_ca,
                        client_auth_optional,
                        client_crl,
                    })
                }
                _ => None,
            }
        }
    }
}

/// `server.tls.client_auth`: whether a client may present no certificate.
fn client_auth(value: Option<&str>, t: &file::TlsFile, diag: &mut Diagnostics) -> Option<bool> {
    if t.client_ca.is_none() {
        for (key, set) in [
            ("client_auth", value.is_some()),
            ("client_crl", t.client_crl.is_some()),
        ] {
            if set {
                diag.error(&format!("server.tls.{key}"), format!("`{key}` applies to client certificates, which need `client_ca` (the CA that signs them); set `client_ca` or remove `{key}`"));
            }
        }
    }
    match value {
        None | Some("required") => Some(false),
        Some("optional") => Some(true),
        Some(other) => {
            diag.error(
                "server.tls.client_auth",
                format!(
                    "`{other}` is not a client-certificate mode; write `required` or `optional`"
                ),
            );
            None
        }
    }
}

/// `None` inside means one per core.
fn workers(f: Option<&serde_yaml::Value>, diag: &mut Diagnostics) -> Option<Option<usize>> {
    match f {
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
    }
}

pub(super) fn upstream(
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

pub(super) fn access_log(
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
