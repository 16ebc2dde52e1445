//! Route netlink connections inside another network namespace.
//!
//! A netlink socket belongs to the namespace it was created in. A short-lived helper thread
//! enters the target namespace, creates the socket and exits; the socket, handed back as a
//! file descriptor, keeps talking to that namespace while the caller's own thread never
//! leaves its namespace (which matters in the init, whose threads serve everything else).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, TokioSocket};

/// A network namespace to put a container's interface into.
#[derive(Debug, Clone, Copy)]
pub enum Netns<'a> {
    /// An open namespace file (`/proc/<pid>/ns/net`, `/run/netns/<name>`, or from `unshare`).
    Fd(BorrowedFd<'a>),
    /// The namespace of a process.
    Pid(u32),
}

/// Errors while reaching into a namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The namespace file of a process could not be opened.
    #[error("opening the network namespace of process {pid}: {source}")]
    OpenPid {
        /// The process.
        pid: u32,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The namespace could not be entered or the socket not created.
    #[error("opening a route netlink socket inside {what}: {source}")]
    Socket {
        /// Which namespace.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl Netns<'_> {
    /// A description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Netns::Fd(fd) => format!("the network namespace of fd {}", fd.as_raw_fd()),
            Netns::Pid(pid) => format!("the network namespace of process {pid}"),
        }
    }

    /// An owned descriptor of the namespace.
    pub fn open(&self) -> Result<OwnedFd, Error> {
        match self {
            Netns::Fd(fd) => fd.try_clone_to_owned().map_err(|source| Error::Socket {
                what: self.describe(),
                source,
            }),
            Netns::Pid(pid) => File::open(format!("/proc/{pid}/ns/net"))
                .map(OwnedFd::from)
                .map_err(|source| Error::OpenPid { pid: *pid, source }),
        }
    }
}

/// Creates a route netlink socket inside the namespace `ns` (on a helper thread).
fn socket_in(ns: OwnedFd, what: &str) -> Result<OwnedFd, Error> {
    let fail = |source| Error::Socket {
        what: what.to_string(),
        source,
    };
    let helper = std::thread::spawn(move || -> std::io::Result<OwnedFd> {
        // SAFETY: setns on a valid namespace descriptor changes only this helper thread's
        // network namespace; the thread exits right after creating the socket.
        let rc = unsafe { libc::setns(ns.as_fd().as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.set_non_blocking(true)?;
        // SAFETY: into_raw_fd hands over sole ownership of the socket's descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(socket.into_raw_fd()) })
    });
    match helper.join() {
        Ok(result) => result.map_err(fail),
        Err(_) => Err(fail(std::io::Error::other("the helper thread panicked"))),
    }
}

/// A route netlink connection inside `ns`; its driver task runs on the current tokio runtime.
pub fn connect(ns: Netns<'_>) -> Result<rtnetlink::Handle, Error> {
    let what = ns.describe();
    let socket = socket_in(ns.open()?, &what)?;
    // SAFETY: the descriptor is a freshly created, non-blocking netlink socket we own; the
    // TokioSocket takes ownership of it.
    let socket = unsafe { TokioSocket::from_raw_fd(socket.into_raw_fd()) };
    let (connection, handle, _) = rtnetlink::from_socket(socket);
    tokio::spawn(connection);
    Ok(handle)
}
