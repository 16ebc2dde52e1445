//! Boot baton images under QEMU: one board, or a lab of several boards on one L2 segment.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use baton_qemu::{Lab, LabConfig, Forward};
//!
//! let mut config = LabConfig::new("baton.img");
//! config.boards = 3;
//! config.forwards.push(Forward { host: 8080, guest: 80 }); // 8080, 8081, 8082 -> port 80
//! config.serial_dir = Some("serial".into());
//! let lab = Lab::start(config)?;
//! let deadline = Instant::now() + Duration::from_secs(60);
//! for board in lab.boards() {
//!     board.wait_for_line("baton: ready", deadline)?;
//! }
//! let port = lab.board(2)?.forwarded(80); // Some(8081)
//! lab.set_link(3, false)?; // cut board 3 off the shared segment
//! lab.restart(1)?; // power-cycle board 1 on the same disk
//! lab.board(1)?.wait_for_count("baton: ready", 2, deadline)?;
//! # let _ = port;
//! # Ok::<(), baton_qemu::LabError>(())
//! ```
//!
//! How it works, module by module:
//! - [`image`] reads the MBR and the FAT32 boot partition and copies out the kernel, initramfs,
//!   `cmdline.txt` and (for `raspi3b`) the device tree, following `baton.json`.
//! - [`disk`] gives each board a qcow2 overlay on the image, larger than the image.
//! - [`command`] builds the QEMU command line (`virt` or `raspi3b`).
//! - [`ports`] maps `--forward HOST:GUEST` to each board and finds free ports for tests.
//! - [`hub`] is the shared L2 segment (eth1) between the boards of a lab: unix datagram
//!   sockets and a hub thread, rootless, with link cutting, counters, pcap capture, frame
//!   injection and an in-memory ring of recent frames (see [`packet`] to read and build them).
//! - [`station`] puts the host on the segment as a LAN station, as root: a network namespace
//!   with a TAP device the hub carries, so tests reach boards by their own addresses and names.
//! - [`process`] starts QEMU (own process group, killed if the runner dies), waits for it to
//!   be up, and reports early exits with QEMU's stderr.
//! - [`console`] captures serial lines to memory and `board<N>.log`, and waits on them.
//! - [`lab`] and [`board`] tie it together: the API callers use.
//!
//! Host requirements: `qemu-system-aarch64` (Debian `qemu-system-arm`) and `qemu-img`
//! (Debian `qemu-utils`). No root: everything runs as the calling user, but for the LAN
//! station, which needs root and `ip` (Debian `iproute2`).

pub mod board;
pub mod command;
pub mod console;
pub mod disk;
pub mod hub;
pub mod image;
pub mod lab;
pub mod packet;
pub mod ports;
pub mod process;
pub mod station;

pub use board::Board;
pub use console::{matching, Line, LinePattern};
pub use hub::{CapturedFrame, FrameSource, InjectStats, PortStats, StationStats};
pub use image::{BootFiles, Machine};
pub use lab::{Lab, LabConfig, LabError};
pub use ports::{free_port, free_ports, Forward, GuestForward};
pub use process::Exit;
pub use station::Station;
