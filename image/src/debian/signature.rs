//! Checking the OpenPGP clear signature on a Debian `InRelease` file.
//!
//! The archive signs each `InRelease` with several keys (the automatic signing keys of the
//! current and the next release, and the stable release key). An index is accepted when at least
//! one signature verifies against a key in the [`Keyring`]; signatures by keys we do not know are
//! ignored, as apt does. A signature only counts if the key (and subkey) that made it was
//! neither expired nor revoked, and the signature itself was not made in the future nor has
//! expired (see `key_validity.rs`). Only the text that was signed is handed back, so nothing
//! outside the signature can reach the parser.

use chrono::{DateTime, Utc};
use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};

use super::{date, key_validity};

/// Errors from signature checking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A keyring could not be parsed.
    #[error("cannot read the OpenPGP keyring {name}: {source}")]
    Keyring {
        /// Which keyring.
        name: String,
        /// What went wrong.
        #[source]
        source: pgp::errors::Error,
    },
    /// The file is not a clear-signed OpenPGP message.
    #[error("{what} is not a clear-signed OpenPGP message: {source}")]
    NotSigned {
        /// What was being checked (usually a URL).
        what: String,
        /// What went wrong.
        #[source]
        source: pgp::errors::Error,
    },
    /// None of the signatures verified against a trusted key.
    #[error(
        "{what}: none of its {count} signature(s) verifies against the trusted Debian archive keys \
         (a tampered or truncated file, or a mirror signed with keys this baton does not know)"
    )]
    BadSignature {
        /// What was being checked.
        what: String,
        /// How many signatures the message carried.
        count: usize,
    },
    /// Signatures verified against trusted keys, but none of them at a time the key was valid.
    #[error(
        "{what}: no signature by a currently valid trusted key ({}); an old index signed by a \
         key since expired or revoked is not accepted",
        reasons.join("; ")
    )]
    Unusable {
        /// What was being checked.
        what: String,
        /// Why each verifying signature was not accepted.
        reasons: Vec<String>,
    },
}

/// The embedded Debian archive keys (see image/keys/README.md).
const DEBIAN_KEYS: &[(&str, &[u8])] = &[
    (
        "debian-archive-bookworm-automatic.gpg",
        include_bytes!("../../keys/debian-archive-bookworm-automatic.gpg"),
    ),
    (
        "debian-archive-bookworm-stable.gpg",
        include_bytes!("../../keys/debian-archive-bookworm-stable.gpg"),
    ),
    (
        "debian-archive-trixie-automatic.gpg",
        include_bytes!("../../keys/debian-archive-trixie-automatic.gpg"),
    ),
    (
        "debian-archive-trixie-stable.gpg",
        include_bytes!("../../keys/debian-archive-trixie-stable.gpg"),
    ),
];

/// A set of trusted public keys (primary keys and their subkeys).
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

impl Keyring {
    /// The Debian archive signing keys embedded in this binary.
    pub fn debian() -> Result<Self, Error> {
        let mut keys = Vec::new();
        for (name, bytes) in DEBIAN_KEYS {
            keys.extend(parse_binary(name, bytes)?);
        }
        Ok(Self::from_keys(keys))
    }

    /// A keyring of the given keys (tests, private mirrors). Subkeys whose binding signature
    /// by their primary key does not verify are dropped.
    pub fn from_keys(mut keys: Vec<SignedPublicKey>) -> Self {
        for key in &mut keys {
            let primary = key.primary_key.clone();
            key.public_subkeys
                .retain(|sub| sub.verify(&primary).is_ok());
        }
        Self { keys }
    }

    /// Number of primary keys in the ring.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies the clear-signed `message` (named `what` in errors) now and returns the signed
    /// text, with `\n` line endings.
    pub fn verify_clearsigned(&self, message: &[u8], what: &str) -> Result<String, Error> {
        self.verify_clearsigned_at(message, what, date::now())
    }

    /// [`Self::verify_clearsigned`] with the key and signature times checked at `now`.
    pub fn verify_clearsigned_at(
        &self,
        message: &[u8],
        what: &str,
        now: DateTime<Utc>,
    ) -> Result<String, Error> {
        let text = String::from_utf8_lossy(message);
        let (msg, _headers) =
            CleartextSignedMessage::from_string(&text).map_err(|source| Error::NotSigned {
                what: what.to_string(),
                source,
            })?;
        let signed = msg.signed_text();
        let mut reasons = Vec::new();
        for sig in msg.signatures() {
            for key in &self.keys {
                let signers = std::iter::once(None).chain(key.public_subkeys.iter().map(Some));
                for sub in signers {
                    let verified = match sub {
                        None => sig.verify(&key.primary_key, signed.as_bytes()),
                        Some(s) => sig.verify(&s.key, signed.as_bytes()),
                    };
                    if verified.is_err() {
                        continue;
                    }
                    match key_validity::check(sig, key, sub, now) {
                        Ok(()) => return Ok(signed.replace("\r\n", "\n")),
                        Err(reason) => reasons.push(reason),
                    }
                }
            }
        }
        if reasons.is_empty() {
            Err(Error::BadSignature {
                what: what.to_string(),
                count: msg.signatures().len(),
            })
        } else {
            Err(Error::Unusable {
                what: what.to_string(),
                reasons,
            })
        }
    }
}

fn parse_binary(name: &str, bytes: &[u8]) -> Result<Vec<SignedPublicKey>, Error> {
    let keyring_err = |source| Error::Keyring {
        name: name.to_string(),
        source,
    };
    SignedPublicKey::from_bytes_many(bytes)
        .map_err(keyring_err)?
        .map(|k| k.map_err(keyring_err))
        .collect()
}

#[cfg(test)]
#[path = "signature_tests.rs"]
pub(crate) mod tests;
