//! Entering a container's network namespace in the helper for the time of one fork (see
//! [`super::spec::helper_joins_network`]).

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sched::{setns, CloneFlags};

/// The helper in another network namespace; back in its own when dropped.
pub struct Joined {
    own: OwnedFd,
}

impl Joined {
    /// Enters the network namespace bound at `path`.
    pub fn enter(path: &Path) -> std::io::Result<Joined> {
        let own = OwnedFd::from(std::fs::File::open("/proc/thread-self/ns/net")?);
        let target = OwnedFd::from(std::fs::File::open(path)?);
        setns(&target, CloneFlags::CLONE_NEWNET)?;
        Ok(Joined { own })
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        if let Err(e) = setns(&self.own, CloneFlags::CLONE_NEWNET) {
            eprintln!("baton: runtime: cannot return to its own network namespace: {e}");
        }
    }
}
