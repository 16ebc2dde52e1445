//! Signature tests: test keys made here, clear-signed texts, and the real Debian keys.

use super::*;
use pgp::composed::{KeyType, SecretKeyParamsBuilder, SignedSecretKey};
use pgp::types::{KeyDetails, Password, PublicKeyTrait, SecretKeyTrait};

/// A fresh Ed25519 signing key for tests.
pub(crate) fn test_key() -> SignedSecretKey {
    let params = SecretKeyParamsBuilder::default()
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id("baton test <test@baton.invalid>".into())
        .build()
        .unwrap();
    let mut rng = rand::thread_rng();
    params
        .generate(&mut rng)
        .unwrap()
        .sign(&mut rng, &Password::empty())
        .unwrap()
}

/// A fresh Ed25519 signing key created at `created` whose self-signature says it expires
/// `valid_for` later.
pub(crate) fn test_key_expiring(
    created: DateTime<Utc>,
    valid_for: chrono::Duration,
) -> SignedSecretKey {
    use chrono::SubsecRound;
    use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
    use pgp::types::Tag;

    let created = created.trunc_subsecs(0);
    let params = SecretKeyParamsBuilder::default()
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .created_at(created)
        .primary_user_id("baton expiring test <test@baton.invalid>".into())
        .build()
        .unwrap();
    let mut rng = rand::thread_rng();
    let mut key = params
        .generate(&mut rng)
        .unwrap()
        .sign(&mut rng, &Password::empty())
        .unwrap();
    let mut config = SignatureConfig::v4(
        SignatureType::CertPositive,
        key.primary_key.algorithm(),
        key.primary_key.hash_alg(),
    );
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(created)).unwrap(),
        Subpacket::regular(SubpacketData::KeyExpirationTime(valid_for)).unwrap(),
        Subpacket::regular(SubpacketData::IssuerFingerprint(
            key.primary_key.fingerprint(),
        ))
        .unwrap(),
    ];
    let user = key.details.users[0].id.clone();
    let sig = config
        .sign_certification(
            &key.primary_key,
            key.primary_key.public_key(),
            &Password::empty(),
            Tag::UserId,
            &user,
        )
        .unwrap();
    key.details.users[0].signatures = vec![sig];
    key
}

/// `text` clear-signed by `key`.
pub(crate) fn clearsign(key: &SignedSecretKey, text: &str) -> String {
    let msg = CleartextSignedMessage::sign(
        rand::thread_rng(),
        text,
        &key.primary_key,
        &Password::empty(),
    )
    .unwrap();
    msg.to_armored_string(Default::default()).unwrap()
}

#[test]
fn embedded_debian_keys_parse_and_self_verify() {
    let ring = Keyring::debian().unwrap();
    assert_eq!(ring.len(), 4);
    // The automatic signing keys sign with their (bound) subkeys.
    let subkeys: usize = ring.keys.iter().map(|k| k.public_subkeys.len()).sum();
    assert!(subkeys >= 2, "subkeys with valid bindings: {subkeys}");
}

#[test]
fn accepts_good_signature_and_returns_signed_text_only() {
    let key = test_key();
    let ring = Keyring::from_keys(vec![SignedPublicKey::from(key.clone())]);
    let text = "Origin: Debian\nSuite: test\n-dash line\n";
    let signed = clearsign(&key, text);
    let got = ring.verify_clearsigned(signed.as_bytes(), "test").unwrap();
    assert_eq!(got.trim_end(), text.trim_end());
}

#[test]
fn rejects_tampered_text_and_unknown_keys() {
    let key = test_key();
    let signed = clearsign(&key, "Suite: test\nSHA256:\n aa 1 main/x\n");
    let tampered = signed.replace(" aa 1 ", " bb 1 ");
    let ring = Keyring::from_keys(vec![SignedPublicKey::from(key.clone())]);
    let err = ring
        .verify_clearsigned(tampered.as_bytes(), "http://x/InRelease")
        .unwrap_err();
    assert!(matches!(err, Error::BadSignature { count: 1, .. }), "{err}");
    assert!(err.to_string().contains("http://x/InRelease"));

    let other = Keyring::from_keys(vec![SignedPublicKey::from(test_key())]);
    assert!(other.verify_clearsigned(signed.as_bytes(), "x").is_err());
    let debian = Keyring::debian().unwrap();
    assert!(debian.verify_clearsigned(signed.as_bytes(), "x").is_err());
}

#[test]
fn a_signature_by_an_expired_key_is_refused_naming_the_key_and_times() {
    let now = date::now();
    let day = chrono::Duration::days(1);
    // Created ten days ago, expired nine days ago: expired when it signed (now).
    let key = test_key_expiring(now - day * 10, day);
    let ring = Keyring::from_keys(vec![SignedPublicKey::from(key.clone())]);
    let signed = clearsign(&key, "Suite: test\n");
    let err = ring
        .verify_clearsigned(signed.as_bytes(), "http://x/InRelease")
        .unwrap_err();
    assert!(matches!(err, Error::Unusable { .. }), "{err}");
    let msg = err.to_string();
    let expired_at = date::format(&(*key.primary_key.public_key().created_at() + day));
    assert!(
        msg.contains("http://x/InRelease")
            && msg.contains("expired at")
            && msg.contains(&expired_at),
        "{msg}"
    );

    // Valid for a year: accepted now, refused once the year is over, though it was valid
    // when it signed (an old index must not outlive its key).
    let key = test_key_expiring(now - day, day * 365);
    let ring = Keyring::from_keys(vec![SignedPublicKey::from(key.clone())]);
    let signed = clearsign(&key, "Suite: test\n");
    ring.verify_clearsigned(signed.as_bytes(), "x").unwrap();
    let err = ring
        .verify_clearsigned_at(signed.as_bytes(), "x", now + day * 400)
        .unwrap_err();
    assert!(matches!(err, Error::Unusable { .. }), "{err}");
}

#[test]
fn a_signature_by_a_revoked_key_is_refused() {
    use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};

    let mut key = test_key();
    let signed = clearsign(&key, "Suite: test\n");
    let mut config = SignatureConfig::v4(
        SignatureType::KeyRevocation,
        key.primary_key.algorithm(),
        key.primary_key.hash_alg(),
    );
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(
            *key.primary_key.public_key().created_at(),
        ))
        .unwrap(),
        Subpacket::regular(SubpacketData::IssuerFingerprint(
            key.primary_key.fingerprint(),
        ))
        .unwrap(),
    ];
    let revocation = config
        .sign_key(
            &key.primary_key,
            &Password::empty(),
            key.primary_key.public_key(),
        )
        .unwrap();
    key.details.revocation_signatures.push(revocation);
    let ring = Keyring::from_keys(vec![SignedPublicKey::from(key)]);
    let err = ring.verify_clearsigned(signed.as_bytes(), "x").unwrap_err();
    assert!(
        matches!(err, Error::Unusable { .. }) && err.to_string().contains("is revoked"),
        "{err}"
    );
}

#[test]
fn a_signature_from_the_future_is_refused() {
    let key = test_key();
    let ring = Keyring::from_keys(vec![SignedPublicKey::from(key.clone())]);
    let signed = clearsign(&key, "Suite: test\n");
    let now = date::now();
    let early = now - date::FUTURE_ALLOWANCE - chrono::Duration::minutes(1);
    let err = ring
        .verify_clearsigned_at(signed.as_bytes(), "x", early)
        .unwrap_err();
    assert!(
        matches!(err, Error::Unusable { .. }) && err.to_string().contains("in the future"),
        "{err}"
    );
    // A clock a minute behind is within the allowance.
    ring.verify_clearsigned_at(signed.as_bytes(), "x", now - chrono::Duration::minutes(1))
        .unwrap();
}

#[test]
fn rejects_unsigned_text() {
    let ring = Keyring::debian().unwrap();
    let err = ring
        .verify_clearsigned(b"Origin: Debian\n", "plain")
        .unwrap_err();
    assert!(matches!(err, Error::NotSigned { .. }), "{err}");
}

#[test]
fn verifies_a_real_debian_inrelease() {
    // bookworm's InRelease as downloaded from deb.debian.org on 2026-07-11.
    let bytes = include_bytes!("testdata/bookworm-InRelease");
    let ring = Keyring::debian().unwrap();
    let text = ring.verify_clearsigned(bytes, "InRelease").unwrap();
    assert!(text.starts_with("Origin: Debian\n"));
    assert!(!text.contains("BEGIN PGP"));
    // Long after Debian's signing keys expire, the same index is refused.
    let late = date::now() + chrono::Duration::days(365 * 30);
    let err = ring
        .verify_clearsigned_at(bytes, "InRelease", late)
        .unwrap_err();
    assert!(matches!(err, Error::Unusable { .. }), "{err}");
    // One flipped byte inside the signed text breaks it.
    let mut bad = bytes.to_vec();
    let at = bad.windows(8).position(|w| w == b"bookworm").unwrap();
    bad[at] = b'c';
    assert!(ring.verify_clearsigned(&bad, "InRelease").is_err());
}
