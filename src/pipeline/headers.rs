//! Header hygiene: what callers may not send (docs/requests.md step 3), hop-by-hop
//! removal (RFC 9110 §7.6.1) and the headers the gateway adds (step 8).

use crate::auth::Identity;
use crate::auth::IdentityHeaders;
use crate::snapshot::ServerSettings;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONNECTION, HOST};
use http::HeaderMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// RFC 9110 §7.6.1 plus the de-facto ones (`Keep-Alive`, `Proxy-Connection`).
/// Parsed names, not strings: a lookup by `&str` parses and hashes the
/// string again each time, and this runs twice per request.
const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
];

/// Removes hop-by-hop headers, including every header `Connection` names.
/// Runs before the gateway adds its own headers, so `Connection: X-Auth-Subject`
/// can never remove what the gateway sets.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them: one pass over the few names says so.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        // Host routes the request; no client gets to drop it this way.
        if name != HOST {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Headers upstream frameworks act on that only a trusted hop may set: ones
/// that rewrite the path or method after the gateway judged it (IIS, Symfony,
/// Zend, Rails, Express method-override), and ones that claim a client
/// address or scheme (upstream IP allow-lists, "is this HTTPS" checks).
const SPOOFABLE: [&str; 19] = [
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-forwarded-prefix",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-forwarded-port",
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "front-end-https",
];

/// Removes every `X-Auth-*` header (any case), every identity header, and
/// the headers that rewrite the request or claim a client address (docs/requests.md step 3).
pub fn strip_identity(headers: &mut HeaderMap, identity: &IdentityHeaders) {
    let reserved: Vec<HeaderName> = headers
        .keys()
        .filter(|name| identity.is_reserved(name) || SPOOFABLE.contains(&name.as_str()))
        .cloned()
        .collect();
    for name in reserved {
        headers.remove(name);
    }
}

/// Removes the caller's credential headers (unless `pass_credentials`).
pub fn strip_credentials(headers: &mut HeaderMap, key_header: &HeaderName) {
    // A look at the few names present is cheaper than hashing two that are
    // usually absent (routes without auth, or the other credential).
    for name in [&AUTHORIZATION, key_header] {
        if headers.keys().any(|present| present == name) {
            headers.remove(name);
        }
    }
}

/// Sets the identity headers for an authenticated caller (encoded once, when
/// the identity was built).
pub fn add_identity(headers: &mut HeaderMap, id: &Identity) {
    for (name, value) in &id.headers {
        headers.insert(name.clone(), value.clone());
    }
}

/// Everything said upstream about an admitted caller: its identity headers,
/// its certificate's fingerprint (`mtls`), the signed assertion. An
/// assertion that cannot be signed fails the request rather than let it
/// through without one.
pub fn add_caller(
    headers: &mut HeaderMap,
    auth: &crate::auth::AuthPolicy,
    identity: &Identity,
    cert: Option<&crate::auth::mtls::ClientCert>,
    assertions: &crate::auth::assertion::AssertionCache,
) -> Result<(), crate::error::GatewayError> {
    add_identity(headers, identity);
    if let (crate::auth::Kind::Mtls, Some(cert)) = (identity.method, cert) {
        headers.insert(auth.identity.cert_sha256.clone(), cert.sha256_hex.clone());
    }
    if let Some(signer) = &auth.assertion {
        let now = crate::clock::coarse_unix_now();
        let value = signer.assertion(identity, assertions, now).ok_or(
            crate::error::GatewayError::Unavailable {
                reason: crate::error::Reason::AssertionUnavailable,
            },
        )?;
        headers.insert(signer.header.clone(), value);
    }
    Ok(())
}

/// The address of the real client: the peer, or, when the peer is a trusted
/// proxy, the right-most `X-Forwarded-For` entry that is not one (docs/requests.md step 7).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: impl Fn(IpAddr) -> bool) -> IpAddr {
    if !trusted(peer) {
        return peer;
    }
    let mut candidate = peer;
    let entries: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for entry in entries.iter().rev() {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        candidate = ip;
        if !trusted(ip) {
            break;
        }
    }
    candidate
}

/// Sets `X-Forwarded-For/Proto/Host`. A trusted proxy's `X-Forwarded-For` is
/// kept and appended to; anyone else's is replaced.
pub fn add_forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    requested_host: Option<HeaderValue>,
    server: &ServerSettings,
) {
    let prior = if server.is_trusted_proxy(peer) {
        let joined = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        Some(joined).filter(|j| !j.is_empty())
    } else {
        None
    };
    // Sized once for the longest address; the header takes the string as is.
    let mut xff = Vec::with_capacity(prior.as_ref().map_or(0, |p| p.len() + 2) + 39);
    if let Some(p) = prior {
        xff.extend_from_slice(p.as_bytes());
        xff.extend_from_slice(b", ");
    }
    crate::json_line::push_ip(&mut xff, peer);
    // `insert` replaces every earlier value: a remove first is only needed
    // where nothing takes the name's place.
    match HeaderValue::try_from(xff) {
        Ok(v) => headers.insert(X_FORWARDED_FOR, v),
        Err(_) => headers.remove(&X_FORWARDED_FOR),
    };
    if headers.keys().any(|name| name == FORWARDED) {
        headers.remove(FORWARDED);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
    match requested_host {
        Some(host) => headers.insert(X_FORWARDED_HOST, host),
        None => headers.remove(&X_FORWARDED_HOST),
    };
}

/// A caller's `X-Request-Id` is kept only if it is 1–128 of `A-Za-z0-9._-`.
pub fn valid_request_id(value: &HeaderValue) -> Option<&str> {
    let b = value.as_bytes();
    let ok = (1..=128).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        value.to_str().ok()
    } else {
        None
    }
}

/// Header bytes as they would stand on the wire (`name: value\r\n`).
/// The host the caller asked for: HTTP/2's `:authority`, else `Host`.
pub fn requested_host(parts: &http::request::Parts) -> Option<&str> {
    match parts.uri.authority() {
        Some(authority) => Some(authority.as_str()),
        None => parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| h.parse::<http::uri::Authority>().is_ok()),
    }
}

/// Writes `value` as 16 lower-case hex digits.
fn hex_into(out: &mut [u8], value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out.iter_mut().enumerate().take(16) {
        *byte = DIGITS[((value >> (60 - 4 * i)) & 0xf) as usize];
    }
}

/// Three random words for a new trace and span id. Trace ids must be
/// unique and unguessable enough not to collide, not secret: a per-thread
/// xoshiro256** generator, seeded once from the system's CSPRNG, costs a
/// few nanoseconds where a CSPRNG call per request cost 4% of the bare path.
fn trace_random() -> (u64, u64, u64) {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<[u64; 4]> = Cell::new({
            let mut seed = [0u8; 32];
            let _ = aws_lc_rs::rand::fill(&mut seed);
            let word = |i: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&seed[i * 8..i * 8 + 8]);
                u64::from_le_bytes(w)
            };
            // xoshiro's state must not be all zero.
            [word(0) | 1, word(1), word(2), word(3)]
        });
    }
    STATE.with(|state| {
        let mut s = state.get();
        let mut next = || {
            let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
            let t = s[1] << 17;
            s[2] ^= s[0];
            s[3] ^= s[1];
            s[1] ^= s[2];
            s[0] ^= s[3];
            s[2] ^= t;
            s[3] = s[3].rotate_left(45);
            result
        };
        let words = (next(), next(), next());
        state.set(s);
        words
    })
}

pub fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum()
}

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// A W3C Trace Context `traceparent` (version 00 layout): the caller's when
/// valid, else a new trace started here. Its trace id goes into the log.
#[derive(Debug, Clone)]
pub struct TraceParent {
    pub header: HeaderValue,
}

impl TraceParent {
    /// The caller's header if it is one valid `traceparent`, else a fresh
    /// one (random trace and parent ids, sampled).
    pub fn of(headers: &HeaderMap) -> TraceParent {
        let mut values = headers.get_all(&TRACEPARENT).iter();
        match (values.next(), values.next()) {
            (Some(v), None) if valid_traceparent(v.as_bytes()) => TraceParent { header: v.clone() },
            _ => TraceParent::start(),
        }
    }

    fn start() -> TraceParent {
        let (hi, lo, parent) = trace_random();
        // Never the all-zero trace or parent id.
        let (lo, parent) = (lo | 1, parent | 1);
        let mut text = *b"00-00000000000000000000000000000000-0000000000000000-01";
        hex_into(&mut text[3..19], hi);
        hex_into(&mut text[19..35], lo);
        hex_into(&mut text[36..52], parent);
        TraceParent {
            header: HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static(
                "00-00000000000000000000000000000001-0000000000000001-01",
            )),
        }
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> &str {
        self.header
            .to_str()
            .ok()
            .and_then(|t| t.get(3..35))
            .unwrap_or("")
    }
}

/// `version-traceid-parentid-flags` in lower-case hex, none of the ids all
/// zero, version not `ff`; a future version may append fields after a `-`
/// (W3C Trace Context §3.2).
fn valid_traceparent(v: &[u8]) -> bool {
    let hex = |b: &[u8]| {
        b.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    let zero = |b: &[u8]| b.iter().all(|c| *c == b'0');
    if v.len() < 55 || !hex(&v[..2]) || &v[..2] == b"ff" {
        return false;
    }
    let (trace, parent, flags) = (&v[3..35], &v[36..52], &v[53..55]);
    let dashes = v[2] == b'-' && v[35] == b'-' && v[52] == b'-';
    let tail_ok = if &v[..2] == b"00" {
        v.len() == 55
    } else {
        v.len() == 55 || v[55] == b'-'
    };
    dashes && tail_ok && hex(trace) && hex(parent) && hex(flags) && !zero(trace) && !zero(parent)
}

/// The request's id: the caller's, if valid, else a fresh one.
pub fn request_id(headers: &HeaderMap, ids: &RequestIds) -> String {
    headers
        .get(&X_REQUEST_ID)
        .and_then(valid_request_id)
        .map(str::to_string)
        .unwrap_or_else(|| ids.next())
}

/// Request ids: a random per-process prefix and a counter, unique without a
/// random draw per request.
pub struct RequestIds {
    /// The random prefix, already in hex.
    prefix: [u8; 16],
    counter: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        let mut seed = [0u8; 8];
        // A failing system RNG would be caught by TLS first; a zero prefix still yields unique ids.
        let _ = aws_lc_rs::rand::fill(&mut seed);
        let mut prefix = [0u8; 16];
        hex_into(&mut prefix, u64::from_le_bytes(seed));
        RequestIds {
            prefix,
            counter: AtomicU64::new(0),
        }
    }

    /// The prefix in 16 hex digits, then the counter in at least 8 (what
    /// `{:016x}{:08x}` would print, without the formatter's cost).
    pub fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let counter_digits = (16 - n.leading_zeros() as usize / 4).max(8);
        let mut text = [0u8; 32];
        text[..16].copy_from_slice(&self.prefix);
        let mut counter = [0u8; 16];
        hex_into(&mut counter, n);
        text[16..16 + counter_digits].copy_from_slice(&counter[16 - counter_digits..]);
        // Hex digits: always UTF-8; copied whole, not char by char.
        std::str::from_utf8(&text[..16 + counter_digits])
            .unwrap_or_default()
            .to_owned()
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::*;

    fn identity_headers() -> IdentityHeaders {
        IdentityHeaders {
            subject: HeaderName::from_static("x-user"),
            method: HeaderName::from_static("x-auth-method"),
            scopes: HeaderName::from_static("x-auth-scopes"),
            key_id: HeaderName::from_static("x-auth-key-id"),
            issuer: HeaderName::from_static("x-auth-issuer"),
            claims: vec![("email".into(), HeaderName::from_static("x-email"))],
            cert_sha256: HeaderName::from_static("x-client-cert"),
            assertion: Some(HeaderName::from_static("x-assertion")),
        }
    }

    fn server(trusted: &[&str]) -> ServerSettings {
        ServerSettings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls: crate::tls::TlsSettings {
                cert: "c".into(),
                key: "k".into(),
                generate_self_signed: false,
                tls13_only: false,
                client_ca: None,
                client_auth_optional: false,
                client_crl: None,
            },
            workers: None,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            trusted_proxies: trusted.iter().filter_map(|t| t.parse().ok()).collect(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }

    #[test]
    fn traceparents_are_kept_when_valid_and_started_otherwise() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut h = HeaderMap::new();
        h.insert(&TRACEPARENT, HeaderValue::from_static(valid));
        assert_eq!(TraceParent::of(&h).header, valid);
        assert_eq!(
            TraceParent::of(&h).trace_id(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            h.insert(&TRACEPARENT, HeaderValue::from_static(bad));
            let started = TraceParent::of(&h);
            assert_ne!(started.header, bad);
            assert!(
                valid_traceparent(started.header.as_bytes()),
                "{:?}",
                started.header
            );
        }
        let a = TraceParent::of(&HeaderMap::new());
        let b = TraceParent::of(&HeaderMap::new());
        assert_ne!(a.trace_id(), b.trace_id());
    }

    #[test]
    fn strips_x_auth_in_any_case_and_configured_identity_headers() {
        let mut h = HeaderMap::new();
        h.insert("X-AUTH-SUBJECT", HeaderValue::from_static("root"));
        h.insert("x-Auth-Anything", HeaderValue::from_static("1"));
        h.insert("X-User", HeaderValue::from_static("root"));
        h.insert("X-Email", HeaderValue::from_static("a@b"));
        h.insert("X-Client-Cert", HeaderValue::from_static("00"));
        h.insert("X-Assertion", HeaderValue::from_static("forged.jwt.value"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_identity(&mut h, &identity_headers());
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn connection_named_headers_go_but_host_stays() {
        let mut h = HeaderMap::new();
        h.insert(
            CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret, Host"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(HOST, HeaderValue::from_static("api"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(HOST));
    }

    #[test]
    fn forwarded_for_is_replaced_unless_the_peer_is_trusted() {
        let peer: IpAddr = "10.0.0.5".parse().expect("ip");
        let mut h = HeaderMap::new();
        h.insert(&X_FORWARDED_FOR, HeaderValue::from_static("6.6.6.6"));
        add_forwarded(&mut h, peer, None, &server(&[]));
        assert_eq!(
            h.get(&X_FORWARDED_FOR).map(|v| v.as_bytes()),
            Some(&b"10.0.0.5"[..])
        );
        let none = server(&[]);
        assert_eq!(client_ip(peer, &h, |ip| none.is_trusted_proxy(ip)), peer);

        let mut h = HeaderMap::new();
        h.insert(
            &X_FORWARDED_FOR,
            HeaderValue::from_static("6.6.6.6, 198.51.100.7"),
        );
        let trusted = server(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(peer, &h, |ip| trusted.is_trusted_proxy(ip)),
            "198.51.100.7".parse::<IpAddr>().expect("ip")
        );
        add_forwarded(&mut h, peer, None, &trusted);
        assert_eq!(
            h.get(&X_FORWARDED_FOR).map(|v| v.as_bytes()),
            Some(&b"6.6.6.6, 198.51.100.7, 10.0.0.5"[..])
        );
    }

    #[test]
    fn request_ids_are_checked() {
        assert!(valid_request_id(&HeaderValue::from_static("abc-1.2_3")).is_some());
        assert!(valid_request_id(&HeaderValue::from_static("a b")).is_none());
        assert!(valid_request_id(&HeaderValue::from_static("")).is_none());
        let long = "a".repeat(129);
        assert!(valid_request_id(&HeaderValue::from_str(&long).expect("v")).is_none());
        let ids = RequestIds::new();
        assert_ne!(ids.next(), ids.next());
    }

    #[test]
    fn request_ids_are_the_prefix_and_the_counter_in_hex() {
        for n in [
            0u64,
            1,
            0xffff_ffff,
            0x1_0000_0000,
            0xabc_0000_0001,
            u64::MAX,
        ] {
            let mut prefix = [0u8; 16];
            hex_into(&mut prefix, 0x0123_4567_89ab_cdef);
            let ids = RequestIds {
                prefix,
                counter: AtomicU64::new(n),
            };
            assert_eq!(
                ids.next(),
                format!("{:016x}{:08x}", 0x0123_4567_89ab_cdef_u64, n)
            );
        }
    }
}
