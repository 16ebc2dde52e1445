//! Hostile output on stdout, to test that the board bounds what it reads from a container:
//! `GET /spew?mib=N` writes N MiB with no newline (with a byte that is not UTF-8 in every KiB),
//! `GET /lines?n=N` writes N short lines as fast as it can, and `GET /fill?mib=N[&to=PATH]`
//! writes N MiB into a file (`/fill.bin` in the writable layer by default), to test the limits
//! on what a service may write to the board's disk.

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

/// The file `/fill` writes: `to=` (an absolute path) or `/fill.bin`.
pub fn fill_target(query: &str) -> Result<String, String> {
    match query.split('&').find_map(|kv| kv.strip_prefix("to=")) {
        None => Ok("/fill.bin".to_string()),
        Some(p) if p.starts_with('/') && !p.contains("..") => Ok(p.to_string()),
        Some(p) => Err(format!("to={p} must be an absolute path without ..")),
    }
}

/// Writes `mib` MiB of zeros (synced) to `path` and says how much went in, and why it
/// stopped if it stopped early: `wrote 8388608 bytes; then: Disk quota exceeded (os error 122)`.
pub fn fill(path: &str, mib: u64) -> String {
    let mut written = 0u64;
    let outcome = (|| {
        let mut file = std::fs::File::create(path)?;
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..mib {
            file.write_all(&chunk)?;
            written += 1 << 20;
        }
        file.sync_all()
    })();
    match outcome {
        Ok(()) => format!("wrote {written} bytes\n"),
        Err(e) => format!("wrote {written} bytes; then: {e}\n"),
    }
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
        assert_eq!(fill_target("mib=1"), Ok("/fill.bin".to_string()));
        assert_eq!(fill_target("mib=1&to=/v/x"), Ok("/v/x".to_string()));
        assert!(fill_target("to=../x").is_err());
    }

    #[test]
    fn fill_says_what_it_wrote() {
        let dir = std::env::temp_dir().join(format!("hello-fill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("f");
        assert_eq!(
            fill(path.to_str().expect("utf-8"), 2),
            "wrote 2097152 bytes\n"
        );
        assert_eq!(std::fs::metadata(&path).expect("file").len(), 2 << 20);
        let missing = dir.join("no/such/f");
        assert!(fill(missing.to_str().expect("utf-8"), 1).starts_with("wrote 0 bytes; then: "));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
