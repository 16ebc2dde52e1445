//! The front door as a process: the init runs its own binary again with [`ARG`], the control
//! socket on [`SOCKET_FD`] (docs/design/front-door.md, section 1, "Child start-up").
//!
//! Start-up is single-threaded up to the sandbox ([`sandbox::enter`]: a mount namespace without
//! the card's partitions, an unprivileged user, no core dumps), then a tokio runtime runs
//! [`run`]: the `Hello`, the listeners, `Ready`, and the control loop until `Drain` or until
//! the channel fails.
//!
//! Exit codes: 0 after a `Drain`; 1 when the channel fails or closes (the init restarts the
//! front door); 2 for a `Hello` of another protocol; 3 when the sandbox or the runtime cannot
//! be set up; 101 when a control task panics.

mod control;
mod listeners;
pub mod sandbox;

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{getsockopt, sockopt, SockType};

/// The argument that makes the init binary the front door.
pub const ARG: &str = "--baton-front-door";

/// The descriptor the control socket is on.
pub const SOCKET_FD: RawFd = 3;

/// Exit code: the channel failed or closed.
pub const EXIT_CHANNEL: i32 = 1;
/// Exit code: the init speaks another protocol.
pub const EXIT_PROTOCOL: i32 = 2;
/// Exit code: the sandbox or the runtime could not be set up.
pub const EXIT_SETUP: i32 = 3;
/// Exit code: a control task panicked.
pub const EXIT_PANIC: i32 = 101;

/// Most tokio workers: the proxy is I/O bound and shares the board with its services.
const MAX_WORKERS: usize = 4;

/// Runs the front door if the process was started as one (`argv[1]` is [`ARG`]); returns its
/// exit code. `None` otherwise, without touching anything.
pub fn main_if_requested() -> Option<i32> {
    if std::env::args_os().nth(1).as_deref() != Some(std::ffi::OsStr::new(ARG)) {
        return None;
    }
    Some(main())
}

fn main() -> i32 {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("baton-front-door: {info}");
    }));
    let sock = match take_socket() {
        Ok(sock) => sock,
        Err(e) => {
            eprintln!("baton-front-door: descriptor {SOCKET_FD}: {e}");
            return EXIT_SETUP;
        }
    };
    let notes = match sandbox::enter() {
        Ok(notes) => notes,
        Err(e) => {
            eprintln!("baton-front-door: sandbox: {e}");
            return EXIT_SETUP;
        }
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("baton-front-door: cannot start the runtime: {e}");
            return EXIT_SETUP;
        }
    };
    runtime.block_on(control::run(sock, notes))
}

/// Takes the control socket from [`SOCKET_FD`], after making sure it is one: a descriptor that
/// is not open would be reused by the runtime (its epoll), and owning it would close that.
fn take_socket() -> Result<OwnedFd, String> {
    let link = std::fs::read_link(format!("/proc/self/fd/{SOCKET_FD}"))
        .map_err(|e| format!("not open ({e})"))?;
    if !link.to_string_lossy().starts_with("socket:") {
        return Err(format!("not a socket but {}", link.display()));
    }
    // SAFETY: the descriptor is open (just checked, and nothing else runs yet that could close
    // it) and nothing else in this process owns it: the init put it there for us.
    let sock = unsafe { OwnedFd::from_raw_fd(SOCKET_FD) };
    match getsockopt(&sock, sockopt::SockType) {
        Ok(SockType::SeqPacket) => Ok(sock),
        Ok(other) => Err(format!("a {other:?} socket, not a seqpacket one")),
        Err(e) => Err(format!("not a socket ({e})")),
    }
}

/// Runs the front door on the control socket `sock` until it drains or the channel fails, and
/// returns the exit code. No sandbox: this is the in-process part (and what tests run).
pub async fn run(sock: OwnedFd) -> i32 {
    control::run(sock, Vec::new()).await
}
