//! The identity provider's documents as the front door last fetched them (its key set from
//! `jwks_url`, its discovery document), kept on the data partition so that valid tokens pass
//! while the provider is down: after a restart of the front door and after a reboot, as long as
//! one fetch ever went well (docs/design/front-door.md section 5.2).
//!
//! The front door sends each document it fetched (`Fetched`); it faces the LAN, so what it
//! sends is checked here as the front door checks it (size, JSON, at most 32 keys, the issuer
//! of a discovery document) and must come from the configured URL. A file read back at boot is
//! checked the same way; a file that does not pass is ignored with a note naming it. Writes go
//! through [`persist::write_atomic`], only when the document changed, and at most once a
//! minute per document, so a front door sending in a loop cannot wear the card.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton_frontdoor::config::model::OidcSettings;
use baton_frontdoor::control::protocol::{Fetched, MAX_FETCHED_BODY};
use baton_frontdoor::identity::Keys;
use baton_frontdoor::idp::discovery::{self, Discovery};
use serde::{Deserialize, Serialize};

use crate::board::persist;

/// The key set's file in the front door's data directory.
pub const JWKS_FILE: &str = "idp-jwks.json";
/// The discovery document's file.
pub const DISCOVERY_FILE: &str = "idp-discovery.json";
/// Bytes of a cache file read back: the body and its URL, escaped as JSON.
const MAX_FILE: u64 = 4 * MAX_FETCHED_BODY as u64;
/// Least time between two writes of one document.
pub const WRITE_GAP: Duration = Duration::from_secs(60);

/// One cached document, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Where it was fetched from.
    pub url: String,
    /// Its body, as fetched.
    pub body: String,
}

/// What the cache holds and when it last wrote.
#[derive(Debug, Default)]
pub struct Cache {
    /// The key set.
    pub jwks: Option<Entry>,
    /// The discovery document, read.
    pub discovery: Option<(Entry, Discovery)>,
    /// When each document was last written.
    written: [Option<Instant>; 2],
    /// Each document kept but not written yet (it came within a minute of the last write).
    pending: [bool; 2],
}

/// Where the documents are expected from, per `[front_door.oidc]`.
pub struct Expect<'a> {
    /// The issuer.
    pub issuer: &'a str,
    /// `jwks_url`.
    pub jwks_url: Option<&'a str>,
}

impl Cache {
    /// The cache in `dir`, each file checked; notes name the files not used and why.
    pub fn load(dir: &Path, expect: &Expect<'_>) -> (Cache, Vec<String>) {
        let mut cache = Cache::default();
        let mut notes = Vec::new();
        for kind in [Fetched::Jwks, Fetched::Discovery] {
            let path = dir.join(file(kind));
            let read = persist::read_bounded(&path, MAX_FILE).and_then(|bytes| match bytes {
                None => Ok(None),
                Some(bytes) => serde_json::from_slice::<Entry>(&bytes)
                    .map(Some)
                    .map_err(|e| format!("not a cache entry ({e})")),
            });
            let entry = match read {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(e) => {
                    notes.push(format!("{} is not used: {e}", path.display()));
                    continue;
                }
            };
            match check(kind, &entry.url, &entry.body, expect) {
                Ok(found) => cache.put(kind, entry, found),
                Err(e) => notes.push(format!("{} is not used: {e}", path.display())),
            }
        }
        (cache, notes)
    }

    fn put(&mut self, kind: Fetched, entry: Entry, found: Option<Discovery>) {
        match (kind, found) {
            (Fetched::Jwks, _) => self.jwks = Some(entry),
            (Fetched::Discovery, Some(found)) => self.discovery = Some((entry, found)),
            (Fetched::Discovery, None) => {}
        }
    }

    /// Takes a document the front door fetched: checked, kept, and written to `dir` when it
    /// changed and the last write of it is a minute old (otherwise written with a later one).
    /// The error says why it was refused or not written.
    pub fn fetched(
        &mut self,
        dir: &Path,
        expect: &Expect<'_>,
        kind: Fetched,
        url: String,
        body: String,
    ) -> Result<(), String> {
        match self.take(dir, expect, kind, url, body)? {
            Some((path, bytes)) => write(&path, &bytes),
            None => Ok(()),
        }
    }

    /// [`Self::fetched`] without the write: the file and bytes to write now, if any, for a
    /// caller that writes them off its own thread (a write syncs the card).
    pub fn take(
        &mut self,
        dir: &Path,
        expect: &Expect<'_>,
        kind: Fetched,
        url: String,
        body: String,
    ) -> Result<Option<(PathBuf, Vec<u8>)>, String> {
        let found = check(kind, &url, &body, expect)?;
        let entry = Entry { url, body };
        let same = match kind {
            Fetched::Jwks => self.jwks.as_ref() == Some(&entry),
            Fetched::Discovery => self.discovery.as_ref().map(|(e, _)| e) == Some(&entry),
        };
        let slot = kind as usize;
        if same && !self.pending[slot] {
            return Ok(None);
        }
        let due = self.written[slot].is_none_or(|at| at.elapsed() >= WRITE_GAP);
        let bytes = serde_json::to_vec(&entry).map_err(|e| e.to_string())?;
        self.put(kind, entry, found);
        if !due {
            self.pending[slot] = true;
            return Ok(None);
        }
        self.written[slot] = Some(Instant::now());
        self.pending[slot] = false;
        Ok(Some((dir.join(file(kind)), bytes)))
    }

    /// Puts the cached documents, the card's `ca` file and what to fetch in `oidc`; notes name
    /// what could not be read.
    pub fn complete(
        &self,
        oidc: &mut OidcSettings,
        spec: &baton_spec::front_door::Oidc,
        card: &Path,
    ) -> Vec<String> {
        let mut notes = Vec::new();
        oidc.jwks_url = spec.jwks_url.clone();
        oidc.jwks_cached = self
            .jwks
            .as_ref()
            .filter(|e| Some(&e.url) == spec.jwks_url.as_ref())
            .map(|e| e.body.clone());
        oidc.discover = spec.client_id.is_some();
        oidc.discovery = self
            .discovery
            .as_ref()
            .filter(|(_, d)| oidc.discover && d.issuer == spec.issuer)
            .map(|(_, d)| d.clone());
        oidc.ca_pem = spec.ca.as_ref().and_then(|file| {
            super::certs::read_text(&card.join(file), super::identity::MAX_CA)
                .map_err(|e| {
                    notes.push(format!(
                        "[front_door.oidc] ca {file}: {e}; only Mozilla's roots are trusted"
                    ))
                })
                .ok()
        });
        notes
    }
}

/// The file of `kind`.
pub fn file(kind: Fetched) -> &'static str {
    match kind {
        Fetched::Jwks => JWKS_FILE,
        Fetched::Discovery => DISCOVERY_FILE,
    }
}

/// The front door's data directory under the data partition's `baton` directory.
pub fn dir(root: &Path) -> PathBuf {
    root.join(persist::DIR.trim_start_matches('/'))
        .join("frontdoor")
}

/// Whether a document fetched from `url` may be kept: from the configured place, within the
/// bounds, and read as the front door reads it.
fn check(
    kind: Fetched,
    url: &str,
    body: &str,
    expect: &Expect<'_>,
) -> Result<Option<Discovery>, String> {
    if body.len() > MAX_FETCHED_BODY {
        return Err(format!("longer than {MAX_FETCHED_BODY} bytes"));
    }
    match kind {
        Fetched::Jwks => {
            if expect.jwks_url != Some(url) {
                return Err(format!("a key set from {url:?}, which is not the jwks_url"));
            }
            let keys = Keys::parse(body).map_err(|e| e.to_string())?;
            if keys.keys.is_empty() {
                return Err("a key set with no usable key".into());
            }
            Ok(None)
        }
        Fetched::Discovery => {
            if url != discovery::url(expect.issuer) {
                return Err(format!(
                    "a discovery document from {url:?}, which is not the issuer's"
                ));
            }
            Discovery::parse(body, expect.issuer).map(Some)
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "idp_cache/manager_tests.rs"]
mod manager_tests;

/// Writes a kept document (atomically, synced).
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    persist::write_atomic(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}
