//! The dashboard in a real browser: Debian's `chromium`, driven through `chromium-driver` by
//! `tests/browser/dashboard.py` (Debian's `python3-selenium`), which trusts the tests' cluster
//! CAs through an NSS store as a user's browser would. The script's steps and what each
//! checks are in its doc string; its screenshots are kept in [`shots_dir`].

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ca_bundle, repo_root};

/// What the script is given: the board's API and one of its services.
#[derive(Debug, Clone)]
pub struct Dashboard<'a> {
    /// Host port forwarded to the board's API.
    pub api_port: u16,
    /// The API token.
    pub token: &'a str,
    /// The board's name (its host name).
    pub board: &'a str,
    /// A running service whose log lines and crash are watched; its first instance must be
    /// `<service>-1`, and `GET /hog` must get it OOM-killed.
    pub service: &'a str,
    /// Host port forwarded to that service.
    pub service_port: u16,
    /// Other services the cluster page must list.
    pub others: &'a [&'a str],
    /// A service whose allow list names `service`: the service's page and the picture of who
    /// may call whom must show the call.
    pub caller: &'a str,
    /// Boards the cluster page must show with their version and a CPU share (besides `board`).
    pub boards: &'a [&'a str],
    /// Only the sign-in and the cluster page (the other steps need the lifecycle test's
    /// services); screenshots then go to `dashboard-cluster/`.
    pub cluster_only: bool,
}

/// Where the screenshots go: `target/e2e-artifacts/<name>/` (or under `$CARGO_TARGET_DIR`).
pub fn shots_dir(name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("e2e-artifacts")
        .join(name)
}

/// Runs the script against the board; panics with its output when a step fails or it takes
/// longer than `deadline`.
pub fn check(dashboard: &Dashboard, deadline: Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_bundle()).expect("ca.pem");
    let shots = shots_dir(if dashboard.cluster_only {
        "dashboard-cluster"
    } else {
        "dashboard"
    });
    let _ = std::fs::remove_dir_all(&shots);
    let log = dir.path().join("dashboard.log");
    let out = std::fs::File::create(&log).expect("log");
    let mut child = Command::new("/usr/bin/python3")
        .arg(repo_root().join("tests/browser/dashboard.py"))
        .args([
            "--api",
            &format!("https://127.0.0.1:{}", dashboard.api_port),
        ])
        .args(["--token", dashboard.token])
        .arg("--ca")
        .arg(&ca)
        .args(["--board", dashboard.board])
        .args(["--service", dashboard.service])
        .args(["--service-port", &dashboard.service_port.to_string()])
        .args(["--services", &dashboard.others.join(",")])
        .args(["--caller", dashboard.caller])
        .args(["--boards", &dashboard.boards.join(",")])
        .args(dashboard.cluster_only.then_some("--cluster-only"))
        .arg("--shots")
        .arg(&shots)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("python3 (scripts/setup installs python3-selenium, chromium and chromium-driver)");
    let end = Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the browser script") {
            break Some(status);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    println!("{output}");
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "the dashboard in the browser failed ({s}); screenshots in {}:\n{output}",
            shots.display()
        ),
        None => panic!(
            "the dashboard in the browser took longer than {deadline:?}; screenshots in {}:\n{output}",
            shots.display()
        ),
    }
}
