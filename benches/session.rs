//! The request path's decision (docs/requests.md steps 1–7) for a request
//! authenticated by a browser session (memory store) next to the same
//! request with an API key. Goal: a session costs at most 1.2× a key.
//! Run: `cargo bench --bench session`

use authgate::auth::session::store::SessionRecord;
use authgate::auth::session::{session_key, SessionPolicy};
use authgate::auth::AuthServices;
use authgate::config;
use authgate::secret::{sha256, Secret};
#[path = "common/mod.rs"]
mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::path::Path;

const KEY: &str = "agk_bench_key_0123456789abcdefghijklmnopqrstuvwxyz";
const SESSION_ID: &str = "bench-session-id-0123456789abcdefghijklmnopq";

fn policy() -> config::Loaded {
    let digest = authgate::auth::api_key::format_digest(&sha256(KEY.as_bytes()));
    let text = format!(
        "server:\n  tls: {{cert: c.pem, key: k.pem}}\nupstream: {{url: echo}}\napi_keys:\n  keys:\n    - id: bench\n      sha256: {digest}\n      scopes: [orders:read]\nsessions:\n  provider: https://idp.bench/\n  client_id: bench\n  key_env: BENCH_KEY\nroutes:\n  - name: health\n    path: /healthz\n    auth: none\n  - name: orders\n    path: /orders/**\n    scopes: [orders:read]\n"
    );
    config::load_str(&text, Path::new("bench.yaml"), &|_| {
        Some("bench-session-key-0123456789abcdefghijklmnop".into())
    })
    .unwrap_or_else(|e| panic!("bench policy invalid: {e}"))
}

fn sign_in(sessions: &SessionPolicy, services: &AuthServices, runtime: &tokio::runtime::Runtime) {
    let now = authgate::clock::unix_now();
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), "alice".into());
    claims.insert("scope".into(), "orders:read".into());
    let record = SessionRecord {
        subject: "alice".into(),
        claims,
        id_token: "unused".into(),
        refresh_token: None,
        expires_at: now + 86_400,
        created: now,
    };
    let key = session_key(&Secret::new(SESSION_ID));
    runtime
        .block_on(services.sessions.store.create(
            &sessions.store,
            &sessions.seal,
            &key,
            record,
            now,
        ))
        .unwrap_or_else(|_| panic!("memory store"));
}

fn bench(c: &mut Criterion) {
    let loaded = policy();
    let snapshot = &loaded.snapshot;
    let bench = common::Bench::new();
    let sessions = snapshot.auth.sessions.as_ref().expect("sessions");
    sign_in(sessions, &bench.services, &bench.runtime);

    let request = |header: (&str, String)| {
        let (parts, ()) = http::Request::get("/orders/7?x=1")
            .header("host", "gw.example")
            .header("accept", "application/json")
            .header(header.0, header.1)
            .body(())
            .expect("request")
            .into_parts();
        parts
    };
    let cases = [
        ("decide/api_key", request(("x-api-key", KEY.to_string()))),
        (
            "decide/session_memory",
            request((
                "cookie",
                format!("theme=dark; __Host-authgate={SESSION_ID}"),
            )),
        ),
    ];
    for (name, head) in cases {
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut parts = head.clone();
                let admitted = bench.decide(snapshot, &mut parts);
                assert!(admitted.is_ok(), "{name}");
                black_box(admitted.map(|a| a.route.name.clone()).ok())
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
