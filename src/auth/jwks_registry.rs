//! The live remote key sets of the running policy, by spec, each kept
//! fresh by a task of its own.

use super::fetch::FetchClients;
use super::jwks::{RemoteKeys, RemoteRef, RemoteSpec, RETRY_AFTER_FAILURE};
use crate::clock::SystemClock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Keeps a remote key set fresh until the last policy using it is gone.
fn spawn_refresher(keys: &Arc<RemoteKeys>, every: Duration) {
    let weak = Arc::downgrade(keys);
    tokio::spawn(async move {
        let mut delay = every;
        loop {
            tokio::time::sleep(delay).await;
            let Some(keys) = weak.upgrade() else { return };
            delay = match keys.refresh().await {
                Ok(()) => every,
                Err(_) => every.min(RETRY_AFTER_FAILURE),
            };
        }
    });
}

/// The live remote key sets, by spec. `adopt` binds a new policy's
/// references: a spec already live keeps its set (keys and fetch history
/// carry over); a new one is fetched once before the policy goes live.
#[derive(Default)]
pub struct JwksRegistry {
    live: Mutex<HashMap<RemoteSpec, Arc<RemoteKeys>>>,
}

impl JwksRegistry {
    pub async fn adopt<'a>(
        &self,
        refs: impl Iterator<Item = &'a RemoteRef>,
        clients: &FetchClients,
    ) {
        let mut next = HashMap::new();
        let mut fresh = Vec::new();
        {
            let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            for r in refs {
                let keys = match live.get(&r.spec).or_else(|| next.get(&r.spec)) {
                    Some(existing) => existing.clone(),
                    None => {
                        let Some(client) = clients.get(r.spec.ca.as_deref()) else {
                            tracing::error!(issuer = %r.spec.issuer, "no fetch client for this issuer's CA; it stays without keys");
                            continue;
                        };
                        let keys = Arc::new(RemoteKeys::new(
                            r.spec.clone(),
                            client,
                            Arc::new(SystemClock),
                        ));
                        fresh.push((keys.clone(), r.refresh));
                        keys
                    }
                };
                r.bind(keys.clone());
                next.insert(r.spec.clone(), keys);
            }
        }
        let mut first_fetches = tokio::task::JoinSet::new();
        for (remote, _) in &fresh {
            let remote = remote.clone();
            first_fetches.spawn(async move { remote.refresh().await });
        }
        while first_fetches.join_next().await.is_some() {}
        for (remote, every) in &fresh {
            spawn_refresher(remote, *every);
        }
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = next;
    }

    /// Every remote key set: its issuer and whether it has keys (the dashboard).
    pub fn states(&self) -> Vec<(String, bool)> {
        let mut states: Vec<(String, bool)> = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|r| (r.spec.issuer.clone(), r.has_keys()))
            .collect();
        states.sort();
        states.dedup();
        states
    }

    /// Issuers whose key set is still empty (for readiness).
    pub fn without_keys(&self) -> Vec<String> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|r| !r.has_keys())
            .map(|r| r.spec.issuer.clone())
            .collect()
    }
}
