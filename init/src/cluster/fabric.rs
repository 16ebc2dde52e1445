//! The other boards as the container network sees them, from the gossip: their container
//! subnets, their mesh keys and endpoints, and the addresses of the instances they run.
//!
//! Every board publishes its [`MeshEndpoint`]: its subnet, WireGuard public key and port. A board
//! is a mesh peer when it is alive, its subnet is one of the cluster's and is its own: of two boards claiming one
//! subnet only the keeper by the tenure rule ([`super::tenure`]) is a peer (the other moves),
//! and a board claiming this board's subnet is never one. The endpoint is the board's gossip
//! address with the published port: the gossip is sealed with the cluster key, so keys and
//! endpoints come from boards that hold it.

use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4};

use baton_cluster::gossip::{Member as GossipMember, MemberState, MeshEndpoint};

use crate::svcnet::mesh::{Peer, PublicKey};
use crate::svcnet::network::RemoteInstance;
use crate::svcnet::nft::Ipv4Net;

/// A peer board of the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// Its name.
    pub name: String,
    /// Its container subnet.
    pub subnet: Ipv4Net,
    /// Its mesh public key.
    pub key: PublicKey,
    /// Where its mesh listens.
    pub endpoint: SocketAddrV4,
}

impl Board {
    /// The mesh peer: its subnet is routed to it.
    pub fn peer(&self) -> Peer {
        Peer {
            key: self.key,
            endpoint: self.endpoint,
            allowed: vec![self.subnet],
        }
    }
}

/// This board's end of the mesh as the gossip carries it.
pub fn endpoint(subnet: Ipv4Net, key: &PublicKey, port: u16) -> MeshEndpoint {
    MeshEndpoint {
        subnet: subnet.addr,
        prefix: subnet.prefix,
        key: key.0,
        port,
    }
}

/// A board's end of the mesh: its subnet (when it is one of the cluster's), key and port.
pub fn parse_net(endpoint: &MeshEndpoint) -> Option<(Ipv4Net, PublicKey, u16)> {
    let subnet = Ipv4Net::new(endpoint.subnet, endpoint.prefix);
    crate::svcnet::subnet::slot_of(subnet)?;
    Some((subnet, PublicKey(endpoint.key), endpoint.port))
}

/// The subnets alive peers claim (whether or not they are usable as mesh peers), by name.
pub fn claims(members: &[GossipMember]) -> Vec<(String, Ipv4Net)> {
    members
        .iter()
        .filter(|m| m.state == MemberState::Alive)
        .filter_map(|m| {
            let (subnet, _, _) = parse_net(m.values.net.as_ref()?)?;
            Some((m.name.clone(), subnet))
        })
        .collect()
}

/// The mesh peers among `members`, seen from board `me` with subnet `mine`; `known_since`
/// says since when this board has known a board (the tenure rule's input).
pub fn boards(
    me: &str,
    mine: Ipv4Net,
    members: &[GossipMember],
    known_since: &dyn Fn(&str) -> u64,
) -> Vec<Board> {
    let mut by_subnet: BTreeMap<Ipv4Net, Vec<Board>> = BTreeMap::new();
    for m in members {
        if m.state != MemberState::Alive || m.name == me {
            continue;
        }
        let Some((subnet, key, port)) = m.values.net.as_ref().and_then(parse_net) else {
            continue;
        };
        let SocketAddr::V4(gossip) = m.addr else {
            continue;
        };
        if subnet == mine {
            continue;
        }
        let board = Board {
            name: m.name.clone(),
            subnet,
            key,
            endpoint: SocketAddrV4::new(*gossip.ip(), port),
        };
        by_subnet.entry(subnet).or_default().push(board);
    }
    by_subnet
        .into_values()
        .filter_map(|mut claimants| {
            let keeper = super::tenure::keeper(
                &claimants
                    .iter()
                    .map(|b| super::tenure::Claimant {
                        name: &b.name,
                        known_since_ms: known_since(&b.name),
                    })
                    .collect::<Vec<_>>(),
            )?
            .to_owned();
            let at = claimants.iter().position(|b| b.name == keeper)?;
            Some(claimants.swap_remove(at))
        })
        .collect()
}

/// The instances the mesh peers `boards` run, from their values; an address outside the
/// board's own subnet is ignored.
pub fn remote_instances(boards: &[Board], members: &[GossipMember]) -> Vec<RemoteInstance> {
    let mut out = Vec::new();
    for board in boards {
        let Some(member) = members.iter().find(|m| m.name == board.name) else {
            continue;
        };
        for (service, instances) in &member.values.instances {
            for instance in instances {
                if let Some(addr) = instance.address.filter(|a| board.subnet.contains(*a)) {
                    out.push(RemoteInstance {
                        service: service.clone(),
                        addr,
                        ready: instance.ready,
                        board: board.name.clone(),
                    });
                }
            }
        }
    }
    out.sort();
    out
}

/// A peer as the gossip lists it, for tests.
#[cfg(test)]
pub(super) fn gossip_member(
    name: &str,
    addr: SocketAddr,
    alive: bool,
    values: baton_cluster::gossip::BoardValues,
) -> GossipMember {
    GossipMember {
        name: name.to_string(),
        addr,
        generation: 1,
        state: if alive {
            MemberState::Alive
        } else {
            MemberState::Dead
        },
        values,
        values_error: None,
        signed_by: None,
        last_heard: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svcnet::subnet::of_slot;
    use baton_api::InstancePhase;
    use baton_cluster::gossip::{BoardValues, RunningInstance};
    use std::net::Ipv4Addr;

    fn key(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    fn member(name: &str, ip: [u8; 4], alive: bool, values: BoardValues) -> GossipMember {
        gossip_member(name, SocketAddr::from((ip, 7946)), alive, values)
    }

    fn net(subnet: Ipv4Net, k: u8) -> BoardValues {
        BoardValues {
            net: Some(endpoint(subnet, &key(k), 51820)),
            ..BoardValues::default()
        }
    }

    #[test]
    fn mesh_endpoints_round_trip_and_foreign_subnets_are_refused() {
        let e = endpoint(of_slot(7), &key(3), 51820);
        assert_eq!(parse_net(&e), Some((of_slot(7), key(3), 51820)));
        for bad in [
            Ipv4Net::new(Ipv4Addr::new(10, 1, 7, 0), 24),
            Ipv4Net::new(Ipv4Addr::new(10, 88, 7, 0), 16),
            crate::svcnet::subnet::STANDALONE,
        ] {
            assert_eq!(parse_net(&endpoint(bad, &key(3), 51820)), None, "{bad}");
        }
    }

    #[test]
    fn peers_are_alive_boards_with_their_own_subnet() {
        let members = vec![
            member("a", [192, 0, 2, 1], true, net(of_slot(1), 1)),
            member("b", [192, 0, 2, 2], true, net(of_slot(2), 2)),
            // Claims b's subnet with a larger name: left out.
            member("c", [192, 0, 2, 3], true, net(of_slot(2), 3)),
            // Claims this board's subnet: left out.
            member("d", [192, 0, 2, 4], true, net(of_slot(9), 4)),
            member("e", [192, 0, 2, 5], false, net(of_slot(5), 5)),
            member("f", [192, 0, 2, 6], true, BoardValues::default()),
            member(
                "g",
                [192, 0, 2, 7],
                true,
                net(Ipv4Net::new(Ipv4Addr::new(10, 1, 7, 0), 24), 7),
            ),
        ];
        let got = boards("me", of_slot(9), &members, &|_| 0);
        let names: Vec<&str> = got.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            got[1].endpoint,
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 51820)
        );
        assert_eq!(got[1].peer().allowed, vec![of_slot(2)]);
        // Known longer, c keeps slot 2 whatever its name.
        let since = |name: &str| {
            if name == "c" {
                0
            } else {
                10 * super::super::tenure::GRACE_MS
            }
        };
        let got = boards("me", of_slot(9), &members, &since);
        let names: Vec<&str> = got.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        let claimed: Vec<String> = claims(&members).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            claimed,
            ["a", "b", "c", "d"],
            "alive boards with a valid value"
        );
    }

    #[test]
    fn remote_instances_must_lie_in_their_board_subnet() {
        let b = Board {
            name: "b".into(),
            subnet: of_slot(4),
            key: key(1),
            endpoint: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 51820),
        };
        let instance = |slot, phase, address: Option<[u8; 4]>, ready| RunningInstance {
            slot,
            phase,
            address: address.map(Ipv4Addr::from),
            ready,
        };
        let values = BoardValues {
            instances: [
                (
                    "web".to_string(),
                    vec![
                        instance(1, InstancePhase::Running, Some([10, 88, 4, 2]), true),
                        instance(2, InstancePhase::Running, Some([10, 88, 5, 2]), true),
                    ],
                ),
                (
                    "db".to_string(),
                    vec![instance(1, InstancePhase::Starting, None, false)],
                ),
            ]
            .into_iter()
            .collect(),
            ..BoardValues::default()
        };
        let members = vec![member("b", [192, 0, 2, 2], true, values)];
        assert_eq!(
            remote_instances(&[b], &members),
            vec![RemoteInstance {
                service: "web".to_string(),
                addr: Ipv4Addr::new(10, 88, 4, 2),
                ready: true,
                board: "b".to_string(),
            }]
        );
    }
}
