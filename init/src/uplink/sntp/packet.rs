//! The SNTP wire format (RFC 4330): timestamps, the client request, the server reply and the
//! offset and delay computed from one exchange.

use std::time::Duration;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
pub(super) const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// NTP packet length without extensions.
pub(super) const PACKET_LEN: usize = 48;
/// The NTP port.
pub(super) const PORT: u16 = 123;

/// A 64-bit NTP timestamp: seconds since 1900 (modulo 2^32) and a 32-bit fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The timestamp of `since_unix_epoch`.
    pub fn from_unix(since_unix_epoch: Duration) -> Timestamp {
        let secs = (since_unix_epoch.as_secs() + NTP_UNIX_OFFSET) & 0xffff_ffff;
        let frac = (u64::from(since_unix_epoch.subsec_nanos()) << 32) / 1_000_000_000;
        Timestamp((secs << 32) | frac)
    }

    /// The time since the Unix epoch. Seconds with the top bit clear are taken to be in era 1
    /// (after 2036-02-07), as RFC 4330 section 3 suggests; a time before 1970 (which a server
    /// may send) reads as the epoch.
    pub fn to_unix(self) -> Duration {
        let secs = self.0 >> 32;
        let secs = if secs & 0x8000_0000 != 0 {
            secs
        } else {
            secs + (1 << 32)
        };
        let nanos = ((self.0 & 0xffff_ffff) * 1_000_000_000) >> 32;
        Duration::new(secs.saturating_sub(NTP_UNIX_OFFSET), nanos as u32)
    }
}

/// A client request (LI 0, version 4, mode 3) carrying `transmit`, which the server echoes as
/// its originate timestamp.
pub fn request(transmit: Timestamp) -> [u8; PACKET_LEN] {
    let mut p = [0u8; PACKET_LEN];
    p[0] = (4 << 3) | 3;
    p[40..48].copy_from_slice(&transmit.0.to_be_bytes());
    p
}

/// The fields of a server reply the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// Stratum (1..=15 for a usable answer).
    pub stratum: u8,
    /// Our transmit timestamp, echoed.
    pub originate: Timestamp,
    /// When the server received the request.
    pub receive: Timestamp,
    /// When the server sent the reply.
    pub transmit: Timestamp,
}

/// Why a server's answer is not usable (RFC 4330 section 5).
#[derive(Debug, thiserror::Error)]
pub enum BadReply {
    /// Too short to be an NTP packet.
    #[error("{0} bytes, want {PACKET_LEN}")]
    Short(usize),
    /// Not a server's reply.
    #[error("mode {0}, not a server reply")]
    Mode(u8),
    /// A protocol version we do not speak.
    #[error("version {0}")]
    Version(u8),
    /// The server said go away (stratum 0), with its four-letter code.
    #[error("kiss-o'-death {0:?}")]
    KissOfDeath(String),
    /// The server has no time to give.
    #[error("server is not synchronised")]
    Unsynchronised,
    /// The reply carries no transmit time.
    #[error("zero transmit timestamp")]
    ZeroTransmit,
    /// The server says it sent the reply before it received the request.
    #[error("sent before it was received")]
    SentBeforeReceived,
    /// The round trip the timestamps imply is negative or longer than the wait for the answer
    /// (a server making up its delay to widen what counts as agreeing).
    #[error("round trip of {0} ns cannot be")]
    ImplausibleDelay(i128),
}

/// Checks and reads a server reply (RFC 4330 section 5); the error says what is wrong.
pub fn parse_reply(b: &[u8]) -> Result<Reply, BadReply> {
    if b.len() < PACKET_LEN {
        return Err(BadReply::Short(b.len()));
    }
    let (leap, version, mode) = (b[0] >> 6, (b[0] >> 3) & 7, b[0] & 7);
    let ts = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        Timestamp(u64::from_be_bytes(w))
    };
    let reply = Reply {
        stratum: b[1],
        originate: ts(24),
        receive: ts(32),
        transmit: ts(40),
    };
    if mode != 4 {
        return Err(BadReply::Mode(mode));
    }
    if !(3..=4).contains(&version) {
        return Err(BadReply::Version(version));
    }
    if reply.stratum == 0 {
        return Err(BadReply::KissOfDeath(
            String::from_utf8_lossy(&b[12..16]).into_owned(),
        ));
    }
    if leap == 3 || reply.stratum > 15 {
        return Err(BadReply::Unsynchronised);
    }
    if reply.transmit.0 == 0 {
        return Err(BadReply::ZeroTransmit);
    }
    if reply.transmit.to_unix() < reply.receive.to_unix() {
        return Err(BadReply::SentBeforeReceived);
    }
    Ok(reply)
}

pub(super) fn nanos(d: Duration) -> i128 {
    d.as_nanos() as i128
}

/// Clock offset and round-trip delay in nanoseconds from the four timestamps (RFC 4330
/// section 5): t1 request sent, t2 request received, t3 reply sent, t4 reply received.
pub fn offset_and_delay(t1: Duration, t2: Duration, t3: Duration, t4: Duration) -> (i128, i128) {
    let (t1, t2, t3, t4) = (nanos(t1), nanos(t2), nanos(t3), nanos(t4));
    (((t2 - t1) + (t3 - t4)) / 2, (t4 - t1) - (t3 - t2))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i128 = 1_000_000_000;

    #[test]
    fn timestamps_convert_both_ways_across_the_2036_era_change() {
        let t = Duration::new(1_704_067_200, 500_000_000); // 2024-01-01T00:00:00.5Z
        let ts = Timestamp::from_unix(t);
        assert_eq!(ts.0 >> 32, 1_704_067_200 + NTP_UNIX_OFFSET);
        assert_eq!(ts.0 & 0xffff_ffff, 0x8000_0000);
        assert_eq!(ts.to_unix(), t);
        let later = Duration::from_secs(2_240_524_800); // 2041-01-01, era 1
        assert!(Timestamp::from_unix(later).0 >> 63 == 0, "seconds wrapped");
        assert_eq!(Timestamp::from_unix(later).to_unix(), later);
    }

    #[test]
    fn request_has_known_bytes() {
        let p = request(Timestamp(0x0102_0304_0506_0708));
        assert_eq!(p[0], 0x23, "LI 0, VN 4, mode 3");
        assert!(p[1..40].iter().all(|b| *b == 0));
        assert_eq!(&p[40..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    fn reply_bytes(first: u8, stratum: u8) -> [u8; PACKET_LEN] {
        let mut p = [0u8; PACKET_LEN];
        p[0] = first;
        p[1] = stratum;
        p[12..16].copy_from_slice(b"RATE");
        p[24..32].copy_from_slice(&7u64.to_be_bytes());
        p[40..48].copy_from_slice(&9u64.to_be_bytes());
        p
    }

    #[test]
    fn replies_are_checked() {
        let ok = parse_reply(&reply_bytes(0x24, 2)).expect("valid v4 server reply");
        assert_eq!(
            (ok.stratum, ok.originate, ok.transmit),
            (2, Timestamp(7), Timestamp(9))
        );
        assert!(
            parse_reply(&reply_bytes(0x1c, 1)).is_ok(),
            "version 3 is accepted"
        );
        assert!(parse_reply(&reply_bytes(0x23, 2))
            .expect_err("client mode")
            .to_string()
            .contains("mode 3"));
        assert!(parse_reply(&reply_bytes(0x24, 0))
            .expect_err("kod")
            .to_string()
            .contains("RATE"));
        assert!(parse_reply(&reply_bytes(0xe4, 2))
            .expect_err("leap 3")
            .to_string()
            .contains("not synchronised"));
        assert!(parse_reply(&reply_bytes(0x24, 2)[..40]).is_err());
        let mut reversed = reply_bytes(0x24, 2);
        reversed[32..40].copy_from_slice(&(5u64 << 32).to_be_bytes());
        reversed[40..48].copy_from_slice(&(4u64 << 32).to_be_bytes());
        assert!(parse_reply(&reversed)
            .expect_err("sent before received")
            .to_string()
            .contains("sent before"));
    }

    #[test]
    fn offset_and_delay_follow_rfc_4330() {
        // Client 1 s behind; 0.1 s each way; server takes 0.1 s.
        let ms = Duration::from_millis;
        let (offset, delay) = offset_and_delay(ms(99_000), ms(100_100), ms(100_200), ms(99_300));
        assert_eq!(offset, SEC);
        assert_eq!(delay, SEC / 5);
        let (offset, _) = offset_and_delay(ms(100_000), ms(99_000), ms(99_000), ms(100_000));
        assert_eq!(offset, -SEC);
    }
}
