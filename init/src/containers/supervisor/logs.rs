//! Service logs: every line an instance writes to stdout or stderr goes into the service's
//! in-memory ring (for `GET /v1/services/{name}/logs`) and into `<dir>/<service>.log` on the data
//! partition, rotated at [`ROTATE_BYTES`] with [`KEEP_FILES`] old files kept (`.log.1` newest).
//!
//! The files are written by a thread of the log's own (module `log_writer`), never
//! on the runtime thread that keeps the watchdog fed; when the disk falls behind, lines are
//! counted and left out of the file (the ring still has them). A container's lines pass a
//! per-service rate limit ([`ServiceLog::offer`]); those beyond it are counted, and one line
//! saying how many went missing is logged once lines pass again.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::log_writer::Writer;
use super::output::{Piece, TokenBucket};

/// A log file is rotated when it reaches this size.
pub const ROTATE_BYTES: u64 = 1 << 20;
/// Rotated files kept besides the current one.
pub const KEEP_FILES: usize = 3;
/// Lines kept in memory per service.
pub const RING_LINES: usize = 1000;
/// Longest line kept; a container's longer lines arrive in pieces of at most this size, and
/// other longer lines are cut.
pub const MAX_LINE: usize = 8 * 1024;
/// Lines per second a service's containers may log, on average.
pub const LINES_PER_SEC: u32 = 500;
/// Lines a service's containers may log at once after a quiet spell.
pub const BURST_LINES: u32 = 1000;

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// The front door's access log of the service's route.
    Access,
}

/// One line of output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch when the line was read.
    pub time_ms: u64,
    /// The instance that wrote it.
    pub instance: String,
    /// The stream.
    pub stream: Stream,
    /// The text, without the line ending; bytes that are not UTF-8 read as U+FFFD.
    pub text: String,
    /// The line goes on in the next one from the same instance and stream (it was longer than
    /// [`MAX_LINE`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continued: bool,
}

/// The log of one service.
#[derive(Debug)]
pub struct ServiceLog {
    ring: Mutex<VecDeque<LogLine>>,
    file: Option<Writer>,
    follow: broadcast::Sender<LogLine>,
    limit: Mutex<Limit>,
    dropped: AtomicU64,
}

/// The rate limit of a service's container output, and the lines it dropped since the last
/// notice.
#[derive(Debug)]
struct Limit {
    bucket: TokenBucket,
    unreported: u64,
}

impl ServiceLog {
    /// A log for `service` whose files live in `dir`; `None` keeps it in memory only (no data
    /// partition). A file that cannot be opened is reported once and the log stays in memory.
    pub fn new(dir: Option<&Path>, service: &str) -> (ServiceLog, Option<std::io::Error>) {
        let (follow, _) = broadcast::channel(256);
        let (file, error) = match dir.map(|d| Writer::start(d, service)) {
            Some(Ok(f)) => (Some(f), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let log = ServiceLog {
            ring: Mutex::new(VecDeque::with_capacity(RING_LINES)),
            file,
            follow,
            limit: Mutex::new(Limit {
                bucket: TokenBucket::new(LINES_PER_SEC, BURST_LINES, Instant::now()),
                unreported: 0,
            }),
            dropped: AtomicU64::new(0),
        };
        (log, error)
    }

    /// Records one line of the board's own (not rate-limited).
    pub fn push(&self, instance: &str, stream: Stream, text: &str) {
        let mut text = text.trim_end_matches(['\n', '\r']).to_string();
        if text.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        self.record(instance, stream, text, false);
    }

    /// Records one piece of a container's output if the service's rate limit lets it through;
    /// otherwise counts it. The first piece let through after some were dropped is preceded
    /// by a line saying how many.
    pub fn offer(&self, instance: &str, stream: Stream, piece: Piece) {
        self.offer_at(instance, stream, piece, Instant::now());
    }

    /// [`ServiceLog::offer`] at a given time.
    pub(super) fn offer_at(&self, instance: &str, stream: Stream, piece: Piece, now: Instant) {
        let mut limit = lock(&self.limit);
        if !limit.bucket.take(now) {
            limit.unreported += 1;
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let missed = std::mem::take(&mut limit.unreported);
        drop(limit);
        if missed > 0 {
            self.record(
                instance,
                Stream::Stderr,
                format!("baton: {missed} lines dropped (rate limit)"),
                false,
            );
        }
        self.record(instance, stream, piece.text, piece.continued);
    }

    /// Container lines dropped by the rate limit since the log was made.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Lines the file writer could not keep up with since the log was made (they are in the
    /// ring, not in the file).
    pub fn unwritten(&self) -> u64 {
        self.file.as_ref().map_or(0, Writer::dropped)
    }

    /// Waits until every line recorded so far is in the file, at most `timeout`; whether it is.
    pub fn flush(&self, timeout: std::time::Duration) -> bool {
        self.file.as_ref().is_none_or(|f| f.flush(timeout))
    }

    fn record(&self, instance: &str, stream: Stream, text: String, continued: bool) {
        let line = LogLine {
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            instance: instance.to_string(),
            stream,
            text,
            continued,
        };
        if let Some(f) = &self.file {
            // A full, slow or failing disk must not stop the service: the ring has the line.
            f.send(line.clone());
        }
        let mut ring = lock(&self.ring);
        if ring.len() == RING_LINES {
            ring.pop_front();
        }
        ring.push_back(line.clone());
        drop(ring);
        let _ = self.follow.send(line);
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let ring = lock(&self.ring);
        ring.iter()
            .skip(ring.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    /// Lines pushed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.follow.subscribe()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_in_memory_and_cuts_long_ones() {
        let (log, err) = ServiceLog::new(None, "web");
        assert!(err.is_none());
        for i in 0..RING_LINES + 5 {
            log.push("web-1", Stream::Stdout, &format!("line {i}\n"));
        }
        let tail = log.tail(3);
        let texts: Vec<_> = tail.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                format!("line {}", RING_LINES + 2),
                format!("line {}", RING_LINES + 3),
                format!("line {}", RING_LINES + 4)
            ]
        );
        assert_eq!(log.tail(usize::MAX).len(), RING_LINES);
        log.push("web-1", Stream::Stderr, &"é".repeat(MAX_LINE));
        assert!(log.tail(1)[0].text.len() <= MAX_LINE);
    }

    #[test]
    fn writes_and_rotates_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, err) = ServiceLog::new(Some(dir.path()), "web");
        assert!(err.is_none());
        let line = "x".repeat(1000);
        let per_file = ROTATE_BYTES as usize / 1030;
        for i in 0..per_file * (KEEP_FILES + 2) {
            log.push("web-2", Stream::Stdout, &line);
            if i % 64 == 0 {
                assert!(log.flush(std::time::Duration::from_secs(60)), "flushed");
            }
        }
        assert!(log.flush(std::time::Duration::from_secs(60)), "flushed");
        assert_eq!(log.unwritten(), 0);
        let current = std::fs::read_to_string(dir.path().join("web.log")).expect("current log");
        assert!(current
            .lines()
            .all(|l| l.contains(" web-2 out ") && l.ends_with(&line)));
        for n in 1..=KEEP_FILES {
            let rotated = dir.path().join(format!("web.log.{n}"));
            let size = std::fs::metadata(&rotated).expect("rotated file").len();
            assert!(
                size <= ROTATE_BYTES && size > ROTATE_BYTES / 2,
                "{n}: {size}"
            );
        }
        assert!(!dir
            .path()
            .join(format!("web.log.{}", KEEP_FILES + 1))
            .exists());
    }

    #[tokio::test]
    async fn followers_see_new_lines() {
        let (log, _) = ServiceLog::new(None, "web");
        let mut rx = log.subscribe();
        log.push("web-1", Stream::Stdout, "hello");
        let line = rx.recv().await.expect("a line");
        assert_eq!(
            (line.instance.as_str(), line.text.as_str(), line.stream),
            ("web-1", "hello", Stream::Stdout)
        );
    }
}
