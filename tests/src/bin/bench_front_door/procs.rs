//! The processes of the front-door benchmark: the upstream (nginx `return 200`) and the three
//! proxies in front of it, each started pinned to one CPU with `taskset`, from configuration
//! files written into the run's temporary directory; their memory read from `/proc`.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Time a process has to accept connections after its start.
const START_LIMIT: Duration = Duration::from_secs(30);
/// Time a process has to exit after SIGTERM before it gets SIGKILL.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// A process this benchmark started. Dropping it stops it (SIGTERM, then SIGKILL), by its PID
/// only: nginx's master ends its own workers on SIGTERM.
pub struct Proc {
    pub name: &'static str,
    child: Child,
}

impl Proc {
    /// Starts `program args` pinned to `cpu`, its output in `log`, and waits until `port`
    /// on 127.0.0.1 accepts connections.
    pub fn start(
        name: &'static str,
        cpu: u32,
        program: &str,
        args: &[&str],
        log: &Path,
        port: u16,
    ) -> Result<Proc, String> {
        let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        // taskset execs the program, so the PID is the program's own.
        let child = Command::new("taskset")
            .arg("-c")
            .arg(cpu.to_string())
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{name}: taskset {program}: {e}"))?;
        let mut proc = Proc { name, child };
        let deadline = Instant::now() + START_LIMIT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            if let Ok(Some(status)) = proc.child.try_wait() {
                let said = std::fs::read_to_string(log).unwrap_or_default();
                return Err(format!("{name} exited at start ({status}): {said}"));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                return Ok(proc);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{name}: port {port} not open after {START_LIMIT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the process and its children (nginx's workers), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.id();
        let mut total = rss_of(pid);
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(other) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                if parent_of(other) == Some(pid) {
                    total += rss_of(other);
                }
            }
        }
        total
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The ports of one run: the upstream's, then an HTTP and an HTTPS port per proxy, each picked
/// free on its own (a run of consecutive free ports is rare on a busy machine).
#[derive(Clone, Copy)]
pub struct Ports {
    pub upstream: u16,
    http: [u16; 3],
    https: [u16; 3],
}

impl Ports {
    pub fn pick() -> Result<Ports, String> {
        let one = || baton_qemu::free_port().map_err(|e| format!("ports: {e}"));
        Ok(Ports {
            upstream: one()?,
            http: [one()?, one()?, one()?],
            https: [one()?, one()?, one()?],
        })
    }

    /// The HTTP port of proxy `index` (0, 1, 2).
    pub fn http(&self, index: u16) -> u16 {
        self.http[usize::from(index)]
    }

    pub fn https(&self, index: u16) -> u16 {
        self.https[usize::from(index)]
    }
}

/// The certificate every TLS listener serves: a P-256 leaf for `bench.lan` from one test CA,
/// as PEM files in `dir`.
pub struct Certs {
    /// Leaf then CA.
    pub chain: PathBuf,
    /// The leaf's key (PKCS#8).
    pub key: PathBuf,
    /// Chain then key, as HAProxy reads it.
    pub combined: PathBuf,
    pub chain_pem: String,
    pub key_pem: String,
}

impl Certs {
    pub fn make(dir: &Path) -> Result<Certs, String> {
        let fail = |e: rcgen::Error| format!("certificate: {e}");
        // rcgen's default key is ECDSA P-256 with SHA-256.
        let ca_key = rcgen::KeyPair::generate().map_err(fail)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "baton front-door benchmark CA");
        let ca_cert = ca_params.self_signed(&ca_key).map_err(fail)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().map_err(fail)?;
        let leaf = rcgen::CertificateParams::new(vec!["bench.lan".to_string()])
            .map_err(fail)?
            .signed_by(&leaf_key, &issuer)
            .map_err(fail)?;
        let chain_pem = format!("{}{}", leaf.pem(), ca_cert.pem());
        let key_pem = leaf_key.serialize_pem();
        let certs = Certs {
            chain: dir.join("chain.pem"),
            key: dir.join("key.pem"),
            combined: dir.join("haproxy.pem"),
            chain_pem,
            key_pem,
        };
        write(&certs.chain, &certs.chain_pem)?;
        write(&certs.key, &certs.key_pem)?;
        write(
            &certs.combined,
            &format!("{}{}", certs.chain_pem, certs.key_pem),
        )?;
        Ok(certs)
    }
}

pub fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
