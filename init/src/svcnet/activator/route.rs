//! What the activator reads from the policy in force: which service a redirected call was
//! for, whether its caller may make it, and where its instances are.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use crate::svcnet::policy::{Policy, Proto, Service, ServicePort};

/// The service and TCP port whose VIP:port is `dst`, the call's original destination.
pub(super) fn service_at(policy: &Policy, dst: SocketAddrV4) -> Option<(&Service, &ServicePort)> {
    let service = policy.services.iter().find(|s| s.vip == *dst.ip())?;
    let port = service
        .ports
        .iter()
        .find(|p| p.proto == Proto::Tcp && p.port == dst.port())?;
    Some((service, port))
}

/// Whether a container at `caller` may call `callee`: some service with an instance at that
/// address lists `callee` in its allow list. The redirect skips the forward chain, so this is
/// its allow set (forward rule 3 of [`crate::svcnet::policy`]) asked directly; like that set,
/// an instance counts whether healthy or not, and a name without a service allows nothing.
pub(super) fn allowed(policy: &Policy, caller: Ipv4Addr, callee: &str) -> bool {
    if policy.service(callee).is_none() {
        return false;
    }
    policy.services.iter().any(|s| {
        s.instances.iter().any(|i| i.addr == caller) && s.allow.iter().any(|a| a == callee)
    })
}

/// The healthy instances of `service` on the target of its TCP port `vip_port`: those on
/// this board (in the policy's subnet) first, then the others, each group in address order.
pub(super) fn backends(policy: &Policy, service: &str, vip_port: u16) -> Vec<SocketAddr> {
    let Some(s) = policy.service(service) else {
        return Vec::new();
    };
    let Some(port) = s
        .ports
        .iter()
        .find(|p| p.proto == Proto::Tcp && p.port == vip_port)
    else {
        return Vec::new();
    };
    let mut healthy: Vec<Ipv4Addr> = s
        .instances
        .iter()
        .filter(|i| i.healthy)
        .map(|i| i.addr)
        .collect();
    healthy.sort_by_key(|a| (!policy.subnet.contains(*a), *a));
    healthy.dedup();
    healthy
        .into_iter()
        .map(|a| SocketAddr::from((a, port.target)))
        .collect()
}
