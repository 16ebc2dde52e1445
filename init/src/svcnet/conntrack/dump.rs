//! One ctnetlink dump of the IPv4 conntrack table on a `NETLINK_NETFILTER` socket, in the
//! calling thread's network namespace.
//!
//! The request is `IPCTNL_MSG_CT_GET` with `NLM_F_DUMP` and family `AF_INET`, which the kernel
//! filters on. The kernel then fills one buffer of entries per read, so the memory held is one
//! fixed receive buffer whatever the table's size. At most [`MAX_ENTRIES`] entries are parsed;
//! the rest are only counted (their headers read) until the kernel's end-of-dump, and the
//! whole dump has a deadline.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::parse::{self, Entry, NLMSG_HDRLEN};
use super::Error;
use crate::svcnet::nft::wire::NLM_F_REQUEST;

/// Entries parsed per dump; those beyond are counted as truncated.
pub const MAX_ENTRIES: u64 = 65_536;
/// How long one dump may take.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// The receive buffer. The kernel sizes each dump datagram to at most 32 KiB (or a page, if
/// larger), so this always holds a whole one; a larger datagram is refused, not cut.
pub const RECV_BUFFER: usize = 64 * 1024;

/// `NFNL_SUBSYS_CTNETLINK`.
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
/// `IPCTNL_MSG_CT_NEW`: one entry of the dump.
const IPCTNL_MSG_CT_NEW: u16 = 0;
/// `IPCTNL_MSG_CT_GET`: the request.
const IPCTNL_MSG_CT_GET: u16 = 1;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
const NLM_F_DUMP: u16 = 0x300;
/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of the dump.
const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
const NLMSG_OVERRUN: u16 = 4;
/// `AF_INET` as nfgenmsg's family byte.
const AF_INET: u8 = 2;

/// The type of a dumped entry.
pub const ENTRY_TYPE: u16 = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;

/// Entries seen in one dump.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Entries parsed (the IPv4 ones handed on).
    pub read: u64,
    /// Entries beyond the limit, not parsed.
    pub truncated: u64,
}

/// The dump request with sequence number `seq`: a netlink header and an nfgenmsg.
pub fn request(seq: u32) -> [u8; NLMSG_HDRLEN + parse::NFGENMSG_LEN] {
    const LEN: usize = NLMSG_HDRLEN + parse::NFGENMSG_LEN;
    let mut out = [0u8; LEN];
    out[0..4].copy_from_slice(&(LEN as u32).to_ne_bytes());
    let kind = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
    out[4..6].copy_from_slice(&kind.to_ne_bytes());
    out[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    out[8..12].copy_from_slice(&seq.to_ne_bytes());
    // Port 0 is the kernel's; the nfgenmsg is family, version 0, resource id 0.
    out[16] = AF_INET;
    out
}

/// The error for a kernel result `code` (a negative errno); never overflows.
fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code.checked_neg().unwrap_or(i32::MAX))
}

/// Takes in one datagram of the answer to request `seq`: each entry, while fewer than
/// `max_entries` have been read, is parsed and given to `each`; later ones are counted in
/// `totals.truncated`. Returns whether the dump is complete.
pub fn absorb(
    datagram: &[u8],
    seq: u32,
    max_entries: u64,
    totals: &mut Totals,
    each: &mut impl FnMut(&Entry),
) -> Result<bool, Error> {
    for message in parse::messages(datagram) {
        let (header, payload, at) = message?;
        // Answers to an earlier request on this socket cannot exist (one socket per dump),
        // but a stray message must not end or fail this dump.
        if header.seq != seq {
            continue;
        }
        match header.kind {
            NLMSG_DONE => {
                // The payload is the dump's result: 0 or a negative errno.
                let code = payload
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(i32::from_ne_bytes)
                    .unwrap_or(0);
                if code < 0 {
                    return Err(Error::Kernel(errno(code)));
                }
                return Ok(true);
            }
            NLMSG_ERROR => {
                let code = payload
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(i32::from_ne_bytes)
                    .ok_or(parse::Malformed {
                        what: "truncated error message",
                        at,
                    })?;
                // Zero is an acknowledgement, which the request did not ask for: ignored.
                if code < 0 {
                    return Err(Error::Kernel(errno(code)));
                }
            }
            NLMSG_OVERRUN => {
                return Err(Error::Receive(io::Error::other("netlink overrun")));
            }
            ENTRY_TYPE if totals.read >= max_entries => {
                totals.truncated = totals.truncated.saturating_add(1);
            }
            ENTRY_TYPE => {
                // Counted whatever its family, so the limit bounds the parsing work; the
                // kernel sends only IPv4 entries anyway, as asked.
                totals.read += 1;
                let (family, entry) = parse::entry(payload, at)?;
                if family == AF_INET {
                    each(&entry);
                }
            }
            _ => {}
        }
    }
    Ok(false)
}

/// A sequence number per dump in this process (the socket is new each time, so this only
/// helps reading traces).
static SEQ: AtomicU32 = AtomicU32::new(1);

/// Dumps the IPv4 conntrack table of the calling thread's network namespace, giving each of
/// the first `max_entries` entries to `each`; fails if the dump takes longer than `limit`.
pub fn run(
    limit: Duration,
    max_entries: u64,
    mut each: impl FnMut(&Entry),
) -> Result<Totals, Error> {
    let deadline = Instant::now() + limit;
    let mut socket = Socket::new(NETLINK_NETFILTER).map_err(Error::Socket)?;
    socket.bind_auto().map_err(Error::Socket)?;
    socket.set_non_blocking(true).map_err(Error::Socket)?;
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let req = request(seq);
    let sent = socket.send(&req, 0).map_err(Error::Send)?;
    if sent != req.len() {
        return Err(Error::Send(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("only {sent} of {} bytes sent", req.len()),
        )));
    }
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut totals = Totals::default();
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Err(Error::Deadline {
                limit,
                read: totals.read,
            });
        };
        // Whole milliseconds, at least one, so a sub-millisecond remainder still waits.
        let wait = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(wait)) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::Receive(e.into())),
        }
        // MSG_TRUNC makes the kernel report a datagram's full length, so one larger than the
        // buffer is detected instead of read cut short.
        let n = match socket.recv(&mut &mut buf[..], libc::MSG_TRUNC) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Receive(e)),
        };
        if n > buf.len() {
            return Err(Error::Oversized { len: n });
        }
        if absorb(&buf[..n], seq, max_entries, &mut totals, &mut each)? {
            return Ok(totals);
        }
    }
}
