//! Checks of single values that several sections share: addresses, header
//! names, URLs, scopes, CIDRs. Each reports through `Diagnostics` and
//! returns `None` when the value is unusable.

use super::diagnostics::Diagnostics;
use http::HeaderName;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

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

pub(super) fn header_name(text: &str, path: &str, diag: &mut Diagnostics) -> Option<HeaderName> {
    match HeaderName::from_bytes(text.as_bytes()) {
        Ok(h) => Some(h),
        Err(_) => {
            diag.error(path, format!("`{text}` is not a valid header name"));
            None
        }
    }
}

pub(super) fn parse_url(text: &str, path: &str, diag: &mut Diagnostics) -> Option<http::Uri> {
    match text.parse::<http::Uri>() {
        Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some() => {
            Some(u)
        }
        _ => {
            diag.error(path, format!("`{text}` is not an http:// or https:// URL"));
            None
        }
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

/// A list of CIDRs (a bare IP is its own /32 or /128).
pub(super) fn cidrs(list: &[String], path: &str, diag: &mut Diagnostics) -> Vec<IpNet> {
    let mut nets = Vec::new();
    for (i, cidr) in list.iter().enumerate() {
        let parsed = cidr
            .parse::<IpNet>()
            .or_else(|_| cidr.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => nets.push(net),
            Err(_) => diag.error(
                &format!("{path}[{i}]"),
                format!("`{cidr}` is not a CIDR or IP address; write e.g. 10.0.0.0/8 or 192.0.2.7"),
            ),
        }
    }
    nets
}
