//! The check of an `auth = "mtls"` route (docs/design/front-door.md sections 4 and 5.5): the
//! handshake verified the client's certificate against the client CA (`allow_unauthenticated`
//! lets a client without one connect), so here it is only whether there is one, and whether
//! the request belongs on this connection at all.

use http::{Response, StatusCode};

use super::Conn;
use crate::http::{pages, Body};
use crate::identity::Identity;
use crate::state::Active;

/// Who the client certificate names, or the answer: 503 when this board has no client CA, 421
/// when the request names another host than the connection's handshake did (an HTTP/2 client
/// reusing a connection whose handshake asked for no certificate, or asked for another name's),
/// 401 with a page when there is no usable certificate.
pub fn check(
    active: &Active,
    conn: &Conn,
    host: &str,
    html: bool,
) -> Result<Identity, Box<Response<Body>>> {
    if active.mtls.is_none() {
        return Err(Box::new(pages::unavailable(
            html,
            "this board's front door has no client CA for mtls routes ([front_door.mtls] ca)",
            60,
        )));
    }
    let Some(tls) = &conn.tls else {
        return Err(unauthorized(
            html,
            "this route needs HTTPS with a client certificate",
        ));
    };
    if !same_name(tls.sni.as_deref(), host) {
        return Err(Box::new(pages::page(
            StatusCode::MISDIRECTED_REQUEST,
            html,
            "Misdirected Request",
            &format!(
                "this connection was made for another name than {host}; connect again for {host}"
            ),
        )));
    }
    match &tls.cert {
        None => Err(unauthorized(
            html,
            "this route needs a client certificate signed by the client CA",
        )),
        Some(Err(why)) => Err(unauthorized(html, why)),
        Some(Ok(cert)) => Ok(Identity {
            sub: cert.subject.clone(),
            email: cert.email.clone(),
            groups: Vec::new(),
            claims: serde_json::Map::new(),
        }),
    }
}

fn unauthorized(html: bool, why: &str) -> Box<Response<Body>> {
    Box::new(pages::page(
        StatusCode::UNAUTHORIZED,
        html,
        "Unauthorized",
        why,
    ))
}

/// Whether a request for `host` (normalised) may use a connection whose handshake named `sni`.
fn same_name(sni: Option<&str>, host: &str) -> bool {
    match sni {
        Some(sni) => sni == host,
        // No name in the handshake: only clients that connect to an address send none. An
        // IPv6 host comes normalised with its brackets.
        None => host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .parse::<std::net::IpAddr>()
            .is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::same_name;

    #[test]
    fn a_connection_serves_the_name_it_was_made_for_or_an_address_without_a_name() {
        assert!(same_name(Some("secure.lan"), "secure.lan"));
        assert!(!same_name(Some("web.lan"), "secure.lan"));
        assert!(same_name(None, "192.168.1.5"));
        assert!(same_name(None, "[fd00::1]"));
        assert!(!same_name(None, "secure.lan"));
        assert!(!same_name(None, "[secure.lan]"));
    }
}
