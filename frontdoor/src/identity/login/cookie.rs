//! Sealed cookies: a value only this cluster's front doors can read and none can alter without
//! it being noticed. ChaCha20-Poly1305 (ring's AEAD) under the session key the init derives
//! from the cluster key, a random 96-bit nonce per cookie, and the cookie's name as associated
//! data, so a sealed login cookie cannot be replayed as a session cookie or the other way round
//! (a session's associated data also names the issuer and client id: see `flow::SessionFor`).
//! The value is `base64url(nonce || ciphertext || tag)`; what is sealed is JSON with its own
//! expiry, since a browser's `Max-Age` is only advice.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::identity::b64;

/// Bytes of a sealed cookie value we read at all (browsers keep about 4 KiB per cookie).
pub const MAX_VALUE: usize = 4096;

/// Seals and opens cookie values with one key.
pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// A sealer with a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Sealer {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key)
            .unwrap_or_else(|_| unreachable!("a ChaCha20 key is 32 bytes"));
        Sealer {
            key: LessSafeKey::new(unbound),
        }
    }

    /// `value` sealed for the cookie `name`; `None` only if the system has no randomness.
    pub fn seal<T: Serialize>(&self, name: &str, value: &T) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut data = serde_json::to_vec(value).ok()?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut data,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Some(b64::encode(&out))
    }

    /// The value sealed for `name`, or `None` when it was not sealed by this key for this name,
    /// was altered, is too long or does not parse as `T`.
    pub fn open<T: DeserializeOwned>(&self, name: &str, sealed: &str) -> Option<T> {
        if sealed.len() > MAX_VALUE {
            return None;
        }
        let mut data = b64::decode(sealed, MAX_VALUE).ok()?;
        if data.len() < NONCE_LEN {
            return None;
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&data[..NONCE_LEN]);
        let plain = self
            .key
            .open_within(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut data,
                NONCE_LEN..,
            )
            .ok()?;
        serde_json::from_slice(plain).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Note {
        a: String,
        n: u64,
    }

    fn note() -> Note {
        Note {
            a: "ann".into(),
            n: 7,
        }
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_and_name_only() {
        let sealer = Sealer::new(&[1; 32]);
        let sealed = sealer.seal("x", &note()).expect("sealed");
        assert_eq!(sealer.open::<Note>("x", &sealed), Some(note()));
        // Another name (a login cookie offered as a session cookie) or another key: refused.
        assert_eq!(sealer.open::<Note>("y", &sealed), None);
        assert_eq!(Sealer::new(&[2; 32]).open::<Note>("x", &sealed), None);
        // Two seals of one value differ (a fresh nonce each time).
        assert_ne!(sealer.seal("x", &note()).expect("sealed"), sealed);
    }

    #[test]
    fn every_altered_byte_is_refused() {
        let sealer = Sealer::new(&[1; 32]);
        let sealed = sealer.seal("x", &note()).expect("sealed");
        let raw = b64::decode(&sealed, MAX_VALUE).expect("b64");
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                sealer.open::<Note>("x", &b64::encode(&bad)),
                None,
                "byte {i}"
            );
        }
        for bad in ["", "AAAA", "not base64!", &"A".repeat(MAX_VALUE + 4)] {
            assert_eq!(sealer.open::<Note>("x", bad), None, "{bad:.20}");
        }
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let headers = ["a=1; __Host-x=two", "__Host-x=three"];
        assert_eq!(find(headers.iter().copied(), "__Host-x"), Some("two"));
        assert_eq!(find(headers.iter().copied(), "x"), None);
        assert_eq!(find(["b=\"q\""].iter().copied(), "b"), Some("q"));
    }
}
