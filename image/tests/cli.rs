//! The `baton` command as a user runs it: clear errors for bad input, nothing left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn baton() -> Command {
    Command::new(env!("CARGO_BIN_EXE_baton"))
}

fn run(cmd: &mut Command) -> (bool, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("running baton");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.success(), text)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn init_binary() -> PathBuf {
    repo().join("target/aarch64-unknown-linux-musl/board/baton-init")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("listing")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn unknown_board_lists_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = run(baton()
        .args(["image", "build", "--board", "pi9", "--config"])
        .arg(repo().join("examples/config"))
        .arg("--output")
        .arg(dir.path().join("x.img")));
    assert!(!ok);
    assert!(
        text.contains("pi9") && text.contains("qemu-virt") && text.contains("pi4b"),
        "{text}"
    );
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

#[test]
fn pi5_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = run(baton()
        .args(["image", "build", "--board", "pi5", "--config"])
        .arg(repo().join("examples/config"))
        .arg("--output")
        .arg(dir.path().join("x.img")));
    assert!(!ok);
    assert!(
        text.contains("pi5") && text.to_lowercase().contains("sd"),
        "{text}"
    );
}

#[test]
fn inspecting_something_that_is_not_an_image_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.img");
    std::fs::write(&junk, vec![0x42u8; 4096]).unwrap();
    let (ok, text) = run(baton().args(["image", "inspect"]).arg(&junk));
    assert!(!ok);
    assert!(text.contains("junk.img"), "{text}");
    let (ok, text) = run(baton()
        .args(["image", "inspect"])
        .arg(dir.path().join("missing.img")));
    assert!(!ok);
    assert!(text.contains("missing.img"), "{text}");
}

#[test]
fn qemu_run_refuses_a_bad_forward_and_a_corrupt_image() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.img");
    std::fs::write(&junk, vec![0u8; 1 << 20]).unwrap();
    let (ok, text) = run(baton()
        .args(["qemu", "run"])
        .arg(&junk)
        .args(["--forward", "7070"]));
    assert!(!ok);
    assert!(text.contains("HOST:GUEST"), "{text}");
    let (ok, text) = run(baton().args(["qemu", "run"]).arg(&junk));
    assert!(!ok);
    assert!(text.contains("junk.img"), "{text}");
}

/// A full disk fails the build with a clear error and leaves no partial image. Needs root for
/// a private mount namespace holding a small tmpfs (CI runs as root).
#[test]
fn a_full_disk_fails_cleanly() {
    assert!(
        is_root(),
        "this test needs root (a private mount namespace with a small tmpfs); run it as root"
    );
    assert!(init_binary().is_file(), "run scripts/build-init first");
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    // Inside a private mount namespace: a 16 MiB tmpfs, too small for the image; the build's
    // exit status and the directory's contents afterwards are what we check.
    let script = format!(
        "mount -t tmpfs -o size=16m baton-test {small} && {baton} image build --board qemu-virt \
         --config {config} --output {small}/x.img --lock {lock} --init {init}; status=$?; \
         echo \"left behind: [$(ls -A {small})]\"; exit $status",
        small = small.display(),
        baton = env!("CARGO_BIN_EXE_baton"),
        config = repo().join("examples/config").display(),
        lock = dir.path().join("baton.lock").display(),
        init = init_binary().display(),
    );
    let (ok, text) =
        run(Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]));
    assert!(!ok, "the build must fail on a full disk:\n{text}");
    assert!(
        text.contains("No space left on device") || text.contains("os error 28"),
        "{text}"
    );
    assert!(
        text.contains("left behind: []"),
        "something was left behind:\n{text}"
    );
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// `baton oci pack` writes an archive that the board's image store imports as linux/arm64 with
/// the binary as its entrypoint.
#[test]
fn oci_pack_writes_an_importable_archive() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("hello");
    std::fs::write(&binary, b"\x7fELF pretend binary").unwrap();
    let archive = dir.path().join("hello.tar");
    let pack = |output: &Path| {
        run(baton()
            .args(["oci", "pack", "--binary"])
            .arg(&binary)
            .args([
                "--path",
                "/hello",
                "--port",
                "8080",
                "--env",
                "GREETING=hi",
                "--output",
            ])
            .arg(output))
    };
    let (ok, text) = pack(&archive);
    assert!(ok, "{text}");
    let again = dir.path().join("again.tar");
    assert!(pack(&again).0);
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        std::fs::read(&again).unwrap(),
        "packing is deterministic"
    );

    let store = baton_oci::Store::open(dir.path().join("store")).unwrap();
    let source = baton_oci::Source::parse("oci-archive:hello.tar", dir.path()).unwrap();
    let imported = store.import(&source, "hello").unwrap();
    assert_eq!(imported.platform, baton_oci::Platform::linux_arm64());
    assert_eq!(imported.layers, 1);

    let (ok, text) = run(baton()
        .args(["oci", "pack", "--binary"])
        .arg(dir.path().join("missing"))
        .args(["--path", "/hello", "--output"])
        .arg(dir.path().join("x.tar")));
    assert!(!ok && text.contains("missing"), "{text}");
    assert!(!dir.path().join("x.tar").exists());
}
