//! Whether a key could make a signature when it did: the signature's own times (made, expires)
//! and the signing key's (created, expires, revoked), for the primary key and, when a subkey
//! signed, that subkey too.
//!
//! Key expiry comes from the self-signatures (`KeyExpirationTime`): for the primary key the
//! latest expiry its user-id self-signatures give (pgp's [`SignedPublicKey::expires_at`]
//! heuristic, which follows an extended key), for a subkey its newest binding signature. An
//! expiry of zero means "never". A revoked key is refused whatever the revocation's reason or
//! time, as gpgv and apt do; so is a key expired now, even if it was valid when it signed, so an
//! old index signed before a key's expiry cannot be replayed after it.

use chrono::{DateTime, Duration, Utc};
use pgp::composed::{SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, PublicKeyTrait};

use super::date;

/// Checks `sig`, verified against `key` (or its subkey `sub`), at `now`. The error says why the
/// signature cannot be trusted, naming the key and the times.
pub(super) fn check(
    sig: &Signature,
    key: &SignedPublicKey,
    sub: Option<&SignedPublicSubKey>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let Some(&made) = sig.created() else {
        return Err("the signature carries no creation time".to_string());
    };
    let signer = match sub {
        Some(s) => format!("subkey {:X}", s.key.fingerprint()),
        None => format!("key {:X}", key.primary_key.fingerprint()),
    };
    if made > now + date::FUTURE_ALLOWANCE {
        return Err(format!(
            "the signature by {signer} was made at {}, in the future (it is now {})",
            date::format(&made),
            date::format(&now)
        ));
    }
    if let Some(expires) = after(made, sig.signature_expiration_time()) {
        if expires <= now {
            return Err(format!(
                "the signature by {signer} made at {} expired at {} (it is now {})",
                date::format(&made),
                date::format(&expires),
                date::format(&now)
            ));
        }
    }

    let primary = Times {
        name: format!("key {:X}", key.primary_key.fingerprint()),
        created: *key.primary_key.created_at(),
        expires: after(
            *key.primary_key.created_at(),
            key.details.key_expiration_time().as_ref(),
        ),
        revoked: key
            .details
            .revocation_signatures
            .iter()
            .any(|r| r.verify_key(&key.primary_key).is_ok()),
    };
    primary.check(made, now)?;
    if let Some(sub) = sub {
        let created = *sub.key.created_at();
        let binding = sub
            .signatures
            .iter()
            .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
            .max_by_key(|s| s.created().copied());
        Times {
            name: format!("subkey {:X}", sub.key.fingerprint()),
            created,
            expires: binding.and_then(|b| after(created, b.key_expiration_time())),
            // Keyring::from_keys keeps only subkeys whose every signature verifies.
            revoked: sub
                .signatures
                .iter()
                .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation)),
        }
        .check(made, now)?;
    }
    Ok(())
}

/// `start + duration`, where no duration or a zero one means "never".
fn after(start: DateTime<Utc>, duration: Option<&Duration>) -> Option<DateTime<Utc>> {
    duration
        .filter(|d| **d > Duration::zero())
        .and_then(|d| start.checked_add_signed(*d))
}

/// The times of one key.
struct Times {
    name: String,
    created: DateTime<Utc>,
    expires: Option<DateTime<Utc>>,
    revoked: bool,
}

impl Times {
    /// Whether this key could make a signature at `made`, and still counts at `now`.
    fn check(&self, made: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
        let name = &self.name;
        if self.revoked {
            return Err(format!("{name} is revoked"));
        }
        if made < self.created {
            return Err(format!(
                "{name} was created at {}, after the signature it made at {}",
                date::format(&self.created),
                date::format(&made)
            ));
        }
        match self.expires {
            Some(e) if e <= made => Err(format!(
                "{name} expired at {}, before the signature it made at {}",
                date::format(&e),
                date::format(&made)
            )),
            Some(e) if e <= now => Err(format!(
                "{name} expired at {} (it is now {})",
                date::format(&e),
                date::format(&now)
            )),
            _ => Ok(()),
        }
    }
}
