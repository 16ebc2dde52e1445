//! The service specs of the config partition (`services/*.toml` on the FAT card) with their truth
//! on the data partition (ext4, journaled).
//!
//! FAT has no atomic rename over an existing file: a power cut while the board writes a card
//! file can leave the old file, the new one, a truncated or zeroed one, both names, or none. So
//! every spec the board writes is first made durable on `/data` ([`DIR`]): an intent in the
//! manifest, then the text in `specs/<name>.toml`; only then is the card written, and the
//! manifest records the hash of what the card now holds. At boot [`CardStore::reconcile`] tells
//! an interrupted write (repaired from `/data`) from a laptop's edit (honoured), see
//! [`decide`]. Without a data partition the card is the only copy, as it always was.

pub mod decide;
mod reconcile;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

pub use reconcile::Reconciled;

use crate::board::persist;

/// Where the store lives on the data partition.
pub const DIR: &str = "/data/baton/card";

/// Longest spec file read from the card or the store, in bytes.
pub const MAX_FILE: u64 = baton_spec::service::MAX_SPEC_FILE as u64;

/// What the board knows of the card's spec files, saved atomically on the data partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    /// Service name → SHA-256 of the text the board last wrote to the card and synced.
    pub written: BTreeMap<String, String>,
    /// Service name → hash of the text being written (`None`: being removed), for writes begun
    /// and not finished.
    pub pending: BTreeMap<String, Option<String>>,
    /// Service name → what the card file may hold after a write of it failed
    /// ([`decide::fingerprint`]s separated by spaces), for pending writes only: a card that
    /// holds something else at boot was changed by a laptop since.
    pub seen: BTreeMap<String, String>,
}

/// A write that failed, naming the partition: an error on the data partition means nothing was
/// kept; one on the card means the data partition holds the spec and the next boot repairs the
/// card.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Writing the data partition failed.
    #[error("{}: {source} (nothing was kept)", path.display())]
    Data {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Writing the card failed after the data partition was written.
    #[error("{}: {source} (kept on the data partition; the next boot rewrites the card)", path.display())]
    Card {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// The card's `services/` directory and its store on the data partition; writes are serialised.
#[derive(Debug)]
pub struct CardStore {
    card: PathBuf,
    data: Option<PathBuf>,
    manifest: Mutex<Manifest>,
    /// Service name → what its card file held when this boot's reconcile read it from a fresh
    /// mount (a [`decide::fingerprint`]).
    at_boot: Mutex<BTreeMap<String, String>>,
}

impl CardStore {
    /// The store for the card directory `card` (`/config/services`) kept under `data`
    /// (`/data/baton/card`), or with no data partition (`None`). A manifest that cannot be read
    /// counts as empty (every card file is then read as it is); the problem is returned.
    pub fn open(card: PathBuf, data: Option<PathBuf>) -> (CardStore, Option<String>) {
        let (manifest, problem) = match &data {
            Some(dir) => load_manifest(&dir.join("manifest.json")),
            None => (Manifest::default(), None),
        };
        let store = CardStore {
            card,
            data,
            manifest: Mutex::new(manifest),
            at_boot: Mutex::new(BTreeMap::new()),
        };
        (store, problem)
    }

    /// The card's `services/` directory.
    pub fn card_dir(&self) -> &Path {
        &self.card
    }

    /// Whether specs are kept on the data partition.
    pub fn has_data(&self) -> bool {
        self.data.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, Manifest> {
        self.manifest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The card file of service `name`.
    pub fn card_file(&self, name: &str) -> PathBuf {
        self.card.join(format!("{name}.toml"))
    }

    /// The spec of `name` kept on the data partition, if any.
    pub fn truth(&self, name: &str) -> Option<String> {
        let dir = self.data.as_ref()?;
        read_text(&dir.join("specs").join(format!("{name}.toml")))
    }

    /// Writes service `name`'s spec (`None`: removes it): durable on the data partition first
    /// (intent, then text), then on the card, then the manifest. `Ok` means both hold it; an
    /// error names which partition failed. `name` must be a plain file name (the callers check
    /// service names).
    pub fn write(&self, name: &str, text: Option<&str>) -> Result<(), WriteError> {
        let mut manifest = self.lock();
        self.write_locked(&mut manifest, name, text)
    }

    /// Like [`CardStore::write`] for the cluster's mirroring: `seen` is what the card file held
    /// when the records were made from it (`None`: no file). If the file changed since (an API
    /// apply came in between), nothing is written and `Ok(false)` returned: the next scan makes
    /// a record of the change instead of the mirror overwriting it. Writes nothing either when
    /// the card and the data partition already hold `text`.
    pub fn mirror(
        &self,
        name: &str,
        text: Option<&str>,
        seen: Option<&str>,
    ) -> Result<bool, WriteError> {
        let mut manifest = self.lock();
        let card = read_bounded(&self.card_file(name)).ok();
        // What the scan read: the card's file, or the data partition's text where the card
        // write of it failed (see [`CardStore::files`]).
        let card_text = match self.kept_pending(&manifest, name) {
            Some(text) => text.map(std::borrow::Cow::Owned),
            None => card.as_deref().map(String::from_utf8_lossy),
        };
        if card_text.as_deref() != seen {
            return Ok(false);
        }
        let card_agrees = card.as_deref() == text.map(str::as_bytes);
        let data_agrees = match &self.data {
            None => true,
            Some(_) => {
                self.truth(name).as_deref() == text
                    && manifest.written.get(name).map(String::as_str)
                        == text.map(|t| decide::hash(t.as_bytes())).as_deref()
                    && !manifest.pending.contains_key(name)
            }
        };
        if card_agrees && data_agrees {
            return Ok(true);
        }
        self.write_locked(&mut manifest, name, text).map(|()| true)
    }

    fn write_locked(
        &self,
        manifest: &mut Manifest,
        name: &str,
        text: Option<&str>,
    ) -> Result<(), WriteError> {
        let card_path = self.card_file(name);
        let Some(dir) = &self.data else {
            return write_card(&card_path, text).map_err(|source| WriteError::Card {
                path: card_path,
                source,
            });
        };
        let hash = text.map(|t| decide::hash(t.as_bytes()));
        self.begin(dir, manifest, name, text)?;
        let manifest_path = dir.join("manifest.json");
        let data_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WriteError::Data { path, source }
        };
        // 3. The card.
        if let Err(source) = write_card(&card_path, text) {
            // What the card may hold now, so that the next boot can tell a laptop's change from
            // the card as this failure left it. Best effort: without it the next boot repairs.
            let seen = self.seen_after_failure(manifest, name);
            manifest.seen.insert(name.to_string(), seen);
            let _ = save_manifest(&manifest_path, manifest);
            return Err(WriteError::Card {
                path: card_path,
                source,
            });
        }
        // 4. What the card holds.
        match hash {
            Some(h) => manifest.written.insert(name.to_string(), h),
            None => manifest.written.remove(name),
        };
        manifest.pending.remove(name);
        manifest.seen.remove(name);
        save_manifest(&manifest_path, manifest).map_err(data_err(&manifest_path))
    }

    /// Steps 1 and 2 of a write: the intent, then the text on the data partition.
    fn begin(
        &self,
        dir: &Path,
        manifest: &mut Manifest,
        name: &str,
        text: Option<&str>,
    ) -> Result<(), WriteError> {
        let data_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WriteError::Data { path, source }
        };
        let manifest_path = dir.join("manifest.json");
        manifest
            .pending
            .insert(name.to_string(), text.map(|t| decide::hash(t.as_bytes())));
        // A new write: what the card held after an earlier failed one no longer says anything
        // (kept, it would make this write's torn file look like a laptop's edit).
        manifest.seen.remove(name);
        save_manifest(&manifest_path, manifest).map_err(data_err(&manifest_path))?;
        let truth = dir.join("specs").join(format!("{name}.toml"));
        write_truth(&truth, text).map_err(data_err(&truth))
    }

    /// The spec files as the board runs them, as (file name, text), sorted: the card's files,
    /// except that a write the data partition holds and the card does not yet (its card write
    /// failed: a card the kernel set read-only after a FAT error, say) shows the data partition's
    /// text, or no file for a removal. The next boot writes those to the card ([`decide`]).
    pub fn files(&self) -> Vec<(String, String)> {
        let mut files: BTreeMap<String, String> = read_files(&self.card).into_iter().collect();
        let manifest = self.lock();
        for name in manifest.pending.keys() {
            if let Some(text) = self.kept_pending(&manifest, name) {
                let file = format!("{name}.toml");
                match text {
                    Some(text) => files.insert(file, text),
                    None => files.remove(&file),
                };
            }
        }
        files.into_iter().collect()
    }

    /// The text the data partition holds for a pending write of `name`, when it holds what the
    /// write's intent says: `Some(None)` for a removal done there; `None` when no write of
    /// `name` is pending or it did not get as far as the data partition.
    fn kept_pending(&self, manifest: &Manifest, name: &str) -> Option<Option<String>> {
        let intent = manifest.pending.get(name)?;
        self.data.as_ref()?;
        let truth = self.truth(name);
        let held = truth.as_deref().map(|t| decide::hash(t.as_bytes()));
        (held == *intent).then_some(truth)
    }

    /// After a card write of `name` failed: every text the card file may hold, as
    /// [`decide::fingerprint`]s separated by spaces. What it shows now may be only the page
    /// cache's (a FAT set read-only keeps writes it never makes), so what this boot read from
    /// it and what the board last wrote to it durably are candidates too.
    fn seen_after_failure(&self, manifest: &Manifest, name: &str) -> String {
        let mut seen = vec![decide::fingerprint(&look(&self.card_file(name)))];
        let at_boot = self
            .at_boot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned();
        let written = match manifest.written.get(name) {
            Some(hash) => hash.clone(),
            None => decide::fingerprint(&decide::CardFile::Missing),
        };
        for fp in at_boot.into_iter().chain([written]) {
            if !seen.contains(&fp) {
                seen.push(fp);
            }
        }
        seen.join(" ")
    }

    /// Brings the card in line with the data partition at boot; see [`decide`].
    pub fn reconcile(&self) -> Reconciled {
        let mut manifest = self.lock();
        reconcile::run(self, &mut manifest)
    }
}

/// The files of `dir` as (file name, text), sorted; unreadable files are left out. At most one
/// byte past [`MAX_FILE`] of each is read: a longer file (a card edited by hand) is then refused
/// as a spec by name, and stays present, so it deletes nothing.
pub fn read_files(dir: &Path) -> Vec<(String, String)> {
    use std::io::Read as _;
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            let read = std::fs::File::open(entry.path())
                .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes));
            if read.is_ok() {
                files.push((name, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    files.sort();
    files
}

/// What the card holds at `path`.
fn look(path: &Path) -> decide::CardFile {
    match read_bounded(path) {
        Ok(bytes) => decide::CardFile::Bytes(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => decide::CardFile::Missing,
        Err(e) => decide::CardFile::Unreadable(e.to_string()),
    }
}

/// Reads a text file of at most [`MAX_FILE`] bytes; `None` if missing, larger or not UTF-8.
fn read_text(path: &Path) -> Option<String> {
    let bytes = read_bounded(path).ok()?;
    String::from_utf8(bytes).ok()
}

/// Reads at most [`MAX_FILE`] bytes of `path`; a larger file is an error.
fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(io::Error::other(format!(
            "larger than {MAX_FILE} bytes; not read"
        )));
    }
    Ok(bytes)
}

fn load_manifest(path: &Path) -> (Manifest, Option<String>) {
    match read_bounded(path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(m) => (m, None),
            Err(e) => (
                Manifest::default(),
                Some(format!(
                    "{}: {e}; every card file is read as it is",
                    path.display()
                )),
            ),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Manifest::default(), None),
        Err(e) => (
            Manifest::default(),
            Some(format!(
                "{}: {e}; every card file is read as it is",
                path.display()
            )),
        ),
    }
}

fn save_manifest(path: &Path, manifest: &Manifest) -> io::Result<()> {
    persist::write_atomic(path, &serde_json::to_vec(manifest)?)
}

/// Writes (or removes) a file on the data partition durably.
fn write_truth(path: &Path, text: Option<&str>) -> io::Result<()> {
    match text {
        Some(t) => persist::write_atomic(path, t.as_bytes()),
        None => {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            match path.parent() {
                Some(dir) if dir.exists() => std::fs::File::open(dir)?.sync_all(),
                _ => Ok(()),
            }
        }
    }
}

/// Writes (or removes) a card file and syncs the FAT file system.
fn write_card(path: &Path, text: Option<&str>) -> io::Result<()> {
    match text {
        Some(t) => persist::write_atomic_fat(path, t.as_bytes())?,
        None => {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            if let Some(dir) = path.parent().filter(|d| d.exists()) {
                persist::sync_file_system(dir)?;
            }
        }
    }
    // The kernel sets a FAT read-only when it finds an error, possibly during this very write
    // (freeing the old file's clusters, say); the sync of a read-only file system then writes
    // nothing and succeeds. What the page cache shows need not be on the card.
    match path.parent() {
        Some(dir) if read_only(dir) => Err(io::Error::new(
            io::ErrorKind::ReadOnlyFilesystem,
            "the card's file system went read-only during the write (a FAT error): it may not hold it",
        )),
        _ => Ok(()),
    }
}

/// Whether the file system holding `dir` is mounted read-only now.
fn read_only(dir: &Path) -> bool {
    nix::sys::statvfs::statvfs(dir)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}
