//! The board's HTTP API on TCP port 7070.

use std::sync::Arc;

use crate::status::State;

/// Errors starting the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be opened.
    #[error("API: cannot listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// Starts serving the API in the background.
pub fn spawn(
    state: Arc<State>,
    power: tokio::sync::mpsc::Sender<crate::power::Action>,
) -> Result<(), Error> {
    let _ = (state, power);
    Ok(())
}
