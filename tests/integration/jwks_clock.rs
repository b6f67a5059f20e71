//! The kid-miss refetch rule with an injected clock: no sleeping, exact
//! fetch counts against a real JWKS server.

use crate::idp::*;
use authgate::auth::jwks::{RemoteKeys, RemoteRef};
use authgate::auth::jwt::IssuerKeys;
use authgate::auth::token_cache::TokenCache;
use authgate::clock::{Clock, SystemClock};
use authgate::secret::Secret;
use jsonwebtoken::Algorithm;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct FakeClock(Mutex<Instant>);

impl FakeClock {
    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().expect("lock");
        *now += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        *self.0.lock().expect("lock")
    }
}

/// Binds a live key set with `clock` to the policy's remote reference, as
/// the gateway's registry would.
fn bind(keys: IssuerKeys, clock: Arc<dyn Clock>) -> Arc<RemoteKeys> {
    let IssuerKeys::Remote(reference) = keys else {
        panic!("remote keys expected");
    };
    let reference: &RemoteRef = &reference;
    let client = authgate::auth::fetch::client(None).expect("client");
    let live = Arc::new(RemoteKeys::new(reference.spec.clone(), client, clock));
    reference.bind(live.clone());
    live
}

/// A policy with one issuer whose JWKS the test IdP serves.
fn remote_issuer_policy(idp: &Idp, issuer: &str) -> authgate::config::Loaded {
    let policy = format!(
        "server:\n  tls: {{cert: c.pem, key: k.pem}}\nupstream: {{url: echo}}\njwt:
  - issuer: {issuer}
    audiences: [{AUDIENCE}]
    algorithms: [RS256]
    jwks_url: {}
routes:
  - path: /**
",
        idp.url("/jwks.json")
    );
    authgate::config::load_str(&policy, std::path::Path::new("t.yaml"), &|_| None).expect("policy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_fetched_once_then_passes_and_floods_wait_30s() {
    let old = SigningKey::generate(Algorithm::RS256, "k1");
    let idp = Idp::start(&[&old]).await;
    let issuer = "https://clock.test/";
    let loaded = remote_issuer_policy(&idp, issuer);
    let clock = Arc::new(FakeClock(Mutex::new(Instant::now())));
    let verifier = &loaded.snapshot.auth.jwt;
    let remote = bind(verifier.issuers[issuer].keys.clone(), clock.clone());
    let names = loaded.snapshot.auth.identity.clone();
    let cache = TokenCache::default();

    remote.refresh().await.expect("first fetch");
    assert_eq!(idp.state.fetches(), 1);
    let token = |key: &SigningKey| key.sign(&claims(issuer, json!({})), json!({}));
    assert!(verifier
        .verify(&Secret::new(&token(&old)), &names, &cache)
        .await
        .is_ok());

    // The issuer rotates to k2. 10 s after the last fetch, k2 is unknown and
    // not fetched: the last fetch is too recent.
    let new = SigningKey::generate(Algorithm::RS256, "k2");
    idp.state.set_keys(&[&old, &new]);
    clock.advance(Duration::from_secs(10));
    let refused = verifier
        .verify(&Secret::new(&token(&new)), &names, &cache)
        .await;
    assert_eq!(
        refused.err().map(|e| e.reason().as_str()),
        Some("unknown_kid")
    );
    assert_eq!(idp.state.fetches(), 1);

    // 31 s after it: exactly one fetch, then the token passes.
    clock.advance(Duration::from_secs(21));
    assert!(verifier
        .verify(&Secret::new(&token(&new)), &names, &cache)
        .await
        .is_ok());
    assert_eq!(idp.state.fetches(), 2);

    // A flood of unknown kids right after does not fetch again.
    let stranger = SigningKey::generate(Algorithm::RS256, "k3");
    for i in 0..50 {
        let t = stranger.sign(
            &claims(issuer, json!({})),
            json!({"kid": format!("flood-{i}")}),
        );
        assert!(verifier
            .verify(&Secret::new(&t), &names, &cache)
            .await
            .is_err());
    }
    assert_eq!(idp.state.fetches(), 2);
    clock.advance(Duration::from_secs(30));
    let t = stranger.sign(&claims(issuer, json!({})), json!({"kid": "flood-x"}));
    assert!(verifier
        .verify(&Secret::new(&t), &names, &cache)
        .await
        .is_err());
    assert_eq!(idp.state.fetches(), 3, "one fetch per 30 s window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verified_token_cache_is_dropped_when_keys_rotate() {
    let k1 = SigningKey::generate(Algorithm::RS256, "k1");
    let idp = Idp::start(&[&k1]).await;
    let issuer = "https://cache.test/";
    let loaded = remote_issuer_policy(&idp, issuer);
    let remote = bind(
        loaded.snapshot.auth.jwt.issuers[issuer].keys.clone(),
        Arc::new(SystemClock),
    );
    remote.refresh().await.expect("fetch");
    let names = loaded.snapshot.auth.identity.clone();
    let cache = TokenCache::default();
    let verifier = &loaded.snapshot.auth.jwt;
    let token = k1.sign(&claims(issuer, json!({})), json!({}));
    assert!(verifier
        .verify(&Secret::new(&token), &names, &cache)
        .await
        .is_ok());
    assert_eq!(cache.len(), 1);
    assert!(verifier
        .verify(&Secret::new(&token), &names, &cache)
        .await
        .is_ok());
    // k1 is withdrawn: the cached verification must not outlive it.
    let k2 = SigningKey::generate(Algorithm::RS256, "k2");
    idp.state.set_keys(&[&k2]);
    remote.refresh().await.expect("fetch");
    let refused = verifier.verify(&Secret::new(&token), &names, &cache).await;
    assert_eq!(
        refused.err().map(|e| e.reason().as_str()),
        Some("unknown_kid")
    );
}
