//! The commands of docs/operations.md.

use authgate::auth::api_key::{format_digest, KEY_PREFIX};
use authgate::config::{self, units, LoadError};
use authgate::secret::sha256;
use base64::Engine;
use clap::{Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::time::SystemTime;

#[derive(Parser)]
#[command(
    name = "authgate",
    version,
    about = "A TLS-terminating authentication gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the gateway.
    Run {
        #[arg(short, long, env = "AUTHGATE_CONFIG", default_value = "gateway.yaml")]
        config: PathBuf,
    },
    /// Validate the policy file; print every error as FILE:LINE:COL: message.
    Check {
        #[arg(short, long, env = "AUTHGATE_CONFIG", default_value = "gateway.yaml")]
        config: PathBuf,
    },
    /// Print a new API key once, then the YAML entry for `api_keys.keys`.
    Keygen {
        #[arg(long)]
        id: String,
        /// Comma-separated scopes.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Lifetime such as 90d.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Read a key from stdin and print `sha256:<hex>`.
    HashKey,
    /// Mint an HS256 JWT for trying the gateway out.
    Token {
        #[arg(long)]
        secret_env: String,
        #[arg(long)]
        sub: String,
        #[arg(long)]
        scope: Option<String>,
        #[arg(long, default_value = "15m")]
        ttl: String,
        #[arg(long)]
        iss: Option<String>,
        #[arg(long)]
        aud: Option<String>,
    },
    /// Look for leaked API keys in files and directories (recursively,
    /// skipping binary files and .git); print PATH:LINE and the key's id,
    /// never the key. Exit 1 when a key of the policy that is not disabled
    /// was found.
    Scan {
        #[arg(short, long, env = "AUTHGATE_CONFIG", default_value = "gateway.yaml")]
        config: PathBuf,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Judge one request against the policy offline, as the gateway would:
    /// path, route, kinds, scopes, limit, decision and reason. Exit 0 when
    /// allowed, 3 when refused, 1 on bad input or a credential that needs
    /// the network.
    Explain {
        #[arg(short, long, env = "AUTHGATE_CONFIG", default_value = "gateway.yaml")]
        config: PathBuf,
        /// Print the route table with the key ids whose scopes suffice.
        #[arg(long, conflicts_with_all = ["method", "target"])]
        routes: bool,
        #[arg(required_unless_present = "routes")]
        method: Option<String>,
        /// A path (/orders/7?x=1) or a URL.
        #[arg(required_unless_present = "routes")]
        target: Option<String>,
        /// An API key (`-` reads it from stdin).
        #[arg(long, group = "credential")]
        key: Option<String>,
        /// The key with this id in the policy.
        #[arg(long, group = "credential")]
        key_id: Option<String>,
        /// A JWT (`-` reads it from stdin).
        #[arg(long, group = "credential")]
        token: Option<String>,
    },
    /// Print the JSON Schema of the policy file (for editors and CI).
    Schema,
    /// Summarize a JSON access log (a file, gzip too, or - for stdin).
    Report {
        #[arg(default_value = "-")]
        path: PathBuf,
        /// Only lines newer than this, e.g. 1h or 30m.
        #[arg(long)]
        since: Option<String>,
        /// Width of a time slice.
        #[arg(long, default_value = "1h")]
        slice: String,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a self-signed development certificate and key, or (with
    /// --assertion-key) a fresh identity-assertion signing key.
    Certs {
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// Host names or IPs, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1,::1")]
        host: Vec<String>,
        /// Write only a new PKCS#8 signing key for `identity.assertion` to this file.
        #[arg(long, value_name = "FILE")]
        assertion_key: Option<PathBuf>,
        /// The new assertion key's algorithm.
        #[arg(long, value_enum, default_value = "es256", requires = "assertion_key")]
        algorithm: AssertionAlgorithm,
    },
}

/// Algorithms `certs --assertion-key` writes keys for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AssertionAlgorithm {
    /// EC P-256.
    Es256,
    /// Ed25519.
    Eddsa,
}

/// A failed command: one sentence and an exit code.
pub struct Failure {
    pub message: String,
    pub code: u8,
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 1,
    }
}

fn runtime(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 2,
    }
}

fn load(path: &std::path::Path) -> Result<config::Loaded, Failure> {
    config::load(path).map_err(|e| match e {
        LoadError::Io { .. } => runtime(e.to_string()),
        LoadError::Invalid(errors) => invalid(format!(
            "the policy has {} error(s):\n{}",
            errors.len(),
            LoadError::Invalid(errors)
        )),
    })
}

pub fn main() -> Result<(), Failure> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Ok(()),
                _ => Err(invalid("invalid command line (see --help)")),
            };
        }
    };
    match cli.command {
        Command::Run { config } => run(config),
        Command::Check { config } => check(&config),
        Command::Keygen {
            id,
            scopes,
            expires,
        } => keygen(&id, &scopes, expires.as_deref()),
        Command::HashKey => hash_key(),
        Command::Token {
            secret_env,
            sub,
            scope,
            ttl,
            iss,
            aud,
        } => token(&secret_env, &sub, scope, &ttl, iss, aud),
        Command::Scan { config, paths } => scan(&config, &paths),
        Command::Schema => {
            let text = serde_json::to_string_pretty(&config::schema())
                .map_err(|e| runtime(e.to_string()))?;
            println!("{text}");
            Ok(())
        }
        Command::Explain {
            config,
            routes,
            method,
            target,
            key,
            key_id,
            token,
        } => {
            let credential = match (key, key_id, token) {
                (Some(k), _, _) => authgate::explain::Credential::Key(from_stdin_if_dash(k)?),
                (_, Some(id), _) => authgate::explain::Credential::KeyId(id),
                (_, _, Some(t)) => authgate::explain::Credential::Token(from_stdin_if_dash(t)?),
                _ => authgate::explain::Credential::None,
            };
            explain(&config, routes, method, target, credential)
        }
        Command::Report {
            path,
            since,
            slice,
            json,
        } => report(&path, since.as_deref(), &slice, json),
        Command::Certs {
            assertion_key: Some(path),
            algorithm,
            ..
        } => {
            use authgate::auth::assertion_key::{write_new, NewKey};
            if path.exists() {
                return Err(invalid(format!(
                    "{} exists; a rotation needs a new file (docs/operations.md, rotating the assertion key)",
                    path.display()
                )));
            }
            let kind = match algorithm {
                AssertionAlgorithm::Es256 => NewKey::Es256,
                AssertionAlgorithm::Eddsa => NewKey::EdDsa,
            };
            let kid = write_new(&path, kind).map_err(runtime)?;
            println!("wrote {} (kid {kid})", path.display());
            Ok(())
        }
        Command::Certs { out, host, .. } => {
            let cert = out.join("gateway.pem");
            let key = out.join("gateway-key.pem");
            authgate::tls::write_self_signed(&cert, &key, &host)
                .map_err(|e| runtime(e.to_string()))?;
            println!("wrote {} and {}", cert.display(), key.display());
            Ok(())
        }
    }
}

fn run(config_path: PathBuf) -> Result<(), Failure> {
    let loaded = load(&config_path)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    // One worker: a current-thread runtime, with no work stealing and no
    // hand-offs between the main thread and a worker.
    let mut builder = match loaded.snapshot.server.workers {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all();
    let runtime_ = builder
        .build()
        .map_err(|e| runtime(format!("cannot start the runtime: {e}")))?;
    runtime_
        .block_on(authgate::run(config_path, loaded))
        .map_err(|e| runtime(e.to_string()))
}

fn check(path: &std::path::Path) -> Result<(), Failure> {
    let loaded = load(path)?;
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    println!(
        "{}: ok ({} routes, {} API keys)",
        path.display(),
        loaded.snapshot.routes.routes.len(),
        loaded.snapshot.auth.api_keys.by_digest.len()
    );
    Ok(())
}

fn scan(config: &std::path::Path, paths: &[PathBuf]) -> Result<(), Failure> {
    let loaded = load(config)?;
    let summary = authgate::scan::scan(paths, &loaded.snapshot.auth.api_keys, &mut |finding| {
        println!("{finding}")
    })
    .map_err(|e| runtime(format!("cannot read: {e}")))?;
    eprintln!(
        "scanned {} files ({} binary skipped): {} authgate keys, {} of them live in {}",
        summary.files,
        summary.skipped_binary,
        summary.findings,
        summary.live,
        config.display()
    );
    if summary.live > 0 {
        return Err(invalid(format!(
            "{} live key(s) found: disable each in the policy, mint a successor (authgate keygen), reload",
            summary.live
        )));
    }
    Ok(())
}

fn from_stdin_if_dash(value: String) -> Result<String, Failure> {
    if value != "-" {
        return Ok(value);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| runtime(format!("cannot read stdin: {e}")))?;
    Ok(text.trim().to_string())
}

fn explain(
    config: &std::path::Path,
    routes: bool,
    method: Option<String>,
    target: Option<String>,
    credential: authgate::explain::Credential,
) -> Result<(), Failure> {
    use authgate::explain::Verdict;
    let loaded = load(config)?;
    if routes {
        print!("{}", authgate::explain::routes(&loaded.snapshot));
        return Ok(());
    }
    let (Some(method), Some(target)) = (method, target) else {
        return Err(invalid(
            "explain needs METHOD and a PATH or URL (or --routes)",
        ));
    };
    let runtime_ = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| runtime(format!("cannot start the runtime: {e}")))?;
    let explanation = runtime_
        .block_on(authgate::explain::explain(
            loaded.snapshot,
            &method,
            &target,
            credential,
        ))
        .map_err(invalid)?;
    print!("{}", explanation.text);
    match explanation.verdict {
        Verdict::Allowed => Ok(()),
        Verdict::Refused => Err(Failure {
            message: "the gateway would refuse this request".into(),
            code: 3,
        }),
        Verdict::Undecided => Err(invalid("this credential cannot be judged offline")),
    }
}

fn report(
    path: &std::path::Path,
    since: Option<&str>,
    slice: &str,
    json: bool,
) -> Result<(), Failure> {
    use std::io::{BufRead, BufReader, IsTerminal, Read};
    let duration = |flag: &str, text: &str| {
        units::Duration::parse(text)
            .map(|d| d.0)
            .map_err(|e| invalid(format!("{flag}: {e}")))
    };
    let options = authgate::report::Options {
        since: since
            .map(|s| duration("--since", s).map(|d| SystemTime::now() - d))
            .transpose()?,
        slice: duration("--slice", slice)?,
    };
    let cannot = |e: std::io::Error| runtime(format!("cannot read {}: {e}", path.display()));
    // A progress bar on a terminal, counting the bytes of the file as read.
    let (raw, bar): (Box<dyn Read>, indicatif::ProgressBar) = if path == std::path::Path::new("-") {
        (
            Box::new(std::io::stdin().lock()),
            indicatif::ProgressBar::hidden(),
        )
    } else {
        let file = std::fs::File::open(path).map_err(cannot)?;
        let len = file.metadata().map_or(0, |m| m.len());
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(len)
        } else {
            indicatif::ProgressBar::hidden()
        };
        (Box::new(bar.wrap_read(file)), bar)
    };
    let mut buffered = BufReader::with_capacity(1 << 20, raw);
    // gzip by its magic number, whatever the file is called.
    let gzip = buffered
        .fill_buf()
        .map_err(cannot)?
        .starts_with(&[0x1f, 0x8b]);
    let mut input: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    };
    let summary = authgate::report::read(&mut input, options).map_err(cannot)?;
    bar.finish_and_clear();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).map_err(|e| runtime(e.to_string()))?
        );
    } else {
        print!("{}", summary.text());
    }
    Ok(())
}

fn keygen(id: &str, scopes: &[String], expires: Option<&str>) -> Result<(), Failure> {
    let mut random = [0u8; 32];
    aws_lc_rs::rand::fill(&mut random)
        .map_err(|_| runtime("the system random generator failed"))?;
    let key = format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    let expires = match expires {
        None => None,
        Some(text) => {
            let d = units::Duration::parse(text).map_err(|e| invalid(format!("--expires: {e}")))?;
            Some(humantime::format_rfc3339_seconds(SystemTime::now() + d.0).to_string())
        }
    };
    println!("{key}");
    println!();
    println!("- id: {id}");
    println!("  sha256: {}", format_digest(&sha256(key.as_bytes())));
    println!("  scopes: [{}]", scopes.join(", "));
    if let Some(e) = expires {
        println!("  expires: {e}");
    }
    Ok(())
}

fn hash_key() -> Result<(), Failure> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| runtime(format!("cannot read stdin: {e}")))?;
    let key = input.trim();
    if key.is_empty() {
        return Err(invalid("no key on stdin"));
    }
    println!("{}", format_digest(&sha256(key.as_bytes())));
    Ok(())
}

fn token(
    secret_env: &str,
    sub: &str,
    scope: Option<String>,
    ttl: &str,
    iss: Option<String>,
    aud: Option<String>,
) -> Result<(), Failure> {
    let secret = std::env::var(secret_env)
        .map_err(|_| invalid(format!("environment variable {secret_env} is not set")))?;
    if secret.len() < 32 {
        return Err(invalid(format!(
            "the secret in {secret_env} is shorter than 32 bytes"
        )));
    }
    let ttl = units::Duration::parse(ttl).map_err(|e| invalid(format!("--ttl: {e}")))?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| runtime("the system clock is before 1970"))?
        .as_secs();
    let mut claims = serde_json::json!({
        "sub": sub,
        "iat": now,
        "exp": now + ttl.0.as_secs(),
    });
    if let Some(s) = scope {
        claims["scope"] = s.into();
    }
    if let Some(i) = iss {
        claims["iss"] = i.into();
    }
    if let Some(a) = aud {
        claims["aud"] = a.into();
    }
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| runtime(format!("cannot sign the token: {e}")))?;
    println!("{token}");
    Ok(())
}
