//! The identity provider's OpenID discovery document (`{issuer}/.well-known/openid-configuration`,
//! OpenID Connect Discovery 1.0 section 4), reduced to what a browser sign-in needs. The front
//! door fetches it, the init keeps it on `/data` and hands it back in every snapshot, both
//! reading it with [`Discovery::parse`], so a document is used only if its `issuer` is the
//! configured one (section 4.3) and its endpoints are `https://` URLs of bounded length.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::control::protocol::{MAX_FETCHED_BODY, MAX_URL};

/// Where the document of `issuer` is.
pub fn url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// The endpoints a browser sign-in uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    /// `issuer`: equal to the configured issuer.
    pub issuer: String,
    /// `authorization_endpoint`: where the browser is sent to sign in.
    pub authorization_endpoint: String,
    /// `token_endpoint`: where the code is exchanged.
    pub token_endpoint: String,
    /// `end_session_endpoint` (RP-initiated logout), when the provider has one.
    pub end_session_endpoint: Option<String>,
    /// `jwks_uri`, when given (for information: the key set used is the configured one).
    pub jwks_uri: Option<String>,
}

impl Discovery {
    /// Reads a discovery document fetched for `issuer`.
    pub fn parse(body: &str, issuer: &str) -> Result<Discovery, String> {
        if body.len() > MAX_FETCHED_BODY {
            return Err(format!(
                "the discovery document is longer than {MAX_FETCHED_BODY} bytes"
            ));
        }
        let doc: Value = serde_json::from_str(body)
            .map_err(|e| format!("the discovery document is not JSON: {e}"))?;
        if !doc.is_object() {
            return Err("the discovery document is not a JSON object".into());
        }
        let found = doc
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or("the discovery document has no issuer")?;
        if found != issuer {
            return Err(format!(
                "the discovery document is for issuer {:?}, not {issuer:?}",
                found.chars().take(200).collect::<String>()
            ));
        }
        let found = Discovery {
            issuer: issuer.to_string(),
            authorization_endpoint: endpoint(&doc, "authorization_endpoint")?
                .ok_or("the discovery document has no authorization_endpoint")?,
            token_endpoint: endpoint(&doc, "token_endpoint")?
                .ok_or("the discovery document has no token_endpoint")?,
            end_session_endpoint: endpoint(&doc, "end_session_endpoint")?,
            jwks_uri: endpoint(&doc, "jwks_uri")?,
        };
        Ok(found)
    }

    /// Whether a document as the snapshot carries it keeps the bounds of [`Discovery::parse`].
    pub fn check(&self, issuer: &str) -> Result<(), String> {
        if self.issuer != issuer {
            return Err("the discovery document is for another issuer".into());
        }
        let urls = [
            Some(&self.authorization_endpoint),
            Some(&self.token_endpoint),
            self.end_session_endpoint.as_ref(),
            self.jwks_uri.as_ref(),
        ];
        for url in urls.into_iter().flatten() {
            check_url(url)?;
        }
        Ok(())
    }
}

/// An `https://` URL member; `Ok(None)` when absent.
fn endpoint(doc: &Value, name: &str) -> Result<Option<String>, String> {
    match doc.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url)) => {
            check_url(url).map_err(|e| format!("the discovery document's {name}: {e}"))?;
            Ok(Some(url.clone()))
        }
        Some(_) => Err(format!("the discovery document's {name} is not a string")),
    }
}

fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL || url.contains(char::is_control) {
        return Err(format!(
            "a URL longer than {MAX_URL} bytes or with control characters"
        ));
    }
    crate::outbound::Target::parse(url).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://idp.lan";

    fn doc(issuer: &str) -> serde_json::Value {
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": "https://idp.lan/auth",
            "token_endpoint": "https://idp.lan/token",
            "end_session_endpoint": "https://idp.lan/session/end",
            "jwks_uri": "https://idp.lan/jwks",
            "response_types_supported": ["code"],
        })
    }

    #[test]
    fn a_document_of_the_issuer_is_read() {
        let found = Discovery::parse(&doc(ISSUER).to_string(), ISSUER).expect("parse");
        assert_eq!(found.token_endpoint, "https://idp.lan/token");
        assert_eq!(
            found.end_session_endpoint.as_deref(),
            Some("https://idp.lan/session/end")
        );
        found.check(ISSUER).expect("check");
        assert_eq!(
            url("https://idp.lan/"),
            "https://idp.lan/.well-known/openid-configuration"
        );
    }

    #[test]
    fn another_issuer_plain_http_and_garbage_are_refused() {
        let other = Discovery::parse(&doc("https://evil.lan").to_string(), ISSUER);
        assert!(other.expect_err("issuer").contains("evil.lan"));
        let mut plain = doc(ISSUER);
        plain["token_endpoint"] = "http://idp.lan/token".into();
        let err = Discovery::parse(&plain.to_string(), ISSUER).expect_err("http");
        assert!(
            err.contains("token_endpoint") && err.contains("https"),
            "{err}"
        );
        let mut missing = doc(ISSUER);
        missing
            .as_object_mut()
            .expect("object")
            .remove("authorization_endpoint");
        assert!(Discovery::parse(&missing.to_string(), ISSUER).is_err());
        assert!(Discovery::parse("[1]", ISSUER).is_err());
        assert!(Discovery::parse("{", ISSUER).is_err());
        let huge = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_FETCHED_BODY));
        assert!(Discovery::parse(&huge, ISSUER)
            .expect_err("huge")
            .contains("longer"));
    }
}
