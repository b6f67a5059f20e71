//! Starting and stopping a gateway: the live state built from the first
//! policy, the listeners, the reload task, and the drain on shutdown.
//! `run` is the `authgate run` command (binds, installs signal handlers);
//! `serve` takes listeners bound by the caller and a control channel, so
//! tests and embedders can run a gateway in their own process.

use crate::pipeline::GatewayState;
use crate::{
    access_log, admin, auth, clock, config, forward, forward_auth, pipeline, ratelimit,
    redis_backend, reload, revocation, server, snapshot, tls,
};
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

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

/// The sockets a gateway serves: the main (TLS) listener and, when the
/// policy has an `admin` section, the admin listener.
pub struct Listeners {
    pub main: TcpListener,
    pub admin: Option<TcpListener>,
    /// With a `forward_auth` section: the decision listener.
    pub forward_auth: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses the policy names.
    pub async fn bind(policy: &snapshot::Snapshot) -> Result<Listeners, StartError> {
        let bind = |addr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })
        };
        let main = bind(policy.server.listen).await?;
        let admin = match &policy.admin {
            Some(settings) => Some(bind(settings.listen).await?),
            None => None,
        };
        let forward_auth = match &policy.forward_auth {
            Some(settings) => Some(bind(settings.listen).await?),
            None => None,
        };
        Ok(Listeners {
            main,
            admin,
            forward_auth,
        })
    }
}

/// What a running gateway can be told, by signal or by its embedder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop accepting, drain for up to `shutdown_grace`, return.
    Stop,
    /// Load the policy file again.
    Reload,
    /// Reopen the access-log file (after rotation).
    ReopenLog,
}

/// Runs the gateway until SIGTERM or SIGINT, then drains connections for up
/// to `shutdown_grace`. SIGHUP reloads the policy file; SIGUSR1 reopens the
/// access log.
pub async fn run(config_path: PathBuf, loaded: config::Loaded) -> Result<(), StartError> {
    let listeners = Listeners::bind(&loaded.snapshot).await?;
    // Installed before the gateway says it listens: a signal sent once it
    // has said so is never lost.
    let control = signal_control().map_err(StartError::Signals)?;
    serve(config_path, loaded, listeners, control).await
}

/// Turns SIGTERM/SIGINT, SIGHUP and SIGUSR1 into `Control` messages.
fn signal_control() -> std::io::Result<mpsc::Receiver<Control>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut user1 = signal(SignalKind::user_defined1())?;
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                _ = terminate.recv() => Control::Stop,
                _ = interrupt.recv() => Control::Stop,
                _ = hangup.recv() => Control::Reload,
                _ = user1.recv() => Control::ReopenLog,
            };
            if tx.send(message).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Serves on `listeners` until `control` says `Stop` (or is closed), then
/// drains. Changes of the policy file on disk reload it, as `Reload` does.
pub async fn serve(
    config_path: PathBuf,
    loaded: config::Loaded,
    listeners: Listeners,
    mut control: mpsc::Receiver<Control>,
) -> Result<(), StartError> {
    let local = listeners
        .main
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: loaded.snapshot.server.listen,
            source,
        })?;
    let state = build_state(loaded.snapshot).await?;
    let reload_queue = spawn_reloader(config_path.clone(), state.clone())?;
    let mut file_changes = reload::watch(&config_path);
    let (stop_tx, stop_rx) = watch::channel(false);
    let connections = server::Connections::default();
    let server_task = tokio::spawn(server::serve(
        listeners.main,
        state.clone(),
        connections.clone(),
        stop_rx.clone(),
    ));
    if let Some(listener) = listeners.admin {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(admin_addr = %addr, "admin listening");
        }
        tokio::spawn(admin::serve(listener, state.clone(), stop_rx.clone()));
    }
    if let Some(listener) = listeners.forward_auth {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(forward_auth_addr = %addr, "forward-auth listening");
        }
        tokio::spawn(forward_auth::serve(listener, state.clone(), stop_rx));
    }
    spawn_housekeeping(state.clone());
    tracing::info!(addr = %local, "listening");
    loop {
        let message = tokio::select! {
            message = control.recv() => message.unwrap_or(Control::Stop),
            Some(()) = file_changes.recv() => Control::Reload,
        };
        match message {
            Control::Stop => break,
            Control::Reload => request_reload(&reload_queue),
            Control::ReopenLog => state.access_log.reopen(),
        }
    }
    tracing::info!(open_connections = connections.count(), "shutting down");
    let _ = stop_tx.send(true);
    let _ = server_task.await;
    drain(&state, &connections).await;
    Ok(())
}

/// The live state for the first policy: services built once and carried
/// across every reload after it.
async fn build_state(snapshot: snapshot::Snapshot) -> Result<Arc<GatewayState>, StartError> {
    let redis = match &snapshot.redis_url {
        Some(url) => {
            let backend =
                redis_backend::RedisBackend::new(url.expose()).map_err(StartError::Redis)?;
            backend.connect().await;
            Some(Arc::new(backend))
        }
        None => None,
    };
    let auth_services = auth::AuthServices {
        sessions: auth::session::SessionServices::new(redis.clone()),
        ..auth::AuthServices::default()
    };
    // Readiness waits for the keys: fetch them before the first connection.
    auth_services.adopt(&snapshot.auth, None).await?;
    if let Some(sessions) = &snapshot.auth.sessions {
        if sessions.endpoints().is_none() {
            tracing::error!(provider = %sessions.provider, "the OpenID provider's discovery document or keys could not be read; sign-in is unavailable and /readyz says not_ready until they are");
        }
    }
    let tls_config = tls::server_config(&snapshot.server.tls)?;
    let access_log =
        access_log::AccessLog::start(&snapshot.access_log).map_err(StartError::AccessLog)?;
    let forwarder = forward::Forwarder::new(&snapshot.upstream)?;
    let revocations = Arc::new(revocation::RevocationStore::default());
    let limits = ratelimit::RateLimits::default().with_redis(redis.clone());
    limits.adopt(&snapshot.limits);
    let shared_snapshot: snapshot::SharedSnapshot = Arc::new(ArcSwap::from_pointee(snapshot));
    if let Some(backend) = &redis {
        let shared = shared_snapshot.clone();
        redis_backend::spawn_health(backend.clone(), revocations.clone(), move || {
            shared.load().revocation_max_entries
        });
    }
    Ok(Arc::new(GatewayState {
        snapshot: shared_snapshot,
        revocations,
        limits,
        auth: auth_services,
        redis,
        forwarder,
        access_log,
        stats: Arc::new(crate::stats::Stats::default()),
        request_ids: pipeline::headers::RequestIds::new(),
        tls: ArcSwap::from_pointee(tls_config),
        grace_over: watch::Sender::new(false),
    }))
}

/// Reloads run in a task of their own so that a slow one (a saturated core
/// gives the policy thread little CPU) never holds up a stop. One waiting
/// request is enough: it reads the file as it is when it starts.
fn spawn_reloader(path: PathBuf, state: Arc<GatewayState>) -> Result<mpsc::Sender<()>, StartError> {
    let policy_worker = reload::PolicyWorker::start().map_err(StartError::ReloadThread)?;
    let (queue, mut requests) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        while requests.recv().await.is_some() {
            reload::reload(&path, &state, &policy_worker).await;
        }
    });
    Ok(queue)
}

/// Waits up to the grace of the policy in force now (a reload may have
/// changed it) for open connections, then closes what is left.
async fn drain(state: &GatewayState, connections: &server::Connections) {
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
}

/// Queues a reload. One already waiting reads the file when it starts, so
/// a full queue loses nothing; a closed one means the reload task died.
fn request_reload(queue: &mpsc::Sender<()>) {
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
