//! One board of a lab as callers see it: its console, its forwarded ports, its disk and
//! whether its QEMU still runs. Starting and stopping boards is [`crate::Lab`]'s job.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::console::{Console, ConsoleError, Line, LinePattern};
use crate::lab::LabError;
use crate::ports::Forward;
use crate::process::{Exit, QemuProcess};

/// Locks a mutex; a panic elsewhere while holding it leaves plain data, so keep using it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One board.
#[derive(Debug)]
pub struct Board {
    index: usize,
    pub(crate) console: Arc<Console>,
    forwards: Vec<Forward>,
    disk: PathBuf,
    pub(crate) qmp: PathBuf,
    pub(crate) process: Mutex<Option<QemuProcess>>,
}

impl Board {
    pub(crate) fn new(
        index: usize,
        console: Arc<Console>,
        forwards: Vec<Forward>,
        disk: PathBuf,
        qmp: PathBuf,
    ) -> Board {
        Board {
            index,
            console,
            forwards,
            disk,
            qmp,
            process: Mutex::new(None),
        }
    }

    /// Board number, 1-based.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The serial console (all lines, counts, waits, log file).
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// The host port on 127.0.0.1 that reaches `guest_port` on this board, if forwarded.
    pub fn forwarded(&self, guest_port: u16) -> Option<u16> {
        self.forwards
            .iter()
            .find(|f| f.guest == guest_port)
            .map(|f| f.host)
    }

    /// All of this board's forwards, host ports already shifted for this board.
    pub fn forwards(&self) -> &[Forward] {
        &self.forwards
    }

    /// The board's qcow2 disk.
    pub fn disk(&self) -> &Path {
        &self.disk
    }

    /// PID of the running QEMU, if it runs.
    pub fn pid(&self) -> Option<u32> {
        let mut slot = lock(&self.process);
        let p = slot.as_mut()?;
        p.try_exit().is_none().then(|| p.pid())
    }

    /// Whether the board's QEMU runs.
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// How the latest run ended, if it has (QEMU's exit status and stderr).
    pub fn exit(&self) -> Option<Exit> {
        lock(&self.process).as_mut()?.try_exit()
    }

    /// Time from the latest QEMU start to its first serial line.
    pub fn time_to_first_line(&self) -> Option<Duration> {
        self.console.time_to_first_line()
    }

    /// Every serial line so far, over all runs.
    pub fn lines(&self) -> Vec<String> {
        self.console.lines()
    }

    /// How many serial lines so far match `pattern` (a `&str` matches as a substring).
    pub fn count(&self, pattern: impl LinePattern) -> usize {
        self.console.count(pattern)
    }

    /// The first serial line matching `pattern`, over all runs, waiting until `deadline`.
    /// If QEMU exits first, the error carries its exit status and stderr.
    pub fn wait_for_line(
        &self,
        pattern: impl LinePattern,
        deadline: Instant,
    ) -> Result<String, LabError> {
        self.wait_for_line_from(0, pattern, deadline)
            .map(|l| l.text)
    }

    /// The first serial line at index `from` or later matching `pattern` (use
    /// [`Console::len`] or [`Console::run_start`] as `from`), waiting until `deadline`.
    pub fn wait_for_line_from(
        &self,
        from: usize,
        pattern: impl LinePattern,
        deadline: Instant,
    ) -> Result<Line, LabError> {
        self.console
            .wait_for_line_from(from, pattern, deadline)
            .map_err(|e| self.explain(e))
    }

    /// Waits until `n` serial lines match `pattern`; returns the `n`th.
    pub fn wait_for_count(
        &self,
        pattern: impl LinePattern,
        n: usize,
        deadline: Instant,
    ) -> Result<Line, LabError> {
        self.console
            .wait_for_count(pattern, n, deadline)
            .map_err(|e| self.explain(e))
    }

    /// Adds QEMU's exit status and stderr to a closed-console error.
    fn explain(&self, e: ConsoleError) -> LabError {
        match e {
            ConsoleError::Closed { board, pattern } => {
                let exit = lock(&self.process).as_mut().map(QemuProcess::wait);
                LabError::Exited {
                    board,
                    pattern,
                    status: exit
                        .as_ref()
                        .map_or_else(|| "never started".into(), Exit::describe),
                    stderr: exit.map(|e| e.stderr).unwrap_or_default(),
                }
            }
            other => LabError::Console(other),
        }
    }
}
