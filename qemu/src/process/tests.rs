use super::*;

/// Fails when QEMU is missing: scripts/setup installs it.
fn require_qemu() {
    let found = Command::new("qemu-system-aarch64")
        .arg("--version")
        .output()
        .is_ok();
    assert!(
        found,
        "qemu-system-aarch64 missing (apt-get install {QEMU_PACKAGE}; scripts/setup does)"
    );
}

fn console(dir: &Path) -> Arc<Console> {
    Arc::new(Console::new(1, &dir.join("board1.log"), false).unwrap())
}

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

#[test]
fn reports_early_exit_with_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = Launcher::start().unwrap();
    let c = console(dir.path());
    let a = args(&[
        "-c",
        "echo serial line; echo 'qemu: bad option' >&2; exit 3",
    ]);
    let spec = Spawn {
        board: 1,
        program: Path::new("/bin/sh"),
        args: &a,
        qmp: &dir.path().join("q.sock"),
        timeout: Duration::from_secs(30),
    };
    let err = QemuProcess::start(&launcher, spec, &c).unwrap_err();
    match &err {
        ProcessError::Exited {
            board: 1,
            status,
            stderr,
        } => {
            assert!(status.contains('3'), "{status}");
            assert_eq!(stderr, "qemu: bad option");
        }
        other => panic!("unexpected {other}"),
    }
    // The console got what was printed before the exit.
    assert_eq!(c.lines(), ["serial line"]);
}

#[test]
fn names_the_debian_package_when_qemu_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = Launcher::start().unwrap();
    let spec = Spawn {
        board: 2,
        program: Path::new("/nonexistent/qemu-system-aarch64"),
        args: &[],
        qmp: &dir.path().join("q.sock"),
        timeout: Duration::from_secs(1),
    };
    let err = QemuProcess::start(&launcher, spec, &console(dir.path())).unwrap_err();
    assert!(err.to_string().contains("qemu-system-arm"), "{err}");
}

#[test]
fn waits_for_qmp_then_kills_and_reaps() {
    require_qemu();
    let dir = tempfile::tempdir().unwrap();
    let launcher = Launcher::start().unwrap();
    let qmp = dir.path().join("q.sock");
    let a = args(&["-M", "none", "-nodefaults", "-display", "none", "-qmp"]);
    let mut a = a;
    a.push(format!("unix:{},server=on,wait=off", qmp.display()).into());
    let spec = Spawn {
        board: 1,
        program: Path::new("qemu-system-aarch64"),
        args: &a,
        qmp: &qmp,
        timeout: Duration::from_secs(30),
    };
    let mut p = QemuProcess::start(&launcher, spec, &console(dir.path())).unwrap();
    let pid = p.pid();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(p.try_exit().is_none());
    let exit = p.kill();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&exit.status.unwrap()),
        Some(9)
    );
    // Reaped: the PID is gone (or reused by someone else, which would not be a zombie of ours).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(!stat.contains("qemu-system"), "{stat}");
}

#[test]
fn reports_qemu_rejecting_its_arguments() {
    require_qemu();
    let dir = tempfile::tempdir().unwrap();
    let launcher = Launcher::start().unwrap();
    let a = args(&[
        "-M",
        "none",
        "-nodefaults",
        "-display",
        "none",
        "-device",
        "no-such-device",
    ]);
    let qmp = dir.path().join("q.sock");
    let spec = Spawn {
        board: 4,
        program: Path::new("qemu-system-aarch64"),
        args: &a,
        qmp: &qmp,
        timeout: Duration::from_secs(30),
    };
    let err = QemuProcess::start(&launcher, spec, &console(dir.path())).unwrap_err();
    assert!(
        matches!(err, ProcessError::Exited { board: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("no-such-device"), "{err}");
}
