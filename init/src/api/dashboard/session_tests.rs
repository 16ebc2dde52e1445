use super::*;

const TOKEN: &str = "a-token-of-twenty-chars";

#[test]
fn a_sealed_session_opens_with_its_token_name_and_boot_only() {
    let sessions = Sessions::with_secret([1; 32]);
    let (value, session) = sessions.open_new(TOKEN, NAME_TLS, 100).expect("sealed");
    assert!(value.len() <= MAX_VALUE, "{}", value.len());
    assert_eq!(session.expires_s, 100 + LIFETIME.as_secs());
    assert_eq!(
        sessions.open(TOKEN, NAME_TLS, &value, 101),
        Some(session.clone())
    );
    // Another name (the plain-HTTP cookie offered over TLS): refused.
    assert_eq!(sessions.open(TOKEN, NAME_PLAIN, &value, 101), None);
    // Another boot (another secret): refused.
    assert_eq!(
        Sessions::with_secret([2; 32]).open(TOKEN, NAME_TLS, &value, 101),
        None
    );
    // Two sessions differ in their CSRF value and their sealed bytes.
    let (again, other) = sessions.open_new(TOKEN, NAME_TLS, 100).expect("sealed");
    assert_ne!(again, value);
    assert_ne!(other.csrf, session.csrf);
    assert_eq!(session.left_s(101), LIFETIME.as_secs() - 1);
}

#[test]
fn a_session_ends_at_its_expiry() {
    let sessions = Sessions::with_secret([1; 32]);
    let (value, session) = sessions.open_new(TOKEN, NAME_TLS, 0).expect("sealed");
    assert!(sessions
        .open(TOKEN, NAME_TLS, &value, session.expires_s - 1)
        .is_some());
    assert_eq!(
        sessions.open(TOKEN, NAME_TLS, &value, session.expires_s),
        None
    );
    assert_eq!(sessions.open(TOKEN, NAME_TLS, &value, u64::MAX), None);
}

#[test]
fn a_new_token_ends_every_session() {
    let sessions = Sessions::with_secret([1; 32]);
    let (value, _) = sessions.open_new(TOKEN, NAME_TLS, 0).expect("sealed");
    assert_eq!(
        sessions.open("another-token-of-twenty", NAME_TLS, &value, 1),
        None
    );
}

#[test]
fn every_altered_byte_is_refused() {
    let sessions = Sessions::with_secret([1; 32]);
    let (value, _) = sessions.open_new(TOKEN, NAME_TLS, 0).expect("sealed");
    let raw = URL_SAFE_NO_PAD.decode(&value).expect("b64");
    for i in 0..raw.len() {
        let mut bad = raw.clone();
        bad[i] ^= 0x01;
        let bad = URL_SAFE_NO_PAD.encode(&bad);
        assert_eq!(sessions.open(TOKEN, NAME_TLS, &bad, 1), None, "byte {i}");
    }
    // Cut, lengthened, not base64, far too long.
    let long = "A".repeat(MAX_VALUE + 4);
    for bad in [
        "",
        "AAAA",
        &value[..value.len() - 2],
        &format!("{value}AA"),
        "not base64!",
        &long,
    ] {
        assert_eq!(sessions.open(TOKEN, NAME_TLS, bad, 1), None, "{bad:.20}");
    }
}

#[test]
fn without_randomness_no_session_is_made() {
    let sessions = Sessions {
        secret: None,
        born: Instant::now(),
    };
    assert!(sessions.open_new(TOKEN, NAME_TLS, 0).is_none());
}

#[test]
fn cookies_are_found_by_exact_name_and_set_with_their_attributes() {
    let headers = ["a=1; __Host-baton_dash=two", "__Host-baton_dash=three"];
    assert_eq!(find(headers.iter().copied(), NAME_TLS), Some("two"));
    assert_eq!(find(headers.iter().copied(), NAME_PLAIN), None);
    assert_eq!(
        set_cookie(NAME_TLS, "v", LIFETIME, true),
        "__Host-baton_dash=v; Max-Age=43200; Path=/; HttpOnly; SameSite=Strict; Secure"
    );
    assert_eq!(
        set_cookie(NAME_PLAIN, "", Duration::ZERO, false),
        "baton_dash=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"
    );
}
