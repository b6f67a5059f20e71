#![no_main]
//! Whatever headers arrive, none the gateway owns survives stripping, and
//! hop-by-hop removal never panics.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let identity = authgate::snapshot::IdentityHeaders::default();
    let mut map = http::HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let mut parts = line.splitn(2, |b| *b == b':');
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else { continue };
        if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(name), http::HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    authgate::pipeline::headers::remove_hop_by_hop(&mut map);
    authgate::pipeline::headers::strip_identity(&mut map, &identity);
    assert!(map.keys().all(|k| !identity.is_reserved(k)));
});
