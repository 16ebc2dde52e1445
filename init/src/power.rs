//! Reboot, halt and power-off.

/// What to do with the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Restart the board.
    Reboot,
    /// Stop the CPU, leave power on.
    Halt,
    /// Switch off.
    Poweroff,
}
