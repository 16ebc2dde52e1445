//! The dashboard's session cookie: a value only this boot of this board can have made, and
//! none can alter without it being noticed.
//!
//! **Sealed** with ChaCha20-Poly1305 (ring's AEAD), a random 96-bit nonce per cookie, and the
//! cookie's name as associated data, so a value sealed for one name is refused under another.
//! The value is `base64url(nonce || ciphertext || tag)`; what is sealed is the session's
//! expiry (8 bytes) and its CSRF value (16 bytes), since a browser's `Max-Age` is only advice.
//!
//! **The key** is HKDF-SHA256 with a random secret drawn at every boot as input key material,
//! the SHA-256 digest of the API token as salt, and [`INFO`]:
//! - a new token gives a new key, so changing `[api] token` ends every session;
//! - the secret lives only in PID 1's memory: no file, card or other board holds anything that
//!   makes a session (the cluster key, the other candidate, is on every card of the cluster,
//!   and reaches PID 1 only once the services start, after the API);
//! - the cookie is host-only (`__Host-`), so it only ever returns to the board that set it:
//!   a key shared by the cluster would buy nothing;
//! - a reboot ends the sessions (the user signs in again), and in exchange expiry is counted
//!   on the boot's monotonic clock, which the wall clock's steps (a board boots unsynced,
//!   then SNTP moves it by years) cannot shorten or lengthen.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::digest::{digest, SHA256};
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::rand::{SecureRandom, SystemRandom};

/// The HKDF info of the session key; a new version of the cookie gets a new info.
pub const INFO: &[u8] = b"baton dashboard session v1";

/// How long a session lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The cookie's name over TLS: `__Host-` makes the browser keep it only when it is `Secure`,
/// has `Path=/` and no `Domain`, so no other host can set or read it. Cookies ignore ports:
/// the front door on the same host strips every `__Host-baton_` cookie before a service sees
/// it, and this name is not its own sign-in cookie's (`__Host-baton_session`), so neither
/// overwrites the other.
pub const NAME_TLS: &str = "__Host-baton_dash";

/// The cookie's name on a plain-HTTP board (a card without a CA), where `Secure` cannot be;
/// the front door strips it too ([`baton_frontdoor::http::hygiene::DASHBOARD_PLAIN_COOKIE`]).
pub const NAME_PLAIN: &str = "baton_dash";

/// Bytes of a cookie value read at all: a sealed session is 70 characters.
pub const MAX_VALUE: usize = 256;

/// Bytes of the CSRF value.
const CSRF_BYTES: usize = 16;

/// Bytes sealed: the expiry in seconds of the boot's clock, then the CSRF value.
const SEALED: usize = 8 + CSRF_BYTES;

/// Bytes of the AEAD's tag.
const TAG: usize = 16;

/// The sessions of this boot: the secret their keys come from, and the clock their expiry is
/// counted on.
pub struct Sessions {
    /// `None` when the system had no randomness at start: then no session is ever made.
    secret: Option<[u8; 32]>,
    /// The boot's clock starts here (seconds since are what a session's expiry counts).
    born: Instant,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.write_str("Sessions")
    }
}

impl Default for Sessions {
    /// Sessions with a fresh random secret.
    fn default() -> Self {
        let mut secret = [0u8; 32];
        let secret = SystemRandom::new().fill(&mut secret).ok().map(|()| secret);
        Sessions {
            secret,
            born: Instant::now(),
        }
    }
}

/// What a valid session cookie holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// When it ends, in seconds of the boot's clock.
    pub expires_s: u64,
    /// The CSRF value, base64url.
    pub csrf: String,
}

impl Session {
    /// Seconds left at `now_s`.
    pub fn left_s(&self, now_s: u64) -> u64 {
        self.expires_s.saturating_sub(now_s)
    }
}

impl Sessions {
    /// Sessions with a given secret (for tests).
    #[cfg(test)]
    pub fn with_secret(secret: [u8; 32]) -> Sessions {
        Sessions {
            secret: Some(secret),
            born: Instant::now(),
        }
    }

    /// Seconds of the boot's clock now.
    pub fn now_s(&self) -> u64 {
        self.born.elapsed().as_secs()
    }

    /// The key of the sessions of `token`.
    fn key(&self, token: &str) -> Option<LessSafeKey> {
        let secret = self.secret.as_ref()?;
        let salt = digest(&SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        Salt::new(HKDF_SHA256, salt.as_ref())
            .extract(secret)
            .expand(&[INFO], HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut key))
            .ok()?;
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key).ok()?;
        Some(LessSafeKey::new(unbound))
    }

    /// A new session for `token` at `now_s`, sealed for the cookie `name`: the cookie's value
    /// and the session. `None` only when the system has no randomness.
    pub fn open_new(&self, token: &str, name: &str, now_s: u64) -> Option<(String, Session)> {
        let rng = SystemRandom::new();
        let mut csrf = [0u8; CSRF_BYTES];
        rng.fill(&mut csrf).ok()?;
        let expires_s = now_s.saturating_add(LIFETIME.as_secs());
        let mut data = Vec::with_capacity(SEALED + TAG);
        data.extend_from_slice(&expires_s.to_be_bytes());
        data.extend_from_slice(&csrf);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce).ok()?;
        self.key(token)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut data,
            )
            .ok()?;
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&data);
        let session = Session {
            expires_s,
            csrf: URL_SAFE_NO_PAD.encode(csrf),
        };
        Some((URL_SAFE_NO_PAD.encode(raw), session))
    }

    /// The session in the cookie `name`'s value `sealed`, if this boot sealed it for `token`
    /// and that name, unaltered, and it has not ended at `now_s`.
    pub fn open(&self, token: &str, name: &str, sealed: &str, now_s: u64) -> Option<Session> {
        if sealed.len() > MAX_VALUE {
            return None;
        }
        let mut raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if raw.len() != NONCE_LEN + SEALED + TAG {
            return None;
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&raw[..NONCE_LEN]);
        let plain = self
            .key(token)?
            .open_within(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut raw,
                NONCE_LEN..,
            )
            .ok()?;
        let (expiry, csrf) = plain.split_at(8);
        let expires_s = u64::from_be_bytes(expiry.try_into().ok()?);
        (now_s < expires_s).then(|| Session {
            expires_s,
            csrf: URL_SAFE_NO_PAD.encode(csrf),
        })
    }
}

/// The value of the cookie `name` in the request's `Cookie` headers (RFC 6265 section 5.4:
/// `name=value` pairs joined by `; `), the first one when several carry it.
pub fn find<'a>(cookie_headers: impl Iterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    cookie_headers
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The `Set-Cookie` value that gives the browser the cookie `name` with `value` for `max_age`
/// (0: removes it). `Secure` on a TLS board (the `__Host-` name requires it).
pub fn set_cookie(name: &str, value: &str, max_age: Duration, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{name}={value}; Max-Age={}; Path=/; HttpOnly; SameSite=Strict{secure}",
        max_age.as_secs()
    )
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
