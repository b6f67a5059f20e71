//! TLS settings: termination (server config, the development certificate)
//! and the client side shared by the upstream and authorization-server
//! clients (web PKI roots plus an optional CA bundle).

use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub generate_self_signed: bool,
    pub tls13_only: bool,
    pub client_ca: Option<PathBuf>,
    /// `client_auth: optional`: a client may present no certificate.
    pub client_auth_optional: bool,
    pub client_crl: Option<PathBuf>,
}

/// An extra CA bundle (upstream, issuer or introspection `ca`) that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot read CA bundle {path}: {reason}")]
pub struct CaBundleError {
    pub path: String,
    pub reason: String,
}

/// Root certificates: the public web PKI plus an optional extra bundle.
pub fn client_tls_config(
    extra_ca: Option<&std::path::Path>,
) -> Result<rustls::ClientConfig, CaBundleError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let err = |reason: String| CaBundleError {
            path: path.display().to_string(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no certificate in file".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| err(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CaBundleError {
            path: String::new(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS certificate and key do not form a usable pair: {0}")]
    Config(String),
    #[error("cannot create a development certificate: {0}")]
    Generate(String),
}

fn file_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// A self-signed certificate and its key, PEM-encoded, for `hosts` (DNS names or IPs).
pub fn self_signed(hosts: &[String]) -> Result<(String, String), TlsError> {
    let certified = rcgen::generate_simple_self_signed(hosts.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((certified.cert.pem(), certified.signing_key.serialize_pem()))
}

/// Writes a development certificate and key (the key readable by its owner only).
pub fn write_self_signed(cert: &Path, key: &Path, hosts: &[String]) -> Result<(), TlsError> {
    let (cert_pem, key_pem) = self_signed(hosts)?;
    for path in [cert, key] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
        }
    }
    std::fs::write(cert, cert_pem).map_err(|e| file_err(cert, e))?;
    write_private(key, key_pem.as_bytes()).map_err(|e| file_err(key, e))?;
    Ok(())
}

pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

/// The hosts a development certificate covers.
pub fn dev_hosts() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
}

/// The CA certificates that sign client certificates.
pub fn client_roots(ca: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| file_err(ca, e))? {
        roots
            .add(cert.map_err(|e| file_err(ca, e))?)
            .map_err(|e| file_err(ca, e))?;
    }
    if roots.is_empty() {
        return Err(file_err(ca, "no certificate in file"));
    }
    Ok(roots)
}

/// The certificate revocation lists of `server.tls.client_crl`.
pub fn client_crls(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateRevocationListDer<'static>>, TlsError> {
    use rustls::pki_types::CertificateRevocationListDer;
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if crls.is_empty() {
        return Err(file_err(path, "no CRL in file"));
    }
    Ok(crls)
}

/// Builds the server's rustls configuration: ALPN h2 + http/1.1, the minimum
/// version, and client-certificate verification when `client_ca` is set.
pub fn server_config(tls: &TlsSettings) -> Result<ServerConfig, TlsError> {
    if tls.generate_self_signed && (!tls.cert.exists() || !tls.key.exists()) {
        write_self_signed(&tls.cert, &tls.key, &dev_hosts())?;
        tracing::warn!(cert = %tls.cert.display(), "generated a self-signed development certificate; do not use it in production");
    }
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| file_err(&tls.cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(&tls.cert, e))?;
    if certs.is_empty() {
        return Err(file_err(&tls.cert, "no certificate in file"));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| file_err(&tls.key, e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = client_roots(ca)?;
            let crls = match &tls.client_crl {
                Some(path) => client_crls(path)?,
                None => Vec::new(),
            };
            // webpki checks the chain, the validity period, the CRLs (of
            // the leaf: a revoked intermediate needs its own CRL listed)
            // and an extended key usage, which must include clientAuth
            // when the certificate names any.
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .with_crls(crls)
                    .only_check_end_entity_revocation();
            if tls.client_auth_optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

pub fn version_name(v: Option<rustls::ProtocolVersion>) -> &'static str {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "unknown",
    }
}
