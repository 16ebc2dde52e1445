//! Starting, watching and ending QEMU processes.
//!
//! QEMU runs in its own process group, so a Ctrl-C at the terminal reaches only the runner,
//! which then shuts the boards down itself. QEMU processes are started from one long-lived
//! launcher thread with the parent-death signal set to SIGKILL: if the runner dies without
//! cleaning up (even by SIGKILL), the kernel kills its QEMUs, so none are ever left behind.
//! (The parent-death signal follows the *thread* that forked; hence the dedicated thread,
//! which lives exactly as long as the [`Launcher`].)

use std::ffi::OsString;
use std::io::{self, BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::console::Console;

/// Debian package that ships `qemu-system-aarch64`.
pub const QEMU_PACKAGE: &str = "qemu-system-arm";

/// Most bytes of QEMU's stderr kept for error messages.
const STDERR_LIMIT: usize = 64 * 1024;

/// What went wrong starting or running QEMU.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The QEMU binary is not installed.
    #[error("{program} not found: install the Debian package {QEMU_PACKAGE}")]
    NotInstalled {
        /// Program that was run.
        program: PathBuf,
    },
    /// QEMU could not be started.
    #[error("cannot start {program} for board {board}: {source}")]
    Spawn {
        /// Program that was run.
        program: PathBuf,
        /// Board number.
        board: usize,
        /// Underlying error.
        source: io::Error,
    },
    /// QEMU exited (before it was up, or while someone waited on it).
    #[error("QEMU for board {board} exited ({status}): {stderr}")]
    Exited {
        /// Board number.
        board: usize,
        /// Its exit status, in words.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// QEMU did not open its QMP socket in time.
    #[error("QEMU for board {board} was not up after {waited:?} (no QMP greeting on {qmp})")]
    NotReady {
        /// Board number.
        board: usize,
        /// How long the runner waited.
        waited: Duration,
        /// The QMP socket.
        qmp: PathBuf,
    },
    /// The launcher thread is gone or could not be started.
    #[error("the QEMU launcher thread is not running: {0}")]
    Launcher(io::Error),
}

type Request = (Command, mpsc::Sender<io::Result<Child>>);

/// The thread all QEMU processes are forked from. Drop it only after its children are gone.
#[derive(Debug)]
pub struct Launcher {
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl Launcher {
    /// Starts the launcher thread.
    pub fn start() -> Result<Launcher, ProcessError> {
        let (tx, rx) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("qemu-launcher".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .map_err(ProcessError::Launcher)?;
        Ok(Launcher {
            requests: Mutex::new(Some(tx)),
            thread: Some(thread),
        })
    }

    fn spawn(&self, mut cmd: Command) -> io::Result<Child> {
        cmd.process_group(0);
        // SAFETY: the closure runs in the child between fork and exec; it only makes one
        // prctl system call (async-signal-safe, no allocation, no locks).
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))
                .map_err(io::Error::from)
            });
        }
        let (reply_tx, reply_rx) = mpsc::channel();
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "launcher thread stopped");
        {
            let guard = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            guard
                .as_ref()
                .ok_or_else(gone)?
                .send((cmd, reply_tx))
                .map_err(|_| gone())?;
        }
        reply_rx.recv().map_err(|_| gone())?
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How a QEMU run ended.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Exit status (a SIGKILL from [`QemuProcess::kill`] shows as signal 9); `None` if it
    /// could not be collected.
    pub status: Option<ExitStatus>,
    /// Everything QEMU wrote to stderr (up to 64 KiB).
    pub stderr: String,
}

impl Exit {
    /// The status in words, for messages.
    pub fn describe(&self) -> String {
        self.status
            .map_or_else(|| "status unknown".to_string(), |s| s.to_string())
    }
}

/// One running QEMU. Its serial output feeds a [`Console`].
#[derive(Debug)]
pub struct QemuProcess {
    board: usize,
    child: Child,
    stderr: Option<JoinHandle<String>>,
    serial: Option<JoinHandle<()>>,
    exit: Option<Exit>,
}

/// How to start one QEMU.
#[derive(Debug, Clone, Copy)]
pub struct Spawn<'a> {
    /// Board number, for messages.
    pub board: usize,
    /// The `qemu-system-aarch64` to run.
    pub program: &'a Path,
    /// Its arguments (from [`crate::command::BoardCommand::args`]).
    pub args: &'a [OsString],
    /// The QMP socket named in the arguments.
    pub qmp: &'a Path,
    /// How long QEMU may take to come up.
    pub timeout: Duration,
}

impl QemuProcess {
    /// Starts QEMU, attaches its stdout to `console`, and waits until QEMU is up (its QMP
    /// socket greets) or has exited (then the error carries its stderr).
    pub fn start(
        launcher: &Launcher,
        spec: Spawn<'_>,
        console: &Arc<Console>,
    ) -> Result<QemuProcess, ProcessError> {
        let _ = std::fs::remove_file(spec.qmp);
        let mut cmd = Command::new(spec.program);
        cmd.args(spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = launcher.spawn(cmd).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => ProcessError::NotInstalled {
                program: spec.program.to_path_buf(),
            },
            _ => ProcessError::Spawn {
                program: spec.program.to_path_buf(),
                board: spec.board,
                source,
            },
        })?;
        let stderr = child.stderr.take().and_then(|e| {
            std::thread::Builder::new()
                .name(format!("board{}-stderr", spec.board))
                .spawn(move || read_limited(e))
                .ok()
        });
        let mut process = QemuProcess {
            board: spec.board,
            child,
            stderr,
            serial: None,
            exit: None,
        };
        if let Some(out) = process.child.stdout.take() {
            process.serial = console.attach(out).ok();
        }
        process.wait_ready(spec.qmp, spec.timeout)?;
        Ok(process)
    }

    /// Polls until QEMU answers on QMP. The greeting alone is not enough (QEMU may accept the
    /// connection before it creates its devices); a command's reply comes only from the main
    /// loop, which runs once every device, netdev and port forward exists.
    fn wait_ready(&mut self, qmp: &Path, timeout: Duration) -> Result<(), ProcessError> {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            if let Some(exit) = self.try_exit() {
                return Err(ProcessError::Exited {
                    board: self.board,
                    status: exit.describe(),
                    stderr: exit.stderr,
                });
            }
            if let Ok(s) = UnixStream::connect(qmp) {
                if qmp_answers(s, deadline) {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(ProcessError::NotReady {
                    board: self.board,
                    waited: started.elapsed(),
                    qmp: qmp.to_path_buf(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How QEMU ended, if it has; collects its stderr the first time.
    pub fn try_exit(&mut self) -> Option<Exit> {
        if self.exit.is_none() {
            let status = self.child.try_wait().ok().flatten()?;
            self.finish(Some(status));
        }
        self.exit.clone()
    }

    /// Waits for QEMU to end (it is exiting or already gone) and returns how it ended.
    pub fn wait(&mut self) -> Exit {
        if let Some(exit) = &self.exit {
            return exit.clone();
        }
        // wait() fails only if the child was reaped elsewhere, which this crate never does.
        let status = self.child.wait().ok();
        self.finish(status)
    }

    /// SIGKILLs QEMU (a power cut for the board), reaps it and waits until the console has read
    /// everything it printed.
    pub fn kill(&mut self) -> Exit {
        if self.exit.is_none() {
            // Killing by PID is safe here: the child is not reaped yet, so the PID is still ours.
            let _ = self.child.kill();
        }
        self.wait()
    }

    fn finish(&mut self, status: Option<ExitStatus>) -> Exit {
        if let Some(serial) = self.serial.take() {
            let _ = serial.join();
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        let exit = Exit {
            status,
            stderr: stderr.trim().to_string(),
        };
        self.exit = Some(exit.clone());
        exit
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads the QMP greeting, sends `qmp_capabilities` and waits for its `return`.
fn qmp_answers(stream: UnixStream, deadline: Instant) -> bool {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    if stream.set_read_timeout(Some(left)).is_err() {
        return false;
    }
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return false,
    };
    let mut lines = io::BufReader::new(stream).lines();
    let greeted = matches!(lines.next(), Some(Ok(l)) if l.starts_with("{\"QMP\""));
    if !greeted
        || writer
            .write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
            .is_err()
    {
        return false;
    }
    // Events may come first; the reply is the first line with "return".
    lines
        .map_while(Result::ok)
        .any(|l| l.contains("\"return\""))
}

fn read_limited(mut r: impl Read) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = STDERR_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests;
