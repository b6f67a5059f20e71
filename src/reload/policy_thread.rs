//! The policy thread: compiles new policies and frees replaced ones at the
//! lowest CPU priority, so that a reload takes the CPU requests leave unused.

use crate::snapshot::Snapshot;
use crate::{config, tls};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A long-lived thread in the idle scheduling class (SCHED_IDLE) that
/// compiles new policies and frees replaced ones. An idle-class thread runs
/// when the core has nothing else to do and gives way the moment a request's
/// thread wakes, so a reload does not stall requests for a scheduler tick
/// the way a thread at nice 19 does (measured: `benches/reload_p99.sh`).
///
/// It is started once: a thread started and lowered per reload cost
/// requests on a busy core more latency than a whole 10,000-key compile. On a core saturated by requests an idle-class thread
/// could wait indefinitely, so a compile that has waited `IDLE_PATIENCE` is
/// raised to nice 19 (a small, guaranteed share) until it is done.
pub struct PolicyWorker {
    jobs: std::sync::mpsc::Sender<Job>,
    priority: Arc<Priority>,
}

enum Job {
    Compile {
        path: PathBuf,
        reply: tokio::sync::oneshot::Sender<Result<Compiled, String>>,
    },
    Retire(Arc<Snapshot>),
}

pub(super) type Compiled = (config::Loaded, rustls::ServerConfig);

/// How long a compile may wait for idle CPU before it takes a share.
const IDLE_PATIENCE: Duration = Duration::from_secs(2);
/// How often the policy thread looks whether a retired snapshot is free.
const RETIRE_POLL: Duration = Duration::from_millis(10);
/// How long a retired snapshot waits for its last request.
const RETIRE_WAIT: Duration = Duration::from_secs(30);

const STOPPED: &str = "the policy-reload thread has stopped";

impl PolicyWorker {
    pub fn start() -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel();
        let priority = Arc::new(Priority::default());
        let own = priority.clone();
        std::thread::Builder::new()
            .name("policy-reload".into())
            .spawn(move || {
                own.lower_calling_thread();
                work(&queue, &own);
            })?;
        Ok(Self { jobs, priority })
    }

    /// Reads, checks and compiles the policy (and its TLS files) on the
    /// policy thread.
    pub(super) async fn compile(&self, path: &Path) -> Result<Compiled, String> {
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        let job = Job::Compile {
            path: path.to_path_buf(),
            reply,
        };
        self.priority.request_compile();
        if self.jobs.send(job).is_err() {
            self.priority.compile_done();
            return Err(STOPPED.to_string());
        }
        let compiled = tokio::select! {
            compiled = &mut answer => compiled,
            () = tokio::time::sleep(IDLE_PATIENCE) => {
                // Off this (request) thread: the class change waits for a helper thread.
                let priority = self.priority.clone();
                let _ = std::thread::Builder::new()
                    .name("policy-raise".into())
                    .spawn(move || priority.raise_while_waiting());
                answer.await
            }
        };
        compiled.map_err(|_| STOPPED.to_string())?
    }

    /// Frees a replaced snapshot once the requests that started under it
    /// are done: freeing 10,000 keys on a request's worker thread would show
    /// in that request's latency.
    pub(super) fn retire(&self, old: Arc<Snapshot>) {
        // If the thread is gone, the last request to finish frees it instead.
        let _ = self.jobs.send(Job::Retire(old));
    }
}

fn work(queue: &std::sync::mpsc::Receiver<Job>, priority: &Priority) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut retired: Vec<(Arc<Snapshot>, Instant)> = Vec::new();
    loop {
        let job = if retired.is_empty() {
            match queue.recv() {
                Ok(job) => Some(job),
                Err(_) => return,
            }
        } else {
            match queue.recv_timeout(RETIRE_POLL) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        match job {
            Some(Job::Compile { path, reply }) => {
                // A panic in one compile must not end every later reload.
                let compiled = std::panic::catch_unwind(AssertUnwindSafe(|| compile(&path)))
                    .unwrap_or_else(|_| Err("the policy compiler panicked".to_string()));
                priority.compile_done();
                let _ = reply.send(compiled);
            }
            Some(Job::Retire(old)) => retired.push((old, Instant::now() + RETIRE_WAIT)),
            None => {}
        }
        // Dropping our handle frees a snapshot nobody else holds; past the
        // wait, the last request to finish frees it.
        let now = Instant::now();
        retired.retain(|(old, give_up)| Arc::strong_count(old) > 1 && now < *give_up);
    }
}

fn compile(path: &Path) -> Result<Compiled, String> {
    let loaded = config::load(path).map_err(|e| e.to_string())?;
    let tls_config = tls::server_config(&loaded.snapshot.server.tls).map_err(|e| e.to_string())?;
    Ok((loaded, tls_config))
}

/// The policy thread's scheduling class, set by system call (the
/// `thread-priority` crate: `pthread_setschedparam`, `setpriority`). That
/// crate also sets the nice value of the thread that calls it, so class
/// changes are made from a short-lived helper thread and the policy
/// thread's own nice 19 stays. Where a call is refused, the thread keeps
/// what it had.
#[derive(Default)]
struct Priority {
    thread: OnceLock<PolicyThread>,
    state: Mutex<PriorityState>,
}

/// How the policy thread is named to the system calls.
struct PolicyThread {
    native: thread_priority::ThreadId,
    /// The kernel thread id, for the test that reads /proc.
    #[cfg_attr(not(test), allow(dead_code))]
    tid: String,
}

#[derive(Default)]
struct PriorityState {
    /// Compiles asked for and not yet answered (queued or running).
    pending: usize,
    raised: bool,
}

/// Moves `thread` to the idle class or back to normal scheduling, from a
/// helper thread (see `Priority`).
fn set_class(thread: thread_priority::ThreadId, idle: bool) -> bool {
    use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};
    let class = if idle {
        NormalThreadSchedulePolicy::Idle
    } else {
        NormalThreadSchedulePolicy::Other
    };
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                thread_priority::set_thread_priority_and_policy(
                    thread,
                    ThreadPriority::Min,
                    ThreadSchedulePolicy::Normal(class),
                )
                .is_ok()
            })
            .join()
            .unwrap_or(false)
    })
}

impl Priority {
    /// Nice 19 first (it stays with the thread across class changes), then
    /// the idle class — but only where the thread may leave it again: an
    /// idle-class thread that cannot be raised could wait forever for a
    /// saturated core, so without that right it stays at nice 19.
    fn lower_calling_thread(&self) {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};
        let native = thread_priority::thread_native_id();
        let tid = std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|link| Some(link.file_name()?.to_str()?.to_string()))
            .unwrap_or_default();
        // On the thread itself: normal class at the lowest priority, nice 19.
        let niced = thread_priority::set_thread_priority_and_policy(
            native,
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
        )
        .is_ok();
        if niced && may_leave_idle_class() && set_class(native, true) {
            tracing::debug!("policy thread in the idle scheduling class");
        } else {
            tracing::info!(
                "policy thread at nice 19 (the idle class needs CAP_SYS_NICE to be left again)"
            );
        }
        let _ = self.thread.set(PolicyThread { native, tid });
    }

    fn request_compile(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).pending += 1;
    }

    /// A compile has waited `IDLE_PATIENCE`: the thread takes a share until
    /// no compile is pending, whether it is still queued behind freeing an
    /// old policy or already running.
    fn raise_while_waiting(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let (true, false, Some(thread)) = (state.pending > 0, state.raised, self.thread.get()) {
            state.raised = set_class(thread.native, false);
        }
    }

    /// Called on the policy thread as each compile ends; once none is
    /// pending, a raised thread goes back to the idle class.
    fn compile_done(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.pending = state.pending.saturating_sub(1);
        if state.pending == 0 && state.raised {
            if let Some(thread) = self.thread.get() {
                set_class(thread.native, true);
            }
            state.raised = false;
        }
    }
}

/// Whether this process may move a thread from the idle class back to
/// normal scheduling at nice 19: with CAP_SYS_NICE, or an RLIMIT_NICE of at
/// least 1 (sched(7)). Read from /proc; `false` where it cannot be read.
fn may_leave_idle_class() -> bool {
    const CAP_SYS_NICE: u32 = 23;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let has_cap = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_NICE) != 0);
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let nice_limit = limits
        .lines()
        .find(|l| l.starts_with("Max nice priority"))
        .and_then(|l| l.split_whitespace().nth(3))
        .is_some_and(|soft| soft == "unlimited" || soft.parse::<u64>().is_ok_and(|n| n >= 1));
    has_cap || nice_limit
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Field `n` (1-based, as proc(5) numbers them) of a thread's `stat`.
    fn stat_field(thread_id: &str, n: usize) -> i64 {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{thread_id}/stat"))
            .expect("thread stat");
        let after_name = &stat[stat.rfind(')').expect("stat has a name") + 2..];
        after_name
            .split(' ')
            .nth(n - 3)
            .and_then(|p| p.parse().ok())
            .expect("numeric field")
    }

    /// The scheduling policy (0 normal, 5 idle).
    fn policy_of(thread_id: &str) -> i64 {
        stat_field(thread_id, 41)
    }

    const SCHED_OTHER: i64 = 0;
    const SCHED_IDLE: i64 = 5;

    #[test]
    fn the_policy_thread_is_idle_class_raised_while_a_compile_waits_then_lowered() {
        let priority = Arc::new(Priority::default());
        let (lowered_tx, lowered) = std::sync::mpsc::channel();
        let (finish_tx, finish) = std::sync::mpsc::channel::<()>();
        let own = priority.clone();
        let thread = std::thread::spawn(move || {
            own.lower_calling_thread();
            lowered_tx.send(()).expect("test alive");
            finish.recv().ok();
        });
        lowered.recv().expect("thread started");
        let id = priority.thread.get().expect("thread id known").tid.clone();
        assert_eq!(stat_field(&id, 19), 19, "nice 19 in every case");
        if !may_leave_idle_class() {
            // It could never be raised again, so it must not be idle-class.
            assert_eq!(policy_of(&id), SCHED_OTHER);
        } else {
            assert_eq!(policy_of(&id), SCHED_IDLE);
            // No compile waiting: nothing to raise.
            priority.raise_while_waiting();
            assert_eq!(policy_of(&id), SCHED_IDLE);
            // Two compiles asked for; the thread stays raised until both end.
            priority.request_compile();
            priority.request_compile();
            priority.raise_while_waiting();
            assert_eq!(policy_of(&id), SCHED_OTHER);
            priority.compile_done();
            assert_eq!(policy_of(&id), SCHED_OTHER);
            priority.compile_done();
            assert_eq!(policy_of(&id), SCHED_IDLE);
        }
        finish_tx.send(()).expect("thread alive");
        thread.join().expect("thread ends");
    }
}
