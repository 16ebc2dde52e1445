//! What the front door is told: the snapshot (settings, routes, services, certificates) and
//! the instance lists, built from `[front_door]` and the supervisor's routed services. Pure:
//! [`super::run`] sends what this builds.
//!
//! Specs are checked for route clashes where they enter (card, API), but two boards may accept
//! clashing specs at the same moment; a clash here keeps the route of the service whose name
//! sorts first and names the other in the notes, rather than refusing every route.

use std::collections::{BTreeMap, BTreeSet};

use baton_frontdoor::config::model::OidcSettings;
use baton_frontdoor::config::{self as fd, Cert, Snapshot};
use baton_frontdoor::control::protocol::Instance;
use baton_spec::service::Auth;
use baton_spec::FrontDoor;

use crate::containers::supervisor::routed::Routed;

/// The snapshot for `settings`, `routed` and `certs`, with the instances as they are now
/// (`board` names this board); notes name routes left out.
pub fn snapshot(
    settings: &FrontDoor,
    routed: &Routed,
    certs: Vec<Cert>,
    oidc: Option<OidcSettings>,
    board: &str,
) -> (Snapshot, Vec<String>) {
    let mut notes = Vec::new();
    let mut routes = Vec::new();
    let mut services = BTreeMap::new();
    let mut taken: BTreeMap<(Option<String>, String), String> = BTreeMap::new();
    for (name, service) in &routed.services {
        let route = &service.route;
        let key = (route.host.clone(), route.path.clone());
        if let Some(first) = taken.get(&key) {
            notes.push(format!(
                "the route of {name} (host {:?}, path {}) is left out: {first} has the same",
                route.host.as_deref().unwrap_or("any"),
                route.path
            ));
            continue;
        }
        taken.insert(key, name.clone());
        routes.push(fd::Route {
            service: name.clone(),
            host: route.host.clone(),
            path: route.path.clone(),
            auth: auth(route.auth),
            timeout_ms: millis(route.timeout),
            require: route.require.clone(),
            forward: route.forward.as_ref().map(forward),
        });
        // Requests wait for a ready instance, within the service's bounds: a service at zero
        // is woken by them, one that restarts is back before they give up.
        let hold = fd::Hold {
            queue: service.hold_queue,
            timeout_ms: millis(service.hold_timeout),
        };
        services.insert(name.clone(), fd::Service { hold: Some(hold) });
    }
    // Auth services without a route: listed (with their instances) so that forward routes can
    // ask them, but no request is routed to them.
    for name in routed.auth_services.keys() {
        services
            .entry(name.clone())
            .or_insert(fd::Service { hold: None });
    }
    let snapshot = Snapshot {
        settings: fd::Settings {
            redirect_http: settings.redirect_http,
            https_port: settings.https,
            idle_timeout_ms: millis(settings.idle_timeout).max(1),
            max_connections: settings.max_connections.max(1),
            per_client_connections: settings.per_client_connections,
            per_client_rate: settings.per_client_rate,
            per_client_burst: settings.per_client_burst,
            trusted_proxies: settings
                .trusted_proxies
                .iter()
                .map(|c| (c.addr, c.prefix))
                .collect(),
        },
        routes,
        // Set by the caller (`run`), with the session key derived in PID 1.
        login: None,
        instances: instances(routed, board)
            .into_iter()
            .filter(|(name, _)| services.contains_key(name))
            .collect(),
        services,
        certs,
        oidc,
        // Set by the caller (`run`), from `identity`.
        assertion: None,
        mtls: None,
    };
    (snapshot, notes)
}

/// Largest key set file read from the card.
pub const MAX_JWKS: u64 = 64 * 1024;

/// The identity provider's settings for the front door, with its key set read from the card's
/// `jwks` file (empty when there is none: then `jwks_url`'s is used, which
/// [`super::idp_cache::Cache::complete`] adds); `None` with a note when the board has no key
/// set to give (oidc routes then answer 503: they never pass unchecked).
pub fn oidc(
    settings: &FrontDoor,
    card: &std::path::Path,
) -> (Option<OidcSettings>, Option<String>) {
    let Some(oidc) = &settings.oidc else {
        return (None, None);
    };
    let mut note = None;
    // Empty: no key set on the card; the fetched one of `jwks_url` is used (the spec asks for
    // at least one of the two).
    let mut text = String::new();
    if let Some(file) = &oidc.jwks {
        let path = card.join(file);
        match super::certs::read_text(&path, MAX_JWKS) {
            Ok(read) => text = read,
            Err(e) if oidc.jwks_url.is_some() => {
                note = Some(format!("{file}: {e}; only the key set of jwks_url is used"));
            }
            Err(e) => return (None, Some(format!("{file}: {e}; oidc routes answer 503"))),
        }
    }
    let settings = OidcSettings {
        issuer: oidc.issuer.clone(),
        audience: oidc.audience.clone(),
        leeway_s: oidc.leeway.as_secs(),
        jwks: text,
        ..OidcSettings::default()
    };
    (Some(settings), note)
}

/// The host names the routes answer for (exact and `*.suffix`), for their certificates.
pub fn hosts(routed: &Routed) -> BTreeSet<String> {
    routed
        .services
        .values()
        .filter_map(|s| s.route.host.clone())
        .collect()
}

/// The instance lists per routed service and per auth service; `board` names this board.
pub fn instances(routed: &Routed, board: &str) -> BTreeMap<String, Vec<Instance>> {
    let routes = routed
        .services
        .iter()
        .map(|(name, s)| (name, s.port, &s.instances));
    let auth = routed
        .auth_services
        .iter()
        .map(|(name, s)| (name, s.port, &s.instances));
    routes
        .chain(auth)
        .map(|(name, port, instances)| {
            let list = instances
                .iter()
                .take(baton_frontdoor::control::protocol::MAX_INSTANCES)
                .map(|i| Instance {
                    id: i.id.clone(),
                    addr: i.addr,
                    port,
                    board: i.board.clone().unwrap_or_else(|| board.to_string()),
                    ready: i.ready,
                })
                .collect();
            (name.clone(), list)
        })
        .collect()
}

fn auth(auth: Auth) -> fd::Auth {
    match auth {
        Auth::None => fd::Auth::None,
        Auth::Oidc => fd::Auth::Oidc,
        Auth::Login => fd::Auth::Login,
        Auth::Mtls => fd::Auth::Mtls,
        Auth::Forward => fd::Auth::Forward,
    }
}

/// `route.forward` as the front door takes it.
fn forward(f: &baton_spec::service::Forward) -> fd::ForwardAuth {
    fd::ForwardAuth {
        url: f.url.clone(),
        copy_headers: f.copy_headers.clone(),
        user_header: f.user_header.clone(),
        email_header: f.email_header.clone(),
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
