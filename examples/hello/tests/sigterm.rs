//! SIGTERM ends hello at once and cleanly (exit status 0), as a container's stop expects: run as
//! its container's PID 1 it would otherwise ignore the signal until the SIGKILL.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigterm_ends_the_server_with_status_zero() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hello"))
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start hello");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("hello's first line");
    assert!(line.starts_with("hello: listening on port"), "{line}");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill takes no pointer; the PID is our own child's, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "hello still runs after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
}
