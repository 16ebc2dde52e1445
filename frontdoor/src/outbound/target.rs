//! Where an outbound request goes: an `https://` URL read into host, port and request target,
//! with no user information and within [`MAX_URL`] bytes. Plain `http://` is refused: the
//! identity provider's keys and tokens must come over a verified channel, and the spec already
//! requires `https://` for the issuer and `jwks_url`.

use http::uri::{PathAndQuery, Uri};

use crate::control::protocol::MAX_URL;

/// A checked `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host as written, without the brackets of an IPv6 literal.
    pub host: String,
    /// The port (443 when the URL names none).
    pub port: u16,
    /// The path and query, origin form (`/` when the URL has no path).
    pub path_and_query: String,
    /// The `Host` header: the authority as written.
    pub authority: String,
}

impl Target {
    /// Reads `url`; the error says what is wrong with it.
    pub fn parse(url: &str) -> Result<Target, String> {
        if url.len() > MAX_URL {
            return Err(format!("the URL is longer than {MAX_URL} bytes"));
        }
        let uri: Uri = url.parse().map_err(|e| format!("not a URL ({e})"))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some(other) => return Err(format!("scheme {other:?}: only https is fetched")),
            None => return Err("no scheme: only https:// URLs are fetched".into()),
        }
        let authority = uri.authority().ok_or("no host")?;
        if authority.as_str().contains('@') {
            return Err("user information in the URL is refused".into());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err("no host".into());
        }
        let path_and_query = uri
            .path_and_query()
            .map_or("/", PathAndQuery::as_str)
            .to_string();
        let path_and_query = if path_and_query.starts_with('/') {
            path_and_query
        } else {
            format!("/{path_and_query}")
        };
        Ok(Target {
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(443),
            path_and_query,
            authority: authority.as_str().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn https_urls_are_read_into_their_parts() {
        let t = Target::parse("https://idp.lan/jwks?x=1").expect("parse");
        assert_eq!(t.host, "idp.lan");
        assert_eq!(t.port, 443);
        assert_eq!(t.path_and_query, "/jwks?x=1");
        assert_eq!(t.authority, "idp.lan");
        let t = Target::parse("https://[::1]:8443").expect("parse");
        assert_eq!((t.host.as_str(), t.port), ("::1", 8443));
        assert_eq!(t.path_and_query, "/");
    }

    #[test]
    fn other_schemes_user_information_and_long_urls_are_refused() {
        for (url, why) in [
            ("http://idp.lan/jwks", "only https"),
            ("ftp://idp.lan/jwks", "only https"),
            ("/jwks", "no scheme"),
            ("https://user:pw@idp.lan/jwks", "user information"),
            ("not a url", "not a URL"),
        ] {
            let err = Target::parse(url).expect_err(url);
            assert!(err.contains(why), "{url}: {err}");
        }
        let long = format!("https://idp.lan/{}", "a".repeat(5000));
        assert!(Target::parse(&long).expect_err("long").contains("longer"));
    }
}
