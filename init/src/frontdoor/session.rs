//! The browser sign-in settings the front door gets (docs/design/front-door.md section 5.4),
//! with the key of its sealed cookies. The key is derived here, in PID 1, from the cluster key
//! by HKDF-SHA256 (no salt, info [`INFO`]), so that every board seals and opens the same
//! cookies (a session works on any board) while the cluster key itself never reaches the front
//! door. A board outside a cluster has no cluster key: it takes a random key at start, and its
//! sessions end when it restarts.

use baton_frontdoor::config::{Auth, Route};
use baton_frontdoor::identity::login::LoginSettings;
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::rand::{SecureRandom, SystemRandom};

/// The HKDF info of the session key; a new version of the key gets a new info.
pub const INFO: &[u8] = b"baton front door session v1";

/// The session key of the cluster with `cluster_key`, or a random one without a cluster.
pub fn key(cluster_key: Option<&str>) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    match cluster_key {
        Some(key) => Salt::new(HKDF_SHA256, &[])
            .extract(key.as_bytes())
            .expand(&[INFO], HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut out))
            .map_err(|_| "HKDF failed".to_string())?,
        None => SystemRandom::new()
            .fill(&mut out)
            .map_err(|_| "no randomness".to_string())?,
    }
    Ok(out)
}

/// The sign-in settings of `[front_door.oidc]`, when it has a client id and secret (the spec
/// checks that both or neither are there) and one of `routes` has `auth = "login"`. Without
/// such a route the front door gets none: the callback and logout paths would otherwise be
/// taken on every host, over the services' own paths.
pub fn login(
    front_door: &baton_spec::FrontDoor,
    key: &[u8; 32],
    routes: &[Route],
) -> Option<LoginSettings> {
    if !routes.iter().any(|r| r.auth == Auth::Login) {
        return None;
    }
    let oidc = front_door.oidc.as_ref()?;
    Some(LoginSettings {
        client_id: oidc.client_id.clone()?,
        client_secret: oidc.client_secret.clone()?,
        scopes: oidc.scopes.clone(),
        callback_path: oidc.callback_path.clone(),
        session_ttl_s: oidc.session_ttl.as_secs(),
        session_key: *key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::hmac;

    const KEY: &str = "a cluster key of at least thirty-two characters";

    #[test]
    fn the_key_is_hkdf_sha256_of_the_cluster_key_with_the_session_info() {
        // RFC 5869 by hand with HMAC-SHA256: PRK = HMAC(zeros, IKM); T(1) = HMAC(PRK, info | 1).
        let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[0; 32]), KEY.as_bytes());
        let mut block = INFO.to_vec();
        block.push(1);
        let t1 = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()), &block);
        assert_eq!(key(Some(KEY)).expect("key").as_slice(), t1.as_ref());
        // The same on every board, another for another cluster key.
        assert_eq!(key(Some(KEY)), key(Some(KEY)));
        assert_ne!(
            key(Some(KEY)),
            key(Some("another cluster key of thirty-two chars"))
        );
        // Without a cluster: random, so two starts differ.
        assert_ne!(key(None), key(None));
    }

    #[test]
    fn sign_in_settings_need_a_client() {
        let routes = [Route {
            service: "app".into(),
            host: None,
            path: "/".into(),
            auth: Auth::Login,
            timeout_ms: 1000,
            require: Default::default(),
            forward: None,
        }];
        assert!(login(&baton_spec::FrontDoor::default(), &[1; 32], &routes).is_none());
        let text = "[cluster]\nkey = \"0123456789abcdef0123456789abcdef\"\n\
                    [api]\ntoken = \"secret-token-1234567\"\n\
                    [front_door.oidc]\nissuer = \"https://idp.lan\"\naudience = \"baton\"\n\
                    jwks_url = \"https://idp.lan/jwks\"\nclient_id = \"baton\"\n\
                    client_secret = \"s3cret\"\nscopes = [\"groups\"]\nsession_ttl = \"1h\"\n";
        let fd = baton_spec::BoardConfig::parse("cluster.toml", text)
            .expect("cluster.toml")
            .front_door;
        // No login route: no sign-in, so its paths stay the services' own.
        let mut others = routes.clone();
        others[0].auth = Auth::Oidc;
        assert!(login(&fd, &[1; 32], &others).is_none());
        assert!(login(&fd, &[1; 32], &[]).is_none());
        let login = login(&fd, &[1; 32], &routes).expect("login");
        assert_eq!(login.client_id, "baton");
        assert_eq!(login.client_secret, "s3cret");
        assert_eq!(login.scopes, vec!["groups".to_string()]);
        assert_eq!(login.callback_path, "/.baton/auth/callback");
        assert_eq!(login.session_ttl_s, 3600);
        assert_eq!(login.session_key, [1; 32]);
        assert!(login.check().is_ok());
        // The key and the secret stay out of log lines.
        let shown = format!("{login:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("[1, 1"),
            "{shown}"
        );
    }
}
