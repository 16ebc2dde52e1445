//! When images leave the store: a ref goes once no service names its image any more (the service
//! was removed, or its spec moved to another image and the rollout finished), then every blob and
//! unpacked layer that no remaining ref reaches. Refs that no service ever named, such as images
//! baked into the card by `baton image build --image`, stay until a service has used and released
//! them.

use std::collections::BTreeSet;

use baton_oci::{GcReport, Store};

/// The refs to keep: every ref in the store except the released ones that no current spec uses.
pub fn keep(
    stored: impl IntoIterator<Item = String>,
    released: &BTreeSet<String>,
    in_use: &BTreeSet<String>,
) -> Vec<String> {
    stored
        .into_iter()
        .filter(|name| !released.contains(name) || in_use.contains(name))
        .collect()
}

/// Drops the released refs that `in_use` does not name, and whatever that leaves unreachable.
pub fn collect(
    store: &Store,
    released: &BTreeSet<String>,
    in_use: &BTreeSet<String>,
) -> Result<GcReport, String> {
    let stored = store
        .refs()
        .map_err(|e| format!("listing the image store: {e}"))?;
    let keep = keep(stored.into_iter().map(|(name, _)| name), released, in_use);
    let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
    store
        .gc(&keep)
        .map_err(|e| format!("collecting unused images: {e}"))
}

/// One line for the console about what a collection freed, or `None` when it freed nothing.
pub fn summary(report: &GcReport) -> Option<String> {
    if report.removed_refs.is_empty() && report.removed_blobs.is_empty() {
        return None;
    }
    Some(format!(
        "images: removed {} unused ({}), {} blobs and {} unpacked layers, {:.1} MiB freed",
        report.removed_refs.len(),
        if report.removed_refs.is_empty() {
            "none named".to_string()
        } else {
            report.removed_refs.join(", ")
        },
        report.removed_blobs.len(),
        report.removed_layers.len(),
        report.freed_bytes as f64 / (1024.0 * 1024.0)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_released_refs_that_nothing_uses_go() {
        let stored = ["a", "b", "baked", "c"].map(String::from);
        let kept = keep(stored, &set(&["a", "b"]), &set(&["b", "c"]));
        assert_eq!(kept, ["b", "baked", "c"]);
    }

    /// Packs a one-file linux/arm64 image into `dir` and imports it as `name`.
    fn add_image(store: &Store, dir: &std::path::Path, name: &str) {
        let spec = baton_oci::pack::PackSpec {
            entries: vec![baton_oci::pack::PackEntry::bytes(
                "/app",
                name.as_bytes().to_vec(),
                0o755,
            )],
            config: Default::default(),
            platform: baton_oci::Platform::linux_arm64(),
            tag: None,
        };
        let path = dir.join(format!("{name}.tar"));
        let file = std::fs::File::create(&path).expect("archive");
        baton_oci::pack::oci_archive(&spec, file).expect("pack");
        let source =
            baton_oci::Source::parse(&format!("oci-archive:{name}.tar"), dir).expect("source");
        store.import(&source, name).expect("import");
    }

    #[test]
    fn a_collection_drops_the_released_image_and_keeps_the_others() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("images")).expect("store");
        for name in ["old", "current", "baked"] {
            add_image(&store, dir.path(), name);
        }
        let report = collect(&store, &set(&["old"]), &set(&["current"])).expect("gc");
        assert_eq!(report.removed_refs, ["old"]);
        // The old image's manifest, config and layer.
        assert_eq!(report.removed_blobs.len(), 3, "{report:?}");
        let left: Vec<String> = store
            .refs()
            .expect("refs")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(left, ["baked", "current"]);
        assert!(summary(&report).is_some_and(|s| s.contains("old")));

        // Nothing released: a collection keeps every image.
        let again = collect(&store, &BTreeSet::new(), &BTreeSet::new()).expect("gc");
        assert_eq!(summary(&again), None);
        assert_eq!(store.refs().expect("refs").len(), 2);
    }
}
