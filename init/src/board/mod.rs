//! The board as every other part of the init sees it: its root directory ([`context::Ctx`]),
//! the kernel's privileged calls ([`sys::Sys`]), the console, the state the API reports, and
//! power-safe file writes. Nothing here depends on another folder of the init.

pub mod card;
pub mod cgroups;
pub mod child_fd;
pub mod console;
pub mod context;
pub mod mountinfo;
pub mod persist;
pub mod procfs;
pub mod quota;
pub mod status;
pub mod sys;
pub mod tls;
