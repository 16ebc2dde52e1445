//! Sending a batch over an `NETLINK_NETFILTER` socket and matching the kernel's answers.
//!
//! The kernel processes a batch synchronously inside `send`, so by the time `send` returns
//! every acknowledgement and error is already queued on the socket: they are read without
//! blocking until the queue is empty. Every message asked for an acknowledgement, so
//! success means one zero-error answer per message; a failure is reported for the first
//! message (in batch order) the kernel refused, named by its description.

use std::io;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use super::encode::Batch;
use super::Error;

/// `NLMSG_ERROR`: an error or acknowledgement.
const NLMSG_ERROR: u16 = 2;
/// `NLM_F_ACK_TLVS` on an error message: extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLM_F_CAPPED` on an error message: the request's payload is not echoed.
const NLM_F_CAPPED: u16 = 0x100;
/// `NLMSGERR_ATTR_MSG`: a human-readable error string.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// One answer: the sequence number it refers to, the (positive) errno or 0, and the kernel's
/// extended-ack message if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Sequence number of the request.
    pub seq: u32,
    /// 0 for an acknowledgement, else the errno.
    pub errno: i32,
    /// The kernel's explanation, if it gave one.
    pub message: Option<String>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses the `NLMSG_ERROR` messages in one datagram; other message types are skipped.
pub fn parse_answers(datagram: &[u8]) -> Result<Vec<Answer>, Error> {
    let malformed = |what: &str| Error::Malformed(what.to_string());
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= datagram.len() {
        let len = u32_at(datagram, at).ok_or_else(|| malformed("truncated header"))? as usize;
        let kind = u16_at(datagram, at + 4).ok_or_else(|| malformed("truncated header"))?;
        let flags = u16_at(datagram, at + 6).ok_or_else(|| malformed("truncated header"))?;
        if len < 16 || at + len > datagram.len() {
            return Err(malformed("message length out of bounds"));
        }
        let msg = &datagram[at..at + len];
        if kind == NLMSG_ERROR {
            // struct nlmsgerr: int error; struct nlmsghdr msg; [payload]; [TLVs]
            let raw = u32_at(msg, 16).ok_or_else(|| malformed("truncated nlmsgerr"))?;
            let errno = -(raw as i32);
            let orig_len = u32_at(msg, 20).ok_or_else(|| malformed("truncated nlmsgerr"))? as usize;
            let seq = u32_at(msg, 28).ok_or_else(|| malformed("truncated nlmsgerr"))?;
            let mut tlv_at = 20
                + if flags & NLM_F_CAPPED != 0 || errno == 0 {
                    16
                } else {
                    super::wire::align(orig_len)
                };
            let mut message = None;
            if flags & NLM_F_ACK_TLVS != 0 {
                while tlv_at + 4 <= msg.len() {
                    let (Some(tlen), Some(tkind)) = (u16_at(msg, tlv_at), u16_at(msg, tlv_at + 2))
                    else {
                        break;
                    };
                    let tlen = usize::from(tlen);
                    if tlen < 4 || tlv_at + tlen > msg.len() {
                        break;
                    }
                    if tkind & 0x3fff == NLMSGERR_ATTR_MSG {
                        let text = &msg[tlv_at + 4..tlv_at + tlen];
                        let text = text.split(|b| *b == 0).next().unwrap_or_default();
                        message = Some(String::from_utf8_lossy(text).into_owned());
                    }
                    tlv_at += super::wire::align(tlen);
                }
            }
            out.push(Answer {
                seq,
                errno,
                message,
            });
        }
        at += super::wire::align(len);
    }
    Ok(out)
}

/// Receive buffer room per message of a batch: every message is answered while `send` runs,
/// and each answer costs the socket a whole buffer (about 1 KiB of accounted memory), so a
/// batch of a few hundred messages overflows the default buffer (`ENOBUFS`).
const RCVBUF_PER_MESSAGE: usize = 2048;
/// The least receive buffer asked for.
const RCVBUF_MIN: usize = 256 * 1024;

/// Grows the receive buffer to hold every answer to `messages` messages: beyond `rmem_max`
/// with `SO_RCVBUFFORCE` (root, as the init is), else as far as `SO_RCVBUF` goes.
fn size_receive_buffer(socket: &Socket, messages: usize) {
    let want = RCVBUF_MIN.max(messages.saturating_mul(RCVBUF_PER_MESSAGE));
    grow_buffer(socket, [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF], want);
}

/// Grows the send buffer to take a batch of `bytes` in one `send` (netlink refuses a message
/// larger than the buffer with `EMSGSIZE`), as `nft` does.
fn size_send_buffer(socket: &Socket, bytes: usize) {
    // With room for what the kernel accounts beyond the bytes themselves.
    let want = bytes.saturating_add(64 * 1024);
    grow_buffer(socket, [libc::SO_SNDBUFFORCE, libc::SO_SNDBUF], want);
}

/// Sets a socket buffer size with the first of `options` that works.
fn grow_buffer(socket: &Socket, options: [libc::c_int; 2], want: usize) {
    use std::os::fd::AsRawFd;
    let size = libc::c_int::try_from(want).unwrap_or(libc::c_int::MAX);
    for option in options {
        // SAFETY: the descriptor is the open socket we own; the value is a c_int of the size given.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return;
        }
    }
}

/// Opens a netfilter netlink socket in the calling thread's network namespace, with room for
/// the answers to `messages` messages.
fn open(messages: usize) -> Result<Socket, Error> {
    let mut socket = Socket::new(NETLINK_NETFILTER).map_err(Error::Socket)?;
    socket.bind_auto().map_err(Error::Socket)?;
    // Too small a buffer shows as ENOBUFS while reading the answers; nothing to fail on here.
    size_receive_buffer(&socket, messages);
    // Both are optimisations of the answers (shorter, with a reason); old kernels lack them.
    let _ = socket.set_cap_ack(true);
    let _ = socket.set_ext_ack(true);
    Ok(socket)
}

/// Sends `batch` and waits for the kernel's verdict on every message in it.
pub fn send(batch: &Batch) -> Result<(), Error> {
    let socket = open(batch.messages.len())?;
    size_send_buffer(&socket, batch.bytes.len());
    let sent = socket.send(&batch.bytes, 0).map_err(|source| Error::Send {
        len: batch.bytes.len(),
        source,
    })?;
    if sent != batch.bytes.len() {
        return Err(Error::Send {
            len: batch.bytes.len(),
            source: io::Error::new(io::ErrorKind::WriteZero, format!("only {sent} bytes sent")),
        });
    }
    let mut answers = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match socket.recv(&mut &mut buf[..], libc::MSG_DONTWAIT) {
            Ok(n) => answers.extend(parse_answers(&buf[..n.min(buf.len())])?),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Receive(e)),
        }
    }
    verdict(batch, &answers)
}

/// Decides the outcome of a batch from the answers the kernel gave.
pub fn verdict(batch: &Batch, answers: &[Answer]) -> Result<(), Error> {
    for (seq, what) in &batch.messages {
        let refused = answers.iter().find(|a| a.seq == *seq && a.errno != 0);
        if let Some(a) = refused {
            return Err(Error::Kernel {
                what: what.clone(),
                source: io::Error::from_raw_os_error(a.errno),
                detail: a
                    .message
                    .clone()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default(),
            });
        }
    }
    // An error outside the batch's own messages (e.g. on the batch header) fails it too.
    if let Some(a) = answers.iter().find(|a| a.errno != 0) {
        return Err(Error::Kernel {
            what: format!("the batch (message {})", a.seq),
            source: io::Error::from_raw_os_error(a.errno),
            detail: a
                .message
                .clone()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default(),
        });
    }
    for (seq, what) in &batch.messages {
        if !answers.iter().any(|a| a.seq == *seq) {
            return Err(Error::NoAck { what: what.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `NLMSG_ERROR` answer as the kernel writes it with `NETLINK_CAP_ACK` and, when `text`
    /// is given, `NETLINK_EXT_ACK`.
    fn answer(seq: u32, errno: i32, text: Option<&str>) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(-errno).to_ne_bytes());
        // The request's header: length, type, flags, seq, pid.
        body.extend_from_slice(&40u32.to_ne_bytes());
        body.extend_from_slice(&0x0a06u16.to_ne_bytes());
        body.extend_from_slice(&0u16.to_ne_bytes());
        body.extend_from_slice(&seq.to_ne_bytes());
        body.extend_from_slice(&0u32.to_ne_bytes());
        let mut flags = NLM_F_CAPPED;
        if let Some(t) = text {
            flags |= NLM_F_ACK_TLVS;
            let mut w = super::super::wire::Writer::new();
            w.string(NLMSGERR_ATTR_MSG, t);
            body.extend_from_slice(w.bytes());
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(16 + body.len() as u32).to_ne_bytes());
        out.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend(body);
        out
    }

    fn batch() -> Batch {
        Batch {
            bytes: Vec::new(),
            messages: vec![
                (1, "table inet baton".into()),
                (2, "rule 1 of chain inet baton c".into()),
            ],
        }
    }

    #[test]
    fn parses_acks_and_errors_with_their_reason() {
        let mut datagram = answer(1, 0, None);
        datagram.extend(answer(2, libc::EOPNOTSUPP, Some("bad expression")));
        let answers = parse_answers(&datagram).expect("well-formed");
        assert_eq!(
            answers,
            vec![
                Answer {
                    seq: 1,
                    errno: 0,
                    message: None
                },
                Answer {
                    seq: 2,
                    errno: libc::EOPNOTSUPP,
                    message: Some("bad expression".into())
                },
            ]
        );
        let err = verdict(&batch(), &answers).expect_err("the rule was refused");
        let text = err.to_string();
        assert!(
            text.starts_with("nftables: the kernel refused rule 1 of chain inet baton c: "),
            "{text}"
        );
        assert!(text.ends_with(" (bad expression)"), "{text}");
    }

    #[test]
    fn success_needs_every_ack() {
        let answers = parse_answers(&answer(1, 0, None)).expect("well-formed");
        let err = verdict(&batch(), &answers).expect_err("message 2 unanswered");
        assert_eq!(
            err.to_string(),
            "nftables: the kernel did not acknowledge rule 1 of chain inet baton c"
        );
        let mut both = answer(1, 0, None);
        both.extend(answer(2, 0, None));
        assert!(verdict(&batch(), &parse_answers(&both).expect("well-formed")).is_ok());
        assert!(
            parse_answers(&[0xff; 20]).is_err(),
            "a length past the end is malformed"
        );
    }
}
