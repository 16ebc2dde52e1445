//! The front door against nginx and HAProxy (Debian's) as reverse proxies to the same upstream,
//! side by side in one run on this machine. Prints numbers; asserts nothing.
//!
//! ```sh
//! scripts/bench front-door     # or, with the host binary built in release first:
//! cargo run --release -p baton-tests --bin bench_front_door -- [--seconds N] [--front-door PATH] [PART...]
//! ```
//!
//! PARTs, in this order by default: `memory` (RSS after 1,000 idle keep-alive connections minus
//! the idle RSS), `plain` (HTTP keep-alive), `tls` (HTTPS keep-alive), `handshakes` (HTTPS with
//! `Connection: close`: one full handshake per request), `token` (HTTP keep-alive with an ES256
//! bearer token checked on every request: signature, `iss`, `aud`, `exp`; the front door and
//! HAProxy's `jwt_verify`, beside their own `plain` figures; nginx-light has no token check).
//! `qemu` (not run by default: root, and the board built by `scripts/build-init` and
//! `scripts/build-example`) boots two boards and measures a board's front door to an instance on
//! the same board and on another one, beside that instance's `publish` port.
//!
//! Pinning on two cores: each proxy runs with one worker on CPU 1, alone; the upstream (nginx
//! `return 200`, one worker) and the client (wrk `-t1`, or the memory client) share CPU 0. So
//! a proxy that needs less CPU per request leaves more to the client side, and the figures
//! are the proxy's only while CPU 1 is what saturates. Needs `nginx`, `haproxy`, `wrk` and
//! `taskset` (scripts/setup installs them); everything listens on 127.0.0.1 only.

// The crate root of a binary looks for modules beside it; these live in a folder of their own.
#[path = "bench_front_door/configs.rs"]
mod configs;
#[path = "bench_front_door/load.rs"]
mod load;
#[path = "bench_front_door/procs.rs"]
mod procs;
#[path = "bench_front_door/qemu.rs"]
mod qemu;
#[path = "bench_front_door/token.rs"]
mod token;

use std::path::PathBuf;
use std::process::Command;

use configs::PROXIES;
use load::Figures;
use procs::{Certs, Ports, Proc};
use token::Token;

/// wrk's connection counts.
const CONNECTIONS: [u32; 4] = [1, 16, 64, 256];
/// Idle connections of the memory measure.
const IDLE: usize = 1000;
const PARTS: [&str; 5] = ["memory", "plain", "tls", "handshakes", "token"];

struct Args {
    seconds: u32,
    front_door: PathBuf,
    parts: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let here = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let mut args = Args {
        seconds: 10,
        front_door: here.with_file_name("baton-front-door"),
        parts: Vec::new(),
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--seconds" => {
                let text = given.next().ok_or("--seconds needs a value")?;
                args.seconds = text
                    .parse()
                    .ok()
                    .filter(|n| (1..=600).contains(n))
                    .ok_or(format!("--seconds {text}: not 1 to 600"))?;
            }
            "--front-door" => {
                args.front_door = given.next().ok_or("--front-door needs a path")?.into();
            }
            part if PARTS.contains(&part) || part == "qemu" => args.parts.push(part.to_string()),
            other => return Err(format!("unknown argument {other:?} (parts: {PARTS:?})")),
        }
    }
    if args.parts.is_empty() {
        args.parts = PARTS.iter().map(|p| p.to_string()).collect();
    }
    if !args.front_door.is_file() {
        return Err(format!(
            "{}: not built (cargo build --release -p baton-frontdoor --bin baton-front-door)",
            args.front_door.display()
        ));
    }
    Ok(args)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_front_door: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let host_parts = args.parts.iter().any(|p| p != "qemu");
    if host_parts {
        on_host(&args)?;
    }
    if args.parts.iter().any(|p| p == "qemu") {
        qemu::run(args.seconds)?;
    }
    Ok(())
}

/// The parts on this host: the three proxies on loopback.
fn on_host(args: &Args) -> Result<(), String> {
    // Declared first so it is removed last, after every process writing into it has stopped.
    let dir = tempfile::Builder::new()
        .prefix("baton-bench-front-door-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let certs = Certs::make(dir.path())?;
    let token = Token::make(dir.path())?;
    let ports = Ports::pick()?;
    let _upstream = configs::upstream(dir.path(), ports.upstream)?;
    let proxies: [Proc; 3] = [
        configs::front_door(dir.path(), &args.front_door, ports, &certs, &token)?,
        configs::nginx(dir.path(), ports, &certs)?,
        configs::haproxy(dir.path(), ports, &certs, &token)?,
    ];
    println!(
        "== front door: baton-front-door --workers 1 vs {} vs {}",
        version("nginx", &["-v"]),
        version("haproxy", &["-v"])
    );
    println!("   each proxy one worker on CPU 1; upstream (nginx return 200, 1 worker) and wrk -t1 on CPU 0; 127.0.0.1 only");
    println!("   wrk -t1 -c{{1,16,64,256}} -d{}s --latency; P-256 certificate from one test CA; TLS 1.3 as negotiated with wrk's OpenSSL", args.seconds);
    println!(
        "   the machine is shared with other work: figures are noisy, compare within one run only"
    );
    for part in &args.parts {
        match part.as_str() {
            "memory" => memory(&proxies, ports)?,
            "plain" => throughput("plain", "http", &proxies, ports, args.seconds, false),
            "tls" => throughput("tls", "https", &proxies, ports, args.seconds, false),
            "handshakes" => throughput("handshakes", "https", &proxies, ports, args.seconds, true),
            "token" => token_check(&proxies, ports, args.seconds, &token.jwt),
            _ => {}
        }
    }
    Ok(())
}

/// The first line a program prints about its version (nginx prints on stderr).
fn version(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
            text.lines().next().unwrap_or(program).trim().to_string()
        }
        Err(_) => program.to_string(),
    }
}

/// RSS of each proxy idle, then with [`IDLE`] keep-alive connections open after one request
/// each; before any load, so earlier runs leave nothing in the allocators.
fn memory(proxies: &[Proc; 3], ports: Ports) -> Result<(), String> {
    println!();
    println!("memory: RSS (process and children) idle, then with {IDLE} idle keep-alive HTTP connections (one request each)");
    println!(
        "{:<12} {:>10} {:>16} {:>14}",
        "proxy", "idle KiB", "+1000 conns KiB", "KiB per conn"
    );
    for (index, proxy) in proxies.iter().enumerate() {
        // One request first, so the upstream pool and lazy setup are not counted per connection.
        drop(load::idle_connections(ports.http(index as u16), 1)?);
        let idle = proxy.rss_kib();
        let open = load::idle_connections(ports.http(index as u16), IDLE)?;
        let loaded = proxy.rss_kib();
        drop(open);
        let delta = loaded.saturating_sub(idle);
        println!(
            "{:<12} {:>10} {:>16} {:>14.1}",
            proxy.name,
            idle,
            delta,
            delta as f64 / IDLE as f64
        );
    }
    Ok(())
}

/// One wrk run per proxy and connection count, and the ratios to nginx in the same run.
fn throughput(
    mode: &str,
    scheme: &str,
    proxies: &[Proc; 3],
    ports: Ports,
    seconds: u32,
    close: bool,
) {
    println!();
    let what = match mode {
        "plain" => "HTTP/1.1 keep-alive",
        "tls" => "HTTPS (HTTP/1.1) keep-alive",
        _ => "HTTPS with Connection: close, a full handshake per request",
    };
    println!("{mode}: {what}");
    println!(
        "{:<12} {:>5} {:>10} {:>10} {:>10} {:>7} {:>12} {:>10}",
        "proxy", "conns", "req/s", "p50", "p99", "errors", "req/s/nginx", "p99/nginx"
    );
    for connections in CONNECTIONS {
        let mut row: Vec<Result<Figures, String>> = Vec::new();
        for index in 0..PROXIES.len() as u16 {
            let port = if scheme == "http" {
                ports.http(index)
            } else {
                ports.https(index)
            };
            let url = format!("{scheme}://127.0.0.1:{port}/");
            row.push(load::wrk(&url, connections, seconds, close, None));
        }
        let nginx = row[1].as_ref().ok().copied();
        for (proxy, figures) in proxies.iter().zip(&row) {
            match figures {
                Ok(f) => {
                    let (rps, p99) = match nginx {
                        Some(n) if n.rps > 0.0 && n.p99_us > 0.0 => (
                            format!("{:.2}", f.rps / n.rps),
                            format!("{:.2}", f.p99_us / n.p99_us),
                        ),
                        _ => ("-".into(), "-".into()),
                    };
                    println!(
                        "{:<12} {:>5} {:>10.0} {:>10} {:>10} {:>7} {:>12} {:>10}",
                        proxy.name,
                        connections,
                        f.rps,
                        duration(f.p50_us),
                        duration(f.p99_us),
                        f.errors,
                        rps,
                        p99
                    );
                }
                Err(e) => println!("{:<12} {:>5} failed: {e}", proxy.name, connections),
            }
        }
    }
}

/// The token part: the front door and HAProxy checking a bearer token on every request,
/// each beside its own figure without the check in the same run, and the front door's ratio
/// to HAProxy.
fn token_check(proxies: &[Proc; 3], ports: Ports, seconds: u32, jwt: &str) {
    println!();
    println!("token: HTTP/1.1 keep-alive, an ES256 bearer token checked on every request (signature, iss, aud, exp)");
    println!(
        "       nginx-light has no token check (nginx's auth_jwt is NGINX Plus only): not measured"
    );
    println!(
        "{:<12} {:>5} {:>10} {:>10} {:>10} {:>7} {:>14} {:>13}",
        "proxy", "conns", "req/s", "p50", "p99", "errors", "/own no-check", "req/s/haproxy"
    );
    for connections in CONNECTIONS {
        // Index 0 is the front door, 2 HAProxy; each with and without the token.
        let mut row = Vec::new();
        for index in [0u16, 2] {
            let url = format!("http://127.0.0.1:{}/", ports.http(index));
            let checked = load::wrk(&url, connections, seconds, false, Some(jwt));
            let open = load::wrk(&url, connections, seconds, false, None);
            row.push((index, checked, open));
        }
        let haproxy = row[1].1.as_ref().ok().map(|f| f.rps);
        for (index, checked, open) in &row {
            let name = proxies[*index as usize].name;
            match checked {
                Ok(f) => {
                    let own = match open {
                        Ok(o) if o.rps > 0.0 => format!("{:.2}", f.rps / o.rps),
                        _ => "-".into(),
                    };
                    let to_haproxy = match haproxy {
                        Some(h) if h > 0.0 => format!("{:.2}", f.rps / h),
                        _ => "-".into(),
                    };
                    println!(
                        "{:<12} {:>5} {:>10.0} {:>10} {:>10} {:>7} {:>14} {:>13}",
                        name,
                        connections,
                        f.rps,
                        duration(f.p50_us),
                        duration(f.p99_us),
                        f.errors,
                        own,
                        to_haproxy
                    );
                }
                Err(e) => println!("{name:<12} {connections:>5} failed: {e}"),
            }
        }
    }
}

fn duration(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.0}us")
    }
}
