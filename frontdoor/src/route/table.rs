//! The route table of one snapshot: built once when the snapshot arrives, then only read (the
//! caller shares it behind an `Arc`, so requests look routes up without a lock).
//!
//! A lookup picks a host class, then the longest path prefix in it:
//! 1. the routes of exactly the request's host,
//! 2. the routes of `*.suffix` where the host is one label more than `suffix` (as a wildcard
//!    certificate covers it: `a.apps.lan` is under `*.apps.lan`, `b.a.apps.lan` and `apps.lan`
//!    are not),
//! 3. the routes with no host.
//!
//! When a class has routes for the host but none of their prefixes matches the path, the
//! lookup falls through to the next class: `shop.lan` with only `/api` and a host-less `/`
//! sends `shop.lan/x` to the host-less route. The alternative (404 as soon as the host is
//! known) would make a host-less catch-all silently stop covering a host once any route names
//! it.
//!
//! The cost is one hash lookup per path segment and class, with no allocation.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::config::Route;

/// Path prefixes of one host class, each to its route's index.
#[derive(Debug, Default)]
struct Prefixes(HashMap<Box<str>, usize>);

impl Prefixes {
    /// The route of the longest prefix of `path` on a segment boundary: `path` itself, then
    /// `path` cut before each `/` from the right, then `/`.
    fn longest(&self, path: &str) -> Option<usize> {
        let mut prefix = path;
        loop {
            if let Some(&index) = self.0.get(prefix) {
                return Some(index);
            }
            prefix = match prefix.rfind('/') {
                Some(0) if prefix.len() > 1 => "/",
                Some(cut) if cut > 0 => &prefix[..cut],
                _ => return None,
            };
        }
    }
}

/// The routes of one snapshot, ready for lookups.
#[derive(Debug, Default)]
pub struct Table {
    routes: Vec<Route>,
    /// By exact host.
    exact: HashMap<Box<str>, Prefixes>,
    /// By the suffix of a `*.suffix` host (without `*.`).
    wildcard: HashMap<Box<str>, Prefixes>,
    /// Routes with no host.
    any: Prefixes,
}

impl Table {
    /// The table of a snapshot's routes, already checked ([`crate::config::Snapshot::check`]):
    /// normalised hosts and paths, no two routes with the same host and path (if there were,
    /// the first would be kept).
    pub fn new(routes: &[Route]) -> Table {
        let mut table = Table {
            routes: routes.to_vec(),
            ..Table::default()
        };
        for (index, route) in routes.iter().enumerate() {
            let class = match route.host.as_deref() {
                None => &mut table.any,
                Some(host) => match host.strip_prefix("*.") {
                    Some(suffix) => table.wildcard.entry(suffix.into()).or_default(),
                    None => table.exact.entry(host.into()).or_default(),
                },
            };
            class.0.entry(route.path.as_str().into()).or_insert(index);
        }
        table
    }

    /// The route for a request: `host` as [`super::normalize::host`] returns it, `path` the
    /// [`super::Normal::match_path`]. A host with a port, an IP literal, or empty finds
    /// host-less routes only (route hosts are names).
    pub fn find(&self, host: &str, path: &str) -> Option<&Route> {
        self.find_index(host, path).map(|i| &self.routes[i])
    }

    /// As [`Table::find`], the route's index in the list the table was built from.
    pub fn find_index(&self, host: &str, path: &str) -> Option<usize> {
        let named = !host.is_empty()
            && !host.contains([':', '[', ']'])
            && host.parse::<Ipv4Addr>().is_err();
        if named {
            if let Some(index) = self.exact.get(host).and_then(|p| p.longest(path)) {
                return Some(index);
            }
            let wildcard = host
                .split_once('.')
                .filter(|(label, suffix)| !label.is_empty() && !suffix.is_empty())
                .and_then(|(_, suffix)| self.wildcard.get(suffix))
                .and_then(|p| p.longest(path));
            if wildcard.is_some() {
                return wildcard;
            }
        }
        self.any.longest(path)
    }

    /// The routes, in the order the table was built from.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}
