//! A compact JWS (RFC 7515) checked against a key set: size and shape first, then the header
//! (only asymmetric algorithms; nothing that names a key to fetch), then the key, then the
//! signature with ring. The payload is read only once the signature holds.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::b64;
use super::jwk::{Key, Keys, Material};

/// Bytes of a whole token.
pub const MAX_TOKEN: usize = 8 * 1024;
/// Bytes of the decoded header and of the decoded payload, each.
pub const MAX_PART: usize = 8 * 1024;
/// Keys tried for a token without `kid`.
pub const MAX_TRIED: usize = 4;

/// The signature algorithms accepted (RFC 7518, RFC 8037); no `none`, no HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    /// The alg named `name` in a header, if accepted.
    pub fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }

    /// Its name in headers and keys.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// Whether a key of this material can verify this alg.
    fn fits(self, material: &Material) -> bool {
        matches!(
            (self, material),
            (
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512,
                Material::Rsa { .. }
            ) | (Alg::Es256, Material::P256(_))
                | (Alg::Es384, Material::P384(_))
                | (Alg::EdDsa, Material::Ed25519(_))
        )
    }

    fn ring(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
            Alg::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
            Alg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Alg::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
            Alg::EdDsa => &signature::ED25519,
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwsError {
    /// Malformed, not allowed, or not signed by a key of the set.
    Invalid(String),
    /// Its `kid` is not in the set (the caller may refetch the set).
    UnknownKey {
        /// The `kid`.
        kid: String,
    },
}

fn invalid(why: impl Into<String>) -> JwsError {
    JwsError::Invalid(why.into())
}

/// Deserialises `true` for any value, `null` included: presence is what counts.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d)?;
    Ok(true)
}

/// The header members that matter. serde refuses a duplicate of any of them, so a header cannot
/// say `alg` twice and hope that we read the other one.
#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    #[serde(default, deserialize_with = "present")]
    jku: bool,
    #[serde(default, deserialize_with = "present")]
    x5u: bool,
    #[serde(default, deserialize_with = "present")]
    jwk: bool,
    #[serde(default, deserialize_with = "present")]
    x5c: bool,
}

/// Checks `token` against `keys` and returns its payload (claims not checked yet).
pub fn verify(token: &str, keys: &Keys) -> Result<Map<String, Value>, JwsError> {
    if token.len() > MAX_TOKEN {
        return Err(invalid(format!("token longer than {MAX_TOKEN} bytes")));
    }
    let parts: Vec<&str> = token.splitn(4, '.').collect();
    let [header_b64, payload_b64, sig_b64] = parts[..] else {
        return Err(invalid(format!(
            "a compact JWS has 3 parts, this token has {}",
            token.split('.').count()
        )));
    };
    if sig_b64.is_empty() {
        return Err(invalid("empty signature"));
    }
    let header = b64::decode(header_b64, MAX_PART)
        .map_err(|e| invalid(format!("header is not base64url ({e:?})")))?;
    // serde would also fill the struct from a JSON array; a header is an object.
    let is_object = header.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let header: Header = serde_json::from_slice(&header)
        .ok()
        .filter(|_| is_object)
        .ok_or_else(|| invalid("header is not a JSON object of the expected members"))?;
    let alg = header_alg(&header)?;
    let sig = b64::decode(sig_b64, MAX_PART)
        .map_err(|e| invalid(format!("signature is not base64url ({e:?})")))?;
    let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    let candidates = candidates(alg, header.kid.as_deref(), keys)?;
    if !candidates
        .iter()
        .any(|k| check_signature(alg, k, signed, &sig))
    {
        return Err(invalid("bad signature"));
    }
    let payload = b64::decode(payload_b64, MAX_PART)
        .map_err(|e| invalid(format!("payload is not base64url ({e:?})")))?;
    serde_json::from_slice::<Map<String, Value>>(&payload)
        .map_err(|_| invalid("payload is not a JSON object"))
}

fn header_alg(header: &Header) -> Result<Alg, JwsError> {
    if header.crit {
        return Err(invalid("crit header present"));
    }
    if header.jku || header.x5u || header.jwk || header.x5c {
        return Err(invalid("header names its own key (jku, x5u, jwk or x5c)"));
    }
    if let Some(typ) = &header.typ {
        if !typ.eq_ignore_ascii_case("JWT") && !typ.eq_ignore_ascii_case("at+jwt") {
            return Err(invalid("typ is not JWT or at+jwt"));
        }
    }
    let name = header.alg.as_deref().ok_or_else(|| invalid("no alg"))?;
    Alg::from_name(name).ok_or_else(|| invalid("alg not accepted"))
}

/// The keys to try: the ones with the token's `kid`, or up to [`MAX_TRIED`] that fit the alg.
fn candidates<'k>(alg: Alg, kid: Option<&str>, keys: &'k Keys) -> Result<Vec<&'k Key>, JwsError> {
    let usable = |k: &&Key| {
        alg.fits(&k.material)
            && k.alg.as_deref().is_none_or(|a| a == alg.name())
            && k.use_.as_deref().is_none_or(|u| u == "sig")
    };
    let Some(kid) = kid else {
        let found: Vec<&Key> = keys.keys.iter().filter(usable).take(MAX_TRIED).collect();
        if found.is_empty() {
            return Err(invalid(format!("no key of the set fits {}", alg.name())));
        }
        return Ok(found);
    };
    let named: Vec<&Key> = keys
        .keys
        .iter()
        .filter(|k| k.kid.as_deref() == Some(kid))
        .collect();
    if named.is_empty() {
        // A key the set has but could not use is not worth a refetch.
        if let Some(s) = keys.skipped.iter().find(|s| s.kid.as_deref() == Some(kid)) {
            return Err(invalid(format!(
                "the key of this kid is unusable: {}",
                s.why
            )));
        }
        return Err(JwsError::UnknownKey { kid: kid.into() });
    }
    let found: Vec<&Key> = named
        .iter()
        .copied()
        .filter(usable)
        .take(MAX_TRIED)
        .collect();
    if found.is_empty() {
        let k = named[0];
        let why = if !alg.fits(&k.material) {
            format!(
                "the key of this kid ({}) does not fit {}",
                k.kty,
                alg.name()
            )
        } else if k.use_.as_deref().is_some_and(|u| u != "sig") {
            "the key of this kid is not for signatures".to_string()
        } else {
            format!("the key of this kid is for another alg than {}", alg.name())
        };
        return Err(invalid(why));
    }
    Ok(found)
}

fn check_signature(alg: Alg, key: &Key, signed: &[u8], sig: &[u8]) -> bool {
    match &key.material {
        Material::Rsa { n, e } => {
            let params = match alg {
                Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                Alg::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return false,
            };
            RsaPublicKeyComponents { n, e }
                .verify(params, signed, sig)
                .is_ok()
        }
        Material::P256(point) | Material::P384(point) | Material::Ed25519(point) => {
            UnparsedPublicKey::new(alg.ring(), point)
                .verify(signed, sig)
                .is_ok()
        }
    }
}
