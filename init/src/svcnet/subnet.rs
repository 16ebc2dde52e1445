//! Each board's own container subnet: one `/24` of [`CONTAINERS`], so that an instance's address
//! says which board it runs on and the mesh can route it there.
//!
//! A board takes the slot its name hashes to, the first time it starts in a cluster, and keeps
//! it on the data partition (`/data/cluster/subnet`), so its containers keep their addresses
//! across reboots. Two boards whose names hash to the same slot find out from the gossip (every
//! board publishes its subnet): which one keeps it is the cluster's tenure rule
//! (`cluster::tenure`); the other takes the next slot nobody uses and restarts, before its
//! containers have talked to anyone if the two boards met while forming the cluster.

use std::net::Ipv4Addr;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::board::console::Console;
use crate::svcnet::nft::Ipv4Net;

/// All container subnets of a cluster: `10.88.0.0/16`.
pub const CONTAINERS: Ipv4Net = Ipv4Net {
    addr: Ipv4Addr::new(10, 88, 0, 0),
    prefix: 16,
};

/// The subnet of a board that is not in a cluster.
pub const STANDALONE: Ipv4Net = Ipv4Net {
    addr: Ipv4Addr::new(10, 88, 0, 0),
    prefix: 24,
};

/// The file under the cluster state directory holding the board's subnet.
pub const FILE: &str = "subnet";

/// Slots are `1..=254`: `10.88.0.0/24` is the standalone subnet and `10.88.255.0/24` is left free.
const SLOTS: u8 = 254;

/// The subnet of slot `slot`.
pub fn of_slot(slot: u8) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, 88, slot, 0), 24)
}

/// The slot of a cluster subnet, if `net` is one.
pub fn slot_of(net: Ipv4Net) -> Option<u8> {
    let [a, b, c, d] = net.addr.octets();
    ((a, b, d, net.prefix) == (10, 88, 0, 24) && (1..=SLOTS).contains(&c)).then_some(c)
}

/// The slot `board` hashes to.
pub fn preferred_slot(board: &str) -> u8 {
    let digest = Sha256::digest(board.as_bytes());
    let n = u16::from_be_bytes([digest[0], digest[1]]);
    // 1..=254
    (n % u16::from(SLOTS)) as u8 + 1
}

/// Parses `10.88.X.0/24` (a cluster subnet), as files and the gossip carry it.
pub fn parse(text: &str) -> Option<Ipv4Net> {
    let (addr, prefix) = text.trim().split_once('/')?;
    let net = Ipv4Net::new(addr.parse().ok()?, prefix.parse().ok()?);
    slot_of(net).map(|_| net)
}

/// The board's subnet: the one saved under `state_dir`, else the slot its name hashes to (saved
/// for the next boot). Without a data partition the hashed slot is used every time. A saved
/// file that is not a subnet, or a choice that cannot be saved, is reported on `console`.
pub fn load_or_choose(state_dir: Option<&Path>, board: &str, console: &Console) -> Ipv4Net {
    let Some(dir) = state_dir else {
        return of_slot(preferred_slot(board));
    };
    let path = dir.join(FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        match parse(&text) {
            Some(net) => return net,
            None => console.line(format_args!(
                "cluster: {}: not a container subnet ({:?}); choosing again",
                path.display(),
                text.trim()
            )),
        }
    }
    let net = of_slot(preferred_slot(board));
    if let Err(e) = save(dir, net) {
        console.line(format_args!("cluster: saving the container subnet: {e}"));
    }
    net
}

/// Saves `net` as the board's subnet under `dir`.
pub fn save(dir: &Path, net: Ipv4Net) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::board::persist::write_atomic(&dir.join(FILE), format!("{net}\n").as_bytes())
}

/// What a board does about its subnet, given the subnets `peers` (name, subnet) publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nobody else uses it, or this board keeps it.
    Keep,
    /// Another board keeps it: this one moves to the given one, the first free slot after its
    /// own.
    Move(Ipv4Net),
    /// Every slot is taken.
    Full,
}

/// What a board with subnet `mine` does, given whether it `keeps` it and the subnets `peers`
/// (name, subnet) publish.
pub fn verdict<'a>(
    mine: Ipv4Net,
    keeps: bool,
    peers: impl IntoIterator<Item = (&'a str, Ipv4Net)>,
) -> Verdict {
    if keeps {
        return Verdict::Keep;
    }
    let taken: std::collections::BTreeSet<u8> =
        peers.into_iter().filter_map(|(_, n)| slot_of(n)).collect();
    let start = slot_of(mine).unwrap_or(1);
    (1..=SLOTS)
        .map(|k| ((u16::from(start) - 1 + u16::from(k)) % u16::from(SLOTS)) as u8 + 1)
        .find(|s| !taken.contains(s))
        .map_or(Verdict::Full, |s| Verdict::Move(of_slot(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_stable_and_in_range() {
        for name in ["board1", "board2", "pi-kitchen", "", "x"] {
            let slot = preferred_slot(name);
            assert!((1..=254).contains(&slot), "{name}: {slot}");
            assert_eq!(slot, preferred_slot(name));
        }
        assert_ne!(preferred_slot("board1"), preferred_slot("board2"));
    }

    #[test]
    fn parse_accepts_only_cluster_subnets() {
        assert_eq!(parse("10.88.7.0/24\n"), Some(of_slot(7)));
        for bad in [
            "10.88.0.0/24",
            "10.88.255.0/24",
            "10.88.7.1/24",
            "10.88.7.0/16",
            "10.89.7.0/24",
            "junk",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_choice_is_saved_and_a_saved_one_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = load_or_choose(Some(dir.path()), "board1", &Console::quiet(10));
        assert_eq!(first, of_slot(preferred_slot("board1")));
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE)).expect("saved"),
            format!("{first}\n")
        );
        save(dir.path(), of_slot(200)).expect("save");
        assert_eq!(
            load_or_choose(Some(dir.path()), "board1", &Console::quiet(10)),
            of_slot(200)
        );
        std::fs::write(dir.path().join(FILE), "garbage").expect("write");
        assert_eq!(
            load_or_choose(Some(dir.path()), "board1", &Console::quiet(10)),
            first
        );
    }

    #[test]
    fn a_board_that_does_not_keep_its_subnet_moves_to_the_next_free_one() {
        let s = of_slot(9);
        assert_eq!(verdict(s, false, [("a", s)]), Verdict::Move(of_slot(10)));
        assert_eq!(verdict(s, true, [("b", s)]), Verdict::Keep);
        assert_eq!(
            verdict(s, false, [("a", s), ("b", of_slot(10)), ("d", of_slot(11))]),
            Verdict::Move(of_slot(12))
        );
        let last = of_slot(254);
        assert_eq!(
            verdict(last, false, [("a", last)]),
            Verdict::Move(of_slot(1))
        );
        let all: Vec<(String, Ipv4Net)> =
            (1..=254).map(|k| (format!("a{k}"), of_slot(k))).collect();
        assert_eq!(
            verdict(s, false, all.iter().map(|(n, s)| (n.as_str(), *s))),
            Verdict::Full
        );
    }
}
