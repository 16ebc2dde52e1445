//! A small pseudo-random generator for protocol jitter and transaction ids.
//!
//! Not for secrets: it only has to make boards on one LAN pick different DHCP transaction ids,
//! link-local candidates and retransmission times. It is seeded from the kernel's random pool
//! when available and always mixed with the interface's MAC, because a Pi without an RTC boots
//! at the same wall-clock time as its neighbours.

use std::time::Duration;

/// splitmix64: tiny, fast and good enough to spread timers and ids.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with a fixed seed (tests use this to get repeatable runs).
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator seeded from the kernel's random pool, the clock and `salt` (e.g. a MAC).
    pub fn from_entropy(salt: &[u8]) -> Rng {
        let mut seed = 0xcbf2_9ce4_8422_2325_u64;
        let mut buf = [0u8; 8];
        // SAFETY: `buf` is a valid, writable 8-byte buffer for the whole call; GRND_NONBLOCK
        // makes the call return at once even before the pool is initialised.
        let got =
            unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), libc::GRND_NONBLOCK) };
        if got == 8 {
            seed ^= u64::from_le_bytes(buf);
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        for b in salt
            .iter()
            .copied()
            .chain(nanos.to_le_bytes())
            .chain(std::process::id().to_le_bytes())
        {
            seed = (seed ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A duration chosen uniformly in `[lo, hi]` (millisecond resolution).
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let lo_ms = lo.as_millis() as u64;
        let hi_ms = (hi.as_millis() as u64).max(lo_ms);
        Duration::from_millis(lo_ms + self.next_u64() % (hi_ms - lo_ms + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_stays_in_range_and_varies() {
        let mut rng = Rng::seeded(7);
        let lo = Duration::from_secs(1);
        let hi = Duration::from_secs(2);
        let samples: Vec<Duration> = (0..200).map(|_| rng.between(lo, hi)).collect();
        assert!(samples.iter().all(|d| *d >= lo && *d <= hi));
        assert!(samples.iter().any(|d| *d < Duration::from_millis(1200)));
        assert!(samples.iter().any(|d| *d > Duration::from_millis(1800)));
    }

    #[test]
    fn entropy_seeds_differ_by_salt() {
        let a = Rng::from_entropy(&[1, 2, 3]).next_u64();
        let b = Rng::from_entropy(&[1, 2, 4]).next_u64();
        assert_ne!(a, b);
    }
}
