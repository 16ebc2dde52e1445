//! For tests: the server on a loopback port the kernel picks, run in this process, and a
//! minimal client.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// Starts serving on 127.0.0.1 and returns the port. The accepting thread lives as long as
/// the test process.
pub fn start() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let port = listener.local_addr().expect("local address").port();
    let service = Arc::new(crate::Service {
        greeting: "hello".to_string(),
        hostname: "test".to_string(),
        state: None,
        served: AtomicU64::new(0),
    });
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let service = Arc::clone(&service);
            std::thread::spawn(move || crate::serve(&service, stream));
        }
    });
    port
}

/// A connection with a read timeout, so a test that waits in vain fails instead of hanging.
pub fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("read timeout");
    s
}

/// Sends `GET path` with `headers` (whole lines, each ending in CRLF) and returns the status
/// code and body.
pub fn get(port: u16, path: &str, headers: &str) -> (u16, String) {
    let mut s = connect(port);
    s.write_all(format!("GET {path} HTTP/1.1\r\n{headers}\r\n").as_bytes())
        .expect("sending");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("reading the answer");
    let answer = String::from_utf8_lossy(&answer);
    let code = answer
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad answer {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (code, body.unwrap_or_default())
}
