//! SNTP (RFC 4330) clock synchronisation.
//!
//! [`run`] asks the configured servers (then the DHCP-offered ones) for the time, one at a
//! time in order, and steps the system clock with `clock_settime` when it is off by more than
//! a second; smaller offsets are left alone (a Pi without an RTC is off by years at boot, not
//! by milliseconds). After a good answer it resyncs every 15 minutes; after a failed round it
//! retries with exponential backoff from 2 s to 5 minutes. Failures are logged, never fatal.
//! Names are resolved with the system resolver (musl reads /etc/resolv.conf).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;

use crate::board::console::Console;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// NTP packet length without extensions.
const PACKET_LEN: usize = 48;
/// The NTP port.
const PORT: u16 = 123;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket operation failed.
    #[error("querying {server}: {source}")]
    Io {
        /// The server.
        server: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No answer in time.
    #[error("no answer from {0}")]
    Timeout(SocketAddr),
    /// The reply was not a usable server answer.
    #[error("bad reply from {server}: {reason}")]
    BadReply {
        /// The server.
        server: SocketAddr,
        /// What was wrong.
        #[source]
        reason: BadReply,
    },
    /// A name did not resolve.
    #[error("resolving NTP server {name}: {source}")]
    Resolve {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No server answered in this round.
    #[error("no NTP server answered ({0} tried)")]
    NoServer(usize),
}

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
    /// (after 2036-02-07), as RFC 4330 section 3 suggests.
    pub fn to_unix(self) -> Duration {
        let secs = self.0 >> 32;
        let secs = if secs & 0x8000_0000 != 0 {
            secs
        } else {
            secs + (1 << 32)
        };
        let nanos = ((self.0 & 0xffff_ffff) * 1_000_000_000) >> 32;
        Duration::new(secs - NTP_UNIX_OFFSET, nanos as u32)
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
    Ok(reply)
}

fn nanos(d: Duration) -> i128 {
    d.as_nanos() as i128
}

/// Clock offset and round-trip delay in nanoseconds from the four timestamps (RFC 4330
/// section 5): t1 request sent, t2 request received, t3 reply sent, t4 reply received.
pub fn offset_and_delay(t1: Duration, t2: Duration, t3: Duration, t4: Duration) -> (i128, i128) {
    let (t1, t2, t3, t4) = (nanos(t1), nanos(t2), nanos(t3), nanos(t4));
    (((t2 - t1) + (t3 - t4)) / 2, (t4 - t1) - (t3 - t2))
}

/// The realtime clock, read and stepped.
pub trait Clock: Send + Sync {
    /// Time since the Unix epoch.
    fn now(&self) -> Duration;
    /// Moves the clock by `offset_ns` nanoseconds.
    fn step(&self, offset_ns: i128) -> io::Result<()>;
}

/// The system's CLOCK_REALTIME.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }

    fn step(&self, offset_ns: i128) -> io::Result<()> {
        let target = (nanos(self.now()) + offset_ns).max(0);
        // SAFETY: timespec is plain old data; all-zero bytes are a valid value (this also
        // clears the padding fields some targets have).
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        ts.tv_sec = (target / 1_000_000_000) as _;
        ts.tv_nsec = (target % 1_000_000_000) as _;
        // SAFETY: `ts` is a valid timespec for the duration of the call.
        if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Timing of the sync loop; [`Schedule::default`] is the board's.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// How long to wait for one server's answer.
    pub timeout: Duration,
    /// Time between successful syncs.
    pub interval: Duration,
    /// First retry delay after a failed round; doubles up to `max_retry`.
    pub min_retry: Duration,
    /// Longest retry delay.
    pub max_retry: Duration,
    /// Offsets above this are stepped; smaller ones are left alone.
    pub step_threshold: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            timeout: Duration::from_secs(2),
            interval: Duration::from_secs(15 * 60),
            min_retry: Duration::from_secs(2),
            max_retry: Duration::from_secs(5 * 60),
            step_threshold: Duration::from_secs(1),
        }
    }
}

/// Asks `server` once; returns (offset, delay) in nanoseconds.
pub async fn query(
    server: SocketAddr,
    clock: &dyn Clock,
    timeout: Duration,
) -> Result<(i128, i128), Error> {
    let io_err = |source| Error::Io { server, source };
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(io_err)?;
    socket.connect(server).await.map_err(io_err)?;
    let t1 = clock.now();
    let sent = Timestamp::from_unix(t1);
    socket.send(&request(sent)).await.map_err(io_err)?;
    let answer = async {
        let mut buf = [0u8; 512];
        loop {
            let n = socket.recv(&mut buf).await.map_err(io_err)?;
            let t4 = clock.now();
            let reply =
                parse_reply(&buf[..n]).map_err(|reason| Error::BadReply { server, reason })?;
            if reply.originate != sent {
                continue; // a stale or forged answer: not to our request
            }
            return Ok(offset_and_delay(
                t1,
                reply.receive.to_unix(),
                reply.transmit.to_unix(),
                t4,
            ));
        }
    };
    tokio::time::timeout(timeout, answer)
        .await
        .map_err(|_| Error::Timeout(server))?
}

/// `host`, `host:port`, `a.b.c.d` or `a.b.c.d:port` to socket addresses.
async fn resolve(server: &str) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(a) = server.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    if let Ok(ip) = server.parse::<IpAddr>() {
        return Ok(vec![(ip, PORT).into()]);
    }
    let found: io::Result<Vec<SocketAddr>> = if server.contains(':') {
        tokio::net::lookup_host(server).await.map(Iterator::collect)
    } else {
        tokio::net::lookup_host((server, PORT))
            .await
            .map(Iterator::collect)
    };
    found.map_err(|source| Error::Resolve {
        name: server.to_string(),
        source,
    })
}

/// One round: servers in order until one answers; returns the server and its offset.
async fn sync_once(
    servers: &[String],
    clock: &dyn Clock,
    timeout: Duration,
    console: &Console,
) -> Result<(SocketAddr, i128), Error> {
    let mut tried = 0;
    for name in servers {
        let addrs = match resolve(name).await {
            Ok(a) => a,
            Err(e) => {
                console.line(format_args!("sntp: {e}"));
                continue;
            }
        };
        for addr in addrs {
            tried += 1;
            match query(addr, clock, timeout).await {
                Ok((offset, _delay)) => return Ok((addr, offset)),
                Err(e) => console.line(format_args!("sntp: {e}")),
            }
        }
    }
    Err(Error::NoServer(tried))
}

/// Keeps the system clock in step with `servers` (and DHCP-offered `extra` servers), forever;
/// says what it does on `console`.
pub async fn run(servers: Vec<String>, extra: Vec<Ipv4Addr>, console: Arc<Console>) {
    run_with(servers, extra, &SystemClock, Schedule::default(), &console).await
}

/// [`run`] with an explicit clock and timing.
pub async fn run_with(
    servers: Vec<String>,
    extra: Vec<Ipv4Addr>,
    clock: &dyn Clock,
    schedule: Schedule,
    console: &Console,
) {
    let mut all = servers;
    all.extend(extra.iter().map(Ipv4Addr::to_string));
    if all.is_empty() {
        console.line("sntp: no time servers configured or offered by DHCP; keeping the saved time");
        return;
    }
    let mut retry = schedule.min_retry;
    loop {
        match sync_once(&all, clock, schedule.timeout, console).await {
            Ok((server, offset)) => {
                if offset.unsigned_abs() > schedule.step_threshold.as_nanos() {
                    match clock.step(offset) {
                        Ok(()) => console.line(format_args!(
                            "sntp: stepped the clock by {:+.3} s ({server})",
                            offset as f64 / 1e9
                        )),
                        Err(e) => console
                            .line(format_args!("sntp: stepping the clock by {offset} ns: {e}")),
                    }
                }
                retry = schedule.min_retry;
                tokio::time::sleep(schedule.interval).await;
            }
            Err(e) => {
                console.line(format_args!("sntp: {e}; retrying in {} s", retry.as_secs()));
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(schedule.max_retry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

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

    /// Real time plus whatever it has been stepped by; records the steps.
    #[derive(Default)]
    struct FakeClock {
        steps: Mutex<Vec<i128>>,
    }

    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            let moved: i128 = self.steps.lock().map(|s| s.iter().sum()).unwrap_or(0);
            let t = nanos(SystemClock.now()) + moved;
            Duration::from_nanos(t as u64)
        }
        fn step(&self, offset_ns: i128) -> io::Result<()> {
            self.steps
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .push(offset_ns);
            Ok(())
        }
    }

    /// An SNTP server on loopback whose clock is `ahead` of the real one; it first sends a
    /// reply that does not match the request, then the right one. Counts requests.
    async fn server(ahead: Duration) -> (SocketAddr, Arc<Mutex<u32>>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = socket.local_addr().expect("local addr");
        let served = Arc::new(Mutex::new(0u32));
        let count = served.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 128];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                assert_eq!(n, PACKET_LEN);
                let now = Timestamp::from_unix(SystemClock.now() + ahead);
                let mut p = [0u8; PACKET_LEN];
                p[0] = 0x24;
                p[1] = 1;
                p[32..40].copy_from_slice(&now.0.to_be_bytes());
                p[40..48].copy_from_slice(&now.0.to_be_bytes());
                let _ = socket.send_to(&p, from).await; // originate 0: must be ignored
                p[24..32].copy_from_slice(&buf[40..48]);
                let _ = socket.send_to(&p, from).await;
                if let Ok(mut c) = count.lock() {
                    *c += 1;
                }
            }
        });
        (addr, served)
    }

    /// Short intervals so the loop runs several rounds within a test.
    fn fast_schedule() -> Schedule {
        Schedule {
            timeout: Duration::from_secs(2),
            interval: Duration::from_millis(50),
            min_retry: Duration::from_millis(50),
            max_retry: Duration::from_millis(200),
            step_threshold: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn steps_a_clock_that_is_off_once_then_leaves_it_alone() {
        let (addr, served) = server(Duration::from_secs(100)).await;
        let clock = Arc::new(FakeClock::default());
        let schedule = fast_schedule();
        // A dead server first: the loop must move on to the next one.
        let servers = vec!["127.0.0.1:1".to_string(), addr.to_string()];
        let task_clock = clock.clone();
        let console = Arc::new(Console::quiet(100));
        let task_console = Arc::clone(&console);
        let task = tokio::spawn(async move {
            run_with(servers, Vec::new(), &*task_clock, schedule, &task_console).await
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while served.lock().map(|c| *c).unwrap_or(0) < 4 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "server not queried four times"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
        let steps = clock.steps.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(steps.len(), 1, "stepped once, then in sync: {steps:?}");
        assert!(
            (steps[0] - 100 * SEC).abs() < SEC / 2,
            "step {} ns",
            steps[0]
        );
        let said = console.recent();
        assert!(
            said.iter()
                .any(|l| l.starts_with("baton: sntp: stepped the clock by +100.")),
            "console: {said:?}"
        );
    }

    #[tokio::test]
    async fn without_any_server_it_stops_at_once_and_leaves_the_clock() {
        let clock = FakeClock::default();
        let schedule = fast_schedule();
        let console = Console::quiet(100);
        tokio::time::timeout(
            Duration::from_secs(10),
            run_with(Vec::new(), Vec::new(), &clock, schedule, &console),
        )
        .await
        .expect("run_with returns when there is nothing to ask");
        assert!(clock.steps.lock().map(|s| s.is_empty()).unwrap_or(false));
        assert!(console.has_line(
            "baton: sntp: no time servers configured or offered by DHCP; keeping the saved time"
        ));
    }
}
