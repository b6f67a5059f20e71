//! Helpers for `benches/e2e.sh`:
//!   bench_tool tokens DIR N     RSA key (PEM, public PEM, JWKS) and tokens in DIR:
//!                               rs_token (one RS256), rs_tokens (N distinct RS256), hs_token
//!   bench_tool hold ADDR CERT N SECS   open N TLS connections, keep them idle SECS seconds
//!   bench_tool paced URL CERT RATE SECS CONNS [HEADER: VALUE]...
//!                               open-loop load: RATE requests/s for SECS seconds over at most
//!                               CONNS keep-alive connections, each request sent at its scheduled
//!                               time whatever the answers before it did, and its latency counted
//!                               from that time (no coordinated omission). Prints one JSON line:
//!                               sent, statuses, errors, p50/p99/p99.9 in ms.

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

/// A TLS client trusting the certificate in `cert`.
fn client_config(cert: &str) -> Result<rustls::ClientConfig, Box<dyn std::error::Error>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert)? {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn hold(addr: &str, cert: &str, n: usize, secs: u64) -> Result<(), Box<dyn std::error::Error>> {
    use rustls::pki_types::ServerName;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(cert)?));
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

fn paced(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    let [url, cert, rate, secs, conns, headers @ ..] = args else {
        return Err("usage: bench_tool paced URL CERT RATE SECS CONNS [HEADER: VALUE]...".into());
    };
    let (rate, secs, conns): (f64, f64, usize) = (rate.parse()?, secs.parse()?, conns.parse()?);
    let tls = client_config(cert)?;
    // BENCH_NODELAY=1: TCP_NODELAY on the client's sockets (hyper's
    // connector leaves Nagle on by default).
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(std::env::var_os("BENCH_NODELAY").is_some());
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let uri: http::Uri = url.parse()?;
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|h| h.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let client: hyper_util::client::legacy::Client<_, Empty<Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(conns)
                .build(connector);
        // At most CONNS requests in flight: the rest wait their turn, and
        // the wait counts in their latency.
        let slots = Arc::new(tokio::sync::Semaphore::new(conns));
        let total = (rate * secs) as u64;
        let interval = Duration::from_secs_f64(1.0 / rate);
        // BENCH_WARM=1: open the connections with one request each, all at
        // once, before the clock starts, so the run measures a steady state
        // instead of connections opening while the load arrives.
        if std::env::var_os("BENCH_WARM").is_some() {
            let warm: Vec<_> = (0..conns)
                .map(|_| {
                    let (client, uri) = (client.clone(), uri.clone());
                    tokio::spawn(async move {
                        if let Ok(req) = http::Request::get(uri).body(Empty::new()) {
                            if let Ok(response) = client.request(req).await {
                                let _ = response.into_body().collect().await;
                            }
                        }
                    })
                })
                .collect();
            for task in warm {
                let _ = task.await;
            }
        }
        let start = tokio::time::Instant::now();
        let (done_tx, mut done_rx) =
            tokio::sync::mpsc::unbounded_channel::<(Option<u16>, u64, u64)>();
        for i in 0..total {
            let scheduled = start + interval.mul_f64(i as f64);
            tokio::time::sleep_until(scheduled).await;
            let (client, uri, headers, slots, done) = (
                client.clone(),
                uri.clone(),
                headers.clone(),
                slots.clone(),
                done_tx.clone(),
            );
            tokio::spawn(async move {
                let _slot = slots.acquire_owned().await;
                let mut req = http::Request::get(uri);
                for (k, v) in &headers {
                    req = req.header(k.as_str(), v.as_str());
                }
                let status = match req.body(Empty::new()) {
                    Ok(req) => {
                        match tokio::time::timeout(Duration::from_secs(10), client.request(req))
                            .await
                        {
                            Ok(Ok(response)) => {
                                let status = response.status().as_u16();
                                let _ = response.into_body().collect().await;
                                Some(status)
                            }
                            _ => None,
                        }
                    }
                    Err(_) => None,
                };
                let micros = scheduled.elapsed().as_micros() as u64;
                let _ = done.send((status, micros, i));
            });
        }
        drop(done_tx);
        let mut latencies = Vec::with_capacity(total as usize);
        let mut statuses = std::collections::BTreeMap::<String, u64>::new();
        let mut errors = 0u64;
        // BENCH_TIMELINE=1: the worst latency of each 100 ms of scheduled
        // time on stderr, to see when a tail builds up.
        let per_bucket = (rate / 10.0).max(1.0) as u64;
        let mut worst = vec![0u64; (total / per_bucket + 1) as usize];
        while let Some((status, micros, i)) = done_rx.recv().await {
            match status {
                Some(s) => *statuses.entry(s.to_string()).or_default() += 1,
                None => errors += 1,
            }
            latencies.push(micros);
            if let Some(w) = worst.get_mut((i / per_bucket) as usize) {
                *w = (*w).max(micros);
            }
        }
        if std::env::var_os("BENCH_TIMELINE").is_some() {
            let ms: Vec<u64> = worst.iter().map(|us| us / 1000).collect();
            eprintln!("worst ms per 100 ms: {ms:?}");
        }
        latencies.sort_unstable();
        let at = |q: f64| {
            let i =
                ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
            latencies.get(i).map_or(0.0, |us| *us as f64 / 1000.0)
        };
        println!(
            "{}",
            serde_json::json!({
                "sent": total, "rate": rate, "seconds": secs, "statuses": statuses,
                "errors": errors, "p50_ms": at(0.5), "p99_ms": at(0.99), "p999_ms": at(0.999),
            })
        );
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
        Some("paced") => paced(&args[2..]),
        _ => Err("usage: bench_tool tokens DIR N | hold ADDR CERT N SECS | paced URL CERT RATE SECS CONNS [HEADER: VALUE]...".into()),
    }
}
