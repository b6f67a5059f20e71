//! Helpers for `benches/e2e.sh`:
//!   bench_tool tokens DIR N     RSA key (PEM, public PEM, JWKS) and tokens in DIR:
//!                               rs_token (one RS256), rs_tokens (N distinct RS256), hs_token
//!   bench_tool hold ADDR CERT N SECS   open N TLS connections, keep them idle SECS seconds

use jsonwebtoken::{encode, jwk::Jwk, Algorithm, EncodingKey, Header};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const HS_SECRET: &str = "bench-hs-secret-bench-hs-secret-0123";

fn tokens(dir: &str, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new(dir);
    let pair = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?;
    std::fs::write(dir.join("rs_public.pem"), pair.public_key_pem())?;
    let key = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes())?;
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)?;
    jwk.common.key_id = Some("bench".into());
    std::fs::write(
        dir.join("jwks.json"),
        serde_json::json!({ "keys": [jwk] }).to_string(),
    )?;
    let exp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 3_600;
    let claims = |iss: &str, jti: usize| serde_json::json!({"iss": iss, "sub": format!("user-{}", jti % 1000), "aud": "bench", "exp": exp, "scope": "read", "jti": jti.to_string()});
    let mut rs_header = Header::new(Algorithm::RS256);
    rs_header.kid = Some("bench".into());
    std::fs::write(
        dir.join("rs_token"),
        encode(&rs_header, &claims("https://rs.bench/", 0), &key)?,
    )?;
    let hs = EncodingKey::from_secret(HS_SECRET.as_bytes());
    std::fs::write(
        dir.join("hs_token"),
        encode(
            &Header::new(Algorithm::HS256),
            &claims("https://hs.bench/", 0),
            &hs,
        )?,
    )?;
    // Distinct tokens are minted on both cores.
    let chunks: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let (key, rs_header, claims) = (&key, &rs_header, &claims);
                scope.spawn(move || {
                    (0..n)
                        .filter(|i| i % 2 == t)
                        .filter_map(|i| {
                            encode(rs_header, &claims("https://rs.bench/", i + 1), key).ok()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("rs_tokens"))?);
    for token in chunks.iter().flatten() {
        writeln!(out, "{token}")?;
    }
    Ok(())
}

fn hold(addr: &str, cert: &str, n: usize, secs: u64) -> Result<(), Box<dyn std::error::Error>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert)? {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let tls = connector
                .connect(ServerName::try_from("localhost")?, tcp)
                .await?;
            held.push(tls);
        }
        eprintln!("holding {} idle TLS connections", held.len());
        tokio::time::sleep(Duration::from_secs(secs)).await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("tokens") => tokens(
            &args[2],
            args.get(3).and_then(|n| n.parse().ok()).unwrap_or(20_000),
        ),
        Some("hold") => hold(
            &args[2],
            &args[3],
            args.get(4).and_then(|n| n.parse().ok()).unwrap_or(10_000),
            args.get(5).and_then(|n| n.parse().ok()).unwrap_or(10),
        ),
        _ => Err("usage: bench_tool tokens DIR N | hold ADDR CERT N SECS".into()),
    }
}
