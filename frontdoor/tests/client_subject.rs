//! The subject of a client certificate as the front door writes it (`X-Forwarded-User` of
//! `mtls` routes), against OpenSSL's RFC 2253 print of the same certificate: escapes, multi-valued
//! RDNs, registered names beyond RFC 4514's table, UTF-8, and an unregistered type as hex.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use baton_frontdoor::tls::client_cert;

fn workdir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "subject-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("workdir");
    dir
}

fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// (ours, OpenSSL's) subject string of a self-signed certificate made for `subject`.
fn both(subject: &str, multivalue: bool) -> (String, String) {
    let dir = workdir();
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "k.pem",
        "-out",
        "c.pem",
        "-days",
        "1",
        "-utf8",
        "-subj",
        subject,
    ];
    if multivalue {
        args.push("-multivalue-rdn");
    }
    run(&dir, &args);
    run(
        &dir,
        &["x509", "-in", "c.pem", "-outform", "DER", "-out", "c.der"],
    );
    let printed = run(
        &dir,
        &[
            "x509", "-in", "c.pem", "-noout", "-subject", "-nameopt", "RFC2253",
        ],
    );
    let theirs = printed
        .trim()
        .strip_prefix("subject=")
        .expect("subject=")
        .to_string();
    let der = std::fs::read(dir.join("c.der")).expect("der");
    let ours = client_cert::read(&der).expect("read").subject;
    (ours, theirs)
}

#[test]
fn subjects_read_as_openssl_prints_them() {
    for (subject, multivalue) in [
        ("/CN=ann", false),
        ("/C=DE/O=Lab, Inc./CN=ann\\+x #1", false),
        ("/O=a;b<c>d\"e\\\\f/OU= spaced /CN=#lead", false),
        (
            "/emailAddress=ann@lan/serialNumber=42/GN=Ann/SN=Lee/title=Dr/CN=ann",
            false,
        ),
        (
            "/DC=lan/DC=lab/UID=ann/CN=J\u{fc}rgen Gr\u{f6}\u{df}e",
            false,
        ),
        ("/O=lab/CN=ann+UID=a1", true),
        ("/1.2.3.4=opaque/CN=ann", false),
    ] {
        let (ours, theirs) = both(subject, multivalue);
        assert_eq!(ours, theirs, "subject {subject:?}");
    }
}
