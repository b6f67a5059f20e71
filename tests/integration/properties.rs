//! Property tests: the parsers on the request path never panic, and path
//! normalization means what it says. (Fuzz targets in `fuzz/` go deeper.)

use authgate::pipeline::{headers, normalize::normalize};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use std::path::Path;

fn policy() -> authgate::config::Loaded {
    let text = "server:\n  tls: {cert: c.pem, key: k.pem}\nupstream: {url: echo}\nroutes:
  - {name: health, path: /healthz, auth: none}
  - {name: user, path: '/users/*/profile', auth: none}
  - {name: orders, path: '/orders/**', auth: none}
  - {name: root, path: '/', auth: none}
";
    authgate::config::load_str(text, Path::new("p.yaml"), &|_| None).expect("policy")
}

/// Paths built from the pieces attacks are made of.
fn hostile_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_string()),
        Just("//".to_string()),
        Just("/.".to_string()),
        Just("/..".to_string()),
        Just("%2e".to_string()),
        Just("%2E%2e".to_string()),
        Just("%2F".to_string()),
        Just("%5c".to_string()),
        Just("%00".to_string()),
        Just("%41".to_string()),
        Just("%zz".to_string()),
        Just("%".to_string()),
        Just(";".to_string()),
        Just("\\\\".to_string()),
        Just("orders".to_string()),
        Just("users".to_string()),
        Just("healthz".to_string()),
        "[a-zA-Z0-9._~-]{1,6}",
        "\\PC{1,3}",
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|parts| format!("/{}", parts.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn normalized_paths_have_no_dot_segments_or_repeated_slashes_and_are_stable(path in hostile_path()) {
        if let Ok(once) = normalize(&path) {
            let once = once.into_owned();
            prop_assert!(once.starts_with('/'));
            prop_assert!(!once.contains("//"), "{once}");
            for segment in once.split('/') {
                prop_assert!(segment != "." && segment != "..", "{once}");
            }
            prop_assert!(!once.contains('\\') && !once.contains(';'));
            let twice = normalize(&once).map(|c| c.into_owned());
            prop_assert_eq!(twice.as_deref(), Ok(once.as_str()));
            // Routing the output and routing it again after a round trip agree.
            let loaded = policy();
            let first = loaded.snapshot.routes.find(&Method::GET, &once).map(|r| r.name.clone());
            let again = loaded.snapshot.routes.find(&Method::GET, &twice.unwrap_or_default()).map(|r| r.name.clone());
            prop_assert_eq!(first, again);
        }
    }

    #[test]
    fn arbitrary_strings_never_panic_the_normalizer_or_router(path in "\\PC{0,64}") {
        let loaded = policy();
        if let Ok(p) = normalize(&path) {
            let _ = loaded.snapshot.routes.find(&Method::POST, &p);
        }
    }

    #[test]
    fn route_patterns_parse_or_refuse_without_panicking(pattern in "[/a-z*%.;]{0,24}") {
        if let Ok(p) = authgate::pipeline::route::PathPattern::parse(&pattern) {
            prop_assert!(p.covers(&p), "a pattern covers itself");
        }
    }

    #[test]
    fn the_jws_pre_parser_never_panics(token in "[A-Za-z0-9_.=-]{0,200}") {
        let _ = authgate::auth::jwt::looks_like_jws(&token);
    }

    #[test]
    fn the_policy_loader_never_panics(text in "[a-z_:\\[\\]{}, 0-9\\n-]{0,300}") {
        let _ = authgate::config::load_str(&text, Path::new("fuzz.yaml"), &|_| None);
    }

    #[test]
    fn no_identity_header_survives_stripping(
        names in proptest::collection::vec("(?i)(x-auth-[a-z]{1,8}|x-user|x-email|accept|x-other)", 0..12)
    ) {
        let identity = authgate::auth::IdentityHeaders {
            subject: HeaderName::from_static("x-user"),
            claims: vec![("email".into(), HeaderName::from_static("x-email"))],
            ..Default::default()
        };
        let mut map = HeaderMap::new();
        for n in &names {
            if let Ok(name) = HeaderName::from_bytes(n.as_bytes()) {
                map.append(name, HeaderValue::from_static("spoofed"));
            }
        }
        headers::strip_identity(&mut map, &identity);
        for name in map.keys() {
            prop_assert!(!identity.is_reserved(name), "{name} survived");
            prop_assert!(!name.as_str().starts_with("x-auth-"));
        }
    }
}
