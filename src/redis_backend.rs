//! Redis for scale-out (docs/operations.md): the GCRA of every limit runs in one Lua
//! script (loaded once, called by SHA) so a limit holds across replicas,
//! and revocations are stored with a TTL each and mirrored locally.
//! When Redis is unreachable the gateway keeps serving on per-process
//! buckets, says so once per outage, and reconnects by itself.

use crate::ratelimit::spec::{ceil_secs, LimitSpec, Outcome};
use crate::revocation::{Revocation, RevocationStore, SUBJECT_ENTRY_LIFETIME};
use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One Redis call may take this long before the request falls back to memory.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// How often an outage is probed for recovery.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// The local revocation mirror is refreshed at least this often (docs/operations.md: ≤ 5 s).
pub const REVOCATION_SYNC_INTERVAL: Duration = Duration::from_secs(2);

const KEY_PREFIX: &str = "authgate:";

/// GCRA in microseconds on Redis's own clock, so replicas agree on time.
/// ARGV: emission interval (µs), burst, spend (1) or only look (0).
/// Returns {allowed, remaining, reset_us, retry_us}.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local spend = tonumber(ARGV[3])
local tau = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - tau > now then
  return {0, 0, tat - now, new_tat - tau - now}
end
if spend == 1 then
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
end
return {1, math.floor((tau - (new_tat - now)) / interval), new_tat - now, 0}
";

/// Redis could not answer a call in time (or is in an outage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable;

pub struct RedisBackend {
    client: redis::Client,
    conn: ArcSwapOption<ConnectionManager>,
    script: redis::Script,
    degraded: AtomicBool,
    /// Revocations taken during an outage, written when Redis returns.
    pending: Mutex<Vec<Revocation>>,
}

impl RedisBackend {
    /// Parses the URL; connecting happens in `connect` and the health loop.
    pub fn new(url: &str) -> Result<RedisBackend, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
        Ok(RedisBackend {
            client,
            conn: ArcSwapOption::empty(),
            script: redis::Script::new(GCRA_LUA),
            degraded: AtomicBool::new(true),
            pending: Mutex::new(Vec::new()),
        })
    }

    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    fn mark_degraded(&self, error: &str) {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::error!(error, "Redis unreachable: rate limits fall back to per-process buckets and revocations to the local mirror until it returns");
        }
    }

    /// Connects (or checks the connection) and clears the degraded state on success.
    pub async fn connect(&self) -> bool {
        let conn = match self.conn.load_full() {
            Some(c) => c,
            None => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(1);
                let made = tokio::time::timeout(
                    REDIS_TIMEOUT * 2,
                    ConnectionManager::new_with_config(self.client.clone(), config),
                )
                .await;
                match made {
                    Ok(Ok(c)) => {
                        let c = Arc::new(c);
                        self.conn.store(Some(c.clone()));
                        c
                    }
                    Ok(Err(e)) => {
                        self.mark_degraded(&e.to_string());
                        return false;
                    }
                    Err(_) => {
                        self.mark_degraded("connection timed out");
                        return false;
                    }
                }
            }
        };
        let mut conn = (*conn).clone();
        let ping = tokio::time::timeout(
            REDIS_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        match ping {
            Ok(Ok(_)) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis reachable: shared rate limits and revocations resume");
                    self.flush_pending().await;
                }
                true
            }
            Ok(Err(e)) => {
                self.mark_degraded(&e.to_string());
                false
            }
            Err(_) => {
                self.mark_degraded("PING timed out");
                false
            }
        }
    }

    /// The value of a Redis call bounded by a timeout; any failure marks
    /// the outage (logged once) and yields `None`.
    fn settle<T>(
        &self,
        result: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
        what: &str,
    ) -> Option<T> {
        match result {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                self.mark_degraded(&e.to_string());
                None
            }
            Err(_) => {
                self.mark_degraded(&format!("{what} timed out"));
                None
            }
        }
    }

    fn connection(&self) -> Option<ConnectionManager> {
        if self.is_degraded() {
            return None;
        }
        self.conn.load_full().map(|c| (*c).clone())
    }

    /// Runs the GCRA for `key`; `None` when Redis cannot answer (use memory).
    pub async fn gcra(&self, key: &str, spec: LimitSpec, spend: u8) -> Option<Outcome> {
        let mut conn = self.connection()?;
        let interval_us = spec.interval().as_micros().max(1) as u64;
        let full_key = format!(
            "{KEY_PREFIX}rl:{}/{}/{}:{key}",
            spec.count,
            spec.per.as_millis(),
            spec.burst
        );
        let mut call = self.script.key(full_key);
        call.arg(interval_us).arg(spec.burst).arg(spend);
        let result = tokio::time::timeout(
            REDIS_TIMEOUT,
            call.invoke_async::<(i64, i64, i64, i64)>(&mut conn),
        )
        .await;
        let (allowed, remaining, reset_us, retry_us) = self.settle(result, "rate-limit check")?;
        Some(Outcome {
            allowed: allowed == 1,
            limit: spec.burst,
            remaining: remaining.max(0) as u32,
            reset_secs: ceil_secs(Duration::from_micros(reset_us.max(0) as u64)),
            retry_after_secs: if allowed == 1 {
                0
            } else {
                ceil_secs(Duration::from_micros(retry_us.max(0) as u64)).max(1)
            },
        })
    }

    /// Runs one command of the shared sign-in records; `Err` when Redis
    /// cannot answer (the outage is marked and logged once).
    async fn shared<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        what: &str,
    ) -> Result<T, Unreachable> {
        let mut conn = self.connection().ok_or(Unreachable)?;
        let result = tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<T>(&mut conn)).await;
        self.settle(result, what).ok_or(Unreachable)
    }

    /// The value under `key`, its lifetime renewed to `keep_secs` (GETEX).
    pub async fn take_alive(
        &self,
        key: &str,
        keep_secs: u64,
    ) -> Result<Option<Vec<u8>>, Unreachable> {
        let mut cmd = redis::cmd("GETEX");
        cmd.arg(format!("{KEY_PREFIX}{key}"))
            .arg("EX")
            .arg(keep_secs.max(1));
        self.shared(&cmd, "session read").await
    }

    /// Stores `value` under `key` for `secs`.
    pub async fn put_for(&self, key: &str, value: &[u8], secs: u64) -> Result<(), Unreachable> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{KEY_PREFIX}{key}"))
            .arg(value)
            .arg("EX")
            .arg(secs.max(1));
        self.shared(&cmd, "session write").await
    }

    pub async fn delete(&self, key: &str) -> Result<(), Unreachable> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(format!("{KEY_PREFIX}{key}"));
        self.shared::<i64>(&cmd, "session delete").await.map(|_| ())
    }

    /// Sets `key` only if it is absent (SET NX PX): true for the one caller
    /// that claimed it, in any replica.
    pub async fn claim(&self, key: &str, millis: u64) -> Result<bool, Unreachable> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{KEY_PREFIX}{key}"))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis.max(1));
        let answer: Option<String> = self.shared(&cmd, "session claim").await?;
        Ok(answer.is_some())
    }

    fn revocation_key(entry: &Revocation) -> (String, String, u64) {
        let json = serde_json::to_string(entry).unwrap_or_default();
        let digest = crate::secret::sha256(json.as_bytes());
        let expires_at = match entry {
            Revocation::Jti { exp, .. } => *exp,
            Revocation::Subject { before, .. } => {
                before.saturating_add(SUBJECT_ENTRY_LIFETIME.as_secs())
            }
        };
        (
            format!("{KEY_PREFIX}rev:{}", hex::encode(digest)),
            json,
            expires_at,
        )
    }

    async fn write_revocation(&self, entry: &Revocation) -> bool {
        let Some(mut conn) = self.connection() else {
            return false;
        };
        let (key, json, expires_at) = Self::revocation_key(entry);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&key)
            .arg(json)
            .ignore()
            .cmd("EXPIREAT")
            .arg(&key)
            .arg(expires_at)
            .ignore();
        let result = tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
        self.settle(result, "revocation write").is_some()
    }

    /// Stores a revocation for every replica; during an outage it is kept
    /// and written once Redis returns.
    pub async fn store_revocation(&self, entry: &Revocation) {
        if !self.write_revocation(entry).await {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(entry.clone());
        }
    }

    async fn flush_pending(&self) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for entry in pending {
            self.store_revocation(&entry).await;
        }
    }

    /// Every revocation in Redis.
    pub async fn load_revocations(&self) -> Option<Vec<Revocation>> {
        let mut conn = self.connection()?;
        let load = async {
            let mut keys: Vec<String> = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{KEY_PREFIX}rev:*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await?;
                keys.extend(batch);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            let mut out = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(500) {
                let values: Vec<Option<String>> =
                    redis::cmd("MGET").arg(chunk).query_async(&mut conn).await?;
                out.extend(
                    values
                        .into_iter()
                        .flatten()
                        .filter_map(|v| serde_json::from_str(&v).ok()),
                );
            }
            Ok::<_, redis::RedisError>(out)
        };
        let result = tokio::time::timeout(REDIS_TIMEOUT * 4, load).await;
        self.settle(result, "revocation sync")
    }
}

/// Probes Redis while it is away and keeps the revocation mirror fresh.
pub fn spawn_health(
    backend: Arc<RedisBackend>,
    store: Arc<RevocationStore>,
    max_entries: impl Fn() -> usize + Send + 'static,
) {
    tokio::spawn(async move {
        let mut last_sync = tokio::time::Instant::now() - REVOCATION_SYNC_INTERVAL;
        loop {
            if backend.is_degraded() {
                backend.connect().await;
            }
            if !backend.is_degraded() && last_sync.elapsed() >= REVOCATION_SYNC_INTERVAL {
                if let Some(list) = backend.load_revocations().await {
                    let max = max_entries();
                    let refused = list
                        .iter()
                        .filter(|e| store.insert(e, max).is_err())
                        .count();
                    if refused > 0 {
                        // Replicas posting at once can pass the bound together.
                        tracing::warn!(
                            refused,
                            max_entries = max,
                            "Redis holds more revocations than revocation.max_entries; the extra ones are not mirrored here"
                        );
                    }
                }
                last_sync = tokio::time::Instant::now();
            }
            tokio::time::sleep(HEALTH_INTERVAL.min(REVOCATION_SYNC_INTERVAL)).await;
        }
    });
}
