//! The identity provider link (docs/design/front-door.md sections 5.2 and 5.4): the key set of
//! `jwks_url` and the discovery document, fetched by the front door ([`fetch`]), reported to the
//! init, which keeps them on `/data` and hands them back in every snapshot.
//!
//! The keys a bearer token is checked against are the card's `jwks` and the fetched set
//! together. The fetched set is the front door's own last good fetch, or, until it has one, the
//! copy the snapshot brings from the init's cache: so valid tokens pass while the provider is
//! down, after a restart of the front door or a reboot of the board, as long as one fetch ever
//! succeeded. A failed fetch never replaces a good set.
//!
//! [`Idp::unknown_kid`] is the request side of the refetch on an unknown `kid` ([`gate`]).

pub mod discovery;
pub mod fetch;
pub mod gate;

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use crate::config::model::OidcSettings;
use crate::identity::Keys;
pub use discovery::Discovery;
use gate::{Decision, Gate};

/// How often the fetches run, and how long requests wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Between two fetches that went well (Envoy's default cache time).
    pub refresh: Duration,
    /// After a failed fetch, the first wait; it doubles up to `refresh`.
    pub retry: Duration,
    /// How long a request with an unknown `kid` waits for the refetch.
    pub wait: Duration,
    /// How long one fetch may take, whole.
    pub fetch_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            refresh: Duration::from_secs(600),
            retry: Duration::from_secs(30),
            wait: Duration::from_secs(2),
            fetch_timeout: crate::outbound::TIMEOUT,
        }
    }
}

/// What to fetch, from the snapshot's `[front_door.oidc]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The issuer (the discovery document is under it).
    pub issuer: String,
    /// The key set's URL.
    pub jwks_url: Option<String>,
    /// Fetch the discovery document (a browser sign-in is configured).
    pub discover: bool,
    /// CA certificates trusted besides Mozilla's roots, PEM.
    pub ca_pem: Option<String>,
}

/// Where the fetched key set in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The init's cache, through the snapshot.
    Cache,
    /// A fetch of this process.
    Fetch,
}

#[derive(Debug, Default)]
struct Inner {
    source: Option<Source>,
    card: Keys,
    fetched: Option<(Origin, Keys)>,
    discovery: Option<(Origin, Arc<Discovery>)>,
    jwks_error: Option<String>,
    discovery_error: Option<String>,
    fetches: u64,
}

/// The provider's keys and endpoints as this front door knows them.
#[derive(Debug)]
pub struct Idp {
    inner: Mutex<Inner>,
    /// The union of the card's and the fetched keys, read by every request.
    keys: RwLock<Arc<Keys>>,
    source: watch::Sender<Option<Source>>,
    timing: Mutex<Timing>,
    gate: Mutex<Gate>,
    kick: Notify,
    /// Raised when a refetch for an unknown `kid` ends.
    done: watch::Sender<u64>,
}

impl Default for Idp {
    fn default() -> Idp {
        Idp::new()
    }
}

impl Idp {
    /// An empty link: no keys, nothing to fetch.
    pub fn new() -> Idp {
        Idp {
            inner: Mutex::new(Inner::default()),
            keys: RwLock::new(Arc::new(Keys::default())),
            source: watch::channel(None).0,
            timing: Mutex::new(Timing::default()),
            gate: Mutex::new(Gate::default()),
            kick: Notify::new(),
            done: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets how often the fetches run (tests; before [`fetch::spawn`]).
    pub fn set_timing(&self, timing: Timing) {
        *self.timing.lock().unwrap_or_else(|p| p.into_inner()) = timing;
    }

    /// The timing in force.
    pub fn timing(&self) -> Timing {
        *self.timing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a snapshot's provider settings (`None`: no provider) with the card's keys, as
    /// read by the snapshot's apply; returns notes on cached documents that are not used.
    pub fn configure(&self, settings: Option<&OidcSettings>, card: Keys) -> Vec<String> {
        let mut notes = Vec::new();
        let source = settings.map(|o| Source {
            issuer: o.issuer.clone(),
            jwks_url: o.jwks_url.clone(),
            discover: o.discover,
            ca_pem: o.ca_pem.clone(),
        });
        {
            let mut inner = self.lock();
            let same_place = |a: &Option<Source>, b: &Option<Source>| {
                a.as_ref().map(|s| (&s.issuer, &s.jwks_url))
                    == b.as_ref().map(|s| (&s.issuer, &s.jwks_url))
            };
            if !same_place(&inner.source, &source) {
                // Another provider or URL: what was fetched from the old one goes.
                inner.fetched = None;
                inner.discovery = None;
            }
            inner.card = card;
            if let Some(o) = settings {
                adopt_cache(&mut inner, o, &mut notes);
            }
            inner.source = source.clone();
        }
        self.rebuild_keys();
        self.source.send_if_modified(|current| {
            let changed = *current != source;
            *current = source;
            changed
        });
        notes
    }

    /// The keys tokens are checked against now.
    pub fn keys(&self) -> Arc<Keys> {
        Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The discovery document in use, if any.
    pub fn discovery(&self) -> Option<Arc<Discovery>> {
        self.lock().discovery.as_ref().map(|(_, d)| Arc::clone(d))
    }

    /// Where the fetched key set in use came from, if there is one.
    pub fn fetched_origin(&self) -> Option<Origin> {
        self.lock().fetched.as_ref().map(|(origin, _)| *origin)
    }

    /// Why the last fetch of the key set, or else of the discovery document, failed, until
    /// one of that document goes well.
    pub fn last_error(&self) -> Option<String> {
        let inner = self.lock();
        inner
            .jwks_error
            .clone()
            .or_else(|| inner.discovery_error.clone())
    }

    /// Fetches that went well.
    pub fn fetches(&self) -> u64 {
        self.lock().fetches
    }

    /// A token named a `kid` the keys lack: starts or joins the refetch (at most one a minute)
    /// and waits for it up to [`Timing::wait`]. `true` when a refetch ended meanwhile (check the
    /// token again); `false` at once when there is no URL or a refetch ran less than a minute
    /// ago.
    pub async fn unknown_kid(&self) -> bool {
        if self
            .lock()
            .source
            .as_ref()
            .is_none_or(|s| s.jwks_url.is_none())
        {
            return false;
        }
        let mut done = self.done.subscribe();
        let decision = self
            .gate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ask(Instant::now());
        match decision {
            Decision::Refuse => return false,
            Decision::Start => self.kick.notify_one(),
            Decision::Join => {}
        }
        let wait = self.timing().wait;
        matches!(tokio::time::timeout(wait, done.changed()).await, Ok(Ok(())))
    }

    /// The union of the card's keys and the fetched ones.
    fn rebuild_keys(&self) {
        let union = {
            let inner = self.lock();
            let mut keys = inner.card.clone();
            if let Some((_, fetched)) = &inner.fetched {
                keys.keys.extend(fetched.keys.iter().cloned());
                keys.skipped.extend(fetched.skipped.iter().cloned());
            }
            keys
        };
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(union);
    }

    /// A key set fetched from `url` (still the configured one) is in force.
    fn fetched_keys(&self, url: &str, keys: Keys) -> bool {
        {
            let mut inner = self.lock();
            let current = inner.source.as_ref().and_then(|s| s.jwks_url.as_deref());
            if current != Some(url) {
                return false;
            }
            inner.fetched = Some((Origin::Fetch, keys));
            inner.jwks_error = None;
            inner.fetches += 1;
        }
        self.rebuild_keys();
        true
    }

    /// A discovery document fetched for `issuer` (still the configured one) is in force.
    fn fetched_discovery(&self, issuer: &str, found: Discovery) -> bool {
        let mut inner = self.lock();
        if inner.source.as_ref().map(|s| s.issuer.as_str()) != Some(issuer) {
            return false;
        }
        inner.discovery = Some((Origin::Fetch, Arc::new(found)));
        inner.discovery_error = None;
        inner.fetches += 1;
        true
    }

    fn failed(&self, kind: crate::control::protocol::Fetched, why: String) {
        use crate::control::protocol::Fetched;
        let mut inner = self.lock();
        match kind {
            Fetched::Jwks => inner.jwks_error = Some(why),
            Fetched::Discovery => inner.discovery_error = Some(why),
        }
    }

    /// A refetch for an unknown `kid` ended: the waiting requests look again.
    fn refetch_done(&self) {
        self.gate.lock().unwrap_or_else(|p| p.into_inner()).done();
        self.done.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Takes the snapshot's cached key set and discovery document while this process has fetched
/// none of its own (its own are newer than any the init kept).
fn adopt_cache(inner: &mut Inner, o: &OidcSettings, notes: &mut Vec<String>) {
    if !matches!(inner.fetched, Some((Origin::Fetch, _))) {
        inner.fetched = None;
        if let (Some(_), Some(cached)) = (&o.jwks_url, &o.jwks_cached) {
            match Keys::parse(cached) {
                Ok(keys) => inner.fetched = Some((Origin::Cache, keys)),
                Err(e) => notes.push(format!("the cached key set is not used: {e}")),
            }
        }
    }
    if !matches!(inner.discovery, Some((Origin::Fetch, _))) {
        inner.discovery = None;
        if let (true, Some(cached)) = (o.discover, &o.discovery) {
            match cached.check(&o.issuer) {
                Ok(()) => inner.discovery = Some((Origin::Cache, Arc::new(cached.clone()))),
                Err(e) => notes.push(format!("the cached discovery document is not used: {e}")),
            }
        }
    }
}
