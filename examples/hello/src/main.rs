//! `hello`: the example service. A small HTTP/1.1 server on `$PORT` (default 8080):
//!
//! - `GET /` answers `$GREETING from <hostname>` (GREETING defaults to "hello");
//! - `GET /healthz` answers `ok`;
//! - `GET /count` counts the requests it has served (state kept in `$STATE_DIR/count` if set,
//!   so a volume can carry it across restarts);
//! - `GET /hog` allocates and touches memory until the kernel stops it (to test memory limits);
//! - `GET /threads?n=N` starts up to N threads and answers how many it could start (to test
//!   process limits);
//! - `GET /fetch?url=http://HOST:PORT/PATH` calls another service itself (HOST a name resolved
//!   through the container's `/etc/resolv.conf`, or an IPv4 literal; the URL may be
//!   percent-encoded) and answers 200 with the upstream's body if it answered 200, else 502
//!   with one line saying why: `connect to web:8080 refused`, `timed out`, `cannot resolve
//!   web`, `upstream answered 404` (to test which services may reach which; see [`fetch`]);
//! - `GET /bytes?n=N` answers N bytes, streamed in 64 KiB writes (load for benchmarks);
//! - `GET /load?n=K&url=URL` fetches URL (last parameter, the rest of the query, may be
//!   percent-encoded) K times one after another and answers `requests=K bytes=B ms=T`, timed
//!   inside the service, or 502 with the failed request and why (see [`load`]);
//! - `GET /spew?mib=N` writes N MiB to stdout without a newline, `GET /lines?n=N` writes N
//!   short lines (hostile output, to test that the board bounds what it reads; see [`spew`]);
//! - `GET /fill?mib=N[&to=PATH]` writes N MiB into PATH (default `/fill.bin`) and says how much
//!   went in and why it stopped (to test disk limits; see [`spew::fill`]);
//! - `GET /headers` answers the request's headers, one `name: value` line each, names
//!   lowercased, in the order received; every request may have at most 100 headers of at
//!   most 16 KiB in total, else 431 (see [`request`]);
//! - `GET /slow?ms=N` answers `slept N ms` after N ms, `GET /sse?n=N&ms=M` streams N
//!   server-sent events M ms apart (see [`timed`]);
//! - `GET /ws` is a WebSocket echo (see [`ws`]);
//! - `GET /verify` answers as a forward-auth service: 200 with `Remote-User: ann` for the
//!   cookie `session=good`, else 401 (see [`verify`]);
//! - anything else is 404.
//!
//! Started with `--exit CODE` it exits at once with that code (to test restart policies).
//!
//! `PORT=0` listens on a port the kernel picks; the "listening on port N" line names it.
//!
//! Every request is logged on stdout. It uses only the standard library, so it builds as a
//! static binary of a few hundred KiB for the board (and the `sha1` crate, for the WebSocket
//! handshake).

use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod fetch;
mod load;
mod request;
mod spew;
#[cfg(test)]
mod test_server;
mod timed;
mod verify;
mod ws;
mod ws_frame;

struct Service {
    greeting: String,
    hostname: String,
    state: Option<PathBuf>,
    served: AtomicU64,
}

/// Ends the process on SIGTERM, as a server that holds nothing unsaved may.
extern "C" fn terminated(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe and takes no pointer.
    unsafe { libc::_exit(0) }
}

fn main() {
    // A container's PID 1 gets no default action for SIGTERM: without a handler, a stop would
    // wait for the SIGKILL after `stop_timeout`.
    // SAFETY: installs a handler that only calls _exit (async-signal-safe); nothing else in
    // the program sets SIGTERM's disposition.
    unsafe {
        libc::signal(libc::SIGTERM, terminated as *const () as libc::sighandler_t);
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = args
        .iter()
        .position(|a| a == "--exit")
        .and_then(|i| args.get(i + 1))
    {
        println!("hello: exiting with code {code} as asked");
        std::process::exit(code.parse().unwrap_or(1));
    }
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
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    println!("hello: listening on port {port}");
    for stream in listener.incoming().flatten() {
        let service = Arc::clone(&service);
        // Under a process limit a thread may not start: then this connection is dropped, and
        // the server keeps accepting (std::thread::spawn would panic instead).
        let started = std::thread::Builder::new().spawn(move || {
            if let Err(e) = serve(&service, stream) {
                eprintln!("hello: {e}");
            }
        });
        if let Err(e) = started {
            eprintln!("hello: cannot start a thread for a connection: {e}");
        }
    }
}

fn serve(service: &Service, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let request = match request::read_head(&mut reader) {
        Ok(r) => r,
        Err(request::HeadError::Closed) => return Ok(()),
        Err(request::HeadError::Io(e)) => return Err(e),
        Err(request::HeadError::Refused(status, reason)) => {
            println!("hello: request refused -> {status}: {reason}");
            request::answer(&mut stream, status, format!("{reason}\n").as_bytes())?;
            request::linger_close(&stream);
            return Ok(());
        }
    };
    let (method, path) = (request.method.as_str(), request.target.as_str());
    if path == "/ws" {
        return ws::serve(&request, &mut reader, &mut stream);
    }
    if method == "GET" && (path == "/verify" || path.starts_with("/verify?")) {
        return verify::serve(&request, &service.hostname, &mut stream);
    }
    if let ("GET", Some(query)) = (
        method,
        path.strip_prefix("/sse?")
            .or(path.strip_prefix("/sse").filter(|q| q.is_empty())),
    ) {
        if let Ok((n, ms)) = timed::parse_sse(query) {
            println!("hello: {method} {path} -> 200 OK (events)");
            stream.set_write_timeout(Some(Duration::from_secs(30)))?;
            return timed::send_events(&mut stream, n, ms);
        }
    }
    if let ("GET", Some(query)) = (method, path.strip_prefix("/bytes?")) {
        if let Ok(n) = load::parse_bytes_query(query) {
            println!("hello: {method} {path} -> 200 OK");
            return load::send_bytes(&mut stream, n);
        }
    }
    let (status, body) = match (method, path) {
        ("GET", "/") => (
            "200 OK",
            format!("{} from {}\n", service.greeting, service.hostname).into_bytes(),
        ),
        ("GET", "/healthz") => ("200 OK", b"ok\n".to_vec()),
        ("GET", "/count") => {
            let n = service.served.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(path) = &service.state {
                std::fs::write(path, format!("{n}\n"))?;
            }
            ("200 OK", format!("{n}\n").into_bytes())
        }
        ("GET", "/hog") => {
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            loop {
                // Touch every page so the memory is really used.
                chunks.push(vec![1u8; 1 << 20]);
                if chunks.len() % 16 == 0 {
                    println!("hello: holding {} MiB", chunks.len());
                }
            }
        }
        ("GET", p) if p.starts_with("/threads?n=") => {
            let wanted: usize = p["/threads?n=".len()..].parse().unwrap_or(0);
            let mut started = Vec::new();
            for _ in 0..wanted {
                match std::thread::Builder::new()
                    .spawn(|| std::thread::sleep(Duration::from_secs(2)))
                {
                    Ok(t) => started.push(t),
                    Err(_) => break,
                }
            }
            let n = started.len();
            for t in started {
                let _ = t.join();
            }
            ("200 OK", format!("{n}\n").into_bytes())
        }
        ("GET", p) if p.starts_with("/fetch?") => match fetch::parse_query(&p["/fetch?".len()..])
            .and_then(|t| Ok((t, fetch::parse_wait(&p["/fetch?".len()..])?)))
        {
            Err(reason) => ("400 Bad Request", format!("{reason}\n").into_bytes()),
            Ok((target, wait)) => match fetch::fetch(&target, wait) {
                Ok(body) => ("200 OK", body),
                Err(reason) => ("502 Bad Gateway", format!("{reason}\n").into_bytes()),
            },
        },
        ("GET", p) if p.starts_with("/spew?") => match spew::parse(&p["/spew?".len()..], "mib") {
            Err(reason) => ("400 Bad Request", format!("{reason}\n").into_bytes()),
            Ok(mib) => {
                spew::spew(mib)?;
                ("200 OK", format!("spewed {mib} MiB\n").into_bytes())
            }
        },
        ("GET", p) if p.starts_with("/lines?") => match spew::parse(&p["/lines?".len()..], "n") {
            Err(reason) => ("400 Bad Request", format!("{reason}\n").into_bytes()),
            Ok(n) => {
                spew::lines(n)?;
                ("200 OK", format!("wrote {n} lines\n").into_bytes())
            }
        },
        ("GET", p) if p.starts_with("/fill?") => {
            let query = &p["/fill?".len()..];
            match spew::parse(query, "mib").and_then(|mib| Ok((mib, spew::fill_target(query)?))) {
                Err(reason) => ("400 Bad Request", format!("{reason}\n").into_bytes()),
                Ok((mib, to)) => ("200 OK", spew::fill(&to, mib).into_bytes()),
            }
        }
        // A valid /bytes query was answered above; this is the reason an invalid one is not.
        ("GET", p) if p.starts_with("/bytes?") => {
            let reason = load::parse_bytes_query(&p["/bytes?".len()..]).err();
            let reason = reason.unwrap_or_default();
            ("400 Bad Request", format!("{reason}\n").into_bytes())
        }
        ("GET", p) if p.starts_with("/load?") => match load::parse_load_query(&p["/load?".len()..])
        {
            Err(reason) => ("400 Bad Request", format!("{reason}\n").into_bytes()),
            Ok(l) => match load::run(&l) {
                Ok(outcome) => ("200 OK", format!("{outcome}\n").into_bytes()),
                Err(reason) => ("502 Bad Gateway", format!("{reason}\n").into_bytes()),
            },
        },
        ("GET", "/headers") => ("200 OK", request.headers_text().into_bytes()),
        ("GET", p) if p.starts_with("/slow?") => match timed::parse_slow(&p["/slow?".len()..]) {
            Err(reason) => ("400 Bad Request", format!("{reason}\n").into_bytes()),
            Ok(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                ("200 OK", format!("slept {ms} ms\n").into_bytes())
            }
        },
        // A valid /sse query was answered above; this is the reason an invalid one is not.
        ("GET", p) if p.starts_with("/sse?") => {
            let reason = timed::parse_sse(&p["/sse?".len()..]).err();
            (
                "400 Bad Request",
                format!("{}\n", reason.unwrap_or_default()).into_bytes(),
            )
        }
        _ => ("404 Not Found", b"not found\n".to_vec()),
    };
    println!("hello: {method} {path} -> {status}");
    request::answer(&mut stream, status, &body)
}
