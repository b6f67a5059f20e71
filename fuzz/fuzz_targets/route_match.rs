#![no_main]
//! Any pattern and any path: parse, match and shadow checks never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (pattern, path) = text.split_once('\n').unwrap_or((text, "/"));
    if let Ok(p) = authgate::pipeline::route::PathPattern::parse(pattern) {
        assert!(p.covers(&p));
        if let Ok(normal) = authgate::pipeline::normalize::normalize(path) {
            let _ = p.matches(&normal);
        }
    }
});
