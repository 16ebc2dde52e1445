//! The DHCP client's UDP socket: 0.0.0.0:68 bound to one interface, broadcast allowed.
//!
//! With SO_BINDTODEVICE the kernel sends the client's broadcasts out of that interface even
//! before it has an address, and delivers the servers' broadcast replies to it; several
//! interfaces can each have their own socket on port 68.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use dhcproto::v4::Message;
use dhcproto::{Decodable, Encodable};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::Destination;

/// DHCP server port.
pub const SERVER_PORT: u16 = 67;
/// DHCP client port.
pub const CLIENT_PORT: u16 = 68;

/// A DHCP client socket on one interface.
#[derive(Debug)]
pub struct DhcpSocket {
    socket: UdpSocket,
}

impl DhcpSocket {
    /// Opens the socket on `interface`. Needs a tokio runtime and CAP_NET_RAW (for the device
    /// binding) and CAP_NET_BIND_SERVICE.
    pub fn open(interface: &str) -> io::Result<DhcpSocket> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.bind_device(Some(interface.as_bytes()))?;
        s.set_broadcast(true)?;
        s.set_nonblocking(true)?;
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, CLIENT_PORT)).into())?;
        Ok(DhcpSocket {
            socket: UdpSocket::from_std(s.into())?,
        })
    }

    /// Sends `message` to `to`.
    pub async fn send(&self, message: &Message, to: Destination) -> io::Result<()> {
        let bytes = message.to_vec().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("encoding DHCP message: {e}"),
            )
        })?;
        let ip = match to {
            Destination::Broadcast => Ipv4Addr::BROADCAST,
            Destination::Server(ip) => ip,
        };
        self.socket
            .send_to(&bytes, SocketAddrV4::new(ip, SERVER_PORT))
            .await?;
        Ok(())
    }

    /// Waits for the next well-formed DHCP message; malformed datagrams (among them options whose
    /// lengths do not fit, [`super::wire`]) are skipped.
    pub async fn recv(&self) -> io::Result<Message> {
        let mut buf = vec![0u8; 1500];
        loop {
            let (n, _) = self.socket.recv_from(&mut buf).await?;
            if !super::wire::options_are_sound(&buf[..n]) {
                continue;
            }
            if let Ok(m) = Message::from_bytes(&buf[..n]) {
                return Ok(m);
            }
        }
    }
}
