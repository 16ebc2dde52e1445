//! Answers that take time, for testing what sits in front of the service (timeouts, streaming):
//!
//! - `GET /slow?ms=N` sleeps N ms (at most 60000) and answers `slept N ms`;
//! - `GET /sse?n=N&ms=M` sends N server-sent events (`data: event K`, K from 0; at most 1000,
//!   default 5) M ms apart (at most 10000, default 100), each written as soon as it is due,
//!   then closes. The answer is HTTP/1.1 with `Connection: close` and no Content-Length: its
//!   end is the end of the connection (no chunked encoding, so a raw client sees the events
//!   byte for byte as sent).

use std::io::Write;
use std::time::Duration;

pub const MAX_SLOW_MS: u64 = 60_000;
pub const MAX_EVENTS: u64 = 1000;
pub const MAX_EVENT_GAP_MS: u64 = 10_000;

/// The value of `key=` in `query`: `None` if absent, an error if not a number in 0..=`most`.
fn number(query: &str, key: &str, most: u64) -> Result<Option<u64>, String> {
    let Some(value) = query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    else {
        return Ok(None);
    };
    match value.parse::<u64>() {
        Ok(n) if n <= most => Ok(Some(n)),
        _ => Err(format!("{key} must be a number from 0 to {most}")),
    }
}

/// `ms=N` of `/slow` (required).
pub fn parse_slow(query: &str) -> Result<u64, String> {
    number(query, "ms", MAX_SLOW_MS)?.ok_or_else(|| "missing ms=".to_string())
}

/// `(n, ms)` of `/sse`, with their defaults.
pub fn parse_sse(query: &str) -> Result<(u64, u64), String> {
    Ok((
        number(query, "n", MAX_EVENTS)?.unwrap_or(5),
        number(query, "ms", MAX_EVENT_GAP_MS)?.unwrap_or(100),
    ))
}

/// Writes the head and `n` events `ms` apart, each flushed on its own.
pub fn send_events(out: &mut impl Write, n: u64, ms: u64) -> std::io::Result<()> {
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
    )?;
    out.flush()?;
    for k in 0..n {
        if k > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
        out.write_all(format!("data: event {k}\n\n").as_bytes())?;
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_server;
    use std::io::Read;

    #[test]
    fn queries_are_bounded_with_defaults() {
        assert_eq!(parse_slow("ms=250"), Ok(250));
        assert_eq!(parse_slow("ms=60000"), Ok(60_000));
        assert!(parse_slow("ms=60001").is_err());
        assert!(parse_slow("ms=-1").is_err());
        assert!(parse_slow("").is_err());
        assert_eq!(parse_sse(""), Ok((5, 100)));
        assert_eq!(parse_sse("ms=7&n=3"), Ok((3, 7)));
        assert!(parse_sse("n=1001").is_err());
        assert!(parse_sse("ms=10001").is_err());
    }

    #[test]
    fn slow_answers_after_sleeping() {
        let port = test_server::start();
        let (code, body) = test_server::get(port, "/slow?ms=20", "");
        assert_eq!((code, body.as_str()), (200, "slept 20 ms\n"));
        let (code, _) = test_server::get(port, "/slow?ms=99999", "");
        assert_eq!(code, 400);
    }

    /// The first event arrives while the server still waits to send the second (500 ms
    /// later): it was flushed on its own, not held back until the end.
    #[test]
    fn events_arrive_one_at_a_time() {
        let port = test_server::start();
        let mut s = test_server::connect(port);
        write!(s, "GET /sse?n=2&ms=500 HTTP/1.1\r\nHost: t\r\n\r\n").expect("request");
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let first = b"data: event 0\n\n";
        while !seen.windows(first.len()).any(|w| w == first) {
            let n = s.read(&mut buf).expect("reading the first event");
            assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&seen).into_owned();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text:?}");
        assert!(
            text.contains("Content-Type: text/event-stream\r\n"),
            "{text:?}"
        );
        assert!(!text.contains("Content-Length"), "{text:?}");
        assert!(text.ends_with("\r\n\r\ndata: event 0\n\n"), "{text:?}");
        let mut rest = String::new();
        s.read_to_string(&mut rest).expect("reading the rest");
        assert_eq!(rest, "data: event 1\n\n");
    }
}
