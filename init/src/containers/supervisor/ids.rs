//! Each service's range of user and group ids: the table service name → slot, kept on the
//! data partition so that a service's files (its volumes) keep their owner across boots.
//!
//! Slot `i` owns the 65,536 ids from `65,536 × (i + 2)`: the board's own ids (below 131,072)
//! are never part of a range, and no two recorded services share one. A slot stays with its
//! service while the table records it; the table holds at most [`MAX_SLOTS`] services and
//! refuses more with a clear error. The file is JSON, written power-safely
//! ([`crate::board::persist::write_atomic`]); a file that cannot be read or parsed is an error
//! naming it, never a panic and never a silently empty table (that could hand a slot, and
//! the files of one service, to another).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::board::persist;

/// Ids in one service's range.
pub const RANGE: u32 = 65_536;

/// How many services the table holds: the ranges end below 2³² (and far from it).
pub const MAX_SLOTS: u32 = 4_096;

/// The largest table file read (a full table is about 200 KiB).
const MAX_FILE: u64 = 1 << 20;

/// Errors reading or changing the table.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error("user id table {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid table.
    #[error("user id table {} is corrupt: {why}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Every slot is taken.
    #[error("cannot give service {service} a user id range: all {MAX_SLOTS} ranges are taken")]
    Full {
        /// The service that asked.
        service: String,
    },
}

/// One service's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Its index in the table.
    pub index: u32,
    /// The volumes of the service have been moved into the range (see the supervisor).
    #[serde(default)]
    pub volumes_shifted: bool,
}

impl Slot {
    /// The first host id of the range: the container's root.
    pub fn uid_base(&self) -> u32 {
        RANGE * (self.index + 2)
    }

    /// The ext4 project id of the same service (never 0, the default project).
    pub fn project(&self) -> u32 {
        self.index + 1
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    services: BTreeMap<String, Slot>,
}

/// The table, as on disk.
#[derive(Debug)]
pub struct Table {
    path: PathBuf,
    services: BTreeMap<String, Slot>,
}

impl Table {
    /// Reads the table at `path`; a missing file is an empty table.
    pub fn load(path: &Path) -> Result<Table, Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let corrupt = |why: String| Error::Corrupt {
            path: path.to_path_buf(),
            why,
        };
        let mut text = Vec::new();
        match std::fs::File::open(path) {
            Ok(f) => {
                f.take(MAX_FILE + 1).read_to_end(&mut text).map_err(io)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Table {
                    path: path.to_path_buf(),
                    services: BTreeMap::new(),
                })
            }
            Err(e) => return Err(io(e)),
        }
        if text.len() as u64 > MAX_FILE {
            return Err(corrupt(format!("larger than {MAX_FILE} bytes")));
        }
        let file: File = serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        let mut seen = BTreeMap::new();
        for (name, slot) in &file.services {
            if slot.index >= MAX_SLOTS {
                return Err(corrupt(format!(
                    "service {name:?} has slot {}, past the last ({})",
                    slot.index,
                    MAX_SLOTS - 1
                )));
            }
            if let Some(other) = seen.insert(slot.index, name) {
                return Err(corrupt(format!(
                    "services {other:?} and {name:?} share slot {}",
                    slot.index
                )));
            }
        }
        Ok(Table {
            path: path.to_path_buf(),
            services: file.services,
        })
    }

    /// The slot of `service`, if it has one.
    pub fn get(&self, service: &str) -> Option<Slot> {
        self.services.get(service).copied()
    }

    /// The slot of `service`; a new one (the lowest free index), written to disk before it is
    /// returned, if it had none. The flag tells whether it is new.
    pub fn slot(&mut self, service: &str) -> Result<(Slot, bool), Error> {
        if let Some(slot) = self.get(service) {
            return Ok((slot, false));
        }
        let taken: std::collections::BTreeSet<u32> =
            self.services.values().map(|s| s.index).collect();
        let index = (0..MAX_SLOTS)
            .find(|i| !taken.contains(i))
            .ok_or_else(|| Error::Full {
                service: service.to_string(),
            })?;
        let slot = Slot {
            index,
            volumes_shifted: false,
        };
        self.services.insert(service.to_string(), slot);
        if let Err(e) = self.save() {
            self.services.remove(service);
            return Err(e);
        }
        Ok((slot, true))
    }

    /// Records that the volumes of `service` are in its range.
    pub fn mark_shifted(&mut self, service: &str) -> Result<(), Error> {
        let Some(slot) = self.services.get_mut(service) else {
            return Ok(());
        };
        if slot.volumes_shifted {
            return Ok(());
        }
        slot.volumes_shifted = true;
        self.save()
    }

    fn save(&self) -> Result<(), Error> {
        let file = File {
            services: self.services.clone(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| Error::Io {
            path: self.path.clone(),
            source: e.into(),
        })?;
        persist::write_atomic(&self.path, &json).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// The board's table of services' ids at one path, shared by every launch: one launch at a
/// time reads and changes it, and the kernel is probed once.
#[derive(Debug)]
pub struct UserIds {
    table: PathBuf,
    changing: Mutex<()>,
    probed: OnceLock<Result<(), String>>,
}

impl UserIds {
    /// The table kept at `table`.
    pub fn new(table: PathBuf) -> UserIds {
        UserIds {
            table,
            changing: Mutex::new(()),
            probed: OnceLock::new(),
        }
    }

    /// Probes once whether the layers in `store` can be idmapped (the kernel and the file
    /// system: tmpfs needs Linux 6.3); later calls return the first answer.
    pub fn probe(&self, store: &Path) -> Result<(), String> {
        self.probed
            .get_or_init(|| {
                std::fs::create_dir_all(store)
                    .map_err(|e| format!("{}: {e}", store.display()))
                    .and_then(|()| crate::containers::runtime::probe_idmap(store))
                    .map_err(|why| format!("idmapped mounts do not work on the image store: {why}"))
            })
            .clone()
    }

    /// The probe's answer: `None` before [`UserIds::probe`] ran.
    pub fn probed(&self) -> Option<Result<(), String>> {
        self.probed.get().cloned()
    }

    /// The slot of `service`, made if needed (see [`Table::slot`]).
    pub fn slot_for(&self, service: &str) -> Result<Slot, Error> {
        let _held = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        Table::load(&self.table)?
            .slot(service)
            .map(|(slot, _)| slot)
    }

    /// Records that the volumes of `service` are in its range.
    pub fn mark_shifted(&self, service: &str) -> Result<(), Error> {
        let _held = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        Table::load(&self.table)?.mark_shifted(service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("baton/ids.json");
        (dir, path)
    }

    #[test]
    fn ranges_start_above_the_boards_ids_and_never_overlap() {
        let a = Slot {
            index: 0,
            volumes_shifted: false,
        };
        assert_eq!(a.uid_base(), 131_072);
        assert_eq!(a.project(), 1);
        let last = Slot {
            index: MAX_SLOTS - 1,
            volumes_shifted: false,
        };
        assert!(u64::from(last.uid_base()) + u64::from(RANGE) <= u64::from(u32::MAX));
    }

    #[test]
    fn slots_are_kept_reloaded_and_not_reused() {
        let (_d, path) = table();
        let mut t = Table::load(&path).expect("empty");
        let (web, new) = t.slot("web").expect("web");
        assert!(new);
        let (db, _) = t.slot("db").expect("db");
        assert_ne!(web.index, db.index);
        assert_eq!(t.slot("web").expect("again"), (web, false));
        t.mark_shifted("web").expect("mark");

        let mut t = Table::load(&path).expect("reload");
        assert_eq!(t.get("web").map(|s| s.index), Some(web.index));
        assert!(t.get("web").expect("web").volumes_shifted);
        assert_eq!(t.get("db"), Some(db));
        let (cache, _) = t.slot("cache").expect("cache");
        assert!(![web.index, db.index].contains(&cache.index));
    }

    #[test]
    fn a_full_table_refuses_with_the_service_named() {
        let (_d, path) = table();
        let services: BTreeMap<String, Slot> = (0..MAX_SLOTS)
            .map(|i| {
                (
                    format!("s{i}"),
                    Slot {
                        index: i,
                        volumes_shifted: true,
                    },
                )
            })
            .collect();
        let json = serde_json::to_vec(&File { services }).expect("json");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, json).expect("write");
        let mut t = Table::load(&path).expect("load");
        let e = t.slot("one-more").expect_err("full");
        assert!(e.to_string().contains("one-more"), "{e}");
        assert!(t.slot("s7").is_ok(), "recorded services keep theirs");
    }

    #[test]
    fn hostile_files_are_clear_errors() {
        let (_d, path) = table();
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        let cases: [&[u8]; 6] = [
            b"\xff\xfe garbage",
            b"{\"services\": {\"a\": {\"index\": 4096}}}",
            b"{\"services\": {\"a\": {\"index\": 1}, \"b\": {\"index\": 1}}}",
            b"{\"services\": {\"a\": {\"index\": -1}}}",
            b"{\"services\": {}, \"other\": 1}",
            b"[]",
        ];
        for bytes in cases {
            std::fs::write(&path, bytes).expect("write");
            let e = Table::load(&path).expect_err("refused");
            assert!(e.to_string().contains("ids.json"), "{e}");
        }
        std::fs::write(&path, vec![b' '; (MAX_FILE + 10) as usize]).expect("write");
        let e = Table::load(&path).expect_err("too big");
        assert!(e.to_string().contains("larger"), "{e}");
    }
}
