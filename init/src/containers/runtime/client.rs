//! [`Runtime`]: the init's handle on the helper process.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::helper::{HELPER_ARG, SOCKET_FD};
use super::protocol::{self, Reply, Request, ToHelper, ToInit};
use super::{ContainerRequest, Event, RuntimePaths, Started};
use crate::board::console::Console;

/// Errors of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The helper process could not be started.
    #[error("cannot start the runtime helper {exe}: {source}")]
    Spawn {
        /// The binary.
        exe: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The socket could not be set up for async use.
    #[error("cannot set up the runtime helper socket: {0}")]
    Setup(std::io::Error),
    /// Talking to the helper failed.
    #[error(transparent)]
    Protocol(#[from] protocol::Error),
    /// The helper is gone (every container is gone with it); start a new [`Runtime`].
    #[error("the runtime helper is gone: {0}")]
    HelperGone(String),
    /// The helper refused or failed an operation; the message names the container.
    #[error("cannot {op} container {id}: {message}")]
    Failed {
        /// run, signal, remove.
        op: &'static str,
        /// The container.
        id: String,
        /// The helper's message.
        message: String,
    },
    /// Freezing or thawing the container's cgroup failed; it is left running (or frozen, if
    /// a thaw failed).
    #[error("cannot {} container {id}: {source}", if *frozen { "freeze" } else { "thaw" })]
    Freeze {
        /// The container.
        id: String,
        /// Whether it was to be frozen (else thawed).
        frozen: bool,
        /// The cause.
        source: super::freeze::FreezeError,
    },
    /// The helper answered with the wrong kind of reply.
    #[error("the runtime helper answered {op} of container {id} with {reply:?}")]
    Unexpected {
        /// The operation.
        op: &'static str,
        /// The container.
        id: String,
        /// The reply.
        reply: Reply,
    },
}

#[derive(Default)]
struct Calls {
    next: u64,
    pending: HashMap<u64, oneshot::Sender<Reply>>,
    lost: Option<String>,
}

/// The socket to the helper and the calls waiting for its replies.
struct HelperSocket {
    sock: AsyncFd<OwnedFd>,
    calls: Mutex<Calls>,
}

impl HelperSocket {
    fn calls(&self) -> MutexGuard<'_, Calls> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The connection to one running helper: the socket, the task reading replies and exit
/// events, what it said when it started, and its process id.
struct HelperProcess {
    shared: Arc<HelperSocket>,
    reader: JoinHandle<()>,
    events: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    notes: Vec<String>,
    pid: Option<u32>,
}

impl Drop for HelperProcess {
    fn drop(&mut self) {
        // Closing our end (when the reader lets go of it) makes the helper kill its containers
        // and exit.
        self.reader.abort();
    }
}

/// The handle to the runtime helper. Cheap to clone; all clones talk to the same helper.
/// Dropping the last clone stops the helper and its containers.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<HelperProcess>,
    /// The cgroup holding one child cgroup per container.
    cgroups: PathBuf,
}

impl Runtime {
    /// Starts the helper (`paths.exe` with [`HELPER_ARG`]); returns once it has cleaned up the
    /// leftovers of a previous boot or helper and is ready. What the helper writes to its
    /// standard error goes to `console`. Must run inside a tokio runtime.
    pub async fn start(paths: RuntimePaths, console: Arc<Console>) -> Result<Runtime, Error> {
        let (ours, theirs) = protocol::pair()?;
        let arg = serde_json::to_string(&paths).map_err(protocol::Error::from)?;
        let mut cmd = Command::new(&paths.exe);
        cmd.arg(HELPER_ARG)
            .arg(arg)
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        crate::board::child_fd::pass_as(&mut cmd, theirs.as_raw_fd(), SOCKET_FD);
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            exe: paths.exe.clone(),
            source,
        })?;
        // PID 1's reaper collects the helper when it exits; the socket tells us when it does.
        let pid = child.id();
        if let Some(stderr) = child.stderr.take() {
            // Without the forwarder the helper's messages are lost (it drops what it cannot
            // write), nothing else.
            if let Err(e) = super::stderr::forward(OwnedFd::from(stderr), Arc::clone(&console)) {
                console.line(format_args!(
                    "runtime helper: its messages cannot be shown: {e}"
                ));
            }
        }
        drop(child);
        drop(theirs);
        let mut runtime = Runtime::connect(ours, Some(pid)).await?;
        runtime.cgroups = paths.cgroup_root.join(&paths.cgroup_parent);
        Ok(runtime)
    }

    /// Talks to a helper already serving on `sock`; waits for its ready message.
    pub(super) async fn connect(sock: OwnedFd, pid: Option<u32>) -> Result<Runtime, Error> {
        nix::fcntl::fcntl(
            &sock,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(|e| Error::Setup(e.into()))?;
        // SAFETY: the OwnedFd is a valid descriptor that the AsyncFd owns from here on; nothing
        // replaces or closes it while it is registered.
        let sock = unsafe { AsyncFd::register(sock) }
            .map_err(|e| Error::Setup(std::io::Error::from(e)))?;
        let notes = match recv_async::<ToInit>(&sock).await {
            Ok((ToInit::Ready { notes }, _)) => notes,
            Ok((other, _)) => {
                return Err(Error::HelperGone(format!(
                    "it sent {other:?} before it was ready"
                )))
            }
            Err(protocol::Error::Closed) => {
                return Err(Error::HelperGone("it exited while starting".into()))
            }
            Err(e) => return Err(e.into()),
        };
        let shared = Arc::new(HelperSocket {
            sock,
            calls: Mutex::new(Calls::default()),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(Arc::clone(&shared), tx));
        Ok(Runtime {
            inner: Arc::new(HelperProcess {
                shared,
                reader,
                events: Mutex::new(Some(rx)),
                notes,
                pid,
            }),
            cgroups: {
                let paths = RuntimePaths::default();
                paths.cgroup_root.join(paths.cgroup_parent)
            },
        })
    }

    /// What the helper found left over and removed (or failed to) when it started.
    pub fn startup_notes(&self) -> &[String] {
        &self.inner.notes
    }

    /// The helper's pid.
    pub fn helper_pid(&self) -> Option<u32> {
        self.inner.pid
    }

    /// The stream of exits, ending with [`Event::Lost`] if the helper dies. The first call
    /// gets it; later calls get `None`.
    pub fn events(&self) -> Option<mpsc::UnboundedReceiver<Event>> {
        self.inner
            .events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// Creates and starts a container.
    pub async fn run(&self, req: ContainerRequest) -> Result<Started, Error> {
        let id = req.config.id.clone();
        let fds = [req.stdout.as_fd(), req.stderr.as_fd()];
        match self.call(Request::Run(Box::new(req.config)), &fds).await? {
            Reply::Started(s) => Ok(s),
            other => Err(unexpected("run", id, other)),
        }
    }

    /// Sends `signal` to the init of container `id`.
    pub async fn signal(&self, id: &str, signal: i32) -> Result<(), Error> {
        let request = Request::Signal {
            id: id.to_string(),
            signal,
        };
        match self.call(request, &[]).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected("signal", id.to_string(), other)),
        }
    }

    /// Freezes (`frozen`) or thaws container `id` through its cgroup, without the helper; a
    /// freeze returns once the kernel reports it done. A frozen container handles no signal
    /// but SIGKILL until it is thawed.
    pub async fn freeze(&self, id: &str, frozen: bool) -> Result<(), Error> {
        let fail = |source| Error::Freeze {
            id: id.to_string(),
            frozen,
            source,
        };
        let plain = !id.is_empty()
            && id != "."
            && id != ".."
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !plain {
            return Err(fail(super::freeze::FreezeError::Write {
                path: self.cgroups.join(id),
                value: if frozen { "1" } else { "0" },
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a container id"),
            }));
        }
        super::freeze::set(&self.cgroups.join(id), frozen)
            .await
            .map_err(fail)
    }

    /// Deletes an ended container: its state, cgroup, root mount and writable layer.
    pub async fn remove(&self, id: &str) -> Result<(), Error> {
        match self
            .call(Request::Remove { id: id.to_string() }, &[])
            .await?
        {
            Reply::Done => Ok(()),
            other => Err(unexpected("remove", id.to_string(), other)),
        }
    }

    async fn call(&self, request: Request, fds: &[BorrowedFd<'_>]) -> Result<Reply, Error> {
        let shared = &self.inner.shared;
        let (tx, rx) = oneshot::channel();
        let seq = {
            let mut calls = shared.calls();
            if let Some(reason) = &calls.lost {
                return Err(Error::HelperGone(reason.clone()));
            }
            let seq = calls.next;
            calls.next += 1;
            calls.pending.insert(seq, tx);
            seq
        };
        if let Err(e) = send_async(&shared.sock, &ToHelper { seq, request }, fds).await {
            shared.calls().pending.remove(&seq);
            return Err(e.into());
        }
        rx.await.map_err(|_| {
            let reason = shared.calls().lost.clone();
            Error::HelperGone(reason.unwrap_or_else(|| "no reply".into()))
        })
    }
}

fn unexpected(op: &'static str, id: String, reply: Reply) -> Error {
    match reply {
        Reply::Failed(message) => Error::Failed { op, id, message },
        reply => Error::Unexpected { op, id, reply },
    }
}

async fn read_loop(shared: Arc<HelperSocket>, events: mpsc::UnboundedSender<Event>) {
    let reason = loop {
        match recv_async::<ToInit>(&shared.sock).await {
            Ok((ToInit::Reply { seq, reply }, _)) => {
                if let Some(tx) = shared.calls().pending.remove(&seq) {
                    let _ = tx.send(reply);
                }
            }
            Ok((ToInit::Exit(exit), _)) => {
                let _ = events.send(Event::Exit(exit));
            }
            Ok((ToInit::Ready { .. }, _)) => {}
            Err(protocol::Error::Closed) => break "the helper exited".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    {
        let mut calls = shared.calls();
        calls.lost = Some(reason.clone());
        // Dropping the senders fails every pending call with HelperGone.
        calls.pending.clear();
    }
    let _ = events.send(Event::Lost(reason));
}

async fn send_async<T: Serialize>(
    sock: &AsyncFd<OwnedFd>,
    message: &T,
    fds: &[BorrowedFd<'_>],
) -> Result<(), protocol::Error> {
    loop {
        let mut guard = sock.writable().await.map_err(|e| protocol::Error::Socket {
            op: "wait for",
            source: io_to_nix(&e),
        })?;
        match protocol::send(sock.get_ref().as_fd(), message, fds) {
            Err(protocol::Error::WouldBlock) => guard.clear_ready(),
            other => return other,
        }
    }
}

async fn recv_async<T: DeserializeOwned>(
    sock: &AsyncFd<OwnedFd>,
) -> Result<(T, Vec<OwnedFd>), protocol::Error> {
    loop {
        let mut guard = sock.readable().await.map_err(|e| protocol::Error::Socket {
            op: "wait for",
            source: io_to_nix(&e),
        })?;
        match protocol::recv(sock.get_ref().as_fd()) {
            Err(protocol::Error::WouldBlock) => guard.clear_ready(),
            other => return other,
        }
    }
}

fn io_to_nix(e: &std::io::Error) -> nix::Error {
    e.raw_os_error()
        .map(nix::Error::from_raw)
        .unwrap_or(nix::Error::EIO)
}
