//! The station's auth script (`tests/forward_auth/auth.py`, which the QEMU test runs on the LAN
//! station) behind a front door on loopback: it lets the good cookie in with the user's
//! headers, sends a browser to sign in, refuses others, and sees what the front door says the
//! request was. So the script is known to work before a QEMU run relies on it.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use baton_frontdoor::config::{Auth, ForwardAuth};
use common::*;
use http::Request;

/// Debian's interpreter (what CI and the station have).
const PYTHON: &str = "/usr/bin/python3";

/// The script, killed when dropped.
struct Script {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn start_script() -> Script {
    let script = format!(
        "{}/../tests/forward_auth/auth.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let log = std::env::temp_dir().join(format!("baton-fwd-auth-{}.log", std::process::id()));
    let mut child = Command::new(PYTHON)
        .arg(&script)
        .args(["--bind", "127.0.0.1", "--log"])
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{PYTHON} {script}: {e}"));
    let mut first = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("the script's first line");
    let port = first
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the script said {first:?}"));
    Script { child, port, log }
}

#[tokio::test]
async fn the_station_s_auth_script_guards_a_route() {
    let script = start_script();
    let (app, _app) = echo("app").await;
    let mut r = route("app", Some("app.lan"), "/");
    r.auth = Auth::Forward;
    r.forward = Some(ForwardAuth {
        url: format!("http://127.0.0.1:{}/verify", script.port),
        copy_headers: vec!["Remote-Groups".into()],
        user_header: "Remote-User".into(),
        email_header: "Remote-Email".into(),
    });
    let door = Door::start(snapshot(vec![r], None)).await;
    door.instances("app", &[("a1", app, true)]);
    let ask = |headers: &[(&'static str, &'static str)]| {
        let mut req = Request::get("/page?x=1").header("host", "app.lan");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        send(door.addr, req.body(text("")).expect("request"))
    };

    let got = ask(&[("cookie", "session=good"), ("remote-user", "mallory")]).await;
    assert_eq!(got.status, 200, "{got:?}");
    for line in [
        "x-forwarded-user: ann\n",
        "x-forwarded-email: ann@lan\n",
        "remote-groups: admins\n",
    ] {
        assert!(got.body.contains(line), "{line:?} missing: {}", got.body);
    }
    assert!(!got.body.contains("mallory"), "{}", got.body);

    let got = ask(&[("accept", "text/html")]).await;
    assert_eq!(got.status, 302, "{got:?}");
    assert_eq!(
        got.headers["location"],
        "http://auth.lan/login?rd=http://app.lan/page?x=1"
    );
    assert_eq!(got.headers["set-cookie"], "auth_state=s1; HttpOnly");

    let got = ask(&[]).await;
    assert_eq!(got.status, 401, "{got:?}");
    assert_eq!(got.headers["www-authenticate"], "Basic realm=\"baton-e2e\"");
    assert_eq!(got.body, "who are you?\n");

    let log = std::fs::read_to_string(&script.log).expect("the script's log");
    for line in [
        "GET /verify\n",
        "x-forwarded-method: GET\n",
        "x-forwarded-host: app.lan\n",
        "x-forwarded-uri: /page?x=1\n",
        "x-original-url: http://app.lan/page?x=1\n",
    ] {
        assert!(log.contains(line), "{line:?} missing: {log}");
    }
}
