use super::*;

const V1: &str = "name = \"web\"\nimage = \"images/web.tar\"\nenv = { V = \"1\" }\n";
const V2: &str = "name = \"web\"\nimage = \"images/web.tar\"\nenv = { V = \"2\" }\n";

struct Board {
    _tmp: tempfile::TempDir,
    card: PathBuf,
    data: PathBuf,
}

impl Board {
    fn new() -> Board {
        let tmp = tempfile::tempdir().expect("temp dir");
        let card = tmp.path().join("config/services");
        let data = tmp.path().join("data/baton/card");
        std::fs::create_dir_all(&card).expect("card dir");
        Board {
            _tmp: tmp,
            card,
            data,
        }
    }

    /// The store as a boot opens it.
    fn store(&self) -> CardStore {
        let (store, problem) = CardStore::open(self.card.clone(), Some(self.data.clone()));
        assert_eq!(problem, None);
        store
    }

    fn card(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.card.join(format!("{name}.toml"))).ok()
    }

    fn manifest(&self) -> Manifest {
        load_manifest(&self.data.join("manifest.json")).0
    }

    /// Leaves the state a power cut leaves after the intent and the truth of `text` were
    /// written and the card then held `card` (`None`: no file).
    fn cut_after_truth(&self, name: &str, text: Option<&str>, card: Option<&[u8]>) {
        let mut m = self.manifest();
        m.pending
            .insert(name.into(), text.map(|t| decide::hash(t.as_bytes())));
        save_manifest(&self.data.join("manifest.json"), &m).expect("manifest");
        write_truth(&self.data.join(format!("specs/{name}.toml")), text).expect("truth");
        let path = self.card.join(format!("{name}.toml"));
        match card {
            Some(bytes) => std::fs::write(path, bytes).expect("card"),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

fn loaded(r: &Reconciled, file: &str) -> Option<String> {
    r.files
        .iter()
        .find(|(f, _)| f == file)
        .map(|(_, t)| t.clone())
}

#[test]
fn a_write_reaches_the_data_partition_and_the_card_and_clears_its_intent() {
    let b = Board::new();
    let store = b.store();
    store.write("web", Some(V1)).expect("write");
    assert_eq!(b.card("web").as_deref(), Some(V1));
    assert_eq!(store.truth("web").as_deref(), Some(V1));
    let m = b.manifest();
    assert_eq!(m.written["web"], decide::hash(V1.as_bytes()));
    assert!(m.pending.is_empty());
    store.write("web", None).expect("remove");
    assert_eq!(b.card("web"), None);
    assert_eq!(store.truth("web"), None);
    assert_eq!(b.manifest(), Manifest::default());
}

#[test]
fn nothing_reaches_the_card_before_the_data_partition_holds_the_spec() {
    let b = Board::new();
    // The data partition refuses writes (its directory is a file).
    std::fs::create_dir_all(b.data.parent().unwrap()).unwrap();
    std::fs::write(&b.data, "not a directory").unwrap();
    let (store, _) = CardStore::open(b.card.clone(), Some(b.data.clone()));
    let err = store.write("web", Some(V1)).expect_err("must fail");
    assert!(matches!(err, WriteError::Data { .. }), "{err}");
    assert_eq!(b.card("web"), None, "the card was written first");
}

#[test]
fn a_card_that_refuses_the_write_leaves_the_spec_and_its_intent_on_the_data_partition() {
    let b = Board::new();
    std::fs::remove_dir_all(&b.card).unwrap();
    std::fs::write(&b.card, "not a directory").unwrap();
    let store = b.store();
    let err = store.write("web", Some(V1)).expect_err("must fail");
    assert!(matches!(err, WriteError::Card { .. }), "{err}");
    assert_eq!(store.truth("web").as_deref(), Some(V1));
    assert!(b.manifest().pending.contains_key("web"));
}

#[test]
fn a_torn_write_that_still_parses_is_rewritten_and_reported() {
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    let torn = &V2[..V2.find("env").unwrap()];
    b.cut_after_truth("web", Some(V2), Some(torn.as_bytes()));
    let r = b.store().reconcile();
    assert_eq!(b.card("web").as_deref(), Some(V2));
    assert_eq!(loaded(&r, "web.toml").as_deref(), Some(V2));
    assert_eq!(r.repairs.len(), 1, "{r:?}");
    assert_eq!(r.repairs[0].file, "services/web.toml");
    assert!(r.repairs[0].reason.contains("interrupted"), "{r:?}");
    let m = b.manifest();
    assert!(m.pending.is_empty());
    assert_eq!(m.written["web"], decide::hash(V2.as_bytes()));
    // A second boot finds nothing to do.
    assert!(b.store().reconcile().repairs.is_empty());
}

#[test]
fn a_truncated_file_without_an_intent_is_rewritten() {
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    std::fs::write(b.card.join("web.toml"), &V1[..V1.len() - 5]).unwrap();
    let r = b.store().reconcile();
    assert_eq!(b.card("web").as_deref(), Some(V1));
    assert_eq!(r.repairs.len(), 1, "{r:?}");
    assert!(r.repairs[0].reason.contains("TOML"), "{r:?}");
}

#[test]
fn a_laptop_edit_is_taken_as_the_truth() {
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    std::fs::write(b.card.join("web.toml"), V2).unwrap();
    let store = b.store();
    let r = store.reconcile();
    assert!(r.repairs.is_empty(), "{r:?}");
    assert_eq!(b.card("web").as_deref(), Some(V2));
    assert_eq!(store.truth("web").as_deref(), Some(V2));
    assert_eq!(b.manifest().written["web"], decide::hash(V2.as_bytes()));
    // A file the board never wrote (a freshly flashed card) is kept too.
    std::fs::write(b.card.join("db.toml"), "name = \"db\"\n").unwrap();
    let r = b.store().reconcile();
    assert!(r.repairs.is_empty(), "{r:?}");
    assert_eq!(b.store().truth("db").as_deref(), Some("name = \"db\"\n"));
}

#[test]
fn a_deletion_on_a_laptop_is_honoured() {
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    std::fs::remove_file(b.card.join("web.toml")).unwrap();
    let store = b.store();
    let r = store.reconcile();
    assert!(r.repairs.is_empty(), "{r:?}");
    assert_eq!(loaded(&r, "web.toml"), None);
    assert_eq!(store.truth("web"), None);
    assert_eq!(b.manifest(), Manifest::default());
}

#[test]
fn a_file_lost_by_an_interrupted_write_is_restored_and_its_leftover_removed() {
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    b.cut_after_truth("web", Some(V2), None);
    std::fs::write(b.card.join("web.toml.tmp"), V2).unwrap();
    let r = b.store().reconcile();
    assert_eq!(b.card("web").as_deref(), Some(V2));
    assert_eq!(r.repairs.len(), 1, "{r:?}");
    assert!(!b.card.join("web.toml.tmp").exists());
}

#[test]
fn an_interrupted_removal_is_finished() {
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    b.cut_after_truth("web", None, Some(V1.as_bytes()));
    let r = b.store().reconcile();
    assert_eq!(b.card("web"), None);
    assert_eq!(loaded(&r, "web.toml"), None);
    assert_eq!(r.repairs.len(), 1, "{r:?}");
}

#[test]
fn a_services_folder_that_cannot_be_read_is_made_anew_from_the_data_partition() {
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    std::fs::remove_dir_all(&b.card).unwrap();
    std::fs::write(&b.card, "a broken directory").unwrap();
    let r = b.store().reconcile();
    assert_eq!(b.card("web").as_deref(), Some(V1));
    assert_eq!(loaded(&r, "web.toml").as_deref(), Some(V1));
    assert_eq!(r.repairs.len(), 1, "{r:?}");
    assert!(b.card.with_extension("damaged").exists());
}

#[test]
fn mirroring_an_unchanged_spec_writes_nothing() {
    let b = Board::new();
    let store = b.store();
    assert!(store.mirror("web", Some(V1), None).expect("mirror"));
    // Make a rewrite visible: the manifest file would be replaced (a new inode).
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let ino = inode(&b.data.join("manifest.json"));
    assert!(store.mirror("web", Some(V1), Some(V1)).expect("mirror"));
    assert_eq!(inode(&b.data.join("manifest.json")), ino);
    assert!(store.mirror("web", Some(V2), Some(V1)).expect("mirror"));
    assert_eq!(b.card("web").as_deref(), Some(V2));
}

#[test]
fn the_mirror_does_not_overwrite_a_file_changed_since_it_was_read() {
    let b = Board::new();
    let store = b.store();
    store.write("web", Some(V1)).expect("write");
    // The scan read V1; an API apply wrote V2 before the mirror ran.
    store.write("web", Some(V2)).expect("apply");
    assert!(!store.mirror("web", Some(V1), Some(V1)).expect("mirror"));
    assert_eq!(b.card("web").as_deref(), Some(V2));
    assert_eq!(store.truth("web").as_deref(), Some(V2));
}

#[test]
fn without_a_data_partition_the_card_is_written_and_read_as_it_is() {
    let b = Board::new();
    let (store, _) = CardStore::open(b.card.clone(), None);
    store.write("web", Some(V1)).expect("write");
    std::fs::write(b.card.join("db.toml"), "\0\0").unwrap();
    let r = store.reconcile();
    assert!(r.repairs.is_empty());
    assert_eq!(loaded(&r, "web.toml").as_deref(), Some(V1));
    assert_eq!(loaded(&r, "db.toml").as_deref(), Some("\0\0"));
    assert!(!b.data.exists());
}

#[test]
fn a_repair_the_card_refuses_is_reported_as_such_and_the_data_partition_s_copy_is_loaded() {
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    // A file the card cannot read nor replace (here a directory in its place).
    std::fs::remove_file(b.card.join("web.toml")).unwrap();
    std::fs::create_dir(b.card.join("web.toml")).unwrap();
    std::fs::write(b.card.join("web.toml/x"), "x").unwrap();
    let r = b.store().reconcile();
    assert_eq!(loaded(&r, "web.toml").as_deref(), Some(V1));
    assert_eq!(r.repairs.len(), 1, "{r:?}");
    assert!(
        r.repairs[0].reason.contains("the card cannot be written"),
        "{r:?}"
    );
    assert!(r.notes.iter().any(|n| n.contains("not rewritten")), "{r:?}");
}

#[test]
fn a_write_only_the_card_refused_is_run_from_the_data_partition_and_the_mirror_keeps_it() {
    let b = Board::new();
    let store = b.store();
    store.write("web", Some(V1)).expect("write");
    // The card refuses writes from here on (as a FAT the kernel set read-only would): a
    // directory where the write's temporary file goes.
    std::fs::create_dir(b.card.join("web.toml.tmp")).unwrap();
    let err = store.write("web", Some(V2)).expect_err("the card refused");
    assert!(matches!(err, WriteError::Card { .. }), "{err}");
    assert_eq!(
        b.card("web").as_deref(),
        Some(V1),
        "the card keeps the old text"
    );
    let web = |files: Vec<(String, String)>| {
        files
            .into_iter()
            .find(|(f, _)| f == "web.toml")
            .map(|(_, t)| t)
    };
    assert_eq!(
        web(store.files()).as_deref(),
        Some(V2),
        "runs what was kept"
    );
    // The cluster's mirror of the same text sees no change of the card since the scan (it
    // compares with what the scan read), and tries the card again.
    let err = store
        .mirror("web", Some(V2), Some(V2))
        .expect_err("still refused");
    assert!(matches!(err, WriteError::Card { .. }), "{err}");
    // The next boot, with a writable card, writes it.
    std::fs::remove_dir(b.card.join("web.toml.tmp")).unwrap();
    let r = b.store().reconcile();
    assert_eq!(loaded(&r, "web.toml").as_deref(), Some(V2));
    assert_eq!(b.card("web").as_deref(), Some(V2));
    assert!(b.manifest().pending.is_empty(), "{:?}", b.manifest());
}

#[test]
fn a_removal_kept_only_on_the_data_partition_hides_the_card_file_and_a_failed_one_does_not() {
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    // Removed on the data partition, the card's removal refused.
    b.cut_after_truth("web", None, Some(V1.as_bytes()));
    assert!(b.store().files().iter().all(|(f, _)| f != "web.toml"));
    // An intent whose text never reached the data partition changes nothing.
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    let mut m = b.manifest();
    m.pending
        .insert("web".into(), Some(decide::hash(V2.as_bytes())));
    save_manifest(&b.data.join("manifest.json"), &m).expect("manifest");
    let files = b.store().files();
    assert_eq!(files, vec![("web.toml".to_string(), V1.to_string())]);
}

#[test]
fn a_card_that_cannot_be_written_is_repaired_at_each_boot_until_a_laptop_edits_it() {
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    // The card refuses writes from here on (a directory stands where the temporary file goes),
    // as a FAT the kernel set read-only does.
    std::fs::create_dir(b.card.join("web.toml.tmp")).unwrap();
    let err = b.store().write("web", Some(V2)).expect_err("must fail");
    assert!(matches!(err, WriteError::Card { .. }), "{err}");
    assert_eq!(b.manifest().seen["web"], decide::hash(V1.as_bytes()));
    // Boots while the card is as the failure left it: the data partition's copy is used.
    for _ in 0..2 {
        let r = b.store().reconcile();
        assert_eq!(loaded(&r, "web.toml").as_deref(), Some(V2), "{r:?}");
        assert_eq!(r.repairs.len(), 1, "{r:?}");
        assert!(r.repairs[0].reason.contains("cannot be written"), "{r:?}");
        assert_eq!(b.card("web").as_deref(), Some(V1));
    }
    // A laptop repairs the card and edits the file: the edit is taken, not overwritten.
    std::fs::remove_dir(b.card.join("web.toml.tmp")).unwrap();
    let v3 = V2.replace("\"2\"", "\"3\"");
    std::fs::write(b.card.join("web.toml"), &v3).unwrap();
    let r = b.store().reconcile();
    assert!(r.repairs.is_empty(), "{r:?}");
    assert_eq!(loaded(&r, "web.toml").as_deref(), Some(v3.as_str()));
    assert_eq!(b.store().truth("web").as_deref(), Some(v3.as_str()));
    let m = b.manifest();
    assert!(m.pending.is_empty() && m.seen.is_empty(), "{m:?}");
    assert_eq!(m.written["web"], decide::hash(v3.as_bytes()));
}

#[test]
fn a_damaged_file_the_card_refuses_to_take_back_is_served_from_the_data_partition() {
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    std::fs::write(b.card.join("web.toml"), "\0\0\0\0").unwrap();
    std::fs::create_dir(b.card.join("web.toml.tmp")).unwrap();
    let r = b.store().reconcile();
    assert_eq!(loaded(&r, "web.toml").as_deref(), Some(V1), "{r:?}");
    // While it runs, the board's files show the data partition's copy, not the damaged one.
    let store = b.store();
    let files = store.files();
    let web = files.iter().find(|(f, _)| f == "web.toml").map(|(_, t)| t);
    assert_eq!(web.map(String::as_str), Some(V1));
}

#[test]
fn a_write_after_a_failed_one_that_is_cut_short_is_still_repaired() {
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    std::fs::create_dir(b.card.join("web.toml.tmp")).unwrap();
    b.store()
        .write("web", Some(V2))
        .expect_err("the card refuses");
    std::fs::remove_dir(b.card.join("web.toml.tmp")).unwrap();
    // A later write begins (intent and truth kept) and power goes during the card write,
    // leaving a torn file that still parses.
    let v3 = V2.replace("\"2\"", "\"3\"");
    let store = b.store();
    let mut m = b.manifest();
    store
        .begin(&b.data, &mut m, "web", Some(&v3))
        .expect("intent and truth");
    let torn = &v3[..v3.find("env").unwrap()];
    std::fs::write(b.card.join("web.toml"), torn).unwrap();
    let r = b.store().reconcile();
    assert_eq!(
        loaded(&r, "web.toml").as_deref(),
        Some(v3.as_str()),
        "{r:?}"
    );
    assert_eq!(b.card("web").as_deref(), Some(v3.as_str()));
}

#[test]
fn a_card_whose_repair_only_reached_the_page_cache_is_repaired_again_not_taken_for_an_edit() {
    let b = Board::new();
    b.store().write("web", Some(V1)).expect("write");
    // A cut while V2 was written leaves a torn file that still parses.
    let torn = &V2[..V2.find("env").expect("env")];
    b.cut_after_truth("web", Some(V2), Some(torn.as_bytes()));
    // The next boot reads the torn file and repairs it; then the card refuses writes (a FAT
    // the kernel set read-only during that repair), and an apply of V3 is kept on /data only.
    let booted = b.store();
    let r = booted.reconcile();
    assert_eq!(r.repairs.len(), 1, "{r:?}");
    std::fs::create_dir(b.card.join("web.toml.tmp")).expect("block writes");
    let v3 = V2.replace("\"2\"", "\"3\"");
    let err = booted.write("web", Some(&v3)).expect_err("must fail");
    assert!(matches!(err, WriteError::Card { .. }), "{err}");
    // The repair never left the page cache: after the power cut the card holds the torn file.
    std::fs::remove_dir(b.card.join("web.toml.tmp")).expect("unblock");
    std::fs::write(b.card.join("web.toml"), torn).expect("what the card held");
    let r = b.store().reconcile();
    assert_eq!(
        r.repairs.len(),
        1,
        "the torn file was taken for an edit: {r:?}"
    );
    assert_eq!(loaded(&r, "web.toml").as_deref(), Some(v3.as_str()));
    assert_eq!(b.card("web").as_deref(), Some(v3.as_str()));
    assert_eq!(b.store().truth("web").as_deref(), Some(v3.as_str()));
}
