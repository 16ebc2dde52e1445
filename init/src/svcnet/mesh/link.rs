//! The mesh link and its routes over rtnetlink: create or find `baton-wg`, set it up, list,
//! add and delete the routes on it, delete it.

use std::net::Ipv4Addr;

use futures_util::TryStreamExt;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
};
use rtnetlink::{Handle, LinkUnspec, LinkWireguard, RouteMessageBuilder};

use super::plan::{self, LinkRoute};
use super::{Error, Peer, LINK};
use crate::svcnet::nft::Ipv4Net;

/// Whether a netlink error is one of `codes` (errno values).
fn is_errno(e: &rtnetlink::Error, codes: &[i32]) -> bool {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.is_some_and(|c| codes.contains(&-c.get())),
        _ => false,
    }
}

/// An rtnetlink error while `what`.
fn link_error(what: &str) -> impl FnOnce(rtnetlink::Error) -> Error + '_ {
    move |source| Error::Link {
        what: what.to_string(),
        source,
    }
}

/// Opens a route netlink connection and spawns its driver on the current runtime.
pub(super) fn connect() -> Result<Handle, Error> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(Error::Connect)?;
    tokio::spawn(connection);
    Ok(handle)
}

/// The index and kind of the link named [`LINK`], if there is one.
async fn find(handle: &Handle) -> Result<Option<(u32, Option<InfoKind>)>, Error> {
    let mut links = handle.link().get().match_name(LINK.to_string()).execute();
    let found = match links.try_next().await {
        Ok(found) => found,
        Err(e) if is_errno(&e, &[libc::ENODEV]) => None,
        Err(e) => return Err(link_error("looking up link")(e)),
    };
    Ok(found.map(|msg| {
        let kind = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                LinkInfo::Kind(k) => Some(k.clone()),
                _ => None,
            }),
            _ => None,
        });
        (msg.header.index, kind)
    }))
}

/// The index of the WireGuard link [`LINK`], created if missing. A link of that name and
/// another kind is an error (it is not ours to delete).
pub(super) async fn ensure(handle: &Handle) -> Result<u32, Error> {
    if find(handle).await?.is_none() {
        let created = handle
            .link()
            .add(LinkWireguard::new(LINK).build())
            .execute()
            .await;
        match created {
            Ok(()) => {}
            // Someone made it in between: fine, it is checked below.
            Err(e) if is_errno(&e, &[libc::EEXIST]) => {}
            // "Unknown device type": the kernel has no wireguard driver.
            Err(e) if is_errno(&e, &[libc::EOPNOTSUPP]) => return Err(Error::NoWireguard),
            Err(e) => return Err(link_error("creating link")(e)),
        }
    }
    match find(handle).await? {
        Some((index, Some(InfoKind::Wireguard))) => Ok(index),
        Some((_, kind)) => Err(Error::NotWireguard {
            kind: kind.map_or_else(|| "unknown".to_string(), |k| k.to_string()),
        }),
        None => Err(Error::Link {
            what: "finding the link just created".to_string(),
            source: rtnetlink::Error::RequestFailed,
        }),
    }
}

/// Sets link `index` administratively up.
pub(super) async fn set_up(handle: &Handle, index: u32) -> Result<(), Error> {
    let msg = LinkUnspec::new_with_index(index).up().build();
    handle
        .link()
        .set(msg)
        .execute()
        .await
        .map_err(link_error("setting up link"))
}

/// Deletes link `index`; a link already gone is fine.
pub(super) async fn delete(handle: &Handle, index: u32) -> Result<(), Error> {
    match handle.link().del(index).execute().await {
        Err(e) if is_errno(&e, &[libc::ENODEV]) => Ok(()),
        r => r.map_err(link_error("deleting link")),
    }
}

/// The IPv4 routes in the main table through link `index`, with the messages to delete them.
pub(super) async fn routes(
    handle: &Handle,
    index: u32,
) -> Result<Vec<(LinkRoute, RouteMessage)>, Error> {
    let query = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let mut dump = handle.route().get(query).execute();
    let mut out = Vec::new();
    while let Some(msg) = dump.try_next().await.map_err(|source| Error::Route {
        what: "listing routes".to_string(),
        source,
    })? {
        if let Some(route) = link_route(&msg, index) {
            out.push((route, msg));
        }
    }
    Ok(out)
}

/// `msg` as a route of the main table through link `index`, if it is one.
fn link_route(msg: &RouteMessage, index: u32) -> Option<LinkRoute> {
    let mut oif = None;
    let mut table = u32::from(msg.header.table);
    let mut dest = Ipv4Addr::UNSPECIFIED;
    let mut source = None;
    let mut metric = 0;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dest = *a,
            RouteAttribute::PrefSource(RouteAddress::Inet(a)) => source = Some(*a),
            RouteAttribute::Priority(p) => metric = *p,
            _ => {}
        }
    }
    (oif == Some(index) && table == u32::from(RouteHeader::RT_TABLE_MAIN)).then_some(LinkRoute {
        net: Ipv4Net::new(dest, msg.header.destination_prefix_length),
        source,
        metric,
    })
}

/// Adds (or replaces) the route `net dev <index> src <source> scope link proto static`.
pub(super) async fn add_route(
    handle: &Handle,
    index: u32,
    net: Ipv4Net,
    source: Ipv4Addr,
) -> Result<(), Error> {
    let msg = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(net.network(), net.prefix)
        .output_interface(index)
        .pref_source(source)
        .scope(RouteScope::Link)
        .protocol(RouteProtocol::Static)
        .build();
    handle
        .route()
        .add(msg)
        .replace()
        .execute()
        .await
        .map_err(|source_error| Error::Route {
            what: format!("adding route {net} src {source}"),
            source: source_error,
        })
}

/// Deletes a route as listed by [`routes`]; a route already gone is fine.
pub(super) async fn delete_route(
    handle: &Handle,
    route: &LinkRoute,
    msg: RouteMessage,
) -> Result<(), Error> {
    match handle.route().del(msg).execute().await {
        Err(e) if is_errno(&e, &[libc::ESRCH, libc::ENOENT, libc::ENODEV]) => Ok(()),
        r => r.map_err(|source| Error::Route {
            what: format!("removing route {}", route.net),
            source,
        }),
    }
}

/// Makes the routes on link `index` one per allowed network of `peers`, `src source`
/// (see [`plan::route_changes`]): stale ones deleted first, then missing ones added.
pub(super) async fn sync_routes(
    handle: &Handle,
    index: u32,
    peers: &[Peer],
    source: Ipv4Addr,
) -> Result<(), Error> {
    let routes = routes(handle, index).await?;
    let listed: Vec<LinkRoute> = routes.iter().map(|(r, _)| *r).collect();
    let todo = plan::route_changes(&listed, peers, source);
    for (i, (route, msg)) in routes.into_iter().enumerate() {
        if todo.remove.contains(&i) {
            delete_route(handle, &route, msg).await?;
        }
    }
    for net in todo.add {
        add_route(handle, index, net, source).await?;
    }
    Ok(())
}
