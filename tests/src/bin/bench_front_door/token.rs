//! The `token` part's identity provider, reduced to its keys: a P-256 key made by Debian's
//! python3 with PyJWT (another implementation than the front door's), its public key as PEM
//! (what HAProxy's `jwt_verify` takes) and as a JWKS (what the front door takes), and one
//! ES256 token, valid for an hour, that every request of the part carries.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The issuer and audience the token carries and both proxies check.
pub const ISSUER: &str = "https://idp.bench.invalid";
pub const AUDIENCE: &str = "baton";
/// The route host of token-checked requests (`bench.lan` is the open one).
pub const HOST: &str = "token.lan";

pub struct Token {
    /// The compact JWS.
    pub jwt: String,
    /// The key set as JSON text.
    pub jwks: String,
    /// The public key as a PEM file.
    pub public_pem: PathBuf,
}

const MAKE: &str = r#"
import base64, json, sys, time
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
issuer, audience, pem_path = sys.argv[1], sys.argv[2], sys.argv[3]
key = ec.generate_private_key(ec.SECP256R1())
public = key.public_key()
with open(pem_path, "wb") as f:
    f.write(public.public_bytes(serialization.Encoding.PEM,
                                serialization.PublicFormat.SubjectPublicKeyInfo))
n = public.public_numbers()
b64 = lambda v: base64.urlsafe_b64encode(v.to_bytes(32, "big")).rstrip(b"=").decode()
jwk = {"kty": "EC", "crv": "P-256", "x": b64(n.x), "y": b64(n.y), "alg": "ES256", "kid": "bench"}
now = int(time.time())
claims = {"iss": issuer, "aud": audience, "sub": "bench", "iat": now, "exp": now + 3600}
print(json.dumps({"keys": [jwk]}))
print(jwt.encode(claims, key, algorithm="ES256", headers={"kid": "bench"}))
"#;

impl Token {
    pub fn make(dir: &Path) -> Result<Token, String> {
        let public_pem = dir.join("token-public.pem");
        let out = Command::new("/usr/bin/python3")
            .args(["-c", MAKE, ISSUER, AUDIENCE])
            .arg(&public_pem)
            .output()
            .map_err(|e| format!("/usr/bin/python3 (PyJWT, for the token part): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "making the token with PyJWT: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        match (lines.next(), lines.next()) {
            (Some(jwks), Some(jwt)) => Ok(Token {
                jwt: jwt.trim().to_string(),
                jwks: jwks.to_string(),
                public_pem,
            }),
            _ => Err(format!("PyJWT printed no key set and token: {text}")),
        }
    }
}
