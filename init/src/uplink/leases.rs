//! The DHCP leases held by all interfaces, and what follows from them: resolv.conf and the
//! NTP servers offered to the clock sync.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;

use super::dhcp::Lease;
use super::resolv;

/// Current leases by interface name.
#[derive(Debug)]
pub struct Leases {
    leases: Mutex<BTreeMap<String, Lease>>,
    configured_dns: Vec<Ipv4Addr>,
    resolv_conf: PathBuf,
}

impl Leases {
    /// No leases yet; resolv.conf at `resolv_conf` will list `configured_dns` first.
    pub fn new(configured_dns: Vec<Ipv4Addr>, resolv_conf: PathBuf) -> Leases {
        Leases {
            leases: Mutex::new(BTreeMap::new()),
            configured_dns,
            resolv_conf,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Lease>> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `interface`'s lease (or its loss) and rewrites resolv.conf.
    pub fn set(&self, interface: &str, lease: Option<Lease>) -> Result<(), resolv::Error> {
        {
            let mut all = self.lock();
            match lease {
                Some(l) => all.insert(interface.to_string(), l),
                None => all.remove(interface),
            };
        }
        self.write_resolv_conf()
    }

    /// Writes resolv.conf from the configured servers and the current leases.
    pub fn write_resolv_conf(&self) -> Result<(), resolv::Error> {
        let (dns, search) = {
            let all = self.lock();
            let dns: Vec<Ipv4Addr> = all.values().flat_map(|l| l.dns.iter().copied()).collect();
            let search: Vec<String> = all.values().filter_map(|l| l.domain.clone()).collect();
            (dns, search)
        };
        resolv::write(
            &self.resolv_conf,
            &resolv::render(&self.configured_dns, &dns, &search),
        )
    }

    /// NTP servers from all leases, without duplicates.
    pub fn ntp_servers(&self) -> Vec<Ipv4Addr> {
        let mut out: Vec<Ipv4Addr> = Vec::new();
        for s in self.lock().values().flat_map(|l| l.ntp.iter()) {
            if !out.contains(s) {
                out.push(*s);
            }
        }
        out
    }
}
