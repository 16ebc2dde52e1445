//! Front-door certificates: what they name and how long they last, that browsers' name checks
//! take them, and that the cluster's own clients never take them for a board's.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::RootCertStore;
use time::{Duration, OffsetDateTime};

use super::ca::{Ca, Leaf, BACKDATE};
use super::front_door::{is_marked, MARKER, MAX_DAYS};
use super::tests::{agent, serve_once, verify};

const LAN: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));

fn hosts(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn issue(ca: &Ca, names: &[&str]) -> Leaf {
    let now = OffsetDateTime::now_utc();
    ca.issue_for_hosts(&hosts(names), now - BACKDATE, MAX_DAYS)
        .unwrap()
}

#[test]
fn chain_only_refuses_a_front_door_leaf_of_its_own_ca_and_takes_a_board() {
    let ca = Ca::generate("home").unwrap();
    let board = ca.issue_server("pi-kitchen", &[LAN]).unwrap();
    verify(&ca, &board, "pi-kitchen").unwrap();
    assert!(!is_marked(&board.chain[0]).unwrap());

    let front = issue(&ca, &["pi-kitchen", "*.apps.lan", "192.168.1.20"]);
    assert!(is_marked(&front.chain[0]).unwrap());
    // Whatever name the client asked for, even one the certificate carries.
    for name in ["pi-kitchen", "x.apps.lan", "192.168.1.20"] {
        let err = verify(&ca, &front, name).unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("front-door certificate") && text.contains(MARKER),
            "{text}"
        );
    }
}

#[test]
fn a_front_door_leaf_serves_its_hosts_to_a_verifier_that_checks_names() {
    let ca = Ca::generate("home").unwrap();
    let leaf = issue(&ca, &["app.lan", "*.apps.lan", "192.168.1.20"]);
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), super::provider())
        .build()
        .unwrap();
    let check = |name: &str| {
        webpki.verify_server_cert(
            &leaf.chain[0],
            &[],
            &ServerName::try_from(name.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
    };
    for name in ["app.lan", "x.apps.lan", "photos.apps.lan", "192.168.1.20"] {
        check(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // The wildcard is one label deep and does not cover its suffix itself.
    for name in ["apps.lan", "a.b.apps.lan", "other.lan", "192.168.1.21"] {
        assert!(check(name).is_err(), "{name} was accepted");
    }
}

#[test]
fn the_certificate_carries_the_wildcard_the_mark_and_397_days() {
    let ca = Ca::generate("home").unwrap();
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - BACKDATE;
    let leaf = ca
        .issue_for_hosts(&hosts(&["*.apps.lan", "app.lan", "app.lan"]), start, 397)
        .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf.chain[0]).unwrap();
    let san = cert.subject_alternative_name().unwrap().expect("a SAN");
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["DNSName(*.apps.lan)", "DNSName(app.lan)"]);
    let units: Vec<&str> = cert
        .subject()
        .iter_organizational_unit()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(units, [MARKER]);
    let validity = cert.validity();
    assert_eq!(validity.not_before.to_datetime(), start);
    assert_eq!(
        validity.not_after.to_datetime() - validity.not_before.to_datetime(),
        Duration::days(397)
    );
    assert!(cert.public_key().algorithm.parameters.is_some(), "EC key");
    assert!(leaf.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
}

#[test]
fn the_certificate_never_outlives_the_ca() {
    let ca = Ca::generate("home").unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(ca.cert_der()).unwrap();
    let ca_end = parsed.validity().not_after.to_datetime();
    let leaf = ca
        .issue_for_hosts(&hosts(&["app.lan"]), ca_end - Duration::days(10), MAX_DAYS)
        .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf.chain[0]).unwrap();
    assert_eq!(cert.validity().not_after.to_datetime(), ca_end);
    let err = ca
        .issue_for_hosts(&hosts(&["app.lan"]), ca_end, MAX_DAYS)
        .unwrap_err();
    assert!(err.to_string().contains("CA expires"), "{err}");
}

#[test]
fn bad_hosts_and_spans_are_refused_by_name() {
    let ca = Ca::generate("home").unwrap();
    let start = OffsetDateTime::now_utc() - BACKDATE;
    for bad in [
        "", "*", "*.", "a.*.lan", "*.*.lan", "App.lan", "-a.lan", "a..lan", "a.lan.", "a b",
    ] {
        let err = ca
            .issue_for_hosts(&hosts(&["ok.lan", bad]), start, 30)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("host {bad:?}")), "{bad}: {err}");
    }
    let long = format!("{}.lan", vec!["a".repeat(63); 4].join("."));
    assert!(ca.issue_for_hosts(&[long], start, 30).is_err());
    for days in [0, MAX_DAYS + 1] {
        let err = ca
            .issue_for_hosts(&hosts(&["ok.lan"]), start, days)
            .unwrap_err();
        assert!(err.to_string().contains(&format!("{days} days")), "{err}");
    }
    let err = ca.issue_for_hosts(&[], start, 30).unwrap_err();
    assert!(err.to_string().contains("got 0"), "{err}");
    let many: Vec<String> = (0..101).map(|i| format!("h{i}.lan")).collect();
    assert!(ca.issue_for_hosts(&many, start, 30).is_err());
}

/// A real handshake: the CLI's client configuration refuses a server that presents a
/// front-door certificate, and names why.
#[test]
fn the_cli_refuses_a_server_with_a_front_door_certificate() {
    let ca = Ca::generate("home").unwrap();
    let port = serve_once(issue(&ca, &["127.0.0.1", "pi-kitchen"]));
    let err = agent(&ca)
        .get(&format!("https://127.0.0.1:{port}/"))
        .call()
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("front-door certificate"), "{text}");
    // The same server with a board's certificate is reached (the control for the above).
    let port = serve_once(ca.issue_server("pi-kitchen", &[]).unwrap());
    let body = agent(&ca)
        .get(&format!("https://127.0.0.1:{port}/"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert_eq!(body, "ok");
}

/// `openssl verify` as an independent oracle: the front-door certificate is a valid TLS server
/// certificate for a name under its wildcard.
#[test]
fn openssl_takes_the_wildcard_certificate_for_a_host_under_it() {
    let ca = Ca::generate("home").unwrap();
    let leaf = issue(&ca, &["*.apps.lan"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("leaf.pem"), &leaf.cert_pem).unwrap();
    let run = |host: &str| {
        std::process::Command::new("openssl")
            .args(["verify", "-CAfile", "ca.pem", "-purpose", "sslserver"])
            .args(["-verify_hostname", host, "leaf.pem"])
            .current_dir(dir.path())
            .output()
            .expect("openssl runs")
    };
    let out = run("photos.apps.lan");
    assert!(out.status.success(), "{out:?}");
    let out = run("apps.lan");
    assert!(!out.status.success(), "{out:?}");
}
