//! The thread that writes one service's log file: lines reach it through a bounded channel, so
//! a slow or stuck disk never blocks the runtime thread (which keeps the watchdog fed). When the
//! channel is full the line is left out of the file and counted; the next line that is written
//! is preceded by one saying how many are missing.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use super::logs::{LogLine, Stream, KEEP_FILES, ROTATE_BYTES};

/// Lines waiting for the disk, at most (a line is at most 8 KiB, so 2 MiB per service).
pub const QUEUE_LINES: usize = 256;
/// Stack of the writer thread.
const STACK_BYTES: usize = 64 * 1024;

enum Message {
    Line(LogLine),
    Flush(SyncSender<()>),
}

/// The sending side; dropping it ends the thread once the queue is written.
#[derive(Debug)]
pub struct Writer {
    queue: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

impl Writer {
    /// Opens `<dir>/<service>.log` (creating `dir`) and starts its thread.
    pub fn start(dir: &Path, service: &str) -> io::Result<Writer> {
        let file = LogFile::open(dir, service)?;
        let (queue, rx) = mpsc::sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let missed = Arc::clone(&dropped);
        std::thread::Builder::new()
            .name(format!("log-{service}"))
            .stack_size(STACK_BYTES)
            .spawn(move || run(file, &rx, &missed))?;
        Ok(Writer { queue, dropped })
    }

    /// Queues `line` for the file, or counts it if the queue is full.
    pub fn send(&self, line: LogLine) {
        match self.queue.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines left out of the file since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits (blocking) until the lines queued so far are written, at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = mpsc::sync_channel(1);
        let deadline = std::time::Instant::now() + timeout;
        let mut message = Message::Flush(done);
        loop {
            match self.queue.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(m)) => {
                    if std::time::Instant::now() >= deadline {
                        return false;
                    }
                    message = m;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        wait.recv_timeout(left).is_ok()
    }
}

fn run(mut file: LogFile, rx: &Receiver<Message>, dropped: &AtomicU64) {
    let mut reported = 0;
    // A full or failing disk must not stop the service: the ring still has every line.
    while let Ok(message) = rx.recv() {
        let mut next = Some(message);
        while let Some(message) = next.take() {
            match message {
                Message::Line(line) => {
                    let now = dropped.load(Ordering::Relaxed);
                    if now > reported {
                        let notice = LogLine {
                            text: format!(
                                "baton: {} lines left out of this file (disk too slow)",
                                now - reported
                            ),
                            stream: Stream::Stderr,
                            continued: false,
                            ..line.clone()
                        };
                        reported = now;
                        let _ = file.append(&notice);
                    }
                    let _ = file.append(&line);
                }
                Message::Flush(done) => {
                    let _ = file.flush();
                    let _ = done.try_send(());
                }
            }
            next = rx.try_recv().ok();
        }
        let _ = file.flush();
    }
}

struct LogFile {
    path: PathBuf,
    file: BufWriter<File>,
    size: u64,
}

impl LogFile {
    fn open(dir: &Path, service: &str) -> io::Result<LogFile> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{service}.log"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path,
            file: BufWriter::new(file),
            size,
        })
    }

    fn append(&mut self, line: &LogLine) -> io::Result<()> {
        let stream = match line.stream {
            Stream::Stdout => "out",
            Stream::Stderr => "err",
            Stream::Access => "acc",
        };
        let more = if line.continued { " \\" } else { "" };
        let text = format!(
            "{} {} {} {}{more}\n",
            line.time_ms, line.instance, stream, line.text
        );
        if self.size + text.len() as u64 > ROTATE_BYTES && self.size > 0 {
            self.rotate()?;
        }
        self.file.write_all(text.as_bytes())?;
        self.size += text.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        for n in (1..KEEP_FILES).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.file = BufWriter::new(file);
        self.size = 0;
        Ok(())
    }
}
