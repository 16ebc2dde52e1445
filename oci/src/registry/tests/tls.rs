//! Pulls over HTTPS from the fake registry served in TLS on loopback.

use super::{image, request, store};
use crate::import::ImportError;
use crate::registry::fake::{Fake, FakeAuth, Pki};
use crate::registry::{Credentials, RegistryCa, RegistryError, RegistryOptions};

/// Options trusting the CA in `pem`, as if read from `certs/registry.pem`.
fn with_ca(pem: &str) -> RegistryOptions {
    RegistryOptions {
        ca: Some(RegistryCa {
            file: "/config/certs/registry.pem".into(),
            pem: Ok(pem.as_bytes().to_vec()),
        }),
        ..RegistryOptions::default()
    }
}

/// The registry error inside a pull error.
fn registry_error(error: ImportError) -> RegistryError {
    match error {
        ImportError::Registry { source, .. } => source,
        other => panic!("not a registry error: {other}"),
    }
}

#[test]
fn pulls_over_https_with_the_registry_ca_and_a_bearer_token() {
    let pki = Pki::new(&["127.0.0.1"]);
    let mut fake = Fake::new(FakeAuth::Bearer {
        token: "tok".to_owned(),
        basic: None,
    });
    let (digest, ..) = image(&mut fake, "arm64", &["1"], false);
    let (addr, log) = fake.serve_tls("127.0.0.1", &pki);
    let (_dir, store) = store();
    let imported = store
        .pull(&request(&addr, "1"), "hello:1", &with_ca(&pki.ca_pem))
        .unwrap();
    assert_eq!(imported.manifest, digest);
    assert_eq!(store.get_ref("hello:1").unwrap(), digest);
    let log = log.lock().unwrap();
    // The realm is https://127.0.0.1:…/token: fetched over TLS too.
    assert!(log.iter().any(|l| l.starts_with("GET /token?")), "{log:?}");
    assert!(log.iter().any(|l| l.ends_with("Bearer tok")), "{log:?}");
}

#[test]
fn refuses_a_plain_http_token_endpoint_for_an_https_registry() {
    let pki = Pki::new(&["127.0.0.1"]);
    let mut fake = Fake::new(FakeAuth::Bearer {
        token: "tok".to_owned(),
        basic: Some("Basic YW5uOnB3".to_owned()),
    });
    fake.realm = Some("http://127.0.0.1:9/token".to_owned());
    image(&mut fake, "arm64", &["1"], false);
    let (addr, log) = fake.serve_tls("127.0.0.1", &pki);
    let (_dir, store) = store();
    let options = RegistryOptions {
        credentials: Some(Credentials {
            username: "ann".to_owned(),
            password: "pw".to_owned(),
        }),
        ..with_ca(&pki.ca_pem)
    };
    let error = store
        .pull(&request(&addr, "1"), "hello:1", &options)
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&format!("registry {addr}")), "{message}");
    assert!(
        message.contains("plain HTTP for an HTTPS registry"),
        "{message}"
    );
    assert!(matches!(registry_error(error), RegistryError::Auth { .. }));
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[test]
fn refuses_a_certificate_from_an_unknown_issuer() {
    // A CA is configured, but not the one that signed the server's certificate.
    let pki = Pki::new(&["127.0.0.1"]);
    let mut fake = Fake::new(FakeAuth::None);
    image(&mut fake, "arm64", &["1"], false);
    let (addr, log) = fake.clone().serve_tls("127.0.0.1", &pki);
    let (_dir, store) = store();
    let other = Pki::new(&["127.0.0.1"]);
    let error = store
        .pull(&request(&addr, "1"), "hello:1", &with_ca(&other.ca_pem))
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&format!("registry {addr}")), "{message}");
    assert!(message.contains("unknown issuer"), "{message}");
    assert!(
        message.contains("nor the CA in /config/certs/registry.pem"),
        "{message}"
    );
    assert!(matches!(registry_error(error), RegistryError::Tls { .. }));

    // No CA at all, on a loopback address that is not one of the plain-HTTP names: only Mozilla's
    // roots are trusted, and they did not sign the test CA.
    let pki = Pki::new(&["127.0.0.2"]);
    let (addr2, log2) = fake.serve_tls("127.0.0.2", &pki);
    let error = store
        .pull(
            &request(&addr2, "1"),
            "hello:1",
            &RegistryOptions::default(),
        )
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&format!("registry {addr2}")), "{message}");
    assert!(message.contains("unknown issuer"), "{message}");
    assert!(
        message.contains(&format!("[registries.\"{addr2}\"] ca =")),
        "{message}"
    );
    assert!(log.lock().unwrap().is_empty());
    assert!(log2.lock().unwrap().is_empty());
}

#[test]
fn refuses_a_certificate_for_another_name() {
    let pki = Pki::new(&["127.0.0.1"]);
    let mut fake = Fake::new(FakeAuth::None);
    image(&mut fake, "arm64", &["1"], false);
    let (addr, log) = fake.serve_tls("127.0.0.2", &pki);
    let (_dir, store) = store();
    let error = store
        .pull(&request(&addr, "1"), "hello:1", &with_ca(&pki.ca_pem))
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&format!("registry {addr}")), "{message}");
    assert!(
        message.contains("not valid for the name \"127.0.0.2\""),
        "{message}"
    );
    assert!(log.lock().unwrap().is_empty());
}

#[test]
fn insecure_speaks_plain_http_even_to_a_tls_registry() {
    // `insecure = true` means plain HTTP, never "HTTPS without verification": against a TLS
    // server the pull fails, and nothing is accepted from it.
    let pki = Pki::new(&["127.0.0.1"]);
    let mut fake = Fake::new(FakeAuth::None);
    image(&mut fake, "arm64", &["1"], false);
    let (addr, log) = fake.serve_tls("127.0.0.2", &pki);
    let (_dir, store) = store();
    let options = RegistryOptions {
        insecure: true,
        credentials: Some(Credentials {
            username: "ann".to_owned(),
            password: "pw".to_owned(),
        }),
        ca: None,
    };
    let error = store
        .pull(&request(&addr, "1"), "hello:1", &options)
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&format!("registry {addr}")), "{message}");
    assert!(message.contains(&format!("http://{addr}/")), "{message}");
    assert!(
        message.contains("does the registry want HTTPS?"),
        "{message}"
    );
    assert!(log.lock().unwrap().is_empty());
    assert!(store.get_ref("hello:1").is_err());
}

#[test]
fn reports_unusable_ca_files_naming_registry_and_file() {
    let (_dir, store) = store();
    let dir = tempfile::tempdir().unwrap();
    let missing = RegistryCa::read(&dir.path().join("certs/missing.pem"));
    assert!(missing.pem.is_err());
    let not_pem = "this is not a certificate\n";
    let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    let not_a_certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let mut cases = vec![(missing.clone(), "cannot read it")];
    for (pem, reason) in [
        (not_pem, "no PEM certificate"),
        (bad_base64, "PEM"),
        (not_a_certificate, "not a usable CA certificate"),
    ] {
        cases.push((
            RegistryCa {
                file: "/config/certs/registry.pem".into(),
                pem: Ok(pem.as_bytes().to_vec()),
            },
            reason,
        ));
    }
    for (ca, reason) in cases {
        let file = ca.file.display().to_string();
        let options = RegistryOptions {
            ca: Some(ca),
            ..RegistryOptions::default()
        };
        // Nothing listens there: the CA is checked before any connection.
        let error = store
            .pull(&request("127.0.0.1:9", "1"), "hello:1", &options)
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("registry 127.0.0.1:9"), "{message}");
        assert!(message.contains(&format!("CA file {file}")), "{message}");
        assert!(message.contains(reason), "{reason}: {message}");
        assert!(matches!(registry_error(error), RegistryError::Ca { .. }));
    }
}
