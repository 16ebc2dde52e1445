//! Images from the real builder: accepted by the standard tools, reproducible, and bad input
//! refused without leaving anything behind.

use std::path::Path;
use std::process::Command;

use baton::disk::mbr::Mbr;
use baton_tests::{build_image, build_options, CLUSTER_TOML};

fn tool(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{text}",
        out.status
    );
    text
}

/// Copies partition `n` (1-based) of `image` into its own file.
fn extract_partition(image: &Path, n: usize, to: &Path) {
    let mut file = std::fs::File::open(image).expect("opening the image");
    let mbr = Mbr::read_from(&mut file).expect("reading the MBR");
    let p = mbr.partitions[n - 1].expect("partition entry");
    let bytes = std::fs::read(image).expect("reading the image");
    let start = p.offset() as usize;
    std::fs::write(to, &bytes[start..start + p.size() as usize]).expect("writing the partition");
}

#[test]
fn virt_image_passes_the_standard_tools_and_is_reproducible() {
    let first = build_image("qemu-virt", &[("cluster.toml", CLUSTER_TOML)]);
    let tools = tempfile::tempdir().unwrap();
    tool(Command::new("sfdisk").arg("--verify").arg(&first.path));
    for (n, label) in [(1, "boot"), (3, "config")] {
        let part = tools.path().join(label);
        extract_partition(&first.path, n, &part);
        tool(Command::new("fsck.fat").arg("-n").arg(&part));
    }
    let data = tools.path().join("data");
    extract_partition(&first.path, 4, &data);
    tool(Command::new("e2fsck").arg("-fn").arg(&data));
    let listing = tool(
        Command::new("mdir")
            .arg("-i")
            .arg(tools.path().join("config"))
            .arg("-b")
            .arg("::"),
    );
    assert!(listing.contains("cluster.toml"), "{listing}");

    // A second build from the same inputs (same lock file) gives the same bytes.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = build_options(dir.path(), "qemu-virt", &[("cluster.toml", CLUSTER_TOML)]);
    std::fs::copy(first.dir.path().join("baton.lock"), &opts.lock).unwrap();
    opts.offline = true;
    baton::build::build(&opts).unwrap();
    let a = std::fs::read(&first.path).unwrap();
    let b = std::fs::read(&opts.output).unwrap();
    assert_eq!(a.len(), b.len());
    assert!(a == b, "two builds from the same inputs differ");
}

#[test]
fn bad_input_is_refused_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let base = build_options(dir.path(), "qemu-virt", &[("cluster.toml", CLUSTER_TOML)]);
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let before = listing();

    let mut unknown_board = base.clone();
    unknown_board.board = "pi9".into();
    let err = baton::build::build(&unknown_board).unwrap_err().to_string();
    assert!(
        err.contains("pi9") && err.contains("qemu-virt"),
        "names the board and the known ones: {err}"
    );

    let mut missing_config = base.clone();
    missing_config.config_dir = dir.path().join("no-such-dir");
    let err = baton::build::build(&missing_config)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such-dir"), "{err}");

    let bad = dir.path().join("bad-config");
    std::fs::create_dir_all(bad.join("services")).unwrap();
    std::fs::write(bad.join("services/web.toml"), "name = \"web\"\nimage = \n").unwrap();
    let mut bad_config = base.clone();
    bad_config.config_dir = bad.clone();
    let err = baton::build::build(&bad_config).unwrap_err().to_string();
    assert!(
        err.contains("services/web.toml:2"),
        "names the file and line: {err}"
    );

    let mut offline = base.clone();
    offline.offline = true;
    offline.cache_dir = dir.path().join("empty-cache");
    let err = baton::build::build(&offline).unwrap_err().to_string();
    assert!(
        err.contains("linux-image"),
        "names the missing package: {err}"
    );

    let mut to_dir = base.clone();
    to_dir.output = dir.path().to_path_buf();
    let err = baton::build::build(&to_dir).unwrap_err().to_string();
    assert!(err.contains("is a directory"), "{err}");

    let mut after = listing();
    after.retain(|n| n != "bad-config" && n != "empty-cache");
    assert_eq!(after, before, "a failed build leaves nothing behind");
    assert!(!base.output.exists());
}
