//! The cost of `identity.assertion` on a request: the decision (docs/requests.md
//! steps 1–7) and the upstream request's head (step 8, the gateway's own
//! code for both) for an API-key caller, with and without an assertion. Reuse for half the ttl makes signing
//! rare, so the goal is at most 1.1× the request without one.
//! `assertion/sign` is the signature alone (a cold cache), for scale.
//! Run: `cargo bench --bench assertion`

use authgate::auth::assertion::AssertionCache;
use authgate::auth::assertion_key::{write_new, NewKey};
use authgate::auth::identity::AssertionSlot;
use authgate::config;
use authgate::pipeline::headers::TraceParent;
use authgate::pipeline::{prepare_upstream_request, Upstreamed};
use authgate::secret::sha256;
#[path = "common/mod.rs"]
mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::path::Path;

const KEY: &str = "agk_bench_key_0123456789abcdefghijklmnopqrstuvwxyz";

fn policy(assertion: &str) -> config::Loaded {
    let digest = authgate::auth::api_key::format_digest(&sha256(KEY.as_bytes()));
    let text = format!(
        "server:\n  tls: {{cert: c.pem, key: k.pem}}\nupstream: {{url: echo}}\n{assertion}api_keys:\n  keys:\n    - id: bench\n      sha256: {digest}\n      scopes: [orders:read]\nroutes:\n  - name: orders\n    path: /orders/**\n    scopes: [orders:read]\n"
    );
    config::load_str(&text, Path::new("bench.yaml"), &|_| None)
        .unwrap_or_else(|e| panic!("bench policy invalid: {e}"))
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("assertion.pem");
    write_new(&key, NewKey::Es256).expect("key");
    let with = policy(&format!(
        "identity:\n  assertion:\n    key: {}\n    audience: orders-api\n",
        key.display()
    ));
    let without = policy("");
    let bench = common::Bench::new();
    // What curl sends, and a key.
    let (head, ()) = http::Request::get("/orders/7?x=1")
        .header("host", "gw.example")
        .header("user-agent", "curl/8.5.0")
        .header("accept", "*/*")
        .header("x-api-key", KEY)
        .body(())
        .expect("request")
        .into_parts();

    for (name, loaded) in [
        ("request/no_assertion", &without),
        ("request/with_assertion", &with),
    ] {
        let snapshot = &loaded.snapshot;
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut parts = head.clone();
                let admitted = bench
                    .decide(snapshot, &mut parts)
                    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
                let trace = TraceParent::of(&parts.headers);
                let caller = Upstreamed {
                    identity: admitted.identity.as_deref(),
                    peer: std::net::Ipv4Addr::LOCALHOST.into(),
                    client_cert: None,
                    request_id: "bench-request",
                    trace: &trace,
                    assertions: &bench.services.assertions,
                };
                let path = admitted.path.clone();
                let upstream = prepare_upstream_request(
                    snapshot,
                    http::Request::from_parts(parts, ()),
                    &path,
                    &caller,
                )
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert!(upstream.headers().contains_key("x-auth-subject"));
                black_box(upstream.headers().len())
            })
        });
    }

    // One signature: what every request would pay without reuse.
    let signer = with.snapshot.auth.assertion.as_ref().expect("signer");
    let identity = with
        .snapshot
        .auth
        .api_keys
        .by_digest
        .values()
        .next()
        .expect("key")
        .identity
        .clone();
    c.bench_function("assertion/sign", |b| {
        b.iter(|| {
            // A copy with an empty slot and an empty cache: nothing to reuse.
            let mut fresh = (*identity).clone();
            fresh.assertion = AssertionSlot::default();
            let cold = AssertionCache::default();
            black_box(signer.assertion(&fresh, &cold, authgate::clock::unix_now()))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
