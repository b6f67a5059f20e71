//! The identity assertion's keys: read from a PKCS#8 PEM file (EC P-256
//! for ES256, Ed25519 for EdDSA), published as JWKs under their RFC 7638
//! thumbprint, and written fresh by `authgate certs --assertion-key`.

use crate::secret::Secret;
use aws_lc_rs::signature::{self, KeyPair};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use rustls::pki_types::{pem::PemObject, PrivateKeyDer};
use std::path::Path;

/// A signing key and what the JWKS says of it.
pub struct AssertionKey {
    pub algorithm: Algorithm,
    /// RFC 7638 thumbprint of the public key, base64url: the JWT's `kid`.
    pub kid: String,
    /// The public JWK, `kid` and `alg` included.
    pub jwk: serde_json::Value,
    /// PKCS#8 DER, for jsonwebtoken's signer.
    der: Secret<Vec<u8>>,
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn thumbprint(canonical: &str) -> String {
    b64(&crate::secret::sha256(canonical.as_bytes()))
}

impl AssertionKey {
    /// Reads a key file. The error is one sentence for `check`: what the file
    /// holds and what to put there instead.
    pub fn load(path: &Path) -> Result<AssertionKey, String> {
        let shown = path.display();
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read the key file {shown}: {e}; write one with `authgate certs --assertion-key {shown}`"))?;
        let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
            format!("{shown} holds no PEM private key; write one with `authgate certs --assertion-key {shown}`")
        })?;
        let der = match key {
            PrivateKeyDer::Pkcs8(der) => der.secret_pkcs8_der().to_vec(),
            PrivateKeyDer::Pkcs1(_) => return Err(format!("{shown} is an RSA key; assertions are signed with EC P-256 (ES256) or Ed25519 (EdDSA) only")),
            PrivateKeyDer::Sec1(_) => return Err(format!("{shown} is an EC key in SEC1 form (`BEGIN EC PRIVATE KEY`); convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in {shown}`")),
            _ => return Err(format!("{shown} is not a PKCS#8 private key (`BEGIN PRIVATE KEY`)")),
        };
        AssertionKey::from_pkcs8(der).map_err(|m| format!("{shown} {m}"))
    }

    fn from_pkcs8(der: Vec<u8>) -> Result<AssertionKey, &'static str> {
        if let Ok(pair) =
            signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
        {
            // The uncompressed point: 0x04 ‖ x ‖ y.
            let point = pair.public_key().as_ref();
            let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
            let kid = thumbprint(&format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
            ));
            let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"});
            return Ok(AssertionKey {
                algorithm: Algorithm::ES256,
                kid,
                jwk,
                der: Secret::new(der),
            });
        }
        if let Ok(pair) = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
            let x = b64(pair.public_key().as_ref());
            let kid = thumbprint(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#));
            let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"});
            return Ok(AssertionKey {
                algorithm: Algorithm::EdDSA,
                kid,
                jwk,
                der: Secret::new(der),
            });
        }
        if signature::RsaKeyPair::from_pkcs8(&der).is_ok() {
            return Err("is an RSA key; assertions are signed with EC P-256 (ES256) or Ed25519 (EdDSA) only");
        }
        Err("is a PKCS#8 key of another type or curve; use EC P-256 (ES256) or Ed25519 (EdDSA)")
    }

    /// The key as jsonwebtoken signs with it.
    pub fn encoding_key(&self) -> EncodingKey {
        match self.algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_der(self.der.expose()),
            _ => EncodingKey::from_ec_der(self.der.expose()),
        }
    }
}

/// Which algorithm a new key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKey {
    Es256,
    EdDsa,
}

/// Writes a fresh PKCS#8 signing key (readable by its owner only) and
/// returns its `kid`.
pub fn write_new(path: &Path, kind: NewKey) -> Result<String, String> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let der = match kind {
        NewKey::Es256 => signature::EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .map(|d| d.as_ref().to_vec()),
        NewKey::EdDsa => {
            signature::Ed25519KeyPair::generate_pkcs8(&rng).map(|d| d.as_ref().to_vec())
        }
    }
    .map_err(|_| "the system random number generator failed".to_string())?;
    let key = AssertionKey::from_pkcs8(der.clone()).map_err(str::to_string)?;
    let pem = PrivateKeyDer::Pkcs8(der.into());
    let pem = pem_text("PRIVATE KEY", pem.secret_der());
    crate::tls::write_private(path, pem.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(key.kid)
}

fn pem_text(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_keys_load_with_their_kid() {
        let dir = tempfile::tempdir().expect("tempdir");
        for kind in [NewKey::Es256, NewKey::EdDsa] {
            let path = dir.path().join(format!("{kind:?}.pem"));
            let kid = write_new(&path, kind).expect("write");
            let key = AssertionKey::load(&path).expect("load");
            assert_eq!(key.kid, kid);
            assert_eq!(key.jwk["kid"], kid.as_str());
            assert!(!format!("{key:?}").contains(&b64(key.der.expose())));
        }
    }

    #[test]
    fn the_ec_thumbprint_is_rfc_7638s() {
        // RFC 7638 §3.1 computes over the required members in lexical order;
        // the worked example there is RSA, so check the construction on a
        // known P-256 JWK (RFC 7517 A.1's) against an independent digest.
        let canonical = r#"{"crv":"P-256","kty":"EC","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}"#;
        assert_eq!(
            thumbprint(canonical),
            "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"
        );
    }
}
