//! Loading the board's kernel modules in the order the image builder computed.

use std::io;

use baton_spec::build_info::BuildInfo;

use crate::board::context::Ctx;

/// A module that failed to load.
#[derive(Debug, thiserror::Error)]
#[error("cannot load kernel module {module}: {source}")]
pub struct Error {
    /// Path relative to `/lib/modules/<release>/`.
    pub module: String,
    /// Cause.
    pub source: io::Error,
}

/// Loads every module of `build` in order. A module already loaded (EEXIST) is fine; failures
/// are returned, not fatal: a missing driver shows up later as a missing disk or interface,
/// with this error explaining why.
pub fn load_all(ctx: &Ctx, build: &BuildInfo) -> Vec<Error> {
    let dir = ctx.path("/lib/modules").join(&build.kernel_release);
    let mut errors = Vec::new();
    for module in &build.modules {
        match ctx.sys.load_module(&dir.join(module)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::EEXIST) => {}
            Err(source) => errors.push(Error {
                module: module.clone(),
                source,
            }),
        }
    }
    errors
}
