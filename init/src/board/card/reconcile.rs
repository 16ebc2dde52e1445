//! The boot-time pass over the card's spec files: each gets its [`Verdict`] and it is carried
//! out; what was repaired, taken or could not be done is returned for the console and the API.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use baton_api::CardRepair;

use super::decide::{decide, fingerprint, hash, CardFile, Known, Verdict};
use super::{read_bounded, save_manifest, write_card, write_truth, CardStore, Manifest};

/// What the pass did.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// The `services/` files to load, as (file name, text): the card's after repairs, and the
    /// data partition's copy where the card could not be written.
    pub files: Vec<(String, String)>,
    /// Files rewritten (or removed) from the data partition, with why.
    pub repairs: Vec<CardRepair>,
    /// What else happened, one line each (edits taken, deletions, problems).
    pub notes: Vec<String>,
}

/// Stale temporary files of an interrupted write end like this.
const TMP_SUFFIX: &str = ".toml.tmp";

/// The card's `services/` directory: spec files by service name, other files as they are.
struct CardDir {
    specs: BTreeMap<String, CardFile>,
    others: Vec<(String, String)>,
}

/// Reads the card directory. A directory that cannot be listed is moved aside (and a fresh
/// one made) so the specs can be written back; its error is returned.
fn read_card(store: &CardStore, notes: &mut Vec<String>) -> Result<CardDir, String> {
    let mut dir = CardDir {
        specs: BTreeMap::new(),
        others: Vec::new(),
    };
    let entries = match std::fs::read_dir(&store.card) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(dir),
        Err(e) => return Err(set_aside(store, e)),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => return Err(set_aside(store, e)),
        };
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.ends_with(TMP_SUFFIX) && store.data.is_some() {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => notes.push(format!(
                    "services/{file}: removed (left by an interrupted write)"
                )),
                Err(e) => notes.push(format!("services/{file}: cannot be removed: {e}")),
            }
            continue;
        }
        let name = file
            .strip_suffix(".toml")
            .filter(|n| !n.starts_with('.') && baton_spec::service::is_service_name(n));
        match (name, read_bounded(&entry.path())) {
            (Some(name), Ok(bytes)) => {
                dir.specs.insert(name.to_string(), CardFile::Bytes(bytes));
            }
            (Some(name), Err(e)) => {
                dir.specs
                    .insert(name.to_string(), CardFile::Unreadable(e.to_string()));
            }
            (None, Ok(bytes)) => dir
                .others
                .push((file, String::from_utf8_lossy(&bytes).into_owned())),
            (None, Err(e)) => notes.push(format!("services/{file}: cannot be read: {e}")),
        }
    }
    Ok(dir)
}

/// Moves an unreadable card directory aside and makes a fresh one; the message says what.
fn set_aside(store: &CardStore, error: io::Error) -> String {
    let aside = store.card.with_extension("damaged");
    let _ = std::fs::remove_dir_all(&aside);
    let moved = std::fs::rename(&store.card, &aside).and_then(|()| {
        std::fs::create_dir_all(&store.card)?;
        super::persist::sync_file_system(&store.card)
    });
    match moved {
        Ok(()) => format!(
            "the services folder cannot be read ({error}); moved to {} and made anew",
            aside.display()
        ),
        Err(e) => format!("the services folder cannot be read ({error}), nor moved aside ({e})"),
    }
}

/// The pass (the store's lock held by the caller).
pub(super) fn run(store: &CardStore, manifest: &mut Manifest) -> Reconciled {
    let mut out = Reconciled::default();
    let Some(data) = &store.data else {
        // The card is the only copy: read it as it is.
        if let Ok(dir) = read_card(store, &mut out.notes) {
            for (name, file) in dir.specs {
                if let CardFile::Bytes(b) = file {
                    let text = String::from_utf8_lossy(&b).into_owned();
                    out.files.push((format!("{name}.toml"), text));
                }
            }
            out.files.extend(dir.others);
        }
        out.files.sort();
        return out;
    };
    let (card, unreadable_dir) = match read_card(store, &mut out.notes) {
        Ok(dir) => (dir, None),
        Err(why) => {
            out.notes.push(format!("services/: {why}"));
            let empty = CardDir {
                specs: BTreeMap::new(),
                others: Vec::new(),
            };
            (empty, Some(why))
        }
    };
    let mut names: BTreeSet<String> = card.specs.keys().cloned().collect();
    names.extend(manifest.written.keys().cloned());
    names.extend(manifest.pending.keys().cloned());
    names.extend(truth_names(&data.join("specs")));
    let before = manifest.clone();
    for name in names {
        let truth = store.truth(&name);
        let file = match (card.specs.get(&name), &unreadable_dir) {
            (Some(file), _) => file.clone(),
            (None, Some(why)) if truth.is_some() => CardFile::Unreadable(why.clone()),
            (None, _) => CardFile::Missing,
        };
        let known = Known {
            written: manifest.written.get(&name).map(String::as_str),
            pending: manifest.pending.contains_key(&name),
            seen: manifest.seen.get(&name).map(String::as_str),
            truth: truth.as_deref(),
        };
        let verdict = decide(&file, known);
        store
            .at_boot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), fingerprint(&file));
        carry_out(store, manifest, &mut out, &name, file, truth, verdict);
    }
    out.files.extend(card.others);
    out.files.sort();
    if *manifest != before {
        let path = data.join("manifest.json");
        if let Err(e) = save_manifest(&path, manifest) {
            out.notes
                .push(format!("{}: cannot be saved: {e}", path.display()));
        }
    }
    out
}

/// Carries out `verdict` for service `name` whose card file is `file`.
fn carry_out(
    store: &CardStore,
    manifest: &mut Manifest,
    out: &mut Reconciled,
    name: &str,
    file: CardFile,
    truth: Option<String>,
    verdict: Verdict,
) {
    let spec_file = format!("{name}.toml");
    let shown = format!("services/{spec_file}");
    let settle = |manifest: &mut Manifest, text: Option<&str>| {
        manifest.pending.remove(name);
        manifest.seen.remove(name);
        match text {
            Some(t) => manifest
                .written
                .insert(name.to_string(), hash(t.as_bytes())),
            None => manifest.written.remove(name),
        };
    };
    match verdict {
        Verdict::Fine => {
            if manifest.pending.contains_key(name) {
                settle(manifest, truth.as_deref());
            }
            if let CardFile::Bytes(b) = file {
                out.files
                    .push((spec_file, String::from_utf8_lossy(&b).into_owned()));
            }
        }
        Verdict::Repair(mut reason) => {
            let action = match write_card(&store.card_file(name), truth.as_deref()) {
                Ok(()) => {
                    settle(manifest, truth.as_deref());
                    if truth.is_some() {
                        "rewritten"
                    } else {
                        "removed"
                    }
                }
                Err(e) => {
                    // What the card may hold after the failure: while it holds one of those,
                    // the next boot repairs again; a laptop's change after it is honoured.
                    let seen = store.seen_after_failure(manifest, name);
                    manifest
                        .pending
                        .entry(name.to_string())
                        .or_insert_with(|| truth.as_deref().map(|t| hash(t.as_bytes())));
                    manifest.seen.insert(name.to_string(), seen);
                    reason.push_str(&format!(
                        "; the card cannot be written ({e}): the data partition's copy is used"
                    ));
                    "not rewritten"
                }
            };
            out.notes.push(format!(
                "{shown}: {action} from the data partition: {reason}"
            ));
            out.repairs.push(CardRepair {
                file: shown,
                reason,
            });
            if let Some(t) = truth {
                out.files.push((spec_file, t));
            }
        }
        Verdict::TakeEdit => {
            let CardFile::Bytes(b) = file else { return };
            let text = String::from_utf8_lossy(&b).into_owned();
            let path = store
                .data
                .as_ref()
                .map(|d| d.join("specs").join(&spec_file));
            let kept = path
                .as_deref()
                .map_or(Ok(()), |p| write_truth(p, Some(&text)));
            match kept {
                Ok(()) => {
                    settle(manifest, Some(&text));
                    if truth.is_some() {
                        out.notes
                            .push(format!("{shown}: changed on the card; taken"));
                    }
                }
                Err(e) => out.notes.push(format!(
                    "{shown}: changed on the card, but cannot be kept on the data partition: {e}"
                )),
            }
            out.files.push((spec_file, text));
        }
        Verdict::UserDeleted => {
            let path = store
                .data
                .as_ref()
                .map(|d| d.join("specs").join(&spec_file));
            match path.as_deref().map_or(Ok(()), |p| write_truth(p, None)) {
                Ok(()) => {
                    settle(manifest, None);
                    out.notes
                        .push(format!("{shown}: removed from the card; deleted"));
                }
                Err(e) => out.notes.push(format!(
                    "{shown}: removed from the card, but cannot be removed from the data partition: {e}"
                )),
            }
        }
        Verdict::Foreign => match file {
            CardFile::Bytes(b) => out
                .files
                .push((spec_file, String::from_utf8_lossy(&b).into_owned())),
            CardFile::Unreadable(e) => out.notes.push(format!("{shown}: cannot be read: {e}")),
            CardFile::Missing => {}
        },
    }
}

/// The service names with a spec in the store's `specs` directory.
fn truth_names(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let name = file.strip_suffix(".toml")?;
            baton_spec::service::is_service_name(name).then(|| name.to_string())
        })
        .collect()
}
