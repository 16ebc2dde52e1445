//! The other boards as the container network sees them, from the gossip: their container
//! subnets, their mesh keys and endpoints, and the addresses of the instances they run.
//!
//! Every board publishes `net` = `<subnet> <WireGuard public key> <port>`. A board is a mesh peer
//! when it is alive, its value parses and its subnet is its own: of two boards claiming one
//! subnet only the one with the smaller name is a peer (the other moves, see [`super::subnet`]),
//! and a board claiming this board's subnet is never one. The endpoint is the board's gossip
//! address with the published port: the gossip is sealed with the cluster key, so keys and
//! endpoints come from boards that hold it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use baton_cluster::gossip::{Member as GossipMember, MemberState};

use super::keys;
use crate::svcnet::mesh::{Peer, PublicKey};
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

/// The `net` value: `<subnet> <public key> <port>`.
pub fn net_value(subnet: Ipv4Net, key: &PublicKey, port: u16) -> String {
    format!("{subnet} {key} {port}")
}

/// Parses a `net` value.
pub fn parse_net(value: &str) -> Option<(Ipv4Net, PublicKey, u16)> {
    let mut parts = value.split_whitespace();
    let subnet = crate::svcnet::subnet::parse(parts.next()?)?;
    let key = parts.next()?.parse().ok()?;
    let port = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((subnet, key, port))
}

/// The subnets alive peers claim (whether or not they are usable as mesh peers), by name.
pub fn claims(members: &[GossipMember]) -> Vec<(String, Ipv4Net)> {
    members
        .iter()
        .filter(|m| m.state == MemberState::Alive)
        .filter_map(|m| {
            let (subnet, _, _) = parse_net(m.values.get(keys::NET)?)?;
            Some((m.name.clone(), subnet))
        })
        .collect()
}

/// The mesh peers among `members`, seen from board `me` with subnet `mine`.
pub fn boards(me: &str, mine: Ipv4Net, members: &[GossipMember]) -> Vec<Board> {
    let mut by_subnet: BTreeMap<Ipv4Net, Board> = BTreeMap::new();
    for m in members {
        if m.state != MemberState::Alive || m.name == me {
            continue;
        }
        let Some((subnet, key, port)) = m.values.get(keys::NET).and_then(|v| parse_net(v)) else {
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
        match by_subnet.get(&subnet) {
            Some(other) if other.name < board.name => {}
            _ => {
                by_subnet.insert(subnet, board);
            }
        }
    }
    by_subnet.into_values().collect()
}

/// One item of a `run` value: `name/slot:phase`, then `@address` for an instance with an
/// address, then `*` when it takes new connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunItem {
    /// The service.
    pub service: String,
    /// The 1-based slot.
    pub slot: u32,
    /// What it does (`running`, `starting`, ...).
    pub phase: String,
    /// Its container address.
    pub address: Option<Ipv4Addr>,
    /// Whether it takes new connections.
    pub ready: bool,
}

impl std::fmt::Display for RunItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.service, self.slot, self.phase)?;
        if let Some(a) = self.address {
            write!(f, "@{a}")?;
            if self.ready {
                f.write_str("*")?;
            }
        }
        Ok(())
    }
}

/// The items of a `run` value; junk items are skipped.
pub fn parse_run(value: &str) -> Vec<RunItem> {
    value
        .split_whitespace()
        .filter_map(|item| {
            let (id, rest) = item.split_once(':')?;
            let (service, slot) = id.rsplit_once('/')?;
            let (phase, address, ready) = match rest.split_once('@') {
                Some((phase, addr)) => {
                    let (addr, ready) = match addr.strip_suffix('*') {
                        Some(a) => (a, true),
                        None => (addr, false),
                    };
                    (phase, Some(addr.parse().ok()?), ready)
                }
                None => (rest, None, false),
            };
            Some(RunItem {
                service: service.to_string(),
                slot: slot.parse().ok()?,
                phase: phase.to_string(),
                address,
                ready,
            })
        })
        .collect()
}

/// The instances the mesh peers `boards` run (service, address, ready), from their `run`
/// values; an address outside the board's own subnet is ignored.
pub fn remote_instances(
    boards: &[Board],
    members: &[GossipMember],
) -> Vec<(String, Ipv4Addr, bool)> {
    let mut out = Vec::new();
    for board in boards {
        let Some(member) = members.iter().find(|m| m.name == board.name) else {
            continue;
        };
        let Some(run) = member.values.get(keys::INSTANCES) else {
            continue;
        };
        for item in parse_run(run) {
            if let Some(addr) = item.address.filter(|a| board.subnet.contains(*a)) {
                out.push((item.service, addr, item.ready));
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
    values: &[(&str, impl AsRef<str>)],
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
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_ref().to_string()))
            .collect(),
        last_heard: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svcnet::subnet::of_slot;

    fn key(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    fn member(name: &str, ip: [u8; 4], alive: bool, values: &[(&str, String)]) -> GossipMember {
        gossip_member(name, SocketAddr::from((ip, 7946)), alive, values)
    }

    #[test]
    fn net_values_round_trip_and_junk_is_refused() {
        let v = net_value(of_slot(7), &key(3), 51820);
        assert_eq!(parse_net(&v), Some((of_slot(7), key(3), 51820)));
        for bad in [
            "",
            "10.88.7.0/24",
            "10.88.7.0/24 notakey 51820",
            "10.1.7.0/24 AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM= 51820",
            &format!("{} 51820 extra", &v[..v.len() - 6]),
        ] {
            assert_eq!(parse_net(bad), None, "{bad}");
        }
    }

    #[test]
    fn peers_are_alive_boards_with_their_own_subnet() {
        let net = |s: u8, k: u8| vec![(keys::NET, net_value(of_slot(s), &key(k), 51820))];
        let members = vec![
            member("a", [192, 0, 2, 1], true, &net(1, 1)),
            member("b", [192, 0, 2, 2], true, &net(2, 2)),
            // Claims b's subnet with a larger name: left out.
            member("c", [192, 0, 2, 3], true, &net(2, 3)),
            // Claims this board's subnet: left out.
            member("d", [192, 0, 2, 4], true, &net(9, 4)),
            member("e", [192, 0, 2, 5], false, &net(5, 5)),
            member("f", [192, 0, 2, 6], true, &[]),
            member(
                "g",
                [192, 0, 2, 7],
                true,
                &[(keys::NET, "junk".to_string())],
            ),
        ];
        let got = boards("me", of_slot(9), &members);
        let names: Vec<&str> = got.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            got[1].endpoint,
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 51820)
        );
        assert_eq!(got[1].peer().allowed, vec![of_slot(2)]);
        let claimed: Vec<String> = claims(&members).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            claimed,
            ["a", "b", "c", "d"],
            "alive boards with a valid value"
        );
    }

    #[test]
    fn run_items_round_trip() {
        let items = [
            RunItem {
                service: "web".into(),
                slot: 2,
                phase: "running".into(),
                address: Some(Ipv4Addr::new(10, 88, 4, 3)),
                ready: true,
            },
            RunItem {
                service: "db".into(),
                slot: 1,
                phase: "running".into(),
                address: Some(Ipv4Addr::new(10, 88, 4, 4)),
                ready: false,
            },
            RunItem {
                service: "x".into(),
                slot: 1,
                phase: "starting".into(),
                address: None,
                ready: false,
            },
        ];
        let text: Vec<String> = items.iter().map(ToString::to_string).collect();
        let text = text.join(" ");
        assert_eq!(
            text,
            "web/2:running@10.88.4.3* db/1:running@10.88.4.4 x/1:starting"
        );
        assert_eq!(parse_run(&text), items);
        assert!(parse_run("a/b:c web/1:running@nope x:1 /:").is_empty());
    }

    #[test]
    fn remote_instances_must_lie_in_their_board_subnet() {
        let b = Board {
            name: "b".into(),
            subnet: of_slot(4),
            key: key(1),
            endpoint: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 51820),
        };
        let members = vec![member(
            "b",
            [192, 0, 2, 2],
            true,
            &[(
                keys::INSTANCES,
                "web/1:running@10.88.4.2* web/2:running@10.88.5.2* db/1:starting".to_string(),
            )],
        )];
        assert_eq!(
            remote_instances(&[b], &members),
            vec![("web".to_string(), Ipv4Addr::new(10, 88, 4, 2), true)]
        );
    }
}
