use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::boot::testbed::Testbed;

const INITRAMFS: &str = "1 1 0:2 / / rw - rootfs rootfs rw,size=239k\n";
const TMPFS: &str = "1 0 0:25 / / rw - tmpfs tmpfs rw\n";

fn args() -> Vec<String> {
    vec!["/init".to_string(), "quiet".to_string()]
}

/// An initramfs with the init, a config file, a symlink, a read-only directory and a FIFO.
fn initramfs(mountinfo: &str) -> Testbed {
    let bed = Testbed::new();
    bed.file("/proc/self/mountinfo", mountinfo);
    bed.file("/init", "ELF");
    bed.file("/etc/baton/build.json", "{}");
    std::os::unix::fs::symlink("etc/baton", bed.ctx.path("/baton")).expect("symlink");
    std::fs::create_dir(bed.ctx.path("/ro")).expect("mkdir");
    std::fs::set_permissions(bed.ctx.path("/ro"), fs::Permissions::from_mode(0o555))
        .expect("chmod");
    std::fs::create_dir(bed.ctx.path("/dev")).expect("mkdir");
    nix::unistd::mkfifo(
        &bed.ctx.path("/dev/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    bed
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn does_nothing_when_the_root_is_already_a_tmpfs() {
    let bed = initramfs(TMPFS);
    assert_eq!(
        switch_root(&bed.ctx, &args()).expect("switch"),
        Outcome::NotNeeded
    );
    assert_eq!(bed.sys.calls(), ["mount proc proc /proc", "unmount /proc"]);
    assert!(bed.ctx.path("/init").exists());
    assert!(!bed.ctx.path(NEW_ROOT).exists());
}

#[test]
fn copies_the_initramfs_deletes_it_and_executes_the_init_from_the_copy() {
    let bed = initramfs(INITRAMFS);
    assert_eq!(
        switch_root(&bed.ctx, &args()).expect("switch"),
        Outcome::Executed
    );
    assert_eq!(
        bed.sys.calls(),
        [
            "mount proc proc /proc",
            "unmount /proc",
            "mount tmpfs tmpfs /.baton-root mode=0755",
            "mknod /.baton-root/dev/fifo 10600 0",
            "chdir /.baton-root",
            "move /.baton-root /",
            "chroot .",
            "chdir /",
            "exec /init /init --baton-switched-root quiet",
        ]
    );
    // The fake mount leaves the copy in a plain directory; the old files are gone.
    assert_eq!(entries(&bed.ctx.root), [".baton-root"]);
    let copy = bed.ctx.path(NEW_ROOT);
    assert_eq!(
        entries(&copy),
        ["baton", "dev", "etc", "init", "proc", "ro"]
    );
    assert_eq!(fs::read(copy.join("init")).expect("init"), b"ELF");
    assert_eq!(
        fs::read(copy.join("etc/baton/build.json")).expect("json"),
        b"{}"
    );
    assert_eq!(
        fs::read_link(copy.join("baton")).expect("link"),
        Path::new("etc/baton")
    );
    let mode = fs::metadata(copy.join("ro"))
        .expect("ro")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o555);
}

#[test]
fn the_reexecuted_init_just_notes_the_tmpfs_root() {
    let bed = initramfs(TMPFS);
    let args = ["/init", SWITCHED_ARG].map(String::from);
    assert_eq!(
        switch_root(&bed.ctx, &args).expect("switch"),
        Outcome::NotNeeded
    );
    assert!(bed.console().iter().any(|l| l.contains("tmpfs root")));
}

#[test]
fn never_switches_twice() {
    let bed = initramfs(INITRAMFS);
    let args = ["/init", SWITCHED_ARG].map(String::from);
    assert!(matches!(
        switch_root(&bed.ctx, &args),
        Err(Error::StillInitramfs)
    ));
    assert!(bed.sys.calls_starting("mount tmpfs").is_empty());
    assert!(bed.ctx.path("/init").exists());
}

#[test]
fn a_failed_tmpfs_mount_stays_on_the_initramfs() {
    let bed = initramfs(INITRAMFS);
    bed.sys.fail("mount tmpfs", libc::ENOMEM);
    let err = switch_root(&bed.ctx, &args()).expect_err("must fail");
    assert!(matches!(err, Error::Prepare { .. }), "{err}");
    assert!(err.to_string().contains(".baton-root"), "{err}");
    assert!(bed.ctx.path("/init").exists());
    assert!(!bed.ctx.path(NEW_ROOT).exists());
    assert!(bed.sys.calls_starting("chroot").is_empty());
    assert!(bed.sys.calls_starting("exec").is_empty());
}

#[test]
fn a_failed_copy_unmounts_the_tmpfs_and_keeps_the_initramfs() {
    let bed = initramfs(INITRAMFS);
    bed.sys.fail("mknod", libc::EPERM);
    let err = switch_root(&bed.ctx, &args()).expect_err("must fail");
    assert!(err.to_string().contains("dev/fifo"), "{err}");
    let calls = bed.sys.calls();
    assert_eq!(
        calls.last().map(String::as_str),
        Some("unmount /.baton-root")
    );
    assert!(!bed.ctx.path(NEW_ROOT).exists());
    for kept in ["/init", "/etc/baton/build.json", "/dev/fifo"] {
        assert!(bed.ctx.path(kept).exists(), "{kept} deleted");
    }
}

#[test]
fn a_failed_move_enters_the_copy_with_chroot_and_does_not_exec() {
    let bed = initramfs(INITRAMFS);
    bed.sys.fail("move", libc::EINVAL);
    let err = switch_root(&bed.ctx, &args()).expect_err("must fail");
    assert!(matches!(err, Error::Move { .. }), "{err}");
    let calls = bed.sys.calls();
    let tail: Vec<&str> = calls
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        ["move /.baton-root /", "chroot /.baton-root", "chdir /"]
    );
}

#[test]
fn a_failed_exec_is_reported_after_entering_the_new_root() {
    let bed = initramfs(INITRAMFS);
    bed.sys.fail("exec", libc::ENOMEM);
    let err = switch_root(&bed.ctx, &args()).expect_err("must fail");
    assert!(matches!(err, Error::Exec { .. }), "{err}");
    assert_eq!(bed.sys.calls_starting("chroot"), ["chroot ."]);
}

#[test]
fn unreadable_mountinfo_unmounts_proc_and_fails() {
    let bed = Testbed::new();
    bed.file("/init", "ELF");
    let err = switch_root(&bed.ctx, &args()).expect_err("must fail");
    assert!(matches!(err, Error::Detect { .. }), "{err}");
    assert_eq!(bed.sys.calls(), ["mount proc proc /proc", "unmount /proc"]);
    assert!(bed.ctx.path("/init").exists());
}
