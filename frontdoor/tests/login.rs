//! Browser sign-in (`auth = "login"`) on loopback against a real OpenID provider: panva's
//! oidc-provider (`tests/oidc/op.mjs`, run by node over HTTPS with a test CA), a front door
//! serving HTTPS with a certificate from the same CA, an upstream that echoes what it got, and
//! a stdlib Python browser (`login_client.py`) that keeps cookies and posts the provider's own
//! login and consent forms.
//!
//! The flow: page → 302 to the provider → its forms → the callback → the page, with
//! `X-Forwarded-User` at the upstream and baton's cookies kept from it; then the session is
//! used again and logout clears it. The tamper cases: an altered `state` → 400, an altered
//! login cookie → 400, a code from a second sign-in (another PKCE verifier) → the provider
//! answers invalid_grant and the front door 401 with no session; a JSON client → 401; a
//! bearer token on a login route is checked as one (a bad one → 401, no redirect); a session
//! made through one front door holds on another with the same key, not on one with another key;
//! a route's `require` is checked against the session's groups (403); a failed callback clears
//! the login cookie. Without the provider: over plain HTTP with `redirect_http` the callback and
//! logout go to HTTPS, and code exchanges at once are bounded (503 beyond, against a token
//! endpoint that never answers).
//!
//! Needs `node` (or `BATON_TEST_NODE`) and `tests/oidc/node_modules` (`scripts/setup`).

mod common;
mod common_tls;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use baton_frontdoor::config::model::OidcSettings;
use baton_frontdoor::config::{Auth, Snapshot};
use baton_frontdoor::identity::login::LoginSettings;
use common::{echo, get, route, send, snapshot, text, until, Door};
use common_tls::{with_certs, Pki, TlsDoor};
use serde_json::Value;
use tokio::sync::mpsc;

const PATIENCE: Duration = Duration::from_secs(30);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let path =
            std::env::temp_dir().join(format!("baton-login-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The provider, killed on drop.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    fn start(dir: &Path, door_port: u16) -> Provider {
        let oidc = repo().join("tests/oidc");
        assert!(
            oidc.join("node_modules/oidc-provider").is_dir(),
            "tests/oidc/node_modules is missing: run scripts/setup (npm ci in tests/oidc)"
        );
        let node = std::env::var("BATON_TEST_NODE").unwrap_or_else(|_| "node".into());
        let mut child = Command::new(node)
            .current_dir(&oidc)
            .arg("op.mjs")
            .args(["--cert", &dir.join("op.pem").to_string_lossy()])
            .args(["--key", &dir.join("op.key").to_string_lossy()])
            .args(["--host", "localhost", "--port", "0"])
            .args(["--client-secret", "test-secret"])
            .args([
                "--redirect-uri",
                &format!("https://localhost:{door_port}/.baton/auth/callback"),
            ])
            .args([
                "--post-logout-uri",
                &format!("https://localhost:{door_port}/"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (set BATON_TEST_NODE to its path if it is not on PATH)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // The provider logs on stdout too; a closed pipe would kill it.
            for line in reader.lines().map_while(Result::ok) {
                eprintln!("op: {line}");
            }
        });
        let line = rx
            .recv_timeout(PATIENCE)
            .expect("the provider said it was ready in time");
        let ready: Value = serde_json::from_str(&line).expect("the provider's ready line");
        Provider {
            child,
            issuer: ready["issuer"].as_str().expect("issuer").to_string(),
        }
    }
}

/// Runs the Python browser in `mode` against `url` (with `extra` arguments); its JSON report.
fn browser(ca: &Path, mode: &str, url: &str, extra: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/login_client.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(ca)
        .arg(mode)
        .arg(url)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        let _ = tx.send(text);
    });
    let text = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(text) => text,
        Err(_) => {
            let _ = child.kill();
            panic!("the browser ({mode}) did not finish in time");
        }
    };
    let status = child.wait().expect("wait");
    assert!(status.success(), "the browser ({mode}) failed: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{mode}: {e}: {text}"))
}

/// The pieces of one test: the provider, a front door with a login route to an echo, the CA.
struct Setup {
    provider: Provider,
    /// The snapshot in force, with sign-in.
    snapshot: Snapshot,
    /// The upstream.
    app: std::net::SocketAddr,
    door: TlsDoor,
    _fetcher: tokio::task::JoinHandle<()>,
    _fetched: mpsc::Receiver<baton_frontdoor::control::protocol::ToInit>,
    _upstream: tokio::task::JoinHandle<()>,
    dir: TempDir,
    page: String,
}

async fn setup() -> Setup {
    let dir = TempDir::new();
    let pki = Pki::new();
    std::fs::write(dir.0.join("ca.pem"), pki.ca.cert_pem()).expect("ca");
    let op = pki.issue(&["localhost"], false);
    std::fs::write(dir.0.join("op.pem"), &op.cert.chain_pem).expect("op cert");
    std::fs::write(dir.0.join("op.key"), &op.cert.key_pem).expect("op key");
    let door_cert = pki.issue(&["localhost"], false).cert;
    let (app, upstream) = echo("app").await;
    let mut login_route = route("app", None, "/");
    login_route.auth = Auth::Login;
    // Two more login routes to the same service whose `require` the provider's groups (staff,
    // people) meet or do not.
    let mut staff = route("app", None, "/staff");
    staff.auth = Auth::Login;
    staff.require.insert("groups".into(), vec!["staff".into()]);
    let mut admins = route("app", None, "/admins");
    admins.auth = Auth::Login;
    admins
        .require
        .insert("groups".into(), vec!["admins".into()]);
    // The front door starts first: the provider must know its callback's port.
    let base = with_certs(
        snapshot(vec![login_route, staff, admins], None),
        vec![door_cert],
    );
    let door = TlsDoor::start(base.clone()).await;
    door.instances("app", &[("a1", app, true)]);
    let provider = Provider::start(&dir.0, door.addr.port());
    let mut full = base;
    // The key set and the endpoints come as on a board: fetched by the front door from the
    // provider (jwks_url and the discovery document), over HTTPS trusting the test CA.
    full.oidc = Some(OidcSettings {
        issuer: provider.issuer.clone(),
        audience: "urn:baton".into(),
        leeway_s: 30,
        jwks: String::new(),
        jwks_url: Some(format!("{}/jwks", provider.issuer)),
        ca_pem: Some(pki.ca.cert_pem().to_string()),
        discover: true,
        ..OidcSettings::default()
    });
    full.login = Some(LoginSettings {
        client_id: "baton".into(),
        client_secret: "test-secret".into(),
        scopes: vec!["groups".into()],
        callback_path: "/.baton/auth/callback".into(),
        session_ttl_s: 3600,
        session_key: [9; 32],
    });
    let notes = door
        .state
        .apply(2, full.clone())
        .expect("snapshot with sign-in");
    assert!(notes.is_empty(), "{notes:?}");
    door.instances("app", &[("a1", app, true)]);
    let (reports, fetched) = mpsc::channel(64);
    let fetcher = baton_frontdoor::idp::fetch::spawn(Arc::clone(&door.state.idp), reports);
    let idp = Arc::clone(&door.state.idp);
    until("the key set and the discovery document are fetched", || {
        idp.discovery().is_some() && idp.fetched_origin().is_some()
    })
    .await;
    let page = format!("https://localhost:{}/page?x=1", door.addr.port());
    Setup {
        provider,
        snapshot: full,
        app,
        door,
        _fetcher: fetcher,
        _fetched: fetched,
        _upstream: upstream,
        dir,
        page,
    }
}

impl Setup {
    fn browser(&self, mode: &str) -> Value {
        browser(&self.dir.0.join("ca.pem"), mode, &self.page, &[])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_uses_its_session_and_signs_out() {
    let s = setup().await;
    let got = tokio::task::block_in_place(|| s.browser("signin"));
    let first = &got["first"];
    assert_eq!(first["status"], 200, "{got:#}");
    let body = first["body"].as_str().expect("body");
    assert!(body.starts_with("app GET /page?x=1\n"), "{body}");
    assert!(body.contains("x-forwarded-user: ann\n"), "{body}");
    assert!(
        body.contains("x-forwarded-email: ann@example.test\n"),
        "{body}"
    );
    // baton's cookies stay with the front door.
    assert!(!body.contains("__Host-baton"), "{body}");
    assert_eq!(got["session_cookie"], true, "{got:#}");
    assert_eq!(got["login_cookie_left"], false, "{got:#}");
    // The session alone lets the page through (no redirect this time).
    assert_eq!(got["again"]["status"], 200, "{got:#}");
    assert!(got["again"]["body"]
        .as_str()
        .expect("body")
        .contains("x-forwarded-user: ann\n"));
    // Logout clears the session and goes to the provider's end_session_endpoint.
    let logout = &got["logout"];
    assert_eq!(logout["status"], 302, "{got:#}");
    let location = logout["location"].as_str().expect("location");
    assert!(location.starts_with(&s.provider.issuer), "{location}");
    assert!(location.contains("client_id=baton"), "{location}");
    let cleared = logout["set_cookie"].to_string();
    assert!(cleared.contains("__Host-baton_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // Without the session the page sends the browser to the provider again.
    assert_eq!(got["after_logout"]["status"], 302, "{got:#}");
    let again = got["after_logout"]["location"].as_str().expect("location");
    assert!(again.contains("code_challenge_method=S256"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_state_or_login_cookie_gets_400() {
    let s = setup().await;
    for mode in ["tamper-state", "tamper-cookie"] {
        let got = tokio::task::block_in_place(|| s.browser(mode));
        assert_eq!(got["status"], 400, "{mode}: {got:#}");
        assert_eq!(got["session_cookie"], false, "{mode}: {got:#}");
        // The failed sign-in is over: its login cookie is cleared.
        let set = got["set_cookie"].to_string();
        assert!(set.contains("__Host-baton_login=;"), "{mode}: {set}");
        assert!(
            !got["body"]
                .as_str()
                .expect("body")
                .contains("x-forwarded-user"),
            "{got:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_from_another_sign_in_is_refused_by_the_provider_and_gets_401() {
    let s = setup().await;
    let got = tokio::task::block_in_place(|| s.browser("other-code"));
    assert_eq!(got["status"], 401, "{got:#}");
    let body = got["body"].as_str().expect("body");
    assert!(body.contains("invalid_grant"), "{body}");
    assert_eq!(got["session_cookie"], false, "{got:#}");
    let set = got["set_cookie"].to_string();
    assert!(!set.contains("__Host-baton_session"), "{set}");
    assert!(set.contains("__Host-baton_login=;"), "{set}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_client_gets_401_instead_of_a_redirect() {
    let s = setup().await;
    let got = tokio::task::block_in_place(|| s.browser("json"));
    assert_eq!(got["status"], 401, "{got:#}");
    assert_eq!(got["location"], Value::Null, "{got:#}");
    assert_eq!(got["www_authenticate"], "Bearer realm=\"baton\"", "{got:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_on_a_login_route_is_checked_as_one() {
    let s = setup().await;
    // Even from a browser: the token is what counts, and a bad one is no reason to redirect.
    let got = tokio::task::block_in_place(|| s.browser("bearer"));
    assert_eq!(got["status"], 401, "{got:#}");
    assert_eq!(got["location"], Value::Null, "{got:#}");
    let challenge = got["www_authenticate"].as_str().expect("challenge");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_the_provider_passes_a_login_route_without_a_session() {
    let s = setup().await;
    let ca = s.dir.0.join("ca.pem");
    let issuer = s.provider.issuer.clone();
    let got =
        tokio::task::block_in_place(|| browser(&ca, "token", &s.page, &[&issuer, "test-secret"]));
    assert_eq!(got["status"], 200, "{got:#}");
    // A client_credentials token is the client's own: its sub is the client id.
    let body = got["body"].as_str().expect("body");
    assert!(body.contains("x-forwarded-user: baton\n"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_holds_on_every_front_door_with_the_same_key_and_no_other() {
    let s = setup().await;
    // Two more front doors with the same routes and sign-in settings, as other boards: one with
    // the cluster's session key, one with another key. Neither has fetched the discovery
    // document: a session needs only the key.
    // A third has the same key but another client id: sessions are sealed to the issuer and
    // the client id too, so a change of either in cluster.toml ends them.
    let mut snapshot = s.snapshot.clone();
    let same = TlsDoor::start(snapshot.clone()).await;
    same.instances("app", &[("a1", s.app, true)]);
    let mut renamed = snapshot.clone();
    if let Some(login) = renamed.login.as_mut() {
        login.client_id = "another".into();
    }
    let renamed = TlsDoor::start(renamed).await;
    renamed.instances("app", &[("a1", s.app, true)]);
    if let Some(login) = snapshot.login.as_mut() {
        login.session_key = [3; 32];
    }
    let other = TlsDoor::start(snapshot).await;
    other.instances("app", &[("a1", s.app, true)]);
    let ca = s.dir.0.join("ca.pem");
    for (door, passes) in [(&same, true), (&other, false), (&renamed, false)] {
        let there = format!("https://localhost:{}/there", door.addr.port());
        let got = tokio::task::block_in_place(|| browser(&ca, "roam", &s.page, &[&there]));
        assert_eq!(got["first"]["status"], 200, "{got:#}");
        let body = got["other"]["body"].as_str().expect("body");
        if passes {
            assert_eq!(got["other"]["status"], 200, "{got:#}");
            assert!(body.contains("x-forwarded-user: ann\n"), "{body}");
        } else {
            // No session there: it would send the browser to sign in, which it cannot yet
            // (no discovery document): 503, and never the page.
            assert_eq!(got["other"]["status"], 503, "{got:#}");
            assert!(!body.contains("x-forwarded-user"), "{body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_the_route_s_required_groups_gets_403() {
    let s = setup().await;
    let ca = s.dir.0.join("ca.pem");
    let base = format!("https://localhost:{}", s.door.addr.port());
    for (path, status) in [("/staff/x", 200), ("/admins/x", 403)] {
        let there = format!("{base}{path}");
        let got = tokio::task::block_in_place(|| browser(&ca, "roam", &s.page, &[&there]));
        assert_eq!(got["first"]["status"], 200, "{got:#}");
        assert_eq!(got["other"]["status"], status, "{path}: {got:#}");
        let reached = got["other"]["body"]
            .as_str()
            .expect("body")
            .contains("x-forwarded-user");
        assert_eq!(reached, status == 200, "{path}: {got:#}");
    }
}

/// A front door over plain HTTP with a login route and sign-in settings (no provider needed:
/// nothing here gets as far as the issuer).
fn plain_snapshot(redirect_http: bool) -> Snapshot {
    let mut login_route = route("app", None, "/");
    login_route.auth = Auth::Login;
    let mut snap = snapshot(vec![login_route], None);
    snap.settings.redirect_http = redirect_http;
    snap.settings.https_port = 8443;
    snap.login = Some(LoginSettings {
        client_id: "baton".into(),
        client_secret: "test-secret".into(),
        scopes: Vec::new(),
        callback_path: "/.baton/auth/callback".into(),
        session_ttl_s: 3600,
        session_key: [9; 32],
    });
    snap
}

#[tokio::test]
async fn sign_in_paths_over_plain_http_go_to_https_like_the_routes() {
    let door = Door::start(plain_snapshot(true)).await;
    for path in [
        "/.baton/auth/logout",
        "/.baton/auth/callback?code=c&state=s",
    ] {
        let got = get(door.addr, "app.lan", path).await;
        assert_eq!(got.status, 308, "{path}: {got:?}");
        assert_eq!(
            got.headers["location"],
            format!("https://app.lan:8443{path}"),
            "{path}"
        );
        // Nothing of sign-in is answered over HTTP: no cookie set or cleared.
        assert!(!got.headers.contains_key("set-cookie"), "{path}: {got:?}");
    }
    // Without redirect_http the paths answer over HTTP as before (a logout clears the session).
    let door = Door::start(plain_snapshot(false)).await;
    let got = get(door.addr, "app.lan", "/.baton/auth/logout").await;
    assert_eq!(got.status, 302, "{got:?}");
    assert!(got.headers.contains_key("set-cookie"), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_exchanges_under_way_at_once_are_bounded() {
    use baton_frontdoor::identity::login::cookie::Sealer;
    use baton_frontdoor::identity::login::flow::{Pending, LOGIN_COOKIE, LOGIN_TTL_S};
    use baton_frontdoor::idp::Discovery;
    use baton_frontdoor::proxy::login::MAX_EXCHANGES;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // A token endpoint that takes connections and never answers: every exchange sent there
    // holds its place until the client's timeout.
    let stall = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let stall_port = stall.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    let _stall = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = stall.accept().await {
            held.push(conn);
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let issuer = "https://idp.test".to_string();
    let mut snap = plain_snapshot(false);
    snap.settings.per_client_connections = 4 * MAX_EXCHANGES as u32;
    snap.settings.per_client_rate = 10_000;
    snap.settings.per_client_burst = 10_000;
    snap.oidc = Some(OidcSettings {
        issuer: issuer.clone(),
        audience: "urn:baton".into(),
        leeway_s: 30,
        jwks: String::new(),
        jwks_url: Some(format!("{issuer}/jwks")),
        discover: true,
        discovery: Some(Discovery {
            issuer: issuer.clone(),
            authorization_endpoint: format!("{issuer}/auth"),
            token_endpoint: format!("https://127.0.0.1:{stall_port}/token"),
            end_session_endpoint: None,
            jwks_uri: None,
        }),
        ..OidcSettings::default()
    });
    let door = Door::start(snap).await;
    assert!(
        door.state.idp.discovery().is_some(),
        "the cached document is used"
    );
    // A callback with a good login cookie and its state: it goes on to the token endpoint.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let pending = Pending {
        state: "s1".into(),
        nonce: "n1".into(),
        verifier: "v".repeat(43),
        ret: "/".into(),
        exp: now + LOGIN_TTL_S,
    };
    let sealed = Sealer::new(&[9; 32])
        .seal(LOGIN_COOKIE, &pending)
        .expect("sealed");
    let addr = door.addr;
    let callback = move || {
        let req = http::Request::get("/.baton/auth/callback?code=c&state=s1")
            .header("host", "app.lan")
            .header("cookie", format!("{LOGIN_COOKIE}={sealed}"))
            .body(text(""))
            .expect("request");
        send(addr, req)
    };
    let waiting: Vec<_> = (0..MAX_EXCHANGES)
        .map(|_| tokio::spawn(callback.clone()()))
        .collect();
    until("every exchange reached the token endpoint", || {
        accepted.load(Ordering::SeqCst) >= MAX_EXCHANGES
    })
    .await;
    // One more is refused at once, without a connection to the token endpoint.
    let got = callback().await;
    assert_eq!(got.status, 503, "{got:?}");
    assert!(got.body.contains("too many sign-ins"), "{got:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), MAX_EXCHANGES);
    // The others end with the client's timeout (502) and give their places back.
    for one in waiting {
        assert_eq!(one.await.expect("joined").status, 502);
    }
}
