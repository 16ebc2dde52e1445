//! Frames of the control channel: one JSON message per `SOCK_SEQPACKET` datagram, with at most
//! [`MAX_FDS`] descriptors attached as `SCM_RIGHTS` (as the init's runtime helper does it).
//!
//! A seqpacket socket keeps message boundaries, so a datagram is a frame. A frame larger than
//! [`MAX_FRAME`] is refused on send; a received frame that was cut (`MSG_TRUNC`), or whose
//! descriptors did not all fit (`MSG_CTRUNC`), is an error, never half a message. Descriptors
//! that came with a refused frame are closed with it.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, socketpair, sockopt, AddressFamily, ControlMessage,
    ControlMessageOwned, MsgFlags, SockFlag, SockType,
};

use super::protocol::{Invalid, Message};

/// The largest frame either side sends.
pub const MAX_FRAME: usize = 256 * 1024;

/// The most descriptors a frame carries.
pub const MAX_FDS: usize = 4;

/// The most descriptors Linux passes in one message (`SCM_MAX_FD`).
const SCM_MAX_FD: usize = 253;

/// Errors sending or receiving a frame. Any of them but [`Error::WouldBlock`] ends the
/// connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket call failed.
    #[error("cannot {op} on the front door's control socket: {source}")]
    Socket {
        /// sendmsg, recvmsg or socketpair.
        op: &'static str,
        /// The error.
        source: nix::Error,
    },
    /// The frame would not fit.
    #[error("control message of {size} bytes exceeds the limit of {MAX_FRAME}")]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// More descriptors than a frame carries.
    #[error("control message with {count} descriptors exceeds the limit of {MAX_FDS}")]
    TooManyFds {
        /// How many were given.
        count: usize,
    },
    /// A received frame lost bytes or descriptors.
    #[error("control message truncated ({what})")]
    Truncated {
        /// What was cut off.
        what: &'static str,
    },
    /// A frame was not one of the messages expected.
    #[error("malformed control message: {0}")]
    Json(#[from] serde_json::Error),
    /// A message outside its bounds, with the wrong descriptors, or of another version.
    #[error("refused control message: {0}")]
    Invalid(#[from] Invalid),
    /// The peer closed the socket.
    #[error("the peer closed the control socket")]
    Closed,
    /// The socket has no data now, or no room (non-blocking sockets only).
    #[error("control socket would block")]
    WouldBlock,
}

/// The send buffer each end asks for. A Unix datagram must fit its sender's buffer whole, and
/// the default (`net.core.wmem_default`, 208 KiB) is smaller than [`MAX_FRAME`].
const SEND_BUFFER: usize = MAX_FRAME + 64 * 1024;

/// A connected pair of seqpacket sockets, both close-on-exec, each able to send a frame of
/// [`MAX_FRAME`] bytes.
pub fn pair() -> Result<(OwnedFd, OwnedFd), Error> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|source| Error::Socket {
        op: "socketpair",
        source,
    })?;
    for end in [&a, &b] {
        size_send_buffer(end.as_fd())?;
    }
    Ok((a, b))
}

/// Makes `sock`'s send buffer large enough for a frame of [`MAX_FRAME`] bytes. `SO_SNDBUF` is
/// capped by `net.core.wmem_max` (which the kernel doubles, enough by default); the init, with
/// `CAP_NET_ADMIN`, passes the cap with `SO_SNDBUFFORCE` should the board lower it.
fn size_send_buffer(sock: BorrowedFd<'_>) -> Result<(), Error> {
    if setsockopt(&sock, sockopt::SndBufForce, &SEND_BUFFER).is_err() {
        setsockopt(&sock, sockopt::SndBuf, &SEND_BUFFER).map_err(|source| Error::Socket {
            op: "set the send buffer",
            source,
        })?;
    }
    Ok(())
}

/// Sends `message` with `fds` attached as one frame, after checking it as the receiver will.
pub fn send<T: Message>(
    sock: BorrowedFd<'_>,
    message: &T,
    fds: &[BorrowedFd<'_>],
) -> Result<(), Error> {
    message.check(fds.len())?;
    let bytes = serde_json::to_vec(message)?;
    send_bytes(sock, &bytes, fds)
}

/// Sends `bytes` as one frame with `fds` attached, unchecked (the tests send broken frames).
pub(crate) fn send_bytes(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<(), Error> {
    if bytes.len() > MAX_FRAME {
        return Err(Error::TooLarge { size: bytes.len() });
    }
    if fds.len() > MAX_FDS {
        return Err(Error::TooManyFds { count: fds.len() });
    }
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
    let iov = [IoSlice::new(bytes)];
    let sent = loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Err(nix::Error::EINTR) => continue,
            other => break other,
        }
    };
    match sent {
        Ok(_) => Ok(()),
        Err(nix::Error::EAGAIN) => Err(Error::WouldBlock),
        Err(nix::Error::EPIPE) | Err(nix::Error::ECONNRESET) => Err(Error::Closed),
        Err(source) => Err(Error::Socket {
            op: "sendmsg",
            source,
        }),
    }
}

/// Receives one frame and the descriptors that came with it, and checks it: it must parse as
/// a `T` and be within its bounds with the descriptors it carries.
pub fn recv<T: Message>(sock: BorrowedFd<'_>) -> Result<(T, Vec<OwnedFd>), Error> {
    let mut buf = vec![0u8; MAX_FRAME + 1];
    let (len, fds) = recv_bytes(sock, &mut buf)?;
    let bytes = &buf[..len];
    let message: T = match serde_json::from_slice(bytes) {
        Ok(message) => message,
        Err(e) => {
            // A peer of another version is named as such, not as a parse error.
            return Err(match T::announced_protocol(bytes) {
                Some(got) if got != super::protocol::PROTOCOL => Invalid::Protocol { got }.into(),
                _ => e.into(),
            });
        }
    };
    message.check(fds.len())?;
    Ok((message, fds))
}

/// Receives one whole frame into `buf` (which must be larger than [`MAX_FRAME`], so that a
/// longer frame shows as cut); returns its length and its descriptors.
fn recv_bytes(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>), Error> {
    // Room for as many descriptors as the kernel passes in one message (SCM_MAX_FD), not just
    // the few a frame may carry: a peer that sends more must not make the kernel install some
    // and flag the rest as cut, which would leave the installed ones unowned here.
    let mut cmsg = nix::cmsg_space!([RawFd; SCM_MAX_FD]);
    let mut iov = [IoSliceMut::new(buf)];
    let received = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::Error::EINTR) => continue,
            other => break other,
        }
    };
    let msg = match received {
        Ok(msg) => msg,
        Err(nix::Error::EAGAIN) => return Err(Error::WouldBlock),
        Err(nix::Error::ECONNRESET) => return Err(Error::Closed),
        Err(source) => {
            return Err(Error::Socket {
                op: "recvmsg",
                source,
            })
        }
    };
    // Take ownership of every descriptor first, so that each is closed if the frame is refused.
    let mut fds = Vec::new();
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(received) = c {
                for fd in received {
                    // SAFETY: the kernel just installed this descriptor in our table for this
                    // message; nothing else owns it.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
    }
    let (len, flags) = (msg.bytes, msg.flags);
    if flags.contains(MsgFlags::MSG_CTRUNC) || fds.len() > MAX_FDS {
        return Err(Error::Truncated {
            what: "descriptors",
        });
    }
    if flags.contains(MsgFlags::MSG_TRUNC) || len > MAX_FRAME {
        return Err(Error::Truncated { what: "bytes" });
    }
    if len == 0 {
        return Err(Error::Closed);
    }
    Ok((len, fds))
}
