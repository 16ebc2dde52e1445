//! The CA, the certificates it issues, the chain-only verifier and the ureq connector, against
//! each other, against `openssl verify` and against a real TLS server.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{ServerName, UnixTime};

use super::ca::Ca;
use super::verify::{client_config, server_config, ChainOnly};

const LAN: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub(super) fn verify(ca: &Ca, leaf: &super::ca::Leaf, name: &str) -> Result<(), rustls::Error> {
    let verifier = ChainOnly::new(ca.cert_der().clone()).unwrap();
    verifier
        .verify_server_cert(
            &leaf.chain[0],
            &[],
            &ServerName::try_from(name.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

#[test]
fn a_board_certificate_chains_to_its_ca_whatever_the_name() {
    let ca = Ca::generate("home").unwrap();
    let leaf = ca.issue_server("pi-kitchen", &[LAN, LOOPBACK]).unwrap();
    verify(&ca, &leaf, "pi-kitchen").unwrap();
    // Reached through a port forward or another name: still a board of this cluster.
    verify(&ca, &leaf, "forwarded.example").unwrap();
    verify(&ca, &leaf, "10.9.9.9").unwrap();
}

#[test]
fn a_certificate_of_another_ca_is_refused() {
    let ours = Ca::generate("home").unwrap();
    let theirs = Ca::generate("home").unwrap();
    let leaf = theirs.issue_server("pi-kitchen", &[LAN]).unwrap();
    let err = verify(&ours, &leaf, "pi-kitchen").unwrap_err();
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(_)),
        "{err:?}"
    );
}

#[test]
fn the_ca_reads_back_from_its_pem_files_and_refuses_a_foreign_key() {
    let ca = Ca::generate("home").unwrap();
    assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(ca.key_pem().contains("PRIVATE KEY"));
    let again = Ca::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
    let leaf = again.issue_server("pi-hall", &[LAN]).unwrap();
    verify(&ca, &leaf, "pi-hall").unwrap();

    let other = Ca::generate("home").unwrap();
    let err = Ca::from_pem(ca.cert_pem(), other.key_pem()).unwrap_err();
    assert!(err.to_string().contains("is not the key"), "{err}");
    let err = Ca::from_pem("not pem", ca.key_pem()).unwrap_err();
    assert!(err.to_string().contains("ca.pem"), "{err}");
    // A board's certificate is not a CA.
    let err = Ca::from_pem(&leaf.cert_pem, ca.key_pem()).unwrap_err();
    assert!(err.to_string().contains("not a CA"), "{err}");
}

/// `openssl verify` as an independent oracle: the board's certificate chains to the CA, for a
/// TLS server, with the host name, `.local` name and addresses in it.
#[test]
fn openssl_agrees_that_the_certificate_chains_to_the_ca() {
    let ca = Ca::generate("home").unwrap();
    let leaf = ca.issue_server("pi-kitchen", &[LAN, LOOPBACK]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("leaf.pem"), &leaf.cert_pem).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("openssl runs")
    };
    let out = run(&[
        "verify",
        "-CAfile",
        "ca.pem",
        "-purpose",
        "sslserver",
        "leaf.pem",
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&[
        "x509",
        "-in",
        "leaf.pem",
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "DNS:pi-kitchen",
        "DNS:pi-kitchen.local",
        "IP Address:192.168.1.20",
        "IP Address:127.0.0.1",
    ] {
        assert!(text.contains(want), "{want} missing in {text}");
    }
    let out = run(&["x509", "-in", "ca.pem", "-noout", "-text"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("prime256v1"), "{text}");
    assert!(text.contains("CA:TRUE"), "{text}");

    let stranger = Ca::generate("home").unwrap();
    std::fs::write(dir.path().join("other.pem"), stranger.cert_pem()).unwrap();
    let out = run(&["verify", "-CAfile", "other.pem", "leaf.pem"]);
    assert!(!out.status.success(), "{out:?}");
}

/// A one-connection TLS server on 127.0.0.1 answering `GET` with `ok`; returns its port.
pub(super) fn serve_once(leaf: super::ca::Leaf) -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = server_config(leaf).unwrap();
    std::thread::spawn(move || {
        let Ok((tcp, _)) = listener.accept() else {
            return;
        };
        tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let conn = rustls::ServerConnection::new(config).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let _ =
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        let _ = tls.flush();
        tls.conn.send_close_notify();
        let _ = tls.flush();
    });
    port
}

pub(super) fn agent(ca: &Ca) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build();
    super::connector::agent(config, client_config(ca.cert_pem()).unwrap())
}

#[test]
fn ureq_reaches_a_board_of_the_cluster_by_any_address() {
    let ca = Ca::generate("home").unwrap();
    // The certificate does not name 127.0.0.1: as through a port forward.
    let port = serve_once(ca.issue_server("pi-kitchen", &[LAN]).unwrap());
    let body = agent(&ca)
        .get(&format!("https://127.0.0.1:{port}/"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert_eq!(body, "ok");
}

#[test]
fn ureq_refuses_a_server_of_another_ca() {
    let ours = Ca::generate("home").unwrap();
    let theirs = Ca::generate("home").unwrap();
    let port = serve_once(theirs.issue_server("pi-kitchen", &[LOOPBACK]).unwrap());
    let err = agent(&ours)
        .get(&format!("https://127.0.0.1:{port}/"))
        .call()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("certificate") || text.contains("Certificate"),
        "{text}"
    );
}

#[test]
fn server_config_offers_tls12_and_tls13() {
    let ca = Ca::generate("home").unwrap();
    let config = server_config(ca.issue_server("b", &[]).unwrap()).unwrap();
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
}
