//! The identity checks of the front door test: each `route.auth` mode lets the right callers in
//! and keeps the others out, through a board that does not run the service, against a real
//! OpenID provider, a forward-auth service and client certificates on the LAN station; the
//! identity reaches the instance, signed by the cluster, and a client's own copy does not.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_qemu::station::Station;
use baton_tests::registry::TestCa;
use baton_tests::station_auth::{
    self, browser, provider_token, subject_rfc2253, ClientCerts, StationProcess, ANN_EMAIL,
};
use baton_tests::wait_until;

use super::curl;

/// The provider's port on the station, and the client secret of the front door.
pub const IDP_PORT: u16 = 9443;
pub const SECRET: &str = "e2e-login-secret";
/// The forward-auth script's port on the station.
pub const AUTH_PORT: u16 = 9091;

/// The card's share of the identity checks: files, `cluster.toml` tables and service specs.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub idp: TestCa,
    pub clients: ClientCerts,
}

impl Setup {
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let idp = TestCa::new(dir.path(), &issuer_host());
        let clients = ClientCerts::make(dir.path());
        Setup { dir, idp, clients }
    }

    /// `[front_door.oidc]` and `[front_door.mtls]` of `cluster.toml`.
    pub fn cluster_tables(&self) -> String {
        let issuer = issuer();
        format!(
            "\n[front_door.oidc]\nissuer = \"{issuer}\"\naudience = \"urn:baton\"\n\
             jwks_url = \"{issuer}/jwks\"\nca = \"certs/idp-ca.pem\"\nclient_id = \"baton\"\n\
             client_secret = \"{SECRET}\"\nscopes = [\"groups\"]\n\n\
             [front_door.mtls]\nca = \"certs/clients.pem\"\n"
        )
    }

    /// Card files: the provider's CA and the client CA.
    pub fn card_files(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "certs/idp-ca.pem",
                std::fs::read_to_string(&self.idp.ca_pem).expect("the provider's CA"),
            ),
            ("certs/clients.pem", self.clients.ca_pem.clone()),
        ]
    }

    /// The provider's CA and the cluster CA in one file, for the station's browser.
    pub fn bundle(&self, cluster_ca: &str) -> PathBuf {
        let path = self.dir.path().join("bundle.pem");
        let text = format!(
            "{}{}",
            std::fs::read_to_string(cluster_ca).expect("the cluster CA"),
            std::fs::read_to_string(&self.idp.ca_pem).expect("the provider's CA")
        );
        std::fs::write(&path, text).expect("writing the bundle");
        path
    }

    /// Starts the provider and the forward-auth script on the station.
    pub fn start_station(&self, station: &Station) -> (StationProcess, StationProcess, PathBuf) {
        let op = station_auth::openid_provider(
            station,
            &self.idp.cert,
            &self.idp.key,
            IDP_PORT,
            SECRET,
            "https://app.lan/.baton/auth/callback",
            "https://app.lan/",
        );
        let log = self.dir.path().join("auth.log");
        let auth = station_auth::auth_script(station, AUTH_PORT, &log);
        (op, auth, log)
    }
}

fn issuer_host() -> String {
    baton_qemu::station::ADDRESS.to_string()
}

pub fn issuer() -> String {
    format!("https://{}:{IDP_PORT}", issuer_host())
}

/// The specs of the identity routes: `private` (bearer tokens) and `secure` (client
/// certificates) on board 3, `app` (sign-in) on board 2.
pub fn specs(board2: &str, board3: &str) -> Vec<(String, String)> {
    let spec = |name: &str, board: &str, route: &str| {
        (
            format!("services/{name}.toml"),
            format!(
                "name = \"{name}\"\nimage = \"oci-archive:images/hello.tar\"\nport = 8080\n\
                 resources = {{ memory = \"32Mi\" }}\nplacement = {{ boards = [\"{board}\"] }}\n\
                 route = {route}\n"
            ),
        )
    };
    vec![
        spec(
            "private",
            board3,
            "{ host = \"private.lan\", auth = \"oidc\" }",
        ),
        spec(
            "secure",
            board3,
            "{ host = \"secure.lan\", auth = \"mtls\" }",
        ),
        spec("app", board2, "{ host = \"app.lan\", auth = \"login\" }"),
    ]
}

/// `curl --cacert CA --resolve HOST:443:ADDR ARGS https://HOST/PATH`, the body and a last line
/// with the status.
fn https(
    ca: &str,
    host: &str,
    addr: Ipv4Addr,
    path: &str,
    args: &[&str],
) -> Result<String, String> {
    let resolve = format!("{host}:443:{addr}");
    let url = format!("https://{host}{path}");
    let mut all = vec![
        "--cacert",
        ca,
        "--resolve",
        &resolve,
        "-w",
        "\n%{http_code}",
    ];
    all.extend_from_slice(args);
    all.push(&url);
    curl(&all)
}

/// The status (last line) and the body of [`https`]'s output.
fn split(out: &str) -> (&str, &str) {
    out.rsplit_once('\n')
        .map_or(("", out), |(body, code)| (code, body))
}

/// Bearer tokens of the provider pass through every board, once each board's front door has
/// fetched the provider's keys; a token with a key the provider never had does not.
pub fn bearer(station: &Station, ca: &str, idp_ca: &Path, addrs: &[Ipv4Addr], limit: Duration) {
    let token = station_auth_token(station, idp_ca);
    let bearer = format!("Authorization: Bearer {token}");
    for (i, addr) in addrs.iter().enumerate() {
        let body = wait_until(
            &format!("a bearer token through board {}", i + 1),
            limit,
            || {
                let out = station
                    .run(|| https(ca, "private.lan", *addr, "/headers", &["-H", &bearer]))
                    .ok()?
                    .ok()?;
                let (code, body) = split(&out);
                (code == "200").then(|| body.to_string())
            },
        );
        assert!(body.contains("x-forwarded-user: baton\n"), "{body}");
    }
    let out = station
        .run(|| https(ca, "private.lan", addrs[0], "/headers", &[]))
        .expect("station")
        .expect("curl");
    assert_eq!(split(&out).0, "401", "{out}");
}

fn station_auth_token(station: &Station, idp_ca: &Path) -> String {
    provider_token(station, idp_ca, &issuer(), SECRET)
        .unwrap_or_else(|e| panic!("a token of the provider: {e}"))
}

/// A token fetched now, to use after the provider is gone.
pub fn token_for_later(station: &Station, idp_ca: &Path) -> String {
    station_auth_token(station, idp_ca)
}

/// A token fetched earlier passes through board `addr` (the provider may be down).
pub fn bearer_passes(station: &Station, ca: &str, token: &str, addr: Ipv4Addr) {
    let bearer = format!("Authorization: Bearer {token}");
    let out = station
        .run(|| https(ca, "private.lan", addr, "/headers", &["-H", &bearer]))
        .expect("station")
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let (code, body) = split(&out);
    assert_eq!(code, "200", "{out}");
    assert!(body.contains("x-forwarded-user: baton\n"), "{body}");
}

/// Browser sign-in through board 1 (the instance runs on board 2), the session used on board
/// 3, and the tampered and non-browser cases.
pub fn login(station: &Station, ca: &str, bundle: &Path, addrs: &[Ipv4Addr], limit: Duration) {
    // Sign-in needs the provider's discovery document, fetched by each front door.
    for (i, addr) in addrs.iter().enumerate() {
        wait_until(&format!("sign-in ready on board {}", i + 1), limit, || {
            let out = station
                .run(|| https(ca, "app.lan", *addr, "/", &["-o", "/dev/null"]))
                .ok()?
                .ok()?;
            (out.trim() == "302").then_some(())
        });
    }
    let resolve = format!("app.lan={}", addrs[0]);
    let page = "https://app.lan/headers";
    let got = browser(station, bundle, &resolve, "signin", &[page]).expect("sign-in");
    let first = got["first"]["body"].as_str().unwrap_or_default();
    assert_eq!(got["first"]["status"], 200, "{got:#}");
    assert!(first.contains("x-forwarded-user: ann\n"), "{got:#}");
    assert!(
        first.contains("x-forwarded-email: ann@example.test\n"),
        "{got:#}"
    );
    assert!(first.contains("x-baton-identity: "), "{got:#}");
    assert!(!first.contains("__Host-baton"), "{got:#}");
    assert_eq!(got["again"]["status"], 200, "{got:#}");
    assert_eq!(got["logout"]["status"], 302, "{got:#}");
    assert_eq!(got["after_logout"]["status"], 302, "{got:#}");
    // A session made through board 1 holds on board 3.
    let other = addrs[2].to_string();
    let got = browser(station, bundle, &resolve, "roam", &[page, page, &other]).expect("roam");
    assert_eq!(got["other"]["status"], 200, "{got:#}");
    assert!(
        got["other"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("x-forwarded-user: ann\n")),
        "{got:#}"
    );
    for mode in ["tamper-state", "tamper-cookie"] {
        let got = browser(station, bundle, &resolve, mode, &[page]).expect(mode);
        assert_eq!(got["status"], 400, "{mode}: {got:#}");
        assert_eq!(got["session_cookie"], false, "{mode}: {got:#}");
    }
    let got = browser(station, bundle, &resolve, "other-code", &[page]).expect("other-code");
    assert_eq!(got["status"], 401, "{got:#}");
    assert_eq!(got["session_cookie"], false, "{got:#}");
    // The sign-in paths over plain HTTP go to HTTPS like the routes, setting no cookie.
    let out = station
        .run(|| {
            curl(&[
                "-i",
                "-H",
                "Host: app.lan",
                &format!("http://{}/.baton/auth/logout", addrs[0]),
            ])
        })
        .expect("station")
        .expect("curl");
    assert!(out.starts_with("HTTP/1.1 308"), "{out}");
    assert!(out.contains("https://app.lan/.baton/auth/logout"), "{out}");
    assert!(!out.to_ascii_lowercase().contains("set-cookie"), "{out}");
    let got = browser(station, bundle, &resolve, "json", &[page]).expect("json");
    assert_eq!(got["status"], 401, "{got:#}");
    assert_eq!(got["location"], serde_json::Value::Null, "{got:#}");
}

/// Client certificates through board 1 (the instance runs on board 3); the identity assertion
/// board 1 signs verifies against the key set board 3 serves.
pub fn mtls(station: &Station, ca: &str, certs: &ClientCerts, addrs: &[Ipv4Addr]) {
    let (cert, key) = (
        certs.ann_cert.to_string_lossy().into_owned(),
        certs.ann_key.to_string_lossy().into_owned(),
    );
    let forged = [
        "-H",
        "X-Forwarded-User: root",
        "-H",
        "X-Baton-Identity: forged",
        "-H",
        "Cookie: a=1; __Host-baton_session=x",
    ];
    let mut args = vec!["--cert", &cert, "--key", &key];
    args.extend_from_slice(&forged);
    let out = station
        .run(|| https(ca, "secure.lan", addrs[0], "/headers", &args))
        .expect("station")
        .unwrap_or_else(|e| panic!("curl with ann's certificate: {e}"));
    let (code, body) = split(&out);
    assert_eq!(code, "200", "{out}");
    let subject = subject_rfc2253(&certs.ann_cert);
    assert!(
        body.contains(&format!("x-forwarded-user: {subject}\n")),
        "{body}"
    );
    assert!(
        body.contains(&format!("x-forwarded-email: {ANN_EMAIL}\n")),
        "{body}"
    );
    assert!(body.contains("cookie: a=1\n"), "{body}");
    for bad in ["root", "forged", "__Host-baton"] {
        assert!(!body.contains(bad), "{bad} reached the instance: {body}");
    }
    let assertion = body
        .lines()
        .find_map(|l| l.strip_prefix("x-baton-identity: "))
        .unwrap_or_else(|| panic!("no assertion: {body}"));
    let jwks = station
        .run(|| https(ca, "web.lan", addrs[2], "/.well-known/baton/jwks.json", &[]))
        .expect("station")
        .expect("the key set");
    let (code, jwks) = split(&jwks);
    assert_eq!(code, "200", "{jwks}");
    let claims = verify_assertion(assertion, jwks, "secure");
    assert_eq!(claims["sub"], subject, "{claims}");
    assert_eq!(claims["auth"], "mtls", "{claims}");
    // No certificate: 401. A certificate of another CA: the handshake fails.
    let out = station
        .run(|| https(ca, "secure.lan", addrs[0], "/headers", &[]))
        .expect("station")
        .expect("curl");
    assert_eq!(split(&out).0, "401", "{out}");
    let (eve_cert, eve_key) = (
        certs.eve_cert.to_string_lossy().into_owned(),
        certs.eve_key.to_string_lossy().into_owned(),
    );
    let eve = station
        .run(|| {
            https(
                ca,
                "secure.lan",
                addrs[0],
                "/headers",
                &["--cert", &eve_cert, "--key", &eve_key],
            )
        })
        .expect("station");
    assert!(eve.is_err(), "a certificate of another CA got in: {eve:?}");
    // A connection made for web.lan (no certificate asked) cannot carry secure.lan's requests.
    let out = station
        .run(|| {
            https(
                ca,
                "web.lan",
                addrs[0],
                "/headers",
                &["-H", "Host: secure.lan"],
            )
        })
        .expect("station")
        .expect("curl");
    assert_eq!(split(&out).0, "421", "{out}");
}

/// The claims of `token`, checked by PyJWT (another implementation) against `jwks` for the
/// audience `service` and the cluster's issuer.
fn verify_assertion(token: &str, jwks: &str, service: &str) -> serde_json::Value {
    let script = "import json, sys, jwt\n\
        token, jwks, aud, iss = sys.argv[1:5]\n\
        keys = {k['kid']: jwt.PyJWK(k) for k in json.loads(jwks)['keys']}\n\
        kid = jwt.get_unverified_header(token)['kid']\n\
        print(json.dumps(jwt.decode(token, keys[kid].key, algorithms=['ES256'], audience=aud, issuer=iss)))\n";
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script, token, jwks, service, "baton:frontdoor"])
        .output()
        .expect("/usr/bin/python3");
    assert!(
        out.status.success(),
        "PyJWT refused the assertion: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("claims as JSON")
}

/// Forward auth against the station's script, through board 1 (the instance runs on board 2).
pub fn forward(station: &Station, ca: &str, addrs: &[Ipv4Addr], log: &Path) {
    let args = [
        "-b",
        "session=good",
        "-H",
        "Remote-User: mallory",
        "-H",
        "X-Forwarded-User: mallory",
    ];
    let out = station
        .run(|| https(ca, "guarded.lan", addrs[0], "/headers", &args))
        .expect("station")
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let (code, body) = split(&out);
    assert_eq!(code, "200", "{out}");
    assert!(body.contains("x-forwarded-user: ann\n"), "{body}");
    assert!(body.contains("remote-groups: admins\n"), "{body}");
    assert!(!body.contains("mallory"), "{body}");
    let out = station
        .run(|| https(ca, "guarded.lan", addrs[0], "/headers", &["-i"]))
        .expect("station")
        .expect("curl");
    let (code, text) = split(&out);
    assert_eq!(code, "401", "{out}");
    assert!(text.contains("Basic realm=\"baton-e2e\""), "{text}");
    let asked = std::fs::read_to_string(log).unwrap_or_default();
    assert!(asked.contains("x-forwarded-host: guarded.lan"), "{asked}");
    assert!(asked.contains("x-forwarded-proto: https"), "{asked}");
}
