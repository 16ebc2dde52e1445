//! The recent frames on the segment, in memory, for tests to search and replay.
//!
//! Bounded: the ring keeps the last [`RING_FRAMES`] frames or [`RING_BYTES`] bytes of frame
//! data, whichever limit is reached first, dropping the oldest. Every frame gets a sequence
//! number, so a test can ask only for what came after the last frame it has seen, and gaps
//! show that frames were dropped from the ring before being read.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

/// Most frames the ring keeps.
pub const RING_FRAMES: usize = 20_000;
/// Most bytes of frame data the ring keeps (32 MiB).
pub const RING_BYTES: usize = 32 << 20;

/// Who put a frame on the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameSource {
    /// Board `N` (1-based), through its eth1.
    Board(usize),
    /// The test, through [`super::Hub::inject`].
    Injected,
    /// The LAN station (see [`crate::station`]).
    Station,
}

/// One frame seen on the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedFrame {
    /// Position in the order the hub handled frames, from 0, never reused.
    pub seq: u64,
    /// When the hub handled it.
    pub at: SystemTime,
    /// Who sent it.
    pub source: FrameSource,
    /// Boards (1-based) it was handed to; boards whose link was down, or that were not
    /// running or reading, are missing. The LAN station, if there is one, is never listed
    /// (see [`super::Hub::station_stats`]).
    pub delivered: Vec<usize>,
    /// The Ethernet frame, without FCS. Shared, so copying a capture is cheap.
    pub bytes: Arc<[u8]>,
}

/// The ring itself: a queue with two limits.
#[derive(Debug)]
pub struct FrameRing {
    frames: VecDeque<CapturedFrame>,
    bytes: usize,
    next_seq: u64,
    max_frames: usize,
    max_bytes: usize,
}

impl Default for FrameRing {
    fn default() -> Self {
        FrameRing::new(RING_FRAMES, RING_BYTES)
    }
}

impl FrameRing {
    /// An empty ring holding at most `max_frames` frames and `max_bytes` bytes of frame data
    /// (the newest frame is always kept, even if larger than `max_bytes`).
    pub fn new(max_frames: usize, max_bytes: usize) -> FrameRing {
        FrameRing {
            frames: VecDeque::new(),
            bytes: 0,
            next_seq: 0,
            max_frames: max_frames.max(1),
            max_bytes,
        }
    }

    /// Records a frame, dropping the oldest ones beyond the limits; returns its sequence number.
    pub fn push(
        &mut self,
        at: SystemTime,
        source: FrameSource,
        delivered: Vec<usize>,
        bytes: &[u8],
    ) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += bytes.len();
        self.frames.push_back(CapturedFrame {
            seq,
            at,
            source,
            delivered,
            bytes: Arc::from(bytes),
        });
        while self.frames.len() > self.max_frames
            || (self.bytes > self.max_bytes && self.frames.len() > 1)
        {
            if let Some(old) = self.frames.pop_front() {
                self.bytes -= old.bytes.len();
            }
        }
        seq
    }

    /// The frames kept whose sequence number is at least `seq`, oldest first.
    pub fn since(&self, seq: u64) -> Vec<CapturedFrame> {
        let skip = match self.frames.front() {
            Some(first) => usize::try_from(seq.saturating_sub(first.seq)).unwrap_or(usize::MAX),
            None => 0,
        };
        self.frames.iter().skip(skip).cloned().collect()
    }

    /// Bytes of frame data kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of frames kept.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame is kept.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}
