//! Stable virtual IPs: one address per service name, the same on every board.
//!
//! A name's preferred address is a hash of the name (SHA-256, first 8 bytes) reduced to an
//! offset among the subnet's usable hosts, which skip the network address, the `.1` gateway
//! address and the broadcast address. Two names can prefer the same address: the names are
//! taken in sorted order and a later name whose address is taken moves to the next free one
//! (linear probing, wrapping around). So the table depends only on the set of names, and a
//! name keeps its address when others come and go, except in one case: when a name that sorts
//! earlier appears and prefers the same address, the later name moves. With 65,533 usable
//! addresses in the default /16 and a few dozen services this is rare.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use super::Error;

/// An IPv4 subnet that virtual IPs are taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The network address (host bits zero).
    network: u32,
    /// The prefix length, 8..=29.
    prefix: u8,
}

/// The default subnet of virtual IPs: 10.89.0.0/16.
pub const DEFAULT_SUBNET: Subnet = Subnet {
    network: u32::from_be_bytes([10, 89, 0, 0]),
    prefix: 16,
};

impl Subnet {
    /// A subnet from an address and a prefix length (host bits of `addr` are cleared).
    /// Prefixes shorter than 8 or longer than 29 (fewer than 5 usable hosts) are refused.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet, Error> {
        if !(8..=29).contains(&prefix) {
            return Err(Error::Subnet { addr, prefix });
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet {
            network: u32::from(addr) & mask,
            prefix,
        })
    }

    /// The number of addresses in the subnet, network and broadcast included.
    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    /// The number of addresses handed out: all but network, `.1` and broadcast.
    fn usable(&self) -> u32 {
        self.size() - 3
    }

    /// The address of usable slot `slot` (0-based, `slot < usable()`).
    fn addr(&self, slot: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 2 + slot)
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is inside the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == self.network
    }
}

impl Default for Subnet {
    fn default() -> Subnet {
        DEFAULT_SUBNET
    }
}

/// The preferred slot of `name` among `usable` slots.
fn preferred_slot(name: &str, usable: u32) -> u32 {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(usable)) as u32
}

/// Assigns each distinct name a virtual IP in `subnet` (see the module doc for the rule).
/// Names are used as given (service names are already lowercase). If there are more names than
/// usable addresses, the names that sort last get none.
pub fn assign_vips(names: &[String], subnet: Subnet) -> BTreeMap<String, Ipv4Addr> {
    let usable = subnet.usable();
    let sorted: BTreeSet<&String> = names.iter().collect();
    let mut taken: BTreeSet<u32> = BTreeSet::new();
    let mut table = BTreeMap::new();
    for name in sorted {
        if taken.len() as u64 >= u64::from(usable) {
            break;
        }
        let mut slot = preferred_slot(name, usable);
        while taken.contains(&slot) {
            slot = (slot + 1) % usable;
        }
        taken.insert(slot);
        table.insert(name.clone(), subnet.addr(slot));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// A deterministic stream of service-like names (no randomness in tests).
    fn generated(count: usize, seed: u64) -> Vec<String> {
        let mut state = seed;
        (0..count)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                format!("svc-{}-{i}", state >> 40)
            })
            .collect()
    }

    #[test]
    fn same_names_give_the_same_table_in_any_order() {
        let a = assign_vips(&names(&["web", "db", "cache"]), DEFAULT_SUBNET);
        let b = assign_vips(&names(&["cache", "web", "db", "web"]), DEFAULT_SUBNET);
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn addresses_are_unique_and_inside_the_subnet_skipping_reserved() {
        let subnet = DEFAULT_SUBNET;
        let table = assign_vips(&generated(2000, 7), subnet);
        assert_eq!(table.len(), 2000);
        let distinct: BTreeSet<Ipv4Addr> = table.values().copied().collect();
        assert_eq!(distinct.len(), 2000);
        for ip in table.values() {
            assert!(subnet.contains(*ip), "{ip} outside the subnet");
            let last = u32::from(*ip) & 0xffff;
            assert!(last != 0 && last != 1 && last != 0xffff, "{ip} is reserved");
        }
    }

    #[test]
    fn a_name_keeps_its_address_when_others_come_and_go() {
        let base = generated(40, 1);
        let before = assign_vips(&base, DEFAULT_SUBNET);
        // Add and remove other names in several rounds; with no collisions in a /16 for
        // these names, every remaining name keeps its address.
        for round in 0..10u64 {
            let mut changed: Vec<String> = base.iter().skip(round as usize).cloned().collect();
            changed.extend(generated(20, 100 + round));
            let after = assign_vips(&changed, DEFAULT_SUBNET);
            for name in base.iter().skip(round as usize) {
                assert_eq!(before.get(name), after.get(name), "{name} moved");
            }
        }
    }

    #[test]
    fn a_full_small_subnet_is_filled_exactly_then_names_are_left_out() {
        // 192.168.7.9/29 is 192.168.7.8 to .15; 5 usable: .10 to .14.
        let subnet = Subnet::new(Ipv4Addr::new(192, 168, 7, 9), 29).expect("valid subnet");
        let table = assign_vips(&generated(5, 3), subnet);
        let got: BTreeSet<Ipv4Addr> = table.values().copied().collect();
        let want: BTreeSet<Ipv4Addr> = (10..=14).map(|h| Ipv4Addr::new(192, 168, 7, h)).collect();
        assert_eq!(got, want);
        let more = assign_vips(&generated(7, 3), subnet);
        assert_eq!(more.len(), 5);
    }

    #[test]
    fn collisions_resolve_by_sorted_name() {
        // In a /29 (5 slots), find two names that prefer the same slot.
        let subnet = Subnet::new(Ipv4Addr::new(10, 0, 0, 0), 29).expect("valid subnet");
        let pool = generated(50, 9);
        let mut pair = None;
        'outer: for a in &pool {
            for b in &pool {
                if a < b && preferred_slot(a, 5) == preferred_slot(b, 5) {
                    pair = Some((a.clone(), b.clone()));
                    break 'outer;
                }
            }
        }
        let (first, second) = pair.expect("50 names in 5 slots collide");
        let alone = assign_vips(std::slice::from_ref(&second), subnet);
        let both = assign_vips(&[second.clone(), first.clone()], subnet);
        // The earlier name takes the preferred address; the later one moves to the next slot.
        assert_eq!(both.get(&first), alone.get(&second));
        assert_ne!(both.get(&second), alone.get(&second));
    }

    #[test]
    fn bad_prefixes_are_refused() {
        assert!(Subnet::new(Ipv4Addr::new(10, 0, 0, 0), 30).is_err());
        assert!(Subnet::new(Ipv4Addr::new(10, 0, 0, 0), 7).is_err());
        let s = Subnet::new(Ipv4Addr::new(10, 89, 3, 4), 16).expect("valid subnet");
        assert_eq!(s, DEFAULT_SUBNET);
    }
}
