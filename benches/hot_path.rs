//! Criterion benchmarks of the request path's hot pieces.
//! Run: `cargo bench --bench hot_path`

use authgate::auth::api_key::{format_digest, sha256};
use authgate::config;
use authgate::pipeline::{headers, normalize::normalize};
use authgate::secret::Secret;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::Method;
use std::path::Path;
use std::time::SystemTime;

fn policy(routes: usize, keys: usize) -> String {
    let mut text = String::from(
        "server:\n  tls: {cert: c.pem, key: k.pem}\nupstream: {url: echo}\napi_keys:\n  keys:\n",
    );
    for i in 0..keys {
        let digest = format_digest(&sha256(format!("agk_bench_key_{i}").as_bytes()));
        text.push_str(&format!(
            "    - id: client-{i}\n      sha256: {digest}\n      scopes: [orders:read]\n"
        ));
    }
    text.push_str("routes:\n");
    for i in 0..routes.saturating_sub(1) {
        text.push_str(&format!(
            "  - name: r{i}\n    path: /service{i}/*/items/**\n    methods: [GET]\n    scopes: [orders:read]\n"
        ));
    }
    text.push_str("  - name: orders\n    path: /orders/**\n    scopes: [orders:read]\n");
    text
}

fn load(text: &str) -> config::Loaded {
    match config::load_str(text, Path::new("bench.yaml"), &|_| None) {
        Ok(l) => l,
        Err(e) => panic!("bench policy invalid: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let loaded = load(&policy(50, 1_000));
    let snap = &loaded.snapshot;

    c.bench_function("normalize_and_route/50_routes/last_route", |b| {
        b.iter(|| {
            let path = normalize(black_box("/orders/7/lines")).ok();
            let route =
                path.and_then(|p| snap.routes.find(&Method::GET, &p).map(|r| r.name.clone()));
            black_box(route)
        })
    });
    c.bench_function("normalize_and_route/50_routes/dot_segments", |b| {
        b.iter(|| {
            let path = normalize(black_box("/service3/x/./items/../items/9")).ok();
            let route =
                path.and_then(|p| snap.routes.find(&Method::GET, &p).map(|r| r.name.clone()));
            black_box(route)
        })
    });

    let big = load(&policy(5, 100_000));
    let key = "agk_bench_key_77777".to_string();
    c.bench_function("api_key_lookup/100000_keys", |b| {
        b.iter(|| {
            let id = big
                .snapshot
                .api_keys
                .authenticate(&Secret::new(black_box(key.as_str())), SystemTime::now());
            black_box(id.is_ok())
        })
    });

    let identity = snap
        .api_keys
        .authenticate(&Secret::new("agk_bench_key_5"), SystemTime::now())
        .ok();
    c.bench_function("identity_headers", |b| {
        b.iter(|| {
            let mut h = http::HeaderMap::new();
            h.insert("x-auth-subject", http::HeaderValue::from_static("spoof"));
            h.insert("accept", http::HeaderValue::from_static("*/*"));
            headers::strip_identity(&mut h, &snap.identity);
            if let Some(id) = &identity {
                headers::add_identity(&mut h, id);
            }
            black_box(h)
        })
    });

    let text = policy(50, 100_000);
    let mut group = c.benchmark_group("policy_load");
    group.sample_size(10);
    group.bench_function("100000_keys", |b| {
        b.iter(|| black_box(load(&text).snapshot.api_keys.by_digest.len()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
