//! Frames of the control channel: one JSON message per `SOCK_SEQPACKET` datagram, with at most
//! [`MAX_FDS`] descriptors attached as `SCM_RIGHTS` (as the init's runtime helper does it).
//!
//! A seqpacket socket keeps message boundaries, so a datagram is a frame. A frame larger than
//! [`MAX_FRAME`] is refused on send; a received frame that was cut (`MSG_TRUNC`), or whose
//! descriptors did not all fit (`MSG_CTRUNC`), is an error, never half a message. Descriptors
//! that came with a refused frame are closed with it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use baton_seqpacket::Limits;

use super::protocol::{Invalid, Message};

/// The largest frame either side sends.
pub const MAX_FRAME: usize = 256 * 1024;

/// The most descriptors a frame carries.
pub const MAX_FDS: usize = 4;

/// The limits of both ends.
const LIMITS: Limits = Limits {
    max_frame: MAX_FRAME,
    max_fds: MAX_FDS,
};

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

impl From<baton_seqpacket::Error> for Error {
    fn from(e: baton_seqpacket::Error) -> Self {
        use baton_seqpacket::Error as E;
        match e {
            E::Socket { op, source } => Error::Socket { op, source },
            E::TooLarge { size } => Error::TooLarge { size },
            E::TooManyFds { count } => Error::TooManyFds { count },
            E::Truncated { what } => Error::Truncated { what },
            E::Closed => Error::Closed,
            E::WouldBlock => Error::WouldBlock,
        }
    }
}

/// The send buffer each end asks for. A Unix datagram must fit its sender's buffer whole, and
/// the default (`net.core.wmem_default`, 208 KiB) is smaller than [`MAX_FRAME`].
const SEND_BUFFER: usize = MAX_FRAME + 64 * 1024;

/// A connected pair of seqpacket sockets, both close-on-exec, each able to send a frame of
/// [`MAX_FRAME`] bytes.
pub fn pair() -> Result<(OwnedFd, OwnedFd), Error> {
    let (a, b) = baton_seqpacket::pair()?;
    for end in [&a, &b] {
        baton_seqpacket::size_send_buffer(end.as_fd(), SEND_BUFFER)?;
    }
    Ok((a, b))
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
    Ok(baton_seqpacket::send(sock, bytes, fds, LIMITS)?)
}

/// Receives one frame and the descriptors that came with it, and checks it: it must parse as
/// a `T` and be within its bounds with the descriptors it carries.
pub fn recv<T: Message>(sock: BorrowedFd<'_>) -> Result<(T, Vec<OwnedFd>), Error> {
    let (buf, fds) = baton_seqpacket::recv(sock, LIMITS)?;
    let bytes = &buf[..];
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
