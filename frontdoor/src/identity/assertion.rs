//! `X-Baton-Identity` (docs/design/front-door.md section 5.3): a short-lived ES256 JWT that
//! tells an instance who called, signed with a key PID 1 derives from the cluster key (the same
//! on every board), and the public half as a JWK set for `/.well-known/baton/jwks.json`, so a
//! service can check the header instead of trusting whatever reaches it.
//!
//! Signing costs an ECDSA signature per request, so signed assertions are kept per (identity,
//! service) for [`REUSE_S`] in a map of at most [`MAX_CACHED`] entries of at most
//! [`MAX_CACHED_BYTES`]; an assertion is valid for [`LIFETIME_S`], so a reused one still has at
//! least half its life left.

use std::collections::HashMap;
use std::sync::Mutex;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use super::b64;
use crate::config::model::AssertionKey;

/// Seconds an assertion is valid (`exp` - `iat`).
pub const LIFETIME_S: u64 = 60;
/// Seconds a signed assertion is reused for the same identity and service.
pub const REUSE_S: u64 = 30;
/// Assertions kept at most.
pub const MAX_CACHED: usize = 1024;
/// Bytes of an assertion that is kept; a longer one (a token with many groups) is signed for
/// each request instead, so the cache holds at most about 2 MiB.
pub const MAX_CACHED_BYTES: usize = 2048;

/// Who called, as the assertion says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// `sub`: the token's subject or the client certificate's subject.
    pub sub: String,
    /// `email`, when known.
    pub email: Option<String>,
    /// `groups` (empty when none).
    pub groups: Vec<String>,
    /// `auth`: the route's mode (`oidc`, `mtls`, ...).
    pub auth: &'static str,
}

/// The signing side of the assertions.
pub struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    issuer: String,
    kid: String,
    jwks: String,
    /// By SHA-256 of (identity, service), so that a key costs 32 bytes whatever the token held.
    cache: Mutex<HashMap<[u8; 32], (String, u64)>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Signer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The signer of `key`: its private scalar and public point must belong together.
    pub fn new(key: &AssertionKey) -> Result<Signer, String> {
        let d = b64::decode(&key.d, 32).map_err(|e| format!("the private key: {e:?}"))?;
        let public = b64::decode(&key.public, 65).map_err(|e| format!("the public key: {e:?}"))?;
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &d,
            &public,
            &rng,
        )
        .map_err(|e| format!("the key pair does not hold together: {e}"))?;
        let (x, y) = point(pair.public_key().as_ref())?;
        let kid = thumbprint(&x, &y);
        let jwks = json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "use": "sig", "alg": "ES256", "kid": kid,
        }]})
        .to_string();
        Ok(Signer {
            key: pair,
            rng,
            issuer: key.issuer.clone(),
            kid,
            jwks,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The public key set, as `/.well-known/baton/jwks.json` serves it.
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// The key's id (its RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The assertion of `who` for `service` at `now` (seconds since 1970): one signed in the
    /// last [`REUSE_S`] seconds, or a new one. `None` only if signing failed.
    pub fn assertion(&self, who: &Who, service: &str, now: u64) -> Option<String> {
        let key = cache_key(who, service);
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((token, made)) = cache.get(&key) {
                // A clock that went back makes the entry unusable, not eternal.
                if *made <= now && now - made < REUSE_S {
                    return Some(token.clone());
                }
            }
        }
        // Signed without the lock held, so other requests' lookups do not wait on it.
        let token = self.sign(who, service, now)?;
        if token.len() > MAX_CACHED_BYTES {
            return Some(token);
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (_, made)| *made <= now && now - *made < REUSE_S);
            // Still full of fresh entries (more than MAX_CACHED callers in REUSE_S): start
            // over rather than grow.
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(key, (token.clone(), now));
        Some(token)
    }

    fn sign(&self, who: &Who, service: &str, now: u64) -> Option<String> {
        let header = json!({ "alg": "ES256", "typ": "JWT", "kid": self.kid });
        let mut claims = json!({
            "iss": self.issuer,
            "aud": service,
            "sub": who.sub,
            "groups": who.groups,
            "auth": who.auth,
            "iat": now,
            "exp": now.saturating_add(LIFETIME_S),
        });
        if let (Some(email), Value::Object(map)) = (&who.email, &mut claims) {
            map.insert("email".into(), Value::String(email.clone()));
        }
        let signing = format!(
            "{}.{}",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(claims.to_string().as_bytes())
        );
        let signature = self.key.sign(&self.rng, signing.as_bytes()).ok()?;
        Some(format!("{signing}.{}", b64::encode(signature.as_ref())))
    }
}

/// The cache key of `who` calling `service`: SHA-256 of an unambiguous encoding (a JSON array).
fn cache_key(who: &Who, service: &str) -> [u8; 32] {
    let encoded = json!([service, who.sub, who.email, who.groups, who.auth]).to_string();
    let digest = ring::digest::digest(&ring::digest::SHA256, encoded.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// `x` and `y` of an uncompressed P-256 point, base64url.
fn point(public: &[u8]) -> Result<(String, String), String> {
    match public {
        [4, xy @ ..] if xy.len() == 64 => Ok((b64::encode(&xy[..32]), b64::encode(&xy[32..]))),
        _ => Err("the public key is not an uncompressed P-256 point".into()),
    }
}

/// The RFC 7638 thumbprint of an EC P-256 key: SHA-256 of its required members in
/// lexicographic order with no whitespace, base64url.
pub fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    b64::encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

#[cfg(test)]
#[path = "assertion_tests.rs"]
mod tests;
