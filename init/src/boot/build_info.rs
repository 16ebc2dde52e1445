//! Reading `/etc/baton/build.json`, the facts the image builder left in the initramfs.

use std::io;
use std::time::SystemTime;

use baton_spec::build_info::{BuildInfo, PATH};

use crate::board::context::Ctx;

/// Errors reading the build facts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {PATH}: {0}")]
    Read(#[source] io::Error),
    /// The file is not a valid build description.
    #[error("{PATH} is not valid: {0}")]
    Parse(#[source] serde_json::Error),
}

/// Reads and parses `build.json`.
pub fn read(ctx: &Ctx) -> Result<BuildInfo, Error> {
    let text = std::fs::read_to_string(ctx.path(PATH)).map_err(Error::Read)?;
    serde_json::from_str(&text).map_err(Error::Parse)
}

/// When the image was built, as far as the initramfs tells: the modification time of
/// `build.json`. Images built reproducibly may carry a fixed time; the clock step only ever
/// moves the clock forward to it, so an old time is harmless.
pub fn built_at(ctx: &Ctx) -> Option<SystemTime> {
    std::fs::metadata(ctx.path(PATH)).ok()?.modified().ok()
}
