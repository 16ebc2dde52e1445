//! What the front door's identity checks are tested against from a LAN station: a real OpenID
//! provider (npm's oidc-provider under node, `tests/oidc/op.mjs`), the forward-auth script
//! (`tests/forward_auth/auth.py`), the stdlib browser that signs in through the provider's own
//! forms (`frontdoor/tests/login_client.py`), and client certificates made with rcgen.
//!
//! Processes are started inside `Station::run`, so they live in the station's network
//! namespace; each is stopped by its own PID when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use baton_qemu::station::Station;

use crate::repo_root;

/// Time a station process has to say it is ready.
const START_LIMIT: Duration = Duration::from_secs(60);

/// A process on the station, killed (by its PID) when dropped.
pub struct StationProcess {
    child: Child,
    /// Its first line on stdout (the ready line).
    pub first_line: String,
}

impl StationProcess {
    /// Spawns `command` on the station and waits for its first line on stdout. Later output
    /// is drained by a thread, so the process never blocks on (or dies of) a full pipe.
    pub fn start(station: &Station, mut command: Command, what: &str) -> StationProcess {
        command.stdout(Stdio::piped()).stdin(Stdio::null());
        let mut child = station
            .run(|| command.spawn())
            .expect("entering the station")
            .unwrap_or_else(|e| panic!("starting {what} on the station: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let first_line = match rx.recv_timeout(START_LIMIT) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not start on the station: {other:?}")
            }
        };
        StationProcess { child, first_line }
    }

    /// Stops it now (the same as dropping it).
    pub fn stop(self) {}
}

impl Drop for StationProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OpenID provider on the station's `address:port`, serving HTTPS with `cert`/`key`,
/// with the client `baton` (secret `secret`) whose sign-in comes back to `redirect_uri`.
pub fn openid_provider(
    station: &Station,
    cert: &Path,
    key: &Path,
    port: u16,
    secret: &str,
    redirect_uri: &str,
    post_logout_uri: &str,
) -> StationProcess {
    let oidc = repo_root().join("tests/oidc");
    assert!(
        oidc.join("node_modules/oidc-provider").is_dir(),
        "tests/oidc/node_modules is missing: run scripts/setup (npm ci in tests/oidc)"
    );
    let mut command = Command::new("node");
    command
        .current_dir(&oidc)
        .arg("op.mjs")
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(["--host", &station.address().to_string()])
        .args(["--port", &port.to_string()])
        .args(["--client-secret", secret])
        .args(["--redirect-uri", redirect_uri])
        .args(["--post-logout-uri", post_logout_uri]);
    StationProcess::start(station, command, "the OpenID provider")
}

/// The forward-auth script on the station's `port`, logging what it is asked into `log`.
pub fn auth_script(station: &Station, port: u16, log: &Path) -> StationProcess {
    let mut command = Command::new("/usr/bin/python3");
    command
        .arg(repo_root().join("tests/forward_auth/auth.py"))
        .args(["--port", &port.to_string()])
        .arg("--log")
        .arg(log);
    StationProcess::start(station, command, "the forward-auth script")
}

/// Runs the stdlib browser on the station: `mode` and `args` as `login_client.py` takes them,
/// trusting the certificates in `bundle`, with `resolve` ("host=address,...") standing in for
/// DNS. Its JSON answer, or why there is none.
pub fn browser(
    station: &Station,
    bundle: &Path,
    resolve: &str,
    mode: &str,
    args: &[&str],
) -> Result<serde_json::Value, String> {
    let script = repo_root().join("frontdoor/tests/login_client.py");
    let out = station
        .run(|| {
            Command::new("timeout")
                .args(["--kill-after=5", "120", "/usr/bin/python3"])
                .arg(&script)
                .arg(bundle)
                .arg(mode)
                .args(args)
                .env("BATON_RESOLVE", resolve)
                .output()
        })
        .map_err(|e| format!("entering the station: {e}"))?
        .map_err(|e| format!("login_client.py: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "login_client.py {mode} {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "login_client.py {mode}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// An access token of the provider at `issuer` for the client `baton` (client_credentials,
/// audience `urn:baton`), fetched on the station with curl trusting `ca`.
pub fn provider_token(
    station: &Station,
    ca: &Path,
    issuer: &str,
    secret: &str,
) -> Result<String, String> {
    let out = station
        .run(|| {
            Command::new("curl")
                .args(["-sS", "--max-time", "30", "--cacert"])
                .arg(ca)
                .args(["-u", &format!("baton:{secret}")])
                .args([
                    "-d",
                    "grant_type=client_credentials",
                    "-d",
                    "resource=urn:baton",
                ])
                .arg(format!("{issuer}/token"))
                .output()
        })
        .map_err(|e| format!("entering the station: {e}"))?
        .map_err(|e| format!("curl: {e}"))?;
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "the provider's token answer is not JSON ({e}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no access_token in {body}"))
}

/// Client certificates for `auth = "mtls"`: a client CA, a certificate of it for ann (with an
/// email address), and one for eve from a CA the boards do not trust.
pub struct ClientCerts {
    /// The client CA (PEM text), for `[front_door.mtls] ca`.
    pub ca_pem: String,
    pub ann_cert: PathBuf,
    pub ann_key: PathBuf,
    pub eve_cert: PathBuf,
    pub eve_key: PathBuf,
}

/// The email address in ann's certificate.
pub const ANN_EMAIL: &str = "ann@lan";

/// The subject of the certificate at `pem` as `openssl x509 -nameopt RFC2253` prints it (RFC
/// 4514), the standard tool's answer to what the front door's `X-Forwarded-User` must be.
pub fn subject_rfc2253(pem: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(pem)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl x509: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .strip_prefix("subject=")
        .unwrap_or_else(|| panic!("openssl printed {text:?}"))
        .to_string()
}

impl ClientCerts {
    pub fn make(dir: &Path) -> ClientCerts {
        let (ca_pem, ca) = client_ca("baton e2e client CA");
        let (_, other) = client_ca("someone else's CA");
        let write = |name: &str, issuer: &rcgen::Issuer<'_, rcgen::KeyPair>, cn: &str| {
            let key = rcgen::KeyPair::generate().expect("client key");
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, "Lab, Inc.");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
            params.subject_alt_names.push(rcgen::SanType::Rfc822Name(
                format!("{cn}@lan").try_into().expect("an email SAN"),
            ));
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params.signed_by(&key, issuer).expect("client certificate");
            let (cert_path, key_path) = (
                dir.join(format!("{name}.pem")),
                dir.join(format!("{name}.key")),
            );
            std::fs::write(&cert_path, cert.pem()).expect("writing a client certificate");
            std::fs::write(&key_path, key.serialize_pem()).expect("writing a client key");
            (cert_path, key_path)
        };
        let (ann_cert, ann_key) = write("ann", &ca, "ann");
        let (eve_cert, eve_key) = write("eve", &other, "eve");
        ClientCerts {
            ca_pem,
            ann_cert,
            ann_key,
            eve_cert,
            eve_key,
        }
    }
}

/// A CA for client certificates: its PEM and its issuer.
fn client_ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), rcgen::Issuer::new(params, key))
}
