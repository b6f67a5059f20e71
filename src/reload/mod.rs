//! Policy reload (docs/operations.md): on SIGHUP or a change of the file on disk,
//! parse → validate → compile off the hot path, then publish with one
//! atomic swap. An invalid file is refused and the running policy stays.

use crate::metrics;
use crate::pipeline::GatewayState;
use crate::snapshot::Snapshot;
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

mod policy_thread;
pub use policy_thread::PolicyWorker;

/// Editors write a file in several steps; changes closer than this are one.
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// Loads the policy again; a valid one (with loadable TLS files) is swapped
/// in whole, an invalid one is refused and the running policy keeps serving.
pub async fn reload(path: &Path, state: &GatewayState, worker: &PolicyWorker) {
    let (loaded, tls_config) = match worker.compile(path).await {
        Ok(compiled) => compiled,
        Err(e) => {
            metrics::reload(false);
            state
                .stats
                .reload_finished(false, e.to_string(), crate::clock::unix_now());
            tracing::error!("policy reload refused, the previous policy keeps serving:\n{e}");
            return;
        }
    };
    let old = state.snapshot.load();
    let new = &loaded.snapshot;
    if let Err(e) = state.auth.adopt(&new.auth, Some(&old.auth)).await {
        metrics::reload(false);
        state
            .stats
            .reload_finished(false, e.to_string(), crate::clock::unix_now());
        tracing::error!("policy reload refused, the previous policy keeps serving: {e}");
        return;
    }
    let needs_restart = settings_needing_restart(&old, new);
    if !needs_restart.is_empty() {
        tracing::warn!(
            settings = %needs_restart.join(", "),
            "policy reloaded, but these changed settings apply only after a restart: {}",
            needs_restart.join(", ")
        );
    }
    state.limits.adopt(&new.limits);
    state.tls.store(Arc::new(tls_config));
    let retired = state.snapshot.swap(Arc::new(loaded.snapshot));
    worker.retire(retired);
    metrics::reload(true);
    state
        .stats
        .reload_finished(true, "policy reloaded".into(), crate::clock::unix_now());
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(file = %path.display(), "policy reloaded");
}

/// Settings read once at start (listeners, runtime, pools): a change to any
/// of them is named, never silently ignored. Everything else (routes, keys,
/// issuers, limits, timeouts and size limits of new connections, TLS
/// certificates, the upstream URL) applies with the swap.
fn settings_needing_restart(old: &Snapshot, new: &Snapshot) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut differs = |name, yes: bool| {
        if yes {
            changed.push(name);
        }
    };
    differs("server.listen", new.server.listen != old.server.listen);
    differs("server.workers", new.server.workers != old.server.workers);
    differs(
        "admin.listen",
        new.admin.as_ref().map(|a| a.listen) != old.admin.as_ref().map(|a| a.listen),
    );
    differs(
        "forward_auth.listen",
        new.forward_auth.as_ref().map(|f| f.listen) != old.forward_auth.as_ref().map(|f| f.listen),
    );
    differs(
        "rate_limits.backend",
        new.redis_url.is_some() != old.redis_url.is_some(),
    );
    differs(
        "access_log",
        new.access_log.output != old.access_log.output
            || new.access_log.format != old.access_log.format,
    );
    differs(
        "upstream.connect_timeout",
        new.upstream.connect_timeout != old.upstream.connect_timeout,
    );
    differs("upstream.ca", new.upstream.ca != old.upstream.ca);
    changed
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
