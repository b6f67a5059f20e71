#![no_main]
//! The JWS pre-parser and full verification against an HS256 issuer never
//! panic, whatever the token bytes.
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn verifier() -> &'static (authgate::config::Loaded, tokio::runtime::Runtime) {
    static V: OnceLock<(authgate::config::Loaded, tokio::runtime::Runtime)> = OnceLock::new();
    V.get_or_init(|| {
        let text = "server:\n  tls: {cert: c.pem, key: k.pem}\nupstream: {url: echo}\njwt:\n  - issuer: https://hs/\n    audiences: [api]\n    algorithms: [HS256]\n    hs_secret_env: S\nroutes:\n  - path: /**\n";
        let loaded = authgate::config::load_str(text, std::path::Path::new("f.yaml"), &|_| {
            Some("fuzz-secret-fuzz-secret-fuzz-secret".into())
        })
        .expect("policy");
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        (loaded, rt)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let _ = authgate::auth::jwt::looks_like_jws(token);
    let (loaded, rt) = verifier();
    let secret = authgate::secret::Secret::new(token);
    let _ = rt.block_on(loaded.snapshot.jwt.verify(&secret, &loaded.snapshot.identity));
});
