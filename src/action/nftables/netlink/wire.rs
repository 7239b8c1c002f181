//! Netlink framing, both ways: builds nf_tables requests (header, `nfgenmsg`, string
//! attributes) and splits what the kernel sends into messages and attributes. Pure: works
//! on byte slices, never reads a socket. Every length in a received buffer is checked
//! before it is used, and a bad one ends the walk with an error naming the offset, so no
//! input can make it panic, loop or read out of bounds.
//!
//! Layout (`linux/netlink.h`, `linux/netfilter/nfnetlink.h`): a datagram holds messages,
//! each a 16-byte header (length, type, flags, sequence, port; host byte order) and a
//! payload, padded to 4 bytes. nf_tables payloads start with a 4-byte `nfgenmsg` (family,
//! version, resource id), then attributes: a 4-byte header (length, type with the
//! `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` bits) and a value, padded to 4 bytes. Integers
//! inside nf_tables attributes are big-endian.

use std::fmt;

/// Length of a netlink message header.
pub(super) const HEADER_LEN: usize = 16;
/// Length of the `nfgenmsg` that opens every nf_tables payload.
pub(super) const NFGEN_LEN: usize = 4;
const ATTR_HEADER_LEN: usize = 4;
/// The type bits of an attribute (without `NLA_F_NESTED`, `NLA_F_NET_BYTEORDER`).
const ATTR_TYPE_MASK: u16 = 0x3fff;

/// A message is a request.
pub(super) const NLM_F_REQUEST: u16 = 0x1;
/// Ask for an acknowledgement (an error message with code 0) after the answer.
pub(super) const NLM_F_ACK: u16 = 0x4;
/// Ask for every object (`NLM_F_ROOT | NLM_F_MATCH`), answered in parts until `DONE`.
pub(super) const NLM_F_DUMP: u16 = 0x300;
/// Set on the parts of a dump during which the ruleset changed: the dump may be torn.
pub(super) const NLM_F_DUMP_INTR: u16 = 0x10;

/// Message types of netlink itself.
pub(super) const NLMSG_NOOP: u16 = 1;
pub(super) const NLMSG_ERROR: u16 = 2;
pub(super) const NLMSG_DONE: u16 = 3;
pub(super) const NLMSG_OVERRUN: u16 = 4;

/// A malformed buffer: what was wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub what: &'static str,
    pub offset: usize,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

fn align4(len: usize) -> usize {
    len.saturating_add(3) & !3
}

/// One message of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Message<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub port: u32,
    pub payload: &'a [u8],
}

/// The messages of a datagram, in order; stops at the first malformed one (an error).
pub(super) fn messages(buf: &[u8]) -> Messages<'_> {
    Messages {
        buf,
        offset: 0,
        failed: false,
    }
}

pub(super) struct Messages<'a> {
    buf: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.buf.get(self.offset..).unwrap_or_default();
        if rest.is_empty() {
            return None;
        }
        let at = self.offset;
        let fail = |this: &mut Self, what| {
            this.failed = true;
            Some(Err(WireError { what, offset: at }))
        };
        let (Some(len), Some(ty), Some(flags), Some(seq), Some(port)) = (
            ne_u32(rest, 0),
            ne_u16(rest, 4),
            ne_u16(rest, 6),
            ne_u32(rest, 8),
            ne_u32(rest, 12),
        ) else {
            return fail(self, "message header cut short");
        };
        let len = len as usize;
        if len < HEADER_LEN {
            return fail(self, "message length shorter than its header");
        }
        let Some(payload) = rest.get(HEADER_LEN..len) else {
            return fail(self, "message length beyond the datagram");
        };
        // The last message may omit its padding.
        self.offset = self.offset.saturating_add(align4(len).min(rest.len()));
        Some(Ok(Message {
            ty,
            flags,
            seq,
            port,
            payload,
        }))
    }
}

/// One attribute: its type (flag bits removed) and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Attr<'a> {
    pub ty: u16,
    pub value: &'a [u8],
}

/// The attributes in `buf` (a payload after its fixed header, or a nested value);
/// stops at the first malformed one (an error). `base` is where `buf` starts in the
/// message, for error offsets.
pub(super) fn attrs(buf: &[u8], base: usize) -> Attrs<'_> {
    Attrs {
        buf,
        offset: 0,
        base,
        failed: false,
    }
}

pub(super) struct Attrs<'a> {
    buf: &'a [u8],
    offset: usize,
    base: usize,
    failed: bool,
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(Attr<'a>, usize), WireError>;

    /// Each attribute with the offset of its value (for nested walks' error offsets).
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.buf.get(self.offset..).unwrap_or_default();
        if rest.is_empty() {
            return None;
        }
        let at = self.base.saturating_add(self.offset);
        let fail = |this: &mut Self, what| {
            this.failed = true;
            Some(Err(WireError { what, offset: at }))
        };
        let (Some(len), Some(ty)) = (ne_u16(rest, 0), ne_u16(rest, 2)) else {
            return fail(self, "attribute header cut short");
        };
        let len = usize::from(len);
        if len < ATTR_HEADER_LEN {
            return fail(self, "attribute length shorter than its header");
        }
        let Some(value) = rest.get(ATTR_HEADER_LEN..len) else {
            return fail(self, "attribute length beyond its container");
        };
        self.offset = self.offset.saturating_add(align4(len).min(rest.len()));
        Some(Ok((
            Attr {
                ty: ty & ATTR_TYPE_MASK,
                value,
            },
            at.saturating_add(ATTR_HEADER_LEN),
        )))
    }
}

fn ne_u16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(bytes.try_into().ok()?))
}

fn ne_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

/// The code of an `NLMSG_ERROR` or `NLMSG_DONE` payload (0 or a negative errno).
pub(super) fn status_code(payload: &[u8]) -> Option<i32> {
    let bytes = payload.get(..4)?;
    Some(i32::from_ne_bytes(bytes.try_into().ok()?))
}

/// A big-endian 32-bit attribute value (exactly 4 bytes).
pub(super) fn be32(value: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(value.try_into().ok()?))
}

/// A big-endian 64-bit attribute value (exactly 8 bytes).
pub(super) fn be64(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.try_into().ok()?))
}

/// A string attribute: the bytes before the first NUL, if they are UTF-8.
pub(super) fn string(value: &[u8]) -> Option<&str> {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    std::str::from_utf8(value.get(..end)?).ok()
}

/// A request being built: header, `nfgenmsg`, attributes; the length is set by `finish`.
pub(super) struct Request {
    buf: Vec<u8>,
}

impl Request {
    /// A request of `ty` (subsystem and command) for the address `family`.
    pub(super) fn new(ty: u16, flags: u16, seq: u32, family: u8) -> Request {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel fills in ours
        buf.extend_from_slice(&[family, 0]); // nfgenmsg: family, NFNETLINK_V0
        buf.extend_from_slice(&0u16.to_be_bytes()); // resource id
        Request { buf }
    }

    /// A NUL-terminated string attribute. Names are short (ours are checked to be at
    /// most 64 bytes); a longer value is refused by the caller before it gets here.
    pub(super) fn string(mut self, ty: u16, value: &str) -> Request {
        let len = ATTR_HEADER_LEN + value.len() + 1;
        let len16 = u16::try_from(len).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len16.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        if let Some(head) = self.buf.get_mut(..4) {
            head.copy_from_slice(&len.to_ne_bytes());
        }
        self.buf
    }
}

#[cfg(test)]
pub(super) mod build {
    //! Builders of kernel-style messages, for the decoder's tests.

    use super::*;

    pub fn attr(ty: u16, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let len = u16::try_from(ATTR_HEADER_LEN + value.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(value);
        out.resize(align4(out.len()), 0);
        out
    }

    pub fn nested(ty: u16, inner: &[Vec<u8>]) -> Vec<u8> {
        attr(ty | 0x8000, &inner.concat())
    }

    pub fn string(ty: u16, s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        attr(ty, &v)
    }

    /// An `NLMSG_ERROR` or `NLMSG_DONE` with its code.
    pub fn status(ty: u16, seq: u32, port: u32, code: i32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&20u32.to_ne_bytes());
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&port.to_ne_bytes());
        out.extend_from_slice(&code.to_ne_bytes());
        out
    }

    pub fn message(ty: u16, flags: u16, seq: u32, port: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
        let body = attrs.concat();
        let len = HEADER_LEN + NFGEN_LEN + body.len();
        let mut out = Vec::new();
        out.extend_from_slice(&u32::try_from(len).unwrap_or(0).to_ne_bytes());
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&port.to_ne_bytes());
        out.extend_from_slice(&[1, 0, 0, 0]);
        out.extend_from_slice(&body);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_request_is_framed_and_padded() {
        let req = Request::new(0x0a01, NLM_F_ACK, 7, 1)
            .string(1, "banhammer")
            .finish();
        assert_eq!(req.len() % 4, 0);
        let msgs: Vec<_> = messages(&req).collect::<Result<_, _>>().unwrap();
        assert_eq!(msgs.len(), 1);
        let m = msgs[0];
        assert_eq!(
            (m.ty, m.flags, m.seq),
            (0x0a01, NLM_F_ACK | NLM_F_REQUEST, 7)
        );
        assert_eq!(m.payload[0], 1, "family");
        let attrs: Vec<_> = attrs(&m.payload[NFGEN_LEN..], 0)
            .map(|a| a.unwrap().0)
            .collect();
        assert_eq!(attrs.len(), 1);
        assert_eq!(string(attrs[0].value), Some("banhammer"));
    }

    #[test]
    fn a_length_beyond_the_buffer_is_an_error_not_a_read() {
        let mut msg = build::message(0x0a00, 0, 1, 2, &[build::string(1, "t")]);
        // Message length larger than the datagram.
        msg[0] = msg[0].wrapping_add(8);
        let got: Vec<_> = messages(&msg).collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].is_err());
        // Attribute length larger than its container.
        let mut a = build::string(1, "table");
        a[0] = 200;
        let got: Vec<_> = attrs(&a, 0).collect();
        assert!(matches!(got.as_slice(), [Err(_)]), "{got:?}");
        // Attribute length below its header: an error, not an endless loop.
        let got: Vec<_> = attrs(&[0, 0, 1, 0, 9, 9, 9, 9], 0).collect();
        assert!(matches!(got.as_slice(), [Err(_)]), "{got:?}");
    }

    #[test]
    fn strings_stop_at_the_first_nul_and_must_be_utf8() {
        assert_eq!(string(b"input\0"), Some("input"));
        assert_eq!(string(b"in\0put\0"), Some("in"));
        assert_eq!(string(b"input"), Some("input"));
        assert_eq!(string(b"\xff\0"), None);
        assert_eq!(be32(&[0, 0, 1, 0]), Some(256));
        assert_eq!(be32(&[0, 0, 1]), None);
        assert_eq!(be64(&[0; 9]), None);
    }

    proptest! {
        #[test]
        fn walking_any_bytes_never_panics_and_stays_in_bounds(
            buf in proptest::collection::vec(any::<u8>(), 0..512)
        ) {
            let mut n = 0;
            for m in messages(&buf) {
                n += 1;
                prop_assert!(n <= buf.len() / HEADER_LEN + 1);
                if let Ok(m) = m {
                    let mut k = 0;
                    for a in attrs(m.payload, 0) {
                        k += 1;
                        prop_assert!(k <= m.payload.len() / ATTR_HEADER_LEN + 1);
                        let _ = a;
                    }
                }
            }
        }
    }
}
