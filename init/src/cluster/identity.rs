//! This board's own key ([`BoardKey`]) and the name-to-key bindings it holds, both kept on the
//! data partition (`/data/cluster/board.key`, `/data/cluster/bindings.json`).
//!
//! The key is made on the board's first boot with a data partition and never leaves it (only its
//! public half travels, in the gossip). Without a data partition the board makes a new key at
//! every boot; the other boards then refuse it after a restart until an operator runs
//! `baton boards forget <name>`, which is said on the console.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use baton_cluster::board_key::{self, BoardKey};
use baton_cluster::gossip::bindings::MAX_BINDINGS;
use baton_cluster::gossip::Binding;

use crate::board::console::Console;

/// The key file's name in the state directory.
const KEY_FILE: &str = "board.key";
/// The bindings file's name in the state directory.
const BINDINGS_FILE: &str = "bindings.json";
/// Longest bindings file read: 1024 bindings of about 150 bytes each, with room.
const MAX_BINDINGS_BYTES: u64 = 512 * 1024;

/// The board's key from `dir`, or a new one saved there; a new one for this boot only when there
/// is no `dir` or the key cannot be read or saved (said on `console`).
pub fn board_key(dir: Option<&Path>, now_ms: u64, console: &Console) -> Option<BoardKey> {
    let fresh = || match BoardKey::generate(now_ms) {
        Ok(key) => Some(key),
        Err(e) => {
            console.line(format_args!(
                "cluster: {e}; the board cannot sign its state"
            ));
            None
        }
    };
    let Some(dir) = dir else {
        console.line(format_args!(
            "cluster: no data partition, so a new board key this boot: after a restart the \
             other boards refuse this board's name until `baton boards forget` is run"
        ));
        return fresh();
    };
    let path = dir.join(KEY_FILE);
    match crate::board::persist::read_bounded(&path, board_key::MAX_FILE_BYTES as u64) {
        Ok(Some(bytes)) => match BoardKey::from_file(&bytes) {
            Ok(key) => return Some(key),
            Err(e) => {
                // Never overwrite a key that exists: the operator may want it back.
                console.line(format_args!(
                    "cluster: {}: {e}; signing with a key for this boot only (move the file \
                     away to make a new lasting key)",
                    path.display()
                ));
                return fresh();
            }
        },
        Ok(None) => {}
        Err(e) => {
            console.line(format_args!(
                "cluster: reading {}: {e}; signing with a key for this boot only",
                path.display()
            ));
            return fresh();
        }
    }
    let key = fresh()?;
    match write_private(&path, key.to_file().as_bytes()) {
        Ok(()) => console.line(format_args!(
            "cluster: made this board's key {} ({})",
            board_key::fingerprint(&key.public()),
            path.display()
        )),
        Err(e) => console.line(format_args!(
            "cluster: saving the board key in {}: {e}; it lasts this boot only",
            path.display()
        )),
    }
    Some(key)
}

/// Where the bindings are kept in `dir`.
pub fn bindings_path(dir: &Path) -> PathBuf {
    dir.join(BINDINGS_FILE)
}

/// The bindings saved in `dir`; none (said on `console`) when the file is unreadable.
pub fn load_bindings(dir: Option<&Path>, console: &Console) -> BTreeMap<String, Binding> {
    let Some(dir) = dir else {
        return BTreeMap::new();
    };
    let path = bindings_path(dir);
    let parsed = crate::board::persist::read_bounded(&path, MAX_BINDINGS_BYTES).and_then(|bytes| {
        bytes
            .map(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .transpose()
    });
    match parsed {
        Ok(bindings) => bindings.unwrap_or_default(),
        Err(e) => {
            console.line(format_args!(
                "cluster: {}: {e}; names are bound again on first sight",
                path.display()
            ));
            BTreeMap::new()
        }
    }
}

/// Saves `bindings` in `dir` (power-safe: the old file or the new one, never a torn one).
pub fn save_bindings(dir: &Path, bindings: &BTreeMap<String, Binding>) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(bindings).map_err(std::io::Error::other)?;
    crate::board::persist::write_atomic(&bindings_path(dir), &json)
}

impl super::Node {
    /// Says on the console when the gossip refused more names because this board holds the
    /// most bindings it keeps (see [`full_note`]).
    pub(super) fn note_bindings_full(&self) {
        let refused = self.gossip.refused_full();
        let note = full_note(&mut super::lock(&self.inner).bindings_full_seen, refused);
        if let Some(note) = note {
            self.settings.console.line(format_args!("{note}"));
        }
    }
}

/// The line for names refused because the bindings were full, when more were refused than
/// `seen` says (which then follows): one line each time it is asked (once a round), however
/// many names came, naming the latest; none while no new name comes.
fn full_note(seen: &mut u64, (names, last): (u64, Option<String>)) -> Option<String> {
    if names <= *seen {
        return None;
    }
    *seen = names;
    Some(format!(
        "cluster: this board holds {MAX_BINDINGS} name bindings, the most it keeps, so board {} \
         is not bound to its key and its state shows unsigned (names refused so far: {names}); \
         run `baton boards forget` for names no longer used",
        last.as_deref().unwrap_or("?")
    ))
}

/// Writes a secret: mode 0600 from the start, fsync, rename, directory fsync.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let console = Console::quiet(100);
        let first = board_key(Some(dir.path()), 5, &console).expect("key");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .expect("saved")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = board_key(Some(dir.path()), 9, &console).expect("key");
        assert_eq!(again.public(), first.public());
        assert_eq!(again.since_ms(), 5, "the claim keeps its first time");
    }

    #[test]
    fn a_damaged_key_is_kept_for_the_operator_and_a_boot_key_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(KEY_FILE);
        std::fs::write(&path, b"not a key").expect("write");
        let console = Console::quiet(100);
        assert!(board_key(Some(dir.path()), 5, &console).is_some());
        assert_eq!(std::fs::read(&path).expect("kept"), b"not a key");
        assert!(console
            .recent()
            .iter()
            .any(|l| l.contains("this boot only")));
        std::fs::write(&path, vec![b'x'; 10_000]).expect("write");
        assert!(board_key(Some(dir.path()), 5, &console).is_some());
    }

    #[test]
    fn names_refused_for_want_of_room_are_said_once_each() {
        let mut seen = 0;
        assert_eq!(full_note(&mut seen, (0, None)), None);
        let note = full_note(&mut seen, (1, Some("pi-9".into()))).expect("said");
        assert!(
            note.contains("board pi-9 ") && note.contains("so far: 1)"),
            "{note}"
        );
        assert_eq!(full_note(&mut seen, (1, Some("pi-9".into()))), None);
        let note = full_note(&mut seen, (40, Some("junk".into()))).expect("said");
        assert!(
            note.contains("junk") && note.contains("so far: 40)"),
            "{note}"
        );
        assert_eq!(seen, 40);
    }

    #[test]
    fn bindings_round_trip_and_bad_files_start_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let console = Console::quiet(100);
        assert!(load_bindings(Some(dir.path()), &console).is_empty());
        let bindings = BTreeMap::from([(
            "pi-1".to_owned(),
            Binding {
                key: [3; 32],
                since_ms: 1,
                bound_at_ms: 2,
                pinned_generation: Some(9),
            },
        )]);
        save_bindings(dir.path(), &bindings).expect("save");
        assert_eq!(load_bindings(Some(dir.path()), &console), bindings);
        std::fs::write(bindings_path(dir.path()), b"{\"pi-1\": 7}").expect("write");
        assert!(load_bindings(Some(dir.path()), &console).is_empty());
        assert!(console.recent().iter().any(|l| l.contains("bound again")));
    }
}
