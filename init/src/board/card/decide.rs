//! What to do with one spec file of the card at boot, from what the card holds and what the data
//! partition knows of it. Pure: [`super::reconcile`] reads the files and carries the verdict out.
//!
//! The board writes a card file in four steps, each durable before the next: an intent (name,
//! hash of the new text) in the manifest, the text in the store on `/data`, the card file, then
//! the manifest's record of what the card holds with the intent cleared. So at boot:
//!
//! - an intent is pending: the write was cut short. The store holds either the old or the new
//!   text (neither was acknowledged yet) and is the truth: the card is made to hold it.
//! - an intent is pending because the card could not be written (a FAT the kernel set
//!   read-only): the board noted what the card may hold then (what it showed, what the boot read
//!   from it, what the board last wrote to it: a FAT set read-only keeps in the page cache
//!   writes it never makes). While the card holds one of those, it is repaired as above; once it
//!   holds anything else, a laptop changed it (repaired the FAT, edited the file) and the rules
//!   below apply, so the laptop's edit is not overwritten.
//! - no intent, the card file is what the board last wrote: nothing to do.
//! - no intent, the file differs and still parses: a laptop edited it; the edit is honoured.
//! - no intent, the file differs and is damaged (not UTF-8, NUL bytes, empty, not TOML): the
//!   board's copy is put back, when it has one.
//! - no intent, the file the board wrote is gone: a laptop deleted it; the deletion is honoured.

use sha2::{Digest as _, Sha256};

/// What the card holds under one spec file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardFile {
    /// No such file.
    Missing,
    /// The file is listed but reading it failed (a damaged directory or cluster chain).
    Unreadable(String),
    /// The file's bytes.
    Bytes(Vec<u8>),
}

/// What the data partition knows of one spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known<'a> {
    /// Hash of what the board last wrote to the card (`None`: it never wrote the file, or
    /// removed it).
    pub written: Option<&'a str>,
    /// A write (or removal) was begun and not finished.
    pub pending: bool,
    /// For a pending write whose card write failed: what the card may have held after the
    /// failure ([`fingerprint`]s separated by spaces).
    pub seen: Option<&'a str>,
    /// The spec text the board holds for it (`None`: none, or deleted).
    pub truth: Option<&'a str>,
}

/// What to do with the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The card and the data partition agree (an intent, if any, is just cleared).
    Fine,
    /// Make the card hold the truth (write it, or remove the file when there is none), and
    /// report it with this reason.
    Repair(String),
    /// A laptop changed the file: its text becomes the truth.
    TakeEdit,
    /// A laptop removed the file the board wrote: the spec is deleted.
    UserDeleted,
    /// Not the board's file and nothing to repair it from: read it as it is.
    Foreign,
}

/// SHA-256 of `bytes`, hex.
pub fn hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A short text that tells card contents apart: `missing`, `unreadable`, or the SHA-256 of
/// the bytes.
pub fn fingerprint(card: &CardFile) -> String {
    match card {
        CardFile::Missing => "missing".to_string(),
        CardFile::Unreadable(_) => "unreadable".to_string(),
        CardFile::Bytes(b) => hash(b),
    }
}

/// Why `bytes` cannot be a spec file someone wrote on purpose, if so: a torn or damaged write
/// leaves no text, zeros, or a cut in the middle of a value. A cut at a line end still parses,
/// which is why an interrupted write is known by its intent, not by this.
pub fn damage(bytes: &[u8]) -> Option<String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Some("it is not UTF-8 text".to_string());
    };
    if text.contains('\0') {
        return Some("it holds NUL bytes".to_string());
    }
    if text.trim().is_empty() {
        return Some("it is empty".to_string());
    }
    match text.parse::<toml::Table>() {
        Ok(_) => None,
        Err(e) => {
            let first = e.message().lines().next().unwrap_or("").to_string();
            Some(format!("it does not parse as TOML ({first})"))
        }
    }
}

/// What the card holds, in words (for the reason of a repair after an interrupted write).
fn describe(card: &CardFile) -> String {
    match card {
        CardFile::Missing => "the file was missing".to_string(),
        CardFile::Unreadable(e) => format!("the file could not be read: {e}"),
        CardFile::Bytes(b) => damage(b).unwrap_or_else(|| "the file held other text".to_string()),
    }
}

/// The verdict for one file.
pub fn decide(card: &CardFile, known: Known<'_>) -> Verdict {
    let now = fingerprint(card);
    let changed_since_seen = known
        .seen
        .is_some_and(|seen| !seen.split(' ').any(|fp| fp == now));
    if known.pending && !changed_since_seen {
        let agrees = match (card, known.truth) {
            (CardFile::Missing, None) => true,
            (CardFile::Bytes(b), Some(t)) => b == t.as_bytes(),
            _ => false,
        };
        if agrees {
            return Verdict::Fine;
        }
        let what = if known.truth.is_some() {
            "write"
        } else {
            "removal"
        };
        return Verdict::Repair(format!(
            "a {what} of it was interrupted ({})",
            describe(card)
        ));
    }
    match card {
        CardFile::Missing => match (known.written, known.truth) {
            (Some(_), _) => Verdict::UserDeleted,
            (None, Some(_)) => Verdict::Repair("it was missing".to_string()),
            (None, None) => Verdict::Fine,
        },
        CardFile::Unreadable(e) if known.truth.is_some() => {
            Verdict::Repair(format!("it could not be read: {e}"))
        }
        CardFile::Unreadable(_) => Verdict::Foreign,
        CardFile::Bytes(b) if known.written == Some(hash(b).as_str()) => Verdict::Fine,
        CardFile::Bytes(b) => match damage(b) {
            Some(why) if known.truth.is_some() => Verdict::Repair(why),
            Some(_) => Verdict::Foreign,
            None => Verdict::TakeEdit,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "name = \"web\"\nimage = \"images/web.tar\"\nenv = { V = \"1\" }\n";
    const NEW: &str = "name = \"web\"\nimage = \"images/web.tar\"\nenv = { V = \"2\" }\n";

    fn bytes(text: &str) -> CardFile {
        CardFile::Bytes(text.as_bytes().to_vec())
    }

    fn known<'a>(written: Option<&'a str>, pending: bool, truth: Option<&'a str>) -> Known<'a> {
        Known {
            written,
            pending,
            seen: None,
            truth,
        }
    }

    fn is_repair(v: &Verdict) -> bool {
        matches!(v, Verdict::Repair(_))
    }

    #[test]
    fn the_file_the_board_wrote_is_fine() {
        let h = hash(OLD.as_bytes());
        assert_eq!(
            decide(&bytes(OLD), known(Some(&h), false, Some(OLD))),
            Verdict::Fine
        );
    }

    #[test]
    fn a_torn_write_that_still_parses_is_repaired_because_its_intent_is_pending() {
        // Cut at a line end: valid TOML, yet not what the board was writing.
        let torn = &NEW[..NEW.find("env").unwrap()];
        assert_eq!(damage(torn.as_bytes()), None);
        let h = hash(OLD.as_bytes());
        let v = decide(&bytes(torn), known(Some(&h), true, Some(NEW)));
        assert!(is_repair(&v), "{v:?}");
        // Without the intent the same file would be taken for a laptop's edit.
        assert_eq!(
            decide(&bytes(torn), known(Some(&h), false, Some(OLD))),
            Verdict::TakeEdit
        );
    }

    #[test]
    fn an_interrupted_write_is_settled_by_the_store_whichever_text_it_holds() {
        let h = hash(OLD.as_bytes());
        // The store was written, the card not yet: the card gets the new text.
        let v = decide(&bytes(OLD), known(Some(&h), true, Some(NEW)));
        assert!(is_repair(&v), "{v:?}");
        // The card write completed, only the manifest was not updated: nothing to repair.
        assert_eq!(
            decide(&bytes(NEW), known(Some(&h), true, Some(NEW))),
            Verdict::Fine
        );
        // The intent was recorded and nothing else: the old text stays.
        assert_eq!(
            decide(&bytes(OLD), known(Some(&h), true, Some(OLD))),
            Verdict::Fine
        );
    }

    #[test]
    fn a_truncated_or_zeroed_file_is_repaired_even_without_an_intent() {
        let h = hash(OLD.as_bytes());
        for damaged in [
            &OLD.as_bytes()[..OLD.len() - 8],
            b"\0\0\0\0\0\0".as_slice(),
            b"".as_slice(),
            b"name = \"w\xffb\"".as_slice(),
        ] {
            let v = decide(
                &CardFile::Bytes(damaged.to_vec()),
                known(Some(&h), false, Some(OLD)),
            );
            assert!(is_repair(&v), "{damaged:?}: {v:?}");
        }
        let v = decide(
            &CardFile::Unreadable("Input/output error".into()),
            known(Some(&h), false, Some(OLD)),
        );
        assert!(is_repair(&v), "{v:?}");
    }

    #[test]
    fn a_laptop_edit_is_honoured() {
        let h = hash(OLD.as_bytes());
        assert_eq!(
            decide(&bytes(NEW), known(Some(&h), false, Some(OLD))),
            Verdict::TakeEdit
        );
        // A file the board never wrote (a freshly flashed card) is taken too.
        assert_eq!(
            decide(&bytes(NEW), known(None, false, None)),
            Verdict::TakeEdit
        );
    }

    #[test]
    fn a_broken_file_the_board_never_held_is_read_as_it_is() {
        assert_eq!(
            decide(&bytes("name = "), known(None, false, None)),
            Verdict::Foreign
        );
        assert_eq!(
            decide(
                &CardFile::Unreadable("EIO".into()),
                known(None, false, None)
            ),
            Verdict::Foreign
        );
    }

    #[test]
    fn a_deletion_on_a_laptop_is_honoured_and_an_interrupted_write_restores_the_file() {
        let h = hash(OLD.as_bytes());
        assert_eq!(
            decide(&CardFile::Missing, known(Some(&h), false, Some(OLD))),
            Verdict::UserDeleted
        );
        let v = decide(&CardFile::Missing, known(Some(&h), true, Some(NEW)));
        assert!(is_repair(&v), "{v:?}");
        // The store has it but the manifest does not: restored.
        let v = decide(&CardFile::Missing, known(None, false, Some(OLD)));
        assert!(is_repair(&v), "{v:?}");
    }

    #[test]
    fn an_interrupted_removal_is_finished() {
        let h = hash(OLD.as_bytes());
        let v = decide(&bytes(OLD), known(Some(&h), true, None));
        assert!(is_repair(&v), "{v:?}");
        assert_eq!(
            decide(&CardFile::Missing, known(Some(&h), true, None)),
            Verdict::Fine
        );
    }

    #[test]
    fn a_card_that_could_not_be_written_is_repaired_until_a_laptop_changes_it() {
        let h = hash(OLD.as_bytes());
        let torn = &NEW[..NEW.find("env").unwrap()];
        let seen = fingerprint(&bytes(torn));
        let with_seen = |seen| Known {
            written: Some(&h),
            pending: true,
            seen: Some(seen),
            truth: Some(NEW),
        };
        // The card still holds what the board saw when its write failed: repaired.
        let v = decide(&bytes(torn), with_seen(&seen));
        assert!(is_repair(&v), "{v:?}");
        // A laptop put its own text there since: taken, not overwritten.
        let edit = "name = \"web\"\nimage = \"images/web.tar\"\nenv = { V = \"3\" }\n";
        assert_eq!(decide(&bytes(edit), with_seen(&seen)), Verdict::TakeEdit);
        // ... or damaged it further: repaired from the board's copy.
        let v = decide(&bytes("\0\0"), with_seen(&seen));
        assert!(is_repair(&v), "{v:?}");
        // ... or removed it: the deletion is honoured.
        assert_eq!(
            decide(&CardFile::Missing, with_seen(&seen)),
            Verdict::UserDeleted
        );
        // The card could not be read then and still cannot: repaired.
        let v = decide(
            &CardFile::Unreadable("EIO".into()),
            with_seen(&fingerprint(&CardFile::Unreadable("EIO".into()))),
        );
        assert!(is_repair(&v), "{v:?}");
    }
}
