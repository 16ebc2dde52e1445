//! The init ↔ helper protocol: one JSON message per `SOCK_SEQPACKET` datagram, with file
//! descriptors attached as `SCM_RIGHTS`.
//!
//! Frames are `baton_seqpacket`'s: a frame larger than [`MAX_MESSAGE`] is refused on send; a
//! received frame that was truncated or came with more than [`MAX_FDS`] descriptors is an
//! error, never half a message, and its descriptors are closed. The init sends
//! [`Request`]s tagged with a sequence number; the helper answers each with a [`Reply`] carrying
//! the same number, and sends [`ToInit::Exit`] whenever a container ends.

use std::os::fd::{BorrowedFd, OwnedFd};

use baton_seqpacket::Limits;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{ContainerConfig, Exit, Started};

/// The largest frame either side sends.
pub const MAX_MESSAGE: usize = 128 * 1024;

/// The most descriptors a frame carries.
pub const MAX_FDS: usize = 4;

/// The limits of both ends.
const LIMITS: Limits = Limits {
    max_frame: MAX_MESSAGE,
    max_fds: MAX_FDS,
};

/// Errors sending or receiving a frame.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket call failed.
    #[error("cannot {op} on the runtime helper socket: {source}")]
    Socket {
        /// sendmsg, recvmsg or socketpair.
        op: &'static str,
        /// The error.
        source: nix::Error,
    },
    /// The frame would not fit.
    #[error("runtime message of {size} bytes exceeds the limit of {MAX_MESSAGE}")]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// More descriptors than a frame carries.
    #[error("runtime message with {count} descriptors exceeds the limit of {MAX_FDS}")]
    TooManyFds {
        /// How many were given.
        count: usize,
    },
    /// A received frame lost bytes or descriptors.
    #[error("runtime message truncated ({what})")]
    Truncated {
        /// What was cut off.
        what: &'static str,
    },
    /// A frame was not the JSON expected.
    #[error("malformed runtime message: {0}")]
    Json(#[from] serde_json::Error),
    /// The peer closed the socket.
    #[error("the peer closed the runtime socket")]
    Closed,
    /// The socket has no data now (non-blocking sockets only).
    #[error("runtime socket would block")]
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

/// What the init asks of the helper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Create and start a container; its stdout and stderr come as the frame's two descriptors.
    Run(Box<ContainerConfig>),
    /// Send a signal to a container's init.
    Signal {
        /// The container.
        id: String,
        /// The signal number.
        signal: i32,
    },
    /// Delete an ended container's state, cgroup and root mount.
    Remove {
        /// The container.
        id: String,
    },
}

/// A request with its sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToHelper {
    /// Echoed in the reply.
    pub seq: u64,
    /// The request.
    pub request: Request,
}

/// The helper's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The container runs.
    Started(Started),
    /// Done.
    Done,
    /// It failed; the message says what and on what.
    Failed(String),
}

/// What the helper sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToInit {
    /// The helper cleaned up and serves requests; `notes` lists what it found left over or could
    /// not clean.
    Ready {
        /// One line per leftover removed or cleanup step that failed.
        notes: Vec<String>,
    },
    /// The answer to request `seq`.
    Reply {
        /// The request's number.
        seq: u64,
        /// The answer.
        reply: Reply,
    },
    /// A container ended.
    Exit(Exit),
}

/// A connected pair of seqpacket sockets, both close-on-exec.
pub fn pair() -> Result<(OwnedFd, OwnedFd), Error> {
    Ok(baton_seqpacket::pair()?)
}

/// Sends `message` with `fds` attached as one frame.
pub fn send<T: Serialize>(
    sock: BorrowedFd<'_>,
    message: &T,
    fds: &[BorrowedFd<'_>],
) -> Result<(), Error> {
    let bytes = serde_json::to_vec(message)?;
    // Descriptors are bounded where they arrive (and the tests send too many on purpose).
    let limits = Limits {
        max_fds: usize::MAX,
        ..LIMITS
    };
    Ok(baton_seqpacket::send(sock, &bytes, fds, limits)?)
}

/// Receives one frame: the message and the descriptors that came with it.
pub fn recv<T: DeserializeOwned>(sock: BorrowedFd<'_>) -> Result<(T, Vec<OwnedFd>), Error> {
    let (bytes, fds) = baton_seqpacket::recv(sock, LIMITS)?;
    Ok((serde_json::from_slice(&bytes)?, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::runtime::sample_config;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn a_frame_round_trips_with_its_descriptors() {
        let (a, b) = pair().expect("pair");
        let (reader, writer) = nix::unistd::pipe().expect("pipe");
        let mut reader = std::fs::File::from(reader);
        let msg = ToHelper {
            seq: 7,
            request: Request::Run(Box::new(sample_config())),
        };
        send(a.as_fd(), &msg, &[writer.as_fd()]).expect("send");
        drop(writer);
        let (got, fds): (ToHelper, _) = recv(b.as_fd()).expect("recv");
        assert_eq!(got, msg);
        assert_eq!(fds.len(), 1);
        // The received descriptor is the pipe's write end.
        let mut w = std::fs::File::from(fds.into_iter().next().expect("fd"));
        w.write_all(b"hello").expect("write");
        drop(w);
        let mut out = String::new();
        reader.read_to_string(&mut out).expect("read");
        assert_eq!(out, "hello");
    }

    #[test]
    fn frames_keep_their_boundaries() {
        let (a, b) = pair().expect("pair");
        for seq in 0..3 {
            let m = ToInit::Reply {
                seq,
                reply: Reply::Done,
            };
            send(a.as_fd(), &m, &[]).expect("send");
        }
        for seq in 0..3 {
            let (m, fds): (ToInit, _) = recv(b.as_fd()).expect("recv");
            assert!(fds.is_empty());
            assert_eq!(
                m,
                ToInit::Reply {
                    seq,
                    reply: Reply::Done
                }
            );
        }
    }

    #[test]
    fn oversized_frames_are_refused_on_send() {
        let (a, _b) = pair().expect("pair");
        let mut c = sample_config();
        c.files.push(super::super::File {
            container: "/etc/big".into(),
            contents: vec![b'x'; MAX_MESSAGE],
        });
        let err = send(a.as_fd(), &Request::Run(Box::new(c)), &[]).expect_err("too large");
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    }

    #[test]
    fn garbage_is_a_json_error_and_a_closed_peer_is_closed() {
        let (a, b) = pair().expect("pair");
        nix::unistd::write(&a, b"{not json").expect("write");
        let err = recv::<ToInit>(b.as_fd()).expect_err("garbage");
        assert!(matches!(err, Error::Json(_)), "{err}");
        drop(a);
        let err = recv::<ToInit>(b.as_fd()).expect_err("closed");
        assert!(matches!(err, Error::Closed), "{err}");
    }

    #[test]
    fn too_many_descriptors_are_reported_as_truncation() {
        let (a, b) = pair().expect("pair");
        let pipes: Vec<_> = (0..MAX_FDS + 2)
            .map(|_| nix::unistd::pipe().expect("pipe"))
            .collect();
        let fds: Vec<BorrowedFd<'_>> = pipes.iter().map(|(r, _)| r.as_fd()).collect();
        send(a.as_fd(), &ToInit::Ready { notes: vec![] }, &fds).expect("send");
        let err = recv::<ToInit>(b.as_fd()).expect_err("truncated");
        assert!(
            matches!(
                err,
                Error::Truncated {
                    what: "descriptors"
                }
            ),
            "{err}"
        );
    }
}
