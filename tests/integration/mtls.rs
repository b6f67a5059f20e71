//! Client certificates as credentials (kind `mtls`): certificates made here
//! by a test CA, each outcome over a real TLS handshake with the gateway.

use crate::harness::{digest, Gateway, TestClient, Upstream};
use http_body_util::Full;
use hyper::body::Bytes;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};

/// A client CA that signs leaves and CRLs.
pub struct Pki {
    params: CertificateParams,
    key: KeyPair,
    pub ca_pem: String,
}

/// A client certificate and its key, PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let key = KeyPair::generate().expect("ca key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = params.self_signed(&key).expect("ca cert").pem();
        Pki {
            params,
            key,
            ca_pem,
        }
    }

    /// A leaf with a URI SAN (if any), a CN, these extended key usages and serial.
    pub fn leaf(
        &self,
        uri: Option<&str>,
        cn: &str,
        usages: Vec<ExtendedKeyUsagePurpose>,
        serial: u64,
    ) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        if let Some(uri) = uri {
            params
                .subject_alt_names
                .push(SanType::URI(uri.try_into().expect("ia5 uri")));
        }
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = usages;
        params.serial_number = Some(SerialNumber::from(serial));
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .expect("leaf cert");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A CRL revoking these serials.
    pub fn crl(&self, revoked: &[u64]) -> String {
        let params = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2100, 1, 1),
            crl_number: SerialNumber::from(revoked.len() as u64 + 1),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: SerialNumber::from(*serial),
                    revocation_time: rcgen::date_time_ymd(2024, 6, 1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&Issuer::from_params(&self.params, &self.key))
            .expect("crl")
            .pem()
            .expect("crl pem")
    }
}

const BILLING: &str = "spiffe://example.org/billing";
const KEY: &str = "agk_mtls_test_key_0123456789abcdef";

fn client_auth() -> Vec<ExtendedKeyUsagePurpose> {
    vec![ExtendedKeyUsagePurpose::ClientAuth]
}

/// The policy of these tests: `/billing` takes certificates only, `/keys`
/// API keys only, `/either` both.
fn policy(upstream: &str) -> String {
    format!(
        "upstream:\n  url: {upstream}\napi_keys:\n  keys:\n    - id: ops\n      sha256: {}\n      scopes: [orders:read]\nmtls:\n  subject_from: [san_uri, cn]\n  clients:\n    - subject: {BILLING}\n      scopes: [orders:read]\n    - subject: reporting\n      scopes: []\nroutes:\n  - name: billing\n    path: /billing/**\n    auth: [mtls]\n    scopes: [orders:read]\n  - name: keys\n    path: /keys/**\n    auth: [api_key]\n  - name: either\n    path: /either/**\n    auth: [mtls, api_key]\n",
        digest(KEY)
    )
}

fn tls_extra(dir: &std::path::Path, pki: &Pki, crl: Option<&str>) -> String {
    std::fs::write(dir.join("clients-ca.pem"), &pki.ca_pem).expect("write ca");
    let mut extra = format!(
        "    client_ca: {}\n    client_auth: optional\n",
        dir.join("clients-ca.pem").display()
    );
    if let Some(crl) = crl {
        std::fs::write(dir.join("clients.crl"), crl).expect("write crl");
        extra.push_str(&format!(
            "    client_crl: {}\n",
            dir.join("clients.crl").display()
        ));
    }
    extra
}

fn get(url: &str, headers: &[(&str, &str)]) -> http::Request<Full<Bytes>> {
    let mut req = http::Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Full::new(Bytes::new())).expect("request")
}

async fn status(client: &TestClient, url: &str, headers: &[(&str, &str)]) -> Option<u16> {
    client
        .try_send(get(url, headers))
        .await
        .ok()
        .map(|r| r.status.as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_client_certificate_is_the_caller_and_every_other_outcome_is_refused() {
    let upstream = Upstream::start().await;
    let pki = Pki::new("test clients");
    let listed = pki.leaf(Some(BILLING), "billing", client_auth(), 10);
    let unlisted = pki.leaf(
        Some("spiffe://example.org/intruder"),
        "x",
        client_auth(),
        11,
    );
    let server_only = pki.leaf(
        Some(BILLING),
        "billing",
        vec![ExtendedKeyUsagePurpose::ServerAuth],
        12,
    );
    let revoked = pki.leaf(Some(BILLING), "billing", client_auth(), 13);
    let by_cn = pki.leaf(None, "reporting", client_auth(), 14);
    let stranger_ca = Pki::new("another CA");
    let foreign = stranger_ca.leaf(Some(BILLING), "billing", client_auth(), 10);
    let keys = tempfile::tempdir().expect("tempdir");
    let extra = tls_extra(keys.path(), &pki, Some(&pki.crl(&[13])));
    let gw = Gateway::in_process_with(&extra, &policy(&upstream.url()));

    // The listed certificate: admitted as its URI SAN, fingerprint upstream.
    let billing = gw.client_with_cert(&listed.cert_pem, &listed.key_pem);
    let reply = billing
        .get(
            &gw.url("/billing/1"),
            &[("x-auth-cert-sha256", "forged"), ("x-auth-subject", "root")],
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let seen = upstream.last();
    let header = |name: &str| {
        seen.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_string())
    };
    assert_eq!(header("x-auth-subject").as_deref(), Some(BILLING));
    assert_eq!(header("x-auth-method").as_deref(), Some("mtls"));
    assert_eq!(header("x-auth-scopes").as_deref(), Some("orders:read"));
    let fingerprint = hex::encode(authgate::secret::sha256(&listed.der));
    assert_eq!(
        header("x-auth-cert-sha256").as_deref(),
        Some(fingerprint.as_str())
    );
    let line = gw.log_for(&reply.request_id()).await;
    assert_eq!(line["auth_method"], "mtls");
    assert_eq!(line["subject"], BILLING);

    // Certificate plus a header credential on an mtls route: two credentials.
    let both = billing
        .get(&gw.url("/either/1"), &[("x-api-key", KEY)])
        .await;
    assert_eq!(both.status, 400);
    assert_eq!(both.json()["error"], "invalid_request");
    // On a route that takes no certificates, it is no credential: the key decides,
    // and no fingerprint goes upstream.
    let on_keys = billing.get(&gw.url("/keys/1"), &[("x-api-key", KEY)]).await;
    assert_eq!(on_keys.status, 200);
    let seen = upstream.last();
    assert_eq!(seen.headers["x-auth-method"], "api_key");
    assert!(seen.headers.get("x-auth-cert-sha256").is_none());
    // The subject from the CN when the certificate has no URI SAN.
    let reporting = gw.client_with_cert(&by_cn.cert_pem, &by_cn.key_pem);
    let reply = reporting.get(&gw.url("/either/1"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(upstream.last().headers["x-auth-subject"], "reporting");
    // ...whose scopes do not cover /billing.
    let reply = reporting.get(&gw.url("/billing/1"), &[]).await;
    assert_eq!(reply.status, 403);

    // A verified certificate of an unlisted subject.
    let intruder = gw.client_with_cert(&unlisted.cert_pem, &unlisted.key_pem);
    let reply = intruder.get(&gw.url("/billing/1"), &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"], "invalid_token");
    let line = gw.log_for(&reply.request_id()).await;
    assert_eq!(line["reason"], "unknown_client_cert");

    // No certificate: a header credential alone is a kind the route refuses;
    // nothing at all is no credential.
    let plain = gw.client();
    let reply = plain
        .get(&gw.url("/billing/1"), &[("x-api-key", KEY)])
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["error"], "insufficient_scope");
    let reply = plain.get(&gw.url("/billing/1"), &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"], "unauthorized");

    // Refused in the handshake: a leaf without the clientAuth usage, a
    // revoked one, one from another CA.
    for (what, leaf) in [
        ("serverAuth-only", &server_only),
        ("revoked", &revoked),
        ("foreign", &foreign),
    ] {
        let client = gw.client_with_cert(&leaf.cert_pem, &leaf.key_pem);
        assert_eq!(
            status(&client, &gw.url("/billing/1"), &[]).await,
            None,
            "the {what} certificate was accepted"
        );
    }
    // And the gateway still serves the listed client.
    let again = gw.client_with_cert(&listed.cert_pem, &listed.key_pem);
    assert_eq!(status(&again, &gw.url("/billing/2"), &[]).await, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_crl_or_ca_applies_on_reload_to_new_handshakes() {
    let pki = Pki::new("clients");
    let leaf = pki.leaf(Some(BILLING), "billing", client_auth(), 21);
    let keys = tempfile::tempdir().expect("tempdir");
    let extra = tls_extra(keys.path(), &pki, Some(&pki.crl(&[])));
    let gw = Gateway::in_process_with(&extra, &policy("echo"));
    let url = gw.url("/billing/1");
    let fresh = || gw.client_with_cert(&leaf.cert_pem, &leaf.key_pem);
    assert_eq!(status(&fresh(), &url, &[]).await, Some(200));

    // Revoke it: after the reload a new handshake fails.
    std::fs::write(keys.path().join("clients.crl"), pki.crl(&[21])).expect("crl");
    gw.reload();
    let mut last = Some(200);
    for _ in 0..100 {
        last = status(&fresh(), &url, &[]).await;
        if last.is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        last, None,
        "a revoked certificate still completes a handshake"
    );

    // A new CA (and its own empty CRL): the old CA's leaf is refused, the new one's served.
    let next = Pki::new("clients 2");
    let next_leaf = next.leaf(Some(BILLING), "billing", client_auth(), 1);
    std::fs::write(keys.path().join("clients-ca.pem"), &next.ca_pem).expect("ca");
    std::fs::write(keys.path().join("clients.crl"), next.crl(&[])).expect("crl");
    gw.reload();
    let new_client = || gw.client_with_cert(&next_leaf.cert_pem, &next_leaf.key_pem);
    let mut served = None;
    for _ in 0..100 {
        served = status(&new_client(), &url, &[]).await;
        if served == Some(200) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(served, Some(200), "the new CA's client is not served");
    assert_eq!(status(&fresh(), &url, &[]).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_auth_required_refuses_a_connection_without_a_certificate() {
    let pki = Pki::new("clients");
    let leaf = pki.leaf(Some(BILLING), "billing", client_auth(), 5);
    let keys = tempfile::tempdir().expect("tempdir");
    let extra = tls_extra(keys.path(), &pki, None).replace("optional", "required");
    let gw = Gateway::in_process_with(&extra, &policy("echo"));
    let url = gw.url("/keys/1");
    assert_eq!(
        status(&gw.client(), &url, &[("x-api-key", KEY)]).await,
        None
    );
    let client = gw.client_with_cert(&leaf.cert_pem, &leaf.key_pem);
    assert_eq!(
        status(&client, &url, &[("x-api-key", KEY)]).await,
        Some(200)
    );
}
