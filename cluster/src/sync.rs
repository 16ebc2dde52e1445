//! Exchanging the cluster's spec records between boards, sealed with the cluster key.
//!
//! The gossip carries only a digest of each board's [`Desired`](crate::desired::Desired) state;
//! the records themselves can be far larger than a datagram. A board that sees a peer with another
//! digest asks that peer for its records over HTTP (`POST /v1/cluster/sync` on the peer's API)
//! and merges them; since merging is commutative and idempotent, boards converge whatever the
//! order of the exchanges.
//!
//! Both bodies are sealed with XChaCha20-Poly1305 under a key derived from the cluster key with
//! HKDF-SHA256 (a context string of its own, so these keys never equal the gossip's). A body is a
//! version byte, a random 24-byte nonce and the ciphertext of a JSON message. The request carries a
//! challenge that the response must echo, so a recorded response cannot be replayed to a board. A
//! board without the key can neither ask nor answer, and learns nothing from what it sees.
//!
//! A replayed request earns only an answer that the replayer cannot read, but it would merge its
//! records again, and after a tombstone is gone that brings a deleted service back. So the
//! challenge carries the request's time and a nonce ([`fresh`]), and the answering board refuses
//! a request that is not fresh with a sealed [`SyncRefusal`] that names its own clock.
//!
//! # Two releases side by side (N/N-1)
//! The messages keep the fields of the previous release (which refuses unknown fields); the
//! time and nonce travel inside the challenge, which the previous release only echoes. So:
//! - a request of this release to a board of the previous one is answered as before, and since a
//!   request carries the asker's records and the answer the answerer's, the pair converges both
//!   ways through it;
//! - a request of the previous release to a board of this one is refused (its challenge has no
//!   time: [`fresh::Stale::NoFreshness`], "from an older build?", on the answering board's
//!   console); the asker logs a failed sync and the exchange of the other direction carries it.

use chacha20poly1305::aead::{Aead, AeadCore, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use crate::desired::admit::{MAX_RECORDS, MAX_RECORD_JSON};
use crate::desired::Record;

pub mod fresh;

/// Largest sealed body, sent or accepted, request or answer (a little over 8 MiB): large enough
/// for every record the desired state can hold ([`MAX_RECORDS`] records of at most
/// [`MAX_RECORD_JSON`] bytes each, with room for the commas, the other fields and the seal), so
/// a board never holds more than it can send. Both ends use this one limit: the API refuses a
/// longer request before reading it (`init/src/api/cluster.rs`), the client a longer answer, and
/// [`SyncKey::request`] and [`SyncKey::respond`] refuse to seal one, with
/// [`SyncError::TooLarge`], rather than send what the other end would drop.
pub const MAX_BODY: usize = MAX_RECORDS * (MAX_RECORD_JSON + 1) + 4096 + MIN_BODY;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// Bytes before the ciphertext of a sealed body: the version byte and the nonce.
pub const HEAD_LEN: usize = 1 + NONCE_LEN;

/// The shortest sealed body: its head and the 16-byte tag of an empty ciphertext.
pub const MIN_BODY: usize = HEAD_LEN + 16;

/// Whether `head`, the first bytes of a body, can begin a sealed body of this version: a cheap
/// check that lets a receiver refuse before it reads a body whole. Needs at least [`HEAD_LEN`].
pub fn plausible_head(head: &[u8]) -> bool {
    head.len() >= HEAD_LEN && head[0] == VERSION
}
const KDF_INFO: &[u8] = b"baton spec sync v1";

/// Why a sealed body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SyncError {
    /// The cluster key is too short to derive from.
    #[error("the cluster key has {0} characters; at least {min} are needed", min = crate::sealed::MIN_KEY_TEXT_LEN)]
    KeyTooShort(usize),
    /// Larger than [`MAX_BODY`].
    #[error("sealed sync body of {0} bytes is larger than the {MAX_BODY} bytes a board takes")]
    TooLarge(usize),
    /// Too short, unknown version, or it does not open with this cluster's key.
    #[error("sealed body does not open with this cluster's key")]
    Unauthentic,
    /// It opened, but the message inside is not what was expected.
    #[error("sealed body holds no valid {0}")]
    Malformed(&'static str),
    /// A response that answers another request (a replay).
    #[error("the response answers another request (challenge mismatch)")]
    WrongChallenge,
}

/// The sealed refusal of a request that opened but is not fresh (HTTP 409): only a holder of the
/// key can make one, and it answers one request (its challenge). The asker learns from it the
/// answering board's clock and stamps its next request to that board by it, so a board whose
/// clock is off by more than [`fresh::WINDOW_MS`] still exchanges records both ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRefusal {
    /// The refused request's challenge.
    pub challenge: String,
    /// The refusing board.
    pub board: String,
    /// The refusing board's clock (unix ms) when it refused.
    pub time_ms: u64,
    /// Why, as [`fresh::Stale`] says it.
    pub reason: String,
}

/// The key for sync bodies.
#[derive(Clone)]
pub struct SyncKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SyncKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncKey(..)")
    }
}

/// A board asking for records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Random; echoed by the response.
    pub challenge: String,
    /// The asking board.
    pub board: String,
    /// Its digest, so the answering board can tell whether it should ask back.
    pub digest: String,
    /// Records the asking board holds, so one exchange moves changes both ways.
    pub records: Vec<Record>,
}

/// The answer: every record the board holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncResponse {
    /// The request's challenge.
    pub challenge: String,
    /// The answering board.
    pub board: String,
    /// Its records, tombstones included.
    pub records: Vec<Record>,
}

impl SyncKey {
    /// Derives the sync key from the `[cluster] key` text.
    pub fn derive(cluster_key: &str) -> Result<SyncKey, SyncError> {
        let cipher =
            crate::sealed::cipher_for(cluster_key, KDF_INFO).map_err(SyncError::KeyTooShort)?;
        Ok(SyncKey { cipher })
    }

    /// Seals `message`, refusing a body longer than [`MAX_BODY`] (the other end would drop it)
    /// before encrypting it.
    fn seal_bounded<T: Serialize>(&self, message: &T) -> Result<Vec<u8>, SyncError> {
        let plain = serde_json::to_vec(message).unwrap_or_default();
        let len = MIN_BODY + plain.len();
        if len > MAX_BODY {
            return Err(SyncError::TooLarge(len));
        }
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption of an in-memory buffer with a valid key and nonce does not fail.
        let sealed = self
            .cipher
            .encrypt(&nonce, plain.as_slice())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(HEAD_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open<T: for<'de> Deserialize<'de>>(
        &self,
        body: &[u8],
        what: &'static str,
    ) -> Result<T, SyncError> {
        if body.len() > MAX_BODY {
            return Err(SyncError::TooLarge(body.len()));
        }
        if body.len() < 1 + NONCE_LEN || body[0] != VERSION {
            return Err(SyncError::Unauthentic);
        }
        let (nonce, sealed) = body[1..].split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| SyncError::Unauthentic)?;
        serde_json::from_slice(&plain).map_err(|_| SyncError::Malformed(what))
    }

    /// A new request from `board`, stamped with the wall clock: see [`SyncKey::request_at`].
    pub fn request(
        &self,
        board: &str,
        digest: &str,
        records: Vec<Record>,
    ) -> Result<(String, Vec<u8>), SyncError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.request_at(now, board, digest, records)
    }

    /// A new request from `board` made at `time_ms` (unix ms, by the answering board's clock as
    /// far as the asker knows it), with a fresh challenge ([`fresh::challenge`]); returns the
    /// challenge and the body, or [`SyncError::TooLarge`] when the body would be longer than
    /// [`MAX_BODY`].
    pub fn request_at(
        &self,
        time_ms: u64,
        board: &str,
        digest: &str,
        records: Vec<Record>,
    ) -> Result<(String, Vec<u8>), SyncError> {
        self.request_with_challenge(fresh::challenge(time_ms), board, digest, records)
    }

    /// A request with a challenge of the caller's choosing: [`SyncKey::request_at`] makes a
    /// fresh one; a board of the previous release sent 32 hex digits alone, which tests of the
    /// exchange between the two releases send with this.
    pub fn request_with_challenge(
        &self,
        challenge: String,
        board: &str,
        digest: &str,
        records: Vec<Record>,
    ) -> Result<(String, Vec<u8>), SyncError> {
        let body = self.seal_bounded(&SyncRequest {
            challenge: challenge.clone(),
            board: board.to_string(),
            digest: digest.to_string(),
            records,
        })?;
        Ok((challenge, body))
    }

    /// Opens a request body.
    pub fn open_request(&self, body: &[u8]) -> Result<SyncRequest, SyncError> {
        self.open(body, "sync request")
    }

    /// Seals the answer to `request`, or refuses with [`SyncError::TooLarge`] when it would be
    /// longer than [`MAX_BODY`].
    pub fn respond(
        &self,
        request: &SyncRequest,
        board: &str,
        records: Vec<Record>,
    ) -> Result<Vec<u8>, SyncError> {
        self.seal_bounded(&SyncResponse {
            challenge: request.challenge.clone(),
            board: board.to_string(),
            records,
        })
    }

    /// Seals the refusal of `request` (not fresh: `why`) by `board`, whose clock reads `now_ms`.
    pub fn refuse(&self, request: &SyncRequest, board: &str, now_ms: u64, why: &str) -> Vec<u8> {
        let refusal = SyncRefusal {
            challenge: request.challenge.clone(),
            board: board.to_string(),
            time_ms: now_ms,
            reason: why.to_string(),
        };
        // A challenge, a board name and a reason: far below the limit, unless the request's own
        // challenge was huge; then the refusal is empty (and does not open).
        self.seal_bounded(&refusal).unwrap_or_default()
    }

    /// Opens a refusal and checks it refuses the request with `challenge`.
    pub fn open_refusal(&self, body: &[u8], challenge: &str) -> Result<SyncRefusal, SyncError> {
        let refusal: SyncRefusal = self.open(body, "sync refusal")?;
        if refusal.challenge != challenge {
            return Err(SyncError::WrongChallenge);
        }
        Ok(refusal)
    }

    /// Opens a response and checks it answers the request with `challenge`.
    pub fn open_response(&self, body: &[u8], challenge: &str) -> Result<SyncResponse, SyncError> {
        let response: SyncResponse = self.open(body, "sync response")?;
        if response.challenge != challenge {
            return Err(SyncError::WrongChallenge);
        }
        Ok(response)
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
