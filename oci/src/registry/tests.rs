use super::fake::{Fake, FakeAuth};
use super::*;
use crate::digest::Digest;
use crate::import::ImportError;
use crate::model::{
    MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST,
};
use crate::store::Store;

/// A manifest's digest, media type and size.
type Entry = (Digest, String, usize);

/// Adds a one-layer image for `arch` to `fake`; returns the manifest's digest, media type and size.
fn image(fake: &mut Fake, arch: &str, tags: &[&str], docker: bool) -> Entry {
    let layer = fake.blob(format!("layer for {arch}").as_bytes());
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
    );
    let config_digest = fake.blob(config.as_bytes());
    let (manifest_type, config_type, layer_type) = if docker {
        (
            MEDIA_TYPE_DOCKER_MANIFEST,
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    } else {
        (
            MEDIA_TYPE_MANIFEST,
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
    };
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{manifest_type}","config":{{"mediaType":"{config_type}","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"{layer_type}","digest":"{layer}","size":{}}}]}}"#,
        config.len(),
        format!("layer for {arch}").len()
    );
    let digest = fake.manifest(manifest_type, manifest.as_bytes(), tags);
    (digest, manifest_type.to_owned(), manifest.len())
}

/// An index of the given manifests, each with its platform.
fn index(
    fake: &mut Fake,
    media_type: &str,
    entries: &[(&str, Option<&str>, Entry)],
    tags: &[&str],
) -> Digest {
    let manifests: Vec<String> = entries
        .iter()
        .map(|(arch, variant, (digest, media_type, size))| {
            let variant = variant.map_or(String::new(), |v| format!(r#","variant":"{v}""#));
            format!(
                r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{size},"platform":{{"architecture":"{arch}","os":"linux"{variant}}}}}"#
            )
        })
        .collect();
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{media_type}","manifests":[{}]}}"#,
        manifests.join(",")
    );
    fake.manifest(media_type, body.as_bytes(), tags)
}

fn request(registry: &str, reference: &str) -> PullRequest {
    PullRequest {
        registry: registry.to_owned(),
        repository: "hello".to_owned(),
        reference: reference.to_owned(),
    }
}

fn credentials(username: &str, password: &str) -> RegistryOptions {
    RegistryOptions {
        credentials: Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        }),
        insecure: false,
        ca: None,
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

#[test]
fn pulls_an_oci_image_anonymously() {
    let mut fake = Fake::new(FakeAuth::None);
    let (digest, ..) = image(&mut fake, "arm64", &["1"], false);
    let (addr, log) = fake.serve();
    let (_dir, store) = store();
    let imported = store
        .pull(&request(&addr, "1"), "hello:1", &RegistryOptions::default())
        .unwrap();
    assert_eq!(imported.manifest, digest);
    assert_eq!(imported.layers, 1);
    assert_eq!(store.get_ref("hello:1").unwrap(), digest);
    // Pulling again downloads only the manifest: the blobs are in the store.
    let before = log.lock().unwrap().len();
    store
        .pull(&request(&addr, "1"), "hello:1", &RegistryOptions::default())
        .unwrap();
    assert_eq!(
        log.lock().unwrap()[before..],
        ["GET /v2/hello/manifests/1".to_owned()]
    );
}

#[test]
fn selects_linux_arm64_from_indexes_and_manifest_lists() {
    for (list_type, docker) in [(MEDIA_TYPE_INDEX, false), (MEDIA_TYPE_DOCKER_LIST, true)] {
        let mut fake = Fake::new(FakeAuth::None);
        let amd64 = image(&mut fake, "amd64", &[], docker);
        let arm64 = image(&mut fake, "arm64", &[], docker);
        let arm = image(&mut fake, "arm", &[], docker);
        index(
            &mut fake,
            list_type,
            &[
                ("amd64", None, amd64.clone()),
                ("arm", Some("v7"), arm),
                ("arm64", Some("v8"), arm64.clone()),
            ],
            &["latest"],
        );
        let (addr, log) = fake.serve();
        let (_dir, store) = store();
        let imported = store
            .pull(
                &request(&addr, "latest"),
                "hello",
                &RegistryOptions::default(),
            )
            .unwrap();
        assert_eq!(imported.manifest, arm64.0, "{list_type}");
        let log = log.lock().unwrap();
        assert!(
            !log.iter().any(|l| l.contains(&amd64.0.to_string())),
            "the amd64 manifest was fetched: {log:?}"
        );
    }
}

#[test]
fn refuses_an_index_without_linux_arm64() {
    let mut fake = Fake::new(FakeAuth::None);
    let amd64 = image(&mut fake, "amd64", &[], false);
    index(
        &mut fake,
        MEDIA_TYPE_INDEX,
        &[("amd64", None, amd64)],
        &["1"],
    );
    let (addr, _) = fake.serve();
    let (_dir, store) = store();
    let error = store
        .pull(&request(&addr, "1"), "hello:1", &RegistryOptions::default())
        .unwrap_err();
    assert!(matches!(error, ImportError::Platform { .. }), "{error}");
    assert!(error.to_string().contains("linux/amd64"), "{error}");
}

#[test]
fn follows_the_bearer_token_flow_with_credentials() {
    let basic = auth::basic_header("ann", "secret");
    let mut fake = Fake::new(FakeAuth::Bearer {
        token: "tok123".to_owned(),
        basic: Some(basic.clone()),
    });
    let (digest, ..) = image(&mut fake, "arm64", &["1"], true);
    let (addr, log) = fake.serve();
    let (_dir, store) = store();
    let imported = store
        .pull(
            &request(&addr, "1"),
            "hello:1",
            &credentials("ann", "secret"),
        )
        .unwrap();
    assert_eq!(imported.manifest, digest);
    let log = log.lock().unwrap();
    assert_eq!(log[0], "GET /v2/hello/manifests/1");
    assert_eq!(
        log[1],
        format!("GET /token?service=fake&scope=repository%3Ahello%3Apull {basic}")
    );
    assert_eq!(log[2], "GET /v2/hello/manifests/1 Bearer tok123");
    assert!(
        log[3..].iter().all(|l| l.ends_with("Bearer tok123")),
        "{log:?}"
    );
    drop(log);

    let error = store
        .pull(
            &request(&addr, "1"),
            "hello:1",
            &credentials("ann", "wrong"),
        )
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("registry {addr}")) && message.contains("refused"),
        "{message}"
    );
}

#[test]
fn uses_basic_auth_and_explains_401() {
    let mut fake = Fake::new(FakeAuth::Basic(auth::basic_header("bob", "pw")));
    let (digest, ..) = image(&mut fake, "arm64", &["1"], false);
    let (addr, _) = fake.serve();
    let (_dir, store) = store();
    let imported = store
        .pull(&request(&addr, "1"), "hello:1", &credentials("bob", "pw"))
        .unwrap();
    assert_eq!(imported.manifest, digest);

    let error = store
        .pull(&request(&addr, "1"), "x", &RegistryOptions::default())
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(
        error,
        ImportError::Registry {
            source: RegistryError::Unauthorized { .. },
            ..
        }
    ));
    assert!(
        message.contains("401") && message.contains("no credentials configured"),
        "{message}"
    );
    let error = store
        .pull(&request(&addr, "1"), "x", &credentials("bob", "nope"))
        .unwrap_err();
    assert!(
        error.to_string().contains("credentials were refused"),
        "{error}"
    );
}

#[test]
fn reports_unknown_manifests_and_blobs() {
    let mut fake = Fake::new(FakeAuth::None);
    image(&mut fake, "arm64", &["1"], false);
    let layer = Digest::of(b"layer for arm64");
    fake.blobs.remove(&layer.to_string());
    let (addr, _) = fake.serve();
    let (_dir, store) = store();
    let error = store
        .pull(&request(&addr, "2"), "hello:2", &RegistryOptions::default())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("image hello:2 (from {addr}/hello): registry {addr}: manifest 2 unknown (404)")
    );
    let error = store
        .pull(&request(&addr, "1"), "hello:1", &RegistryOptions::default())
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&format!("blob {layer} unknown (404)")),
        "{error}"
    );
    assert!(store.get_ref("hello:1").is_err());
}

#[test]
fn refuses_blobs_and_manifests_that_do_not_match_their_digest() {
    let mut fake = Fake::new(FakeAuth::None);
    let (digest, ..) = image(&mut fake, "arm64", &["1"], false);
    let layer = Digest::of(b"layer for arm64");
    fake.blobs
        .insert(layer.to_string(), b"layer for arm65".to_vec());
    // A manifest asked for by digest whose bytes are different.
    let other = Digest::of(b"other");
    let entry = fake.manifests["1"].clone();
    fake.manifests.insert(other.to_string(), entry);
    let (addr, _) = fake.serve();
    let (_dir, store) = store();
    let error = store
        .pull(&request(&addr, "1"), "hello:1", &RegistryOptions::default())
        .unwrap_err();
    assert!(matches!(error, ImportError::Store { .. }), "{error}");
    assert!(error.to_string().contains(&layer.to_string()), "{error}");
    assert!(store.get_ref("hello:1").is_err());
    assert!(!store.has_blob(&layer));

    let error = store
        .pull(
            &request(&addr, &other.to_string()),
            "hello",
            &RegistryOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(error, ImportError::Store { .. }), "{error}");
    assert!(!store.has_blob(&other));
    assert!(store.has_blob(&digest));
}

#[test]
fn reports_unreachable_registries() {
    let (_dir, store) = store();
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = store
        .pull(
            &request(&format!("127.0.0.1:{port}"), "1"),
            "x",
            &RegistryOptions::default(),
        )
        .unwrap_err();
    assert!(error.to_string().contains("unreachable"), "{error}");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}

#[test]
fn speaks_plain_http_only_to_insecure_registries_and_loopback_without_a_ca() {
    let ca = || {
        Some(RegistryCa {
            file: "/config/certs/ca.pem".into(),
            pem: Ok(Vec::new()),
        })
    };
    let options = |insecure, ca| RegistryOptions {
        credentials: None,
        insecure,
        ca,
    };
    assert!(!plain_http("docker.io", &options(false, None)));
    assert!(!plain_http("10.0.2.100:5000", &options(false, ca())));
    assert!(plain_http("10.0.2.100:5000", &options(true, None)));
    assert!(plain_http("localhost:5000", &options(false, None)));
    assert!(plain_http("127.0.0.1:5000", &options(true, ca())));
    assert!(!plain_http("127.0.0.1:5000", &options(false, ca())));
}

#[test]
fn knows_loopback_hosts() {
    for host in ["localhost", "localhost:5000", "127.0.0.1:80", "[::1]:5000"] {
        assert!(is_loopback_host(host), "{host}");
    }
    for host in ["docker.io", "10.0.2.100:5000", "localhost.example.com"] {
        assert!(!is_loopback_host(host), "{host}");
    }
}

mod tls;
