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
pub(crate) mod tests {
    use super::*;
    use pgp::composed::{KeyType, SecretKeyParamsBuilder, SignedSecretKey};
    use pgp::types::{KeyDetails, Password, PublicKeyTrait, SecretKeyTrait};

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

    /// A fresh Ed25519 signing key created at `created` whose self-signature says it expires
    /// `valid_for` later.
    pub(crate) fn test_key_expiring(
        created: DateTime<Utc>,
        valid_for: chrono::Duration,
    ) -> SignedSecretKey {
        use chrono::SubsecRound;
        use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
        use pgp::types::Tag;

        let created = created.trunc_subsecs(0);
        let params = SecretKeyParamsBuilder::default()
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .created_at(created)
            .primary_user_id("baton expiring test <test@baton.invalid>".into())
            .build()
            .unwrap();
        let mut rng = rand::thread_rng();
        let mut key = params
            .generate(&mut rng)
            .unwrap()
            .sign(&mut rng, &Password::empty())
            .unwrap();
        let mut config = SignatureConfig::v4(
            SignatureType::CertPositive,
            key.primary_key.algorithm(),
            key.primary_key.hash_alg(),
        );
        config.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(created)).unwrap(),
            Subpacket::regular(SubpacketData::KeyExpirationTime(valid_for)).unwrap(),
            Subpacket::regular(SubpacketData::IssuerFingerprint(
                key.primary_key.fingerprint(),
            ))
            .unwrap(),
        ];
        let user = key.details.users[0].id.clone();
        let sig = config
            .sign_certification(
                &key.primary_key,
                key.primary_key.public_key(),
                &Password::empty(),
                Tag::UserId,
                &user,
            )
            .unwrap();
        key.details.users[0].signatures = vec![sig];
        key
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
    fn a_signature_by_an_expired_key_is_refused_naming_the_key_and_times() {
        let now = date::now();
        let day = chrono::Duration::days(1);
        // Created ten days ago, expired nine days ago: expired when it signed (now).
        let key = test_key_expiring(now - day * 10, day);
        let ring = Keyring::from_keys(vec![SignedPublicKey::from(key.clone())]);
        let signed = clearsign(&key, "Suite: test\n");
        let err = ring
            .verify_clearsigned(signed.as_bytes(), "http://x/InRelease")
            .unwrap_err();
        assert!(matches!(err, Error::Unusable { .. }), "{err}");
        let msg = err.to_string();
        let expired_at = date::format(&(*key.primary_key.public_key().created_at() + day));
        assert!(
            msg.contains("http://x/InRelease")
                && msg.contains("expired at")
                && msg.contains(&expired_at),
            "{msg}"
        );

        // Valid for a year: accepted now, refused once the year is over, though it was valid
        // when it signed (an old index must not outlive its key).
        let key = test_key_expiring(now - day, day * 365);
        let ring = Keyring::from_keys(vec![SignedPublicKey::from(key.clone())]);
        let signed = clearsign(&key, "Suite: test\n");
        ring.verify_clearsigned(signed.as_bytes(), "x").unwrap();
        let err = ring
            .verify_clearsigned_at(signed.as_bytes(), "x", now + day * 400)
            .unwrap_err();
        assert!(matches!(err, Error::Unusable { .. }), "{err}");
    }

    #[test]
    fn a_signature_from_the_future_is_refused() {
        let key = test_key();
        let ring = Keyring::from_keys(vec![SignedPublicKey::from(key.clone())]);
        let signed = clearsign(&key, "Suite: test\n");
        let now = date::now();
        let early = now - date::FUTURE_ALLOWANCE - chrono::Duration::minutes(1);
        let err = ring
            .verify_clearsigned_at(signed.as_bytes(), "x", early)
            .unwrap_err();
        assert!(
            matches!(err, Error::Unusable { .. }) && err.to_string().contains("in the future"),
            "{err}"
        );
        // A clock a minute behind is within the allowance.
        ring.verify_clearsigned_at(signed.as_bytes(), "x", now - chrono::Duration::minutes(1))
            .unwrap();
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
        // Long after Debian's signing keys expire, the same index is refused.
        let late = date::now() + chrono::Duration::days(365 * 30);
        let err = ring
            .verify_clearsigned_at(bytes, "InRelease", late)
            .unwrap_err();
        assert!(matches!(err, Error::Unusable { .. }), "{err}");
        // One flipped byte inside the signed text breaks it.
        let mut bad = bytes.to_vec();
        let at = bad.windows(8).position(|w| w == b"bookworm").unwrap();
        bad[at] = b'c';
        assert!(ring.verify_clearsigned(&bad, "InRelease").is_err());
    }
}
