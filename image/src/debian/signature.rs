//! Checking the OpenPGP clear signature on a Debian `InRelease` file.
//!
//! The archive signs each `InRelease` with several keys (the automatic signing keys of the
//! current and the next release, and the stable release key). An index is accepted when at least
//! one signature verifies against a key in the [`Keyring`]; signatures by keys we do not know are
//! ignored, as apt does. Only the text that was signed is handed back, so nothing outside the
//! signature can reach the parser.

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};

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

    /// Verifies the clear-signed `message` (named `what` in errors) and returns the signed text,
    /// with `\n` line endings.
    pub fn verify_clearsigned(&self, message: &[u8], what: &str) -> Result<String, Error> {
        let text = String::from_utf8_lossy(message);
        let (msg, _headers) =
            CleartextSignedMessage::from_string(&text).map_err(|source| Error::NotSigned {
                what: what.to_string(),
                source,
            })?;
        let signed = msg.signed_text();
        let good = msg.signatures().iter().any(|sig| {
            self.keys.iter().any(|key| {
                sig.verify(&key.primary_key, signed.as_bytes()).is_ok()
                    || key
                        .public_subkeys
                        .iter()
                        .any(|sub| sig.verify(&sub.key, signed.as_bytes()).is_ok())
            })
        });
        if !good {
            return Err(Error::BadSignature {
                what: what.to_string(),
                count: msg.signatures().len(),
            });
        }
        Ok(signed.replace("\r\n", "\n"))
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
pub(crate) mod tests {
    use super::*;
    use pgp::composed::{KeyType, SecretKeyParamsBuilder, SignedSecretKey};
    use pgp::types::Password;

    /// A fresh Ed25519 signing key for tests.
    pub(crate) fn test_key() -> SignedSecretKey {
        let params = SecretKeyParamsBuilder::default()
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id("baton test <test@baton.invalid>".into())
            .build()
            .unwrap();
        let mut rng = rand::thread_rng();
        params
            .generate(&mut rng)
            .unwrap()
            .sign(&mut rng, &Password::empty())
            .unwrap()
    }

    /// `text` clear-signed by `key`.
    pub(crate) fn clearsign(key: &SignedSecretKey, text: &str) -> String {
        let msg = CleartextSignedMessage::sign(
            rand::thread_rng(),
            text,
            &key.primary_key,
            &Password::empty(),
        )
        .unwrap();
        msg.to_armored_string(Default::default()).unwrap()
    }

    #[test]
    fn embedded_debian_keys_parse_and_self_verify() {
        let ring = Keyring::debian().unwrap();
        assert_eq!(ring.len(), 4);
        // The automatic signing keys sign with their (bound) subkeys.
        let subkeys: usize = ring.keys.iter().map(|k| k.public_subkeys.len()).sum();
        assert!(subkeys >= 2, "subkeys with valid bindings: {subkeys}");
    }

    #[test]
    fn accepts_good_signature_and_returns_signed_text_only() {
        let key = test_key();
        let ring = Keyring::from_keys(vec![SignedPublicKey::from(key.clone())]);
        let text = "Origin: Debian\nSuite: test\n-dash line\n";
        let signed = clearsign(&key, text);
        let got = ring.verify_clearsigned(signed.as_bytes(), "test").unwrap();
        assert_eq!(got.trim_end(), text.trim_end());
    }

    #[test]
    fn rejects_tampered_text_and_unknown_keys() {
        let key = test_key();
        let signed = clearsign(&key, "Suite: test\nSHA256:\n aa 1 main/x\n");
        let tampered = signed.replace(" aa 1 ", " bb 1 ");
        let ring = Keyring::from_keys(vec![SignedPublicKey::from(key.clone())]);
        let err = ring
            .verify_clearsigned(tampered.as_bytes(), "http://x/InRelease")
            .unwrap_err();
        assert!(matches!(err, Error::BadSignature { count: 1, .. }), "{err}");
        assert!(err.to_string().contains("http://x/InRelease"));

        let other = Keyring::from_keys(vec![SignedPublicKey::from(test_key())]);
        assert!(other.verify_clearsigned(signed.as_bytes(), "x").is_err());
        let debian = Keyring::debian().unwrap();
        assert!(debian.verify_clearsigned(signed.as_bytes(), "x").is_err());
    }

    #[test]
    fn rejects_unsigned_text() {
        let ring = Keyring::debian().unwrap();
        let err = ring
            .verify_clearsigned(b"Origin: Debian\n", "plain")
            .unwrap_err();
        assert!(matches!(err, Error::NotSigned { .. }), "{err}");
    }

    #[test]
    fn verifies_a_real_debian_inrelease() {
        // bookworm's InRelease as downloaded from deb.debian.org on 2026-07-11.
        let bytes = include_bytes!("testdata/bookworm-InRelease");
        let ring = Keyring::debian().unwrap();
        let text = ring.verify_clearsigned(bytes, "InRelease").unwrap();
        assert!(text.starts_with("Origin: Debian\n"));
        assert!(!text.contains("BEGIN PGP"));
        // One flipped byte inside the signed text breaks it.
        let mut bad = bytes.to_vec();
        let at = bad.windows(8).position(|w| w == b"bookworm").unwrap();
        bad[at] = b'c';
        assert!(ring.verify_clearsigned(&bad, "InRelease").is_err());
    }
}
