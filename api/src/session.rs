//! `/v1/session`: the dashboard's sign-in. The browser exchanges the API token for a sealed,
//! HttpOnly session cookie; the page then reads the session's CSRF value, which every request
//! that changes something must carry in `X-Baton-CSRF`.

use serde::{Deserialize, Serialize};

/// The body of `POST /v1/session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    /// The board's API token (`[api] token` in `cluster.toml`).
    pub token: String,
}

/// The body of `GET /v1/session`, and of a sign-in or sign-out that succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionState {
    /// Whether the request carried a valid session cookie (after a sign-in: `true`; after a
    /// sign-out: `false`).
    pub signed_in: bool,
    /// The session's CSRF value, to send back in `X-Baton-CSRF`; `null` when not signed in.
    pub csrf: Option<String>,
    /// Seconds the session has left; `null` when not signed in.
    pub expires_in_s: Option<u64>,
    /// Whether the API speaks TLS; `false` on a board without a CA, whose page says that the
    /// connection is not encrypted.
    pub encrypted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_session_keeps_its_json_shape() {
        let state = SessionState {
            signed_in: true,
            csrf: Some("abc".into()),
            expires_in_s: Some(43200),
            encrypted: true,
        };
        let expected =
            json!({"signed_in": true, "csrf": "abc", "expires_in_s": 43200, "encrypted": true});
        assert_eq!(serde_json::to_value(&state).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<SessionState>(expected).unwrap(),
            state
        );
        let sign_in: SignIn = serde_json::from_value(json!({"token": "t"})).unwrap();
        assert_eq!(sign_in.token, "t");
    }
}
