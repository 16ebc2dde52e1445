//! The hub's port for a LAN station (see [`crate::station`]): one more station on the segment,
//! which gets every frame a board with its cable in sends (and every injected one), and whose
//! frames reach every board with its cable in.

use std::fmt::Debug;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering};

/// A station's link to the hub: whole Ethernet frames in and out, without blocking.
pub trait StationLink: AsFd + Send + Sync + Debug {
    /// Reads one frame into `buf`; `WouldBlock` when none waits.
    fn recv_frame(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Sends one frame.
    fn send_frame(&self, frame: &[u8]) -> io::Result<()>;
}

/// A TAP device opened without a packet-information header and non-blocking.
impl StationLink for File {
    fn recv_frame(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn send_frame(&self, frame: &[u8]) -> io::Result<()> {
        (&*self).write(frame).map(drop)
    }
}

/// A connected, non-blocking datagram socket (one end of a pair, for tests).
impl StationLink for UnixDatagram {
    fn recv_frame(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }

    fn send_frame(&self, frame: &[u8]) -> io::Result<()> {
        self.send(frame).map(drop)
    }
}

/// Frame counters of the station's port on the hub.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StationStats {
    /// Frames the station sent onto the segment.
    pub from_station: u64,
    /// Frames the hub delivered to the station.
    pub to_station: u64,
    /// Frames for the station that were dropped (its queue was full).
    pub dropped: u64,
}

/// The station's port: its link and its counters.
#[derive(Debug)]
pub(super) struct StationPort {
    pub(super) link: Box<dyn StationLink>,
    from_station: AtomicU64,
    to_station: AtomicU64,
    dropped: AtomicU64,
}

impl StationPort {
    pub(super) fn new(link: Box<dyn StationLink>) -> StationPort {
        StationPort {
            link,
            from_station: AtomicU64::new(0),
            to_station: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Reads the next frame the station sent, counting it.
    pub(super) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.link.recv_frame(buf)?;
        self.from_station.fetch_add(1, Ordering::Relaxed);
        Ok(n)
    }

    /// Hands a frame to the station, counting it as delivered or dropped.
    pub(super) fn send(&self, frame: &[u8]) {
        let counter = match self.link.send_frame(frame) {
            Ok(()) => &self.to_station,
            Err(_) => &self.dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn stats(&self) -> StationStats {
        StationStats {
            from_station: self.from_station.load(Ordering::Relaxed),
            to_station: self.to_station.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}
