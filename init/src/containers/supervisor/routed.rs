//! What the front door needs from the supervisor: the services that have a route, the port
//! requests go to, and their instances here and on the other boards with their readiness. It is
//! published on a watch channel from the same point that feeds the network rules, so the front
//! door and the virtual IPs see the same instances at the same time.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use baton_spec::service::Route;

/// The routed services, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routed {
    /// Each service with a route.
    pub services: BTreeMap<String, RoutedService>,
    /// Services without a route of their own that a route's `forward.url` names: the front
    /// door asks their instances whether a request may pass.
    pub auth_services: BTreeMap<String, AuthService>,
}

/// An auth service without a route of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthService {
    /// The container port it is asked on.
    pub port: u16,
    /// Its running instances.
    pub instances: Vec<RoutedInstance>,
}

/// One routed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedService {
    /// Its route.
    pub route: Route,
    /// The container port requests go to.
    pub port: u16,
    /// Its running instances.
    pub instances: Vec<RoutedInstance>,
    /// Requests that may wait for a ready instance (`scale.hold_queue`).
    pub hold_queue: u32,
    /// How long one may wait (`scale.hold_timeout`).
    pub hold_timeout: std::time::Duration,
}

/// One instance of a routed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedInstance {
    /// A name that changes with every incarnation (a restarted instance starts with a clean
    /// record in the front door): `<service>-<slot>#<run>` here, `<board>/<address>` elsewhere.
    pub id: String,
    /// Its address.
    pub addr: Ipv4Addr,
    /// The board it runs on; `None` for this board.
    pub board: Option<String>,
    /// Whether it takes requests.
    pub ready: bool,
}
