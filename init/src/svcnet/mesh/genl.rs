//! A small generic netlink client for the `wireguard` family: one socket per operation, the
//! family id resolved with `CTRL_CMD_GETFAMILY`, requests acknowledged, dumps collected.

use std::io;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkDeserializable, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlMessage};
use netlink_packet_wireguard::WireguardMessage;
use netlink_sys::{protocols::NETLINK_GENERIC, AsyncSocket, AsyncSocketExt, TokioSocket};

use super::Error;

/// How long the kernel may take to answer one request (it answers at once; this only keeps
/// a broken kernel from hanging the caller).
const ANSWER_LIMIT: Duration = Duration::from_secs(5);

/// `GENL_ID_CTRL` (linux/genetlink.h): the fixed id of the family that resolves the others.
const GENL_ID_CTRL: u16 = 0x10;

/// A generic netlink socket talking to the kernel's `wireguard` family.
pub(super) struct Genl {
    socket: TokioSocket,
    family: u16,
    seq: u32,
}

/// Builds the netlink message for a generic netlink payload with the family id `family`.
pub(super) fn message<F>(
    payload: F,
    family: u16,
    flags: u16,
    seq: u32,
) -> NetlinkMessage<GenlMessage<F>>
where
    F: GenlFamily + std::fmt::Debug,
    GenlMessage<F>: NetlinkSerializable,
{
    let mut genl = GenlMessage::from_payload(payload);
    genl.set_resolved_family_id(family);
    let mut msg = NetlinkMessage::from(genl);
    msg.header.flags = flags;
    msg.header.sequence_number = seq;
    msg.finalize();
    msg
}

/// The wire bytes of `msg`.
pub(super) fn bytes<I: NetlinkSerializable>(msg: &NetlinkMessage<I>) -> Vec<u8> {
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// Why a datagram from the kernel could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatagramError {
    /// A message header is malformed.
    #[error("bad netlink header: {0}")]
    Header(#[source] netlink_packet_core::DecodeError),
    /// A message claims more bytes than the datagram holds.
    #[error("truncated netlink message")]
    Truncated,
    /// A message's body is malformed.
    #[error("{0}")]
    Message(#[source] netlink_packet_core::DecodeError),
}

/// Splits a datagram into its netlink messages and parses each one.
pub(super) fn parse_datagram<I>(datagram: &[u8]) -> Result<Vec<NetlinkMessage<I>>, DatagramError>
where
    I: NetlinkDeserializable,
{
    let mut out = Vec::new();
    let mut at = 0;
    while at < datagram.len() {
        let rest = &datagram[at..];
        let len = NetlinkBuffer::new_checked(rest)
            .map_err(DatagramError::Header)?
            .length() as usize;
        let one = rest.get(..len).ok_or(DatagramError::Truncated)?;
        out.push(NetlinkMessage::<I>::deserialize(one).map_err(DatagramError::Message)?);
        // Messages are padded to 4 bytes.
        at += (len + 3) & !3;
    }
    Ok(out)
}

impl Genl {
    /// Opens a socket in the calling thread's network namespace and resolves the `wireguard`
    /// family; [`Error::NoWireguard`] if the kernel does not know it.
    pub(super) async fn wireguard() -> Result<Genl, Error> {
        let mut socket = TokioSocket::new(NETLINK_GENERIC).map_err(Error::Connect)?;
        socket.socket_mut().bind_auto().map_err(Error::Connect)?;
        // Only shortens error answers and adds the kernel's reason; old kernels lack it.
        let _ = socket.socket_mut().set_ext_ack(true);
        let mut genl = Genl {
            socket,
            family: 0,
            seq: 0,
        };
        let ask = GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(
                <WireguardMessage as GenlFamily>::family_name().to_string(),
            )],
        };
        let what = "resolving the generic netlink family 'wireguard'";
        let answers = match genl
            .exchange(ask, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, what)
            .await
        {
            Err(Error::Genl { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {
                return Err(Error::NoWireguard)
            }
            r => r?,
        };
        genl.family = answers
            .iter()
            .flat_map(|m| m.nlas.iter())
            .find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
            .ok_or(Error::NoWireguard)?;
        Ok(genl)
    }

    /// Sends one request and waits for its acknowledgement.
    pub(super) async fn request(&mut self, msg: WireguardMessage, what: &str) -> Result<(), Error> {
        let family = self.family;
        self.exchange(msg, family, NLM_F_REQUEST | NLM_F_ACK, what)
            .await
            .map(drop)
    }

    /// Sends a dump request and returns every message of the answer.
    pub(super) async fn dump(
        &mut self,
        msg: WireguardMessage,
        what: &str,
    ) -> Result<Vec<WireguardMessage>, Error> {
        let family = self.family;
        self.exchange(msg, family, NLM_F_REQUEST | NLM_F_DUMP, what)
            .await
    }

    /// Sends `payload` and collects the answers until the acknowledgement, the end of the dump
    /// or an error, within [`ANSWER_LIMIT`].
    async fn exchange<F>(
        &mut self,
        payload: F,
        family: u16,
        flags: u16,
        what: &str,
    ) -> Result<Vec<F>, Error>
    where
        F: GenlFamily + std::fmt::Debug,
        GenlMessage<F>: NetlinkSerializable + NetlinkDeserializable,
    {
        let failed = |source: io::Error| Error::Genl {
            what: what.to_string(),
            source,
        };
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let out = bytes(&message(payload, family, flags, seq));
        let sent = self.socket.send(&out).await.map_err(failed)?;
        if sent != out.len() {
            return Err(failed(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("only {sent} of {} bytes sent", out.len()),
            )));
        }
        let collect = async {
            let mut got = Vec::new();
            loop {
                let (datagram, _) = self.socket.recv_from_full().await.map_err(failed)?;
                let messages = parse_datagram::<GenlMessage<F>>(&datagram).map_err(|reason| {
                    Error::Malformed {
                        what: what.to_string(),
                        reason,
                    }
                })?;
                for m in messages {
                    if m.header.sequence_number != seq {
                        continue;
                    }
                    match m.payload {
                        NetlinkPayload::InnerMessage(genl) => got.push(genl.payload),
                        NetlinkPayload::Error(e) => match e.code {
                            None => return Ok(got),
                            Some(_) => return Err(failed(e.to_io())),
                        },
                        NetlinkPayload::Done(done) => {
                            return match done.code {
                                c if c < 0 => Err(failed(io::Error::from_raw_os_error(-c))),
                                _ => Ok(got),
                            }
                        }
                        _ => {}
                    }
                }
            }
        };
        match tokio::time::timeout(ANSWER_LIMIT, collect).await {
            Ok(r) => r,
            Err(_) => Err(failed(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {ANSWER_LIMIT:?}"),
            ))),
        }
    }
}
