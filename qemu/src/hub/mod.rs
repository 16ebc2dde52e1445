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
//! ([`Hub::set_link`]), count its frames ([`Hub::stats`]), record everything to a pcap file,
//! keep the recent frames in memory ([`Hub::frames`], see [`ring`]) and act as one more
//! station on the segment ([`Hub::inject`]), for example to replay a captured frame. A LAN
//! station (a TAP device in a network namespace, see [`crate::station`]) can be one more port
//! ([`Hub::start_with_station`], see [`station_port`]).
//!
//! Frames are dropped, never queued, when a board is not running or not reading: like a cable
//! to a switched-off machine.

pub mod pcap;
pub mod ring;
pub mod station_port;

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
use ring::FrameRing;
pub use ring::{CapturedFrame, FrameSource, RING_BYTES, RING_FRAMES};
use station_port::StationPort;
pub use station_port::{StationLink, StationStats};

/// Longest frame the hub handles (it reads into a 64 KiB buffer; pcap records keep 65535).
pub const MAX_FRAME: usize = 65535;
/// Shortest frame [`Hub::inject`] takes: an Ethernet header.
pub const MIN_FRAME: usize = 14;

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
    /// A frame to inject that is not an Ethernet frame the hub can carry.
    #[error("cannot inject a frame of {len} bytes onto the segment (it takes {MIN_FRAME} to {MAX_FRAME})")]
    FrameLength {
        /// Length of the frame.
        len: usize,
    },
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

/// Counters of the frames injected onto the segment with [`Hub::inject`], kept apart from
/// the boards' [`PortStats`] (which count only frames boards sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectStats {
    /// Frames injected.
    pub frames: u64,
    /// Copies handed to boards.
    pub delivered: u64,
    /// Copies for boards with their link up that were dropped (board not running, or not
    /// reading).
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

/// The segment the hub makes: its ports (boards and the station), the capture and the ring of
/// recent frames, and its counters; shared by the forwarding thread and the handle.
#[derive(Debug)]
struct Segment {
    ports: Vec<Port>,
    stop: AtomicBool,
    capture: Option<Mutex<PcapWriter<File>>>,
    ring: Mutex<FrameRing>,
    station: Option<StationPort>,
    injected: AtomicU64,
    injected_delivered: AtomicU64,
    injected_dropped: AtomicU64,
}

/// A running hub. Dropping it stops the thread and removes its sockets.
#[derive(Debug)]
pub struct Hub {
    shared: Arc<Segment>,
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
        Hub::start_with_station(dir, boards, capture, None)
    }

    /// Like [`Hub::start`], with a LAN station as one more port when `station` is given: it
    /// gets every frame on the segment (but those of boards whose cable is out) and its frames
    /// go to every board whose cable is in. Its frames are captured like the boards'.
    pub fn start_with_station(
        dir: &Path,
        boards: usize,
        capture: Option<&Path>,
        station: Option<Box<dyn StationLink>>,
    ) -> Result<Hub, HubError> {
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
        let shared = Arc::new(Segment {
            ports,
            stop: AtomicBool::new(false),
            capture,
            ring: Mutex::new(FrameRing::default()),
            station: station.map(StationPort::new),
            injected: AtomicU64::new(0),
            injected_delivered: AtomicU64::new(0),
            injected_dropped: AtomicU64::new(0),
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

    /// Puts `frame` (an Ethernet frame without FCS) on the segment as if from one more
    /// station: every board whose link is up (and the LAN station, if any) gets it, and it is
    /// captured like any other frame (pcap file and [`Hub::frames`], source
    /// [`FrameSource::Injected`]). Sent from the caller's thread; returns the number of boards
    /// it was handed to. Counted in [`Hub::injected`], not in the boards' [`PortStats`].
    pub fn inject(&self, frame: &[u8]) -> Result<usize, HubError> {
        if !(MIN_FRAME..=MAX_FRAME).contains(&frame.len()) {
            return Err(HubError::FrameLength { len: frame.len() });
        }
        Ok(self.shared.deliver(FrameSource::Injected, frame))
    }

    /// Frame counters of the LAN station's port, if there is one.
    pub fn station_stats(&self) -> Option<StationStats> {
        self.shared.station.as_ref().map(StationPort::stats)
    }

    /// Counters of the injected frames.
    pub fn injected(&self) -> InjectStats {
        let s = &self.shared;
        InjectStats {
            frames: s.injected.load(Ordering::Relaxed),
            delivered: s.injected_delivered.load(Ordering::Relaxed),
            dropped: s.injected_dropped.load(Ordering::Relaxed),
        }
    }

    /// The recent frames on the segment, oldest first (see [`ring`] for how many are kept).
    pub fn frames(&self) -> Vec<CapturedFrame> {
        self.frames_since(0)
    }

    /// The recent frames whose [`CapturedFrame::seq`] is at least `seq`: pass the last seen
    /// `seq + 1` to poll for new frames only.
    pub fn frames_since(&self, seq: u64) -> Vec<CapturedFrame> {
        lock(&self.shared.ring).since(seq)
    }
}

/// Locks a mutex; a panic elsewhere while holding it leaves data that is still usable here.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Segment {
    fn forward_until_stopped(&self) {
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let mut frame = vec![0u8; 65536];
        // A station whose device failed (its namespace went away) is left out from then on,
        // or every poll would return at once with its error.
        let mut station_up = self.station.is_some();
        while !self.stop.load(Ordering::SeqCst) {
            let mut fds: Vec<PollFd<'_>> = self
                .ports
                .iter()
                .map(|p| PollFd::new(&p.socket, PollFlags::IN))
                .collect();
            // The station, if any, polls last: index `ports.len()`.
            if let Some(station) = self.station.as_ref().filter(|_| station_up) {
                fds.push(PollFd::new(&station.link, PollFlags::IN));
            }
            if rustix::event::poll(&mut fds, Some(&tick)).is_err() {
                continue;
            }
            let failed = PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL;
            if station_up
                && fds
                    .get(self.ports.len())
                    .is_some_and(|fd| fd.revents().intersects(failed))
            {
                station_up = false;
            }
            let ready: Vec<usize> = fds
                .iter()
                .enumerate()
                .filter(|(_, fd)| !fd.revents().is_empty())
                .map(|(i, _)| i)
                .collect();
            drop(fds);
            for from in ready {
                match self.ports.get(from) {
                    Some(port) => {
                        while let Ok(n) = port.socket.recv(&mut frame) {
                            port.from_board.fetch_add(1, Ordering::Relaxed);
                            self.deliver(FrameSource::Board(from + 1), &frame[..n]);
                        }
                    }
                    None => {
                        let Some(station) = &self.station else {
                            continue;
                        };
                        while let Ok(n) = station.recv(&mut frame) {
                            self.deliver(FrameSource::Station, &frame[..n]);
                        }
                    }
                }
            }
        }
    }

    /// Captures a frame and hands it to the boards that should get it; returns how many did.
    fn deliver(&self, source: FrameSource, frame: &[u8]) -> usize {
        let now = SystemTime::now();
        if let Some(capture) = &self.capture {
            // Capture is for diagnosis; a failed write must not stop the segment.
            let _ = lock(capture).write_frame(now, frame);
        }
        let up: Vec<bool> = self
            .ports
            .iter()
            .map(|p| p.up.load(Ordering::SeqCst))
            .collect();
        let (to, to_station) = match source {
            FrameSource::Board(n) => (
                destinations(n - 1, &up),
                up.get(n - 1).copied().unwrap_or(false),
            ),
            FrameSource::Injected => ((0..up.len()).filter(|&j| up[j]).collect(), true),
            FrameSource::Station => ((0..up.len()).filter(|&j| up[j]).collect(), false),
        };
        if let Some(station) = self.station.as_ref().filter(|_| to_station) {
            station.send(frame);
        }
        let mut delivered = Vec::with_capacity(to.len());
        for j in to {
            let port = &self.ports[j];
            let sent = port.socket.send_to(frame, &port.board_path).is_ok();
            if sent {
                delivered.push(j + 1);
            }
            let counter = match (source, sent) {
                (FrameSource::Board(_) | FrameSource::Station, true) => &port.to_board,
                (FrameSource::Board(_) | FrameSource::Station, false) => &port.dropped,
                (FrameSource::Injected, true) => &self.injected_delivered,
                (FrameSource::Injected, false) => &self.injected_dropped,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if source == FrameSource::Injected {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        let count = delivered.len();
        lock(&self.ring).push(now, source, delivered, frame);
        count
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
