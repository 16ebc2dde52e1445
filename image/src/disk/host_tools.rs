//! Test support: runs the standard host tools that judge our bytes (sfdisk, fsck.fat, mtools,
//! e2fsck, cpio, gzip). A missing tool fails the test with the Debian package to install.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `program` with `args`; panics (failing the test) if it cannot start. Returns its output.
pub fn run(program: &str, args: &[&str]) -> Output {
    run_in(program, args, None)
}

/// Like [`run`], in directory `dir` when given.
pub fn run_in(program: &str, args: &[&str], dir: Option<&Path>) -> Output {
    // sfdisk, fsck.fat, e2fsck and friends live in /usr/sbin, which a normal user's PATH lacks.
    let path = std::env::var("PATH").unwrap_or_default();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("LC_ALL", "C")
        .env("PATH", format!("{path}:/usr/sbin:/sbin"));
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run {program}: {e} (install the Debian packages fdisk, dosfstools, mtools, \
             e2fsprogs, cpio and gzip)"
        ),
    }
}

/// Runs a tool that must succeed; returns its stdout as text.
pub fn check(program: &str, args: &[&str]) -> String {
    check_in(program, args, None)
}

/// Like [`check`], in directory `dir` when given.
pub fn check_in(program: &str, args: &[&str], dir: Option<&Path>) -> String {
    let out = run_in(program, args, dir);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Text form of a path for a tool's argument list.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}
