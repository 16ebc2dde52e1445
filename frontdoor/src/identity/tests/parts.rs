//! Strict base64url.

use crate::identity::b64::{decode, encode, B64Error};

#[test]
fn base64url_round_trips_every_length() {
    for len in 0..40u8 {
        let data: Vec<u8> = (0..len)
            .map(|i| i.wrapping_mul(97).wrapping_add(251))
            .collect();
        let text = encode(&data);
        assert!(!text.contains(['=', '+', '/']), "{text}");
        assert_eq!(decode(&text, 64), Ok(data));
    }
}

#[test]
fn base64url_refuses_other_spellings() {
    assert_eq!(decode("QQ==", 8), Err(B64Error::BadChar));
    assert_eq!(decode("+/+/", 8), Err(B64Error::BadChar));
    assert_eq!(decode("QQ\n", 8), Err(B64Error::BadChar));
    assert_eq!(decode("QUJDR", 8), Err(B64Error::BadLength));
    // "QQ" is "A"; "QR" would decode to "A" too if the spare bits were ignored.
    assert_eq!(decode("QQ", 8), Ok(b"A".to_vec()));
    assert_eq!(decode("QR", 8), Err(B64Error::NonCanonical));
    assert_eq!(decode("QUI", 8), Ok(b"AB".to_vec()));
    assert_eq!(decode("QUJ", 8), Err(B64Error::NonCanonical));
    assert_eq!(decode("QUJD", 2), Err(B64Error::TooLong));
}
