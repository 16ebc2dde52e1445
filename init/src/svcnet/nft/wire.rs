//! The nfnetlink wire format: netlink attributes, message headers and batches.
//!
//! Everything is written into a growing `Vec<u8>` in host byte order where netlink wants it
//! (lengths, types, sequence numbers) and in network byte order where nf_tables wants it
//! (the values of `u32` attributes). Nested attributes are opened with [`Writer::nest`] and
//! closed with [`Writer::end`], which patches the length in place.

/// Flag on an attribute type: the payload is a list of attributes.
pub const NLA_F_NESTED: u16 = 0x8000;

/// The nfnetlink subsystem of nf_tables.
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// Opens a batch (a plain netlink type, not one of the subsystem's).
pub const NFNL_MSG_BATCH_BEGIN: u16 = 16;
/// Closes a batch.
pub const NFNL_MSG_BATCH_END: u16 = 17;

/// `NLM_F_REQUEST`: a request to the kernel.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`: answer with an acknowledgement even on success.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_EXCL`: fail if the object exists.
pub const NLM_F_EXCL: u16 = 0x200;
/// `NLM_F_CREATE`: create the object if it does not exist.
pub const NLM_F_CREATE: u16 = 0x400;
/// `NLM_F_APPEND`: add at the end of the list (rules).
pub const NLM_F_APPEND: u16 = 0x800;

/// nf_tables message kinds (`NFT_MSG_*`), the low byte of the netlink message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgKind {
    /// `NFT_MSG_NEWTABLE`.
    NewTable = 0,
    /// `NFT_MSG_DELTABLE`.
    DelTable = 2,
    /// `NFT_MSG_NEWCHAIN`.
    NewChain = 3,
    /// `NFT_MSG_NEWRULE`.
    NewRule = 6,
    /// `NFT_MSG_NEWSET`.
    NewSet = 9,
    /// `NFT_MSG_NEWSETELEM`.
    NewSetElem = 12,
}

impl MsgKind {
    /// The full netlink message type: subsystem in the high byte.
    pub fn netlink_type(self) -> u16 {
        (NFNL_SUBSYS_NFTABLES << 8) | self as u16
    }
}

/// A byte buffer that netlink attributes are appended to.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

/// Rounds `n` up to netlink's 4-byte alignment.
pub fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A nested attribute that has been opened but not closed yet: where its header is.
#[must_use = "a nested attribute must be closed with Writer::end"]
#[derive(Debug)]
pub struct Nest(usize);

impl Writer {
    /// An empty buffer.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The bytes written, consuming the writer.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Appends raw bytes (already aligned by the caller where it matters).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn pad(&mut self) {
        let padded = align(self.buf.len());
        self.buf.resize(padded, 0);
    }

    /// Appends one attribute with `value` as its payload, padded to alignment.
    pub fn attr(&mut self, kind: u16, value: &[u8]) {
        let len = 4 + value.len();
        // Attribute payloads here are at most a few hundred bytes; saturate rather than wrap.
        let len16 = u16::try_from(len).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
    }

    /// Appends a `u32` attribute in network byte order (what nf_tables expects).
    pub fn u32_be(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_be_bytes());
    }

    /// Appends a `u64` attribute in network byte order.
    pub fn u64_be(&mut self, kind: u16, value: u64) {
        self.attr(kind, &value.to_be_bytes());
    }

    /// Appends a NUL-terminated string attribute.
    pub fn string(&mut self, kind: u16, value: &str) {
        let mut bytes = Vec::with_capacity(value.len() + 1);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
        self.attr(kind, &bytes);
    }

    /// Opens a nested attribute; everything written until [`Writer::end`] goes inside it.
    pub fn nest(&mut self, kind: u16) -> Nest {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        Nest(at)
    }

    /// Closes a nested attribute, writing its final length.
    pub fn end(&mut self, nest: Nest) {
        let len = self.buf.len() - nest.0;
        let len16 = u16::try_from(len).unwrap_or(u16::MAX);
        self.buf[nest.0..nest.0 + 2].copy_from_slice(&len16.to_ne_bytes());
    }
}

/// The netlink header length.
pub const NLMSG_HDRLEN: usize = 16;

/// Appends one nfnetlink message (netlink header, `nfgenmsg`, attributes) to `out`.
pub fn message(
    out: &mut Vec<u8>,
    msg_type: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    attrs: &[u8],
) {
    let len = NLMSG_HDRLEN + 4 + attrs.len();
    let len32 = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&len32.to_ne_bytes());
    out.extend_from_slice(&msg_type.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    // struct nfgenmsg: family, version (NFNETLINK_V0), resource id in network byte order.
    out.push(family);
    out.push(0);
    out.extend_from_slice(&res_id.to_be_bytes());
    out.extend_from_slice(attrs);
    out.resize(align(out.len()), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nests_patched() {
        let mut w = Writer::new();
        let n = w.nest(4);
        w.string(1, "baton");
        w.u32_be(2, 1);
        w.end(n);
        let b = w.bytes();
        // nest header (4) + "baton\0" attr (4 + 6 -> padded 12) + u32 attr (8) = 24
        assert_eq!(b.len(), 24);
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), 24);
        assert_eq!(u16::from_ne_bytes([b[2], b[3]]), 4 | NLA_F_NESTED);
        assert_eq!(
            u16::from_ne_bytes([b[4], b[5]]),
            10,
            "length excludes padding"
        );
        assert_eq!(&b[8..14], b"baton\0");
        assert_eq!(&b[14..16], &[0, 0], "padding");
        assert_eq!(&b[20..24], &[0, 0, 0, 1], "network byte order");
    }

    #[test]
    fn message_header_carries_length_type_and_nfgenmsg() {
        let mut out = Vec::new();
        message(
            &mut out,
            MsgKind::NewTable.netlink_type(),
            NLM_F_REQUEST,
            7,
            1,
            0,
            &[1, 2, 3, 4],
        );
        assert_eq!(out.len(), 24);
        assert_eq!(u32::from_ne_bytes([out[0], out[1], out[2], out[3]]), 24);
        assert_eq!(u16::from_ne_bytes([out[4], out[5]]), 0x0a00);
        assert_eq!(u32::from_ne_bytes([out[8], out[9], out[10], out[11]]), 7);
        assert_eq!(&out[16..20], &[1, 0, 0, 0]);
    }
}
