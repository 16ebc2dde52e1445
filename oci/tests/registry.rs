//! Pulls from Debian's real registry (`docker-registry`, the CNCF distribution server) on 127.0.0.1,
//! with an image pushed there by `skopeo`. Needs `docker-registry` and `skopeo` (scripts/setup
//! installs them).
// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use baton_oci::model::Compression;
use baton_oci::{ImportError, PullRequest, RegistryOptions, Store};
use common::*;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `docker-registry` process serving a temp dir; killed when dropped.
struct Registry {
    child: Child,
    addr: String,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting /usr/bin/docker-registry (apt-get install docker-registry)");
        let registry = Registry { child, addr };
        registry.wait_ready(dir);
        registry
    }

    /// Polls `GET /v2/` until it answers 200.
    fn wait_ready(&self, dir: &Path) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://{}/v2/", self.addr);
        while Instant::now() < deadline {
            if agent
                .get(&url)
                .call()
                .is_ok_and(|r| r.status().as_u16() == 200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not answer on {url}: {}",
            fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pulls_what_skopeo_pushed_to_a_real_registry() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let layer = tar_of(&[file("etc/greeting", b"hi\n")]);
    let image = image(&[(layer, Compression::Gzip)], &arm64());
    let archive_path = dir.path().join("hello.tar");
    fs::write(
        &archive_path,
        archive(std::slice::from_ref(&image.manifest), &named(&[&image])),
    )
    .unwrap();
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", archive_path.display()),
        &format!("docker://{}/hello:1", registry.addr),
    ]));

    let store = Store::open(dir.path().join("store")).unwrap();
    let request = |reference: &str| PullRequest {
        registry: registry.addr.clone(),
        repository: "hello".to_owned(),
        reference: reference.to_owned(),
    };
    let imported = store
        .pull(&request("1"), "hello:1", &RegistryOptions::default())
        .unwrap();
    assert_eq!(imported.manifest, image.manifest.digest);
    assert_eq!(imported.layers, 1);
    let prepared = store.prepare("hello:1").unwrap();
    let lower = &prepared.lower_dirs[0];
    assert_eq!(fs::read(lower.join("etc/greeting")).unwrap(), b"hi\n");

    // By digest too.
    let by_digest = store
        .pull(
            &request(&image.manifest.digest.to_string()),
            "pinned",
            &RegistryOptions::default(),
        )
        .unwrap();
    assert_eq!(by_digest.manifest, image.manifest.digest);

    let error = store
        .pull(&request("2"), "hello:2", &RegistryOptions::default())
        .unwrap_err();
    assert!(matches!(error, ImportError::Registry { .. }), "{error}");
    assert!(
        error.to_string().contains("manifest 2 unknown (404)"),
        "{error}"
    );
}
