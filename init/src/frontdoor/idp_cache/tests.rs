use super::*;

const ISSUER: &str = "https://idp.lan";
const JWKS_URL: &str = "https://idp.lan/jwks";

fn expect() -> Expect<'static> {
    Expect {
        issuer: ISSUER,
        jwks_url: Some(JWKS_URL),
    }
}

/// A key set with one usable P-256 key (the front door's test key).
fn jwks() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../frontdoor/tests/keys/p256.jwk.json"
    );
    let key: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("key")).expect("jwk");
    serde_json::json!({ "keys": [key] }).to_string()
}

fn discovery_doc(issuer: &str) -> String {
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": "https://idp.lan/auth",
        "token_endpoint": "https://idp.lan/token",
    })
    .to_string()
}

#[test]
fn fetched_documents_are_written_and_read_back_at_the_next_boot() {
    let dir = tempfile::tempdir().expect("dir");
    let mut cache = Cache::default();
    cache
        .fetched(
            dir.path(),
            &expect(),
            Fetched::Jwks,
            JWKS_URL.into(),
            jwks(),
        )
        .expect("kept");
    let url = discovery::url(ISSUER);
    cache
        .fetched(
            dir.path(),
            &expect(),
            Fetched::Discovery,
            url.clone(),
            discovery_doc(ISSUER),
        )
        .expect("kept");
    let (again, notes) = Cache::load(dir.path(), &expect());
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(again.jwks.as_ref().map(|e| e.body.clone()), Some(jwks()));
    let (entry, found) = again.discovery.as_ref().expect("discovery");
    assert_eq!(entry.url, url);
    assert_eq!(found.token_endpoint, "https://idp.lan/token");

    // Into the snapshot: the cached set for the same URL, the card's ca file.
    std::fs::create_dir_all(dir.path().join("certs")).expect("certs");
    std::fs::write(dir.path().join("certs/idp-ca.pem"), "PEM").expect("ca");
    let spec = baton_spec::front_door::Oidc {
        issuer: ISSUER.into(),
        audience: "baton".into(),
        jwks: None,
        jwks_url: Some(JWKS_URL.into()),
        ca: Some("certs/idp-ca.pem".into()),
        client_id: Some("baton".into()),
        client_secret: Some("s".into()),
        scopes: Vec::new(),
        leeway: Duration::from_secs(30),
        session_ttl: Duration::from_secs(3600),
        callback_path: "/.baton/auth/callback".into(),
    };
    let mut oidc = OidcSettings::default();
    let notes = again.complete(&mut oidc, &spec, dir.path());
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(oidc.jwks_cached, Some(jwks()));
    assert_eq!(oidc.ca_pem.as_deref(), Some("PEM"));
    assert!(oidc.discover);
    assert_eq!(oidc.discovery.as_ref(), Some(found));
    // Another jwks_url: the cached set is not handed over.
    let moved = baton_spec::front_door::Oidc {
        jwks_url: Some("https://idp.lan/other".into()),
        ..spec
    };
    again.complete(&mut oidc, &moved, dir.path());
    assert_eq!(oidc.jwks_cached, None);
}

#[test]
fn documents_from_elsewhere_or_out_of_bounds_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let mut cache = Cache::default();
    let mut refuse = |kind, url: &str, body: String, why: &str| {
        let err = cache
            .fetched(dir.path(), &expect(), kind, url.into(), body)
            .expect_err(why);
        assert!(err.contains(why), "{why}: {err}");
    };
    refuse(
        Fetched::Jwks,
        "https://evil.lan/jwks",
        jwks(),
        "not the jwks_url",
    );
    refuse(
        Fetched::Jwks,
        JWKS_URL,
        "x".repeat(MAX_FETCHED_BODY + 1),
        "longer than",
    );
    refuse(
        Fetched::Jwks,
        JWKS_URL,
        "{\"keys\":[]}".into(),
        "no usable key",
    );
    let many = serde_json::json!({ "keys": vec![serde_json::json!({}); 33] }).to_string();
    refuse(Fetched::Jwks, JWKS_URL, many, "33 keys");
    let url = discovery::url(ISSUER);
    refuse(
        Fetched::Discovery,
        &url,
        discovery_doc("https://evil.lan"),
        "evil.lan",
    );
    refuse(
        Fetched::Discovery,
        "https://evil.lan/x",
        discovery_doc(ISSUER),
        "not the issuer's",
    );
    assert!(cache.jwks.is_none() && cache.discovery.is_none());
    assert!(std::fs::read_dir(dir.path()).expect("dir").next().is_none());
}

#[test]
fn hostile_cache_files_are_ignored_with_a_note_naming_them() {
    let dir = tempfile::tempdir().expect("dir");
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.path().join(name), bytes);
    write(JWKS_FILE, vec![b'x'; MAX_FILE as usize + 1]).expect("write");
    write(DISCOVERY_FILE, b"\x00garbage".to_vec()).expect("write");
    let (cache, notes) = Cache::load(dir.path(), &expect());
    assert!(cache.jwks.is_none() && cache.discovery.is_none());
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].contains(JWKS_FILE) && notes[0].contains("larger than"),
        "{notes:?}"
    );
    assert!(
        notes[1].contains(DISCOVERY_FILE) && notes[1].contains("not a cache entry"),
        "{notes:?}"
    );
    // Well formed, but a key set from another URL and one that is not a key set.
    let entry = |url: &str, body: String| {
        serde_json::to_vec(&Entry {
            url: url.into(),
            body,
        })
    };
    write(
        JWKS_FILE,
        entry("https://evil.lan/jwks", jwks()).expect("json"),
    )
    .expect("write");
    write(
        DISCOVERY_FILE,
        entry(&discovery::url(ISSUER), "[]".into()).expect("json"),
    )
    .expect("write");
    let (cache, notes) = Cache::load(dir.path(), &expect());
    assert!(cache.jwks.is_none() && cache.discovery.is_none());
    assert!(notes[0].contains("not the jwks_url"), "{notes:?}");
    assert!(notes[1].contains("not a JSON object"), "{notes:?}");
}

#[test]
fn writes_happen_only_on_change_and_at_most_once_a_minute() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join(JWKS_FILE);
    let mut cache = Cache::default();
    let keep = |cache: &mut Cache, body: String| {
        cache
            .fetched(dir.path(), &expect(), Fetched::Jwks, JWKS_URL.into(), body)
            .expect("kept");
    };
    keep(&mut cache, jwks());
    let first = std::fs::read(&path).expect("written");
    // The same set again: nothing to write. Another one within the minute: kept, not written.
    std::fs::remove_file(&path).expect("remove");
    keep(&mut cache, jwks());
    assert!(!path.exists());
    let other = jwks().replace("{\"keys\":[{", "{\"keys\":[{\"kid\":\"k9\",");
    keep(&mut cache, other.clone());
    assert!(!path.exists());
    assert_eq!(
        cache.jwks.as_ref().map(|e| e.body.clone()),
        Some(other.clone())
    );
    assert!(!first.is_empty());
    // A minute later the same set comes again (the next refresh): now it is written.
    cache.written[0] = Instant::now().checked_sub(WRITE_GAP);
    keep(&mut cache, other.clone());
    let (read, _) = Cache::load(dir.path(), &expect());
    assert_eq!(read.jwks.map(|e| e.body), Some(other));
}
