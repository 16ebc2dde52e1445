//! SNTP (RFC 4330) clock synchronisation.
//!
//! [`run`] asks the configured servers (then the DHCP-offered ones) for the time, one at a
//! time in order, until the answers settle what to do ([`guard`]: one server may step the clock
//! by up to 1000 s a day in all, or forward by any amount on the first sync of a boot; more needs
//! two servers that agree; nothing sets it before the saved time). It steps the clock with
//! `clock_settime` when it is off by more than a second; smaller offsets are left alone (a Pi
//! without an RTC is off by years at boot, not by milliseconds). After a round it resyncs every
//! 15 minutes; after a failed round it retries with exponential backoff from 2 s to 5 minutes.
//! Failures and refusals are logged and counted in the board status, never fatal. Names are
//! resolved with the system resolver (musl reads /etc/resolv.conf).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;

use crate::board::console::Console;
use crate::board::status::BoardStatus;

mod guard;
mod packet;

pub use guard::{Guard, Limits, Sample, Verdict};
use packet::{nanos, PORT};
pub use packet::{offset_and_delay, parse_reply, request, BadReply, Reply, Timestamp};

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
    /// Which steps are allowed.
    pub limits: Limits,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            timeout: Duration::from_secs(2),
            interval: Duration::from_secs(15 * 60),
            min_retry: Duration::from_secs(2),
            max_retry: Duration::from_secs(5 * 60),
            limits: Limits::default(),
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
            let (offset, delay) =
                offset_and_delay(t1, reply.receive.to_unix(), reply.transmit.to_unix(), t4);
            if delay < 0 || delay > timeout.as_nanos() as i128 {
                let reason = BadReply::ImplausibleDelay(delay);
                return Err(Error::BadReply { server, reason });
            }
            return Ok((offset, delay));
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

/// At most this many server addresses are asked in one round.
const MAX_ASKED: usize = 8;

/// What one round found.
struct Round {
    /// The verdict on the answers (`Confirm` when no answer was enough).
    verdict: Verdict,
    /// Distinct addresses that answered.
    answered: usize,
    /// Addresses the names resolved to (capped at [`MAX_ASKED`]).
    known: usize,
}

/// One round: servers in order until the answers so far settle what to do with the clock.
async fn sync_once(
    servers: &[String],
    clock: &dyn Clock,
    schedule: &Schedule,
    guard: &Guard,
    console: &Console,
) -> Result<Round, Error> {
    let mut addrs = Vec::new();
    for name in servers {
        match resolve(name).await {
            Ok(found) => {
                for a in found {
                    if !addrs.contains(&a) {
                        addrs.push(a);
                    }
                }
            }
            Err(e) => console.line(format_args!("sntp: {e}")),
        }
    }
    addrs.truncate(MAX_ASKED);
    let mut samples = Vec::new();
    for addr in &addrs {
        match query(*addr, clock, schedule.timeout).await {
            Ok((offset_ns, delay_ns)) => samples.push(Sample {
                server: addr.ip(),
                offset_ns,
                delay_ns,
            }),
            Err(e) => {
                console.line(format_args!("sntp: {e}"));
                continue;
            }
        }
        let verdict = guard.judge(clock.now(), &samples);
        if !matches!(verdict, Verdict::Confirm { .. }) {
            return Ok(round(verdict, &samples, addrs.len()));
        }
    }
    if samples.is_empty() {
        return Err(Error::NoServer(addrs.len()));
    }
    Ok(round(
        guard.judge(clock.now(), &samples),
        &samples,
        addrs.len(),
    ))
}

fn round(verdict: Verdict, samples: &[Sample], known: usize) -> Round {
    let mut answered: Vec<IpAddr> = samples.iter().map(|s| s.server).collect();
    answered.sort();
    answered.dedup();
    Round {
        verdict,
        answered: answered.len(),
        known,
    }
}

/// Keeps the system clock in step with `servers` (and DHCP-offered `extra` servers), forever,
/// never setting it before `floor`; says what it does on `console` and in `status`.
pub async fn run(
    servers: Vec<String>,
    extra: Vec<Ipv4Addr>,
    floor: Duration,
    console: Arc<Console>,
    status: Arc<BoardStatus>,
) {
    let schedule = Schedule::default();
    let guard = Guard::new(schedule.limits, floor);
    run_with(
        servers,
        extra,
        &SystemClock,
        schedule,
        guard,
        &console,
        &status,
    )
    .await
}

/// [`run`] with an explicit clock, timing and step rules.
pub async fn run_with(
    servers: Vec<String>,
    extra: Vec<Ipv4Addr>,
    clock: &dyn Clock,
    schedule: Schedule,
    mut guard: Guard,
    console: &Console,
    status: &BoardStatus,
) {
    let mut all = servers;
    all.extend(extra.iter().map(Ipv4Addr::to_string));
    if all.is_empty() {
        console.line("sntp: no time servers configured or offered by DHCP; keeping the saved time");
        status.update_clock(|c| c.note = Some("no time server configured or offered".into()));
        return;
    }
    let mut retry = schedule.min_retry;
    loop {
        match sync_once(&all, clock, &schedule, &guard, console).await {
            Ok(round) => {
                apply(&round, clock, &mut guard, &schedule.limits, console, status);
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

/// Carries out a round's verdict and reports it.
fn apply(
    round: &Round,
    clock: &dyn Clock,
    guard: &mut Guard,
    limits: &Limits,
    console: &Console,
    status: &BoardStatus,
) {
    let secs = |ns: i128| ns as f64 / 1e9;
    let mut refused = false;
    guard.close_round(&round.verdict);
    match &round.verdict {
        Verdict::InStep { .. } => guard.mark_synced(),
        Verdict::Step { offset_ns, servers } => match clock.step(*offset_ns) {
            Ok(()) => {
                guard.mark_synced();
                let by: Vec<String> = servers.iter().map(IpAddr::to_string).collect();
                console.line(format_args!(
                    "sntp: stepped the clock by {:+.3} s ({})",
                    secs(*offset_ns),
                    by.join(", ")
                ));
            }
            Err(e) => console.line(format_args!(
                "sntp: stepping the clock by {offset_ns} ns: {e}"
            )),
        },
        Verdict::Confirm { offset_ns } => {
            refused = true;
            console.line(format_args!(
                "sntp: refused a step of {:+.3} s: one time server may move the clock by {} s a \
                 day ({:.0} s so far), more needs two that agree, and {} of {} answered without \
                 agreeing",
                secs(*offset_ns),
                limits.max_step.as_secs(),
                guard.alone_spent().as_secs_f64(),
                round.answered,
                round.known
            ));
        }
        Verdict::BeforeFloor { offset_ns } => {
            refused = true;
            console.line(format_args!(
                "sntp: refused a step of {:+.3} s: it would set the clock before the saved time",
                secs(*offset_ns)
            ));
        }
    }
    let synced = guard.synced();
    status.update_clock(|c| {
        c.synced = synced;
        c.servers = u32::try_from(round.known).unwrap_or(u32::MAX);
        c.refused_steps += u64::from(refused);
        c.note = (round.known < 2).then(|| {
            format!(
                "only one time server is known: steps over {} s a day cannot be confirmed",
                limits.max_step.as_secs()
            )
        });
    });
}

#[cfg(test)]
mod tests;
