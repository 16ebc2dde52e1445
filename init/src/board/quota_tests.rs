//! What the host can check: the kernel structures' sizes, and clear refusals on a file system
//! without project quotas. Limits being enforced is checked on the board (`tests/tests/hostile.rs`),
//! whose kernel has the quota format this host's lacks.

use super::*;

#[test]
fn structures_match_the_kernel_headers() {
    // sizeof(struct fsxattr) is 28 and sizeof(struct fs_quota_statv) is 160 on every Linux ABI.
    assert_eq!(std::mem::size_of::<FsXattr>(), 28);
    assert_eq!(std::mem::size_of::<QuotaStatV>(), 160);
    // The ioctls encode that size: _IOR('X', 31, struct fsxattr) and _IOW('X', 32, ...).
    assert_eq!(nix::request_code_read!(b'X', 31, 28), 0x801c_581f);
    assert_eq!(nix::request_code_write!(b'X', 32, 28), 0x401c_5820);
    assert_eq!(Q_XGETQSTATV, 0x5808);
}

#[test]
fn a_file_system_without_project_quotas_is_named_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = probe(dir.path()).expect_err("no project quotas here");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{} does not enforce project quotas: ",
            dir.path().display()
        )),
        "{text}"
    );
    let missing = dir.path().join("missing");
    let err = probe(&missing).expect_err("no such directory");
    assert!(err.to_string().contains("No such file"), "{err}");
}

#[test]
fn limits_on_a_file_system_without_quotas_fail_with_the_project_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = set_limit(dir.path(), 7, 1 << 20).expect_err("no quotas here");
    assert!(
        err.to_string().starts_with(&format!(
            "disk project 7 on {}: setting the limit: ",
            dir.path().display()
        )),
        "{err}"
    );
    assert!(usage(dir.path(), 7).is_err());
}

#[test]
fn marking_skips_links_and_refuses_trees_too_deep() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A link out of the tree is never followed, whatever the file system.
    std::os::unix::fs::symlink("/etc", dir.path().join("out")).expect("symlink");
    let outcome = set_project_tree(&dir.path().join("out"), 3);
    assert_eq!(outcome.expect("a link is left alone"), 0);
    let mut deep = dir.path().to_path_buf();
    for _ in 0..=MAX_DEPTH + 1 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).expect("deep tree");
    // Either the host's file system refuses the mark, or the walk stops at the depth bound:
    // both are errors naming the path, never a stack overflow.
    let err = set_project_tree(dir.path(), 3).expect_err("refused");
    assert!(err.to_string().contains("to disk project 3"), "{err}");
}
