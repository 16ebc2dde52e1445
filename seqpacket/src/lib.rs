//! Frames between a process and a helper it started: one datagram of a `SOCK_SEQPACKET` pair per
//! frame, with descriptors attached as `SCM_RIGHTS`. Used by the init's runtime helper and by the
//! front door's control channel, each with its own [`Limits`].
//!
//! A seqpacket socket keeps message boundaries, so a datagram is a frame. A frame over its limit
//! is refused on send. A received frame that was cut (`MSG_TRUNC`), or that carried more
//! descriptors than its limit, is an error, never half a message, and every descriptor that came
//! with it is closed: the receive buffer has room for as many descriptors as the kernel passes in
//! one message, so none is left installed and unowned.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, socketpair, sockopt, AddressFamily, ControlMessage,
    ControlMessageOwned, MsgFlags, SockFlag, SockType,
};

/// The most descriptors Linux passes in one message (`SCM_MAX_FD`).
const SCM_MAX_FD: usize = 253;

/// What one side of a channel sends and takes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest frame, in bytes.
    pub max_frame: usize,
    /// The most descriptors a frame carries.
    pub max_fds: usize,
}

/// Errors sending or receiving a frame. Any of them but [`Error::WouldBlock`] ends the
/// connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket call failed.
    #[error("cannot {op}: {source}")]
    Socket {
        /// sendmsg, recvmsg or socketpair.
        op: &'static str,
        /// The error.
        source: nix::Error,
    },
    /// The frame would not fit.
    #[error("a frame of {size} bytes exceeds the limit")]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// More descriptors than a frame carries.
    #[error("a frame with {count} descriptors exceeds the limit")]
    TooManyFds {
        /// How many were given.
        count: usize,
    },
    /// A received frame lost bytes or came with too many descriptors.
    #[error("frame truncated ({what})")]
    Truncated {
        /// What was cut off.
        what: &'static str,
    },
    /// The peer closed the socket.
    #[error("the peer closed the socket")]
    Closed,
    /// The socket has no data now, or no room (non-blocking sockets only).
    #[error("the socket would block")]
    WouldBlock,
}

/// A connected pair of seqpacket sockets, both close-on-exec.
pub fn pair() -> Result<(OwnedFd, OwnedFd), Error> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|source| Error::Socket {
        op: "socketpair",
        source,
    })
}

/// Asks for a send buffer of `bytes` on `sock`: a Unix datagram must fit its sender's buffer
/// whole. `SO_SNDBUFFORCE` passes `net.core.wmem_max` where the caller may (`CAP_NET_ADMIN`);
/// otherwise `SO_SNDBUF`, which the kernel caps.
pub fn size_send_buffer(sock: BorrowedFd<'_>, bytes: usize) -> Result<(), Error> {
    if setsockopt(&sock, sockopt::SndBufForce, &bytes).is_err() {
        setsockopt(&sock, sockopt::SndBuf, &bytes).map_err(|source| Error::Socket {
            op: "set the send buffer",
            source,
        })?;
    }
    Ok(())
}

/// Sends `bytes` as one frame with `fds` attached, within `limits`.
pub fn send(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    limits: Limits,
) -> Result<(), Error> {
    if bytes.len() > limits.max_frame {
        return Err(Error::TooLarge { size: bytes.len() });
    }
    if fds.len() > limits.max_fds {
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

/// Receives one whole frame within `limits`; returns its bytes and its descriptors.
pub fn recv(sock: BorrowedFd<'_>, limits: Limits) -> Result<(Vec<u8>, Vec<OwnedFd>), Error> {
    // One byte more than a frame may have, so that a longer one shows as cut.
    let mut buf = vec![0u8; limits.max_frame + 1];
    let mut cmsg = nix::cmsg_space!([RawFd; SCM_MAX_FD]);
    let mut iov = [IoSliceMut::new(&mut buf)];
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
    if flags.contains(MsgFlags::MSG_CTRUNC) || fds.len() > limits.max_fds {
        return Err(Error::Truncated {
            what: "descriptors",
        });
    }
    if flags.contains(MsgFlags::MSG_TRUNC) || len > limits.max_frame {
        return Err(Error::Truncated { what: "bytes" });
    }
    if len == 0 {
        return Err(Error::Closed);
    }
    buf.truncate(len);
    Ok((buf, fds))
}
