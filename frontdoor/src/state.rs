//! What every connection shares: the configuration in force (swapped whole when a snapshot
//! arrives, read without waiting by every request), the instances and their load, held
//! requests, idle upstream connections and the per-client request rate.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use crate::access::AccessLog;
use crate::config::model::Refused;
use crate::config::{Service, Settings, Snapshot};
use crate::control::protocol::Instance;
use crate::hold::Holds;
use crate::http::rate::RequestRate;
use crate::proxy::pool::Pool;
use crate::route::table::Table;
use crate::tls::certs::HostMap;
use crate::upstream::balance::Balancer;

/// The configuration in force.
#[derive(Debug)]
pub struct Active {
    /// The snapshot's generation (0 before the first).
    pub generation: u64,
    /// The settings.
    pub settings: Settings,
    /// The routes, ready for lookups.
    pub table: Table,
    /// The services routes lead to.
    pub services: BTreeMap<String, Service>,
    /// The identity provider's keys and settings for `auth = "oidc"` routes.
    pub oidc: Option<Oidc>,
    /// The signer of `X-Baton-Identity` (a board in a cluster).
    pub assertion: Option<Arc<crate::identity::assertion::Signer>>,
    /// The client CA and the names of `auth = "mtls"` routes; `None` when there are no such
    /// routes or no usable CA (they answer 503 then).
    pub mtls: Option<crate::tls::mtls::Mtls>,
    /// Browser sign-in for `auth = "login"` routes.
    pub login: Option<crate::identity::login::Login>,
}

/// What checking a bearer token needs, read once per snapshot.
#[derive(Debug)]
pub struct Oidc {
    /// The provider's keys.
    pub keys: crate::identity::Keys,
    /// A token's `iss`.
    pub issuer: String,
    /// The `aud` a token must carry.
    pub audience: String,
    /// Clock difference allowed, in seconds.
    pub leeway_s: u64,
}

/// The shared state of one front door.
#[derive(Debug)]
pub struct State {
    active: RwLock<Arc<Active>>,
    certs: RwLock<Arc<HostMap>>,
    rate: RwLock<Arc<RequestRate>>,
    /// Instances and their load.
    pub balancer: Balancer,
    /// Requests waiting for an instance.
    pub holds: Holds,
    /// Idle connections to instances.
    pub pool: Pool,
    /// Access lines for the init.
    pub access: AccessLog,
    /// Requests by service, status and time taken.
    pub tally: crate::tally::Tally,
    /// The identity provider's keys and endpoints, fetched and cached ([`crate::idp`]).
    pub idp: Arc<crate::idp::Idp>,
    /// Places for sign-in code exchanges under way at once (on all hosts).
    pub exchanges: tokio::sync::Semaphore,
}

/// Clients whose request rate is remembered, at least.
const MIN_RATE_CLIENTS: usize = 1024;

impl State {
    /// An empty front door (no route: every request gets 404); wake-ups of held services go to
    /// `wake`.
    pub fn new(wake: mpsc::Sender<String>) -> State {
        let settings = Settings::default();
        State {
            rate: RwLock::new(Arc::new(rate_for(&settings))),
            certs: RwLock::new(Arc::new(HostMap::default())),
            active: RwLock::new(Arc::new(Active {
                generation: 0,
                table: Table::new(&[]),
                settings,
                services: BTreeMap::new(),
                oidc: None,
                assertion: None,
                mtls: None,
                login: None,
            })),
            balancer: Balancer::new(),
            holds: Holds::new(wake),
            pool: Pool::new(),
            access: AccessLog::default(),
            tally: Default::default(),
            idp: Arc::new(crate::idp::Idp::new()),
            exchanges: tokio::sync::Semaphore::new(crate::proxy::login::MAX_EXCHANGES),
        }
    }

    /// The configuration in force.
    pub fn active(&self) -> Arc<Active> {
        Arc::clone(&self.active.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The certificates in force.
    pub fn certs(&self) -> Arc<HostMap> {
        Arc::clone(&self.certs.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The per-client request rate.
    pub fn rate(&self) -> Arc<RequestRate> {
        Arc::clone(&self.rate.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts `snapshot` in force, or refuses it whole (the one in force stays). The notes name
    /// certificates that could not be used (the others are).
    pub fn apply(&self, generation: u64, snapshot: Snapshot) -> Result<Vec<String>, Refused> {
        snapshot.check()?;
        let Snapshot {
            settings,
            routes,
            services,
            certs,
            oidc,
            instances,
            assertion,
            mtls,
            login,
        } = snapshot;
        let (certs, mut notes) = HostMap::build(&certs);
        let link = oidc.clone();
        let login = login.map(|l| {
            let ca = link.as_ref().and_then(|o| o.ca_pem.as_deref());
            let (login, more) = crate::identity::login::Login::new(l, ca);
            notes.extend(more);
            login
        });
        let oidc = oidc.and_then(|o| match card_keys(&o) {
            Ok(keys) => {
                for skipped in &keys.skipped {
                    notes.push(format!(
                        "the identity provider's key {skipped:?} is not used"
                    ));
                }
                Some(Oidc {
                    keys,
                    issuer: o.issuer,
                    audience: o.audience,
                    leeway_s: o.leeway_s,
                })
            }
            Err(e) => {
                notes.push(format!(
                    "the identity provider's key set cannot be used ({e}): oidc routes answer 503"
                ));
                None
            }
        });
        let card = oidc.as_ref().map(|o| o.keys.clone()).unwrap_or_default();
        notes.extend(
            self.idp
                .configure(link.as_ref().filter(|_| oidc.is_some()), card),
        );
        let assertion = assertion.and_then(|key| signer(&key, &mut notes));
        let mtls = client_auth(&routes, mtls.as_ref(), &mut notes);
        *self.certs.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(certs);
        let old = self.active();
        if rate_settings(&old.settings) != rate_settings(&settings) || old.generation == 0 {
            *self.rate.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rate_for(&settings));
        }
        self.balancer.retain_services(services.keys());
        let active = Active {
            generation,
            table: Table::new(&routes),
            settings,
            services,
            oidc,
            assertion,
            mtls,
            login,
        };
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(active);
        for (service, list) in instances {
            self.set_instances(&service, list);
        }
        Ok(notes)
    }

    /// Replaces the instances of `service`, and lets its held requests look again. Ignored
    /// (`false`) for a service the configuration in force does not have (the list belongs to a
    /// snapshot not applied) or one past the balancer's bound.
    pub fn set_instances(&self, service: &str, instances: Vec<Instance>) -> bool {
        if !self.active().services.contains_key(service) {
            return false;
        }
        if self.balancer.set(service, instances).is_err() {
            return false;
        }
        self.holds.notify(service);
        true
    }
}

/// The card's key set: none when the card has no `jwks` file; an unreadable one is an error
/// only when there is no `jwks_url` to fall back on (then oidc routes answer 503).
fn card_keys(
    o: &crate::config::model::OidcSettings,
) -> Result<crate::identity::Keys, crate::identity::jwk::JwksError> {
    if o.jwks.is_empty() {
        return Ok(crate::identity::Keys::default());
    }
    match crate::identity::Keys::parse(&o.jwks) {
        Err(e) if o.jwks_url.is_some() => {
            eprintln!(
                "baton-front-door: the card's key set is not used ({e}); only the fetched one is"
            );
            Ok(crate::identity::Keys::default())
        }
        other => other,
    }
}

/// The signer of `X-Baton-Identity`, or a note why the key cannot be used (no assertion is
/// set then; the identity headers still are).
fn signer(
    key: &crate::config::model::AssertionKey,
    notes: &mut Vec<String>,
) -> Option<Arc<crate::identity::assertion::Signer>> {
    match crate::identity::assertion::Signer::new(key) {
        Ok(signer) => Some(Arc::new(signer)),
        Err(e) => {
            notes.push(format!(
                "the identity assertion key cannot be used ({e}): no X-Baton-Identity is set"
            ));
            None
        }
    }
}

/// The client-certificate side of `routes`: `None` when no route has `auth = "mtls"`, or
/// (with a note) when the client CA is missing or unusable, so those routes fail closed.
fn client_auth(
    routes: &[crate::config::Route],
    settings: Option<&crate::config::model::MtlsSettings>,
    notes: &mut Vec<String>,
) -> Option<crate::tls::mtls::Mtls> {
    use crate::tls::mtls;
    let hosts = mtls::Hosts::of(routes);
    if hosts.is_empty() {
        return None;
    }
    let Some(settings) = settings else {
        notes.push("mtls routes have no client CA: they answer 503".into());
        return None;
    };
    match mtls::verifier(&settings.ca_pem) {
        Ok(verifier) => Some(mtls::Mtls { verifier, hosts }),
        Err(e) => {
            notes.push(format!(
                "the client CA cannot be used ({e}): mtls routes answer 503"
            ));
            None
        }
    }
}

fn rate_settings(s: &Settings) -> (u32, u32, u32) {
    (s.per_client_rate, s.per_client_burst, s.max_connections)
}

fn rate_for(s: &Settings) -> RequestRate {
    let clients = usize::try_from(s.max_connections)
        .unwrap_or(usize::MAX)
        .saturating_mul(2)
        .max(MIN_RATE_CLIENTS);
    RequestRate::new(s.per_client_rate, s.per_client_burst, clients)
}
