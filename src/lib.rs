//! authgate: a TLS-terminating reverse proxy that authenticates, authorizes
//! and logs every request before it reaches the API behind it.
//!
//! The request path, stage by stage, is `pipeline::handle`; the policy is a
//! `snapshot::Snapshot` compiled by `config::load`.

pub mod access_log;
pub mod activity;
pub mod admin;
pub mod auth;
pub mod body;
pub mod clock;
pub mod config;
pub mod echo;
pub mod error;
pub mod forward;
pub mod metrics;
pub mod pipeline;
pub mod ratelimit;
pub mod reason;
pub mod redis_backend;
pub mod reload;
pub mod revocation;
pub mod secret;
pub mod server;
pub mod snapshot;
pub mod state;
pub mod tls;
pub mod upgrade;

use arc_swap::ArcSwap;
use pipeline::GatewayState;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Why the gateway could not start (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    CaBundle(#[from] tls::CaBundleError),
    #[error("cannot open the access log: {0}")]
    AccessLog(std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot start the policy-reload thread: {0}")]
    ReloadThread(std::io::Error),
    #[error("{0}")]
    Redis(String),
}

/// Runs the gateway until SIGTERM or SIGINT, then drains connections for up
/// to `shutdown_grace`. SIGHUP reloads the policy file.
pub async fn run(config_path: PathBuf, loaded: config::Loaded) -> Result<(), StartError> {
    use tokio::signal::unix::{signal, SignalKind};
    let snapshot = loaded.snapshot;
    let auth_services = auth::AuthServices::default();
    // Readiness waits for the keys: fetch them before the first connection.
    auth_services.adopt(&snapshot.auth, None).await?;
    let tls_config = tls::server_config(&snapshot.server.tls)?;
    let listener = TcpListener::bind(snapshot.server.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: snapshot.server.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| StartError::Bind {
        addr: snapshot.server.listen,
        source,
    })?;
    let access_log =
        access_log::AccessLog::start(&snapshot.access_log).map_err(StartError::AccessLog)?;
    let forwarder = forward::Forwarder::new(&snapshot.upstream)?;
    let admin_listener = match &snapshot.admin {
        Some(admin) => {
            Some(
                TcpListener::bind(admin.listen)
                    .await
                    .map_err(|source| StartError::Bind {
                        addr: admin.listen,
                        source,
                    })?,
            )
        }
        None => None,
    };
    let revocations = Arc::new(revocation::RevocationStore::default());
    let redis = match &snapshot.redis_url {
        Some(url) => {
            let backend =
                redis_backend::RedisBackend::new(url.expose()).map_err(StartError::Redis)?;
            backend.connect().await;
            Some(Arc::new(backend))
        }
        None => None,
    };
    let limits = ratelimit::RateLimits::default().with_redis(redis.clone());
    limits.adopt(&snapshot.limits);
    let shared_snapshot: snapshot::SharedSnapshot = Arc::new(ArcSwap::from_pointee(snapshot));
    if let Some(backend) = &redis {
        let shared = shared_snapshot.clone();
        redis_backend::spawn_health(backend.clone(), revocations.clone(), move || {
            shared.load().revocation_max_entries
        });
    }
    let state = Arc::new(GatewayState {
        snapshot: shared_snapshot,
        revocations,
        limits,
        auth: auth_services,
        redis,
        forwarder,
        access_log,
        request_ids: pipeline::headers::RequestIds::new(),
        tls: ArcSwap::from_pointee(tls_config),
        grace_over: watch::Sender::new(false),
    });
    let mut terminate = signal(SignalKind::terminate()).map_err(StartError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(StartError::Signals)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(StartError::Signals)?;
    let mut user1 = signal(SignalKind::user_defined1()).map_err(StartError::Signals)?;
    let mut file_changes = reload::watch(&config_path);
    let policy_worker = reload::PolicyWorker::start().map_err(StartError::ReloadThread)?;
    // Reloads run in a task of their own so that a slow one (a saturated
    // core gives the policy thread little CPU) never holds up SIGTERM. One
    // waiting request is enough: it reads the file as it is when it starts.
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel::<()>(1);
    {
        let (path, state) = (config_path.clone(), state.clone());
        tokio::spawn(async move {
            while reload_rx.recv().await.is_some() {
                reload::reload(&path, &state, &policy_worker).await;
            }
        });
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_rx_admin = stop_rx.clone();
    let connections = server::Connections::default();
    let server_task = tokio::spawn(server::serve(
        listener,
        state.clone(),
        connections.clone(),
        stop_rx,
    ));
    if let Some(listener) = admin_listener {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(admin_addr = %addr, "admin listening");
        }
        tokio::spawn(admin::serve(listener, state.clone(), stop_rx_admin));
    }
    spawn_housekeeping(state.clone());
    tracing::info!(addr = %local, "listening");

    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => request_reload(&reload_tx),
            Some(()) = file_changes.recv() => request_reload(&reload_tx),
            _ = user1.recv() => state.access_log.reopen(),
        }
    }
    tracing::info!(open_connections = connections.count(), "shutting down");
    let _ = stop_tx.send(true);
    let _ = server_task.await;
    // The grace of the policy in force now: a reload may have changed it.
    let grace = state.snapshot.load().server.shutdown_grace;
    let drained = tokio::time::timeout(grace, connections.drained()).await;
    if drained.is_err() {
        tracing::warn!(
            open_connections = connections.count(),
            "shutdown grace period over; closing the remaining connections"
        );
        state.grace_over.send_replace(true);
        // Tunnels close at once; give them a moment to say goodbye to both ends.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), connections.drained())
            .await;
    }
    // Lines of the last requests are still in the buffer.
    state.access_log.flush();
    Ok(())
}

/// Queues a reload. One already waiting reads the file when it starts, so
/// a full queue loses nothing; a closed one means the reload task died.
fn request_reload(queue: &tokio::sync::mpsc::Sender<()>) {
    if let Err(tokio::sync::mpsc::error::TrySendError::Closed(())) = queue.try_send(()) {
        tracing::error!("the reload task has stopped; restart the gateway to apply policy changes");
    }
}

/// Periodic upkeep off the request path: idle rate-limit buckets and
/// expired revocations are dropped so memory stays bounded.
fn spawn_housekeeping(state: Arc<GatewayState>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(ratelimit::EVICTION_INTERVAL).await;
            state.limits.evict_idle();
            state.revocations.purge(clock::unix_now());
        }
    });
}
