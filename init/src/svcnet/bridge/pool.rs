//! The container address pool: the host addresses of the board's container subnet minus the
//! network address, the bridge's gateway address and the broadcast address.
//!
//! Allocation is deterministic (always the lowest free address), released addresses become
//! free again, and after a restart the pool is rebuilt from the addresses still in use
//! (read back from the kernel by [`super::Bridge::addresses_in_use`]).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::svcnet::nft::Ipv4Net;

/// Errors from the address pool.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The subnet has no room for containers.
    #[error("container subnet {0}: too small (a /30 or larger is needed)")]
    TooSmall(Ipv4Net),
    /// Every address is in use.
    #[error("container subnet {0}: all addresses are in use")]
    Exhausted(Ipv4Net),
    /// An address outside the pool was reserved.
    #[error("container subnet {subnet}: {address} is not one of its container addresses")]
    Outside {
        /// The subnet.
        subnet: Ipv4Net,
        /// The address.
        address: Ipv4Addr,
    },
}

/// Container addresses of one subnet.
#[derive(Debug, Clone)]
pub struct Pool {
    subnet: Ipv4Net,
    first: u32,
    last: u32,
    gateway: Ipv4Addr,
    used: BTreeSet<Ipv4Addr>,
}

/// The bridge's address on `subnet`: its first host address.
pub fn gateway_of(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

impl Pool {
    /// The pool of `subnet` (e.g. `10.88.0.0/24`); the gateway is its first host address.
    pub fn new(subnet: Ipv4Net) -> Result<Pool, Error> {
        if subnet.prefix > 30 {
            return Err(Error::TooSmall(subnet));
        }
        let network = u32::from(subnet.network());
        let broadcast = network | !subnet.mask();
        Ok(Pool {
            subnet: Ipv4Net::new(subnet.network(), subnet.prefix),
            first: network + 2,
            last: broadcast - 1,
            gateway: gateway_of(subnet),
            used: BTreeSet::new(),
        })
    }

    /// The subnet.
    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    /// The bridge's address, the containers' default gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// Whether `a` is one of the pool's container addresses.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&u32::from(a))
    }

    /// Marks `a` as in use (e.g. found on a running container after a restart).
    pub fn reserve(&mut self, a: Ipv4Addr) -> Result<(), Error> {
        if !self.contains(a) {
            return Err(Error::Outside {
                subnet: self.subnet,
                address: a,
            });
        }
        self.used.insert(a);
        Ok(())
    }

    /// Takes the lowest free address.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, Error> {
        let free = (self.first..=self.last)
            .map(Ipv4Addr::from)
            .find(|a| !self.used.contains(a))
            .ok_or(Error::Exhausted(self.subnet))?;
        self.used.insert(free);
        Ok(free)
    }

    /// Returns `a` to the pool; releasing a free address is harmless.
    pub fn release(&mut self, a: Ipv4Addr) {
        self.used.remove(&a);
    }

    /// The addresses in use, in order.
    pub fn in_use(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.used.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(a: [u8; 4], prefix: u8) -> Ipv4Net {
        Ipv4Net::new(Ipv4Addr::from(a), prefix)
    }

    #[test]
    fn allocates_lowest_free_skipping_network_gateway_and_broadcast() {
        let mut p = Pool::new(net([10, 88, 0, 7], 24)).expect("a /24");
        assert_eq!(p.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(p.subnet(), net([10, 88, 0, 0], 24));
        assert_eq!(p.allocate(), Ok(Ipv4Addr::new(10, 88, 0, 2)));
        assert_eq!(p.allocate(), Ok(Ipv4Addr::new(10, 88, 0, 3)));
        assert_eq!(p.allocate(), Ok(Ipv4Addr::new(10, 88, 0, 4)));
        p.release(Ipv4Addr::new(10, 88, 0, 3));
        assert_eq!(
            p.allocate(),
            Ok(Ipv4Addr::new(10, 88, 0, 3)),
            "released addresses come back"
        );
        assert!(!p.contains(Ipv4Addr::new(10, 88, 0, 255)));
        assert!(!p.contains(Ipv4Addr::new(10, 88, 0, 1)));
        assert!(p.contains(Ipv4Addr::new(10, 88, 0, 254)));
    }

    #[test]
    fn a_small_subnet_runs_out_and_says_so() {
        let mut p = Pool::new(net([192, 168, 5, 0], 30)).expect("a /30");
        assert_eq!(p.allocate(), Ok(Ipv4Addr::new(192, 168, 5, 2)));
        let err = p.allocate().expect_err("a /30 holds one container");
        assert_eq!(
            err.to_string(),
            "container subnet 192.168.5.0/30: all addresses are in use"
        );
        assert!(matches!(
            Pool::new(net([10, 0, 0, 0], 31)),
            Err(Error::TooSmall(_))
        ));
    }

    #[test]
    fn rebuilt_from_addresses_in_use_after_a_restart() {
        let mut p = Pool::new(net([10, 88, 0, 0], 24)).expect("a /24");
        p.reserve(Ipv4Addr::new(10, 88, 0, 2)).expect("in the pool");
        p.reserve(Ipv4Addr::new(10, 88, 0, 4)).expect("in the pool");
        assert!(p.reserve(Ipv4Addr::new(10, 89, 0, 4)).is_err());
        assert!(
            p.reserve(Ipv4Addr::new(10, 88, 0, 1)).is_err(),
            "the gateway is not a container address"
        );
        assert_eq!(p.allocate(), Ok(Ipv4Addr::new(10, 88, 0, 3)));
        assert_eq!(p.allocate(), Ok(Ipv4Addr::new(10, 88, 0, 5)));
        assert_eq!(p.in_use().count(), 4);
    }
}
