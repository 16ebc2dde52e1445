//! What the front door's identity checks need from PID 1 besides the OIDC settings
//! (docs/design/front-door.md sections 4, 5.3 and 5.5): the key `X-Baton-Identity` is signed
//! with, derived from the cluster key so that every board has the same one and no card file
//! is needed (the cluster key itself never reaches the front door), and the card's client CA
//! for `auth = "mtls"` routes, read bounded.

use baton_frontdoor::config::model::{AssertionKey, MtlsSettings};
use baton_frontdoor::identity::b64;
use hkdf::Hkdf;
use sha2::Sha256;

/// The HKDF info of the assertion key; a new version of the key gets a new info.
pub const INFO: &[u8] = b"baton front door identity v1";
/// Candidate scalars taken from one HKDF output before giving up (each fails with a
/// probability below 2^-32, so the first one practically always serves).
const CANDIDATES: usize = 8;
/// Largest CA file read from the card (the client CA, the identity provider's `ca`).
pub const MAX_CA: u64 = 64 * 1024;

/// The assertion key of the cluster `name` with key `cluster_key`: HKDF-SHA256 (no salt, info
/// [`INFO`]) gives 32-byte candidates in turn, and the first that is a valid P-256 scalar (in
/// 1..n, rejection sampling as FIPS 186-5 A.2.2) is the key. Same inputs, same key.
pub fn assertion_key(name: &str, cluster_key: &str) -> Result<AssertionKey, String> {
    let mut okm = [0u8; 32 * CANDIDATES];
    Hkdf::<Sha256>::new(None, cluster_key.as_bytes())
        .expand(INFO, &mut okm)
        .map_err(|e| format!("HKDF: {e}"))?;
    let secret = okm
        .chunks_exact(32)
        .find_map(|candidate| p256::SecretKey::from_slice(candidate).ok())
        .ok_or("no candidate is a P-256 scalar")?;
    let d = secret.to_bytes();
    let public =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    let key = AssertionKey {
        issuer: format!("baton:{name}"),
        d: b64::encode(d.as_slice()),
        public: b64::encode(public.as_bytes()),
    };
    // The output buffer held the candidates; wipe what is ours to wipe.
    zeroize::Zeroize::zeroize(&mut okm);
    Ok(key)
}

/// The client CA of `[front_door.mtls]`, read from the card; `None` with a note when there is
/// none to give (mtls routes then answer 503: they never pass unchecked).
pub fn client_ca(
    settings: &baton_spec::FrontDoor,
    card: &std::path::Path,
) -> (Option<MtlsSettings>, Option<String>) {
    let Some(mtls) = &settings.mtls else {
        return (None, None);
    };
    let path = card.join(&mtls.ca);
    let read = super::certs::read_text(&path, MAX_CA);
    // Checked here with the front door's own code, so that a CA it could not use is named in
    // `/v1/status` and not only on the console.
    let read = read.and_then(|ca_pem| {
        baton_frontdoor::tls::mtls::verifier(&ca_pem)
            .map(|_| ca_pem)
            .map_err(|e| format!("cannot be used: {e}"))
    });
    match read {
        Ok(ca_pem) => (Some(MtlsSettings { ca_pem }), None),
        Err(e) => (
            None,
            Some(format!(
                "[front_door.mtls] ca {}: {e}; mtls routes answer 503",
                mtls.ca
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "a cluster key of at least thirty-two characters";

    #[test]
    fn the_key_is_the_same_for_the_same_cluster_key_and_differs_for_another() {
        let a = assertion_key("lab", KEY).expect("key");
        let b = assertion_key("lab", KEY).expect("key");
        assert_eq!(a, b);
        let other = assertion_key("lab", &format!("{KEY}!")).expect("key");
        assert_ne!(a.d, other.d);
        assert_ne!(a.public, other.public);
        assert_eq!(a.issuer, "baton:lab");
    }

    #[test]
    fn the_key_pair_holds_together_and_signs() {
        // The front door's signer refuses a scalar and a point that do not belong together.
        let key = assertion_key("lab", KEY).expect("key");
        let signer = baton_frontdoor::identity::assertion::Signer::new(&key).expect("signer");
        assert!(signer.jwks().contains("\"crv\":\"P-256\""));
        assert!(!signer.jwks().contains(&key.d));
    }

    #[test]
    fn the_key_is_the_first_hkdf_block_when_it_is_a_scalar() {
        // Pins the derivation (HKDF-SHA256, no salt, this info, first 32 bytes) against the
        // hkdf crate used directly, so a change of method cannot pass unnoticed.
        let mut first = [0u8; 32];
        Hkdf::<Sha256>::new(None, KEY.as_bytes())
            .expand(INFO, &mut first)
            .expect("hkdf");
        let key = assertion_key("lab", KEY).expect("key");
        assert_eq!(b64::decode(&key.d, 32).expect("b64"), first);
    }

    #[test]
    fn the_client_ca_is_read_bounded_from_the_card() {
        let dir = tempfile::tempdir().expect("dir");
        let mut settings = baton_spec::FrontDoor::default();
        assert_eq!(client_ca(&settings, dir.path()), (None, None));
        settings.mtls = Some(baton_spec::front_door::Mtls {
            ca: "certs/clients.pem".into(),
        });
        let (none, note) = client_ca(&settings, dir.path());
        assert!(none.is_none());
        assert!(note.expect("note").contains("certs/clients.pem"));
        std::fs::create_dir(dir.path().join("certs")).expect("mkdir");
        std::fs::write(dir.path().join("certs/clients.pem"), "not PEM").expect("write");
        let (none, note) = client_ca(&settings, dir.path());
        assert!(none.is_none());
        assert!(note.expect("note").contains("cannot be used"));
        let ca = baton_cluster::tls::ca::Ca::generate("clients").expect("ca");
        std::fs::write(dir.path().join("certs/clients.pem"), ca.cert_pem()).expect("write");
        let (got, note) = client_ca(&settings, dir.path());
        assert_eq!(got.expect("ca").ca_pem, ca.cert_pem());
        assert!(note.is_none(), "{note:?}");
        let big = vec![b'x'; usize::try_from(MAX_CA).expect("size") + 1];
        std::fs::write(dir.path().join("certs/clients.pem"), big).expect("write");
        assert!(client_ca(&settings, dir.path()).0.is_none());
    }
}
