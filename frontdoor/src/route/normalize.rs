//! The request's host and path in one canonical spelling, or a reason to answer 400.
//!
//! Everything here comes from the client and is hostile: every input is bounded, every byte
//! outside the small alphabet a host or a path needs is refused rather than passed on, and a
//! spelling that some upstream could read as another path than the one matched (`%2F`, `\`,
//! `..;`) is refused rather than guessed at.

use std::borrow::Cow;

/// Bytes of a `Host` or `:authority` value.
pub const MAX_HOST: usize = 255;
/// Bytes of a request path.
pub const MAX_PATH: usize = 8 * 1024;

/// A request path made canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normal {
    /// What goes upstream: escapes of unreserved characters decoded, other escapes in upper
    /// case, repeated `/` merged, dot-segments removed, segment parameters (`;x=1`) kept.
    pub path: String,
    /// What the route table matches: each segment of `path` with its escapes of visible ASCII
    /// decoded and its `;` parameters cut off, empty segments left out (`/a;x/%41b/` is `/a/Ab`).
    /// Route prefixes are written decoded and without `;`, so a server that decodes or drops
    /// parameters cannot be reached under another route than the one matched.
    pub match_path: String,
}

/// Why a host or a path was refused (the text is meant for a 400 page).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Bad {
    /// The host is empty.
    #[error("the host is empty")]
    HostEmpty,
    /// The host is longer than [`MAX_HOST`].
    #[error("the host is {0} bytes long, at most {MAX_HOST} are allowed")]
    HostTooLong(usize),
    /// The host carries `user@`.
    #[error("the host must not carry user information ('@')")]
    HostUserinfo,
    /// A byte a host name cannot hold.
    #[error(
        "the host has byte 0x{byte:02x} at offset {at}: a host is letters, digits, '-' and '.'"
    )]
    HostByte {
        /// Offset in the value.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// `a..b`, `.a`: a label is empty.
    #[error("the host has an empty label")]
    HostEmptyLabel,
    /// A bracketed IPv6 literal that is not one.
    #[error("the host's IPv6 literal is malformed (hex digits, ':' and '.' inside '[' and ']')")]
    HostIpv6,
    /// The port after `:` is not a number up to 65535.
    #[error("the host's port is not a number from 0 to 65535")]
    HostPort,
    /// The path is longer than [`MAX_PATH`].
    #[error("the path is {0} bytes long, at most {MAX_PATH} are allowed")]
    PathTooLong(usize),
    /// The path does not start with `/` (`*`, an empty or relative target).
    #[error("the path does not start with '/'")]
    PathNotAbsolute,
    /// A control byte, a space or a non-ASCII byte.
    #[error("the path has byte 0x{byte:02x} at offset {at}, not visible ASCII (encode it)")]
    PathByte {
        /// Offset in the path.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// A literal `\`, which some servers take for `/`.
    #[error("the path has a '\\' at offset {0}")]
    PathBackslash(usize),
    /// `?` or `#` in what should be the path alone.
    #[error("the path has a '?' or '#' at offset {0}: the query is split off before, a fragment is never sent")]
    PathQuery(usize),
    /// `%` not followed by two hex digits.
    #[error(
        "the path has a malformed escape at offset {0}: '%' must be followed by two hex digits"
    )]
    PathEscape(usize),
    /// `%2F`, `%5C` or `%00`: an encoded `/`, `\` or NUL, which servers disagree on.
    #[error("the path has an encoded {what} ({escape}) at offset {at}, which is refused")]
    PathEncoded {
        /// Offset in the path.
        at: usize,
        /// The escape as sent.
        escape: String,
        /// What it encodes.
        what: &'static str,
    },
    /// A `..` that would climb above `/`.
    #[error("the path climbs above the root with '..'")]
    PathAboveRoot,
    /// `..;x` or `.;x`: a dot-segment behind parameters, which servers that drop parameters
    /// would apply after the route was chosen.
    #[error("the path has a segment {0:?}: '.' or '..' with parameters is refused")]
    PathDotParams(String),
}

/// The host of a request from its `:authority` or `Host` value: port and one final dot
/// removed, lowercased. A bracketed IPv6 literal is kept with its brackets (lowercased).
pub fn host(authority: &str) -> Result<String, Bad> {
    if authority.is_empty() {
        return Err(Bad::HostEmpty);
    }
    if authority.len() > MAX_HOST {
        return Err(Bad::HostTooLong(authority.len()));
    }
    if authority.contains('@') {
        return Err(Bad::HostUserinfo);
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or(Bad::HostIpv6)?;
        let inner = &rest[..end];
        let ok = inner.contains(':')
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !ok {
            return Err(Bad::HostIpv6);
        }
        match &rest[end + 1..] {
            "" => {}
            after => port(after.strip_prefix(':').ok_or(Bad::HostIpv6)?)?,
        }
        return Ok(format!("[{}]", inner.to_ascii_lowercase()));
    }
    let name = match authority.rsplit_once(':') {
        Some((name, digits)) => {
            port(digits)?;
            name
        }
        None => authority,
    };
    if let Some(at) = name
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        return Err(Bad::HostByte {
            at,
            byte: name.as_bytes()[at],
        });
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(Bad::HostEmpty);
    }
    if name.split('.').any(str::is_empty) {
        return Err(Bad::HostEmptyLabel);
    }
    Ok(name.to_ascii_lowercase())
}

/// Checks a port: digits (not none) up to 65535.
fn port(digits: &str) -> Result<(), Bad> {
    // At most 5 digits before parsing, so `u16` parsing sees no huge number; empty is refused.
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Bad::HostPort);
    }
    digits.parse::<u16>().map(drop).map_err(|_| Bad::HostPort)
}

/// The canonical form of a request path. `raw` is the path alone: the caller splits the query
/// off first (as `http::Uri::path` does) and passes it on untouched; a `?` or `#` here is
/// refused. See [`Normal`] for what comes out.
pub fn path(raw: &str) -> Result<Normal, Bad> {
    if raw.len() > MAX_PATH {
        return Err(Bad::PathTooLong(raw.len()));
    }
    if !raw.starts_with('/') {
        return Err(Bad::PathNotAbsolute);
    }
    let decoded = escapes(raw)?;
    // Dot-segments removed (RFC 3986 §5.2.4) on a stack of segments, empty ones dropped so that
    // `//admin` is `/admin`. `trailing`: the path ends in `/` (also after a final `.` or `..`).
    let mut stack: Vec<&str> = Vec::new();
    let mut trailing = false;
    for segment in decoded[1..].split('/') {
        match segment {
            "" | "." => trailing = true,
            ".." => {
                stack.pop().ok_or(Bad::PathAboveRoot)?;
                trailing = true;
            }
            _ => {
                stack.push(segment);
                trailing = false;
            }
        }
    }
    let mut path = String::with_capacity(decoded.len());
    let mut match_path = String::with_capacity(decoded.len());
    for segment in &stack {
        path.push('/');
        path.push_str(segment);
        let name = match_name(segment);
        if name == "." || name == ".." {
            return Err(Bad::PathDotParams((*segment).to_string()));
        }
        if !name.is_empty() {
            match_path.push('/');
            match_path.push_str(&name);
        }
    }
    if path.is_empty() || trailing {
        path.push('/');
    }
    if match_path.is_empty() {
        match_path.push('/');
    }
    Ok(Normal { path, match_path })
}

/// Checks every byte and rewrites escapes: those of unreserved characters decoded, the others
/// kept with upper-case hex.
fn escapes(raw: &str) -> Result<String, Bad> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        match byte {
            b'%' => {
                let value = hex_pair(bytes, at + 1).ok_or(Bad::PathEscape(at))?;
                let what = match value {
                    b'/' => Some("'/'"),
                    b'\\' => Some("'\\'"),
                    0 => Some("NUL"),
                    _ => None,
                };
                if let Some(what) = what {
                    return Err(Bad::PathEncoded {
                        at,
                        escape: raw[at..at + 3].to_string(),
                        what,
                    });
                }
                if is_unreserved(value) {
                    out.push(char::from(value));
                } else {
                    out.push('%');
                    out.push(char::from(HEX[usize::from(value >> 4)]));
                    out.push(char::from(HEX[usize::from(value & 0xf)]));
                }
                at += 3;
            }
            b'\\' => return Err(Bad::PathBackslash(at)),
            b'?' | b'#' => return Err(Bad::PathQuery(at)),
            b'!'..=b'~' => {
                out.push(char::from(byte));
                at += 1;
            }
            _ => return Err(Bad::PathByte { at, byte }),
        }
    }
    Ok(out)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The octet of the two hex digits at `at`, if there are two.
fn hex_pair(bytes: &[u8], at: usize) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    let hi = digit(*bytes.get(at)?)?;
    let lo = digit(*bytes.get(at + 1)?)?;
    u8::try_from(hi * 16 + lo).ok()
}

/// RFC 3986's unreserved characters: their escapes mean the same as the character.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The name a segment of a normalised path is matched by: escapes of visible ASCII decoded (a
/// route is written decoded; the upstream decodes them too), then cut at the first `;`. An
/// escape of anything else stays as it is: no route prefix holds `%`, so it matches nothing.
fn match_name(segment: &str) -> Cow<'_, str> {
    let name = if segment.contains('%') {
        let bytes = segment.as_bytes();
        let mut out = String::with_capacity(segment.len());
        let mut at = 0;
        while at < bytes.len() {
            match hex_pair(bytes, at + 1).filter(|v| bytes[at] == b'%' && v.is_ascii_graphic()) {
                Some(value) => {
                    out.push(char::from(value));
                    at += 3;
                }
                None => {
                    out.push(char::from(bytes[at]));
                    at += 1;
                }
            }
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(segment)
    };
    match name.find(';') {
        Some(end) => match name {
            Cow::Borrowed(s) => Cow::Borrowed(&s[..end]),
            Cow::Owned(mut s) => {
                s.truncate(end);
                Cow::Owned(s)
            }
        },
        None => name,
    }
}
