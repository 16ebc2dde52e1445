//! What every boot and shutdown step works with: the root directory, the kernel, the console
//! and the shared board state.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::board::console::Console;
use crate::board::status::BoardStatus;
use crate::board::sys::Sys;

/// The board as the init sees it.
pub struct Ctx {
    /// Root of the file system: `/` on the board, a temp dir in tests.
    pub root: PathBuf,
    /// Privileged calls.
    pub sys: Arc<dyn Sys>,
    /// Console output and recent lines.
    pub console: Arc<Console>,
    /// BoardStatus shared with the API.
    pub state: Arc<BoardStatus>,
}

impl Ctx {
    /// A context on `root`.
    pub fn new(
        root: &Path,
        sys: Arc<dyn Sys>,
        console: Arc<Console>,
        state: Arc<BoardStatus>,
    ) -> Ctx {
        Ctx {
            root: root.to_path_buf(),
            sys,
            console,
            state,
        }
    }

    /// `path` (absolute, as on the board) under the root.
    pub fn path(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }

    /// Prints `baton: <message>` on the console.
    pub fn say(&self, message: impl Display) {
        self.console.line(message);
    }

    /// Reports a problem that does not stop the boot: on the console and in the API's errors.
    pub fn report(&self, error: impl Display) {
        let message = error.to_string();
        self.console.line(format_args!("error: {message}"));
        self.state.add_error(message);
    }
}
