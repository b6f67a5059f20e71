//! Everything a request needs that outlives one policy snapshot: the
//! current snapshot itself, and the live services built once and carried
//! across reloads.

use crate::access_log::AccessLog;
use crate::forward::Forwarder;
use crate::pipeline::headers::RequestIds;
use crate::snapshot::SharedSnapshot;
use std::sync::Arc;

/// Everything a request needs that outlives one policy snapshot.
pub struct GatewayState {
    pub snapshot: SharedSnapshot,
    pub revocations: Arc<crate::revocation::RevocationStore>,
    pub limits: crate::ratelimit::RateLimits,
    /// Fetch clients, remote key sets, token and introspection caches.
    pub auth: crate::auth::AuthServices,
    /// The one Redis service (limits, revocations), with `backend: redis`.
    pub redis: Option<Arc<crate::redis_backend::RedisBackend>>,
    pub forwarder: Forwarder,
    pub access_log: AccessLog,
    /// The dashboard's window of the last 15 minutes.
    pub stats: Arc<crate::stats::Stats>,
    pub request_ids: RequestIds,
    /// TLS settings for new handshakes; replaced on reload.
    pub tls: arc_swap::ArcSwap<rustls::ServerConfig>,
    /// Turns true when the shutdown grace is spent: what still runs on its
    /// own (WebSocket tunnels) closes then.
    pub grace_over: tokio::sync::watch::Sender<bool>,
}

impl GatewayState {
    /// Enters a revocation here at once and, with Redis, for every replica.
    /// Past `revocation.max_entries` it is stored nowhere.
    pub async fn revoke(
        &self,
        entry: &crate::revocation::Revocation,
    ) -> Result<(), crate::revocation::StoreFull> {
        let max_entries = self.snapshot.load().revocation_max_entries;
        self.revocations.insert(entry, max_entries)?;
        if let Some(redis) = &self.redis {
            redis.store_revocation(entry).await;
        }
        Ok(())
    }
}

impl GatewayState {
    /// The part of the live state the decision (steps 1–7) reads.
    pub fn live(&self) -> crate::pipeline::decide::Live<'_> {
        crate::pipeline::decide::Live {
            limits: &self.limits,
            revocations: &self.revocations,
            auth: &self.auth,
        }
    }
}
