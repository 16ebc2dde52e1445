//! Files read from an image's layers: overlayfs semantics, and hostile layers refused in time.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::stat::{Mode, SFlag};

use super::super::image_files::{read, Refused, MAX_BYTES, MAX_OPEN};

/// Longest a read may take before the test fails (it must not hang).
const DEADLINE: Duration = Duration::from_secs(30);

/// Reads `path` from `layers` on a thread of its own, failing the test past the deadline.
fn read_in_time(layers: &[&Path], path: &str) -> Result<Option<Vec<u8>>, Refused> {
    let layers: Vec<PathBuf> = layers.iter().map(|l| l.to_path_buf()).collect();
    let path = path.to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(read(&layers, &path));
    });
    rx.recv_timeout(DEADLINE)
        .expect("the read finishes before the deadline")
}

fn layer() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("etc")).expect("mkdir etc");
    dir
}

fn write(root: &Path, path: &str, contents: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, contents).expect("write");
}

fn mknod(path: &Path, kind: SFlag, dev: u64) {
    nix::sys::stat::mknod(path, kind, Mode::from_bits_truncate(0o644), dev).expect("mknod");
}

fn text(found: Result<Option<Vec<u8>>, Refused>) -> Option<String> {
    found
        .expect("a file or none")
        .map(|b| String::from_utf8(b).expect("utf8"))
}

#[test]
fn the_topmost_layer_with_the_file_wins_and_directories_merge() {
    let (top, lower) = (layer(), layer());
    write(lower.path(), "etc/passwd", "lower\n");
    write(lower.path(), "etc/group", "lower group\n");
    write(top.path(), "etc/passwd", "top\n");
    let layers = [top.path(), lower.path()];
    assert_eq!(
        text(read_in_time(&layers, "/etc/passwd")).as_deref(),
        Some("top\n")
    );
    assert_eq!(
        text(read_in_time(&layers, "/etc/group")).as_deref(),
        Some("lower group\n")
    );
    assert_eq!(text(read_in_time(&layers, "/etc/shadow")), None);
    assert_eq!(text(read_in_time(&layers, "/nowhere/passwd")), None);
}

#[test]
fn whiteouts_hide_what_is_below() {
    let (top, lower) = (layer(), layer());
    write(lower.path(), "etc/passwd", "deleted\n");
    mknod(&top.path().join("etc/passwd"), SFlag::S_IFCHR, 0);
    assert_eq!(
        text(read_in_time(&[top.path(), lower.path()], "/etc/passwd")),
        None
    );
}

#[test]
fn an_opaque_directory_hides_the_layers_below() {
    let (top, lower) = (layer(), layer());
    write(lower.path(), "etc/passwd", "hidden\n");
    let etc = top.path().join("etc");
    if let Err(e) = xattr_set(&etc, "trusted.overlay.opaque", b"y") {
        panic!("the temporary directory takes no trusted xattrs (needs root): {e}");
    }
    assert_eq!(
        text(read_in_time(&[top.path(), lower.path()], "/etc/passwd")),
        None
    );
}

fn xattr_set(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("a path");
    let name = std::ffi::CString::new(name).expect("a name");
    // SAFETY: both strings are NUL-terminated and outlive the call; the value is valid for its
    // length.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn links_resolve_inside_the_image_across_layers() {
    let (top, lower) = (layer(), layer());
    write(lower.path(), "usr/share/base/passwd", "through a link\n");
    symlink("../usr/share/base/passwd", top.path().join("etc/passwd")).expect("symlink");
    symlink(
        "/usr/share/base/../base/passwd",
        top.path().join("etc/group"),
    )
    .expect("symlink");
    let layers = [top.path(), lower.path()];
    assert_eq!(
        text(read_in_time(&layers, "/etc/passwd")).as_deref(),
        Some("through a link\n")
    );
    assert_eq!(
        text(read_in_time(&layers, "/etc/group")).as_deref(),
        Some("through a link\n")
    );
}

#[test]
fn links_out_of_the_layer_find_nothing_of_the_host() {
    let outside = tempfile::tempdir().expect("temp dir");
    write(outside.path(), "secret", "root:x:0:0:host\n");
    let secret = outside.path().join("secret");
    let escape = format!("../../../../../../../../..{}", secret.display());
    for target in [
        secret.display().to_string(),
        escape,
        "/dev/zero".to_string(),
    ] {
        let top = layer();
        symlink(&target, top.path().join("etc/passwd")).expect("symlink");
        assert_eq!(
            text(read_in_time(&[top.path()], "/etc/passwd")),
            None,
            "{target}"
        );
    }
}

#[test]
fn devices_fifos_directories_big_files_and_loops_are_refused() {
    let top = layer();
    std::fs::create_dir(top.path().join("dev")).expect("mkdir dev");
    mknod(
        &top.path().join("dev/zero"),
        SFlag::S_IFCHR,
        nix::sys::stat::makedev(1, 5),
    );
    symlink("/dev/zero", top.path().join("etc/passwd")).expect("symlink");
    nix::unistd::mkfifo(
        &top.path().join("etc/group"),
        Mode::from_bits_truncate(0o644),
    )
    .expect("mkfifo");
    std::fs::create_dir(top.path().join("etc/shadow")).expect("mkdir");
    let big = std::fs::File::create(top.path().join("etc/big")).expect("create");
    big.set_len(MAX_BYTES + 1).expect("set_len");
    symlink("loop", top.path().join("etc/loop")).expect("symlink");
    write(top.path(), "file", "");
    let layers = [top.path()];
    let cases = [
        ("/etc/passwd", Refused::NotRegular("a character device")),
        ("/etc/group", Refused::NotRegular("a FIFO")),
        ("/etc/shadow", Refused::NotRegular("a directory")),
        ("/etc/big", Refused::TooBig),
        ("/etc/loop", Refused::TooManyLinks),
        ("/file/passwd", Refused::NotADirectory("file".into())),
    ];
    for (path, refused) in cases {
        assert_eq!(read_in_time(&layers, path), Err(refused), "{path}");
    }
    let exact = std::fs::File::create(top.path().join("etc/big")).expect("create");
    exact.set_len(MAX_BYTES).expect("set_len");
    let read = read_in_time(&layers, "/etc/big").expect("a file");
    assert_eq!(read.map(|b| b.len() as u64), Some(MAX_BYTES));
}

#[test]
fn a_deep_path_cannot_take_the_file_descriptors() {
    let top = layer();
    std::fs::create_dir(top.path().join("d")).expect("mkdir");
    // `d/d/d/...` through a link to itself: every step is one more open directory.
    symlink(".", top.path().join("d/d")).expect("symlink");
    let deep = format!("/{}passwd", "d/".repeat(2 * MAX_OPEN));
    assert_eq!(
        read_in_time(&[top.path()], &deep),
        Err(Refused::TooManyLinks)
    );
    let mut path = top.path().to_path_buf();
    for _ in 0..MAX_OPEN {
        path.push("e");
    }
    std::fs::create_dir_all(&path).expect("mkdir -p");
    let deep = format!("/{}passwd", "e/".repeat(MAX_OPEN));
    assert_eq!(read_in_time(&[top.path()], &deep), Err(Refused::TooDeep));
}
