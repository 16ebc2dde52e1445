//! What the manager hands the scaler: the front door's load per service (instances mapped to
//! their service), its held requests, and its wakes.

use std::sync::Arc;
use std::time::Duration;

use baton_frontdoor::control::protocol::{Held, InstanceLoad};

use super::{Shared, State};
use crate::board::console::Console;
use crate::containers::supervisor::routed::{Routed, RoutedInstance, RoutedService};
use crate::scaling::Scaler;

fn routed(service: &str, ids: &[&str]) -> Routed {
    let mut routed = Routed::default();
    let spec = baton_spec::ServiceSpec::parse(
        "services/web.toml",
        &format!("name = \"{service}\"\nimage = \"oci-archive:x.tar\"\nport = 8080\nroute = {{ host = \"web.lan\" }}\n"),
    )
    .expect("spec");
    routed.services.insert(
        service.to_string(),
        RoutedService {
            route: spec.route.clone().expect("route"),
            port: 8080,
            instances: ids
                .iter()
                .map(|id| RoutedInstance {
                    id: id.to_string(),
                    addr: "10.88.0.2".parse().expect("addr"),
                    board: None,
                    ready: true,
                })
                .collect(),
            hold_queue: 100,
            hold_timeout: Duration::from_secs(30),
        },
    );
    routed
}

#[test]
fn load_and_held_requests_reach_the_scaler_by_service() {
    let console = Arc::new(Console::quiet(16));
    let scaler = Scaler::new(Default::default(), Arc::clone(&console), Arc::default());
    let spec = baton_spec::ServiceSpec::parse(
        "services/web.toml",
        "name = \"web\"\nimage = \"oci-archive:x.tar\"\nport = 8080\nscale = { min = 0 }\n",
    )
    .expect("spec");
    scaler.set_specs(crate::scaling::now_ms(), &[spec]);
    let shared =
        Shared::new(State::Serving, None, console, (80, 0)).with_scaler(Some(Arc::clone(&scaler)));
    shared.retain_totals(&routed("web", &["web-1#1", "pi-b/10.88.1.2"]));
    let load = |id: &str, ms| InstanceLoad {
        id: id.to_string(),
        inflight_now: 1,
        inflight_ms: ms,
        completed: 0,
        failed: 0,
    };
    // An instance the manager does not know (an old id) is not counted for anyone.
    shared.load(
        &[
            load("web-1#1", 30_000),
            load("pi-b/10.88.1.2", 30_000),
            load("old#1", 99_000),
        ],
        &[Held {
            service: "web".into(),
            count: 3,
            oldest_ms: 40,
        }],
    );
    let (_, table) = scaler.table();
    assert_eq!(table.len(), 1, "{table:?}");
    assert_eq!(table[0].held, 3);
    // Once its bucket is over, the load (the requests in flight and the held ones) shows.
    let later = crate::scaling::now_ms() + 2 * baton_cluster::scale::BUCKET_MS;
    scaler.tick(later);
    let (_, table) = scaler.table();
    assert!(table[0].peak > 0, "{table:?}");
    assert_eq!(shared.oldest_held_ms("web"), Some(40));
    // The held requests are gone with the next report; a wake marks one at once.
    shared.load(&[], &[]);
    scaler.tick(later);
    assert_eq!(scaler.table().1[0].held, 0);
    shared.wake("web");
    assert_eq!(scaler.table().1[0].held, 1);
}
