//! Who is calling, for routes with `auth = "oidc"`: bearer tokens (JWS, RFC 7515) checked
//! against the identity provider's key set (JWKS, RFC 7517) and their claims (RFC 7519), with
//! ring and no JWT crate (docs/design/front-door.md sections 2 and 5.1). Pure code: the key set,
//! the settings and the time come from the caller.
//!
//! [`bearer::check`] is the entry; [`jwk`] reads the key set, [`jws`] checks a token's shape,
//! header and signature, [`claims`] what it says, [`verified`] remembers tokens whose signature
//! passed.

pub mod assertion;
pub mod b64;
pub mod bearer;
pub mod claims;
pub mod jwk;
pub mod jws;
pub mod login;
pub mod verified;

pub use bearer::{check, check_with, Denied, Identity, Settings};
pub use jwk::Keys;
pub use verified::Verified;

#[cfg(test)]
mod tests;
