#![no_main]
//! The policy loader answers every input with a policy or a list of errors.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = authgate::config::load_str(text, std::path::Path::new("fuzz.yaml"), &|_| None);
});
