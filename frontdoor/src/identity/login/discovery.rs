//! The issuer's endpoints, read from its discovery document (OpenID Connect Discovery 1.0
//! section 3). The document is hostile input like any other: bounded, its `issuer` must be
//! the configured one (section 4.3), and the endpoints must be HTTPS URLs (or HTTP on a
//! loopback address, for tests that run a provider beside the front door).

use serde::Deserialize;

/// Bytes of a discovery document.
pub const MAX_DOCUMENT: usize = 64 * 1024;
/// Bytes of one endpoint URL.
pub const MAX_URL: usize = 2048;

/// The endpoints sign-in uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Where the browser is sent to sign in.
    pub authorization: String,
    /// Where the front door trades the code for tokens.
    pub token: String,
    /// Where the browser is sent to sign out at the issuer, when it has one.
    pub end_session: Option<String>,
}

#[derive(Deserialize)]
struct Document {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
}

/// The endpoints of `document`, which must be the discovery document of `issuer`.
pub fn endpoints(document: &str, issuer: &str) -> Result<Endpoints, String> {
    if document.len() > MAX_DOCUMENT {
        return Err(format!("longer than {MAX_DOCUMENT} bytes"));
    }
    let doc: Document =
        serde_json::from_str(document).map_err(|e| format!("not a discovery document: {e}"))?;
    if doc.issuer != issuer {
        return Err(format!(
            "it names the issuer {:?}, not {issuer:?}",
            doc.issuer.chars().take(200).collect::<String>()
        ));
    }
    for (name, url) in [
        ("authorization_endpoint", Some(&doc.authorization_endpoint)),
        ("token_endpoint", Some(&doc.token_endpoint)),
        ("end_session_endpoint", doc.end_session_endpoint.as_ref()),
    ] {
        if let Some(url) = url {
            if !usable(url) {
                return Err(format!("{name} is not an https URL without a fragment"));
            }
        }
    }
    Ok(Endpoints {
        authorization: doc.authorization_endpoint,
        token: doc.token_endpoint,
        end_session: doc.end_session_endpoint,
    })
}

/// An absolute https URL (http only to a loopback host) of visible ASCII, no fragment.
fn usable(url: &str) -> bool {
    if url.len() > MAX_URL || !url.bytes().all(|b| b.is_ascii_graphic()) || url.contains('#') {
        return false;
    }
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    match uri.scheme_str() {
        Some("https") => true,
        Some("http") => {
            host == "localhost"
                || host
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(issuer: &str, token: &str) -> String {
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": token,
            "end_session_endpoint": format!("{issuer}/session/end"),
            "jwks_uri": format!("{issuer}/jwks"),
        })
        .to_string()
    }

    #[test]
    fn the_endpoints_of_the_configured_issuer_are_read() {
        let e = endpoints(
            &doc("https://idp.lan", "https://idp.lan/token"),
            "https://idp.lan",
        )
        .expect("endpoints");
        assert_eq!(e.authorization, "https://idp.lan/auth");
        assert_eq!(e.token, "https://idp.lan/token");
        assert_eq!(
            e.end_session.as_deref(),
            Some("https://idp.lan/session/end")
        );
    }

    #[test]
    fn another_issuer_plain_http_and_junk_are_refused() {
        let other = endpoints(
            &doc("https://evil.lan", "https://evil.lan/t"),
            "https://idp.lan",
        );
        assert!(other.unwrap_err().contains("evil.lan"));
        let plain = endpoints(
            &doc("https://idp.lan", "http://idp.lan/t"),
            "https://idp.lan",
        );
        assert!(plain.unwrap_err().contains("token_endpoint"));
        // Plain HTTP on loopback only.
        assert!(endpoints(
            &doc("https://idp.lan", "http://127.0.0.1:9/t"),
            "https://idp.lan"
        )
        .is_ok());
        assert!(endpoints("[]", "https://idp.lan").is_err());
        assert!(endpoints(&" ".repeat(MAX_DOCUMENT + 1), "https://idp.lan").is_err());
    }
}
