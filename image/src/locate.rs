//! Finding the files the builder needs that do not come from the command line: the init binary
//! and the repository's board configs, relative to the running `baton` executable.

use std::path::{Path, PathBuf};

/// Where `scripts/build-init` leaves the init, relative to a cargo target directory.
const INIT_IN_TARGET: &str = "aarch64-unknown-linux-musl/board/baton-init";

/// The init binary: `$BATON_INIT`, else the one in the cargo target directory that holds this
/// executable, else `target/…` under the current directory (reported as missing by the builder).
pub fn init_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BATON_INIT") {
        return PathBuf::from(p);
    }
    exe_ancestors()
        .into_iter()
        .map(|dir| dir.join(INIT_IN_TARGET))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new("target").join(INIT_IN_TARGET))
}

/// The repository's `board-configs/` if this executable runs from a checkout (or
/// `$BATON_BOARD_CONFIGS`); `None` means: use the copies built into the binary.
pub fn board_configs_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BATON_BOARD_CONFIGS") {
        return Some(PathBuf::from(p));
    }
    exe_ancestors()
        .into_iter()
        .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("board-configs").is_dir())
        .map(|dir| dir.join("board-configs"))
}

fn exe_ancestors() -> Vec<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.canonicalize().ok())
        .map(|exe| exe.ancestors().skip(1).map(Path::to_path_buf).collect())
        .unwrap_or_default()
}
