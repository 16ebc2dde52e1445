//! Archive client tests against a synthetic, signed archive served on 127.0.0.1.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pgp::composed::{SignedPublicKey, SignedSecretKey};

use super::*;
use crate::debian::cache::sha256_hex;
use crate::debian::deb::tests::{build_deb, compress, Item};
use crate::debian::signature::tests::{clearsign, test_key};

/// A tiny HTTP/1.1 server for a fixed set of paths; records every path asked for.
pub(super) struct Server {
    addr: String,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub(super) fn start(files: HashMap<String, Vec<u8>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let files = Arc::new(Mutex::new(files));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, l, s) = (files.clone(), log.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    serve(conn, &f, &l);
                }
            }
        });
        Self {
            addr,
            files,
            log,
            stop,
        }
    }

    pub(super) fn url(&self) -> String {
        format!("http://{}/debian", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub(super) fn set(&self, path: &str, data: Vec<u8>) {
        self.files.lock().unwrap().insert(path.to_string(), data);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn serve(conn: TcpStream, files: &Mutex<HashMap<String, Vec<u8>>>, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
    log.lock().unwrap().push(path.clone());
    let body = files.lock().unwrap().get(&path).cloned();
    let mut conn = conn;
    let _ = match body {
        Some(b) => conn
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                )
                .as_bytes(),
            )
            .and_then(|_| conn.write_all(&b)),
        None => conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}

/// A signed one-suite archive with a kernel metapackage, two kernel versions and firmware.
pub(super) struct Fixture {
    pub(super) key: SignedSecretKey,
    pub(super) files: HashMap<String, Vec<u8>>,
    kernel_old: Vec<u8>,
    kernel_new: Vec<u8>,
    by_hash: bool,
    /// SHA256 and size of `main/binary-arm64/Packages.xz`.
    index: (String, usize),
}

/// The fixture's `InRelease` path on the server.
pub(super) const INRELEASE: &str = "/debian/dists/bookworm/InRelease";

impl Fixture {
    /// The fixture's `InRelease`, dated `date` and valid until `valid_until`, signed by `key`.
    pub(super) fn inrelease(
        &self,
        key: &SignedSecretKey,
        date: chrono::DateTime<chrono::Utc>,
        valid_until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Vec<u8> {
        let valid_until = valid_until
            .map(|v| format!("Valid-Until: {}\n", crate::debian::date::format(&v)))
            .unwrap_or_default();
        let release = format!(
            "Origin: Test\nSuite: stable\nCodename: bookworm\nDate: {}\n{valid_until}\
             Acquire-By-Hash: {}\nSHA256:\n {} {} main/binary-arm64/Packages.xz\n",
            crate::debian::date::format(&date),
            if self.by_hash { "yes" } else { "no" },
            self.index.0,
            self.index.1
        );
        clearsign(key, &release).into_bytes()
    }
}

const POOL: &str = "pool/main/l/linux-signed-arm64";

fn stanza(name: &str, version: &str, depends: &str, file: &str, deb: &[u8]) -> String {
    format!(
        "Package: {name}\nVersion: {version}\nArchitecture: arm64\nDepends: {depends}\n\
         Filename: {file}\nSize: {}\nSHA256: {}\n\n",
        deb.len(),
        sha256_hex(deb)
    )
}

pub(super) fn fixture(by_hash: bool) -> Fixture {
    let key = test_key();
    let kernel_old = build_deb(
        &[Item::File("/boot/vmlinuz-6.1.0-8-arm64", b"old", 0o644)],
        "xz",
    );
    let kernel_new = build_deb(
        &[Item::File("/boot/vmlinuz-6.1.0-9-arm64", b"new", 0o644)],
        "xz",
    );
    let old_file = format!("{POOL}/linux-image-6.1.0-8-arm64_6.1.1-1_arm64.deb");
    let new_file = format!("{POOL}/linux-image-6.1.0-9-arm64_6.1.2-1_arm64.deb");
    let packages = [
        stanza(
            "linux-image-arm64",
            "6.1.2-1",
            "linux-image-6.1.0-9-arm64 (= 6.1.2-1)",
            "pool/main/l/meta.deb",
            b"m",
        ),
        stanza(
            "linux-image-6.1.0-8-arm64",
            "6.1.1-1",
            "kmod",
            &old_file,
            &kernel_old,
        ),
        stanza(
            "linux-image-6.1.0-9-arm64",
            "6.1.2-1",
            "kmod",
            &new_file,
            &kernel_new,
        ),
    ]
    .concat();
    let packages_xz = compress("xz", packages.as_bytes());
    let sha = sha256_hex(&packages_xz);
    let mut files = HashMap::new();
    let index_path = if by_hash {
        format!("/debian/dists/bookworm/main/binary-arm64/by-hash/SHA256/{sha}")
    } else {
        "/debian/dists/bookworm/main/binary-arm64/Packages.xz".to_string()
    };
    let index = (sha, packages_xz.len());
    files.insert(index_path, packages_xz);
    files.insert(format!("/debian/{old_file}"), kernel_old.clone());
    files.insert(format!("/debian/{new_file}"), kernel_new.clone());
    let mut fx = Fixture {
        key,
        files,
        kernel_old,
        kernel_new,
        by_hash,
        index,
    };
    let now = crate::debian::date::now();
    let inrelease = fx.inrelease(&fx.key, now - chrono::Duration::hours(1), None);
    fx.files.insert(INRELEASE.to_string(), inrelease);
    fx
}

pub(super) fn options(server: &Server, fx: &Fixture, cache: &std::path::Path) -> ArchiveOptions {
    ArchiveOptions {
        base_url: server.url(),
        cache_dir: cache.to_path_buf(),
        offline: false,
        update: false,
        progress: false,
        keyring: Some(Keyring::from_keys(vec![SignedPublicKey::from(
            fx.key.clone(),
        )])),
    }
}

pub(super) fn kernel_ref() -> PackageRef {
    PackageRef {
        suite: "bookworm".into(),
        component: "main".into(),
        name: "linux-image-arm64".into(),
    }
}

#[test]
fn resolves_pins_downloads_and_reuses_the_cache() {
    for by_hash in [false, true] {
        let fx = fixture(by_hash);
        let server = Server::start(fx.files.clone());
        let tmp = tempfile::tempdir().unwrap();
        let mut lock = LockFile::new();
        let mut archive = Archive::new(options(&server, &fx, tmp.path())).unwrap();
        let deb = archive.fetch(&kernel_ref(), &mut lock).unwrap();
        assert_eq!(
            (deb.name.as_str(), deb.version.as_str()),
            ("linux-image-6.1.0-9-arm64", "6.1.2-1")
        );
        assert_eq!(std::fs::read(&deb.path).unwrap(), fx.kernel_new);
        let pin = lock.get("bookworm", "main", "linux-image-arm64").unwrap();
        assert_eq!(pin.name, "linux-image-6.1.0-9-arm64");
        assert_eq!(pin.sha256, sha256_hex(&fx.kernel_new));
        assert_eq!(server.requests().len(), 3, "{:?}", server.requests());

        // A second, offline client finds everything in the cache and asks the network nothing.
        let mut opts = options(&server, &fx, tmp.path());
        opts.offline = true;
        let again = Archive::new(opts)
            .unwrap()
            .fetch(&kernel_ref(), &mut lock)
            .unwrap();
        assert_eq!(again, deb);
        assert_eq!(server.requests().len(), 3);
    }
}

#[test]
fn a_pin_is_fetched_exactly_until_an_update_is_asked_for() {
    let fx = fixture(false);
    let server = Server::start(fx.files.clone());
    let tmp = tempfile::tempdir().unwrap();
    let mut lock = LockFile::new();
    lock.set(LockEntry {
        suite: "bookworm".into(),
        component: "main".into(),
        requested: "linux-image-arm64".into(),
        name: "linux-image-6.1.0-8-arm64".into(),
        version: "6.1.1-1".into(),
        filename: format!("{POOL}/linux-image-6.1.0-8-arm64_6.1.1-1_arm64.deb"),
        sha256: sha256_hex(&fx.kernel_old),
        size: fx.kernel_old.len() as u64,
    });
    let deb = Archive::new(options(&server, &fx, tmp.path()))
        .unwrap()
        .fetch(&kernel_ref(), &mut lock)
        .unwrap();
    assert_eq!(deb.version, "6.1.1-1");
    assert_eq!(
        server.requests(),
        [format!(
            "/debian/{POOL}/linux-image-6.1.0-8-arm64_6.1.1-1_arm64.deb"
        )],
        "a pinned package needs no index"
    );
    let mut opts = options(&server, &fx, tmp.path());
    opts.update = true;
    let deb = Archive::new(opts)
        .unwrap()
        .fetch(&kernel_ref(), &mut lock)
        .unwrap();
    assert_eq!(deb.version, "6.1.2-1");
    assert_eq!(
        lock.get("bookworm", "main", "linux-image-arm64")
            .unwrap()
            .version,
        "6.1.2-1"
    );
}

#[test]
fn offline_errors_name_what_is_missing_and_how_to_fix_it() {
    let fx = fixture(false);
    let server = Server::start(fx.files.clone());
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(&server, &fx, tmp.path());
    opts.offline = true;
    let mut archive = Archive::new(opts).unwrap();

    let err = archive
        .fetch(&kernel_ref(), &mut LockFile::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("linux-image-arm64") && err.contains("without --offline"),
        "{err}"
    );

    let mut lock = LockFile::new();
    for (name, version) in [("linux-image-arm64", "6.1.2-1"), ("raspi-firmware", "1.2")] {
        lock.set(LockEntry {
            suite: "bookworm".into(),
            component: "main".into(),
            requested: name.into(),
            name: format!("{name}-real"),
            version: version.into(),
            filename: format!("pool/main/x/{name}.deb"),
            sha256: "cd".repeat(32),
            size: 10,
        });
    }
    let firmware = PackageRef {
        name: "raspi-firmware".into(),
        ..kernel_ref()
    };
    let err = archive
        .fetch_all(&[kernel_ref(), firmware], &mut lock)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("linux-image-arm64-real 6.1.2-1 (bookworm/main)"),
        "{err}"
    );
    assert!(
        err.contains("raspi-firmware-real 1.2 (bookworm/main)"),
        "{err}"
    );
    assert!(err.contains(&tmp.path().display().to_string()), "{err}");
    assert!(
        server.requests().is_empty(),
        "offline touched the network: {:?}",
        server.requests()
    );
}

#[test]
fn a_tampered_package_is_rejected_and_not_cached() {
    let fx = fixture(false);
    let server = Server::start(fx.files.clone());
    server.set(
        &format!("/debian/{POOL}/linux-image-6.1.0-9-arm64_6.1.2-1_arm64.deb"),
        fx.kernel_old.clone(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let err = Archive::new(options(&server, &fx, tmp.path()))
        .unwrap()
        .fetch(&kernel_ref(), &mut LockFile::new())
        .unwrap_err();
    assert!(
        matches!(err, Error::Cache(cache::Error::Mismatch { .. })),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("linux-image-6.1.0-9-arm64 6.1.2-1"),
        "{err}"
    );
    let sha_dir = tmp.path().join("debs").join(sha256_hex(&fx.kernel_new));
    assert_eq!(std::fs::read_dir(sha_dir).unwrap().count(), 0);
}

#[test]
fn a_tampered_index_or_signature_is_rejected() {
    let fx = fixture(false);
    let server = Server::start(fx.files.clone());
    let tmp = tempfile::tempdir().unwrap();
    server.set(
        "/debian/dists/bookworm/main/binary-arm64/Packages.xz",
        compress("xz", b"Package: evil\n"),
    );
    let err = Archive::new(options(&server, &fx, tmp.path()))
        .unwrap()
        .fetch(&kernel_ref(), &mut LockFile::new())
        .unwrap_err();
    assert!(matches!(err, Error::IndexMismatch { .. }), "{err}");

    let other = test_key();
    server.set(
        "/debian/dists/bookworm/InRelease",
        clearsign(&other, "Suite: bookworm\n").into_bytes(),
    );
    let err = Archive::new(options(&server, &fx, tmp.path()))
        .unwrap()
        .fetch(&kernel_ref(), &mut LockFile::new())
        .unwrap_err();
    assert!(matches!(err, Error::Signature(_)), "{err}");
    assert!(
        err.to_string().contains("/dists/bookworm/InRelease"),
        "{err}"
    );
}

#[test]
fn a_missing_pool_file_suggests_updating_the_lock() {
    let mut fx = fixture(false);
    fx.files.retain(|k, _| !k.contains("6.1.0-9"));
    let server = Server::start(fx.files.clone());
    let tmp = tempfile::tempdir().unwrap();
    let err = Archive::new(options(&server, &fx, tmp.path()))
        .unwrap()
        .fetch(&kernel_ref(), &mut LockFile::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("linux-image-6.1.0-9-arm64 6.1.2-1") && err.contains("--update to pin"),
        "{err}"
    );
}

/// End to end against the real Debian archive. Downloads about 200 MB into the real per-user
/// cache (`BATON_CACHE_DIR`, `XDG_CACHE_HOME/baton` or `~/.cache/baton`) once; later runs only
/// re-check the signed indices. Run with
/// `cargo test -p baton --lib -- --ignored real_debian_archive`.
#[test]
#[ignore = "network: downloads kernels and firmware from deb.debian.org"]
fn real_debian_archive() {
    let cache_dir = cache::default_dir().unwrap();
    let lock_path = cache_dir.join("real-archive-test.lock");
    let mut lock = LockFile::load_or_new(&lock_path).unwrap();
    let mut opts = ArchiveOptions::new(&cache_dir);
    opts.update = true;
    let mut archive = Archive::new(opts).unwrap();
    let get =
        |archive: &mut Archive, lock: &mut LockFile, suite: &str, component: &str, name: &str| {
            let pkg = PackageRef {
                suite: suite.into(),
                component: component.into(),
                name: name.into(),
            };
            archive.fetch(&pkg, lock).unwrap()
        };
    let has = |deb: &CachedDeb, want: &dyn Fn(&str) -> bool| {
        !crate::debian::deb::extract(&deb.path, |p| want(p))
            .unwrap()
            .is_empty()
    };

    let kernel = get(
        &mut archive,
        &mut lock,
        "bookworm",
        "main",
        "linux-image-arm64",
    );
    assert!(kernel.name.starts_with("linux-image-6.1.0-"), "{kernel:?}");
    assert!(has(&kernel, &|p| p.ends_with("/broadcom/bcm2837-rpi-3-b.dtb")));
    assert!(has(&kernel, &|p| p.ends_with("/broadcom/bcm2711-rpi-4-b.dtb")));
    assert!(has(&kernel, &|p| p.starts_with("/boot/vmlinuz-")));

    let firmware = get(
        &mut archive,
        &mut lock,
        "bookworm",
        "non-free-firmware",
        "raspi-firmware",
    );
    assert!(has(&firmware, &|p| p == "/usr/lib/raspi-firmware/bootcode.bin"));
    assert!(has(&firmware, &|p| p == "/usr/lib/raspi-firmware/start4.elf"));

    let trixie = get(
        &mut archive,
        &mut lock,
        "trixie",
        "main",
        "linux-image-arm64",
    );
    assert!(
        has(&trixie, &|p| p.ends_with("/broadcom/bcm2712-rpi-5-b.dtb")),
        "{trixie:?}"
    );
    lock.save(&lock_path).unwrap();

    // Offline, from the lock and the cache alone.
    let mut opts = ArchiveOptions::new(&cache_dir);
    opts.offline = true;
    let mut offline = Archive::new(opts).unwrap();
    let again = get(
        &mut offline,
        &mut lock,
        "bookworm",
        "main",
        "linux-image-arm64",
    );
    assert_eq!(again, kernel);
}
