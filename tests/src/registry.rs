//! A real OCI registry on the host's loopback (Debian's `docker-registry`, the CNCF distribution
//! registry), filled with `skopeo`, for tests that pull images onto a board.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait_until;

/// A TLS certificate for the registry: a CA that boards are told to trust, and the registry's
/// own certificate (signed by it) with its key, made with rcgen.
pub struct TestCa {
    /// The CA certificate (PEM), for `[registries."…"] ca`.
    pub ca_pem: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// Makes a CA and a certificate for the IP address `ip` under `dir`. Both are valid from 1975
    /// on (rcgen's default), so a board whose clock has not been set yet accepts them.
    pub fn new(dir: &Path, ip: &str) -> TestCa {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "baton e2e test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf = rcgen::CertificateParams::new(vec![ip.to_string()])
            .expect("leaf params")
            .signed_by(&leaf_key, &issuer)
            .expect("leaf certificate");
        let ca = TestCa {
            ca_pem: dir.join("ca.pem"),
            cert: dir.join("registry.pem"),
            key: dir.join("registry.key"),
        };
        std::fs::write(&ca.ca_pem, ca_cert.pem()).expect("writing ca.pem");
        std::fs::write(&ca.cert, leaf.pem()).expect("writing registry.pem");
        std::fs::write(&ca.key, leaf_key.serialize_pem()).expect("writing registry.key");
        ca
    }
}

/// A running registry; stopped (by its PID) when dropped.
pub struct Registry {
    child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    tls: bool,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on a free port of 127.0.0.1, over TLS when `ca` is given.
    pub fn start(ca: Option<&TestCa>) -> Registry {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = baton_qemu::free_port().expect("a free port");
        let tls = ca
            .map(|ca| {
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    ca.cert.display(),
                    ca.key.display()
                )
            })
            .unwrap_or_default();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{tls}",
            dir.path().join("data").display()
        );
        let path = dir.path().join("config.yml");
        std::fs::write(&path, config).expect("writing the registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting docker-registry (Debian package docker-registry)");
        let mut registry = Registry {
            child,
            port,
            tls: ca.is_some(),
            _dir: dir,
        };
        wait_until(
            "the registry to listen",
            Duration::from_secs(30),
            || match registry.child.try_wait() {
                Ok(Some(status)) => {
                    let mut err = String::new();
                    if let Some(mut e) = registry.child.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    panic!("docker-registry exited ({status}): {err}")
                }
                _ => std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
            },
        );
        registry
    }

    /// Copies the OCI archive `archive` into the registry as `name` (`repo:tag`).
    pub fn push(&self, archive: &Path, name: &str) {
        let status = Command::new("skopeo")
            .args(["copy", "-q", "--dest-tls-verify=false"])
            .arg(format!("oci-archive:{}", archive.display()))
            .arg(format!("docker://127.0.0.1:{}/{name}", self.port))
            .status()
            .expect("running skopeo (Debian package skopeo)");
        assert!(
            status.success(),
            "skopeo copy to the registry ({}) failed: {status}",
            if self.tls { "https" } else { "http" }
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
