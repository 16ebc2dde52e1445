//! Test support for the workspace: network namespaces the tests create and delete again (also
//! on failure), two of them joined like machines on one LAN, running commands or code inside
//! them, children and temp dirs cleaned up on drop, and polling with a deadline. Needs root, as
//! CI runs the tests.

use std::future::Future;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A boxed future, as the closures handed to [`Netns::spawn_async`] build them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Panics unless the tests run as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests need root (they create network namespaces and veths)"
    );
}

/// Runs a command and returns its output, success or not: (success, stdout, stderr).
pub fn output(program: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a command and returns its stdout; panics with its stderr on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let (ok, stdout, stderr) = output(program, args);
    assert!(ok, "{program} {args:?} failed: {stderr}");
    stdout
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `check` holds, polling every 10 ms on tokio's clock (so it also works under a
/// paused clock); panics naming `what` after `limit`.
pub async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A named network namespace (`ip netns`), deleted on drop (which also deletes the veth ends
/// inside it).
pub struct Netns(pub String);

impl Netns {
    /// Creates `baton-<tag>-<pid>` with loopback up.
    pub fn new(tag: &str) -> Netns {
        let ns = Netns::named(format!("baton-{tag}-{}", std::process::id()));
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Creates the namespace `name` as it is (loopback left down), replacing a leftover.
    pub fn named(name: String) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run("ip", &["netns", "add", &name]);
        Netns(name)
    }

    /// The bind-mounted namespace file.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }

    /// Runs `ip -n <ns> args`; panics on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.0.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// IPv4 addresses on `dev` as `a.b.c.d/n`.
    pub fn addresses(&self, dev: &str) -> Vec<String> {
        let json: serde_json::Value =
            serde_json::from_str(&self.ip(&["-j", "-4", "addr", "show", "dev", dev]))
                .expect("ip -j addr output is JSON");
        let mut out = Vec::new();
        for link in json.as_array().into_iter().flatten() {
            for a in link["addr_info"].as_array().into_iter().flatten() {
                out.push(format!(
                    "{}/{}",
                    a["local"].as_str().unwrap_or("?"),
                    a["prefixlen"]
                ));
            }
        }
        out
    }

    /// Runs a program inside the namespace: (success, stdout, stderr).
    pub fn exec(&self, program: &str, args: &[&str]) -> (bool, String, String) {
        let mut all = vec!["netns", "exec", self.0.as_str(), program];
        all.extend_from_slice(args);
        output("ip", &all)
    }

    /// `nft args` inside the namespace; panics on failure.
    pub fn nft(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.exec("nft", args);
        assert!(ok, "nft {args:?} in {} failed: {stderr}", self.0);
        stdout
    }

    /// Runs `f` on a new thread inside this namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = self.path();
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path)
                .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
            // SAFETY: setns on a valid namespace descriptor only changes this thread's network namespace.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
            f()
        })
    }

    /// Runs `f` on a new thread inside this namespace and returns its result.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn(f)
            .join()
            .expect("thread inside the namespace panicked")
    }

    /// Runs the future made by `f` on a current-thread tokio runtime on a new thread inside
    /// this namespace.
    pub fn spawn_async<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> BoxFuture<T> + Send + 'static,
    ) -> JoinHandle<T> {
        self.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(f())
        })
    }

    /// [`Netns::spawn_async`], waiting for the result.
    pub fn block_on<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> BoxFuture<T> + Send + 'static,
    ) -> T {
        self.spawn_async(f)
            .join()
            .expect("thread inside the namespace panicked")
    }
}

/// Two namespaces joined by a veth pair (`eth0` in each) with the given IPv4 addresses,
/// loopback up and multicast routed over `eth0`, like two machines on one LAN; both are
/// deleted on drop.
pub struct Lan {
    /// One end (`baton-<tag>-a-<pid>`).
    pub a: Netns,
    /// The other end (`baton-<tag>-b-<pid>`).
    pub b: Netns,
}

impl Lan {
    /// Creates the pair; `a_addr` and `b_addr` are `a.b.c.d/n`.
    pub fn new(tag: &str, a_addr: &str, b_addr: &str) -> Lan {
        let pid = std::process::id();
        let a = Netns::named(format!("baton-{tag}-a-{pid}"));
        let b = Netns::named(format!("baton-{tag}-b-{pid}"));
        a.ip(&[
            "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &b.0,
        ]);
        for (ns, addr) in [(&a, a_addr), (&b, b_addr)] {
            ns.ip(&["addr", "add", addr, "dev", "eth0"]);
            ns.ip(&["link", "set", "eth0", "up"]);
            ns.ip(&["link", "set", "lo", "up"]);
            // What a LAN's default route gives: somewhere to send multicast (mDNS).
            ns.ip(&["route", "add", "224.0.0.0/4", "dev", "eth0"]);
        }
        Lan { a, b }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// A child process killed and reaped on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A temporary directory `baton-<tag>-<pid>`, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates the directory afresh (a leftover is removed first).
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("baton-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)
            .unwrap_or_else(|e| panic!("creating temp dir {}: {e}", p.display()));
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
