//! Policy reload (SPEC §6): on SIGHUP or a change of the file on disk,
//! parse → validate → compile off the hot path, then publish with one
//! atomic swap. An invalid file is refused and the running policy stays.

use crate::pipeline::GatewayState;
use crate::snapshot::Snapshot;
use crate::{config, metrics, tls};
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Editors write a file in several steps; changes closer than this are one.
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// A long-lived thread at the lowest CPU priority that compiles new policies
/// and frees replaced ones. It is started once: a thread started (and
/// reniced by a child process) per reload cost requests on a busy core more
/// latency than a whole 10,000-key compile.
pub struct PolicyWorker {
    jobs: std::sync::mpsc::Sender<Job>,
}

enum Job {
    Compile {
        path: PathBuf,
        reply: tokio::sync::oneshot::Sender<Result<Compiled, String>>,
    },
    Retire(Arc<Snapshot>),
}

type Compiled = (config::Loaded, rustls::ServerConfig);

impl PolicyWorker {
    pub fn start() -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("policy-reload".into())
            .spawn(move || {
                lower_own_priority();
                work(&queue);
            })?;
        Ok(Self { jobs })
    }

    async fn compile(&self, path: &Path) -> Result<Compiled, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job::Compile {
            path: path.to_path_buf(),
            reply,
        };
        self.jobs
            .send(job)
            .map_err(|_| "the policy-reload thread has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the policy-reload thread has stopped".to_string())?
    }

    /// Frees a replaced snapshot once the requests that started under it
    /// are done: freeing 10,000 keys on a request's worker thread would show
    /// in that request's latency.
    fn retire(&self, old: Arc<Snapshot>) {
        // If the thread is gone, the last request to finish frees it instead.
        let _ = self.jobs.send(Job::Retire(old));
    }
}

fn work(queue: &std::sync::mpsc::Receiver<Job>) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut retired: Vec<(Arc<Snapshot>, std::time::Instant)> = Vec::new();
    loop {
        let job = if retired.is_empty() {
            queue.recv().ok()
        } else {
            match queue.recv_timeout(RETIRE_POLL) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        match job {
            Some(Job::Compile { path, reply }) => {
                let _ = reply.send(compile(&path));
            }
            Some(Job::Retire(old)) => {
                retired.push((old, std::time::Instant::now() + RETIRE_WAIT));
            }
            None if retired.is_empty() => return,
            None => {}
        }
        // Dropping our handle frees a snapshot nobody else holds; past the
        // wait, the last request to finish frees it.
        let now = std::time::Instant::now();
        retired.retain(|(old, give_up)| Arc::strong_count(old) > 1 && now < *give_up);
    }
}

fn compile(path: &Path) -> Result<Compiled, String> {
    let loaded = config::load(path).map_err(|e| e.to_string())?;
    let tls_config = tls::server_config(&loaded.snapshot.server.tls).map_err(|e| e.to_string())?;
    Ok((loaded, tls_config))
}

/// How often the policy thread looks whether a retired snapshot is free.
const RETIRE_POLL: Duration = Duration::from_millis(10);
/// How long a retired snapshot waits for its last request.
const RETIRE_WAIT: Duration = Duration::from_secs(30);

/// Loads the policy again; a valid one (with loadable TLS files) is swapped
/// in whole, an invalid one is refused and the running policy keeps serving.
pub async fn reload(path: &Path, state: &GatewayState, worker: &PolicyWorker) {
    let (mut loaded, tls_config) = match worker.compile(path).await {
        Ok(compiled) => compiled,
        Err(e) => {
            metrics::reload(false);
            tracing::error!("policy reload refused, the previous policy keeps serving:\n{e}");
            return;
        }
    };
    state.jwks.adopt(&mut loaded.snapshot.jwt).await;
    let old = state.snapshot.load();
    let new = &loaded.snapshot;
    if new.server.listen != old.server.listen {
        tracing::warn!("server.listen changed; the new address needs a restart");
    }
    if new.admin.as_ref().map(|a| a.listen) != old.admin.as_ref().map(|a| a.listen) {
        tracing::warn!("admin.listen changed; the new address needs a restart");
    }
    if new.redis_url.is_some() != old.redis_url.is_some() {
        tracing::warn!("rate_limits.backend changed; the new backend needs a restart");
    }
    if new.access_log.output != old.access_log.output
        || new.access_log.format != old.access_log.format
    {
        tracing::warn!("access_log changed; the new output or format needs a restart");
    }
    if new.upstream.connect_timeout != old.upstream.connect_timeout
        || new.upstream.timeout != old.upstream.timeout
        || new.upstream.ca != old.upstream.ca
    {
        tracing::warn!(
            "upstream timeouts or CA changed; they apply after a restart (the URL applies now)"
        );
    }
    state.limits.adopt(&new.limits);
    state.tls.store(Arc::new(tls_config));
    let retired = state.snapshot.swap(Arc::new(loaded.snapshot));
    worker.retire(retired);
    metrics::reload(true);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(file = %path.display(), "policy reloaded");
}

/// Puts the calling thread in the idle scheduling class (SCHED_IDLE), or
/// failing that at nice 19, so that serving traffic always wins over
/// compiling a policy: an idle-class thread runs when the core has nothing
/// else to do and gives way the moment a request's thread wakes. Linux names
/// a thread by its id under /proc/thread-self; elsewhere this does nothing.
/// Called once, for the policy thread's whole life (see `PolicyWorker`).
fn lower_own_priority() {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return;
    };
    let Some(tid) = link
        .file_name()
        .and_then(|t| t.to_str())
        .map(str::to_string)
    else {
        return;
    };
    let quietly = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if !quietly("chrt", &["--idle", "--pid", "0", &tid]) {
        quietly("renice", &["-n", "19", "-p", &tid]);
    }
}

/// Watches the policy file. The directory is watched, not the file, so an
/// editor that writes a new file and renames it over the old one is seen.
/// Returns a channel that yields once per (debounced) change.
pub fn watch(path: &Path) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    let file_name = path.file_name().map(|n| n.to_os_string());
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        let ours = event
            .paths
            .iter()
            .any(|p| p.file_name().map(|n| n.to_os_string()) == file_name);
        if ours {
            let _ = raw_tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the policy file; reload with SIGHUP");
            return rx;
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the policy directory; reload with SIGHUP");
        return rx;
    }
    tokio::spawn(async move {
        let _watcher = watcher; // lives as long as this task
        while raw_rx.recv().await.is_some() {
            tokio::time::sleep(WATCH_DEBOUNCE).await;
            while raw_rx.try_recv().is_ok() {}
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    rx
}
