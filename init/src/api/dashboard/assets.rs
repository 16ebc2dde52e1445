//! The dashboard's files, embedded in the binary (no CDN, works offline): plain HTML, CSS and
//! JavaScript written for it, with no framework and no build step. Each has a strong ETag,
//! computed at compile time from its bytes, so a browser revalidates with one small request.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The path it is served at.
    pub path: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
    /// Its media type.
    pub content_type: &'static str,
    /// 64-bit FNV-1a of its bytes (the ETag; a cache key, not a secret).
    pub hash: u64,
}

impl Asset {
    const fn new(path: &'static str, body: &'static [u8], content_type: &'static str) -> Asset {
        Asset {
            path,
            body,
            content_type,
            hash: fnv1a(body),
        }
    }

    /// Its strong ETag, quoted.
    pub fn etag(&self) -> String {
        format!("\"{:016x}\"", self.hash)
    }
}

/// Every file of the dashboard.
pub const ASSETS: &[Asset] = &[
    Asset::new(
        "/",
        include_bytes!("assets/index.html"),
        "text/html; charset=utf-8",
    ),
    Asset::new(
        "/dash/app.css",
        include_bytes!("assets/app.css"),
        "text/css; charset=utf-8",
    ),
    Asset::new(
        "/dash/app.js",
        include_bytes!("assets/app.js"),
        "text/javascript; charset=utf-8",
    ),
    Asset::new(
        "/dash/pages.js",
        include_bytes!("assets/pages.js"),
        "text/javascript; charset=utf-8",
    ),
    Asset::new(
        "/dash/graph.js",
        include_bytes!("assets/graph.js"),
        "text/javascript; charset=utf-8",
    ),
    Asset::new(
        "/dash/icon.svg",
        include_bytes!("assets/icon.svg"),
        "image/svg+xml",
    ),
];

/// The most the dashboard's files may weigh together in the binary.
pub const BUDGET: usize = 60 << 10;

/// The file served at `path`.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Whether an `If-None-Match` value names `etag` (weak comparison, RFC 9110 section 13.1.2).
pub fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}
