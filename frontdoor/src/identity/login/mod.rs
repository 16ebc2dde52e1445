//! Browser sign-in for routes with `auth = "login"` (docs/design/front-door.md section 5.4):
//! the authorization code flow with PKCE (S256) against the issuer of `[front_door.oidc]`, a
//! short sealed login cookie across the trip to the issuer, and a sealed session cookie that
//! every board of the cluster reads (its key is derived from the cluster key in PID 1).
//!
//! [`cookie`] seals and opens cookie values, [`flow`] is the state machine (pure: the time and
//! the token exchange's answer come from the caller), [`exchange`] calls the token endpoint
//! through [`crate::outbound`]. The issuer's endpoints are its discovery document as
//! [`crate::idp`] fetched it (or the init cached it).

pub mod cookie;
pub mod exchange;
pub mod flow;
pub mod query;

use serde::{Deserialize, Serialize};

use cookie::Sealer;

/// Bytes of the client id, the client secret, a scope.
pub const MAX_TEXT: usize = 2048;
/// Scopes asked for besides `openid email profile`.
pub const MAX_SCOPES: usize = 16;
/// Shortest and longest session, in seconds (the spec's bounds).
pub const SESSION_TTL_S: std::ops::RangeInclusive<u64> = 300..=7 * 24 * 3600;

/// What browser sign-in needs, as the init sends it in the snapshot.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSettings {
    /// The client id registered at the issuer.
    pub client_id: String,
    /// Its secret, sent to the token endpoint with HTTP Basic.
    pub client_secret: String,
    /// Scopes asked for besides `openid email profile`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The path the issuer sends the browser back to, under `/.baton/`.
    pub callback_path: String,
    /// Seconds a session lasts.
    pub session_ttl_s: u64,
    /// The key of the sealed cookies: HKDF-SHA256 of the cluster key with the info
    /// "baton front door session v1", derived in PID 1 (the cluster key never comes here).
    pub session_key: [u8; 32],
}

impl std::fmt::Debug for LoginSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret or the key.
        f.debug_struct("LoginSettings")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("callback_path", &self.callback_path)
            .field("session_ttl_s", &self.session_ttl_s)
            .finish_non_exhaustive()
    }
}

impl LoginSettings {
    /// Whether the settings are usable; the error names the field.
    pub fn check(&self) -> Result<(), String> {
        let fits = |t: &str| !t.is_empty() && t.len() <= MAX_TEXT;
        if !fits(&self.client_id) || !fits(&self.client_secret) {
            return Err(format!(
                "login: client id and secret are 1 to {MAX_TEXT} bytes"
            ));
        }
        let scope_ok = |s: &String| fits(s) && s.bytes().all(|b| b.is_ascii_graphic());
        if self.scopes.len() > MAX_SCOPES || !self.scopes.iter().all(scope_ok) {
            return Err(format!(
                "login: at most {MAX_SCOPES} scopes of visible ASCII"
            ));
        }
        if !self.callback_path.starts_with("/.baton/")
            || !crate::config::model::is_normal_path(&self.callback_path)
        {
            return Err(format!(
                "login: callback path {:?} is not a normalised path under /.baton/",
                self.callback_path
            ));
        }
        if !SESSION_TTL_S.contains(&self.session_ttl_s) {
            return Err(format!(
                "login: a session of {} s is outside {} to {} s",
                self.session_ttl_s,
                SESSION_TTL_S.start(),
                SESSION_TTL_S.end()
            ));
        }
        Ok(())
    }

    /// The logout paths: `logout` beside the callback, and `/.baton/auth/logout`.
    pub fn is_logout(&self, path: &str) -> bool {
        let dir = self
            .callback_path
            .rsplit_once('/')
            .map_or("", |(dir, _)| dir);
        path == "/.baton/auth/logout" || path.strip_prefix(dir) == Some("/logout")
    }
}

/// Sign-in as one snapshot has it, ready for requests.
#[derive(Debug)]
pub struct Login {
    /// The settings.
    pub settings: LoginSettings,
    /// Seals and opens the cookies.
    pub sealer: Sealer,
    /// The client of the token endpoint (Mozilla's roots plus the card's `ca`).
    pub client: crate::outbound::Client,
}

impl Login {
    /// Sign-in for `settings`, trusting `ca_pem` besides Mozilla's roots; the notes name
    /// certificates of `ca_pem` that cannot be used.
    pub fn new(settings: LoginSettings, ca_pem: Option<&str>) -> (Login, Vec<String>) {
        let (client, notes) = crate::outbound::Client::new(ca_pem);
        let login = Login {
            sealer: Sealer::new(&settings.session_key),
            settings,
            client,
        };
        (login, notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LoginSettings {
        LoginSettings {
            client_id: "baton".into(),
            client_secret: "s3cret".into(),
            scopes: vec!["groups".into()],
            callback_path: "/.baton/cb/back".into(),
            session_ttl_s: 3600,
            session_key: [7; 32],
        }
    }

    #[test]
    fn settings_out_of_bounds_are_refused_and_secrets_never_shown() {
        assert_eq!(settings().check(), Ok(()));
        let bad: [fn(&mut LoginSettings); 6] = [
            |s| s.client_id.clear(),
            |s| s.client_secret = "x".repeat(MAX_TEXT + 1),
            |s| s.scopes = vec!["a b".into()],
            |s| s.callback_path = "/auth/callback".into(),
            |s| s.callback_path = "/.baton/../x".into(),
            |s| s.session_ttl_s = 60,
        ];
        for (i, spoil) in bad.iter().enumerate() {
            let mut s = settings();
            spoil(&mut s);
            assert!(s.check().is_err(), "case {i}: {s:?}");
        }
        let shown = format!("{:?}", settings());
        assert!(
            !shown.contains("s3cret") && !shown.contains("7, 7"),
            "{shown}"
        );
    }

    #[test]
    fn logout_is_beside_the_callback_and_at_the_default_place() {
        let s = settings();
        assert!(s.is_logout("/.baton/cb/logout"));
        assert!(s.is_logout("/.baton/auth/logout"));
        assert!(!s.is_logout("/.baton/cb/back"));
        assert!(!s.is_logout("/logout"));
    }
}
