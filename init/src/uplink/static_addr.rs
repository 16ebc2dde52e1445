//! The static configuration from `cluster.toml`: one address and an optional gateway.

use baton_spec::StaticAddress;

use super::iface::{address, Context};
use super::netlink::{self, Link, Netlink, Origin};
use crate::board::status::AddressSource;

/// Puts `config` on `link` and records the address in the board state.
pub async fn apply(
    nl: &Netlink,
    link: &Link,
    config: &StaticAddress,
    ctx: &Context,
) -> Result<(), netlink::Error> {
    nl.add_address(link, config.address, config.prefix).await?;
    if let Some(gateway) = config.gateway {
        nl.add_default_route(link, gateway, Origin::Static).await?;
    }
    ctx.state.set_addresses(
        &link.name,
        vec![address(
            &link.name,
            config.address,
            config.prefix,
            AddressSource::Static,
        )],
    );
    ctx.console.line(format_args!(
        "net: {}: static address {}/{}",
        link.name, config.address, config.prefix
    ));
    Ok(())
}
