//! A JSON Web Key Set (RFC 7517) read into keys ring can verify with. The set comes from the
//! identity provider, so it is bounded and read defensively: the whole set is refused only when
//! it is not a JSON key set or too big; a key that cannot be used is skipped with the reason, so
//! one odd key (an encryption key, a curve we do not support) does not take the others down.

use serde_json::Value;

/// Bytes of a key set.
pub const MAX_JWKS: usize = 64 * 1024;
/// Keys in a set.
pub const MAX_KEYS: usize = 32;
/// Bytes of a `kid`, `alg`, `use` or `crv` kept from a key.
pub const MAX_FIELD: usize = 256;
/// RSA moduli accepted, in bits (ring's `RSA_*_2048_8192_*` bounds, checked here first so the
/// key is skipped with a reason rather than failing every token).
pub const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// The public material of a usable key.
#[derive(Clone, PartialEq, Eq)]
pub enum Material {
    /// RSA modulus and exponent, big-endian without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// A P-256 point, uncompressed (`04 || x || y`).
    P256(Vec<u8>),
    /// A P-384 point, uncompressed.
    P384(Vec<u8>),
    /// An Ed25519 public key.
    Ed25519(Vec<u8>),
}

/// One usable key with the fields that decide which tokens it may verify.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// `kid`.
    pub kid: Option<String>,
    /// `kty`: `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// `crv` for EC and OKP keys.
    pub crv: Option<String>,
    /// `alg`, if the set names one: then only tokens of that alg.
    pub alg: Option<String>,
    /// `use`, if the set names one: then it must be `sig`.
    pub use_: Option<String>,
    /// The public key.
    pub material: Material,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The material says nothing to a reader of logs.
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("kty", &self.kty)
            .field("crv", &self.crv)
            .field("alg", &self.alg)
            .field("use", &self.use_)
            .finish_non_exhaustive()
    }
}

/// A key of the set that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its place in the set's `keys`.
    pub index: usize,
    /// Its `kid`, when it had a readable one.
    pub kid: Option<String>,
    /// Why it cannot be used.
    pub why: String,
}

/// The usable keys of a set, and the ones skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// Usable keys, in the set's order.
    pub keys: Vec<Key>,
    /// Keys left out.
    pub skipped: Vec<Skipped>,
}

/// Why a whole key set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Longer than [`MAX_JWKS`].
    #[error("the key set has {0} bytes, at most {MAX_JWKS} are allowed")]
    TooBig(usize),
    /// More keys than [`MAX_KEYS`].
    #[error("the key set has {0} keys, at most {MAX_KEYS} are allowed")]
    TooManyKeys(usize),
    /// Not JSON, or not an object with a `keys` array.
    #[error("the key set is not a JWKS: {0}")]
    NotJwks(String),
}

impl Keys {
    /// Reads a JWKS document.
    pub fn parse(json: &str) -> Result<Keys, JwksError> {
        if json.len() > MAX_JWKS {
            return Err(JwksError::TooBig(json.len()));
        }
        let doc: Value =
            serde_json::from_str(json).map_err(|e| JwksError::NotJwks(e.to_string()))?;
        let list = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| JwksError::NotJwks("no \"keys\" array".into()))?;
        if list.len() > MAX_KEYS {
            return Err(JwksError::TooManyKeys(list.len()));
        }
        let mut out = Keys::default();
        for (index, entry) in list.iter().enumerate() {
            match key(entry) {
                Ok(k) => out.keys.push(k),
                Err(why) => out.skipped.push(Skipped {
                    index,
                    kid: text(entry, "kid").ok().flatten(),
                    why,
                }),
            }
        }
        Ok(out)
    }
}

/// A string field, bounded; `Ok(None)` when absent.
fn text(entry: &Value, name: &str) -> Result<Option<String>, String> {
    match entry.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_FIELD && !s.contains(char::is_control) => {
            Ok(Some(s.clone()))
        }
        Some(Value::String(_)) => Err(format!(
            "\"{name}\" is longer than {MAX_FIELD} bytes or has control characters"
        )),
        Some(_) => Err(format!("\"{name}\" is not a string")),
    }
}

/// A base64url member decoded, at most `max` bytes.
fn bytes(entry: &Value, name: &str, max: usize) -> Result<Vec<u8>, String> {
    let s = entry
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no \"{name}\" string"))?;
    super::b64::decode(s, max).map_err(|e| format!("\"{name}\" is not base64url ({e:?})"))
}

fn key(entry: &Value) -> Result<Key, String> {
    if !entry.is_object() {
        return Err("not an object".into());
    }
    let kid = text(entry, "kid")?;
    let kty = text(entry, "kty")?.ok_or("no \"kty\"")?;
    let crv = text(entry, "crv")?;
    let alg = text(entry, "alg")?;
    let use_ = text(entry, "use")?;
    let material = match (kty.as_str(), crv.as_deref()) {
        ("RSA", _) => rsa(entry)?,
        ("EC", Some("P-256")) => Material::P256(point(entry, 32)?),
        ("EC", Some("P-384")) => Material::P384(point(entry, 48)?),
        ("OKP", Some("Ed25519")) => {
            let x = bytes(entry, "x", 32)?;
            if x.len() != 32 {
                return Err(format!("an Ed25519 key of {} bytes, not 32", x.len()));
            }
            Material::Ed25519(x)
        }
        ("EC" | "OKP", crv) => return Err(format!("curve {crv:?} is not supported")),
        (kty, _) => return Err(format!("key type {kty:?} is not supported")),
    };
    Ok(Key {
        kid,
        kty,
        crv,
        alg,
        use_,
        material,
    })
}

fn rsa(entry: &Value) -> Result<Material, String> {
    let n = strip_zeros(bytes(entry, "n", 8192 / 8 + 1)?);
    let e = strip_zeros(bytes(entry, "e", 8)?);
    let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
    if !RSA_BITS.contains(&bits) {
        return Err(format!(
            "an RSA modulus of {bits} bits; {} to {} are accepted",
            RSA_BITS.start(),
            RSA_BITS.end()
        ));
    }
    // ring accepts odd exponents from 3 up to 33 bits; say so here rather than per token.
    if e.is_empty() || e.len() > 4 || e[e.len() - 1] & 1 == 0 || (e.len() == 1 && e[0] < 3) {
        return Err("an RSA exponent that is not an odd number from 3 to 2^32".into());
    }
    Ok(Material::Rsa { n, e })
}

fn strip_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|&&b| b == 0).count();
    v.drain(..zeros);
    v
}

/// The uncompressed point of coordinates of exactly `size` bytes each (whether it lies on the
/// curve is checked by ring when verifying).
fn point(entry: &Value, size: usize) -> Result<Vec<u8>, String> {
    let x = bytes(entry, "x", size)?;
    let y = bytes(entry, "y", size)?;
    if x.len() != size || y.len() != size {
        return Err(format!("EC coordinates must be {size} bytes each"));
    }
    let mut p = Vec::with_capacity(1 + 2 * size);
    p.push(4);
    p.extend_from_slice(&x);
    p.extend_from_slice(&y);
    Ok(p)
}
