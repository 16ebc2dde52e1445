//! Hostile output on stdout, to test that the board bounds what it reads from a container:
//! `GET /spew?mib=N` writes N MiB with no newline (with a byte that is not UTF-8 in every KiB),
//! `GET /lines?n=N` writes N short lines as fast as it can.

use std::io::Write;

/// The most either query may ask for.
const MOST: u64 = 4096;

/// `mib=N` or `n=N` (1..=4096) from a query.
pub fn parse(query: &str, key: &str) -> Result<u64, String> {
    let value = query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .ok_or_else(|| format!("missing {key}="))?;
    match value.parse::<u64>() {
        Ok(n) if (1..=MOST * 1024).contains(&n) && (key != "mib" || n <= MOST) => Ok(n),
        _ => Err(format!(
            "{key} must be a number from 1 to {MOST} (MiB) or {} (lines)",
            MOST * 1024
        )),
    }
}

/// Writes `mib` MiB to stdout without a newline, then one newline.
pub fn spew(mib: u64) -> std::io::Result<()> {
    let mut kib = [b'x'; 1024];
    kib[512] = 0xff;
    let mut out = std::io::stdout().lock();
    for _ in 0..mib * 1024 {
        out.write_all(&kib)?;
    }
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes `n` short lines to stdout.
pub fn lines(n: u64) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for i in 0..n {
        writeln!(out, "hello: line {i}")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_bounded() {
        assert_eq!(parse("mib=3", "mib"), Ok(3));
        assert_eq!(parse("x=1&n=50", "n"), Ok(50));
        assert!(parse("mib=0", "mib").is_err());
        assert!(parse("mib=5000", "mib").is_err());
        assert!(parse("n=abc", "n").is_err());
        assert!(parse("", "n").is_err());
    }
}
