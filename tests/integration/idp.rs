//! A test authorization server: signing keys, a JWKS endpoint (and OIDC
//! discovery) that counts its fetches, an RFC 7662 introspection endpoint,
//! and token minting, including the forged tokens attackers send.

use base64::Engine;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{jwk::Jwk, Algorithm, EncodingKey};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const HS_SECRET: &str = "test-hs-secret-that-is-long-enough-0123456789";
pub const AUDIENCE: &str = "orders-api";

/// A signing key and the public JWK that goes into the JWKS.
#[derive(Clone)]
pub struct SigningKey {
    pub alg: Algorithm,
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The public key as PEM (for the algorithm-confusion attack).
    pub public_pem: Option<String>,
}

impl SigningKey {
    pub fn generate(alg: Algorithm, kid: &str) -> SigningKey {
        let rcgen_alg = match alg {
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => &rcgen::PKCS_RSA_SHA256,
            Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => &rcgen::PKCS_RSA_SHA256,
            Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Algorithm::ES384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Algorithm::EdDSA => &rcgen::PKCS_ED25519,
            _ => panic!("not an asymmetric algorithm: {alg:?}"),
        };
        let pair = if rcgen_alg == &rcgen::PKCS_RSA_SHA256 {
            rcgen::KeyPair::generate_rsa_for(rcgen_alg, rcgen::RsaKeySize::_2048)
        } else {
            rcgen::KeyPair::generate_for(rcgen_alg)
        }
        .expect("generate key");
        let pem = pair.serialize_pem();
        let encoding = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .expect("encoding key");
        let jwk = if alg == Algorithm::EdDSA {
            // jsonwebtoken cannot derive an OKP JWK from aws-lc's PKCS#8 v2 key.
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key_raw()), "kid": kid, "alg": "EdDSA"})
        } else {
            let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("jwk");
            jwk.common.key_id = Some(kid.to_string());
            serde_json::to_value(jwk).expect("jwk json")
        };
        SigningKey {
            alg,
            kid: kid.to_string(),
            encoding,
            jwk,
            public_pem: Some(pair.public_key_pem()),
        }
    }

    pub fn hmac(secret: &str) -> SigningKey {
        SigningKey {
            alg: Algorithm::HS256,
            kid: "hs".into(),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            jwk: Value::Null,
            public_pem: None,
        }
    }

    /// Signs a token with this key; `header_extra` is merged into the header.
    pub fn sign(&self, claims: &Value, header_extra: Value) -> String {
        let mut header = json!({"alg": alg_name(self.alg), "typ": "JWT", "kid": self.kid});
        if let (Some(h), Value::Object(extra)) = (header.as_object_mut(), header_extra) {
            for (k, v) in extra {
                if v.is_null() {
                    h.remove(&k);
                } else {
                    h.insert(k, v);
                }
            }
        }
        sign_raw(&header, claims, &self.encoding, self.alg)
    }
}

pub fn alg_name(alg: Algorithm) -> String {
    serde_json::to_value(alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .expect("alg name")
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS from any header and claims, signed with `key` as `alg`.
pub fn sign_raw(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), key, alg).expect("sign");
    format!("{signing_input}.{signature}")
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Claims that pass for `issuer`, with `extra` merged in (null removes a claim).
pub fn claims(issuer: &str, extra: Value) -> Value {
    let mut c = json!({
        "iss": issuer,
        "sub": "user-1",
        "aud": AUDIENCE,
        "iat": now(),
        "exp": now() + 600,
        "scope": "orders:read",
        "email": "user1@example.com",
    });
    if let (Some(map), Value::Object(extra)) = (c.as_object_mut(), extra) {
        for (k, v) in extra {
            if v.is_null() {
                map.remove(&k);
            } else {
                map.insert(k, v);
            }
        }
    }
    c
}

/// What the fake authorization server serves and counts.
#[derive(Default)]
pub struct IdpState {
    pub jwks: Mutex<Value>,
    pub jwks_fetches: AtomicUsize,
    pub discovery_fetches: AtomicUsize,
    /// Requests to any other path (e.g. an attacker's `jku`).
    pub other_hits: AtomicUsize,
    pub down: AtomicBool,
    /// Opaque token → introspection answer.
    pub tokens: Mutex<HashMap<String, Value>>,
    pub introspections: AtomicUsize,
    /// The `issuer` the discovery document names; empty = `https://idp.test/`.
    pub discovery_issuer: Mutex<String>,
    pub last_auth: Mutex<Option<String>>,
}

pub struct Idp {
    pub addr: SocketAddr,
    pub state: Arc<IdpState>,
    task: tokio::task::JoinHandle<()>,
}

impl Idp {
    pub async fn start(keys: &[&SigningKey]) -> Idp {
        let state = Arc::new(IdpState::default());
        state.set_keys(keys);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind idp");
        let addr = listener.local_addr().expect("addr");
        let served = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let state = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(serve(req, state, addr).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Idp { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl IdpState {
    pub fn set_keys(&self, keys: &[&SigningKey]) {
        *self.jwks.lock().expect("lock") =
            json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    }

    pub fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

async fn serve(
    req: Request<Incoming>,
    state: Arc<IdpState>,
    addr: SocketAddr,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    match path.as_str() {
        "/jwks.json" => {
            state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
            if state.down.load(Ordering::SeqCst) {
                return json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({}));
            }
            let doc = state.jwks.lock().expect("lock").clone();
            json_response(StatusCode::OK, &doc)
        }
        "/.well-known/openid-configuration" => {
            state.discovery_fetches.fetch_add(1, Ordering::SeqCst);
            let issuer = state.discovery_issuer.lock().expect("lock").clone();
            let issuer = if issuer.is_empty() {
                "https://idp.test/".to_string()
            } else {
                issuer
            };
            json_response(
                StatusCode::OK,
                &json!({"issuer": issuer, "jwks_uri": format!("http://{addr}/jwks.json")}),
            )
        }
        "/introspect" => {
            state.introspections.fetch_add(1, Ordering::SeqCst);
            *state.last_auth.lock().expect("lock") = auth;
            if state.down.load(Ordering::SeqCst) {
                return json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({}));
            }
            let token = form_urlencoded::parse(&body)
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let answer = state
                .tokens
                .lock()
                .expect("lock")
                .get(&token)
                .cloned()
                .unwrap_or(json!({"active": false}));
            json_response(StatusCode::OK, &answer)
        }
        _ => {
            state.other_hits.fetch_add(1, Ordering::SeqCst);
            json_response(StatusCode::OK, &json!({"keys": []}))
        }
    }
}
