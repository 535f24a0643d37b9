//! Ceph's payload encoding primitives (`include/encoding.h`), shared by the monitor
//! payloads ([`crate::mon`]) and the msgr2 control frames ([`crate::v2::control`]):
//! little-endian integers, `u32`-length strings and buffers, containers with a `u32`
//! count, versioned structures (`ENCODE_START`), and `entity_addr_t` /
//! `entity_addrvec_t` in their legacy and msgr2-era forms.
//!
//! Decoding never panics and never trusts a count: a count larger than the bytes left is
//! refused before anything is allocated.
#![forbid(unsafe_code)]

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::BufMut;

use crate::wire::handshake::{EntityAddr, AF_INET, AF_INET6, ENTITY_ADDR_LEN};

/// Why a payload could not be decoded (re-exported as
/// [`mon::MonDecodeError`](crate::mon::MonDecodeError)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The payload ended inside `what`.
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes it needed.
        need: usize,
        /// Bytes that were left.
        have: usize,
    },
    /// A count or length that cannot fit in what is left of the payload.
    BadLength {
        /// The field.
        what: &'static str,
        /// The value read.
        len: u64,
    },
    /// A structure version this decoder does not know how to read.
    UnsupportedVersion {
        /// The structure.
        what: &'static str,
        /// Its version.
        version: u8,
    },
    /// An `entity_addr_t` marker other than 0 (legacy), 1 (versioned) or 2 (a vector).
    BadAddrMarker(u8),
    /// An address family other than 0, AF_INET and AF_INET6.
    BadAddrFamily(u16),
    /// A string that is not UTF-8.
    BadString(&'static str),
    /// The message is not of the expected type.
    WrongType {
        /// Expected type.
        expected: u16,
        /// Type received.
        got: u16,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { what, need, have } => {
                write!(f, "truncated {what}: need {need} bytes, have {have}")
            }
            Self::BadLength { what, len } => write!(f, "{what}: length {len} exceeds the payload"),
            Self::UnsupportedVersion { what, version } => {
                write!(f, "{what}: unsupported encoding version {version}")
            }
            Self::BadAddrMarker(m) => write!(f, "entity_addr_t: unknown marker {m}"),
            Self::BadAddrFamily(fam) => write!(f, "entity_addr_t: unknown address family {fam}"),
            Self::BadString(what) => write!(f, "{what}: not UTF-8"),
            Self::WrongType { expected, got } => {
                write!(f, "expected message type {expected}, got {got}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// A cursor over a payload.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                what,
                need: n,
                have: self.remaining(),
            });
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N, what)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn peek_u8(&self, what: &'static str) -> Result<u8, DecodeError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated {
                what,
                need: 1,
                have: 0,
            })
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A `u32`-length byte buffer (`bufferlist`).
    pub(crate) fn blob(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = self.u32(what)? as usize;
        self.bytes(n, what)
    }

    /// A `u32`-length UTF-8 string.
    pub(crate) fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let b = self.blob(what)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::BadString(what))
    }

    /// A container count; refused if even `min_item` bytes per item cannot fit.
    pub(crate) fn count(
        &mut self,
        what: &'static str,
        min_item: usize,
    ) -> Result<usize, DecodeError> {
        let n = self.u32(what)?;
        if (n as u64) * (min_item.max(1) as u64) > self.remaining() as u64 {
            return Err(DecodeError::BadLength {
                what,
                len: u64::from(n),
            });
        }
        Ok(n as usize)
    }

    /// `ENCODE_START`'s header: struct version, compat version, length. Returns the
    /// version and a reader over exactly the structure's bytes (this reader moves past
    /// them), so fields added by later versions are skipped.
    pub(crate) fn versioned(
        &mut self,
        what: &'static str,
    ) -> Result<(u8, Reader<'a>), DecodeError> {
        let v = self.u8(what)?;
        let _compat = self.u8(what)?;
        let len = self.u32(what)? as usize;
        if len > self.remaining() {
            return Err(DecodeError::BadLength {
                what,
                len: len as u64,
            });
        }
        Ok((v, Reader::new(self.bytes(len, what)?)))
    }
}

/// Writers for the encodings above.
pub(crate) trait Put {
    fn put_string(&mut self, s: &str);
    fn put_blob(&mut self, b: &[u8]);
}

impl<B: BufMut> Put for B {
    fn put_string(&mut self, s: &str) {
        self.put_blob(s.as_bytes());
    }

    fn put_blob(&mut self, b: &[u8]) {
        self.put_u32_le(b.len() as u32);
        self.put_slice(b);
    }
}

/// `entity_addr_t::type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddrKind {
    /// `TYPE_NONE` (0).
    None,
    /// `TYPE_LEGACY` (1): msgr v1, printed `v1:`.
    Legacy,
    /// `TYPE_MSGR2` (2): printed `v2:`.
    Msgr2,
    /// `TYPE_ANY` (3).
    Any,
    /// Anything else.
    Other(u32),
}

impl AddrKind {
    /// The kind with this wire value.
    #[must_use]
    pub fn from_u32(t: u32) -> Self {
        match t {
            0 => Self::None,
            1 => Self::Legacy,
            2 => Self::Msgr2,
            3 => Self::Any,
            o => Self::Other(o),
        }
    }

    /// The wire value.
    #[must_use]
    pub fn to_u32(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Legacy => 1,
            Self::Msgr2 => 2,
            Self::Any => 3,
            Self::Other(o) => o,
        }
    }

    /// The prefix Ceph prints (`v1`, `v2`, `any`, `none`).
    #[must_use]
    pub fn prefix(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Legacy => "v1",
            Self::Msgr2 => "v2",
            Self::Any => "any",
            Self::Other(_) => "?",
        }
    }
}

/// A decoded `entity_addr_t`: a monitor's address as a map carries it, or a peer's
/// address in a msgr2 control frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Addr {
    /// Which protocol the address is for.
    pub kind: AddrKind,
    /// Process nonce.
    pub nonce: u32,
    /// The socket address (`None` for a blank one).
    pub addr: Option<SocketAddr>,
}

/// Ceph's form: `v1:127.0.0.1:6789/0`.
impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(a) => write!(f, "{}:{a}/{}", self.kind.prefix(), self.nonce),
            None => write!(f, "{}:-/{}", self.kind.prefix(), self.nonce),
        }
    }
}

/// Decodes one `entity_addr_t`: marker 0 is the legacy 136-byte form (family big-endian,
/// type forced to LEGACY as Ceph does), marker 1 the versioned form (`type`, `nonce`,
/// `u32` sockaddr length, sockaddr with the family little-endian and the port big-endian).
pub(crate) fn decode_addr(r: &mut Reader<'_>) -> Result<Addr, DecodeError> {
    match r.peek_u8("entity_addr_t")? {
        0 => {
            let b = r.bytes(ENTITY_ADDR_LEN, "entity_addr_t (legacy)")?;
            let a = EntityAddr::decode(b)
                .map_err(|_| DecodeError::BadAddrFamily(u16::from_be_bytes([b[8], b[9]])))?;
            Ok(Addr {
                kind: AddrKind::Legacy,
                nonce: a.nonce,
                addr: a.addr,
            })
        }
        1 => {
            r.u8("entity_addr_t marker")?;
            let (_v, mut s) = r.versioned("entity_addr_t")?;
            let kind = AddrKind::from_u32(s.u32("entity_addr_t type")?);
            let nonce = s.u32("entity_addr_t nonce")?;
            let sa = s.blob("entity_addr_t sockaddr")?;
            Ok(Addr {
                kind,
                nonce,
                addr: decode_sockaddr(sa)?,
            })
        }
        m => Err(DecodeError::BadAddrMarker(m)),
    }
}

/// A native `sockaddr` as `entity_addr_t` carries it (family little-endian, port and
/// IPv4 address big-endian).
fn decode_sockaddr(sa: &[u8]) -> Result<Option<SocketAddr>, DecodeError> {
    if sa.is_empty() {
        return Ok(None);
    }
    let mut r = Reader::new(sa);
    let family = r.u16("sockaddr family")?;
    match family {
        0 => Ok(None),
        AF_INET => {
            let port = u16::from_be_bytes(r.array("sockaddr_in port")?);
            let ip: [u8; 4] = r.array("sockaddr_in address")?;
            Ok(Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(ip),
                port,
            ))))
        }
        AF_INET6 => {
            let port = u16::from_be_bytes(r.array("sockaddr_in6 port")?);
            let flow = u32::from_be_bytes(r.array("sockaddr_in6 flowinfo")?);
            let ip: [u8; 16] = r.array("sockaddr_in6 address")?;
            let scope = r.u32("sockaddr_in6 scope")?;
            Ok(Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flow,
                scope,
            ))))
        }
        other => Err(DecodeError::BadAddrFamily(other)),
    }
}

/// Decodes an `entity_addrvec_t`: marker 2 then a counted list, or (older encoders) a
/// single `entity_addr_t`.
pub(crate) fn decode_addrvec(r: &mut Reader<'_>) -> Result<Vec<Addr>, DecodeError> {
    if r.peek_u8("entity_addrvec_t")? != 2 {
        return Ok(vec![decode_addr(r)?]);
    }
    r.u8("entity_addrvec_t marker")?;
    let n = r.count("entity_addrvec_t count", 1)?;
    (0..n).map(|_| decode_addr(r)).collect()
}

/// `sockaddr` length `entity_addr_t` carries for IPv4 (`sizeof(sockaddr_in)`).
const SOCKADDR_IN_LEN: usize = 16;
/// `sockaddr` length for IPv6 (`sizeof(sockaddr_in6)`), and for a blank address (the size
/// of Ceph's `sockaddr` union, which is the IPv6 one).
const SOCKADDR_IN6_LEN: usize = 28;
/// Marker + `ENCODE_START` header + type + nonce + sockaddr length.
const ADDR_FIXED_LEN: usize = 1 + 6 + 4 + 4 + 4;

impl Addr {
    /// A blank address: `TYPE_NONE`, nonce 0, no socket address.
    pub const BLANK: Addr = Addr {
        kind: AddrKind::None,
        nonce: 0,
        addr: None,
    };

    /// An address of this kind for this socket address and nonce.
    #[must_use]
    pub const fn new(kind: AddrKind, addr: SocketAddr, nonce: u32) -> Self {
        Self {
            kind,
            nonce,
            addr: Some(addr),
        }
    }

    fn sockaddr_len(&self) -> usize {
        match self.addr {
            Some(SocketAddr::V4(_)) => SOCKADDR_IN_LEN,
            Some(SocketAddr::V6(_)) | None => SOCKADDR_IN6_LEN,
        }
    }

    /// Bytes of [`Addr::encode`]'s output: 35 for IPv4, 47 for IPv6 or a blank address.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        ADDR_FIXED_LEN + self.sockaddr_len()
    }

    /// Appends the msgr2-era encoding (what Ceph writes with `MSG_ADDR2` and
    /// `SERVER_NAUTILUS`): marker 1, `ENCODE_START(1, 1)`, le32 type, le32 nonce, le32
    /// sockaddr length, then the sockaddr (family little-endian, port big-endian). A
    /// blank address is written as Ceph does: a 28-byte all-zero sockaddr.
    pub fn encode(&self, out: &mut impl BufMut) {
        let sa_len = self.sockaddr_len();
        out.put_u8(1);
        out.put_u8(1);
        out.put_u8(1);
        out.put_u32_le((12 + sa_len) as u32);
        out.put_u32_le(self.kind.to_u32());
        out.put_u32_le(self.nonce);
        out.put_u32_le(sa_len as u32);
        match self.addr {
            Some(SocketAddr::V4(a)) => {
                out.put_u16_le(AF_INET);
                out.put_u16(a.port());
                out.put_slice(&a.ip().octets());
                out.put_bytes(0, 8);
            }
            Some(SocketAddr::V6(a)) => {
                out.put_u16_le(AF_INET6);
                out.put_u16(a.port());
                out.put_u32(a.flowinfo());
                out.put_slice(&a.ip().octets());
                out.put_u32_le(a.scope_id());
            }
            None => out.put_bytes(0, SOCKADDR_IN6_LEN),
        }
    }

    /// Decodes one `entity_addr_t` (legacy or msgr2-era form) from the front of `buf`;
    /// returns it and the bytes it took.
    pub fn decode(buf: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader::new(buf);
        let a = decode_addr(&mut r)?;
        Ok((a, buf.len() - r.remaining()))
    }
}

/// Appends an `entity_addrvec_t`: marker 2, le32 count, each address in the msgr2 form.
pub(crate) fn encode_addrvec(out: &mut impl BufMut, addrs: &[Addr]) {
    out.put_u8(2);
    out.put_u32_le(addrs.len() as u32);
    for a in addrs {
        a.encode(out);
    }
}

/// Sort key that puts addresses in a stable, Ceph-like order (IP, port, nonce).
pub(crate) fn addr_key(a: &Addr) -> (Option<IpAddr>, u16, u32) {
    (
        a.addr.map(|s| s.ip()),
        a.addr.map_or(0, |s| s.port()),
        a.nonce,
    )
}
