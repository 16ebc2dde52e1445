//! `/etc/resolv.conf`: name servers from DHCP leases plus the configured ones.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// musl (like glibc) uses at most three name servers.
const MAX_NAMESERVERS: usize = 3;

/// Errors writing resolv.conf.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file or its temporary sibling could not be written or renamed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The file's text: configured servers first (the user chose them), then DHCP ones, without
/// duplicates, at most three; a `search` line when any domains are known.
pub fn render(configured: &[Ipv4Addr], leased: &[Ipv4Addr], search: &[String]) -> String {
    let mut servers: Vec<Ipv4Addr> = Vec::new();
    for s in configured.iter().chain(leased) {
        if !servers.contains(s) && !s.is_unspecified() {
            servers.push(*s);
        }
    }
    let mut out = String::from("# written by baton's init\n");
    let mut domains: Vec<&str> = Vec::new();
    for d in search {
        if !d.is_empty() && !domains.contains(&d.as_str()) {
            domains.push(d);
        }
    }
    if !domains.is_empty() {
        out.push_str(&format!("search {}\n", domains.join(" ")));
    }
    for s in servers.iter().take(MAX_NAMESERVERS) {
        out.push_str(&format!("nameserver {s}\n"));
    }
    out
}

/// Replaces `path` with `text` atomically (write a sibling, then rename), creating the
/// directory if needed.
pub fn write(path: &Path, text: &str) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("baton-tmp");
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_first_deduplicated_and_capped() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(1, 1, 1, 1);
        let c = Ipv4Addr::new(9, 9, 9, 9);
        let d = Ipv4Addr::new(8, 8, 8, 8);
        let text = render(&[b], &[a, b, c, d], &["lan".to_string(), "lan".to_string()]);
        assert_eq!(
            text,
            "# written by baton's init\nsearch lan\nnameserver 1.1.1.1\nnameserver 10.0.0.1\nnameserver 9.9.9.9\n"
        );
    }

    #[test]
    fn write_creates_directory_and_replaces() {
        let dir = std::env::temp_dir().join(format!("baton-net-resolv-{}", std::process::id()));
        let path = dir.join("etc/resolv.conf");
        write(&path, "one\n").expect("first write");
        write(&path, "two\n").expect("second write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
