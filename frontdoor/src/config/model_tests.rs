//! The snapshot's identity fields: optional on the wire, bounded when present.

use super::*;

fn snapshot() -> Snapshot {
    let mut s = Snapshot::default();
    s.services.insert("web".into(), Service { hold: None });
    s.routes.push(Route {
        service: "web".into(),
        host: None,
        path: "/".into(),
        auth: Auth::Oidc,
        timeout_ms: 1000,
        require: BTreeMap::from([("groups".into(), vec!["admins".into()])]),
    });
    s.oidc = Some(OidcSettings {
        issuer: "https://idp.example".into(),
        audience: "urn:baton".into(),
        leeway_s: 30,
        jwks: r#"{"keys":[]}"#.into(),
        ..Default::default()
    });
    s
}

#[test]
fn a_snapshot_without_oidc_or_require_still_reads() {
    let json = r#"{"settings":{"redirect_http":false,"https_port":0,"idle_timeout_ms":1,
        "max_connections":1,"per_client_connections":1,"per_client_rate":1,
        "per_client_burst":1,"trusted_proxies":[]},
        "routes":[{"service":"web","host":null,"path":"/","auth":"none","timeout_ms":1}],
        "services":{"web":{"hold":null}}}"#;
    let s: Snapshot = serde_json::from_str(json).expect("an older snapshot reads");
    assert_eq!(s.oidc, None);
    assert!(s.routes[0].require.is_empty());
    assert_eq!(s.check(), Ok(()));
}

#[test]
fn identity_fields_round_trip_and_pass_in_bounds() {
    let s = snapshot();
    assert_eq!(s.check(), Ok(()));
    let back: Snapshot =
        serde_json::from_str(&serde_json::to_string(&s).expect("json")).expect("round trip");
    assert_eq!(back, s);
}

#[test]
fn a_key_set_beyond_64_kib_is_refused() {
    let mut s = snapshot();
    if let Some(o) = s.oidc.as_mut() {
        o.jwks = " ".repeat(64 * 1024 + 1);
    }
    let err = s.check().expect_err("too big");
    assert!(err.to_string().contains("key set"), "{err}");
}

#[test]
fn oidc_settings_out_of_range_are_refused() {
    for change in [
        |o: &mut OidcSettings| o.issuer.clear(),
        |o: &mut OidcSettings| o.audience = "a".repeat(MAX_NAME + 1),
        |o: &mut OidcSettings| o.leeway_s = MAX_LEEWAY_S + 1,
    ] {
        let mut s = snapshot();
        change(s.oidc.as_mut().expect("oidc"));
        assert!(matches!(s.check(), Err(Refused::Setting(_))));
    }
}

#[test]
fn require_beyond_its_bounds_is_refused() {
    let too_many_claims: BTreeMap<String, Vec<String>> = (0..=MAX_REQUIRE_CLAIMS)
        .map(|i| (format!("c{i}"), vec!["v".into()]))
        .collect();
    let too_many_values = BTreeMap::from([(
        "groups".to_string(),
        vec!["v".to_string(); MAX_REQUIRE_VALUES + 1],
    )]);
    let long_value =
        BTreeMap::from([("groups".to_string(), vec!["v".repeat(MAX_REQUIRE_TEXT + 1)])]);
    let long_name = BTreeMap::from([("c".repeat(MAX_REQUIRE_TEXT + 1), vec!["v".to_string()])]);
    let no_values = BTreeMap::from([("groups".to_string(), Vec::new())]);
    for require in [
        too_many_claims,
        too_many_values,
        long_value,
        long_name,
        no_values,
    ] {
        let mut s = snapshot();
        s.routes[0].require = require;
        assert!(matches!(s.check(), Err(Refused::Route { .. })));
    }
}

#[test]
fn what_the_provider_link_brings_is_bounded() {
    let discovery = crate::idp::Discovery {
        issuer: "https://idp.example".into(),
        authorization_endpoint: "https://idp.example/auth".into(),
        token_endpoint: "https://idp.example/token".into(),
        end_session_endpoint: None,
        jwks_uri: None,
    };
    let mut s = snapshot();
    if let Some(o) = s.oidc.as_mut() {
        o.jwks_url = Some("https://idp.example/jwks".into());
        o.jwks_cached = Some(r#"{"keys":[]}"#.into());
        o.ca_pem = Some("PEM".into());
        o.discover = true;
        o.discovery = Some(discovery.clone());
    }
    assert_eq!(s.check(), Ok(()));
    let back: Snapshot =
        serde_json::from_str(&serde_json::to_string(&s).expect("json")).expect("round trip");
    assert_eq!(back, s);
    let other_issuer = crate::idp::Discovery {
        issuer: "https://evil.example".into(),
        ..discovery.clone()
    };
    let plain_token = crate::idp::Discovery {
        token_endpoint: "http://idp.example/token".into(),
        ..discovery
    };
    for change in [
        Box::new(|o: &mut OidcSettings| o.jwks_url = Some("a".repeat(5000)))
            as Box<dyn Fn(&mut OidcSettings)>,
        Box::new(|o: &mut OidcSettings| o.jwks_cached = Some(" ".repeat(64 * 1024 + 1))),
        Box::new(|o: &mut OidcSettings| o.ca_pem = Some(" ".repeat(MAX_PEM + 1))),
        Box::new(move |o: &mut OidcSettings| o.discovery = Some(other_issuer.clone())),
        Box::new(move |o: &mut OidcSettings| o.discovery = Some(plain_token.clone())),
    ] {
        let mut bad = s.clone();
        change(bad.oidc.as_mut().expect("oidc"));
        assert!(matches!(bad.check(), Err(Refused::Setting(_))), "{bad:?}");
    }
}
