//! Harness for baton's end-to-end tests: build real images with the real builder, boot them
//! under QEMU, talk to them over the API, and wait for conditions with deadlines (never for
//! fixed times).
//!
//! The tests need the board's init binary (`scripts/build-init`) and reach the Debian archive
//! the first time (packages are cached in `~/.cache/baton` or `$BATON_CACHE_DIR`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton::build::{BuildOptions, BuildReport};
use baton::client::Client;
use baton_qemu::{Forward, GuestForward, Lab, LabConfig};

pub mod browser;
pub mod prometheus;
pub mod registry;
pub mod station_auth;
pub mod view;
pub mod web;

/// The line the init prints once boot has completed.
pub const READY: &str = "baton: ready";

/// The API port on every board.
pub const API_PORT: u16 = 7070;

/// How long a board may take to boot under QEMU's software emulation.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

/// A `cluster.toml` with fixed secrets, for tests that need to know the token.
pub const CLUSTER_TOML: &str = r#"[cluster]
name = "e2e"
key = "e2e-cluster-key-0123456789abcdef0123456789"

[api]
token = "e2e-token-0123456789abcdef"

[time]
servers = []
"#;

/// The token in [`CLUSTER_TOML`].
pub const TOKEN: &str = "e2e-token-0123456789abcdef";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The board's init binary, built by `scripts/build-init`.
pub fn init_binary() -> PathBuf {
    let path = std::env::var_os("BATON_INIT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target"));
            target.join("aarch64-unknown-linux-musl/board/baton-init")
        });
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-init first (scripts/test does)",
        path.display()
    );
    path
}

/// The previous release's init binary, built by `scripts/build-previous` (boards of two releases
/// side by side).
pub fn previous_init_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let path = target.join("previous/baton-init");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-previous first (scripts/test does)",
        path.display()
    );
    path
}

/// Where the tests' builds keep each cluster's CA (as `baton image build` keeps it in
/// `~/.config/baton`): `target/e2e-config/<cluster>/`. Every image of one cluster name gets the
/// same CA, as a user's builds do, so the boards of a test trust each other.
pub fn user_config_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("e2e-config")
}

/// Every CA the tests' builds have kept ([`user_config_dir`]), as one PEM bundle.
pub fn ca_bundle() -> String {
    let mut bundle = String::new();
    if let Ok(entries) = std::fs::read_dir(user_config_dir()) {
        for entry in entries.flatten() {
            if let Ok(pem) = std::fs::read_to_string(entry.path().join("ca.pem")) {
                bundle.push_str(&pem);
            }
        }
    }
    bundle
}

/// A client for the API forwarded to host port `port`, over TLS trusting the tests' CAs.
pub fn client(port: u16, token: &str) -> Client {
    client_at(&format!("127.0.0.1:{port}"), token)
}

/// A client for the API at `host:port`, over TLS trusting the tests' CAs.
pub fn client_at(authority: &str, token: &str) -> Client {
    Client::with_ca(&format!("https://{authority}"), token, &ca_bundle())
        .unwrap_or_else(|e| panic!("no CA in {}: {e}", user_config_dir().display()))
}

/// The package cache the tests share with the user's builds (`$BATON_CACHE_DIR` overrides it).
pub fn cache_dir() -> PathBuf {
    baton::debian::cache::default_dir().expect("no cache directory: set BATON_CACHE_DIR")
}

/// A built image in its own temporary directory (removed on drop).
#[derive(Debug)]
pub struct TestImage {
    /// The directory holding the image, its config directory and its lock file.
    pub dir: tempfile::TempDir,
    /// The image file.
    pub path: PathBuf,
    /// What the builder reported.
    pub report: BuildReport,
}

/// Options for a build in a fresh temporary directory with `files` as the config directory.
pub fn build_options(dir: &Path, board: &str, files: &[(&str, &str)]) -> BuildOptions {
    let config = dir.join("config");
    for (name, text) in files {
        let path = config.join(name);
        std::fs::create_dir_all(path.parent().expect("config file has a parent"))
            .expect("creating config dir");
        std::fs::write(&path, text).expect("writing config file");
    }
    std::fs::create_dir_all(&config).expect("creating config dir");
    BuildOptions {
        board: board.to_string(),
        config_dir: config,
        output: dir.join(format!("{board}.img")),
        lock: dir.join("baton.lock"),
        offline: false,
        update: false,
        init: init_binary(),
        cache_dir: cache_dir(),
        board_configs: Some(repo_root().join("board-configs")),
        mirror: baton::debian::DEFAULT_MIRROR.to_string(),
        progress: false,
        epoch: baton::build::DEFAULT_EPOCH,
        user_config_dir: Some(user_config_dir().to_path_buf()),
    }
}

/// Builds an image for `board` whose config directory holds `files` (`(path, contents)`).
pub fn build_image(board: &str, files: &[(&str, &str)]) -> TestImage {
    build_image_with(board, files, &[])
}

/// Like [`build_image`], also copying host files (`(path in the config dir, host path)`).
pub fn build_image_with(
    board: &str,
    files: &[(&str, &str)],
    copies: &[(&str, &Path)],
) -> TestImage {
    build_image_baking(board, files, copies, &[])
}

/// Like [`build_image_with`], also baking images into the data partition (`REF=ARCHIVE`, as
/// `baton image build --image` takes them).
pub fn build_image_baking(
    board: &str,
    files: &[(&str, &str)],
    copies: &[(&str, &Path)],
    images: &[&str],
) -> TestImage {
    build_image_of(init_binary(), board, files, copies, images)
}

/// Like [`build_image_with`], with another init binary (the previous release's, say).
pub fn build_image_of(
    init: PathBuf,
    board: &str,
    files: &[(&str, &str)],
    copies: &[(&str, &Path)],
    images: &[&str],
) -> TestImage {
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let mut opts = build_options(dir.path(), board, files);
    opts.init = init;
    for (name, host) in copies {
        let to = opts.config_dir.join(name);
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("creating config dir");
        std::fs::copy(host, &to).unwrap_or_else(|e| panic!("copying {}: {e}", host.display()));
    }
    let bake = baton::build::BakeOptions {
        images: images
            .iter()
            .map(|arg| {
                baton::bake::ImageArg::parse(arg).unwrap_or_else(|e| panic!("--image {arg}: {e}"))
            })
            .collect(),
    };
    let report = baton::build::build_with(&opts, &bake)
        .unwrap_or_else(|e| panic!("building the {board} image: {e}"));
    TestImage {
        path: opts.output,
        dir,
        report,
    }
}

/// Boots `boards` boards from `image`, with each board's API forwarded to a free host port and
/// serial logs kept under `target/e2e-serial/<name>/` for post-mortems.
pub fn boot(image: &Path, boards: usize, name: &str) -> Lab {
    boot_forwarding(image, boards, name, &[API_PORT])
}

/// Like [`boot`], forwarding each of `guest_ports` of every board to free host ports.
pub fn boot_forwarding(image: &Path, boards: usize, name: &str, guest_ports: &[u16]) -> Lab {
    boot_with(image, boards, name, guest_ports, &[])
}

/// Like [`boot_forwarding`], also letting every board reach host ports through `guest_forwards`.
pub fn boot_with(
    image: &Path,
    boards: usize,
    name: &str,
    guest_ports: &[u16],
    guest_forwards: &[GuestForward],
) -> Lab {
    let mut config = LabConfig::new(image);
    config.guest_forwards = guest_forwards.to_vec();
    config.boards = boards;
    // One block of free ports for all forwards, so no two forwards can be handed the same one.
    let base = baton_qemu::free_ports(boards * guest_ports.len()).expect("finding free ports");
    for (i, guest) in guest_ports.iter().enumerate() {
        let host = base + u16::try_from(i * boards).expect("few forwards");
        config.forwards.push(Forward {
            host,
            guest: *guest,
        });
    }
    let serial = repo_root().join("target/e2e-serial").join(name);
    let _ = std::fs::remove_dir_all(&serial);
    config.serial_dir = Some(serial);
    Lab::start(config).unwrap_or_else(|e| panic!("starting QEMU: {e}"))
}

/// A client for board `index`'s API (1-based).
pub fn api(lab: &Lab, index: usize, token: &str) -> Client {
    let board = lab.board(index).expect("board index");
    let port = board
        .forwarded(API_PORT)
        .expect("the API port is forwarded");
    client(port, token)
}

/// Waits for `board`'s console to print [`READY`] `count` times; panics with the console's tail.
pub fn wait_ready(lab: &Lab, index: usize, count: usize) {
    let board = lab.board(index).expect("board index");
    if let Err(e) = board.wait_for_count(READY, count, Instant::now() + BOOT_TIMEOUT) {
        panic!(
            "board {index} did not get ready: {e}\n{}",
            tail(&board.lines(), 60)
        );
    }
}

/// The last `n` lines, joined.
pub fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Polls `probe` until it returns `Some` or `timeout` passes; panics naming `what`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Replaces `name` on the image's config partition with `contents`, using mtools as a user
/// editing the card on another computer would.
pub fn replace_config_file(image: &Path, name: &str, contents: &str) {
    let mut file = std::fs::File::open(image).expect("opening the image");
    let mbr = baton::disk::mbr::Mbr::read_from(&mut file).expect("reading the MBR");
    let index = baton_spec::build_info::partition::CONFIG as usize - 1;
    let part = mbr.partitions[index].as_ref().expect("config partition");
    let offset = part.offset();
    let dir = tempfile::tempdir().expect("temporary directory");
    let source = dir.path().join("file");
    std::fs::write(&source, contents).expect("writing the replacement");
    let status = std::process::Command::new("mcopy")
        .arg("-o")
        .arg("-i")
        .arg(format!("{}@@{offset}", image.display()))
        .arg(&source)
        .arg(format!("::{name}"))
        .status()
        .expect("running mcopy (Debian package mtools)");
    assert!(status.success(), "mcopy failed: {status}");
}

/// The strings of a JSON array (empty if it is not one).
pub fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// The example service packaged by `scripts/build-example`.
pub fn example_archive() -> PathBuf {
    let path = repo_root().join("target/examples/hello.tar");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-example first (scripts/test does)",
        path.display()
    );
    path
}

/// One HTTP GET to 127.0.0.1:`port`: the status code and the body (`None` if nothing usable came
/// back within 20 s).
pub fn http_request(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// One HTTP GET to 127.0.0.1:`port`; the body, if the answer was 200.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    http_request(port, path)
        .filter(|(code, _)| *code == 200)
        .map(|(_, body)| body)
}
