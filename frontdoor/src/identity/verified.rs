//! Tokens whose signature was already checked against one key set, so that a client sending
//! the same bearer token on every request costs one signature check, not one per request (the
//! way Envoy's `jwt_cache_config` works). Only the signature is remembered: the claims (`exp`,
//! `nbf`, `iss`, `aud`, a route's `require`) are checked again on every request.
//!
//! One cache belongs to one key set: whoever swaps the set makes a new cache with it, so a key
//! taken out of the set stops verifying at once. Only tokens that verified are kept, so a client
//! cannot fill the cache with garbage; the cache is bounded in entries and in bytes and is
//! emptied whole when full (cheap, and a flood of distinct valid tokens gains nothing from it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use ring::digest::{digest, SHA256};
use serde_json::{Map, Value};

use super::jwk::Keys;
use super::jws::{self, JwsError};

/// Tokens remembered at most.
pub const MAX_ENTRIES: usize = 1024;
/// Sum of the remembered tokens' lengths at most (their claims take a few times that).
pub const MAX_BYTES: usize = 512 * 1024;

type Claims = Arc<Map<String, Value>>;

#[derive(Debug, Default)]
pub struct Verified {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// SHA-256 of the token → its claims.
    tokens: HashMap<[u8; 32], Claims>,
    bytes: usize,
}

impl Verified {
    pub fn new() -> Verified {
        Verified::default()
    }

    /// `jws::verify(token, keys)`, from memory when this token verified before. `keys` must be
    /// the set this cache was made for.
    pub fn verify(&self, token: &str, keys: &Keys) -> Result<Claims, JwsError> {
        if token.len() > jws::MAX_TOKEN {
            return jws::verify(token, keys).map(Arc::new);
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        if let Some(claims) = self.lock().tokens.get(&id) {
            return Ok(Arc::clone(claims));
        }
        // The signature check runs without the lock held.
        let claims = Arc::new(jws::verify(token, keys)?);
        let mut inner = self.lock();
        if inner.tokens.len() >= MAX_ENTRIES || inner.bytes + token.len() > MAX_BYTES {
            inner.tokens.clear();
            inner.bytes = 0;
        }
        if inner.tokens.insert(id, Arc::clone(&claims)).is_none() {
            inner.bytes += token.len();
        }
        Ok(claims)
    }

    /// Tokens remembered now.
    pub fn len(&self) -> usize {
        self.lock().tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while the lock was held leaves a map that is still whole.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
