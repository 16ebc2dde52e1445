//! Whatever the `Authorization` header holds, the check answers and does not panic.

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn valid() -> String {
    token(
        json!({ "alg": "ES256", "kid": "p256" }),
        good_claims(),
        "p256",
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_header_gets_an_answer(header in any::<String>()) {
        let _ = check(Some(&header), &all_keys(), &settings(), NOW);
    }

    #[test]
    fn any_token_of_token_characters_gets_an_answer(token in "[A-Za-z0-9_=+/.-]{0,400}") {
        let r = check(Some(&format!("Bearer {token}")), &all_keys(), &settings(), NOW);
        prop_assert!(r.is_err());
    }

    #[test]
    fn a_mutated_valid_token_never_passes(
        at in 0usize..400, by in 1u8..=255, cut in 0usize..400,
    ) {
        let mut bytes = valid().into_bytes();
        let i = at % bytes.len();
        bytes[i] ^= by;
        bytes.truncate(bytes.len() - cut % 8);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Ok(who) = check(Some(&format!("Bearer {text}")), &all_keys(), &settings(), NOW) {
            // The signature covers the exact text, and the decoding has one spelling per value.
            prop_assert!(false, "a mutated token passed as {}", who.sub);
        }
    }
}

fn settings() -> Settings<'static> {
    static NONE: BTreeMap<String, Vec<String>> = BTreeMap::new();
    Settings {
        issuer: ISSUER,
        audience: AUDIENCE,
        leeway_s: LEEWAY,
        require: &NONE,
    }
}
