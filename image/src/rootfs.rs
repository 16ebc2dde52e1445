//! The static files of the board's root file system (`rootfs/` in the repository), compiled
//! into the `baton` binary so an installed builder needs no repository checkout.

/// `(path relative to /, mode, contents)` of every file in `rootfs/`.
pub const FILES: &[(&str, u32, &[u8])] = &[
    ("etc/group", 0o644, include_bytes!("../../rootfs/etc/group")),
    ("etc/hosts", 0o644, include_bytes!("../../rootfs/etc/hosts")),
    (
        "etc/nsswitch.conf",
        0o644,
        include_bytes!("../../rootfs/etc/nsswitch.conf"),
    ),
    (
        "etc/os-release",
        0o644,
        include_bytes!("../../rootfs/etc/os-release"),
    ),
    (
        "etc/passwd",
        0o644,
        include_bytes!("../../rootfs/etc/passwd"),
    ),
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_string(),
                );
            }
        }
    }

    /// Guards against a file added to rootfs/ but not to the list (or the other way round).
    #[test]
    fn list_matches_the_rootfs_directory() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rootfs");
        let mut on_disk = Vec::new();
        walk(&root, &root, &mut on_disk);
        on_disk.sort();
        let listed: Vec<String> = super::FILES.iter().map(|(p, _, _)| p.to_string()).collect();
        assert_eq!(listed, on_disk);
    }
}
