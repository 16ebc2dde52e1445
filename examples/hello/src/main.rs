//! `hello`: the example service. A small HTTP/1.1 server on `$PORT` (default 8080):
//!
//! - `GET /` answers `$GREETING from <hostname>` (GREETING defaults to "hello");
//! - `GET /healthz` answers `ok`;
//! - `GET /count` counts the requests it has served (state kept in `$STATE_DIR/count` if set,
//!   so a volume can carry it across restarts);
//! - anything else is 404.
//!
//! Every request is logged on stdout. It uses only the standard library, so it builds as a
//! static binary of a few hundred KiB for the board.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Service {
    greeting: String,
    hostname: String,
    state: Option<PathBuf>,
    served: AtomicU64,
}

fn main() {
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(8080);
    let state = std::env::var_os("STATE_DIR").map(|d| PathBuf::from(d).join("count"));
    let served = state
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let service = Arc::new(Service {
        greeting: std::env::var("GREETING").unwrap_or_else(|_| "hello".to_string()),
        hostname: std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown".to_string()),
        state,
        served: AtomicU64::new(served),
    });
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hello: cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    };
    println!("hello: listening on port {port}");
    for stream in listener.incoming().flatten() {
        let service = Arc::clone(&service);
        std::thread::spawn(move || {
            if let Err(e) = serve(&service, stream) {
                eprintln!("hello: {e}");
            }
        });
    }
}

fn serve(service: &Service, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers; nothing here needs them.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = match (method, path) {
        ("GET", "/") => (
            "200 OK",
            format!("{} from {}\n", service.greeting, service.hostname),
        ),
        ("GET", "/healthz") => ("200 OK", "ok\n".to_string()),
        ("GET", "/count") => {
            let n = service.served.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(path) = &service.state {
                std::fs::write(path, format!("{n}\n"))?;
            }
            ("200 OK", format!("{n}\n"))
        }
        _ => ("404 Not Found", "not found\n".to_string()),
    };
    println!("hello: {method} {path} -> {status}");
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
