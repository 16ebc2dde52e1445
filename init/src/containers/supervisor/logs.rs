//! Service logs: every line an instance writes to stdout or stderr goes into the service's
//! in-memory ring (for `GET /v1/services/{name}/logs`) and into `<dir>/<service>.log` on the data
//! partition, rotated at [`ROTATE_BYTES`] with [`KEEP_FILES`] old files kept (`.log.1` newest).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

/// A log file is rotated when it reaches this size.
pub const ROTATE_BYTES: u64 = 1 << 20;
/// Rotated files kept besides the current one.
pub const KEEP_FILES: usize = 3;
/// Lines kept in memory per service.
pub const RING_LINES: usize = 1000;
/// Longest line kept; longer ones are cut (the rest is dropped, not wrapped).
pub const MAX_LINE: usize = 8 * 1024;

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch when the line was read.
    pub time_ms: u64,
    /// The instance that wrote it.
    pub instance: String,
    /// The stream.
    pub stream: Stream,
    /// The text, without the line ending.
    pub text: String,
}

/// The log of one service.
#[derive(Debug)]
pub struct ServiceLog {
    ring: Mutex<VecDeque<LogLine>>,
    file: Mutex<Option<LogFile>>,
    follow: broadcast::Sender<LogLine>,
}

#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
}

impl ServiceLog {
    /// A log for `service` whose files live in `dir`; `None` keeps it in memory only (no data
    /// partition). A file that cannot be opened is reported once and the log stays in memory.
    pub fn new(dir: Option<&Path>, service: &str) -> (ServiceLog, Option<std::io::Error>) {
        let (follow, _) = broadcast::channel(256);
        let (file, error) = match dir.map(|d| LogFile::open(d, service)) {
            Some(Ok(f)) => (Some(f), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let log = ServiceLog {
            ring: Mutex::new(VecDeque::with_capacity(RING_LINES)),
            file: Mutex::new(file),
            follow,
        };
        (log, error)
    }

    /// Records one line.
    pub fn push(&self, instance: &str, stream: Stream, text: &str) {
        let mut text = text.trim_end_matches(['\n', '\r']).to_string();
        if text.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        let line = LogLine {
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            instance: instance.to_string(),
            stream,
            text,
        };
        if let Some(f) = lock(&self.file).as_mut() {
            // A full or failing disk must not stop the service: the ring still has the line.
            let _ = f.append(&line);
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

impl LogFile {
    fn open(dir: &Path, service: &str) -> std::io::Result<LogFile> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{service}.log"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(LogFile { path, file, size })
    }

    fn append(&mut self, line: &LogLine) -> std::io::Result<()> {
        let stream = match line.stream {
            Stream::Stdout => "out",
            Stream::Stderr => "err",
        };
        let text = format!(
            "{} {} {} {}\n",
            line.time_ms, line.instance, stream, line.text
        );
        if self.size + text.len() as u64 > ROTATE_BYTES && self.size > 0 {
            self.rotate()?;
        }
        self.file.write_all(text.as_bytes())?;
        self.size += text.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        for n in (1..KEEP_FILES).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
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
        for _ in 0..per_file * (KEEP_FILES + 2) {
            log.push("web-2", Stream::Stdout, &line);
        }
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
