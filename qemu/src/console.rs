//! A board's serial console: every line QEMU's serial port prints, kept in memory and in a log
//! file (`board<N>.log`), optionally echoed to stdout with a `[boardN]` prefix, and waited on
//! with deadlines. Lines survive restarts: the console of a board holds all of its runs.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What went wrong on a console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The log file could not be created.
    #[error("cannot create serial log {path}: {source}")]
    Log {
        /// Log file path.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// The deadline passed without a matching line.
    #[error("board {board}: no serial line {pattern} before the deadline; last lines:\n{tail}")]
    Timeout {
        /// Board number.
        board: usize,
        /// Description of what was waited for.
        pattern: String,
        /// The last few lines seen, for the test log.
        tail: String,
    },
    /// QEMU closed the serial port (it exited or was killed) without a matching line.
    #[error("board {board}: QEMU stopped before printing a serial line {pattern}")]
    Closed {
        /// Board number.
        board: usize,
        /// Description of what was waited for.
        pattern: String,
    },
}

/// Something a serial line can match. Implemented for string types (substring match) and for
/// [`Matching`] (any predicate, see [`matching`]).
pub trait LinePattern {
    /// Whether `line` matches.
    fn matches(&self, line: &str) -> bool;
    /// How errors describe the pattern.
    fn describe(&self) -> String;
}

impl LinePattern for str {
    fn matches(&self, line: &str) -> bool {
        line.contains(self)
    }
    fn describe(&self) -> String {
        format!("containing {self:?}")
    }
}

impl LinePattern for String {
    fn matches(&self, line: &str) -> bool {
        line.contains(self.as_str())
    }
    fn describe(&self) -> String {
        self.as_str().describe()
    }
}

/// A predicate with a description, made by [`matching`].
pub struct Matching<F> {
    description: String,
    predicate: F,
}

/// A pattern from any predicate: `matching("an IPv4 address", |l| l.contains("169.254."))`.
pub fn matching<F: Fn(&str) -> bool>(description: impl Into<String>, predicate: F) -> Matching<F> {
    Matching {
        description: description.into(),
        predicate,
    }
}

impl<F: Fn(&str) -> bool> LinePattern for Matching<F> {
    fn matches(&self, line: &str) -> bool {
        (self.predicate)(line)
    }
    fn describe(&self) -> String {
        format!("matching {}", self.description)
    }
}

/// A line and its position in the console (0-based, counted over all runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Position of the line.
    pub index: usize,
    /// The text, without the line ending.
    pub text: String,
}

#[derive(Debug, Default)]
struct State {
    lines: Vec<String>,
    /// Whether a QEMU process is feeding the console.
    open: bool,
    /// Index of the first line of the current run.
    run_start: usize,
    started_at: Option<Instant>,
    first_line_after: Option<Duration>,
}

/// The serial console of one board. Shared between the reader thread and callers.
#[derive(Debug)]
pub struct Console {
    board: usize,
    echo: bool,
    log_path: PathBuf,
    log: Mutex<File>,
    state: Mutex<State>,
    changed: Condvar,
}

/// Locks a mutex; a panic elsewhere while holding it leaves plain data, so keep using it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Console {
    /// A console for board `board` logging to `log_path` (truncated).
    pub fn new(board: usize, log_path: &Path, echo: bool) -> Result<Console, ConsoleError> {
        let log = File::create(log_path).map_err(|source| ConsoleError::Log {
            path: log_path.to_path_buf(),
            source,
        })?;
        Ok(Console {
            board,
            echo,
            log_path: log_path.to_path_buf(),
            log: Mutex::new(log),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        })
    }

    /// Path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Starts a thread that reads `output` (QEMU's stdout) line by line until it closes. Call
    /// once per QEMU run; the run starts now.
    pub fn attach(
        self: &Arc<Self>,
        output: impl Read + Send + 'static,
    ) -> io::Result<JoinHandle<()>> {
        {
            let mut st = lock(&self.state);
            st.open = true;
            st.run_start = st.lines.len();
            st.started_at = Some(Instant::now());
            st.first_line_after = None;
        }
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name(format!("board{}-serial", self.board))
            .spawn(move || me.read_all(output))
    }

    fn read_all(&self, output: impl Read) {
        let mut reader = BufReader::new(output);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while matches!(buf.last(), Some(b'\n' | b'\r')) {
                        buf.pop();
                    }
                    self.push(String::from_utf8_lossy(&buf).into_owned());
                }
            }
        }
        lock(&self.state).open = false;
        self.changed.notify_all();
    }

    fn push(&self, line: String) {
        // The log is best effort: a full disk must not stop the console.
        let _ = writeln!(lock(&self.log), "{line}");
        if self.echo {
            let _ = writeln!(io::stdout().lock(), "[board{}] {line}", self.board);
        }
        let mut st = lock(&self.state);
        if st.first_line_after.is_none() {
            st.first_line_after = st.started_at.map(|t| t.elapsed());
        }
        st.lines.push(line);
        drop(st);
        self.changed.notify_all();
    }

    /// Every line so far, over all runs.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.state).lines.clone()
    }

    /// Number of lines so far: a mark to pass to [`Console::wait_for_line_from`].
    pub fn len(&self) -> usize {
        lock(&self.state).lines.len()
    }

    /// Whether no line has been printed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index of the first line of the latest run (0 before any restart).
    pub fn run_start(&self) -> usize {
        lock(&self.state).run_start
    }

    /// Whether a QEMU process is currently feeding the console.
    pub fn is_open(&self) -> bool {
        lock(&self.state).open
    }

    /// Time from the latest QEMU start to its first serial line, once there is one.
    pub fn time_to_first_line(&self) -> Option<Duration> {
        lock(&self.state).first_line_after
    }

    /// How many lines so far match `pattern`.
    pub fn count(&self, pattern: impl LinePattern) -> usize {
        lock(&self.state)
            .lines
            .iter()
            .filter(|l| pattern.matches(l))
            .count()
    }

    /// The first line (over all runs) matching `pattern`, waiting for it until `deadline`.
    pub fn wait_for_line(
        &self,
        pattern: impl LinePattern,
        deadline: Instant,
    ) -> Result<String, ConsoleError> {
        self.wait_for_line_from(0, pattern, deadline)
            .map(|l| l.text)
    }

    /// The first line at index `from` or later matching `pattern`, waiting until `deadline`.
    /// Fails early with [`ConsoleError::Closed`] when QEMU has stopped and no line matched.
    pub fn wait_for_line_from(
        &self,
        from: usize,
        pattern: impl LinePattern,
        deadline: Instant,
    ) -> Result<Line, ConsoleError> {
        let mut checked = from;
        let mut st = lock(&self.state);
        loop {
            if let Some(i) = (checked..st.lines.len()).find(|&i| pattern.matches(&st.lines[i])) {
                return Ok(Line {
                    index: i,
                    text: st.lines[i].clone(),
                });
            }
            checked = checked.max(st.lines.len());
            if !st.open {
                return Err(ConsoleError::Closed {
                    board: self.board,
                    pattern: pattern.describe(),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                let tail = st.lines[st.lines.len().saturating_sub(8)..].join("\n");
                return Err(ConsoleError::Timeout {
                    board: self.board,
                    pattern: pattern.describe(),
                    tail,
                });
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Waits until at least `n` lines match `pattern` (for example "baton: ready" twice after a
    /// reboot); returns the `n`th matching line.
    pub fn wait_for_count(
        &self,
        pattern: impl LinePattern,
        n: usize,
        deadline: Instant,
    ) -> Result<Line, ConsoleError> {
        let mut from = 0;
        let mut seen = 0;
        loop {
            let line = self.wait_for_line_from(from, &pattern, deadline)?;
            seen += 1;
            if seen >= n {
                return Ok(line);
            }
            from = line.index + 1;
        }
    }
}

impl<P: LinePattern + ?Sized> LinePattern for &P {
    fn matches(&self, line: &str) -> bool {
        (**self).matches(line)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

#[cfg(test)]
mod tests;
