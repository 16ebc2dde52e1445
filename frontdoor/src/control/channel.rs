//! The control socket on tokio: [`frame::send`] and [`frame::recv`] on a non-blocking socket,
//! waiting for readiness in between. Both the init and the front door use it.
//!
//! A seqpacket send is all or nothing (a frame fits the send buffer whole or `EAGAIN`), so a
//! send cancelled while it waits has sent nothing; a recv cancelled while it waits has
//! received nothing. Either may be used in `select!`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::unix::AsyncFd;

use super::frame::{self, Error};
use super::protocol::Message;

/// One end of the control channel, registered with tokio.
#[derive(Debug)]
pub struct Channel {
    sock: AsyncFd<OwnedFd>,
}

impl Channel {
    /// Makes `sock` non-blocking and registers it with the current tokio runtime.
    pub fn new(sock: OwnedFd) -> io::Result<Channel> {
        let flags = fcntl(&sock, FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&sock, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        // SAFETY: `sock` is an open descriptor the AsyncFd owns from here on: nothing else can
        // close or replace it while it is registered, and an OwnedFd's raw fd never changes.
        let sock = unsafe { AsyncFd::register(sock) }.map_err(io::Error::from)?;
        Ok(Channel { sock })
    }

    /// Sends `message` with `fds` attached, waiting while the socket has no room.
    pub async fn send<T: Message>(&self, message: &T, fds: &[BorrowedFd<'_>]) -> Result<(), Error> {
        loop {
            let mut guard = self.sock.writable().await.map_err(wait_error)?;
            match frame::send(self.sock.get_ref().as_fd(), message, fds) {
                Err(Error::WouldBlock) => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Receives one checked message and its descriptors, waiting until one comes.
    /// [`Error::Closed`] when the peer closed its end.
    pub async fn recv<T: Message>(&self) -> Result<(T, Vec<OwnedFd>), Error> {
        loop {
            let mut guard = self.sock.readable().await.map_err(wait_error)?;
            match frame::recv(self.sock.get_ref().as_fd()) {
                Err(Error::WouldBlock) => guard.clear_ready(),
                other => return other,
            }
        }
    }
}

impl AsFd for Channel {
    /// The socket itself, for calls of one's own (it is non-blocking).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.get_ref().as_fd()
    }
}

fn wait_error(e: io::Error) -> Error {
    Error::Socket {
        op: "wait for",
        source: e
            .raw_os_error()
            .map_or(nix::Error::EIO, nix::Error::from_raw),
    }
}
