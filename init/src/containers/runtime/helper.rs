//! The helper process: single-threaded, the parent of every container.
//!
//! [`serve`] waits with poll(2) on the socket to the init and on one pidfd per running
//! container. A request is handled to its end before the next is read; a readable pidfd means
//! that container's init ended: the helper reaps it and reports an [`Exit`]. When the init's
//! end of the socket closes, the helper kills its containers, deletes them and exits.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::backend::{Backend, Libcontainer};
use super::protocol::{self, Reply, Request, ToHelper, ToInit};
use super::{cleanup, seccomp, Exit, ExitStatus, RuntimePaths, Started};

/// The first argument that makes the init binary run as the runtime helper.
pub const HELPER_ARG: &str = "--baton-runtime-helper";

/// The descriptor the helper finds its socket on.
pub const SOCKET_FD: RawFd = 3;

/// If this process was started as the runtime helper (`argv[1] == HELPER_ARG`), runs it and
/// returns its exit code; otherwise returns `None` at once. Call it first thing in `main`.
pub fn helper_main_if_requested() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != HELPER_ARG {
        return None;
    }
    let paths = args
        .next()
        .and_then(|a| serde_json::from_str::<RuntimePaths>(&a.to_string_lossy()).ok());
    let Some(paths) = paths else {
        say(format_args!("missing or malformed paths argument"));
        return Some(2);
    };
    // SAFETY: Runtime::start placed the helper's socket on SOCKET_FD for this process and
    // nothing else in this fresh process owns that descriptor.
    let sock = unsafe { OwnedFd::from_raw_fd(SOCKET_FD) };
    Some(helper_main(sock, paths))
}

fn helper_main(sock: OwnedFd, paths: RuntimePaths) -> i32 {
    if let Err(e) = nix::fcntl::fcntl(
        &sock,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    ) {
        say(format_args!("cannot mark its socket close-on-exec: {e}"));
        return 1;
    }
    let profile = match seccomp::profile() {
        Ok(p) => p,
        Err(e) => {
            say(format_args!("{e}"));
            return 1;
        }
    };
    let mut notes = cleanup::leftovers(&paths);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let no_pivot = crate::board::mountinfo::root_is_initramfs(&mountinfo);
    if no_pivot {
        notes.push(
            "the root is still the initramfs: containers enter theirs with MS_MOVE and chroot"
                .into(),
        );
    }
    if let Err(e) = protocol::send(sock.as_fd(), &ToInit::Ready { notes }, &[]) {
        say(format_args!("{e}"));
        return 1;
    }
    let mut backend = Libcontainer::new(paths, profile, no_pivot);
    match serve(sock.as_fd(), &mut backend) {
        Ok(()) => 0,
        Err(e) => {
            say(format_args!("{e}"));
            1
        }
    }
}

/// A container's init as the helper tracks it.
struct Child {
    pid: i32,
    /// Present while it runs.
    pidfd: Option<OwnedFd>,
}

/// Serves requests on `sock` until the peer closes it; then kills and deletes every container.
pub fn serve(sock: BorrowedFd<'_>, backend: &mut dyn Backend) -> Result<(), protocol::Error> {
    let mut children: HashMap<String, Child> = HashMap::new();
    let result = serve_loop(sock, backend, &mut children);
    for (id, child) in children.drain() {
        if child.pidfd.is_some() {
            let _ = kill(Pid::from_raw(child.pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(child.pid), None);
        }
        let _ = backend.remove(&id);
    }
    match result {
        Err(protocol::Error::Closed) => Ok(()),
        other => other,
    }
}

fn serve_loop(
    sock: BorrowedFd<'_>,
    backend: &mut dyn Backend,
    children: &mut HashMap<String, Child>,
) -> Result<(), protocol::Error> {
    loop {
        let ids: Vec<String> = children
            .iter()
            .filter(|(_, c)| c.pidfd.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        let mut ready = Vec::new();
        let socket_ready;
        {
            let mut fds = vec![PollFd::new(sock, PollFlags::POLLIN)];
            for id in &ids {
                if let Some(fd) = children.get(id).and_then(|c| c.pidfd.as_ref()) {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                }
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(source) => return Err(protocol::Error::Socket { op: "poll", source }),
            }
            let fired = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            socket_ready = fired(&fds[0]);
            for (id, fd) in ids.iter().zip(&fds[1..]) {
                if fired(fd) {
                    ready.push(id.clone());
                }
            }
        }
        for id in ready {
            if let Some(exit) = reap(&id, children, backend) {
                protocol::send(sock, &ToInit::Exit(exit), &[])?;
            }
        }
        if socket_ready {
            let (msg, fds): (ToHelper, Vec<OwnedFd>) = match protocol::recv(sock) {
                Ok(m) => m,
                Err(protocol::Error::Json(e)) => {
                    say(format_args!("ignoring a malformed request: {e}"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let reply = handle(msg.request, fds, children, backend);
            protocol::send(
                sock,
                &ToInit::Reply {
                    seq: msg.seq,
                    reply,
                },
                &[],
            )?;
        }
    }
}

/// Reaps container `id` if its init ended.
fn reap(id: &str, children: &mut HashMap<String, Child>, backend: &dyn Backend) -> Option<Exit> {
    let child = children.get_mut(id)?;
    let status = match waitpid(Pid::from_raw(child.pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => ExitStatus::Code(code),
        Ok(WaitStatus::Signaled(_, signal, _)) => ExitStatus::Signal(signal as i32),
        Ok(_) => return None,
        // Someone else reaped it: its status is lost, but it has ended.
        Err(_) => ExitStatus::Code(-1),
    };
    child.pidfd = None;
    Some(Exit {
        id: id.to_string(),
        status,
        oom_killed: backend.oom_killed(id),
    })
}

fn handle(
    request: Request,
    fds: Vec<OwnedFd>,
    children: &mut HashMap<String, Child>,
    backend: &mut dyn Backend,
) -> Reply {
    match request {
        Request::Run(config) => {
            let id = config.id.clone();
            if children.contains_key(&id) {
                return Reply::Failed(format!("container {id} exists already"));
            }
            let mut fds = fds.into_iter();
            let (Some(stdout), Some(stderr), None) = (fds.next(), fds.next(), fds.next()) else {
                return Reply::Failed(format!(
                    "container {id}: the request must carry exactly two descriptors (stdout, stderr)"
                ));
            };
            let pid = match backend.run(&config, stdout, stderr) {
                Ok(pid) => pid,
                Err(e) => return Reply::Failed(e.to_string()),
            };
            match pidfd_open(pid) {
                Ok(pidfd) => {
                    children.insert(
                        id.clone(),
                        Child {
                            pid,
                            pidfd: Some(pidfd),
                        },
                    );
                    Reply::Started(Started { id, pid })
                }
                Err(e) => {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    let _ = waitpid(Pid::from_raw(pid), None);
                    let _ = backend.remove(&id);
                    Reply::Failed(format!("container {id}: cannot watch pid {pid}: {e}"))
                }
            }
        }
        Request::Signal { id, signal } => match children.get(&id) {
            Some(Child {
                pid,
                pidfd: Some(_),
            }) => {
                let sig = match Signal::try_from(signal) {
                    Ok(s) => s,
                    Err(e) => {
                        return Reply::Failed(format!("container {id}: signal {signal}: {e}"))
                    }
                };
                match kill(Pid::from_raw(*pid), sig) {
                    Ok(()) => Reply::Done,
                    Err(e) => Reply::Failed(format!("container {id}: cannot send {sig}: {e}")),
                }
            }
            Some(_) => Reply::Failed(format!("container {id} is not running")),
            None => Reply::Failed(format!("no container {id}")),
        },
        Request::Remove { id } => match children.get(&id) {
            Some(Child { pidfd: Some(_), .. }) => {
                Reply::Failed(format!("container {id} is still running; signal it first"))
            }
            Some(_) => {
                children.remove(&id);
                match backend.remove(&id) {
                    Ok(()) => Reply::Done,
                    Err(e) => Reply::Failed(e.to_string()),
                }
            }
            None => Reply::Failed(format!("no container {id}")),
        },
    }
}

/// A pidfd for `pid` (Linux 5.3+): readable once the process ends, even as a zombie.
fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory
    // is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| std::io::Error::other("pidfd out of range"))?;
    // SAFETY: the kernel just returned this new descriptor; we are its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Writes one line to standard error, which the init reads into its console. A write that
/// fails (the init stopped reading) is dropped: the helper must not panic over its messages.
fn say(message: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{message}");
}
