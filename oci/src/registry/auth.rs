//! `WWW-Authenticate` challenges and the bearer token endpoint.

use std::collections::BTreeMap;

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm=…`.
    Basic,
    /// `Bearer realm=…,service=…,scope=…`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a challenge: a scheme, then `key=value` or `key="quoted value"` pairs separated by commas.
pub(crate) fn parse_challenge(header: &str) -> Result<Challenge, String> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest).ok_or_else(|| format!("malformed challenge {header:?}"))?;
    if scheme.eq_ignore_ascii_case("basic") {
        Ok(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let realm = params
            .get("realm")
            .cloned()
            .ok_or_else(|| format!("bearer challenge {header:?} has no realm"))?;
        Ok(Challenge::Bearer {
            realm,
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    } else {
        Err(format!("unsupported authentication scheme {scheme:?}"))
    }
}

fn parse_params(text: &str) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(params);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=') {
            key.push(c);
        }
        chars.next()?; // '='
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                value.push(c);
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
}

/// The URL of the token endpoint for `challenge`'s realm, service and scope (`default_scope` when the
/// challenge names none).
pub(crate) fn token_url(
    realm: &str,
    service: Option<&str>,
    scope: Option<&str>,
    default_scope: &str,
) -> String {
    let mut url = realm.to_owned();
    let mut separator = if realm.contains('?') { '&' } else { '?' };
    for (key, value) in [
        ("service", service),
        ("scope", Some(scope.unwrap_or(default_scope))),
    ] {
        if let Some(value) = value {
            url.push(separator);
            url.push_str(key);
            url.push('=');
            url.push_str(&percent_encode(value));
            separator = '&';
        }
    }
    url
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The token from a token endpoint's JSON answer (`token`, or OAuth2's `access_token`).
pub(crate) fn token_from_json(body: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        token: Option<String>,
        access_token: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| format!("the token endpoint's answer is not valid JSON: {e}"))?;
    answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "the token endpoint's answer holds no token".to_owned())
}

/// `Basic base64(user:password)`.
pub(crate) fn basic_header(username: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let challenge = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        )
        .unwrap();
        assert_eq!(
            challenge,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".to_owned(),
                service: Some("registry.docker.io".to_owned()),
                scope: Some("repository:library/nginx:pull".to_owned()),
            }
        );
        assert_eq!(
            parse_challenge("bearer realm=http://x/t").unwrap(),
            Challenge::Bearer {
                realm: "http://x/t".to_owned(),
                service: None,
                scope: None
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic
        );
        assert!(parse_challenge("Bearer service=x").is_err());
        assert!(parse_challenge("Negotiate").is_err());
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_err());
    }

    #[test]
    fn builds_token_urls() {
        assert_eq!(
            token_url("http://a/token", Some("reg x"), None, "repository:r/s:pull"),
            "http://a/token?service=reg%20x&scope=repository%3Ar%2Fs%3Apull"
        );
        assert_eq!(
            token_url("http://a/t?x=1", None, Some("s"), "d"),
            "http://a/t?x=1&scope=s"
        );
    }

    #[test]
    fn reads_tokens_and_encodes_basic() {
        assert_eq!(token_from_json(br#"{"token":"abc"}"#).unwrap(), "abc");
        assert_eq!(
            token_from_json(br#"{"access_token":"xyz","expires_in":60}"#).unwrap(),
            "xyz"
        );
        assert!(token_from_json(b"{}").is_err());
        assert_eq!(basic_header("user", "pass"), "Basic dXNlcjpwYXNz");
    }
}
