//! `baton status` against a board that speaks TLS: it gets through with the cluster CA (from
//! `--ca` or the builder's copy for `--cluster`), by an address the certificate does not name,
//! and refuses a board whose certificate comes from another CA.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Command;

use baton_cluster::tls::ca::Ca;

/// A stand-in for a board's API over TLS on 127.0.0.1, with a certificate from `ca` for
/// `pi-a` and 192.0.2.7 only. Answers `/v1/status` with a status and everything else with 404,
/// one request per connection. Returns its port.
fn tls_board(ca: &Ca) -> u16 {
    let leaf = ca
        .issue_server("pi-a", &[IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))])
        .expect("issuing");
    let config = baton_cluster::tls::verify::server_config(leaf).expect("server config");
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut reader = BufReader::new(&mut tls);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let (code, body) = if request.starts_with("GET /v1/status ") {
                (200, r#"{"hostname": "pi-a", "board": "qemu-virt"}"#)
            } else {
                (404, r#"{"error": "no such endpoint"}"#)
            };
            let _ = write!(
                tls,
                "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    port
}

fn status(xdg: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .env("XDG_CONFIG_HOME", xdg)
        .env_remove("BATON_CA")
        .env_remove("BATON_CLUSTER")
        .args(["status", "--token", "t"])
        .args(args)
        .output()
        .expect("running baton");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn status_over_tls_trusts_the_cluster_ca_and_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate("home").unwrap();
    let port = tls_board(&ca);
    let board = format!("127.0.0.1:{port}");
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
    let ca_file = dir.path().join("ca.pem");

    // --ca, and no scheme: https:// is the default; 127.0.0.1 is not in the certificate.
    let (ok, text) = status(
        dir.path(),
        &["--board", &board, "--ca", ca_file.to_str().unwrap()],
    );
    assert!(ok, "{text}");
    assert!(text.contains("pi-a"), "{text}");

    // The builder's copy for the cluster, found by --cluster.
    let kept = dir.path().join("baton/home");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(kept.join("ca.pem"), ca.cert_pem()).unwrap();
    let url = format!("https://{board}");
    let (ok, text) = status(dir.path(), &["--board", &url, "--cluster", "home"]);
    assert!(ok, "{text}");

    // No CA for that cluster: a clear error naming where it looked.
    let (ok, text) = status(dir.path(), &["--board", &url, "--cluster", "shed"]);
    assert!(!ok);
    assert!(text.contains("baton/shed/ca.pem"), "{text}");

    // A board of another CA is refused.
    let stranger = Ca::generate("home").unwrap();
    std::fs::write(dir.path().join("other.pem"), stranger.cert_pem()).unwrap();
    let other = dir.path().join("other.pem");
    let (ok, text) = status(
        dir.path(),
        &["--board", &url, "--ca", other.to_str().unwrap()],
    );
    assert!(!ok, "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}
