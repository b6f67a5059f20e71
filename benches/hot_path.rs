//! Criterion benchmarks of the request path's hot pieces.
//! Run: `cargo bench --bench hot_path`

use authgate::auth::api_key::format_digest;
use authgate::config;
use authgate::pipeline::{headers, normalize::normalize};
use authgate::secret::{sha256, Secret};
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
                .auth
                .api_keys
                .authenticate(&Secret::new(black_box(key.as_str())), SystemTime::now());
            black_box(id.is_ok())
        })
    });

    let identity = snap
        .auth
        .api_keys
        .authenticate(&Secret::new("agk_bench_key_5"), SystemTime::now())
        .ok();
    c.bench_function("identity_headers", |b| {
        b.iter(|| {
            let mut h = http::HeaderMap::new();
            h.insert("x-auth-subject", http::HeaderValue::from_static("spoof"));
            h.insert("accept", http::HeaderValue::from_static("*/*"));
            headers::strip_identity(&mut h, &snap.auth.identity);
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
        b.iter(|| black_box(load(&text).snapshot.auth.api_keys.by_digest.len()))
    });
    group.finish();
}

/// A policy with an RS256 issuer (JWKS file) and an HS256 issuer.
fn jwt_policy(dir: &Path) -> (config::Loaded, jsonwebtoken::EncodingKey) {
    use jsonwebtoken::{jwk::Jwk, Algorithm, EncodingKey};
    let pair = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .expect("rsa key");
    let rsa = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).expect("encoding key");
    let mut jwk = Jwk::from_encoding_key(&rsa, Algorithm::RS256).expect("jwk");
    jwk.common.key_id = Some("k1".into());
    let jwks = dir.join("jwks.json");
    let doc = serde_json::json!({ "keys": [jwk] }).to_string();
    std::fs::write(&jwks, doc).expect("write jwks");
    let text = format!(
        "server:\n  tls: {{cert: c.pem, key: k.pem}}\nupstream: {{url: echo}}\njwt:
  - issuer: https://rs/
    audiences: [api]
    algorithms: [RS256]
    jwks_file: {}
  - issuer: https://hs/
    audiences: [api]
    algorithms: [HS256]
    hs_secret_env: BENCH_SECRET
routes:
  - path: /**
",
        jwks.display()
    );
    let loaded = config::load_str(&text, Path::new("bench.yaml"), &|_| {
        Some("bench-secret-bench-secret-bench-secret".into())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    (loaded, rsa)
}

fn bench_jwt(c: &mut Criterion) {
    use authgate::auth::token_cache::TokenCache;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let dir = tempfile::tempdir().expect("tempdir");
    let (loaded, rsa) = jwt_policy(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let exp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3_600;
    let claims = |iss: &str| serde_json::json!({"iss": iss, "sub": "u", "aud": "api", "exp": exp, "scope": "a b"});
    let mut rs_header = Header::new(Algorithm::RS256);
    rs_header.kid = Some("k1".into());
    let rs_token = encode(&rs_header, &claims("https://rs/"), &rsa).expect("rs token");
    let hs_key = EncodingKey::from_secret(b"bench-secret-bench-secret-bench-secret");
    let hs_token = encode(
        &Header::new(Algorithm::HS256),
        &claims("https://hs/"),
        &hs_key,
    )
    .expect("hs token");
    let names = loaded.snapshot.auth.identity.clone();

    let verifier = &loaded.snapshot.auth.jwt;
    let cache = TokenCache::new(1_000);
    let no_cache = TokenCache::new(0);
    c.bench_function("jwt_verify/rs256_cached", |b| {
        b.iter(|| {
            let r = runtime.block_on(verifier.verify(
                &Secret::new(black_box(rs_token.as_str())),
                &names,
                &cache,
            ));
            black_box(r.is_ok())
        })
    });
    assert!(runtime
        .block_on(verifier.verify(&Secret::new(rs_token.as_str()), &names, &no_cache))
        .is_ok());
    c.bench_function("jwt_verify/rs256_uncached", |b| {
        b.iter(|| {
            let r = runtime.block_on(verifier.verify(
                &Secret::new(black_box(rs_token.as_str())),
                &names,
                &no_cache,
            ));
            black_box(r.is_ok())
        })
    });
    c.bench_function("jwt_verify/hs256_uncached", |b| {
        b.iter(|| {
            let r = runtime.block_on(verifier.verify(
                &Secret::new(black_box(hs_token.as_str())),
                &names,
                &no_cache,
            ));
            black_box(r.is_ok())
        })
    });
}

fn bench_limits(c: &mut Criterion) {
    use authgate::ratelimit::{Caller, LimitSpec, RateLimits};
    use std::sync::Arc;
    let spec = LimitSpec {
        count: 1_000_000,
        per: std::time::Duration::from_secs(1),
        burst: 1_000_000,
    };
    let limits = RateLimits::default();
    let caller = Caller::new("key:bench");
    c.bench_function("rate_limit_check/memory", |b| {
        b.iter(|| black_box(limits.check_local(spec, black_box(&caller)).allowed))
    });

    // Redis on loopback, when redis-server is installed.
    let Some(redis) = RedisProcess::start() else {
        eprintln!("redis-server not found: skipping rate_limit_check/redis");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let backend = Arc::new(
        authgate::redis_backend::RedisBackend::new(&format!("redis://127.0.0.1:{}/", redis.port))
            .expect("redis url"),
    );
    assert!(runtime.block_on(backend.connect()), "redis reachable");
    let with_redis = RateLimits::default().with_redis(Some(backend));
    c.bench_function("rate_limit_check/redis_loopback", |b| {
        b.iter(|| black_box(runtime.block_on(with_redis.check(spec, &caller)).allowed))
    });
}

/// A throwaway redis-server for the benchmark.
struct RedisProcess {
    port: u16,
    child: std::process::Child,
}

impl RedisProcess {
    fn start() -> Option<RedisProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(RedisProcess { port, child });
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        None
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

criterion_group!(benches, bench, bench_jwt, bench_limits);
criterion_main!(benches);
