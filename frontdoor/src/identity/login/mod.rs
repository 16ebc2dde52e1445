//! Browser sign-in for routes with `auth = "login"` (docs/design/front-door.md section 5.4):
//! the authorization code flow with PKCE (S256) against the issuer of `[front_door.oidc]`, a
//! short sealed login cookie across the trip to the issuer, and a sealed session cookie that
//! every board of the cluster reads (its key is derived from the cluster key in PID 1).
//!
//! [`cookie`] seals and opens cookie values, [`discovery`] reads the issuer's endpoints,
//! [`flow`] is the state machine (pure: the time, the randomness's output and the token
//! exchange come from the caller), [`exchange`] calls the token endpoint.

pub mod cookie;
pub mod discovery;
pub mod exchange;
pub mod flow;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use cookie::Sealer;
use discovery::Endpoints;

/// Bytes of the client id, the client secret, a scope, the callback path.
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
    /// The issuer's discovery document (`/.well-known/openid-configuration`, JSON) as the init
    /// last had it; `None`: sign-in answers 503 until it comes.
    #[serde(default)]
    pub discovery: Option<String>,
    /// PEM certificates trusted for the token endpoint besides Mozilla's roots (the card's
    /// `[front_door.oidc] ca`).
    #[serde(default)]
    pub ca_pem: Option<String>,
}

impl std::fmt::Debug for LoginSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret or the key.
        f.debug_struct("LoginSettings")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("callback_path", &self.callback_path)
            .field("session_ttl_s", &self.session_ttl_s)
            .field("discovery_bytes", &self.discovery.as_ref().map(String::len))
            .field("ca_bytes", &self.ca_pem.as_ref().map(String::len))
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
        if self.scopes.len() > MAX_SCOPES
            || !self
                .scopes
                .iter()
                .all(|s| fits(s) && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
        {
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
        if self
            .discovery
            .as_ref()
            .is_some_and(|d| d.len() > discovery::MAX_DOCUMENT)
            || self
                .ca_pem
                .as_ref()
                .is_some_and(|c| c.len() > crate::config::model::MAX_PEM)
        {
            return Err("login: the discovery document or the CA is too long".into());
        }
        Ok(())
    }

    /// The logout paths: `logout` beside the callback, and `/.baton/auth/logout`.
    pub fn is_logout(&self, path: &str) -> bool {
        let dir = self
            .callback_path
            .rsplit_once('/')
            .map_or("", |(dir, _)| dir);
        path == "/.baton/auth/logout" || path == format!("{dir}/logout")
    }
}

/// Sign-in as one snapshot has it, ready for requests.
#[derive(Debug)]
pub struct Login {
    /// The settings.
    pub settings: LoginSettings,
    /// Seals and opens the cookies.
    pub sealer: Sealer,
    /// The issuer's endpoints, or why there are none (sign-in then answers 503).
    pub endpoints: Result<Endpoints, String>,
    /// TLS to the issuer.
    pub tls: Arc<rustls::ClientConfig>,
}

impl Login {
    /// Sign-in for `settings` with the issuer `issuer` (`None`: no `[front_door.oidc]`
    /// reached this board); notes say what cannot be used.
    pub fn new(settings: LoginSettings, issuer: Option<&str>) -> (Login, Vec<String>) {
        let endpoints = match (issuer, &settings.discovery) {
            (None, _) => Err("this board has no settings of the identity provider".to_string()),
            (Some(_), None) => Err(
                "the identity provider's discovery document has not been fetched yet".to_string(),
            ),
            (Some(issuer), Some(doc)) => discovery::endpoints(doc, issuer)
                .map_err(|e| format!("the identity provider's discovery document: {e}")),
        };
        let (tls, mut notes) = exchange::client_config(settings.ca_pem.as_deref());
        if let Err(e) = &endpoints {
            notes.push(format!("{e}: login routes answer 503"));
        }
        let login = Login {
            sealer: Sealer::new(&settings.session_key),
            settings,
            endpoints,
            tls,
        };
        (login, notes)
    }
}
