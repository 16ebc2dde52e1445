//! The token request of a sign-in (RFC 6749 section 4.1.3, with PKCE's `code_verifier`): one
//! POST to the issuer's token endpoint through [`crate::outbound`] (HTTPS against Mozilla's
//! roots plus the card's `ca`, 5 s, the answer bounded to 64 KiB, no redirects), the client
//! authenticated with HTTP Basic (`client_secret_basic`). Only the answer's `id_token` is used:
//! no access or refresh token is kept.

use crate::outbound::Client;

/// Why the exchange gave no ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// The issuer refused the code (`invalid_grant` and the like): the browser is answered 401.
    Refused(String),
    /// The issuer could not be asked or answered nonsense: 502.
    Unreachable(String),
}

/// What one token request sends.
#[derive(Debug)]
pub struct TokenRequest<'a> {
    /// The token endpoint.
    pub endpoint: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// Its secret.
    pub client_secret: &'a str,
    /// The code from the callback.
    pub code: &'a str,
    /// The redirect URI the authorization request named.
    pub redirect_uri: &'a str,
    /// The PKCE verifier of the sign-in.
    pub verifier: &'a str,
}

/// Trades the code for an ID token.
pub async fn id_token(client: &Client, req: TokenRequest<'_>) -> Result<String, Failed> {
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", req.code),
        ("redirect_uri", req.redirect_uri),
        ("code_verifier", req.verifier),
    ];
    let answer = client
        .post_form(
            req.endpoint,
            Some((req.client_id, req.client_secret)),
            &fields,
        )
        .await
        .map_err(|e| Failed::Unreachable(format!("the token endpoint: {e}")))?;
    read(answer.status, &answer.body)
}

/// The ID token of a token endpoint's answer, or why there is none.
pub fn read(status: u16, body: &[u8]) -> Result<String, Failed> {
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        Failed::Unreachable(format!("the token endpoint answered {status} with no JSON"))
    })?;
    if !(200..300).contains(&status) {
        // RFC 6749 section 5.2: a refusal says why in `error`.
        let error = json.get("error").and_then(|e| e.as_str()).unwrap_or("?");
        let text: String = error.chars().take(100).collect();
        return Err(Failed::Refused(format!(
            "the identity provider refused the code ({status} {text:?})"
        )));
    }
    json.get("id_token")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| Failed::Unreachable("the token endpoint's answer has no id_token".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_gives_the_id_token_or_why_not() {
        assert_eq!(
            read(200, br#"{"id_token":"a.b.c","access_token":"x"}"#),
            Ok("a.b.c".into())
        );
        let refused = read(400, br#"{"error":"invalid_grant"}"#).unwrap_err();
        assert!(
            matches!(&refused, Failed::Refused(t) if t.contains("invalid_grant")),
            "{refused:?}"
        );
        assert!(matches!(read(200, b"{}"), Err(Failed::Unreachable(_))));
        assert!(matches!(read(502, b"<html>"), Err(Failed::Unreachable(_))));
    }
}
