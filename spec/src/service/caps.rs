//! Linux capabilities a spec may add to the default set.
//!
//! Containers run with Docker's default capabilities minus `MKNOD`, `SYS_CHROOT` and
//! `NET_RAW`. A spec may add back only the capabilities of [`Capability`], a closed list of
//! those that give a container nothing over other containers or the board: raw sockets
//! (`NET_RAW`; the bridge binds each container port to its own addresses, so they cannot be used
//! to send as another). `SYS_CHROOT` stays out: a second `chroot` is the way out of a root
//! entered by `chroot`, which the runtime falls back to when it cannot `pivot_root`, and the
//! seccomp profile refuses the call anyway; `MKNOD` stays out because nothing else keeps device
//! nodes away.

use std::collections::BTreeSet;

use super::check::Checker;

/// A capability a spec may add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// `CAP_NET_RAW`: raw and packet sockets (ping, traceroute, packet capture).
    NetRaw,
}

impl Capability {
    /// Every capability a spec may add.
    pub const ALL: [Capability; 1] = [Capability::NetRaw];

    /// The name a spec writes (without `CAP_`).
    pub fn name(self) -> &'static str {
        match self {
            Capability::NetRaw => "NET_RAW",
        }
    }

    /// The capability named `text` (`NET_RAW` or `CAP_NET_RAW`), if a spec may add it.
    pub fn parse(text: &str) -> Option<Capability> {
        let bare = text.strip_prefix("CAP_").unwrap_or(text);
        Capability::ALL.into_iter().find(|c| c.name() == bare)
    }
}

/// Validates `capabilities`: each one a spec may add, none twice; sorted.
pub(crate) fn capabilities(c: &mut Checker<'_>, service: &str, raw: &[String]) -> Vec<Capability> {
    let mut out = BTreeSet::new();
    let allowed: Vec<&str> = Capability::ALL.iter().map(|c| c.name()).collect();
    for (i, text) in raw.iter().enumerate() {
        let at = format!("capabilities[{i}]");
        match Capability::parse(text) {
            Some(cap) if !out.insert(cap) => c.error(&at, format!("{text:?} is listed twice")),
            Some(_) => {}
            None => c.error(
                &at,
                format!(
                    "service {service:?} cannot add capability {text:?}: a spec may add only {}",
                    allowed.join(", ")
                ),
            ),
        }
    }
    out.into_iter().collect()
}
