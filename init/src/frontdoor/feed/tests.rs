use std::net::Ipv4Addr;
use std::time::Duration;

use baton_spec::service::Route;

use super::*;
use crate::containers::supervisor::routed::{RoutedInstance, RoutedService};

fn route(host: Option<&str>, path: &str, auth: Auth) -> Route {
    Route {
        host: host.map(str::to_string),
        path: path.to_string(),
        auth,
        timeout: Duration::from_secs(30),
        require: Default::default(),
        forward: None,
    }
}

fn routed(entries: &[(&str, Route)]) -> Routed {
    let mut out = Routed::default();
    for (name, route) in entries {
        out.services.insert(
            name.to_string(),
            RoutedService {
                route: route.clone(),
                port: 8080,
                instances: vec![
                    RoutedInstance {
                        id: format!("{name}-1#1"),
                        addr: Ipv4Addr::new(10, 88, 0, 2),
                        board: None,
                        ready: true,
                    },
                    RoutedInstance {
                        id: "b2/10.88.1.2".to_string(),
                        addr: Ipv4Addr::new(10, 88, 1, 2),
                        board: Some("b2".into()),
                        ready: false,
                    },
                ],
                hold_queue: 100,
                hold_timeout: Duration::from_secs(30),
            },
        );
    }
    out
}

#[test]
fn routes_and_settings_become_a_snapshot_the_front_door_accepts() {
    let settings = FrontDoor {
        redirect_http: true,
        https: 8443,
        ..FrontDoor::default()
    };
    let mut api_route = route(Some("*.apps.lan"), "/api", Auth::Oidc);
    api_route
        .require
        .insert("groups".into(), vec!["admins".into()]);
    let r = routed(&[
        ("shop", route(Some("shop.lan"), "/", Auth::None)),
        ("api", api_route.clone()),
    ]);
    let (snapshot, notes) = snapshot(&settings, &r, Vec::new(), None, "b1");
    assert!(notes.is_empty(), "{notes:?}");
    snapshot.check().expect("the front door takes it");
    assert_eq!(snapshot.routes.len(), 2);
    let api = snapshot.routes.iter().find(|r| r.service == "api").unwrap();
    assert_eq!(api.auth, fd::Auth::Oidc);
    assert_eq!(api.require, api_route.require);
    assert_eq!(api.timeout_ms, 30_000);
    assert_eq!(snapshot.settings.https_port, 8443);
    assert!(snapshot.settings.redirect_http);
    assert_eq!(
        hosts(&r).into_iter().collect::<Vec<_>>(),
        ["*.apps.lan", "shop.lan"]
    );
}

#[test]
fn a_clash_keeps_the_first_service_and_says_which_was_left_out() {
    let r = routed(&[
        ("beta", route(Some("shop.lan"), "/", Auth::None)),
        ("alpha", route(Some("shop.lan"), "/", Auth::None)),
    ]);
    let (snapshot, notes) = snapshot(&FrontDoor::default(), &r, Vec::new(), None, "b1");
    snapshot.check().expect("no clash left");
    assert_eq!(snapshot.routes.len(), 1);
    assert_eq!(snapshot.routes[0].service, "alpha");
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].contains("beta") && notes[0].contains("alpha"),
        "{notes:?}"
    );
}

#[test]
fn instances_name_their_board_and_carry_the_service_port() {
    let r = routed(&[("shop", route(None, "/", Auth::None))]);
    let lists = instances(&r, "b1");
    let shop = &lists["shop"];
    assert_eq!(shop.len(), 2);
    assert_eq!(shop[0].board, "b1");
    assert_eq!(shop[1].board, "b2");
    assert!(shop.iter().all(|i| i.port == 8080));
    assert!(!shop[1].ready);
}

#[test]
fn the_provider_s_key_set_comes_from_the_card_or_a_note_says_why_not() {
    let card = tempfile::tempdir().expect("card");
    let text = |s: &str| s.to_string();
    let mut settings = FrontDoor::default();
    assert_eq!(oidc(&settings, card.path()), (None, None));
    settings.oidc = Some(baton_spec::front_door::Oidc {
        issuer: text("https://idp.lan"),
        audience: text("baton"),
        jwks: Some(text("certs/idp-jwks.json")),
        jwks_url: None,
        ca: None,
        client_id: None,
        client_secret: None,
        scopes: Vec::new(),
        leeway: Duration::from_secs(30),
        session_ttl: Duration::from_secs(3600),
        callback_path: text("/.baton/auth/callback"),
    });
    let (none, note) = oidc(&settings, card.path());
    assert!(none.is_none());
    assert!(note.expect("a note").starts_with("certs/idp-jwks.json: "));
    std::fs::create_dir_all(card.path().join("certs")).unwrap();
    std::fs::write(card.path().join("certs/idp-jwks.json"), r#"{"keys":[]}"#).unwrap();
    let (some, note) = oidc(&settings, card.path());
    assert_eq!(note, None);
    let some = some.expect("settings");
    assert_eq!((some.leeway_s, some.jwks.as_str()), (30, r#"{"keys":[]}"#));
    std::fs::write(
        card.path().join("certs/idp-jwks.json"),
        "x".repeat(MAX_JWKS as usize + 1),
    )
    .unwrap();
    assert!(oidc(&settings, card.path())
        .1
        .expect("a note")
        .contains("larger than"));
    // With jwks_url, a card set that cannot be read leaves the fetched one; no card set at all
    // is no note.
    let with_url = settings.oidc.as_mut().expect("oidc");
    with_url.jwks_url = Some(text("https://idp.lan/jwks"));
    let (some, note) = oidc(&settings, card.path());
    assert_eq!(some.expect("settings").jwks, "");
    assert!(note
        .expect("a note")
        .contains("only the key set of jwks_url is used"));
    settings.oidc.as_mut().expect("oidc").jwks = None;
    let (some, note) = oidc(&settings, card.path());
    assert_eq!((some.expect("settings").jwks, note), (String::new(), None));
}

#[test]
fn a_forward_route_carries_its_auth_service() {
    let mut protected = route(Some("app.lan"), "/", Auth::Forward);
    protected.forward = Some(baton_spec::service::Forward {
        url: "http://auth:9091/api/verify".into(),
        copy_headers: vec!["Remote-Groups".into()],
        user_header: "Remote-User".into(),
        email_header: "Remote-Email".into(),
    });
    let r = routed(&[
        ("app", protected),
        ("auth", route(Some("auth.lan"), "/", Auth::None)),
    ]);
    let (snapshot, notes) = snapshot(&FrontDoor::default(), &r, Vec::new(), None, "b1");
    assert!(notes.is_empty(), "{notes:?}");
    snapshot.check().expect("the front door takes it");
    let app = snapshot.routes.iter().find(|r| r.service == "app").unwrap();
    assert_eq!(app.auth, fd::Auth::Forward);
    let forward = app.forward.as_ref().expect("forward");
    assert_eq!(forward.url, "http://auth:9091/api/verify");
    assert_eq!(forward.copy_headers, ["Remote-Groups"]);
    assert_eq!(
        (forward.user_header.as_str(), forward.email_header.as_str()),
        ("Remote-User", "Remote-Email")
    );
    let auth = snapshot
        .routes
        .iter()
        .find(|r| r.service == "auth")
        .unwrap();
    assert_eq!(auth.forward, None);
    // The auth service is a service of the snapshot, with its instances: the front door can
    // reach it through the balancer.
    assert!(snapshot.instances.contains_key("auth"));
}

#[test]
fn an_auth_service_without_a_route_is_listed_with_its_instances_but_not_routed() {
    let mut r = routed(&[("app", route(Some("app.lan"), "/", Auth::None))]);
    r.auth_services.insert(
        "auth".into(),
        crate::containers::supervisor::routed::AuthService {
            port: 9091,
            instances: vec![RoutedInstance {
                id: "auth-1#1".into(),
                addr: Ipv4Addr::new(10, 88, 0, 9),
                board: None,
                ready: true,
            }],
        },
    );
    let (snapshot, notes) = snapshot(&FrontDoor::default(), &r, Vec::new(), None, "b1");
    assert!(notes.is_empty(), "{notes:?}");
    snapshot.check().expect("the front door takes it");
    assert!(snapshot.services.contains_key("auth"));
    assert!(snapshot.routes.iter().all(|r| r.service != "auth"));
    let auth = &snapshot.instances["auth"];
    assert_eq!(
        (auth.len(), auth[0].port, auth[0].board.as_str()),
        (1, 9091, "b1")
    );
    assert!(instances(&r, "b1").contains_key("auth"));
}
