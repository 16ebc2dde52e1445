//! An AF_PACKET socket that sends and receives ARP payloads on one interface.
//!
//! SOCK_DGRAM packet sockets let the kernel build and strip the Ethernet header, so the
//! socket speaks [`ArpPacket`]s only.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::arp::{ArpPacket, LEN};

const ETH_P_ARP: u16 = libc::ETH_P_ARP as u16;

/// An ARP socket bound to one interface.
#[derive(Debug)]
pub struct ArpSocket {
    fd: AsyncFd<OwnedFd>,
    index: i32,
}

fn link_address(index: i32, destination: [u8; 6]) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain old data; all-zero bytes are a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = ETH_P_ARP.to_be();
    sa.sll_ifindex = index;
    sa.sll_halen = 6;
    sa.sll_addr[..6].copy_from_slice(&destination);
    sa
}

impl ArpSocket {
    /// Opens the socket on the interface with kernel index `index` (needs CAP_NET_RAW and a
    /// tokio runtime).
    pub fn open(index: u32) -> io::Result<ArpSocket> {
        let index =
            i32::try_from(index).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: plain socket(2) call with constant arguments; the result is checked below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(ETH_P_ARP.to_be()),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sa = link_address(index, [0; 6]);
        // SAFETY: `sa` is a valid sockaddr_ll that lives across the call, and the length passed
        // is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::addr_of!(sa).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it until dropped, so the
        // descriptor stays open and `as_raw_fd` keeps returning the same one.
        let fd = unsafe { AsyncFd::register(fd) }?;
        Ok(ArpSocket { fd, index })
    }

    /// Broadcasts `packet` on the interface.
    pub async fn send(&self, packet: &ArpPacket) -> io::Result<()> {
        let bytes = packet.encode();
        let sa = link_address(self.index, [0xff; 6]);
        self.fd
            .async_io(Interest::WRITABLE, |fd| {
                // SAFETY: `bytes` and `sa` are valid for the whole call and the lengths passed
                // are theirs.
                let n = unsafe {
                    libc::sendto(
                        fd.as_raw_fd(),
                        bytes.as_ptr().cast(),
                        bytes.len(),
                        0,
                        std::ptr::addr_of!(sa).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            })
            .await
    }

    /// Waits for the next Ethernet/IPv4 ARP packet; anything else is skipped.
    pub async fn recv(&self) -> io::Result<ArpPacket> {
        let mut buf = [0u8; 128];
        loop {
            let n = self
                .fd
                .async_io(Interest::READABLE, |fd| {
                    // SAFETY: `buf` is valid and writable for `buf.len()` bytes.
                    let n = unsafe {
                        libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                    };
                    usize::try_from(n).map_err(|_| io::Error::last_os_error())
                })
                .await?;
            if n >= LEN {
                if let Some(p) = ArpPacket::decode(&buf[..n]) {
                    return Ok(p);
                }
            }
        }
    }
}
