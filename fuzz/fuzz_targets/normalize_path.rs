#![no_main]
//! Normalization never panics, its output is normal, and normalizing twice changes nothing.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else { return };
    if let Ok(once) = authgate::pipeline::normalize::normalize(path) {
        assert!(once.starts_with('/'));
        assert!(!once.contains("//"));
        assert!(once.split('/').all(|s| s != "." && s != ".."));
        let twice = authgate::pipeline::normalize::normalize(&once).expect("normal stays valid");
        assert_eq!(once, twice);
    }
});
