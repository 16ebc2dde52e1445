//! The board's own copy of the cluster's specs: the `services/` directory of its config
//! partition, and a book on the data partition of which version each file holds.
//!
//! The config partition is what a user edits with a laptop; it always mirrors the specs in force
//! cluster-wide. A file whose text differs from what the book says it held is a change made on
//! this card (or over this board's API) and becomes a new record, stamped by the cluster clock; a
//! file that the book knows but that is gone is a deletion. Files that do not validate make no
//! record: the version in force keeps running, and the error is reported as before.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use baton_cluster::desired::{Clock, Desired, Record, Version};

use crate::board::card::{CardStore, WriteError};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// What the book remembers of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// SHA-256 of the text the file held (of "" once deleted).
    pub hash: String,
    /// The version of that text.
    pub version: Version,
    /// The spec was deleted (the file removed).
    pub deleted: bool,
}

/// The book: service name → what its file held last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Book {
    /// Entries by service name.
    pub entries: BTreeMap<String, Entry>,
}

/// SHA-256 of `text`, hex.
pub fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub use crate::board::card::read_files;

/// Service names that have a file (`web.toml` → `web`), valid or not.
pub fn present(files: &[(String, String)]) -> BTreeSet<String> {
    files
        .iter()
        .filter(|(f, _)| !f.starts_with('.'))
        .filter_map(|(f, _)| f.strip_suffix(".toml"))
        .map(str::to_string)
        .collect()
}

/// New records for what changed on the card since the book was written: `valid` are the specs
/// that validate (name → text), `present` the names that have a file at all.
pub fn changes(
    book: &Book,
    valid: &BTreeMap<String, String>,
    present: &BTreeSet<String>,
    clock: &mut Clock,
    wall_ms: u64,
    board: &str,
) -> Vec<Record> {
    let mut records = Vec::new();
    let mut stamp = |name: &str, text: Option<String>| stamp(clock, wall_ms, board, name, text);
    for (name, text) in valid {
        let same = book
            .entries
            .get(name)
            .is_some_and(|e| !e.deleted && e.hash == hash(text));
        if !same {
            records.push(stamp(name, Some(text.clone())));
        }
    }
    for (name, entry) in &book.entries {
        if !entry.deleted && !present.contains(name) {
            records.push(stamp(name, None));
        }
    }
    records
}

/// A record of `name` (`text`, or `None` for a tombstone) stamped by `board` at the clock's next
/// tick after `wall_ms`.
pub fn stamp(
    clock: &mut Clock,
    wall_ms: u64,
    board: &str,
    name: &str,
    text: Option<String>,
) -> Record {
    Record {
        name: name.to_string(),
        text,
        version: Version {
            time: clock.tick(wall_ms),
            board: board.to_string(),
        },
    }
}

/// Whether `name` can name a file directly inside a directory: not empty, no `/` or NUL, not
/// `.` or `..`. Records are checked when they enter the desired state
/// ([`baton_cluster::desired::admit`]); this is the second check, where files are written.
pub fn plain_file_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\0']) && name != "." && name != ".."
}

/// Brings the card's files in line with the records in force for `names`, and the book with
/// them; each write goes to the data partition before the card ([`CardStore`]), so a power cut
/// leaves nothing the next boot cannot repair. `seen` are the card's files as the scan read them
/// ([`CardStore::files`]): a file changed since (an API apply) is left alone, and the book keeps
/// its old entry so the next scan makes a record of the change. Returns what could not be
/// written; the book then keeps the old entry, so the next scan tries again, except where only
/// the card failed and the data partition holds the text (the board runs that). A name that is
/// not a plain file name ([`plain_file_name`]) writes nothing anywhere and is among them.
pub fn mirror(
    card: &CardStore,
    book: &mut Book,
    desired: &Desired,
    names: &[String],
    seen: &[(String, String)],
) -> Vec<String> {
    let dir = card.card_dir();
    let mut problems = Vec::new();
    for name in names {
        if !plain_file_name(name) {
            problems.push(format!(
                "{}: the service name {} is not a plain file name; nothing written",
                dir.display(),
                baton_cluster::desired::admit::escaped(name)
            ));
            continue;
        }
        let Some(record) = desired.get(name) else {
            continue;
        };
        let file = format!("{name}.toml");
        let was = seen
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, t)| t.as_str());
        let held = match card.mirror(name, record.text.as_deref(), was) {
            Ok(held) => held,
            // The data partition holds it, and the board runs it from there until a boot
            // writes the card (see `CardStore::files`): the book follows.
            Err(e @ WriteError::Card { .. }) if card.has_data() => {
                problems.push(e.to_string());
                true
            }
            Err(e) => {
                problems.push(e.to_string());
                false
            }
        };
        if held {
            book.entries.insert(
                name.clone(),
                Entry {
                    hash: hash(record.text.as_deref().unwrap_or("")),
                    version: record.version.clone(),
                    deleted: record.text.is_none(),
                },
            );
        }
    }
    problems
}

/// Where the book and the merged records are kept on the data partition.
#[derive(Debug, Clone)]
pub struct Files {
    /// `local.json`: the book.
    pub book: PathBuf,
    /// `desired.json`: every record, tombstones included.
    pub desired: PathBuf,
    /// `peers`: how many peers were alive when the board last ran.
    pub peers: PathBuf,
}

impl Files {
    /// Under `dir` (normally `/data/cluster`).
    pub fn under(dir: &Path) -> Files {
        Files {
            book: dir.join("local.json"),
            desired: dir.join("desired.json"),
            peers: dir.join("peers"),
        }
    }

    /// The number of peers saved by [`Files::save_peers`], if any.
    pub fn load_peers(&self) -> Option<usize> {
        std::fs::read_to_string(&self.peers)
            .ok()
            .and_then(|t| t.trim().parse().ok())
    }

    /// Saves how many peers are alive.
    pub fn save_peers(&self, count: usize) -> std::io::Result<()> {
        crate::board::persist::write_atomic(&self.peers, count.to_string().as_bytes())
    }

    /// Reads the book; a missing or broken file gives an empty one.
    pub fn load_book(&self) -> Book {
        std::fs::read(&self.book)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Reads the records; a missing or broken file gives none.
    pub fn load_records(&self) -> Vec<Record> {
        std::fs::read(&self.desired)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes both, atomically each.
    pub fn save(&self, book: &Book, desired: &Desired) -> std::io::Result<()> {
        self.save_records(desired)?;
        crate::board::persist::write_atomic(&self.book, &serde_json::to_vec(book)?)
    }

    /// Writes the records alone, atomically.
    pub fn save_records(&self, desired: &Desired) -> std::io::Result<()> {
        let records: Vec<&Record> = desired.records().collect();
        crate::board::persist::write_atomic(&self.desired, &serde_json::to_vec(&records)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn new_changed_and_removed_files_become_records_and_unchanged_ones_do_not() {
        let mut clock = Clock::default();
        let mut book = Book::default();
        let first = changes(
            &book,
            &valid(&[("web", "a"), ("db", "b")]),
            &names(&["web", "db"]),
            &mut clock,
            100,
            "pi-a",
        );
        assert_eq!(first.len(), 2);
        let mut desired = Desired::default();
        desired.merge(first, &mut clock, 1_000_000);
        let dir = tempfile::tempdir().expect("temp dir");
        let card = CardStore::open(dir.path().to_path_buf(), None).0;
        let problems = mirror(
            &card,
            &mut book,
            &desired,
            &["db".to_string(), "web".to_string()],
            &read_files(dir.path()),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("web.toml")).expect("web"),
            "a"
        );
        // Nothing changed: no records.
        let again = changes(
            &book,
            &valid(&[("web", "a"), ("db", "b")]),
            &names(&["web", "db"]),
            &mut clock,
            100,
            "pi-a",
        );
        assert!(again.is_empty(), "{again:?}");
        // web edited, db removed, a broken file for "new" (present, not valid): two records.
        let next = changes(
            &book,
            &valid(&[("web", "a2")]),
            &names(&["web", "new"]),
            &mut clock,
            100,
            "pi-a",
        );
        let summary: Vec<(&str, Option<&str>)> = next
            .iter()
            .map(|r| (r.name.as_str(), r.text.as_deref()))
            .collect();
        assert_eq!(summary, [("web", Some("a2")), ("db", None)]);
        assert!(next.iter().all(|r| r.version.time > 100));
        // A file whose spec broke is not a deletion.
        let broken = changes(
            &book,
            &valid(&[]),
            &names(&["web", "db"]),
            &mut clock,
            100,
            "pi-a",
        );
        assert!(broken.is_empty(), "{broken:?}");
    }

    #[test]
    fn mirroring_writes_and_removes_files_and_the_book_follows() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut clock = Clock::default();
        let mut desired = Desired::default();
        let v = |time| Version {
            time,
            board: "pi-b".into(),
        };
        desired.merge(
            [
                Record {
                    name: "web".into(),
                    text: Some("from b".into()),
                    version: v(5),
                },
                Record {
                    name: "old".into(),
                    text: None,
                    version: v(6),
                },
            ],
            &mut clock,
            1_000_000,
        );
        std::fs::write(dir.path().join("old.toml"), "stale").expect("write");
        let mut book = Book::default();
        // The records are kept on the data partition before the card is written.
        let data = tempfile::tempdir().expect("temp dir");
        let card = CardStore::open(dir.path().to_path_buf(), Some(data.path().to_path_buf())).0;
        let problems = mirror(
            &card,
            &mut book,
            &desired,
            &["web".to_string(), "old".to_string()],
            &read_files(dir.path()),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(card.truth("web").as_deref(), Some("from b"));
        assert_eq!(card.truth("old"), None);
        assert!(!dir.path().join("old.toml").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("web.toml")).expect("web"),
            "from b"
        );
        assert_eq!(book.entries["web"].version, v(5));
        assert!(book.entries["old"].deleted);
        // The mirrored files are not changes of this board.
        assert_no_change(&book, &read_files(dir.path()), &mut clock);
    }

    /// `files` (holding `web` as "from b") make no record of this board's.
    fn assert_no_change(book: &Book, files: &[(String, String)], clock: &mut Clock) {
        let found = changes(
            book,
            &valid(&[("web", "from b")]),
            &present(files),
            clock,
            0,
            "pi-a",
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_record_only_the_card_refuses_is_kept_in_the_book_and_makes_no_change_of_this_board() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = tempfile::tempdir().expect("temp dir");
        let card = CardStore::open(dir.path().to_path_buf(), Some(data.path().to_path_buf())).0;
        let mut clock = Clock::default();
        let mut desired = Desired::default();
        let record = Record {
            name: "web".into(),
            text: Some("from b".into()),
            version: Version {
                time: 5,
                board: "pi-b".into(),
            },
        };
        desired.merge([record], &mut clock, 1_000_000);
        // The card refuses the write (a directory where its temporary file goes).
        std::fs::create_dir(dir.path().join("web.toml.tmp")).expect("dir");
        let mut book = Book::default();
        let seen = card.files();
        let problems = mirror(&card, &mut book, &desired, &["web".to_string()], &seen);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(card.truth("web").as_deref(), Some("from b"));
        assert_eq!(book.entries["web"].hash, hash("from b"));
        // What the board runs holds the record, and is no change of this board's.
        let files = card.files();
        assert!(
            files.contains(&("web.toml".into(), "from b".into())),
            "{files:?}"
        );
        assert_no_change(&book, &files, &mut clock);
    }

    #[test]
    fn a_file_too_long_to_read_is_refused_by_name_and_deletes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let long = format!(
            "name = \"web\"\n#{}\n",
            "x".repeat(baton_spec::service::MAX_SPEC_FILE)
        );
        std::fs::write(dir.path().join("web.toml"), long).expect("write");
        let files = read_files(dir.path());
        assert_eq!(
            files[0].1.len(),
            baton_spec::service::MAX_SPEC_FILE + 1,
            "read no further"
        );
        assert!(present(&files).contains("web"));
        let loaded = baton_spec::service::load_services(&files);
        assert!(loaded.specs.is_empty());
        let message = loaded.errors[0].to_string();
        assert!(
            message.contains("services/web.toml") && message.contains("larger than"),
            "{message}"
        );
    }

    #[test]
    fn the_book_and_records_survive_a_save_and_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = Files::under(&dir.path().join("cluster"));
        assert_eq!(files.load_book(), Book::default());
        let mut desired = Desired::default();
        let record = Record {
            name: "web".into(),
            text: Some("x".into()),
            version: Version {
                time: 1,
                board: "pi-a".into(),
            },
        };
        desired.merge([record.clone()], &mut Clock::default(), 1_000_000);
        let mut book = Book::default();
        book.entries.insert(
            "web".into(),
            Entry {
                hash: hash("x"),
                version: record.version.clone(),
                deleted: false,
            },
        );
        files.save(&book, &desired).expect("save");
        assert_eq!(files.load_book(), book);
        assert_eq!(files.load_records(), [record]);
        std::fs::write(&files.desired, "{broken").expect("write");
        assert!(files.load_records().is_empty());
    }
}
