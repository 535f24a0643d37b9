//! The msgr v1 handshake: banner, legacy entity addresses, `ceph_msg_connect`,
//! `ceph_msg_connect_reply`, the SEQ exchange, and the feature bits negotiated on the way.
//!
//! Pure layouts only; which record comes next is the state machine's business. The order on
//! the wire (the client is the side that dialled):
//!
//! | step | direction | bytes | record |
//! |---|---|---|---|
//! | 1 | server → client | 9 + 136 + 136 | [`ServerHello`]: banner, server addr, client addr as the server sees it |
//! | 2 | client → server | 9 + 136 | [`ClientHello`]: banner, client addr |
//! | 3 | client → server | 33 + `authorizer_len` | [`ConnectMsg`], then the authorizer |
//! | 4 | server → client | 26 + `authorizer_len` | [`ConnectReply`], then the authorizer reply |
//! | 5 | server → client | 8 | reply tag SEQ only: the server's `in_seq` ([`decode_seq`]) |
//! | 6 | client → server | 8 | reply tag SEQ only: the client's `in_seq`, no tag byte |
//!
//! Steps 1 and 2 are independent (each side reads a fixed length), and steps 3–4 repeat
//! after RETRY_SESSION, RETRY_GLOBAL, RESETSESSION, BADAUTHORIZER and CHALLENGE_AUTHORIZER.
//! After READY (or the SEQ exchange) the stream carries messages and control records, with
//! the footer layout chosen by `FooterKind::for_features(connect.features & reply.features)`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::{le32, le64, tag, take, DecodeError, EntityType};

/// The msgr v1 banner (`CEPH_BANNER`): 9 ASCII bytes, no terminator.
pub const BANNER: &[u8; 9] = b"ceph v027";
/// Length of [`BANNER`].
pub const BANNER_LEN: usize = 9;
/// The msgr2 banner prefix (`CEPH_BANNER_V2_PREFIX`), which a msgr2-only port sends instead.
pub const MSGR2_BANNER: &[u8; 8] = b"ceph v2\n";

/// Checks that `buf` starts with the msgr v1 banner.
///
/// Errors: [`DecodeError::Msgr2Banner`] if the first 8 bytes are the msgr2 banner (the peer
/// speaks only msgr2 on this port), [`DecodeError::Truncated`] if fewer than 9 bytes are
/// given, and [`DecodeError::BadBanner`] for anything else that is not `ceph v027`.
pub fn check_banner(buf: &[u8]) -> Result<(), DecodeError> {
    if buf.starts_with(MSGR2_BANNER) {
        return Err(DecodeError::Msgr2Banner);
    }
    let b = take::<BANNER_LEN>(buf)?;
    if b != BANNER {
        return Err(DecodeError::BadBanner(*b));
    }
    Ok(())
}

/// Encoded length of a legacy [`EntityAddr`].
pub const ENTITY_ADDR_LEN: usize = 136;
/// Linux `AF_INET`, as carried (big-endian) in a legacy address.
pub const AF_INET: u16 = 2;
/// Linux `AF_INET6`, as carried (big-endian) in a legacy address.
pub const AF_INET6: u16 = 10;
/// Address type NONE: what banners carry (the kernel forces it; for userspace the first byte
/// is the "legacy encoding" marker and must be 0).
pub const ADDR_TYPE_NONE: u32 = 0;
/// Address type LEGACY (msgr v1 address in an address vector).
pub const ADDR_TYPE_LEGACY: u32 = 1;

/// A legacy `ceph_entity_addr` (136 bytes), as exchanged in the v1 banner.
///
/// | off | size | field |
/// |---|---|---|
/// | 0 | 4 | type (le32; 0 = NONE in banners) |
/// | 4 | 4 | nonce (le32; tells processes on one address apart) |
/// | 8 | 2 | `ss_family`, **big-endian** (2 = AF_INET, 10 = AF_INET6, 0 = none) |
/// | 10 | 2 | port, big-endian |
/// | 12 | 4 | IPv4 address, or IPv6 flowinfo (big-endian) |
/// | 16 | 16 | IPv6 address |
/// | 32 | 4 | IPv6 scope_id (host order of the sender: little-endian in practice) |
/// | 36 | 100 | zero (rest of `sockaddr_storage`) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EntityAddr {
    /// Address type ([`ADDR_TYPE_NONE`] in banners).
    pub ty: u32,
    /// Process nonce.
    pub nonce: u32,
    /// The socket address; `None` for family 0 (a blank address).
    pub addr: Option<SocketAddr>,
}

impl EntityAddr {
    /// A banner address (type NONE) for `addr` with the given nonce.
    #[must_use]
    pub const fn new(addr: Option<SocketAddr>, nonce: u32) -> Self {
        Self {
            ty: ADDR_TYPE_NONE,
            nonce,
            addr,
        }
    }

    /// Whether the IP is unspecified (`0.0.0.0`, `::`) or there is no address at all: the
    /// kernel's `ceph_addr_is_blank`. A server that does not know its own IP yet sends a
    /// blank address; a client then accepts it if the nonce matches.
    #[must_use]
    pub fn is_blank_ip(&self) -> bool {
        match self.addr {
            Some(a) => a.ip().is_unspecified(),
            None => true,
        }
    }

    /// Encodes the 136-byte legacy form.
    #[must_use]
    pub fn encode(&self) -> [u8; ENTITY_ADDR_LEN] {
        let mut b = [0u8; ENTITY_ADDR_LEN];
        b[0..4].copy_from_slice(&self.ty.to_le_bytes());
        b[4..8].copy_from_slice(&self.nonce.to_le_bytes());
        match self.addr {
            None => {}
            Some(SocketAddr::V4(a)) => {
                b[8..10].copy_from_slice(&AF_INET.to_be_bytes());
                b[10..12].copy_from_slice(&a.port().to_be_bytes());
                b[12..16].copy_from_slice(&a.ip().octets());
            }
            Some(SocketAddr::V6(a)) => {
                b[8..10].copy_from_slice(&AF_INET6.to_be_bytes());
                b[10..12].copy_from_slice(&a.port().to_be_bytes());
                b[12..16].copy_from_slice(&a.flowinfo().to_be_bytes());
                b[16..32].copy_from_slice(&a.ip().octets());
                b[32..36].copy_from_slice(&a.scope_id().to_le_bytes());
            }
        }
        b
    }

    /// Decodes the 136-byte legacy form from the front of `buf`.
    ///
    /// Bytes past the family's `sockaddr` are ignored. A family other than 0, AF_INET or
    /// AF_INET6 is a [`DecodeError::UnknownAddrFamily`].
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let b = take::<ENTITY_ADDR_LEN>(buf)?;
        let family = u16::from_be_bytes([b[8], b[9]]);
        let port = u16::from_be_bytes([b[10], b[11]]);
        let addr = match family {
            0 => None,
            AF_INET => {
                let ip = Ipv4Addr::new(b[12], b[13], b[14], b[15]);
                Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
            }
            AF_INET6 => {
                let flowinfo = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&b[16..32]);
                let scope_id = le32(b, 32);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(octets),
                    port,
                    flowinfo,
                    scope_id,
                )))
            }
            other => return Err(DecodeError::UnknownAddrFamily(other)),
        };
        Ok(Self {
            ty: le32(b, 0),
            nonce: le32(b, 4),
            addr,
        })
    }

    /// The IP, if there is an address.
    #[must_use]
    pub fn ip(&self) -> Option<IpAddr> {
        self.addr.map(|a| a.ip())
    }
}

/// Ceph's legacy `IP:PORT/NONCE` form (`-/NONCE` without an address).
impl fmt::Display for EntityAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(a) => write!(f, "{a}/{}", self.nonce),
            None => write!(f, "-/{}", self.nonce),
        }
    }
}

/// Length of a [`ServerHello`]: banner and two addresses.
pub const SERVER_HELLO_LEN: usize = BANNER_LEN + 2 * ENTITY_ADDR_LEN;
/// Length of a [`ClientHello`]: banner and one address.
pub const CLIENT_HELLO_LEN: usize = BANNER_LEN + ENTITY_ADDR_LEN;

/// What the accepting side sends first: banner, its own address, and the connecting side's
/// address as it sees it (281 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerHello {
    /// The server's own address (the client checks it against the one it dialled).
    pub addr: EntityAddr,
    /// The client's address as seen by the server (a client may learn its IP from it).
    pub peer_addr_for_me: EntityAddr,
}

impl ServerHello {
    /// Encodes banner and both addresses.
    #[must_use]
    pub fn encode(&self) -> [u8; SERVER_HELLO_LEN] {
        let mut b = [0u8; SERVER_HELLO_LEN];
        b[..BANNER_LEN].copy_from_slice(BANNER);
        b[BANNER_LEN..CLIENT_HELLO_LEN].copy_from_slice(&self.addr.encode());
        b[CLIENT_HELLO_LEN..].copy_from_slice(&self.peer_addr_for_me.encode());
        b
    }

    /// Decodes from the front of `buf`, checking the banner first (see [`check_banner`]).
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        check_banner(buf)?;
        let b = take::<SERVER_HELLO_LEN>(buf)?;
        Ok(Self {
            addr: EntityAddr::decode(&b[BANNER_LEN..])?,
            peer_addr_for_me: EntityAddr::decode(&b[CLIENT_HELLO_LEN..])?,
        })
    }
}

/// What the connecting side sends first: banner and its own address (145 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientHello {
    /// The client's address (its IP may be blank or learned; its port is usually 0).
    pub addr: EntityAddr,
}

impl ClientHello {
    /// Encodes banner and address.
    #[must_use]
    pub fn encode(&self) -> [u8; CLIENT_HELLO_LEN] {
        let mut b = [0u8; CLIENT_HELLO_LEN];
        b[..BANNER_LEN].copy_from_slice(BANNER);
        b[BANNER_LEN..].copy_from_slice(&self.addr.encode());
        b
    }

    /// Decodes from the front of `buf`, checking the banner first (see [`check_banner`]).
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        check_banner(buf)?;
        let b = take::<CLIENT_HELLO_LEN>(buf)?;
        Ok(Self {
            addr: EntityAddr::decode(&b[BANNER_LEN..])?,
        })
    }
}

/// `CEPH_MSG_CONNECT_LOSSY`: in a connect, the client's messages may be dropped on a fault;
/// in a reply, the server treats the session as lossy (the client sets LOSSYTX).
pub const CONNECT_LOSSY: u8 = 1;

/// `protocol_version` values of a connect: the *client* protocol of the peer's type
/// (`CEPH_*C_PROTOCOL`). A server answers BADPROTOVER when the value is not the one it
/// expects; the reply carries the server's value.
pub mod protocol {
    use super::EntityType;

    /// Client ↔ monitor (`CEPH_MONC_PROTOCOL`).
    pub const MON: u32 = 15;
    /// Client ↔ OSD (`CEPH_OSDC_PROTOCOL`).
    pub const OSD: u32 = 24;
    /// Client ↔ MDS (`CEPH_MDSC_PROTOCOL`).
    pub const MDS: u32 = 32;

    /// The `protocol_version` a client puts in a connect to a peer of this type (the
    /// kernel's `prepare_write_connect`); `None` for types a client does not dial over v1.
    #[must_use]
    pub const fn for_peer(peer: EntityType) -> Option<u32> {
        match peer {
            EntityType::Mon => Some(MON),
            EntityType::Osd => Some(OSD),
            EntityType::Mds => Some(MDS),
            _ => None,
        }
    }
}

/// `authorizer_protocol` values (`CEPH_AUTH_*`).
pub mod auth {
    /// No authorizer; what a client sends to a monitor (`CEPH_AUTH_UNKNOWN`).
    pub const UNKNOWN: u32 = 0;
    /// Auth "none" (`CEPH_AUTH_NONE`); its OSD/MDS authorizer is u8 1, the entity name and
    /// the le64 global_id.
    pub const NONE: u32 = 1;
    /// cephx (`CEPH_AUTH_CEPHX`).
    pub const CEPHX: u32 = 2;
}

/// Encoded length of a [`ConnectMsg`].
pub const CONNECT_LEN: usize = 33;
/// Encoded length of a [`ConnectReply`].
pub const CONNECT_REPLY_LEN: usize = 26;

/// `ceph_msg_connect` (33 bytes, client → server), followed on the wire by
/// `authorizer_len` authorizer bytes that are not part of this record.
///
/// | off | size | field |
/// |---|---|---|
/// | 0 | 8 | features |
/// | 8 | 4 | host_type (`CEPH_ENTITY_TYPE_*`; 8 for a client) |
/// | 12 | 4 | global_seq |
/// | 16 | 4 | connect_seq |
/// | 20 | 4 | protocol_version (see [`protocol`]) |
/// | 24 | 4 | authorizer_protocol (see [`auth`]) |
/// | 28 | 4 | authorizer_len |
/// | 32 | 1 | flags ([`CONNECT_LOSSY`]) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConnectMsg {
    /// Feature bits the client supports (see [`features`]).
    pub features: u64,
    /// The client's entity type (`CEPH_ENTITY_TYPE_*`).
    pub host_type: u32,
    /// Counts connection attempts by this host (across sessions).
    pub global_seq: u32,
    /// Counts connection attempts within this session (0 for a new one).
    pub connect_seq: u32,
    /// Sub-protocol version (see [`protocol`]).
    pub protocol_version: u32,
    /// Authorizer protocol (see [`auth`]).
    pub authorizer_protocol: u32,
    /// Length of the authorizer that follows.
    pub authorizer_len: u32,
    /// `CEPH_MSG_CONNECT_*` flags.
    pub flags: u8,
}

impl ConnectMsg {
    /// Whether the LOSSY flag is set.
    #[must_use]
    pub const fn is_lossy(&self) -> bool {
        self.flags & CONNECT_LOSSY != 0
    }

    /// Encodes the 33-byte record (without the authorizer).
    #[must_use]
    pub fn encode(&self) -> [u8; CONNECT_LEN] {
        let mut b = [0u8; CONNECT_LEN];
        b[0..8].copy_from_slice(&self.features.to_le_bytes());
        b[8..12].copy_from_slice(&self.host_type.to_le_bytes());
        b[12..16].copy_from_slice(&self.global_seq.to_le_bytes());
        b[16..20].copy_from_slice(&self.connect_seq.to_le_bytes());
        b[20..24].copy_from_slice(&self.protocol_version.to_le_bytes());
        b[24..28].copy_from_slice(&self.authorizer_protocol.to_le_bytes());
        b[28..32].copy_from_slice(&self.authorizer_len.to_le_bytes());
        b[32] = self.flags;
        b
    }

    /// Decodes the 33-byte record from the front of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let b = take::<CONNECT_LEN>(buf)?;
        Ok(Self {
            features: le64(b, 0),
            host_type: le32(b, 8),
            global_seq: le32(b, 12),
            connect_seq: le32(b, 16),
            protocol_version: le32(b, 20),
            authorizer_protocol: le32(b, 24),
            authorizer_len: le32(b, 28),
            flags: b[32],
        })
    }
}

/// Whether `t` may open a connect reply: READY, RESETSESSION, WAIT, RETRY_SESSION,
/// RETRY_GLOBAL, BADPROTOVER, BADAUTHORIZER, FEATURES, SEQ or CHALLENGE_AUTHORIZER.
#[must_use]
pub const fn is_connect_reply_tag(t: u8) -> bool {
    matches!(
        t,
        tag::READY
            | tag::RESETSESSION
            | tag::WAIT
            | tag::RETRY_SESSION
            | tag::RETRY_GLOBAL
            | tag::BADPROTOVER
            | tag::BADAUTHORIZER
            | tag::FEATURES
            | tag::SEQ
            | tag::CHALLENGE_AUTHORIZER
    )
}

/// `ceph_msg_connect_reply` (26 bytes, server → client), followed on the wire by
/// `authorizer_len` bytes of authorizer reply and, for tag SEQ, the server's le64 `in_seq`.
///
/// | off | size | field |
/// |---|---|---|
/// | 0 | 1 | tag (`CEPH_MSGR_TAG_*`, see [`is_connect_reply_tag`]) |
/// | 1 | 8 | features |
/// | 9 | 4 | global_seq (the server's) |
/// | 13 | 4 | connect_seq (the client's + 1 on success) |
/// | 17 | 4 | protocol_version |
/// | 21 | 4 | authorizer_len |
/// | 25 | 1 | flags ([`CONNECT_LOSSY`]) |
///
/// On READY/SEQ a userspace server puts its *whole* supported set in `features`; the session
/// uses the intersection with the connect's features. On other tags it sends
/// `(connect.features & supported) | required`, so after FEATURES the missing bits are
/// `reply.features & !connect.features`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConnectReply {
    /// Reply tag.
    pub tag: u8,
    /// Feature bits (see the type's documentation for which set).
    pub features: u64,
    /// The server's global_seq.
    pub global_seq: u32,
    /// The connect_seq the session continues with (or to retry with).
    pub connect_seq: u32,
    /// The server's protocol version.
    pub protocol_version: u32,
    /// Length of the authorizer reply that follows.
    pub authorizer_len: u32,
    /// `CEPH_MSG_CONNECT_*` flags.
    pub flags: u8,
}

impl ConnectReply {
    /// Whether the LOSSY flag is set.
    #[must_use]
    pub const fn is_lossy(&self) -> bool {
        self.flags & CONNECT_LOSSY != 0
    }

    /// Handshake bytes the server sends after these 26: the authorizer reply and, for tag
    /// SEQ, the 8-byte `in_seq`.
    #[must_use]
    pub const fn trailer_len(&self) -> u64 {
        let seq = if self.tag == tag::SEQ {
            SEQ_LEN as u64
        } else {
            0
        };
        self.authorizer_len as u64 + seq
    }

    /// Encodes the 26-byte record (without the authorizer reply).
    #[must_use]
    pub fn encode(&self) -> [u8; CONNECT_REPLY_LEN] {
        let mut b = [0u8; CONNECT_REPLY_LEN];
        b[0] = self.tag;
        b[1..9].copy_from_slice(&self.features.to_le_bytes());
        b[9..13].copy_from_slice(&self.global_seq.to_le_bytes());
        b[13..17].copy_from_slice(&self.connect_seq.to_le_bytes());
        b[17..21].copy_from_slice(&self.protocol_version.to_le_bytes());
        b[21..25].copy_from_slice(&self.authorizer_len.to_le_bytes());
        b[25] = self.flags;
        b
    }

    /// Decodes the 26-byte record from the front of `buf`; a tag that cannot open a reply
    /// is a [`DecodeError::UnknownTag`].
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let b = take::<CONNECT_REPLY_LEN>(buf)?;
        if !is_connect_reply_tag(b[0]) {
            return Err(DecodeError::UnknownTag(b[0]));
        }
        Ok(Self {
            tag: b[0],
            features: le64(b, 1),
            global_seq: le32(b, 9),
            connect_seq: le32(b, 13),
            protocol_version: le32(b, 17),
            authorizer_len: le32(b, 21),
            flags: b[25],
        })
    }
}

/// Length of each side's `in_seq` in the SEQ exchange.
pub const SEQ_LEN: usize = 8;

/// Encodes an `in_seq` for the SEQ exchange (no tag byte).
#[must_use]
pub const fn encode_seq(in_seq: u64) -> [u8; SEQ_LEN] {
    in_seq.to_le_bytes()
}

/// Decodes an `in_seq` of the SEQ exchange from the front of `buf`.
pub fn decode_seq(buf: &[u8]) -> Result<u64, DecodeError> {
    Ok(le64(take::<SEQ_LEN>(buf)?, 0))
}

/// Feature bits (`CEPH_FEATURE_*`) by name, and a name for every bit.
///
/// Names follow the Linux kernel's `include/linux/ceph/ceph_features.h` (which mirrors
/// Ceph's). Several bits carry more than one name (overlaps, and bits reused after being
/// retired); [`name`](features::name) gives the bit's current name and
/// [`aliases`](features::aliases) all of them. The bits the codec itself looks at have the
/// same values as in [`crate::wire::feature`].
pub mod features {
    use crate::wire::feature;

    /// Bit 0.
    pub const UID: u64 = 1 << 0;
    /// Bit 1: messages carry no source address.
    pub const NOSRCADDR: u64 = 1 << 1;
    /// Bit 2 (reused; formerly MONCLOCKCHECK).
    pub const SERVER_NAUTILUS: u64 = 1 << 2;
    /// Bit 3.
    pub const FLOCK: u64 = 1 << 3;
    /// Bit 4: MON_SUBSCRIBE v2.
    pub const SUBSCRIBE2: u64 = 1 << 4;
    /// Bit 5.
    pub const MONNAMES: u64 = 1 << 5;
    /// Bit 6: the connect reply may be SEQ, followed by the in_seq exchange.
    pub const RECONNECT_SEQ: u64 = feature::RECONNECT_SEQ;
    /// Bit 7.
    pub const DIRLAYOUTHASH: u64 = 1 << 7;
    /// Bit 9.
    pub const PGID64: u64 = 1 << 9;
    /// Bit 11.
    pub const PGPOOL3: u64 = 1 << 11;
    /// Bit 13.
    pub const OSDENC: u64 = 1 << 13;
    /// Bit 15: new MonMap encoding (without it a mon sends the legacy monmap).
    pub const MONENC: u64 = 1 << 15;
    /// Bit 18.
    pub const CRUSH_TUNABLES: u64 = 1 << 18;
    /// Bit 21 (reused; formerly MON_GV).
    pub const SERVER_LUMINOUS: u64 = 1 << 21;
    /// Bit 23: messages carry the 21-byte footer with a signature field.
    pub const MSG_AUTH: u64 = feature::MSG_AUTH;
    /// Bit 25.
    pub const CRUSH_TUNABLES2: u64 = 1 << 25;
    /// Bit 27.
    pub const REPLY_CREATE_INODE: u64 = 1 << 27;
    /// Bit 28 (reused; formerly OSD_HBMSGS).
    pub const SERVER_MIMIC: u64 = 1 << 28;
    /// Bit 29.
    pub const MDSENC: u64 = 1 << 29;
    /// Bit 30.
    pub const OSDHASHPSPOOL: u64 = 1 << 30;
    /// Bit 35.
    pub const OSD_CACHEPOOL: u64 = 1 << 35;
    /// Bit 36.
    pub const CRUSH_V2: u64 = 1 << 36;
    /// Bit 37.
    pub const EXPORT_PEER: u64 = 1 << 37;
    /// Bit 39.
    pub const OSDMAP_ENC: u64 = 1 << 39;
    /// Bit 40.
    pub const MDS_INLINE_DATA: u64 = 1 << 40;
    /// Bit 41 (also OSD_PRIMARY_AFFINITY).
    pub const CRUSH_TUNABLES3: u64 = 1 << 41;
    /// Bit 42: KEEPALIVE2 / KEEPALIVE2_ACK are understood.
    pub const MSGR_KEEPALIVE2: u64 = feature::MSGR_KEEPALIVE2;
    /// Bit 43.
    pub const OSD_POOLRESEND: u64 = 1 << 43;
    /// Bit 47.
    pub const MDS_QUOTA: u64 = 1 << 47;
    /// Bit 48: straw2 buckets.
    pub const CRUSH_V4: u64 = 1 << 48;
    /// Bit 56.
    pub const NEW_OSDOP_ENCODING: u64 = 1 << 56;
    /// Bit 57 (also MON_STATEFUL_SUB, MON_ROUTE_OSDMAP, OSDSUBOP_NO_SNAPCONTEXT).
    pub const SERVER_JEWEL: u64 = 1 << 57;
    /// Bit 58 (also NEW_OSDOPREPLY_ENCODING, FS_FILE_LAYOUT_V2).
    pub const CRUSH_TUNABLES5: u64 = 1 << 58;
    /// Bit 59 (also FS_BTIME, FS_CHANGE_ATTR): payloads may use the new `entity_addr_t`
    /// encoding. Banner addresses stay legacy regardless.
    pub const MSG_ADDR2: u64 = 1 << 59;
    /// Bit 61.
    pub const CEPHX_V2: u64 = 1 << 61;

    /// A kernel-like client feature set, `0x2f018fb86aa42ada`: with a 16.2 monitor it
    /// negotiates MSG_AUTH (21-byte footers) and KEEPALIVE2, and SEQ replies via
    /// RECONNECT_SEQ. It is the kernel's `CEPH_FEATURES_SUPPORTED_DEFAULT` without bits 2,
    /// 5, 15 and 28, which current kernels also advertise; lacking MONENC (15), it gets the
    /// legacy MonMap encoding.
    pub const KERNEL_LIKE: u64 = NOSRCADDR
        | FLOCK
        | SUBSCRIBE2
        | RECONNECT_SEQ
        | DIRLAYOUTHASH
        | PGID64
        | PGPOOL3
        | OSDENC
        | CRUSH_TUNABLES
        | SERVER_LUMINOUS
        | MSG_AUTH
        | CRUSH_TUNABLES2
        | REPLY_CREATE_INODE
        | MDSENC
        | OSDHASHPSPOOL
        | OSD_CACHEPOOL
        | CRUSH_V2
        | EXPORT_PEER
        | OSDMAP_ENC
        | MDS_INLINE_DATA
        | CRUSH_TUNABLES3
        | MSGR_KEEPALIVE2
        | OSD_POOLRESEND
        | MDS_QUOTA
        | CRUSH_V4
        | NEW_OSDOP_ENCODING
        | SERVER_JEWEL
        | CRUSH_TUNABLES5
        | MSG_ADDR2
        | CEPHX_V2;

    /// Bits a fresh 16.2 monitor required of a client (bits 18, 25, 41, 48, 58: the CRUSH
    /// tunables of its default map); a connect without them gets a FEATURES reply. This was
    /// observed, not read from source: it depends on the cluster's CRUSH map.
    pub const MON_REQUIRED: u64 =
        CRUSH_TUNABLES | CRUSH_TUNABLES2 | CRUSH_TUNABLES3 | CRUSH_V4 | CRUSH_TUNABLES5;

    /// Every name of every bit, the current name first, then other live names, then retired
    /// ones, in the header's order.
    const NAMES: [&[&str]; 64] = [
        &["UID"],
        &["NOSRCADDR"],
        &["SERVER_NAUTILUS", "MONCLOCKCHECK"],
        &["FLOCK"],
        &["SUBSCRIBE2"],
        &["MONNAMES"],
        &["RECONNECT_SEQ"],
        &["DIRLAYOUTHASH"],
        &["OBJECTLOCATOR"],
        &["PGID64"],
        &["INCSUBOSDMAP"],
        &["PGPOOL3"],
        &["OSDREPLYMUX"],
        &["OSDENC"],
        &["SERVER_KRAKEN", "OMAP"],
        &["MONENC"],
        &["QUERY_T"],
        &["INDEP_PG_MAP"],
        &["CRUSH_TUNABLES"],
        &["CHUNKY_SCRUB"],
        &["MON_NULLROUTE"],
        &[
            "SERVER_LUMINOUS",
            "RESEND_ON_SPLIT",
            "RADOS_BACKOFF",
            "OSDMAP_PG_UPMAP",
            "CRUSH_CHOOSE_ARGS",
            "MON_GV",
        ],
        &["BACKFILL_RESERVATION"],
        &["MSG_AUTH"],
        &["RECOVERY_RESERVATION"],
        &["CRUSH_TUNABLES2"],
        &["CREATEPOOLID"],
        &["REPLY_CREATE_INODE"],
        &["SERVER_MIMIC", "OSD_HBMSGS"],
        &["MDSENC"],
        &["OSDHASHPSPOOL"],
        &["MON_SINGLE_PAXOS"],
        &["OSD_SNAPMAPPER"],
        &["MON_SCRUB"],
        &["OSD_PACKED_RECOVERY"],
        &["OSD_CACHEPOOL"],
        &["CRUSH_V2"],
        &["EXPORT_PEER"],
        &["OSD_ERASURE_CODES", "OSD_OSD_TMAP2OMAP"],
        &["OSDMAP_ENC"],
        &["MDS_INLINE_DATA"],
        &["CRUSH_TUNABLES3", "OSD_PRIMARY_AFFINITY"],
        &["MSGR_KEEPALIVE2"],
        &["OSD_POOLRESEND"],
        &["ERASURE_CODE_PLUGINS_V2"],
        &["OSD_SET_ALLOC_HINT"],
        &[
            "OSD_FADVISE_FLAGS",
            "OSD_REPOP",
            "OSD_OBJECT_DIGEST",
            "OSD_TRANSACTION_MAY_LAYOUT",
        ],
        &["MDS_QUOTA"],
        &["CRUSH_V4"],
        &["OSD_MIN_SIZE_RECOVERY", "OSD_PROXY_FEATURES"],
        &["MON_METADATA"],
        &["OSD_BITWISE_HOBJ_SORT"],
        &["OSD_PROXY_WRITE_FEATURES"],
        &["ERASURE_CODE_PLUGINS_V3"],
        &["OSD_HITSET_GMT"],
        &["HAMMER_0_94_4"],
        &["NEW_OSDOP_ENCODING"],
        &[
            "MON_STATEFUL_SUB",
            "MON_ROUTE_OSDMAP",
            "OSDSUBOP_NO_SNAPCONTEXT",
            "SERVER_JEWEL",
        ],
        &[
            "CRUSH_TUNABLES5",
            "NEW_OSDOPREPLY_ENCODING",
            "FS_FILE_LAYOUT_V2",
        ],
        &["FS_BTIME", "FS_CHANGE_ATTR", "MSG_ADDR2"],
        &["OSD_RECOVERY_DELETES"],
        &["CEPHX_V2"],
        &["RESERVED"],
        &["RESERVED_BROKEN"],
    ];

    /// The current name of feature bit `bit` (0..=63), without the `CEPH_FEATURE_` prefix.
    ///
    /// For overlapping bits this is the first live name in the header (bit 57 is
    /// `MON_STATEFUL_SUB`, bit 59 `FS_BTIME`); for reused bits, the new one (bit 21 is
    /// `SERVER_LUMINOUS`, not `MON_GV`). `None` for bits past 63.
    #[must_use]
    pub const fn name(bit: u32) -> Option<&'static str> {
        if bit < 64 {
            Some(NAMES[bit as usize][0])
        } else {
            None
        }
    }

    /// All names of feature bit `bit`: [`name`] first, then the other live names, then
    /// retired ones. Empty for bits past 63.
    #[must_use]
    pub const fn aliases(bit: u32) -> &'static [&'static str] {
        if bit < 64 {
            NAMES[bit as usize]
        } else {
            &[]
        }
    }

    /// The [`name`]s of the bits set in `features`, lowest bit first.
    pub fn names(features: u64) -> impl Iterator<Item = &'static str> {
        (0..64u32)
            .filter(move |&b| features & (1u64 << b) != 0)
            .map(|b| NAMES[b as usize][0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn banner_checks() {
        assert_eq!(check_banner(b"ceph v027"), Ok(()));
        assert_eq!(check_banner(b"ceph v027 and more"), Ok(()));
        assert_eq!(
            check_banner(b"ceph v2\n\x10\x00"),
            Err(DecodeError::Msgr2Banner)
        );
        assert_eq!(check_banner(b"ceph v2\n"), Err(DecodeError::Msgr2Banner));
        assert_eq!(
            check_banner(b"ceph v02"),
            Err(DecodeError::Truncated { need: 9, have: 8 })
        );
        assert_eq!(
            check_banner(b"ceph v026"),
            Err(DecodeError::BadBanner(*b"ceph v026"))
        );
        assert_eq!(
            check_banner(b"GET / HTTP/1.1"),
            Err(DecodeError::BadBanner(*b"GET / HTT"))
        );
        let e = DecodeError::BadBanner(*b"ceph\nv\x00\xff7").to_string();
        assert!(e.contains("ceph\\nv\\x00\\xff7"), "{e}");
    }

    #[test]
    fn ipv4_addr_layout_and_round_trip() {
        let a = EntityAddr::new(v4("127.0.0.1:6789"), 0x2176);
        let b = a.encode();
        assert_eq!(&b[0..4], &[0, 0, 0, 0]);
        assert_eq!(&b[4..8], &[0x76, 0x21, 0, 0]);
        assert_eq!(&b[8..10], &[0, 2], "family is big-endian");
        assert_eq!(&b[10..12], &[0x1a, 0x85], "port is big-endian");
        assert_eq!(&b[12..16], &[127, 0, 0, 1]);
        assert!(b[16..].iter().all(|&x| x == 0));
        assert_eq!(EntityAddr::decode(&b), Ok(a));
        assert!(!a.is_blank_ip());
        assert_eq!(a.to_string(), "127.0.0.1:6789/8566");
        assert!(EntityAddr::new(v4("0.0.0.0:0"), 1).is_blank_ip());
    }

    #[test]
    fn ipv6_addr_layout_and_round_trip() {
        let ip: Ipv6Addr = "fe80::1:2".parse().unwrap();
        let sa = SocketAddr::V6(SocketAddrV6::new(ip, 3300, 0x000a_bcde, 7));
        let a = EntityAddr {
            ty: ADDR_TYPE_LEGACY,
            nonce: 0xdead_beef,
            addr: Some(sa),
        };
        let b = a.encode();
        assert_eq!(&b[0..4], &[1, 0, 0, 0]);
        assert_eq!(&b[8..10], &[0, 10]);
        assert_eq!(&b[10..12], &3300u16.to_be_bytes());
        assert_eq!(&b[12..16], &0x000a_bcdeu32.to_be_bytes());
        assert_eq!(&b[16..32], &ip.octets());
        assert_eq!(&b[32..36], &7u32.to_le_bytes());
        assert!(b[36..].iter().all(|&x| x == 0));
        assert_eq!(EntityAddr::decode(&b), Ok(a));
        assert!(!a.is_blank_ip());
        assert_eq!(a.to_string(), "[fe80::1:2%7]:3300/3735928559");
        let any = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0));
        assert!(EntityAddr::new(Some(any), 0).is_blank_ip());
    }

    #[test]
    fn blank_and_bad_addrs() {
        let blank = EntityAddr::new(None, 5);
        let b = blank.encode();
        assert!(b[8..].iter().all(|&x| x == 0));
        assert_eq!(EntityAddr::decode(&b), Ok(blank));
        assert!(blank.is_blank_ip());
        assert_eq!(blank.to_string(), "-/5");

        let mut b = EntityAddr::new(v4("10.0.0.1:1"), 0).encode();
        b[8..10].copy_from_slice(&2u16.to_le_bytes()); // little-endian family: wrong
        assert_eq!(
            EntityAddr::decode(&b),
            Err(DecodeError::UnknownAddrFamily(0x0200))
        );
        assert_eq!(
            EntityAddr::decode(&b[..135]),
            Err(DecodeError::Truncated {
                need: 136,
                have: 135
            })
        );
    }

    #[test]
    fn hellos_round_trip() {
        let s = ServerHello {
            addr: EntityAddr::new(v4("127.0.0.1:6789"), 0),
            peer_addr_for_me: EntityAddr::new(v4("127.0.0.1:45814"), 0),
        };
        let b = s.encode();
        assert_eq!(b.len(), 281);
        assert_eq!(&b[..9], BANNER);
        assert_eq!(ServerHello::decode(&b), Ok(s));
        let c = ClientHello {
            addr: EntityAddr::new(v4("127.0.0.1:0"), 42),
        };
        let b = c.encode();
        assert_eq!(b.len(), 145);
        assert_eq!(ClientHello::decode(&b), Ok(c));
        assert_eq!(
            ClientHello::decode(&b[..144]),
            Err(DecodeError::Truncated {
                need: 145,
                have: 144
            })
        );
        let mut v2 = b;
        v2[..8].copy_from_slice(MSGR2_BANNER);
        assert_eq!(ClientHello::decode(&v2), Err(DecodeError::Msgr2Banner));
    }

    #[test]
    fn connect_layout_and_round_trip() {
        let c = ConnectMsg {
            features: features::KERNEL_LIKE,
            host_type: u32::from(EntityType::Client.to_u8()),
            global_seq: 1,
            connect_seq: 0,
            protocol_version: protocol::MON,
            authorizer_protocol: auth::UNKNOWN,
            authorizer_len: 0,
            flags: 0,
        };
        let b = c.encode();
        // The connect a kernel-like client sent to a 16.2 mon (tests/data/v1-auth.client.bin).
        let wire = [
            0xda, 0x2a, 0xa4, 0x6a, 0xb8, 0x8f, 0x01, 0x2f, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 15,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(b, wire);
        assert_eq!(ConnectMsg::decode(&wire), Ok(c));
        assert!(!c.is_lossy());
        let c2 = ConnectMsg {
            authorizer_protocol: auth::NONE,
            authorizer_len: 22,
            flags: CONNECT_LOSSY,
            ..c
        };
        assert!(c2.is_lossy());
        assert_eq!(ConnectMsg::decode(&c2.encode()), Ok(c2));
        assert!(ConnectMsg::decode(&wire[..32]).is_err());
    }

    #[test]
    fn reply_layout_and_round_trip() {
        // The reply of that 16.2 mon (tests/data/v1-auth.server.bin, offset 281).
        let wire = [
            13, 0xff, 0xff, 0xfd, 0xff, 0xbd, 0xcf, 0x01, 0x3f, 23, 0, 0, 0, 1, 0, 0, 0, 15, 0, 0,
            0, 0, 0, 0, 0, 1,
        ];
        let r = ConnectReply::decode(&wire).unwrap();
        assert_eq!(
            r,
            ConnectReply {
                tag: tag::SEQ,
                features: 0x3f01_cfbd_fffd_ffff,
                global_seq: 23,
                connect_seq: 1,
                protocol_version: 15,
                authorizer_len: 0,
                flags: CONNECT_LOSSY,
            }
        );
        assert!(r.is_lossy());
        assert_eq!(r.trailer_len(), 8);
        assert_eq!(r.encode(), wire);
        let ready = ConnectReply {
            tag: tag::READY,
            authorizer_len: 5,
            ..r
        };
        assert_eq!(ready.trailer_len(), 5);
        for t in 0..=255u8 {
            let x = ConnectReply { tag: t, ..r };
            match ConnectReply::decode(&x.encode()) {
                Ok(d) => {
                    assert!(is_connect_reply_tag(t));
                    assert_eq!(d, x);
                }
                Err(e) => {
                    assert!(!is_connect_reply_tag(t));
                    assert_eq!(e, DecodeError::UnknownTag(t));
                }
            }
        }
        for t in [tag::MSG, tag::ACK, tag::CLOSE, tag::KEEPALIVE2, 0, 17] {
            assert!(!is_connect_reply_tag(t));
        }
    }

    #[test]
    fn seq_exchange() {
        assert_eq!(encode_seq(0x0102), [2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode_seq(&encode_seq(u64::MAX)), Ok(u64::MAX));
        assert!(decode_seq(&[0; 7]).is_err());
    }

    #[test]
    fn protocol_for_peer() {
        assert_eq!(protocol::for_peer(EntityType::Mon), Some(15));
        assert_eq!(protocol::for_peer(EntityType::Osd), Some(24));
        assert_eq!(protocol::for_peer(EntityType::Mds), Some(32));
        assert_eq!(protocol::for_peer(EntityType::Client), None);
    }

    #[test]
    fn feature_names_and_sets() {
        use features::*;
        assert_eq!(KERNEL_LIKE, 0x2f01_8fb8_6aa4_2ada);
        assert_eq!(
            MON_REQUIRED,
            (1 << 18) | (1 << 25) | (1 << 41) | (1 << 48) | (1 << 58)
        );
        assert_eq!(KERNEL_LIKE & MON_REQUIRED, MON_REQUIRED);
        assert_eq!(MSG_AUTH, 1 << 23);
        assert_eq!(RECONNECT_SEQ, 1 << 6);
        assert_eq!(MSGR_KEEPALIVE2, 1 << 42);
        for bit in 0..64 {
            let n = name(bit).unwrap();
            assert!(
                !n.is_empty()
                    && n.bytes()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
            );
            assert_eq!(aliases(bit)[0], n);
        }
        assert_eq!(name(64), None);
        assert!(aliases(64).is_empty());
        assert_eq!(name(23), Some("MSG_AUTH"));
        assert_eq!(name(21), Some("SERVER_LUMINOUS"));
        assert!(aliases(21).contains(&"MON_GV"));
        assert!(aliases(59).contains(&"MSG_ADDR2"));
        assert!(aliases(57).contains(&"SERVER_JEWEL"));
        // Each named constant is a single bit whose aliases include its name.
        for (c, n) in [
            (SERVER_JEWEL, "SERVER_JEWEL"),
            (MSG_ADDR2, "MSG_ADDR2"),
            (CRUSH_TUNABLES5, "CRUSH_TUNABLES5"),
            (CEPHX_V2, "CEPHX_V2"),
            (MONENC, "MONENC"),
            (SERVER_NAUTILUS, "SERVER_NAUTILUS"),
        ] {
            assert_eq!(c.count_ones(), 1);
            assert!(aliases(c.trailing_zeros()).contains(&n), "{n}");
        }
        let n: Vec<_> = names(RECONNECT_SEQ | MSG_AUTH | 1).collect();
        assert_eq!(n, ["UID", "RECONNECT_SEQ", "MSG_AUTH"]);
        assert_eq!(names(KERNEL_LIKE).count(), 30);
        assert_eq!(names(u64::MAX).count(), 64);
    }
}
