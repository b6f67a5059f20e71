//! One access-log record per request (docs/logs.md). Lines are formatted on the
//! request's task and written by one thread, so a slow disk never blocks a
//! request and lines never interleave.

use crate::error::Decision;
use crate::json_line::JsonObject;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    Json,
    Common,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogOutput {
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct AccessLogSettings {
    pub format: AccessLogFormat,
    pub output: AccessLogOutput,
}

/// What the request path learned about one request, filled in stage by stage.
/// It never holds a credential: only the key id and subject.
#[derive(Debug)]
pub struct RequestRecord {
    pub started: Instant,
    /// Set once, when the response is done, so the log line, the metrics
    /// and the dashboard read the clock once between them.
    pub duration: Option<std::time::Duration>,
    pub request_id: String,
    pub client_ip: IpAddr,
    pub method: http::Method,
    pub version: http::Version,
    pub path: String,
    pub status: u16,
    pub bytes_out: u64,
    /// From sending upstream to the response head.
    pub upstream: Option<Duration>,
    pub route: Option<Arc<str>>,
    pub auth_method: Option<&'static str>,
    pub subject: Option<Arc<str>>,
    pub key_id: Option<Arc<str>>,
    pub decision: Decision,
    pub reason: Option<crate::reason::Reason>,
    pub user_agent: Option<String>,
    /// `None` on the plain-HTTP forward-auth listener.
    pub tls_version: Option<&'static str>,
    /// Which listener answered: `main` or `forward_auth`.
    pub listener: &'static str,
    /// The W3C trace id (32 hex digits), kept from the caller or started here.
    pub trace_id: String,
}

impl RequestRecord {
    /// The record of a request just read, before any stage has run.
    pub fn start(
        request_id: String,
        client_ip: IpAddr,
        head: &http::request::Parts,
        tls_version: Option<&'static str>,
        listener: &'static str,
    ) -> Box<RequestRecord> {
        Box::new(RequestRecord {
            started: Instant::now(),
            duration: None,
            request_id,
            client_ip,
            method: head.method.clone(),
            version: head.version,
            path: head.uri.path().to_string(),
            status: 0,
            bytes_out: 0,
            upstream: None,
            route: None,
            auth_method: None,
            subject: None,
            key_id: None,
            decision: Decision::Allowed,
            reason: None,
            user_agent: head.headers.get(http::header::USER_AGENT).map(|v| {
                // Nearly always visible ASCII; the lossy decoder is the slow path.
                v.to_str().map_or_else(
                    |_| String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    str::to_owned,
                )
            }),
            tls_version,
            listener,
            trace_id: String::new(),
        })
    }
}

/// `2026-12-04T20:36:39.123Z`: formatted once per millisecond per thread,
/// since every request of that millisecond logs the same text.
fn with_rfc3339_millis<R>(now: SystemTime, f: impl FnOnce(&str) -> R) -> R {
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<(u128, String)> = const { RefCell::new((u128::MAX, String::new())) };
    }
    let millis = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    LAST.with_borrow_mut(|(at, text)| {
        if *at != millis {
            *at = millis;
            *text = humantime::format_rfc3339_millis(now).to_string();
        }
        f(text)
    })
}

/// Whole microseconds, rounded to the nearest (logged as milliseconds
/// with three decimals).
fn micros(d: Duration) -> u64 {
    u64::try_from((d.as_nanos() + 500) / 1000).unwrap_or(u64::MAX)
}

impl RequestRecord {
    /// The JSON line, appended to `out` (the writer's buffer: no string of
    /// its own per request).
    fn write_json(&self, now: SystemTime, out: &mut Vec<u8>) {
        with_rfc3339_millis(now, |ts| self.write_json_at(ts, out));
    }

    fn write_json_at(&self, ts: &str, out: &mut Vec<u8>) {
        JsonObject::start(out)
            .str("ts", ts)
            .str("request_id", &self.request_id)
            .ip("client_ip", self.client_ip)
            .str("method", self.method.as_str())
            .str("path", &self.path)
            .uint("status", self.status.into())
            .uint("bytes_out", self.bytes_out)
            .millis(
                "duration_ms",
                Some(micros(
                    self.duration.unwrap_or_else(|| self.started.elapsed()),
                )),
            )
            .millis("upstream_ms", self.upstream.map(micros))
            .opt_str("route", self.route.as_deref())
            .opt_str("auth_method", self.auth_method)
            .opt_str("subject", self.subject.as_deref())
            .opt_str("key_id", self.key_id.as_deref())
            .str("decision", self.decision.as_str())
            .opt_str("reason", self.reason.map(crate::reason::Reason::as_str))
            .opt_str("user_agent", self.user_agent.as_deref())
            .opt_str("tls_version", self.tls_version)
            .str("listener", self.listener)
            .str("trace_id", &self.trace_id)
            .finish();
    }

    #[cfg(test)]
    fn json(&self, now: SystemTime) -> String {
        let mut out = Vec::new();
        self.write_json(now, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// NCSA Common Log Format with the subject as user. The request line
    /// carries the normalized path without the query, which may hold tokens.
    fn common(&self, now: SystemTime) -> String {
        let ts = humantime::format_rfc3339_seconds(now).to_string();
        // 2026-11-25T12:36:00Z → 25/Nov/2026:12:36:00 +0000
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = ts
            .get(5..7)
            .and_then(|m| m.parse::<usize>().ok())
            .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
            .unwrap_or(&"Jan");
        let clf_time = format!(
            "{}/{}/{}:{} +0000",
            ts.get(8..10).unwrap_or("01"),
            month,
            ts.get(0..4).unwrap_or("1970"),
            ts.get(11..19).unwrap_or("00:00:00")
        );
        let user = match self.subject.as_deref() {
            None | Some("") => "-".to_string(),
            Some(s) => clf_escape(s, true),
        };
        format!(
            "{} - {} [{}] \"{} {} {:?}\" {} {}",
            self.client_ip,
            user,
            clf_time,
            clf_escape(self.method.as_str(), false),
            clf_escape(&self.path, false),
            self.version,
            self.status,
            self.bytes_out
        )
    }
}

/// A field for a CLF parser: `"`, `\\` and every byte outside printable
/// ASCII become `\\xHH` (a space too in the user field, which is
/// space-delimited), so no request can end a field or a line early.
fn clf_escape(text: &str, escape_space: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        let plain = b.is_ascii_graphic() && b != b'"' && b != b'\\' || (b == b' ' && !escape_space);
        if plain {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    out
}

/// How often buffered lines are written out. Requests never wake the
/// writer: a wake-up per request costs a context switch per request, which
/// on a one-core gateway was a third of the CPU (measured with perf).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// Lines waiting for the writer, at most; past it lines are dropped and counted.
pub const MAX_BUFFERED_BYTES: usize = 64 << 20;

type Sink = std::io::BufWriter<Box<dyn Write + Send>>;

struct Shared {
    pending: Mutex<Vec<u8>>,
    sink: Mutex<Writer>,
    output: AccessLogOutput,
    dropped: AtomicU64,
}

/// The access-log sink. Cloning is cheap; every clone feeds the same writer.
#[derive(Clone)]
pub struct AccessLog {
    format: AccessLogFormat,
    shared: Arc<Shared>,
}

/// The writer thread's side: the output, and the buffer that trades places
/// with `pending` at each flush, so the request path appends into memory
/// that is already there instead of growing a new buffer every 20 ms.
struct Writer {
    sink: Sink,
    spare: Vec<u8>,
}

/// A batch buffer larger than this (after a burst) is not kept for reuse.
const KEEP_BUFFER_BYTES: usize = 4 << 20;

fn open(output: &AccessLogOutput) -> std::io::Result<Sink> {
    let sink: Box<dyn Write + Send> = match output {
        AccessLogOutput::Stdout => Box::new(std::io::stdout()),
        AccessLogOutput::File(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ),
    };
    Ok(std::io::BufWriter::with_capacity(64 * 1024, sink))
}

impl Shared {
    /// Hands `pending` to the writer, and the writer's empty buffer to
    /// `pending`; the caller holds the sink lock.
    fn write_pending(&self, writer: &mut Writer) {
        let mut lines = std::mem::take(&mut writer.spare);
        std::mem::swap(
            &mut lines,
            &mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()),
        );
        if !lines.is_empty() && writer.sink.write_all(&lines).is_err() {
            tracing::error!("cannot write the access log");
        }
        let _ = writer.sink.flush();
        lines.clear();
        lines.shrink_to(KEEP_BUFFER_BYTES);
        writer.spare = lines;
    }

    /// Writes what is pending. The sink lock is held across the swap, so
    /// lines keep their order even when a reopen and a tick race.
    fn flush(&self) {
        let mut writer = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        self.write_pending(&mut writer);
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::error!(dropped, "access-log lines dropped: the writer fell behind");
        }
    }
}

impl AccessLog {
    /// Opens stdout or the file (for append) and starts the writer thread.
    pub fn start(settings: &AccessLogSettings) -> std::io::Result<AccessLog> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::with_capacity(64 * 1024)),
            sink: Mutex::new(Writer {
                sink: open(&settings.output)?,
                spare: Vec::with_capacity(64 * 1024),
            }),
            output: settings.output.clone(),
            dropped: AtomicU64::new(0),
        });
        let writer = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || loop {
                std::thread::sleep(FLUSH_INTERVAL);
                match writer.upgrade() {
                    Some(shared) => shared.flush(),
                    None => return,
                }
            })?;
        Ok(AccessLog {
            format: settings.format,
            shared,
        })
    }

    pub fn write(&self, record: &RequestRecord) {
        let now = SystemTime::now();
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let start = pending.len();
        match self.format {
            AccessLogFormat::Json => record.write_json(now, &mut pending),
            AccessLogFormat::Common => pending.extend_from_slice(record.common(now).as_bytes()),
        }
        if pending.len() + 1 >= MAX_BUFFERED_BYTES {
            // The writer is behind: this line is dropped, and counted.
            pending.truncate(start);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.push(b'\n');
    }

    /// Writes every pending line now (at shutdown).
    pub fn flush(&self) {
        self.shared.flush();
    }

    /// Reopens a file output (SIGUSR1, after logrotate moved it away).
    /// Lines logged before go to the old file, lines after to the new one.
    pub fn reopen(&self) {
        let mut writer = self.shared.sink.lock().unwrap_or_else(|e| e.into_inner());
        self.shared.write_pending(&mut writer);
        match open(&self.shared.output) {
            Ok(new) => {
                writer.sink = new;
                tracing::info!("access log reopened");
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot reopen the access log; still writing to the old file")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RequestRecord {
        RequestRecord {
            started: Instant::now(),
            duration: None,
            request_id: "rid".into(),
            client_ip: "127.0.0.1".parse().expect("ip"),
            method: http::Method::GET,
            version: http::Version::HTTP_11,
            path: "/orders/7".into(),
            status: 200,
            bytes_out: 12,
            upstream: Some(Duration::from_micros(1500)),
            route: Some("orders-read".into()),
            auth_method: Some("api_key"),
            subject: Some("billing".into()),
            key_id: Some("billing-service".into()),
            decision: Decision::Allowed,
            reason: None,
            user_agent: Some("curl/8".into()),
            tls_version: Some("TLSv1.3"),
            listener: "main",
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        }
    }

    #[test]
    fn json_line_has_every_field() {
        let v: serde_json::Value =
            serde_json::from_str(&record().json(SystemTime::UNIX_EPOCH)).expect("json");
        for field in [
            "ts",
            "request_id",
            "client_ip",
            "method",
            "path",
            "status",
            "bytes_out",
            "duration_ms",
            "upstream_ms",
            "route",
            "auth_method",
            "subject",
            "key_id",
            "decision",
            "reason",
            "user_agent",
            "tls_version",
            "listener",
            "trace_id",
        ] {
            assert!(v.get(field).is_some(), "missing {field}");
        }
        assert_eq!(v["ts"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["status"], 200);
        assert_eq!(v["upstream_ms"], 1.5);
        assert_eq!(v["reason"], serde_json::Value::Null);
        assert_eq!(v["decision"], "allowed");
    }

    #[test]
    fn json_line_escapes_what_the_caller_sent() {
        let mut r = record();
        r.path = "/a\"b\\c\n\u{e9}".into();
        r.user_agent = Some("evil\"}, {\"status\":1".into());
        let v: serde_json::Value =
            serde_json::from_str(&r.json(SystemTime::UNIX_EPOCH)).expect("json");
        assert_eq!(v["path"], r.path.as_str());
        assert_eq!(v["user_agent"], "evil\"}, {\"status\":1");
        assert_eq!(v["status"], 200);
    }

    #[test]
    fn common_format_puts_the_subject_as_user() {
        let line = record().common(SystemTime::UNIX_EPOCH);
        assert_eq!(
            line,
            "127.0.0.1 - billing [01/Jan/1970:00:00:00 +0000] \"GET /orders/7 HTTP/1.1\" 200 12"
        );
    }

    #[test]
    fn common_format_escapes_what_could_forge_a_field() {
        let mut r = record();
        r.path = "/a\" 200 1 \"x\\y\u{e9}".into();
        r.subject = Some("eve x\n".into());
        let line = r.common(SystemTime::UNIX_EPOCH);
        assert_eq!(
            line,
            "127.0.0.1 - eve\\x20x\\x0A [01/Jan/1970:00:00:00 +0000] \"GET /a\\x22 200 1 \\x22x\\x5Cy\\xC3\\xA9 HTTP/1.1\" 200 12"
        );
    }
}
