//! The serde mirror of the certificate and assertion sections of
//! `gateway.yaml`: `mtls` (client certificates as credentials) and
//! `identity.assertion` (docs/policy.md). Same rules as `file.rs`: no logic,
//! unknown keys refused.

use super::units::Duration;
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MtlsFile {
    /// Where a certificate's subject is read, in order; the first present is the subject:
    /// `san_uri` (a URI SAN, e.g. a SPIFFE id), `san_dns` (a DNS SAN), `cn` (the subject's common
    /// name). Default: `[san_uri, san_dns, cn]`.
    #[schemars(extend("items" = {"enum": ["san_uri", "san_dns", "cn"]}))]
    pub subject_from: Option<Vec<String>>,
    /// The subjects that are credentials, below. A verified certificate of any other subject is
    /// refused (`unknown_client_cert`). Default: `[]`.
    pub clients: Vec<MtlsClientFile>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MtlsClientFile {
    /// The certificate subject, compared exactly (`spiffe://example.org/billing`). Unique.
    pub subject: String,
    /// Scopes this client is granted. Default: `[]`.
    pub scopes: Vec<String>,
    /// The client's own limit: a name from `rate_limits.limits`. Default: `rate_limits.default`.
    pub rate_limit: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AssertionFile {
    /// Header carrying the assertion upstream. Callers can never send it. Default:
    /// `X-Auth-Assertion`.
    pub header: Option<String>,
    /// The signing key: a PKCS#8 PEM file (`-----BEGIN PRIVATE KEY-----`) holding an EC P-256
    /// key (ES256) or an Ed25519 key (EdDSA). `authgate certs --assertion-key FILE` writes one.
    pub key: Option<PathBuf>,
    /// More PKCS#8 key files whose public keys are published in the JWKS but never sign: the next
    /// key before a rotation, the previous one after (see operations.md). Default: `[]`.
    pub published_keys: Vec<PathBuf>,
    /// The `iss` of every assertion. Default: `authgate`.
    pub issuer: Option<String>,
    /// The `aud` of every assertion: the upstream that verifies it.
    pub audience: Option<String>,
    /// Lifetime (`exp - iat`), from 10s to 1h. An assertion is reused for the same caller for at
    /// most half of it. Default: `60s`.
    pub ttl: Option<Duration>,
}
