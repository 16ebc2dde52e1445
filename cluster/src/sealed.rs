//! Authenticated encryption of cluster datagrams with a key derived from the cluster key.
//!
//! Every gossip datagram is sealed before it leaves the board and opened before anything else reads it,
//! so a board without the cluster key learns nothing (not even member names) and cannot inject anything.
//!
//! Wire format of one datagram:
//! ```text
//! version (1 byte, = 1) | nonce (24 random bytes) | XChaCha20-Poly1305 ciphertext + tag (16 bytes)
//! plaintext = name length (1) | sender name | generation (u64 BE) | counter (u64 BE) | payload
//! ```
//! The version byte is authenticated as associated data. The key is
//! `HKDF-SHA256(ikm = [cluster] key, salt = none, info = "baton gossip v1")`.
//!
//! Replay protection: the sender's name and generation (a number that grows with every start of the
//! board) plus a counter that grows with every datagram travel inside the ciphertext. The receiver keeps,
//! per sender, a 64-datagram sliding window of counters for each of its recent generations: a counter
//! already seen or one that fell behind the window is dropped, and so is an older generation (older
//! than the one the sender signed its state in, see [`replay`], so that a key holder's datagram in a
//! board's name with a higher generation cannot make the board's own ones look stale). A receiver that restarted has no
//! window yet and accepts the first datagram of each sender's current generation; replaying datagrams
//! recorded earlier in that generation can then only repeat stale gossip that the membership protocol
//! itself already tolerates.
//!
//! A generation further ahead than [`crate::plausible::highest_generation`] of the receiver's clock
//! is dropped before it reaches the window: a key holder could otherwise claim a board's name with
//! a generation of `u64::MAX`, which the real board could never overtake.
//!
//! Nothing here panics or allocates more than one datagram's worth on bad input; every drop is
//! counted in [`DropCounts`].

mod replay;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;

/// Minimum length of the cluster key text (as in `spec::cluster::MIN_KEY_LEN`).
pub const MIN_KEY_TEXT_LEN: usize = 32;
/// Largest datagram this module produces or accepts (fits an Ethernet MTU without fragmentation).
pub const MAX_DATAGRAM: usize = 1472;
/// Longest sender name.
pub const MAX_NAME_LEN: usize = 63;
/// Context string of the key derivation; changing it changes every key.
const KDF_INFO: &[u8] = b"baton gossip v1";
/// Format version, the first byte of every datagram.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Fixed part of the sealed header inside the ciphertext: name length, generation, counter.
const INNER_FIXED: usize = 1 + 8 + 8;
/// Bytes a datagram adds to its payload, not counting the sender name.
pub const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN + INNER_FIXED;
#[cfg(test)]
use replay::{MAX_TRACKED_SENDERS, WINDOW};

/// What went wrong while setting up or sealing.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The cluster key text is shorter than [`MIN_KEY_TEXT_LEN`].
    #[error("cluster key is {0} characters long, it needs at least {MIN_KEY_TEXT_LEN}")]
    KeyTooShort(usize),
    /// A sender name is empty or longer than [`MAX_NAME_LEN`] bytes.
    #[error("node name {0:?} must be 1 to {MAX_NAME_LEN} bytes long")]
    BadName(String),
    /// The payload does not fit one datagram.
    #[error("payload of {len} bytes does not fit a sealed datagram from {name:?} (at most {max})")]
    TooLarge {
        /// Sender name.
        name: String,
        /// Payload length.
        len: usize,
        /// Largest payload for this sender.
        max: usize,
    },
    /// The cipher refused to encrypt (not expected with valid sizes).
    #[error("encrypting a datagram from {0:?} failed")]
    Encrypt(String),
}

/// Why a received datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Shorter than the smallest sealed datagram, longer than [`MAX_DATAGRAM`], or an unknown version.
    #[error("datagram has a bad size or version")]
    Malformed,
    /// Authentication failed: garbage, tampering, or another cluster key.
    #[error("datagram failed authentication (wrong key or garbage)")]
    Unauthenticated,
    /// Authenticated, but its header is inconsistent.
    #[error("authenticated datagram has a malformed header")]
    BadHeader,
    /// Seen before, or too old for the replay window.
    #[error("datagram was replayed or is outside the replay window")]
    Replayed,
    /// From an older generation of a sender that has since restarted.
    #[error("datagram is from an older generation of its sender")]
    StaleGeneration,
    /// The generation is further ahead of the receiver's clock than a board's can be.
    #[error("datagram claims a generation further ahead than any board's can be")]
    ImplausibleGeneration,
}

/// How many datagrams were dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// [`Rejected::Malformed`].
    pub malformed: u64,
    /// [`Rejected::Unauthenticated`].
    pub unauthenticated: u64,
    /// [`Rejected::BadHeader`].
    pub bad_header: u64,
    /// [`Rejected::Replayed`].
    pub replayed: u64,
    /// [`Rejected::StaleGeneration`].
    pub stale_generation: u64,
    /// [`Rejected::ImplausibleGeneration`].
    pub implausible_generation: u64,
    /// Dropped unopened by the gossip endpoint: their source sent more than its share.
    pub rate_limited: u64,
    /// Membership packets dropped by the gossip endpoint because their sender's identity, in a
    /// name bound to a key, is not the one that key's latest proof vouches for (a key holder's
    /// forgery, or a board that restarted or renewed before its proof arrived).
    pub unvouched_sender: u64,
    /// Membership updates stripped from packets for the same reason (not counted in
    /// [`DropCounts::total`]: the rest of each packet was used).
    pub unvouched_update: u64,
    /// Membership packets that no release of baton sends (trailing bytes, custom broadcasts,
    /// identities that do not decode).
    pub malformed_membership: u64,
    /// Membership updates left out of packets larger than this release sends (from a board of
    /// the previous release, whose limit followed the length of its name), so that the rest of
    /// each packet is used (not counted in [`DropCounts::total`]).
    pub trimmed_update: u64,
    /// State proofs refused because this board holds the most name bindings it keeps
    /// ([`crate::gossip::bindings::MAX_BINDINGS`]): the name stays unbound and its state is shown
    /// unsigned. See [`crate::gossip::GossipHandle::refused_full`] for the names.
    pub bindings_full: u64,
    /// State proofs that do not decode, claim another generation than their datagram, a time or
    /// member generation no board can have, or do not verify (a key holder's, or damaged).
    pub refused_proof: u64,
    /// States that do not decode or claim another generation than their datagram.
    pub refused_state: u64,
    /// Opened datagrams of a kind no release of baton sends.
    pub unknown_kind: u64,
    /// Membership packets that passed the sanitizer and that the membership protocol refused
    /// (addressed to an identity this board no longer has, say).
    pub refused_membership: u64,
}

impl DropCounts {
    /// Every whole datagram or packet dropped, by reason (the names of the fields); the
    /// stripped and trimmed updates are not datagrams and are left out, as in [`Self::total`].
    pub fn by_reason(&self) -> [(&'static str, u64); 14] {
        [
            ("malformed", self.malformed),
            ("unauthenticated", self.unauthenticated),
            ("bad_header", self.bad_header),
            ("replayed", self.replayed),
            ("stale_generation", self.stale_generation),
            ("implausible_generation", self.implausible_generation),
            ("rate_limited", self.rate_limited),
            ("unvouched_sender", self.unvouched_sender),
            ("malformed_membership", self.malformed_membership),
            ("bindings_full", self.bindings_full),
            ("refused_proof", self.refused_proof),
            ("refused_state", self.refused_state),
            ("unknown_kind", self.unknown_kind),
            ("refused_membership", self.refused_membership),
        ]
    }

    /// All drops together.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.unauthenticated
            + self.bad_header
            + self.replayed
            + self.stale_generation
            + self.implausible_generation
            + self.rate_limited
            + self.unvouched_sender
            + self.malformed_membership
            + self.bindings_full
            + self.refused_proof
            + self.refused_state
            + self.unknown_kind
            + self.refused_membership
    }

    fn count(&mut self, drop: Rejected) {
        let slot = match drop {
            Rejected::Malformed => &mut self.malformed,
            Rejected::Unauthenticated => &mut self.unauthenticated,
            Rejected::BadHeader => &mut self.bad_header,
            Rejected::Replayed => &mut self.replayed,
            Rejected::StaleGeneration => &mut self.stale_generation,
            Rejected::ImplausibleGeneration => &mut self.implausible_generation,
        };
        *slot = slot.saturating_add(1);
    }
}

/// The datagram key derived from a cluster key.
#[derive(Clone)]
pub struct SealKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// Derives the datagram key from the `[cluster] key` text.
    pub fn derive(cluster_key: &str) -> Result<Self, SealError> {
        let cipher = cipher_for(cluster_key, KDF_INFO).map_err(SealError::KeyTooShort)?;
        Ok(Self { cipher })
    }
}

/// An XChaCha20-Poly1305 cipher under the key HKDF-SHA256 derives from the `[cluster] key` text
/// for `context` (each use has its own context, so its keys differ from the others'). Fails with
/// the key's length in characters when it is shorter than [`MIN_KEY_TEXT_LEN`].
pub(crate) fn cipher_for(cluster_key: &str, context: &[u8]) -> Result<XChaCha20Poly1305, usize> {
    let chars = cluster_key.chars().count();
    if chars < MIN_KEY_TEXT_LEN {
        return Err(chars);
    }
    let mut okm = [0u8; 32];
    // expand only fails for outputs longer than 255 * 32 bytes; 32 bytes always succeeds.
    let expanded = Hkdf::<Sha256>::new(None, cluster_key.as_bytes()).expand(context, &mut okm);
    debug_assert!(expanded.is_ok());
    Ok(XChaCha20Poly1305::new((&okm).into()))
}

/// Seals this node's outgoing datagrams.
#[derive(Debug)]
pub struct Sealer {
    key: SealKey,
    name: String,
    generation: u64,
    counter: u64,
}

impl Sealer {
    /// A sealer for node `name` in its `generation` (which must grow with every start of the node).
    pub fn new(key: SealKey, name: &str, generation: u64) -> Result<Self, SealError> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(SealError::BadName(name.to_owned()));
        }
        Ok(Self {
            key,
            name: name.to_owned(),
            generation,
            counter: 0,
        })
    }

    /// Largest payload [`Sealer::seal`] accepts.
    pub fn max_payload(&self) -> usize {
        MAX_DATAGRAM - OVERHEAD - self.name.len()
    }

    /// Encrypts and authenticates `payload` into one datagram.
    pub fn seal(&mut self, payload: &[u8]) -> Result<Vec<u8>, SealError> {
        if payload.len() > self.max_payload() {
            return Err(SealError::TooLarge {
                name: self.name.clone(),
                len: payload.len(),
                max: self.max_payload(),
            });
        }
        self.counter = self.counter.wrapping_add(1);
        let mut plain = Vec::with_capacity(INNER_FIXED + self.name.len() + payload.len());
        // The name length was checked in `new` to fit one byte.
        plain.push(self.name.len() as u8);
        plain.extend_from_slice(self.name.as_bytes());
        plain.extend_from_slice(&self.generation.to_be_bytes());
        plain.extend_from_slice(&self.counter.to_be_bytes());
        plain.extend_from_slice(payload);
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: &[VERSION],
                },
            )
            .map_err(|_| SealError::Encrypt(self.name.clone()))?;
        let mut datagram = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        datagram.push(VERSION);
        datagram.extend_from_slice(&nonce);
        datagram.extend_from_slice(&sealed);
        Ok(datagram)
    }
}

/// An authenticated datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The sender's node name.
    pub sender: String,
    /// The sender's generation.
    pub generation: u64,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Opens incoming datagrams and rejects replays.
#[derive(Debug)]
pub struct Opener {
    key: SealKey,
    windows: replay::Windows,
    drops: DropCounts,
}

impl Opener {
    /// An opener with no replay history.
    pub fn new(key: SealKey) -> Self {
        Self {
            key,
            windows: replay::Windows::default(),
            drops: DropCounts::default(),
        }
    }

    /// Drops so far, by reason.
    pub fn drops(&self) -> DropCounts {
        self.drops
    }

    /// Authenticates, decrypts and replay-checks one datagram; drops are counted.
    pub fn open(&mut self, datagram: &[u8]) -> Result<Opened, Rejected> {
        self.open_at(datagram, crate::plausible::wall_ms())
    }

    /// [`Opener::open`] on a board whose clock reads `now_ms`.
    pub fn open_at(&mut self, datagram: &[u8], now_ms: u64) -> Result<Opened, Rejected> {
        let result = self.open_uncounted(datagram, now_ms);
        if let Err(drop) = result {
            self.drops.count(drop);
        }
        result
    }

    fn open_uncounted(&mut self, datagram: &[u8], now_ms: u64) -> Result<Opened, Rejected> {
        if datagram.len() < OVERHEAD + 1 || datagram.len() > MAX_DATAGRAM {
            return Err(Rejected::Malformed);
        }
        let (version, rest) = datagram.split_at(1);
        if version != [VERSION] {
            return Err(Rejected::Malformed);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let plain = self
            .key
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &[VERSION],
                },
            )
            .map_err(|_| Rejected::Unauthenticated)?;
        let (sender, generation, counter, payload) =
            parse_inner(&plain).ok_or(Rejected::BadHeader)?;
        if generation > crate::plausible::highest_generation(now_ms) {
            return Err(Rejected::ImplausibleGeneration);
        }
        self.check_replay(sender, generation, counter)?;
        Ok(Opened {
            sender: sender.to_owned(),
            generation,
            payload: payload.to_vec(),
        })
    }

    fn check_replay(
        &mut self,
        sender: &str,
        generation: u64,
        counter: u64,
    ) -> Result<(), Rejected> {
        self.windows
            .check(sender, generation, counter)
            .map_err(|refused| match refused {
                replay::Refused::Replayed => Rejected::Replayed,
                replay::Refused::Stale => Rejected::StaleGeneration,
            })
    }

    /// `sender` signed state in `generation` with its own board key: see [`replay`].
    pub fn confirm(&mut self, sender: &str, generation: u64) {
        self.windows.confirm(sender, generation);
    }

    /// `sender`'s name is bound to a board key: see [`replay`].
    pub fn expect_signed(&mut self, sender: &str) {
        self.windows.expect_signed(sender);
    }

    /// Forgets `sender`'s replay state (its key binding was forgotten).
    pub fn forget(&mut self, sender: &str) {
        self.windows.forget(sender);
    }
}

/// Splits the decrypted plaintext into sender name, generation, counter and payload.
fn parse_inner(plain: &[u8]) -> Option<(&str, u64, u64, &[u8])> {
    let (&name_len, rest) = plain.split_first()?;
    let name_len = usize::from(name_len);
    if name_len == 0 || name_len > MAX_NAME_LEN || rest.len() < name_len + 16 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let name = std::str::from_utf8(name).ok()?;
    let (generation, rest) = rest.split_at(8);
    let (counter, payload) = rest.split_at(8);
    let generation = u64::from_be_bytes(generation.try_into().ok()?);
    let counter = u64::from_be_bytes(counter.try_into().ok()?);
    Some((name, generation, counter, payload))
}

#[cfg(test)]
mod tests;
