//! `GET /fetch` for real: the `hello` binary on 127.0.0.1 (a port the kernel picks) calling a
//! second instance, a refused port, a name that cannot resolve and a listener that never
//! answers. Loopback only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `hello`, killed when dropped.
struct Hello {
    child: Child,
    port: u16,
}

impl Hello {
    fn start(greeting: &str) -> Hello {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hello"))
            .env("PORT", "0")
            .env("GREETING", greeting)
            .env_remove("STATE_DIR")
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting hello");
        let stdout = child.stdout.take().expect("hello's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .expect("hello printed nothing")
            .expect("reading hello's stdout");
        let port = first
            .strip_prefix("hello: listening on port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Hello { child, port }
    }

    /// `GET path` and the status code and body of the answer.
    fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connecting to hello");
        s.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("read timeout");
        write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").expect("sending the request");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("reading the answer");
        let code = answer
            .get(9..12)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad answer {answer:?}"));
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (code, body)
    }
}

impl Drop for Hello {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding a probe port");
    l.local_addr().expect("probe address").port()
}

#[test]
fn fetch_passes_on_the_body_of_a_200() {
    let (front, back) = (Hello::start("front"), Hello::start("back"));
    let (code, body) = front.get(&format!("/fetch?url=http://127.0.0.1:{}/", back.port));
    assert_eq!(code, 200, "{body}");
    assert!(body.starts_with("back from "), "{body:?}");
    // Percent-encoded, with a path.
    let (code, body) = front.get(&format!(
        "/fetch?url=http%3A%2F%2Flocalhost%3A{}%2Fhealthz",
        back.port
    ));
    assert_eq!((code, body.as_str()), (200, "ok\n"));
}

#[test]
fn upstream_errors_are_502_with_a_reason() {
    let (front, back) = (Hello::start("front"), Hello::start("back"));
    let (code, body) = front.get(&format!(
        "/fetch?url=http://127.0.0.1:{}/nothing-here",
        back.port
    ));
    assert_eq!((code, body.as_str()), (502, "upstream answered 404\n"));

    let port = closed_port();
    let (code, body) = front.get(&format!("/fetch?url=http://localhost:{port}/"));
    assert_eq!(
        (code, body.as_str()),
        (
            502,
            format!("connect to localhost:{port} refused\n").as_str()
        )
    );

    // A label longer than DNS allows fails inside the resolver, before any query is sent,
    // so this test needs no network.
    let name = format!("{}.invalid", "x".repeat(64));
    let (code, body) = front.get(&format!("/fetch?url=http://{name}:8080/"));
    assert_eq!(
        (code, body.as_str()),
        (502, format!("cannot resolve {name}\n").as_str())
    );

    let (code, body) = front.get("/fetch?url=https://127.0.0.1/");
    assert_eq!(code, 400, "{body}");
}

#[test]
fn a_silent_upstream_times_out_within_the_overall_limit() {
    let front = Hello::start("front");
    // The kernel completes the handshake from the backlog; nobody ever answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("binding the silent listener");
    let port = silent.local_addr().expect("silent address").port();
    let started = Instant::now();
    let (code, body) = front.get(&format!("/fetch?url=http://127.0.0.1:{port}/"));
    let took = started.elapsed();
    assert_eq!((code, body.as_str()), (502, "timed out\n"));
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(8),
        "took {took:?}"
    );
}
