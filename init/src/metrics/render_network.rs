//! The cluster and network families: members, gossip drops, the rule set, the mesh to the other
//! boards, and the board's own listeners.

use super::render::{gauges, one, tally, whole, Labels};
use super::Snapshot;
use prometheus_client::registry::Registry;

/// Registers the cluster and network families of `s`.
pub(super) fn network(r: &mut Registry, s: &Snapshot) {
    r.register(
        "cluster_members",
        "Cluster members this board sees, by state",
        whole(s.members.iter().map(|(state, n)| (one("state", state), *n))),
    );
    r.register(
        "gossip_datagrams_dropped",
        "Gossip datagrams this board dropped, by reason",
        tally(
            s.gossip_drops
                .iter()
                .map(|(reason, n)| (one("reason", reason), *n)),
        ),
    );
    if let Some(generation) = s.network_generation {
        r.register(
            "network_generation",
            "Generation of the services' rule set in force",
            whole([(Vec::new(), generation)]),
        );
    }
    if let Some(mesh) = &s.mesh {
        r.register(
            "mesh_up",
            "Whether the WireGuard mesh to the other boards is up",
            whole([(Vec::new(), u64::from(mesh.up))]),
        );
        let peer = |board: &str| one("peer", board);
        r.register(
            "mesh_handshake_age_seconds",
            "Seconds since the last WireGuard handshake with a board (absent: never)",
            gauges(
                mesh.peers
                    .iter()
                    .filter_map(|p| p.handshake_age_seconds.map(|age| (peer(&p.board), age))),
            ),
        );
        r.register(
            "mesh_received_bytes",
            "Bytes received from a board over the mesh",
            tally(
                mesh.peers
                    .iter()
                    .filter_map(|p| Some((peer(&p.board), p.bytes?.0))),
            ),
        );
        r.register(
            "mesh_sent_bytes",
            "Bytes sent to a board over the mesh",
            tally(
                mesh.peers
                    .iter()
                    .filter_map(|p| Some((peer(&p.board), p.bytes?.1))),
            ),
        );
    }
    let listener = |l: &super::snapshot::Listener| one("listener", &l.name);
    r.register(
        "listener_connections",
        "Connections open now on one of the board's listeners",
        whole(s.listeners.iter().map(|l| (listener(l), l.open))),
    );
    r.register(
        "listener_refused",
        "Connections a listener closed at once, by reason (full, per_source, rate)",
        tally(s.listeners.iter().flat_map(|l| {
            l.refused.iter().map(|(reason, n)| {
                let labels: Labels = vec![("listener", l.name.clone()), ("reason", reason.clone())];
                (labels, *n)
            })
        })),
    );
    r.register(
        "listener_accept_errors",
        "Failed accept calls of a listener",
        tally(s.listeners.iter().map(|l| (listener(l), l.accept_errors))),
    );
}
