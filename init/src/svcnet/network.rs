//! The services' network on this board: names (the DNS server on the bridge address) and the
//! isolation rule set ([`crate::svcnet::policy`]), both rebuilt from the supervisor's services and
//! instances whenever they change.
//!
//! Every service gets a virtual IP from [`crate::svcnet::dns::assign_vips`] (the same on every board for the
//! same set of services); containers resolve `<service>` and `<service>.baton` to it through
//! their `/etc/resolv.conf`, and the rule set sends a connection to the VIP and the service's port
//! to one of its healthy instances, if the caller's spec allows it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use baton_spec::service::Egress as SpecEgress;
use baton_spec::ServiceSpec;

use crate::svcnet::dns::{self, DnsServer, Reaching, Upstreams, VipTable};
use crate::svcnet::nft::Ipv4Net;
use crate::svcnet::policy::{self, Egress, Instance, Policy, Proto, Service, ServicePort};

/// One service as the network sees it: its spec and the addresses of its instances here, with
/// whether each may get new connections.
pub struct Member<'a> {
    /// The spec.
    pub spec: &'a ServiceSpec,
    /// Instances on this board: address and readiness.
    pub instances: Vec<(Ipv4Addr, bool)>,
}

/// What this board knows of the other boards' containers, from the cluster: the network rules
/// send calls to their instances too, and check calls from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remote {
    /// The mesh link the other boards' subnets are routed over, when it is up.
    pub mesh: Option<String>,
    /// The container subnets of the boards the mesh reaches.
    pub subnets: Vec<Ipv4Net>,
    /// Their instances.
    pub instances: Vec<RemoteInstance>,
}

/// An instance another board runs, as its gossip says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RemoteInstance {
    /// The service.
    pub service: String,
    /// Its address in that board's container subnet.
    pub addr: std::net::Ipv4Addr,
    /// Whether it takes new connections.
    pub ready: bool,
    /// The board.
    pub board: String,
}

/// The DNS server and the state the rule set is built from.
pub struct Network {
    subnet: Ipv4Net,
    bridge: Ipv4Addr,
    host: HostFiles,
    vips: VipTable,
    upstreams: Upstreams,
    /// Instances of services with egress: the DNS server forwards their other names; it answers
    /// every other client service names only.
    reaching: Reaching,
    dns: Option<DnsServer>,
    generation: u64,
    last: Option<Policy>,
    /// Why the last rule set was not applied, until one is.
    failure: Option<String>,
    /// TCP ports the board itself serves on the LAN (the front door's).
    board_tcp: Vec<u16>,
    /// The policy last applied, sent right after it is in force (the activator's view).
    applied: tokio::sync::watch::Sender<Option<Arc<Policy>>>,
}

/// The board's LAN interfaces: those under `sys_class_net` backed by a device (Ethernet, USB
/// network adapters, Wi-Fi), not the bridge, the containers' veths or the mesh.
pub fn uplinks(sys_class_net: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(sys_class_net)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().join("device").exists())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The board's resolvers from its `/etc/resolv.conf` (port 53), loopback ones left out.
pub fn upstreams_from(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<Ipv4Addr>().ok())
        .filter(|a| !a.is_loopback())
        .map(|a| SocketAddr::from((a, 53)))
        .collect()
}

/// (address, port) of the instances on this board (in `subnet`) of the services with a route,
/// and of the auth services a route's `forward.url` names: where other boards' front doors send
/// requests. `members` holds other boards' instances too.
fn routed(members: &[Member<'_>], subnet: Ipv4Net) -> Vec<(Ipv4Addr, u16)> {
    let auth_services: std::collections::BTreeSet<String> = members
        .iter()
        .filter_map(|m| m.spec.route.as_ref()?.forward.as_ref())
        .filter_map(|f| baton_spec::service::route::url_host(&f.url))
        .collect();
    members
        .iter()
        .filter(|m| m.spec.route.is_some() || auth_services.contains(&m.spec.name))
        .filter_map(|m| m.spec.port.map(|port| (m, port)))
        .flat_map(|(m, port)| {
            m.instances
                .iter()
                .filter(|(addr, _)| subnet.contains(*addr))
                .map(move |(addr, _)| (*addr, port))
        })
        .collect()
}

/// The host's files the services' network reads: the board's resolvers and its interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFiles {
    /// The board's `/etc/resolv.conf` (its DHCP or static DNS servers).
    pub resolv_conf: PathBuf,
    /// `/sys/class/net`, listing the board's interfaces.
    pub sys_class_net: PathBuf,
}

impl HostFiles {
    /// The board's files under `root` (`/` on the board).
    pub fn under(root: &Path) -> HostFiles {
        HostFiles {
            resolv_conf: root.join("etc/resolv.conf"),
            sys_class_net: root.join("sys/class/net"),
        }
    }

    /// The board's resolv.conf as it is now (empty if it cannot be read).
    pub fn resolv_conf(&self) -> Vec<u8> {
        std::fs::read(&self.resolv_conf).unwrap_or_default()
    }

    /// The board's resolvers as they are now.
    fn upstreams(&self) -> Vec<SocketAddr> {
        upstreams_from(&String::from_utf8_lossy(&self.resolv_conf()))
    }
}

impl Network {
    /// Starts the DNS server on the bridge address; without it containers keep the board's
    /// resolvers (reported in the returned note). `host` says where the board's resolvers and
    /// interfaces are read.
    pub async fn start(
        subnet: Ipv4Net,
        bridge: Ipv4Addr,
        host: HostFiles,
    ) -> (Network, Option<String>) {
        let vips: VipTable = Arc::new(RwLock::new(BTreeMap::new()));
        let upstreams: Upstreams = Arc::new(RwLock::new(host.upstreams()));
        let reaching: Reaching = Arc::default();
        let listen = SocketAddr::from((bridge, 53));
        let started = dns::start(
            listen,
            Arc::clone(&vips),
            Arc::clone(&upstreams),
            Arc::clone(&reaching),
        )
        .await;
        let (server, note) = match started {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(format!("service names are not served: {e}"))),
        };
        (
            Network {
                subnet,
                bridge,
                host,
                vips,
                upstreams,
                reaching,
                dns: server,
                generation: 0,
                last: None,
                failure: None,
                board_tcp: Vec::new(),
                applied: tokio::sync::watch::Sender::new(None),
            },
            note,
        )
    }

    /// A network without the name server, for tests of what drives it.
    #[cfg(test)]
    pub(crate) fn offline(subnet: Ipv4Net, bridge: Ipv4Addr, host: HostFiles) -> Network {
        Network {
            subnet,
            bridge,
            host,
            vips: Arc::new(RwLock::new(BTreeMap::new())),
            upstreams: Arc::new(RwLock::new(Vec::new())),
            reaching: Arc::default(),
            dns: None,
            generation: 0,
            last: None,
            failure: None,
            board_tcp: Vec::new(),
            applied: tokio::sync::watch::Sender::new(None),
        }
    }

    /// What a container's `/etc/resolv.conf` says: the bridge's DNS server when it runs.
    pub fn resolv_conf(&self) -> Option<Vec<u8>> {
        self.dns.as_ref().map(|_| {
            format!(
                "# baton: service names (<name>, <name>.baton) and the board's resolvers\nnameserver {}\nsearch baton\n",
                self.bridge
            )
            .into_bytes()
        })
    }

    /// Rebuilds the VIP table and the rule set from `members` (their instances on this board and
    /// on others) and what `remote` says of the other boards; applies the rule set when it
    /// changed. Returns an error to report, if applying failed.
    pub fn update(&mut self, members: &[Member<'_>], remote: &Remote) -> Option<String> {
        self.update_with(members, remote, policy::apply)
    }

    /// Opens TCP `ports` of the board itself (the front door's) in the LAN filter from the next
    /// rule set on.
    pub fn open_board_tcp(&mut self, ports: &[u16]) {
        self.board_tcp = ports.iter().copied().filter(|p| *p != 0).collect();
    }

    /// [`Network::update`] with `apply` putting the rule set in force; its error is kept as
    /// the text the API shows.
    pub(crate) fn update_with<E: std::fmt::Display>(
        &mut self,
        members: &[Member<'_>],
        remote: &Remote,
        apply: impl FnOnce(&Policy) -> Result<(), E>,
    ) -> Option<String> {
        let names: Vec<String> = members.iter().map(|m| m.spec.name.clone()).collect();
        let vips = dns::assign_vips(&names, dns::DEFAULT_SUBNET);
        if let Ok(mut table) = self.vips.write() {
            if *table != vips {
                *table = vips.clone();
            }
        }
        if let Ok(mut up) = self.upstreams.write() {
            let now = self.host.upstreams();
            if !now.is_empty() && *up != now {
                *up = now;
            }
        }
        let reaching: std::collections::BTreeSet<std::net::IpAddr> = members
            .iter()
            .filter(|m| m.spec.egress != SpecEgress::None)
            .flat_map(|m| m.instances.iter().map(|(a, _)| std::net::IpAddr::from(*a)))
            .collect();
        if let Ok(mut set) = self.reaching.write() {
            if *set != reaching {
                *set = reaching;
            }
        }
        let uplinks = uplinks(&self.host.sys_class_net);
        let uplink_names: Vec<&str> = uplinks.iter().map(String::as_str).collect();
        let mut policy = Policy::new(self.subnet, self.bridge, &uplink_names);
        let vip_net = dns::DEFAULT_SUBNET;
        policy.cluster = vec![
            Ipv4Net::new(vip_net.network(), vip_net.prefix()),
            crate::svcnet::subnet::CONTAINERS,
        ];
        policy.cluster.extend(remote.subnets.iter().copied());
        policy.mesh = remote.mesh.clone();
        // Each board's bridge address is the first host address of its subnet; the mesh routes
        // carry it as the source of what that board's host sends here.
        policy.front_door_peers = remote
            .subnets
            .iter()
            .map(|net| crate::svcnet::bridge::pool::gateway_of(*net))
            .filter(|a| *a != self.bridge)
            .collect();
        policy.routed = routed(members, self.subnet);
        policy.lan_filter = !uplinks.is_empty();
        policy
            .lan_ports
            .push(policy::PortSpec::udp(crate::svcnet::mesh::PORT));
        policy.lan_ports.extend(
            members
                .iter()
                .filter_map(|m| m.spec.publish)
                .chain(self.board_tcp.iter().copied())
                .map(policy::PortSpec::tcp),
        );
        policy.services = members
            .iter()
            .filter_map(|m| {
                let vip = *vips.get(&m.spec.name)?;
                Some(Service {
                    name: m.spec.name.clone(),
                    vip,
                    ports: m
                        .spec
                        .port
                        .map(|p| ServicePort {
                            proto: Proto::Tcp,
                            port: p,
                            target: p,
                        })
                        .into_iter()
                        .collect(),
                    instances: m
                        .instances
                        .iter()
                        .map(|(addr, healthy)| Instance {
                            addr: *addr,
                            healthy: *healthy,
                        })
                        .collect(),
                    allow: m.spec.allow.clone(),
                    egress: match m.spec.egress {
                        SpecEgress::None => Egress::None,
                        _ => Egress::Internet,
                    },
                    activate: m.spec.scale.min == 0
                        || m.spec.scale.idle == baton_spec::service::Idle::Freeze,
                })
            })
            .collect();
        if self.last.as_ref() == Some(&policy) {
            return None;
        }
        self.generation += 1;
        let mut numbered = policy.clone();
        numbered.generation = self.generation;
        match apply(&numbered) {
            Ok(()) => {
                self.last = Some(policy);
                self.failure = None;
                self.applied.send_replace(Some(Arc::new(numbered)));
                None
            }
            Err(e) => {
                // Not remembered as applied: the next update tries again.
                self.failure = Some(e.to_string());
                self.failure.clone()
            }
        }
    }

    /// Why the isolation rules are not in force, if the last attempt to apply them failed (or
    /// none was made yet): instances must not start then.
    pub fn failure(&self) -> Option<String> {
        match (&self.last, &self.failure) {
            (_, Some(e)) => Some(e.clone()),
            (None, None) => Some("no rule set applied yet".to_string()),
            (Some(_), None) => None,
        }
    }

    /// The policy in force, updated right after each rule set is applied: its services' healthy
    /// instances are what the activator hands held connections to.
    pub fn applied(&self) -> tokio::sync::watch::Receiver<Option<Arc<Policy>>> {
        self.applied.subscribe()
    }

    /// The generation of the rule set last applied.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The virtual IPs, by service.
    pub fn vips(&self) -> BTreeMap<String, Ipv4Addr> {
        self.vips.read().map(|t| t.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
