//! The shared L2 segment between boards (their eth1), as a hub inside the runner.
//!
//! Each board's second NIC is a QEMU `-netdev dgram` on a unix datagram socket: QEMU binds
//! `b<N>.sock` and sends every frame to `h<N>.sock`, which the hub binds. The hub thread
//! forwards each frame to every other board whose link is up, sending from that board's hub
//! socket to its board socket. It floods like a hub (no MAC learning): with a handful of
//! boards the copies cost nothing, and multicast and broadcast (mDNS, ARP, link-local address
//! probes) need flooding anyway.
//!
//! Why a hub and not QEMU's multicast netdevs: those need a multicast route, which on the host
//! means root (or a network namespace) and could leak frames onto a real LAN; unix sockets need
//! no privilege and stay on the machine. The hub also lets tests cut a board off the segment
//! ([`Hub::set_link`]), count its frames ([`Hub::stats`]) and record everything to a pcap file.
//!
//! Frames are dropped, never queued, when a board is not running or not reading: like a cable
//! to a switched-off machine.

pub mod pcap;

use std::fs::File;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use rustix::event::{PollFd, PollFlags, Timespec};

use pcap::PcapWriter;

/// What went wrong with the hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A hub socket could not be bound.
    #[error("cannot bind the hub socket {path}: {source}")]
    Bind {
        /// Socket path.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// The capture file could not be created.
    #[error("cannot create the capture file {path}: {source}")]
    Capture {
        /// Capture file path.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// The hub thread could not be started.
    #[error("cannot start the hub thread: {0}")]
    Thread(io::Error),
    /// A board number outside 1..=boards.
    #[error("the segment has no board {board} (boards are 1 to {boards})")]
    NoSuchBoard {
        /// Board asked for.
        board: usize,
        /// Number of boards.
        boards: usize,
    },
}

/// Frame counters of one board's port on the hub.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames the board sent into the hub (counted even while its link is down).
    pub from_board: u64,
    /// Frames the hub delivered to the board.
    pub to_board: u64,
    /// Frames for the board that were dropped (board not running, or not reading).
    pub dropped: u64,
}

#[derive(Debug)]
struct Port {
    socket: UnixDatagram,
    hub_path: PathBuf,
    board_path: PathBuf,
    up: AtomicBool,
    from_board: AtomicU64,
    to_board: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    ports: Vec<Port>,
    stop: AtomicBool,
    capture: Option<Mutex<PcapWriter<File>>>,
}

/// A running hub. Dropping it stops the thread and removes its sockets.
#[derive(Debug)]
pub struct Hub {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Boards (0-based) a frame from board `from` goes to, given whose links are up: nobody if the
/// sender's link is down, else every other board whose link is up.
pub fn destinations(from: usize, up: &[bool]) -> Vec<usize> {
    if !up.get(from).copied().unwrap_or(false) {
        return Vec::new();
    }
    (0..up.len()).filter(|&j| j != from && up[j]).collect()
}

impl Hub {
    /// Binds `h1.sock`..`h<boards>.sock` in `dir` and starts forwarding. With `capture`, every
    /// frame a board sends is also written to that pcap file.
    pub fn start(dir: &Path, boards: usize, capture: Option<&Path>) -> Result<Hub, HubError> {
        let mut ports = Vec::with_capacity(boards);
        for i in 1..=boards {
            let hub_path = dir.join(format!("h{i}.sock"));
            let _ = std::fs::remove_file(&hub_path);
            let socket = UnixDatagram::bind(&hub_path)
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .map_err(|source| HubError::Bind {
                    path: hub_path.clone(),
                    source,
                })?;
            ports.push(Port {
                socket,
                hub_path,
                board_path: dir.join(format!("b{i}.sock")),
                up: AtomicBool::new(true),
                from_board: AtomicU64::new(0),
                to_board: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
            });
        }
        let capture = match capture {
            Some(path) => {
                let err = |source| HubError::Capture {
                    path: path.to_path_buf(),
                    source,
                };
                let file = File::create(path).map_err(err)?;
                Some(Mutex::new(PcapWriter::new(file).map_err(err)?))
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            ports,
            stop: AtomicBool::new(false),
            capture,
        });
        let run = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("segment-hub".into())
            .spawn(move || run.forward_until_stopped())
            .map_err(HubError::Thread)?;
        Ok(Hub {
            shared,
            thread: Some(thread),
        })
    }

    fn port(&self, board: usize) -> Result<&Port, HubError> {
        let boards = self.shared.ports.len();
        board
            .checked_sub(1)
            .and_then(|i| self.shared.ports.get(i))
            .ok_or(HubError::NoSuchBoard { board, boards })
    }

    /// The socket board `board` (1-based) binds; QEMU's `local.path`.
    pub fn board_path(&self, board: usize) -> Result<&Path, HubError> {
        Ok(&self.port(board)?.board_path)
    }

    /// The socket the hub binds for board `board`; QEMU's `remote.path`.
    pub fn hub_path(&self, board: usize) -> Result<&Path, HubError> {
        Ok(&self.port(board)?.hub_path)
    }

    /// Plugs board `board` into the segment (`up`) or pulls its cable (`!up`): while down it
    /// neither sends nor receives on the segment. The board's own link state does not change.
    pub fn set_link(&self, board: usize, up: bool) -> Result<(), HubError> {
        self.port(board)?.up.store(up, Ordering::SeqCst);
        Ok(())
    }

    /// Frame counters of board `board`.
    pub fn stats(&self, board: usize) -> Result<PortStats, HubError> {
        let p = self.port(board)?;
        Ok(PortStats {
            from_board: p.from_board.load(Ordering::Relaxed),
            to_board: p.to_board.load(Ordering::Relaxed),
            dropped: p.dropped.load(Ordering::Relaxed),
        })
    }
}

impl Shared {
    fn forward_until_stopped(&self) {
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let mut frame = vec![0u8; 65536];
        while !self.stop.load(Ordering::SeqCst) {
            let mut fds: Vec<PollFd<'_>> = self
                .ports
                .iter()
                .map(|p| PollFd::new(&p.socket, PollFlags::IN))
                .collect();
            if rustix::event::poll(&mut fds, Some(&tick)).is_err() {
                continue;
            }
            let ready: Vec<usize> = fds
                .iter()
                .enumerate()
                .filter(|(_, fd)| !fd.revents().is_empty())
                .map(|(i, _)| i)
                .collect();
            drop(fds);
            for from in ready {
                while let Ok(n) = self.ports[from].socket.recv(&mut frame) {
                    self.forward(from, &frame[..n]);
                }
            }
        }
    }

    fn forward(&self, from: usize, frame: &[u8]) {
        self.ports[from].from_board.fetch_add(1, Ordering::Relaxed);
        if let Some(capture) = &self.capture {
            let mut w = capture.lock().unwrap_or_else(|p| p.into_inner());
            // Capture is for diagnosis; a failed write must not stop the segment.
            let _ = w.write_frame(SystemTime::now(), frame);
        }
        let up: Vec<bool> = self
            .ports
            .iter()
            .map(|p| p.up.load(Ordering::SeqCst))
            .collect();
        for to in destinations(from, &up) {
            let port = &self.ports[to];
            match port.socket.send_to(frame, &port.board_path) {
                Ok(_) => port.to_board.fetch_add(1, Ordering::Relaxed),
                Err(_) => port.dropped.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for p in &self.shared.ports {
            let _ = std::fs::remove_file(&p.hub_path);
        }
    }
}

#[cfg(test)]
mod tests;
