//! The `baton` command as a user runs it: clear errors for bad input, nothing left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `baton` command, keeping the cluster CAs its builds make under the target directory
/// instead of the user's `~/.config/baton`.
fn baton() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.env(
        "XDG_CONFIG_HOME",
        concat!(env!("CARGO_TARGET_TMPDIR"), "/xdg-config"),
    );
    cmd
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
    let (ok, text) = run(Command::new("unshare")
        .env(
            "XDG_CONFIG_HOME",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/xdg-config"),
        )
        .args(["-m", "--propagation", "private", "sh", "-c", &script]));
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

/// The example service archive, built with `scripts/build-example` when missing.
fn example_archive() -> PathBuf {
    let path = repo().join("target/examples/hello.tar");
    if !path.is_file() {
        let (ok, text) = run(Command::new("bash").arg(repo().join("scripts/build-example")));
        assert!(ok, "scripts/build-example failed:\n{text}");
    }
    path
}

/// A file the builder takes for a static aarch64 init (the refusal tests stop before using it).
fn fake_init(dir: &Path) -> PathBuf {
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[18] = 183;
    let path = dir.join("init");
    std::fs::write(&path, elf).expect("writing a fake init");
    path
}

/// `baton image build --board qemu-virt` into `out` with the given `--image` arguments.
fn build_with_images(out: &Path, lock: &Path, init: &Path, images: &[String]) -> (bool, String) {
    let mut cmd = baton();
    cmd.args(["image", "build", "--board", "qemu-virt", "--config"])
        .arg(repo().join("examples/config"))
        .arg("--output")
        .arg(out)
        .arg("--lock")
        .arg(lock)
        .arg("--init")
        .arg(init);
    for image in images {
        cmd.arg("--image").arg(image);
    }
    run(&mut cmd)
}

/// Runs an e2fsprogs tool on the data partition of `image` in place; its output.
fn on_data_partition(image: &Path, program: &str, args: &[&str]) -> String {
    let mut file = std::fs::File::open(image).expect("opening the image");
    let mbr = baton::disk::mbr::Mbr::read_from(&mut file).expect("reading the MBR");
    let data = mbr.partitions[3].expect("data partition");
    let device = format!("{}?offset={}", image.display(), data.offset());
    let (ok, text) = run(Command::new(program).args(args).arg(&device));
    assert!(ok, "{program} {args:?} {device}:\n{text}");
    text
}

/// `--image` bakes verified images into the data partition's store under the reference specs
/// name, lists them in `baton image inspect`, and the same inputs still give the same bytes.
#[test]
fn image_flag_bakes_the_store_into_the_data_partition() {
    assert!(init_binary().is_file(), "run scripts/build-init first");
    let hello = example_archive();
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("baton.lock");
    let images = [
        hello.display().to_string(),
        format!("registry.lan:5000/hello:2={}", hello.display()),
    ];
    let first = dir.path().join("a.img");
    let (ok, text) = build_with_images(&first, &lock, &init_binary(), &images);
    assert!(ok, "{text}");

    let fsck = on_data_partition(&first, "e2fsck", &["-fn"]);
    assert!(fsck.contains("baton-data"), "{fsck}");
    let refs = on_data_partition(&first, "debugfs", &["-R", "ls -l /images/refs"]);
    for name in [
        "docker.io/library/hello:latest",
        "registry.lan:5000/hello:2",
    ] {
        let escaped = baton_oci::store::escape_ref(name);
        let line = refs
            .lines()
            .find(|l| l.ends_with(&escaped))
            .unwrap_or_else(|| panic!("no ref {escaped}:\n{refs}"));
        // Root-owned, 0644, whoever built it.
        assert!(line.contains("100644 (1)      0      0"), "{line}");
    }
    let dump = dir.path().join("dump");
    std::fs::create_dir(&dump).unwrap();
    let rdump = format!("rdump /images {}", dump.display());
    on_data_partition(&first, "debugfs", &["-R", &rdump]);
    let store = baton_oci::Store::open(dump.join("images")).unwrap();
    let digest = store.get_ref("registry.lan:5000/hello:2").unwrap();
    assert_eq!(
        store.get_ref("docker.io/library/hello:latest").unwrap(),
        digest
    );
    assert!(
        std::fs::read_dir(dump.join("images/layers"))
            .unwrap()
            .next()
            .is_none(),
        "layers are unpacked on the board, not by the builder"
    );

    let (ok, listing) = run(baton().args(["image", "inspect"]).arg(&first));
    assert!(ok, "{listing}");
    assert!(
        listing.contains(&format!("baked      registry.lan:5000/hello:2 {digest}")),
        "{listing}"
    );

    let second = dir.path().join("b.img");
    let (ok, text) = build_with_images(&second, &lock, &init_binary(), &images);
    assert!(ok, "{text}");
    assert!(
        std::fs::read(&first).unwrap() == std::fs::read(&second).unwrap(),
        "two builds from the same inputs differ"
    );
}

/// A wrong-architecture or corrupt archive and a bad REF are refused, naming the archive or
/// the argument, before anything is written.
#[test]
fn image_flag_refuses_bad_images_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let init = fake_init(dir.path());
    let lock = dir.path().join("baton.lock");

    let amd64 = dir.path().join("amd64.tar");
    let spec = baton_oci::pack::PackSpec {
        entries: vec![baton_oci::pack::PackEntry::bytes(
            "/hello",
            b"x".to_vec(),
            0o755,
        )],
        config: baton_oci::RuntimeConfig::default(),
        platform: baton_oci::Platform {
            architecture: "amd64".to_string(),
            os: "linux".to_string(),
            variant: None,
        },
        tag: Some("web:1".to_string()),
    };
    baton_oci::pack::oci_archive(&spec, std::fs::File::create(&amd64).unwrap()).unwrap();
    let corrupt = dir.path().join("corrupt.tar");
    let mut bytes = std::fs::read(example_archive()).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 4096] {
        *b ^= 0x5a;
    }
    std::fs::write(&corrupt, bytes).unwrap();

    for (image, needle) in [
        (amd64.display().to_string(), "amd64.tar"),
        (format!("web:1={}", corrupt.display()), "corrupt.tar"),
        (
            format!("Bad Ref={}", amd64.display()),
            "not a registry reference",
        ),
        (
            format!("oci-archive:images/x.tar={}", amd64.display()),
            "registry reference",
        ),
    ] {
        let (ok, text) = build_with_images(
            &out.join("x.img"),
            &lock,
            &init,
            std::slice::from_ref(&image),
        );
        assert!(!ok, "{image} was accepted");
        assert!(text.contains(needle), "{image}: {text}");
        assert!(entries(&out).is_empty(), "{:?}", entries(&out));
        assert!(!lock.exists());
    }
}
