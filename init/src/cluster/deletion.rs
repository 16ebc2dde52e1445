//! A deletion through the API, made a record at once.
//!
//! A change on the card becomes a record when a round compares the card with the book of what
//! the board wrote there ([`super::local::changes`]). A deletion cannot wait for that: a service
//! that came from another board runs here before a round writes its file to the card, and a
//! deletion in between removes no file, so the next round would find nothing changed and write
//! the file back (the deletion lost, the service running on). The API's deletion therefore
//! stamps the tombstone itself and saves the records to the data partition before it is
//! acknowledged (a power cut before the next round would otherwise forget it, for the same
//! reason); the round then removes the file, if any.

use super::{local, lock, now_ms, refused, Node, NodeState};

impl Node {
    /// Whether the cluster holds a live spec named `name`.
    pub fn has(&self, name: &str) -> bool {
        lock(&self.inner)
            .desired
            .get(name)
            .is_some_and(|r| r.text.is_some())
    }

    /// Deletes `name` cluster-wide (a tombstone stamped by this board), saves the records when
    /// the board has a data partition, and runs a round soon. Blocks on the write: call it off
    /// the runtime's threads. An error means the deletion is in force but not yet saved (the
    /// next round saves it again).
    pub fn delete(&self, name: &str) -> std::io::Result<()> {
        let _turn = lock(&self.saving);
        let mut inner = lock(&self.inner);
        let stamped = inner.delete(name, &self.settings.board, now_ms(), &self.settings.console);
        let desired = stamped.then(|| inner.desired.clone());
        drop(inner);
        self.poke();
        match (desired, &self.settings.state_dir) {
            (Some(desired), Some(dir)) => local::Files::under(dir).save_records(&desired),
            _ => Ok(()),
        }
    }
}

impl NodeState {
    /// Stamps a tombstone for `name` at `now_ms` and merges it, and says whether it did; nothing
    /// when no live record of that name is held (a file only on the card becomes its record at
    /// the next round, and its removal is seen there).
    pub(super) fn delete(
        &mut self,
        name: &str,
        board: &str,
        now_ms: u64,
        console: &crate::board::console::Console,
    ) -> bool {
        if self.desired.get(name).is_none_or(|r| r.text.is_none()) {
            return false;
        }
        let tombstone = local::stamp(&mut self.clock, now_ms, board, name, None);
        let changes = self.desired.merge([tombstone], &mut self.clock, now_ms);
        refused::report(console, self, "a deletion through the API", &changes);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use baton_cluster::desired::{Record, Version};

    use super::NodeState;
    use crate::board::card::CardStore;
    use crate::board::console::Console;
    use crate::cluster::local::{self, Book};

    const SPEC: &str = "name = \"from-old\"\nimage = \"x:1\"\n";

    /// A record of `from-old` that came from another board, merged but not yet on the card.
    fn synced_not_mirrored() -> NodeState {
        let mut inner = NodeState::default();
        let record = Record {
            name: "from-old".into(),
            text: Some(SPEC.into()),
            version: Version {
                time: 1_000,
                board: "pi-b".into(),
            },
        };
        inner.desired.merge([record], &mut inner.clock, 2_000);
        inner
    }

    /// What the next round does: the card's changes, then the mirror of every stale record.
    fn round(inner: &mut NodeState, card: &CardStore, services: &std::path::Path) {
        let files = local::read_files(services);
        let present: BTreeSet<String> = local::present(&files);
        let valid: BTreeMap<String, String> = BTreeMap::new();
        let records = local::changes(
            &inner.book,
            &valid,
            &present,
            &mut inner.clock,
            3_000,
            "pi-a",
        );
        inner.desired.merge(records, &mut inner.clock, 3_000);
        let names: Vec<String> = inner.desired.records().map(|r| r.name.clone()).collect();
        let mut book: Book = inner.book.clone();
        let problems = local::mirror(card, &mut book, &inner.desired, &names, &files);
        assert!(problems.is_empty(), "{problems:?}");
        inner.book = book;
    }

    #[test]
    fn a_deletion_before_the_file_reached_the_card_holds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let services = dir.path().join("services");
        std::fs::create_dir(&services).expect("services");
        let card = CardStore::open(services.clone(), None).0;
        let console = Console::quiet(16);

        let mut inner = synced_not_mirrored();
        assert!(inner.delete("from-old", "pi-a", 2_500, &console));
        let tombstone = inner.desired.get("from-old").expect("a record");
        assert_eq!(tombstone.text, None);
        assert_eq!(tombstone.version.board, "pi-a");
        round(&mut inner, &card, &services);
        assert!(inner
            .desired
            .get("from-old")
            .is_some_and(|r| r.text.is_none()));
        assert!(!services.join("from-old.toml").exists());

        // Without the stamp, the round finds no change on the card and writes the file back:
        // the deletion the API acknowledged would be lost.
        let mut lost = synced_not_mirrored();
        round(&mut lost, &card, &services);
        assert!(services.join("from-old.toml").exists());
    }

    #[test]
    fn the_saved_records_hold_the_tombstone_alone_after_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = local::Files::under(dir.path());
        let mut inner = synced_not_mirrored();
        files.save_records(&inner.desired).expect("save");
        assert!(inner.delete("from-old", "pi-a", 2_500, &Console::quiet(16)));
        files.save_records(&inner.desired).expect("save");
        // A power cut now: the book on the data partition never heard of the file, and the
        // records loaded at the next boot hold the deletion.
        let loaded = files.load_records();
        let record = loaded.iter().find(|r| r.name == "from-old").expect("kept");
        assert_eq!(
            (record.text.as_deref(), record.version.board.as_str()),
            (None, "pi-a")
        );
        assert!(!dir.path().join("local.json").exists());
    }

    #[test]
    fn deleting_what_the_cluster_does_not_hold_stamps_nothing() {
        let console = Console::quiet(16);
        let mut inner = NodeState::default();
        assert!(!inner.delete("nothing", "pi-a", 2_500, &console));
        assert!(inner.desired.get("nothing").is_none());
        let mut gone = synced_not_mirrored();
        assert!(gone.delete("from-old", "pi-a", 2_500, &console));
        let first = gone.desired.get("from-old").cloned();
        assert!(!gone.delete("from-old", "pi-a", 2_600, &console));
        assert_eq!(gone.desired.get("from-old").cloned(), first);
    }
}
