//! Client certificates as credentials (kind `mtls`, docs/policy.md `mtls`).
//! rustls has verified the chain, the validity period, the clientAuth key
//! usage and the CRL during the handshake; what is left is to read the
//! certificate's subject and look it up among the listed clients.

use super::identity::Identity;
use crate::error::{GatewayError, Reason, Scheme};
use http::HeaderValue;
use std::collections::HashMap;
use std::sync::Arc;

/// What the connection's verified client certificate says, read once per
/// handshake.
#[derive(Debug)]
pub struct ClientCert {
    /// Lower-case hex SHA-256 of the DER (`identity.cert_sha256`).
    pub sha256_hex: HeaderValue,
    pub san_uris: Vec<String>,
    pub san_dns: Vec<String>,
    pub common_name: Option<String>,
}

impl ClientCert {
    /// Reads a certificate rustls accepted. One x509-parser cannot read
    /// keeps its fingerprint and has no names, so it matches no client.
    pub fn from_der(der: &[u8]) -> ClientCert {
        use x509_parser::extensions::GeneralName;
        let digest = hex::encode(crate::secret::sha256(der));
        let mut cert = ClientCert {
            sha256_hex: HeaderValue::from_str(&digest)
                .unwrap_or_else(|_| HeaderValue::from_static("")),
            san_uris: Vec::new(),
            san_dns: Vec::new(),
            common_name: None,
        };
        let Ok((_, parsed)) = x509_parser::parse_x509_certificate(der) else {
            return cert;
        };
        if let Ok(Some(san)) = parsed.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) => cert.san_uris.push((*uri).to_string()),
                    GeneralName::DNSName(dns) => cert.san_dns.push((*dns).to_string()),
                    _ => {}
                }
            }
        }
        cert.common_name = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string);
        cert
    }

    /// The first name found among `from`, in order.
    fn subject(&self, from: &[SubjectSource]) -> Option<&str> {
        from.iter().find_map(|source| match source {
            SubjectSource::SanUri => self.san_uris.first().map(String::as_str),
            SubjectSource::SanDns => self.san_dns.first().map(String::as_str),
            SubjectSource::Cn => self.common_name.as_deref(),
        })
    }
}

/// Where a certificate's subject is read (`mtls.subject_from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectSource {
    SanUri,
    SanDns,
    Cn,
}

impl SubjectSource {
    pub fn parse(name: &str) -> Option<SubjectSource> {
        match name {
            "san_uri" => Some(SubjectSource::SanUri),
            "san_dns" => Some(SubjectSource::SanDns),
            "cn" => Some(SubjectSource::Cn),
            _ => None,
        }
    }
}

/// The `mtls` section, compiled: each listed subject's identity built once.
#[derive(Debug, Default)]
pub struct MtlsPolicy {
    pub subject_from: Vec<SubjectSource>,
    pub clients: HashMap<String, Arc<Identity>>,
}

impl MtlsPolicy {
    /// The listed client a verified certificate names, or 401 `unknown_client_cert`.
    pub fn authenticate(&self, cert: &ClientCert) -> Result<Arc<Identity>, GatewayError> {
        cert.subject(&self.subject_from)
            .and_then(|subject| self.clients.get(subject))
            .cloned()
            .ok_or_else(|| {
                GatewayError::invalid_credential(
                    Scheme::Bearer,
                    Reason::UnknownClientCert,
                    "The client certificate does not name a listed client.",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(uri: Option<&str>, dns: &[&str], cn: Option<&str>) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        if let Some(uri) = uri {
            params.subject_alt_names.push(rcgen::SanType::URI(
                rcgen::string::Ia5String::try_from(uri).expect("ia5"),
            ));
        }
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn the_first_present_source_is_the_subject() {
        let der = cert(
            Some("spiffe://example.org/billing"),
            &["billing.internal"],
            Some("Billing"),
        );
        let parsed = ClientCert::from_der(&der);
        use SubjectSource::*;
        assert_eq!(
            parsed.subject(&[SanUri, SanDns, Cn]),
            Some("spiffe://example.org/billing")
        );
        assert_eq!(parsed.subject(&[SanDns, SanUri]), Some("billing.internal"));
        assert_eq!(parsed.subject(&[Cn]), Some("Billing"));
        let only_cn = ClientCert::from_der(&cert(None, &[], Some("worker-7")));
        assert_eq!(only_cn.subject(&[SanUri, SanDns, Cn]), Some("worker-7"));
        assert_eq!(only_cn.subject(&[SanUri, SanDns]), None);
        assert_eq!(
            parsed.sha256_hex.to_str().ok(),
            Some(hex::encode(crate::secret::sha256(&der)).as_str())
        );
    }

    #[test]
    fn an_unreadable_certificate_has_a_fingerprint_and_no_names() {
        let parsed = ClientCert::from_der(b"not a certificate");
        assert_eq!(
            parsed.subject(&[SubjectSource::SanUri, SubjectSource::Cn]),
            None
        );
        assert_eq!(parsed.sha256_hex.len(), 64);
    }
}
