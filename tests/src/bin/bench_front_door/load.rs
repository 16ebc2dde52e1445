//! The load: wrk runs (bounded in time, pinned to the client CPU) and their figures, and the
//! idle keep-alive connections of the memory measure.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::configs::CLIENT_CPU;

/// What one wrk run measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Figures {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Socket errors plus non-2xx answers.
    pub errors: u64,
}

/// `wrk -t1 -c{connections} -d{seconds}s --latency url`, pinned to the client CPU, killed if
/// it runs 30 s beyond its time.
pub fn wrk(
    url: &str,
    connections: u32,
    seconds: u32,
    close: bool,
    bearer: Option<&str>,
) -> Result<Figures, String> {
    let limit = (seconds + 30).to_string();
    let mut command = Command::new("timeout");
    command.args(["--kill-after=5", &limit, "taskset", "-c"]);
    command.arg(CLIENT_CPU.to_string());
    command.args(["wrk", "-t1", "--latency", "--timeout", "5s"]);
    command.arg(format!("-c{connections}"));
    command.arg(format!("-d{seconds}s"));
    match bearer {
        None => command.args(["-H", "Host: bench.lan"]),
        Some(token) => command
            .args(["-H", &format!("Host: {}", crate::token::HOST)])
            .args(["-H", &format!("Authorization: Bearer {token}")]),
    };
    if close {
        command.args(["-H", "Connection: close"]);
    }
    command.arg(url);
    let out = command.output().map_err(|e| format!("wrk {url}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "wrk {url} -c{connections}: {} {text} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse(&text).ok_or_else(|| format!("wrk {url}: output not understood:\n{text}"))
}

/// The figures in wrk's text output.
fn parse(text: &str) -> Option<Figures> {
    let mut figures = Figures::default();
    let mut seen_rps = false;
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("50%") => figures.p50_us = micros(words.next()?)?,
            Some("99%") => figures.p99_us = micros(words.next()?)?,
            Some("Requests/sec:") => {
                figures.rps = words.next()?.parse().ok()?;
                seen_rps = true;
            }
            _ => {}
        }
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            figures.errors += rest
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
        if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            figures.errors += rest.trim().parse::<u64>().ok()?;
        }
    }
    seen_rps.then_some(figures)
}

/// A wrk duration (`812.00us`, `1.25ms`, `2.00s`, `1.00m`) in microseconds.
fn micros(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().ok()?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(n * scale)
}

/// Opens `count` connections to `port`, each carrying one complete request and answer and
/// then left idle (keep-alive) until dropped.
pub fn idle_connections(port: u16, count: usize) -> Result<Vec<TcpStream>, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut open = Vec::with_capacity(count);
    for i in 0..count {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("connection {i} to {addr}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| format!("connection {i}: {e}"))?;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: bench.lan\r\n\r\n")
            .map_err(|e| format!("connection {i}: {e}"))?;
        read_answer(&mut stream).map_err(|e| format!("connection {i} to {addr}: {e}"))?;
        open.push(stream);
    }
    Ok(open)
}

/// Reads one answer with a `Content-Length` body (what the upstream sends), bounded.
fn read_answer(stream: &mut TcpStream) -> Result<(), String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                return Err(format!("answer {:?}", head.lines().next()));
            }
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or("answer without content-length")?;
            if got.len() >= end + 4 + length {
                return Ok(());
            }
        }
        if got.len() > 64 * 1024 {
            return Err("answer longer than 64 KiB".into());
        }
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the answer ended".into());
        }
        got.extend_from_slice(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let text = "Running 10s test @ http://127.0.0.1:1/\n  1 threads and 16 connections\n\
            \x20 Latency Distribution\n     50%  812.00us\n     75%    1.00ms\n     90%    1.10ms\n     99%    2.50ms\n\
            \x20 1000 requests in 10.00s, 1.00MB read\n  Socket errors: connect 1, read 2, write 0, timeout 3\n\
            \x20 Non-2xx or 3xx responses: 4\nRequests/sec:  12345.67\nTransfer/sec:      1.00MB\n";
        let f = parse(text).expect("figures");
        assert_eq!(f.rps, 12345.67);
        assert_eq!(f.p50_us, 812.0);
        assert_eq!(f.p99_us, 2500.0);
        assert_eq!(f.errors, 10);
        assert!(parse("nothing").is_none());
    }
}
