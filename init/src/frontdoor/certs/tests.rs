use std::collections::BTreeSet;

use baton_cluster::tls::ca::Ca;
use time::OffsetDateTime;

use super::*;
use rustls::pki_types::pem::PemObject as _;

fn hosts(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|h| h.to_string()).collect()
}

#[test]
fn every_host_gets_a_marked_certificate_from_the_ca_and_keeps_it_until_it_ends() {
    let card = tempfile::tempdir().expect("card");
    let ca = Ca::generate("test").expect("ca");
    let mut certs = Certs::default();
    let now = OffsetDateTime::now_utc();
    let wanted = hosts(&["shop.lan", "*.apps.lan"]);
    let built = certs.build(&wanted, card.path(), Some(&ca), "b1", now);
    assert!(built.notes.is_empty(), "{:?}", built.notes);
    // The default, then one per host.
    assert_eq!(built.certs.len(), 3);
    assert!(built.certs[0].hosts.is_empty());
    for cert in &built.certs {
        baton_frontdoor::tls::certs::load(cert).expect("usable");
        let der = rustls::pki_types::CertificateDer::from_pem_slice(cert.chain_pem.as_bytes())
            .expect("pem");
        assert!(baton_cluster::tls::front_door::is_marked(&der).expect("parses"));
    }
    assert!(matches!(built.sources["shop.lan"], Source::Issued(_)));
    // Built again soon after: the same certificates.
    let again = certs.build(&wanted, card.path(), Some(&ca), "b1", now);
    assert_eq!(again.certs, built.certs);
    // Close to their end: issued anew.
    let later = now + time::Duration::days(380);
    let renewed = certs.build(&wanted, card.path(), Some(&ca), "b1", later);
    assert_ne!(renewed.certs[1].chain_pem, built.certs[1].chain_pem);
}

#[test]
fn the_card_s_own_certificate_wins_and_a_broken_one_is_named() {
    let card = tempfile::tempdir().expect("card");
    let ca = Ca::generate("test").expect("ca");
    let leaf = ca
        .issue_for_hosts(&["shop.lan".to_string()], OffsetDateTime::now_utc(), 30)
        .expect("leaf");
    let dir = card.path().join(DIR);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("shop.lan.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("shop.lan.key"), &leaf.key_pem).unwrap();
    // A wildcard's files are named with `_`; this key belongs to another certificate.
    std::fs::write(dir.join("_.apps.lan.pem"), &leaf.cert_pem).unwrap();
    let other = ca
        .issue_for_hosts(&["x.lan".to_string()], OffsetDateTime::now_utc(), 30)
        .expect("other");
    std::fs::write(dir.join("_.apps.lan.key"), &other.key_pem).unwrap();
    let mut certs = Certs::default();
    let built = certs.build(
        &hosts(&["shop.lan", "*.apps.lan"]),
        card.path(),
        Some(&ca),
        "b1",
        OffsetDateTime::now_utc(),
    );
    assert_eq!(built.sources["shop.lan"], Source::Card);
    let card_cert = built
        .certs
        .iter()
        .find(|c| c.hosts == ["shop.lan"])
        .unwrap();
    assert_eq!(card_cert.chain_pem, leaf.cert_pem);
    assert!(matches!(built.sources["*.apps.lan"], Source::Issued(_)));
    assert!(
        built
            .notes
            .iter()
            .any(|n| n.contains("certs/_.apps.lan.pem") && n.contains("does not fit")),
        "{:?}",
        built.notes
    );
    let before = card_fingerprint(card.path(), &hosts(&["shop.lan"]));
    assert_eq!(before.len(), 2);
}

#[test]
fn without_a_ca_hosts_without_card_files_have_no_certificate_and_say_why() {
    let card = tempfile::tempdir().expect("card");
    let mut certs = Certs::default();
    let built = certs.build(
        &hosts(&["shop.lan"]),
        card.path(),
        None,
        "b1",
        OffsetDateTime::now_utc(),
    );
    assert!(built.certs.is_empty());
    assert!(matches!(built.sources["shop.lan"], Source::Missing(_)));
    assert_eq!(built.notes.len(), 2, "{:?}", built.notes);
}
