//! Service specs against this board's `[front_door]`: what a spec may only do when
//! `cluster.toml` allows it. The spec's own validation cannot know the board's settings, so
//! card load and `PUT /v1/services` run this after it.

use toml::de::DeTable;

use super::FrontDoor;
use crate::error::ConfigError;
use crate::locate::SpanIndex;
use crate::service::{Auth, ServiceSpec};

/// The claims a browser session keeps, the only ones a login route's `require` can name.
pub const SESSION_CLAIMS: &[&str] = &["sub", "email", "groups"];

impl FrontDoor {
    /// The problems of `spec`, read from `file` with text `text`, on a board with this front
    /// door: a `publish` of a port the front door moved to, or a route whose `auth` needs
    /// `[front_door.oidc]` (with `client_id` for `"login"`) or `[front_door.mtls]` that
    /// `cluster.toml` does not have, or a login route that requires a claim sessions do not keep
    /// (see [`SESSION_CLAIMS`]). Each names the spec's file, line and field.
    pub fn check_service(&self, file: &str, text: &str, spec: &ServiceSpec) -> Vec<ConfigError> {
        let mut problems: Vec<(&str, String)> = Vec::new();
        if let Some(p) = spec.publish {
            for (key, port) in [("http", self.http), ("https", self.https)] {
                if port != 0 && port == p {
                    problems.push((
                        "publish",
                        format!(
                            "port {p} is the front door's on this board (cluster.toml: [front_door] \
                             {key} = {p}, the default unless set; 0 switches it off)"
                        ),
                    ));
                }
            }
        }
        if let Some(route) = &spec.route {
            let auth = route.auth;
            let missing = match (auth, &self.oidc, &self.mtls) {
                (Auth::Oidc | Auth::Login, None, _) => {
                    Some("[front_door.oidc] (issuer, audience, jwks)")
                }
                (Auth::Login, Some(o), _) if o.client_id.is_none() => {
                    Some("client_id and client_secret in [front_door.oidc]")
                }
                (Auth::Mtls, _, None) => Some("[front_door.mtls] (ca)"),
                _ => None,
            };
            // A session keeps only these claims of the ID token (it must fit in a cookie), so
            // a login route requiring another could never be met through one: say so now
            // rather than answer 403 to every signed-in browser.
            if auth == Auth::Login {
                for claim in route.require.keys() {
                    if !SESSION_CLAIMS.contains(&claim.as_str()) {
                        problems.push((
                            "route.require",
                            format!(
                                "auth = \"login\" keeps only the claims sub, email and groups in \
                                 its session, so a route cannot require {claim:?}; use one of \
                                 those, or auth = \"oidc\" for bearer tokens"
                            ),
                        ));
                    }
                }
            }
            if let Some(what) = missing {
                let name = serde_json::to_value(auth)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                problems.push((
                    "route.auth",
                    format!("auth = {name:?} needs {what} in this board's cluster.toml"),
                ));
            }
        }
        if problems.is_empty() {
            return Vec::new();
        }
        // The spec parsed already, so the text does too; line 1 is the fallback all the same.
        let index = DeTable::parse(text)
            .ok()
            .map(|root| SpanIndex::new(text, root.get_ref()));
        problems
            .into_iter()
            .map(|(field, message)| ConfigError {
                file: file.to_string(),
                line: Some(index.as_ref().map_or(1, |i| i.line_of(field))),
                field: field.to_string(),
                message,
            })
            .collect()
    }
}
