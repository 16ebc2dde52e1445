//! Interoperability with the standard tools: images made by Debian's `umoci`, written as oci-archive
//! and docker-archive by `skopeo`, imported and unpacked; our own packer's output read by `skopeo`
//! and `umoci` and imported back. Needs root and `skopeo`, `umoci` (scripts/setup installs them).
// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use baton_oci::pack::{oci_archive, PackEntry, PackSpec};
use baton_oci::{ExposedPort, ImportError, RuntimeConfig, SourceKind, Store};
use common::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A two-layer layout made with umoci: layer 1 adds /etc/greeting and /etc/old, layer 2 deletes
/// /etc/old (a whiteout) and adds /srv/new; the config is set for `arch`.
fn umoci_layout(dir: &Path, arch: &str) -> PathBuf {
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    let image = format!("{}:t", layout.display());
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(rootfs.join("etc/greeting"), "hi\n").unwrap();
    fs::write(rootfs.join("etc/old"), "old\n").unwrap();
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    fs::remove_dir_all(&bundle).unwrap();
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    fs::remove_file(rootfs.join("etc/old")).unwrap();
    fs::create_dir_all(rootfs.join("srv")).unwrap();
    fs::write(rootfs.join("srv/new"), "new\n").unwrap();
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--architecture",
        arch,
        "--config.entrypoint",
        "/bin/web",
        "--config.cmd",
        "--port=8080",
        "--config.env",
        "A=b",
        "--config.workingdir",
        "/srv",
        "--config.user",
        "1000:1000",
        "--config.exposedports",
        "8080/tcp",
    ]));
    layout
}

fn skopeo_copy(from: &str, to: &str) {
    run(Command::new("skopeo").args(["--insecure-policy", "copy", "-q", from, to]));
}

fn check_umoci_image(store: &Store, name: &str) {
    let prepared = store.prepare(name).unwrap();
    let [top, bottom] = prepared.lower_dirs.as_slice() else {
        panic!("two layers expected: {:?}", prepared.lower_dirs)
    };
    assert_eq!(fs::read(bottom.join("etc/greeting")).unwrap(), b"hi\n");
    assert_eq!(fs::read(bottom.join("etc/old")).unwrap(), b"old\n");
    let whiteout = fs::symlink_metadata(top.join("etc/old")).unwrap();
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    assert_eq!(fs::read(top.join("srv/new")).unwrap(), b"new\n");
    assert_eq!(
        prepared.config,
        RuntimeConfig {
            entrypoint: vec!["/bin/web".into()],
            cmd: vec!["--port=8080".into()],
            env: vec!["A=b".into()],
            working_dir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            exposed_ports: vec![ExposedPort {
                port: 8080,
                udp: false
            }],
        }
    );
}

#[test]
fn skopeo_oci_archive_docker_archive_and_the_umoci_layout_import_alike() {
    let dir = tempfile::tempdir().unwrap();
    let layout = umoci_layout(dir.path(), "arm64");
    let oci_tar = dir.path().join("web.tar");
    let docker_tar = dir.path().join("web-docker.tar");
    skopeo_copy(
        &format!("oci:{}:t", layout.display()),
        &format!("oci-archive:{}", oci_tar.display()),
    );
    skopeo_copy(
        &format!("oci:{}:t", layout.display()),
        &format!("docker-archive:{}:web:latest", docker_tar.display()),
    );
    let store = Store::open(dir.path().join("store")).unwrap();
    let from_archive = store
        .import(&source(SourceKind::OciArchive, &oci_tar), "oci")
        .unwrap();
    let from_docker = store
        .import(&source(SourceKind::DockerArchive, &docker_tar), "docker")
        .unwrap();
    let from_layout = store
        .import(&source(SourceKind::OciLayout, &layout), "layout")
        .unwrap();
    assert_eq!(from_archive.manifest, from_layout.manifest);
    assert_eq!((from_docker.layers, from_archive.layers), (2, 2));
    for name in ["oci", "docker", "layout"] {
        check_umoci_image(&store, name);
    }
    // The docker archive's layers are the same content as the OCI ones: unpacked once, shared.
    assert_eq!(
        store.prepare("oci").unwrap().lower_dirs,
        store.prepare("docker").unwrap().lower_dirs
    );
    // Tags select images; a wrong one is named in the error.
    let mut tagged = source(SourceKind::DockerArchive, &docker_tar);
    tagged.tag = Some("latest".into());
    store.import(&tagged, "docker-tagged").unwrap();
    tagged.tag = Some("nope".into());
    let err = store.import(&tagged, "x").unwrap_err();
    assert!(
        matches!(err, ImportError::Tag { .. }) && err.to_string().contains("web:latest"),
        "{err}"
    );
}

#[test]
fn a_skopeo_archive_for_another_architecture_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = umoci_layout(dir.path(), "amd64");
    let oci_tar = dir.path().join("intel.tar");
    skopeo_copy(
        &format!("oci:{}:t", layout.display()),
        &format!("oci-archive:{}", oci_tar.display()),
    );
    let store = Store::open(dir.path().join("store")).unwrap();
    let err = store
        .import(&source(SourceKind::OciArchive, &oci_tar), "intel")
        .unwrap_err();
    assert!(err.to_string().contains("intel (oci-archive:"), "{err}");
    assert!(
        err.to_string()
            .contains("built for linux/amd64, wanted linux/arm64"),
        "{err}"
    );
    let docker_tar = dir.path().join("intel-docker.tar");
    skopeo_copy(
        &format!("oci:{}:t", layout.display()),
        &format!("docker-archive:{}", docker_tar.display()),
    );
    let err = store
        .import(&source(SourceKind::DockerArchive, &docker_tar), "intel")
        .unwrap_err();
    assert!(matches!(err, ImportError::Platform { .. }), "{err}");
}

fn example_spec(binary: &Path) -> PackSpec {
    PackSpec {
        entries: vec![
            PackEntry::host_file("/web", binary, 0o755),
            PackEntry::bytes("/etc/web/greeting", "hello\n", 0o644),
            PackEntry::symlink("/bin/web", "../web"),
            PackEntry {
                uid: 1000,
                gid: 1000,
                ..PackEntry::directory("/data", 0o700)
            },
        ],
        config: RuntimeConfig {
            entrypoint: vec!["/web".into()],
            cmd: vec!["--port".into(), "8080".into()],
            env: vec!["GREETING=hello".into()],
            working_dir: Some("/".into()),
            user: Some("1000".into()),
            exposed_ports: vec![ExposedPort {
                port: 8080,
                udp: false,
            }],
        },
        platform: arm64(),
        tag: Some("latest".into()),
    }
}

#[test]
fn the_packer_is_deterministic_and_its_archives_read_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("web-binary");
    fs::write(&binary, vec![0x7f; 300_000]).unwrap();
    let spec = example_spec(&binary);
    let mut first = Vec::new();
    let manifest = oci_archive(&spec, &mut first).unwrap();
    let mut second = Vec::new();
    assert_eq!(oci_archive(&spec, &mut second).unwrap(), manifest);
    assert_eq!(first, second, "same input, same bytes");
    let archive = dir.path().join("web.tar");
    fs::write(&archive, &first).unwrap();

    // skopeo reads it and reports the config we wrote.
    let inspect = run(Command::new("skopeo")
        .arg("inspect")
        .arg("--config")
        .arg(format!("oci-archive:{}", archive.display())));
    let config: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["config"]["Entrypoint"][0], "/web");
    // umoci unpacks it to the same tree we unpack.
    let layout = dir.path().join("layout");
    skopeo_copy(
        &format!("oci-archive:{}", archive.display()),
        &format!("oci:{}:latest", layout.display()),
    );
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle));
    let umoci_root = bundle.join("rootfs");

    let store = Store::open(dir.path().join("store")).unwrap();
    let imported = store
        .import(&source(SourceKind::OciArchive, &archive), "web")
        .unwrap();
    assert_eq!(imported.manifest, manifest);
    let prepared = store.prepare("web").unwrap();
    assert_eq!(prepared.config, spec.config);
    let ours = &prepared.lower_dirs[0];
    for path in ["web", "etc/web/greeting", "bin/web", "data", "etc"] {
        let (a, b) = (
            fs::symlink_metadata(ours.join(path)).unwrap(),
            fs::symlink_metadata(umoci_root.join(path)).unwrap(),
        );
        assert_eq!(
            (a.mode(), a.uid(), a.gid(), a.len()),
            (b.mode(), b.uid(), b.gid(), b.len()),
            "{path}"
        );
    }
    assert_eq!(
        fs::read(ours.join("web")).unwrap(),
        fs::read(&binary).unwrap()
    );
    assert_eq!(
        fs::read_link(ours.join("bin/web")).unwrap(),
        Path::new("../web")
    );
}

#[test]
fn the_packer_refuses_paths_that_leave_the_image() {
    let spec = PackSpec {
        entries: vec![PackEntry::bytes("../x", "x", 0o644)],
        ..example_spec(Path::new("/nonexistent"))
    };
    let err = oci_archive(&spec, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("\"../x\""), "{err}");
    let spec = example_spec(Path::new("/nonexistent/web"));
    let err = oci_archive(&spec, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/web"), "{err}");
}
