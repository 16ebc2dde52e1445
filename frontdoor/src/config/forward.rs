//! `route.forward` as the front door receives it: the auth service asked before a request of
//! an `auth = "forward"` route goes on (docs/design/front-door.md, section 5.6). The spec
//! validated it; the bounds are checked again here because a snapshot is input like any other.

use serde::{Deserialize, Serialize};

/// Bytes of the auth service's URL.
pub const MAX_URL: usize = 2048;
/// Names in `copy_headers`.
pub const MAX_COPY_HEADERS: usize = 32;
/// Bytes of one header name.
pub const MAX_HEADER_NAME: usize = 64;

/// The auth service of a route and what its yes carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardAuth {
    /// `http://host[:port]/path`; a host that is a service of the snapshot means that
    /// service's ready instances.
    pub url: String,
    /// Headers of a 2xx answer copied into the request passed on (a client's own copies of
    /// these names are removed first).
    pub copy_headers: Vec<String>,
    /// The header of a 2xx answer naming the user (becomes `X-Forwarded-User`).
    pub user_header: String,
    /// The header of a 2xx answer carrying the user's email (becomes `X-Forwarded-Email`).
    pub email_header: String,
}

impl ForwardAuth {
    /// Whether the lists and texts are within their bounds and the names are header names.
    pub fn check(&self) -> Result<(), String> {
        if self.url.is_empty() || self.url.len() > MAX_URL {
            return Err(format!(
                "forward.url is empty or longer than {MAX_URL} bytes"
            ));
        }
        if self.copy_headers.len() > MAX_COPY_HEADERS {
            return Err(format!(
                "forward.copy_headers lists {} names, at most {MAX_COPY_HEADERS}",
                self.copy_headers.len()
            ));
        }
        let names = self
            .copy_headers
            .iter()
            .chain([&self.user_header, &self.email_header]);
        for name in names {
            if !is_header_name(name) {
                return Err(format!(
                    "forward: {name:?} is not a header name of 1 to {MAX_HEADER_NAME} letters, \
                     digits and '-'"
                ));
            }
        }
        Ok(())
    }
}

/// Letters, digits and `-`, as the spec accepts header names.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HEADER_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward() -> ForwardAuth {
        ForwardAuth {
            url: "http://auth:9091/api/verify".into(),
            copy_headers: vec!["Remote-Groups".into()],
            user_header: "Remote-User".into(),
            email_header: "Remote-Email".into(),
        }
    }

    #[test]
    fn in_bounds_passes() {
        assert_eq!(forward().check(), Ok(()));
    }

    #[test]
    fn bad_names_and_long_lists_are_refused() {
        let mut f = forward();
        f.copy_headers.push("Bad Name".into());
        assert!(f.check().unwrap_err().contains("Bad Name"));
        let mut f = forward();
        f.user_header = String::new();
        assert!(f.check().is_err());
        let mut f = forward();
        f.copy_headers = vec!["X-A".into(); MAX_COPY_HEADERS + 1];
        assert!(f.check().unwrap_err().contains("copy_headers"));
        let mut f = forward();
        f.url = format!("http://a/{}", "x".repeat(MAX_URL));
        assert!(f.check().unwrap_err().contains("url"));
    }
}
