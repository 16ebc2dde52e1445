//! The boards this board knows to be in its cluster, kept on the data partition
//! (`/data/cluster/known.json`), so that a tombstone is dropped only once every one of them has
//! it (see [`super::tombstones`]).
//!
//! A board enters when it is seen alive in the gossip, and leaves only when an operator says so
//! (`baton boards forget NAME`, `DELETE /v1/cluster/boards/NAME`): a board that is off for months
//! still holds the records it had, and would bring a deleted service back when it returns if the
//! tombstone were gone. At most [`MAX_BOARDS`] are kept; a board beyond that is not registered
//! (reported on the console) and tombstones do not wait for it.
//!
//! Each board's entry is a struct that may grow (another change binds each board's public key
//! here); the file is read with unknown fields ignored and missing ones defaulted, so the
//! previous and the next release read what the other wrote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Most boards registered.
pub const MAX_BOARDS: usize = 1024;

/// Largest registry file read (a full registry takes well under 200 KiB).
const MAX_FILE: u64 = 1 << 20;

/// What is kept of one board.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Board {
    /// When this board first saw it (unix ms).
    pub first_seen_ms: u64,
}

/// The registry: board name → what is kept of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Known {
    /// Boards by name.
    pub boards: BTreeMap<String, Board>,
}

/// What [`Known::note`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// Registered now.
    New,
    /// Already known.
    Known,
    /// Not registered: [`MAX_BOARDS`] are.
    Full,
}

impl Known {
    /// The file under `dir` (normally `/data/cluster`).
    pub fn file(dir: &Path) -> PathBuf {
        dir.join("known.json")
    }

    /// Reads the registry; a missing file gives an empty one. A file that is too large or does
    /// not parse also gives an empty one, with the problem to report (the boards seen from then
    /// on are registered again).
    pub fn load(path: &Path) -> (Known, Option<String>) {
        let text = match crate::board::persist::read_bounded(path, MAX_FILE) {
            Ok(Some(text)) => text,
            Ok(None) => return (Known::default(), None),
            Err(e) => return (Known::default(), Some(format!("{}: {e}", path.display()))),
        };
        match serde_json::from_slice::<Known>(&text) {
            Ok(mut known) => {
                while known.boards.len() > MAX_BOARDS {
                    known.boards.pop_last();
                }
                (known, None)
            }
            Err(e) => (Known::default(), Some(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the registry atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::board::persist::write_atomic(path, &serde_json::to_vec_pretty(self)?)
    }

    /// Registers `name`, seen at `now_ms`, unless it is known or the registry is full.
    pub fn note(&mut self, name: &str, now_ms: u64) -> Noted {
        if self.boards.contains_key(name) {
            return Noted::Known;
        }
        if self.boards.len() >= MAX_BOARDS {
            return Noted::Full;
        }
        self.boards.insert(
            name.to_string(),
            Board {
                first_seen_ms: now_ms,
            },
        );
        Noted::New
    }

    /// Forgets `name`; returns what was kept of it.
    pub fn forget(&mut self, name: &str) -> Option<Board> {
        self.boards.remove(name)
    }

    /// The names registered.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.boards.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_survives_a_save_and_load_and_forgets_on_demand() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = Known::file(&dir.path().join("cluster"));
        assert_eq!(Known::load(&path), (Known::default(), None));
        let mut known = Known::default();
        assert_eq!(known.note("pi-a", 5), Noted::New);
        assert_eq!(known.note("pi-a", 9), Noted::Known);
        assert_eq!(known.note("pi-b", 7), Noted::New);
        known.save(&path).expect("save");
        let (loaded, problem) = Known::load(&path);
        assert_eq!(problem, None);
        assert_eq!(loaded, known);
        assert_eq!(loaded.boards["pi-a"].first_seen_ms, 5);
        assert_eq!(known.forget("pi-a"), Some(Board { first_seen_ms: 5 }));
        assert_eq!(known.forget("pi-a"), None);
        assert_eq!(known.names().collect::<Vec<_>>(), ["pi-b"]);
    }

    #[test]
    fn a_file_of_another_release_reads_and_a_broken_one_is_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("known.json");
        // The next release keeps more per board: this one keeps what it knows.
        std::fs::write(
            &path,
            r#"{"boards":{"pi-a":{"first_seen_ms":3,"public_key":"abc"}},"version":2}"#,
        )
        .expect("write");
        let (known, problem) = Known::load(&path);
        assert_eq!(problem, None);
        assert_eq!(known.boards["pi-a"].first_seen_ms, 3);
        std::fs::write(&path, "{broken").expect("write");
        let (known, problem) = Known::load(&path);
        assert_eq!(known, Known::default());
        assert!(problem.expect("reported").contains("known.json"));
        std::fs::write(&path, vec![b' '; MAX_FILE as usize + 1]).expect("write");
        let (_, problem) = Known::load(&path);
        assert!(problem.expect("reported").contains("larger than"));
    }

    #[test]
    fn the_registry_is_capped() {
        let mut known = Known::default();
        for i in 0..MAX_BOARDS {
            assert_eq!(known.note(&format!("pi-{i}"), 1), Noted::New);
        }
        assert_eq!(known.note("one-more", 1), Noted::Full);
        assert_eq!(known.note("pi-0", 1), Noted::Known);
        assert_eq!(known.boards.len(), MAX_BOARDS);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("known.json");
        let mut over = known.clone();
        over.boards.insert("zz-extra".into(), Board::default());
        over.save(&path).expect("save");
        assert_eq!(Known::load(&path).0.boards.len(), MAX_BOARDS);
    }
}
