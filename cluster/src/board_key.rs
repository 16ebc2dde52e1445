//! A board's own key pair: Ed25519, generated on the board, kept on its data partition.
//!
//! The cluster key lets a board take part; the board key says *which* board is speaking. Every
//! board signs its published gossip state (and so its subnet claim and mesh key, which travel in
//! it) with its own key, and the other boards bind its name to that key on first sight
//! ([`crate::gossip::bindings`]). A holder of the cluster key who lacks a board's key can then
//! still join under a name of its own, but it cannot publish state in another board's name.
//!
//! The key file is text, so that a person can see what it is:
//! ```text
//! baton board key v1
//! seed <64 hex digits>
//! since <unix ms when the key was made>
//! ```
//! `since` is the time of the board's claim on its name: when two keys claim one name while
//! neither binding has settled, the earlier claim wins.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::TryRngCore;

/// First line of a key file.
const HEADER: &str = "baton board key v1";
/// Longest key file read (the real one is under 120 bytes).
pub const MAX_FILE_BYTES: usize = 512;

/// Why a key file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// Longer than any key file.
    #[error("the board key file is {0} bytes, more than the {MAX_FILE_BYTES} a key file takes")]
    TooLarge(usize),
    /// Not the format above; names the line.
    #[error("the board key file is not a baton board key: {0}")]
    Format(String),
}

/// Why no key could be made.
#[derive(Debug, thiserror::Error)]
#[error("no randomness for a board key: {0}")]
pub struct NoRandomness(String);

/// A board's signing key and the time it claimed its name.
#[derive(Clone)]
pub struct BoardKey {
    signing: SigningKey,
    since_ms: u64,
}

impl std::fmt::Debug for BoardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BoardKey({}, since {})",
            fingerprint(&self.public()),
            self.since_ms
        )
    }
}

impl BoardKey {
    /// A new key from the operating system's randomness, claiming its name at `now_ms`.
    pub fn generate(now_ms: u64) -> Result<BoardKey, NoRandomness> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| NoRandomness(e.to_string()))?;
        Ok(Self::from_seed(seed, now_ms))
    }

    /// The key made from `seed` (tests and the file format).
    pub fn from_seed(seed: [u8; 32], since_ms: u64) -> BoardKey {
        BoardKey {
            signing: SigningKey::from_bytes(&seed),
            since_ms,
        }
    }

    /// The public half, as it travels.
    pub fn public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// When the board claimed its name with this key.
    pub fn since_ms(&self) -> u64 {
        self.since_ms
    }

    /// The Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The key file's text.
    pub fn to_file(&self) -> String {
        format!(
            "{HEADER}\nseed {}\nsince {}\n",
            hex(&self.signing.to_bytes()),
            self.since_ms
        )
    }

    /// Reads a key file written by [`BoardKey::to_file`].
    pub fn from_file(bytes: &[u8]) -> Result<BoardKey, KeyFileError> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(KeyFileError::TooLarge(bytes.len()));
        }
        let bad = |what: &str| KeyFileError::Format(what.to_owned());
        let text = std::str::from_utf8(bytes).map_err(|_| bad("it is not UTF-8"))?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(bad(&format!("the first line is not {HEADER:?}")));
        }
        let seed = lines
            .next()
            .and_then(|l| l.strip_prefix("seed "))
            .and_then(unhex32)
            .ok_or_else(|| bad("the second line is not `seed` and 64 hex digits"))?;
        let since_ms = lines
            .next()
            .and_then(|l| l.strip_prefix("since "))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("the third line is not `since` and a number"))?;
        if lines.any(|l| !l.trim().is_empty()) {
            return Err(bad("it has lines after `since`"));
        }
        Ok(Self::from_seed(seed, since_ms))
    }
}

/// Whether `signature` is `key`'s signature of `message` (strict verification: no malleable
/// signatures, no weak keys).
pub fn verify(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(key) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(message, &signature).is_ok()
}

/// A short printable name for a public key: its first 8 bytes in hex.
pub fn fingerprint(key: &[u8; 32]) -> String {
    hex(&key[..8])
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes from 64 hex digits (either case), or `None`.
pub fn unhex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_round_trips_and_signs_what_verifies() {
        let key = BoardKey::generate(1_700_000_000_000).expect("key");
        let again = BoardKey::from_file(key.to_file().as_bytes()).expect("reads");
        assert_eq!(again.public(), key.public());
        assert_eq!(again.since_ms(), 1_700_000_000_000);
        let sig = key.sign(b"hello");
        assert!(verify(&again.public(), b"hello", &sig));
        assert!(!verify(&again.public(), b"hellO", &sig));
        let other = BoardKey::generate(0).expect("key");
        assert!(!verify(&other.public(), b"hello", &sig));
        assert_ne!(other.public(), key.public(), "keys are random");
    }

    #[test]
    fn bad_key_files_name_what_is_wrong() {
        let key = BoardKey::from_seed([7; 32], 5).to_file();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![b'x'; MAX_FILE_BYTES + 1], "more than"),
            (vec![0xff, 0xfe], "UTF-8"),
            (b"baton board key v2\n".to_vec(), "first line"),
            (
                key.replace("seed 07", "seed zz").into_bytes(),
                "second line",
            ),
            (
                key.replace("since 5", "since -1").into_bytes(),
                "third line",
            ),
            (format!("{key}more\n").into_bytes(), "after"),
        ];
        for (bytes, want) in cases {
            let err = BoardKey::from_file(&bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{err} lacks {want:?}");
        }
        assert!(BoardKey::from_file(format!("{key}\n\n").as_bytes()).is_ok());
    }

    #[test]
    fn garbage_keys_and_signatures_do_not_verify() {
        assert!(!verify(&[0xff; 32], b"m", &[0; 64]));
        assert!(
            !verify(&[0; 32], b"m", &[0; 64]),
            "the identity point is weak"
        );
        assert_eq!(unhex32(&"Ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(unhex32(&"ab".repeat(31)), None);
        assert_eq!(unhex32(&"é".repeat(32)), None);
    }
}
