//! `--image` parsing, archive names, staging into a store, and refusals that name the archive.

use std::fs;
use std::path::Path;

use baton_oci::pack::{self, PackEntry, PackSpec};
use baton_oci::{Platform, RuntimeConfig};

use super::*;

/// Writes a one-file OCI archive for `platform`, tagged `tag`.
fn oci_archive(path: &Path, platform: Platform, tag: Option<&str>) {
    let spec = PackSpec {
        entries: vec![PackEntry::bytes(
            "/hello",
            b"\x7fELF pretend".to_vec(),
            0o755,
        )],
        config: RuntimeConfig {
            entrypoint: vec!["/hello".to_string()],
            ..RuntimeConfig::default()
        },
        platform,
        tag: tag.map(str::to_string),
    };
    let file = fs::File::create(path).unwrap();
    pack::oci_archive(&spec, &file).unwrap();
}

fn amd64() -> Platform {
    Platform {
        architecture: "amd64".to_string(),
        os: "linux".to_string(),
        variant: None,
    }
}

#[test]
fn parses_ref_and_archive() {
    let arg = ImageArg::parse("registry.lan/web:2=/tmp/web.tar").unwrap();
    assert_eq!(arg.archive, Path::new("/tmp/web.tar"));
    assert_eq!(arg.reference.unwrap().to_string(), "registry.lan/web:2");
    let arg = ImageArg::parse("hello=a=b.tar").unwrap();
    assert_eq!(arg.archive, Path::new("a=b.tar"));
    assert_eq!(
        arg.reference.unwrap().to_string(),
        "docker.io/library/hello:latest"
    );
    let arg = ImageArg::parse("images/web.tar").unwrap();
    assert_eq!(arg.reference, None);
    assert_eq!(arg.archive, Path::new("images/web.tar"));
}

#[test]
fn refuses_bad_arguments() {
    for (text, needle) in [
        ("", "REF=ARCHIVE"),
        ("web=", "no archive"),
        ("Web Server=x.tar", "not a registry reference"),
        (
            "oci-archive:images/x.tar=x.tar",
            "registry reference such as",
        ),
        ("web@sha256:12=x.tar", "not a registry reference"),
    ] {
        let e = ImageArg::parse(text).unwrap_err().to_string();
        assert!(e.contains(needle) && e.contains("--image"), "{text}: {e}");
    }
}

#[test]
fn sizes_the_data_partition() {
    assert_eq!(data_partition_size(128 << 20, 0), 128 << 20);
    assert_eq!(data_partition_size(128 << 20, 10 << 20), 128 << 20);
    let big = data_partition_size(128 << 20, 400 << 20);
    assert!(big >= (400 << 20) + (100 << 20) + (64 << 20), "{big}");
    assert_eq!(big % (4 << 20), 0);
}

#[test]
fn stages_named_and_referenced_images() {
    let dir = tempfile::tempdir().unwrap();
    let hello = dir.path().join("hello.tar");
    oci_archive(&hello, Platform::linux_arm64(), Some("hello:latest"));
    let web = dir.path().join("web.tar");
    oci_archive(&web, Platform::linux_arm64(), Some("latest"));
    let args = [
        ImageArg::parse(hello.to_str().unwrap()).unwrap(),
        ImageArg::parse(&format!("registry.lan:5000/web:2={}", web.display())).unwrap(),
    ];
    let staged = stage(&args).unwrap().unwrap();
    let refs: Vec<&str> = staged.images.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(
        refs,
        ["docker.io/library/hello:latest", "registry.lan:5000/web:2"]
    );
    let store = Store::open(staged.tree().join(STORE_DIR)).unwrap();
    for image in &staged.images {
        assert_eq!(
            store.get_ref(&image.reference).unwrap().to_string(),
            image.digest
        );
        assert!(image.size > 0);
    }
    // The two archives hold the same image, so the store holds its blobs once.
    assert_eq!(staged.images[0].digest, staged.images[1].digest);
    assert!(staged.bytes >= staged.images[0].size);
    assert!(staged.bytes < 2 * staged.images[0].size);
    // Nothing unpacked on the host; modes do not depend on the umask.
    assert_eq!(
        fs::read_dir(store.root().join("layers")).unwrap().count(),
        0
    );
    let refs_dir = staged.tree().join("images/refs");
    let mode = fs::metadata(&refs_dir).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755);

    assert!(stage(&[]).unwrap().is_none());
}

#[test]
fn a_pinned_digest_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.tar");
    oci_archive(&web, Platform::linux_arm64(), None);
    let pin = format!("registry.lan/web@sha256:{}", "0".repeat(64));
    let e = stage(&[ImageArg::parse(&format!("{pin}={}", web.display())).unwrap()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("web.tar") && e.contains("pins"), "{e}");
}

#[test]
fn refuses_with_the_archive_named() {
    let dir = tempfile::tempdir().unwrap();
    let x86 = dir.path().join("x86.tar");
    oci_archive(&x86, amd64(), Some("x86:1"));
    let junk = dir.path().join("junk.tar");
    fs::write(&junk, vec![0x42; 3000]).unwrap();
    let bare = dir.path().join("bare.tar");
    oci_archive(&bare, Platform::linux_arm64(), Some("latest"));
    let ok = dir.path().join("ok.tar");
    oci_archive(&ok, Platform::linux_arm64(), Some("ok:1"));
    for (arg, needle) in [
        (x86.display().to_string(), "amd64"),
        (format!("web={}", junk.display()), "junk.tar"),
        (
            dir.path().join("missing.tar").display().to_string(),
            "missing.tar",
        ),
        (bare.display().to_string(), "REF="),
        (format!("ok:1={}", x86.display()), "x86.tar"),
    ] {
        let e = stage(&[ImageArg::parse(&arg).unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{arg}: {e}");
    }
    let twice = [
        ImageArg::parse(ok.to_str().unwrap()).unwrap(),
        ImageArg::parse(&format!("ok:1={}", bare.display())).unwrap(),
    ];
    let e = stage(&twice).unwrap_err().to_string();
    assert!(
        e.contains("twice") && e.contains("docker.io/library/ok:1"),
        "{e}"
    );
}

#[test]
fn reads_docker_repo_tags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.tar");
    let mut builder = tar::Builder::new(fs::File::create(&path).unwrap());
    let json = br#"[{"Config":"c.json","RepoTags":["registry.lan/app:3"],"Layers":[]}]"#;
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "manifest.json", &json[..])
        .unwrap();
    builder.finish().unwrap();
    drop(builder);
    let contents = TarContents::read(&path).unwrap();
    assert_eq!(contents.kind(&path).unwrap(), SourceKind::DockerArchive);
    let r = contents
        .reference(&path, SourceKind::DockerArchive)
        .unwrap();
    assert_eq!(r.to_string(), "registry.lan/app:3");
}
