//! The msgr v1 ("ceph v027") wire codec: pure functions over bytes, no state.
//!
//! Everything on the wire is little-endian and packed. This module knows the layouts and
//! nothing about sessions: the send-side accounting lives in [`crate::send`].
//!
//! | record | bytes | module |
//! |---|---|---|
//! | message: tag + header + front + middle + data + footer | 1 + 53 + … + 21 (or 13) | [`header`], [`footer`] |
//! | ACK | 1 + 8 | [`control`] |
//! | KEEPALIVE / CLOSE | 1 | [`control`] |
//! | KEEPALIVE2 / KEEPALIVE2_ACK | 1 + 8 | [`control`] |
#![forbid(unsafe_code)]

pub mod control;
pub mod crc;
pub mod entity;
pub mod footer;
pub mod handshake;
pub mod header;

use std::fmt;

pub use control::{Control, Timespec};
pub use crc::ceph_crc32c;
pub use entity::{EntityName, EntityType};
pub use footer::{Footer, FooterKind};
pub use header::MsgHeader;

/// One-byte record tags of msgr v1 (`CEPH_MSGR_TAG_*`).
pub mod tag {
    /// Connect reply: the session is open.
    pub const READY: u8 = 1;
    /// Connect reply: the server has no session; reset seqs and queues.
    pub const RESETSESSION: u8 = 2;
    /// Connect reply: connection race, wait.
    pub const WAIT: u8 = 3;
    /// Connect reply: retry with a higher connect_seq.
    pub const RETRY_SESSION: u8 = 4;
    /// Connect reply: retry with a higher global_seq.
    pub const RETRY_GLOBAL: u8 = 5;
    /// Stream: the peer is closing.
    pub const CLOSE: u8 = 6;
    /// Stream: a message (header, front, middle, data, footer) follows.
    pub const MSG: u8 = 7;
    /// Stream: cumulative acknowledgement, le64 seq follows.
    pub const ACK: u8 = 8;
    /// Stream: keepalive without payload.
    pub const KEEPALIVE: u8 = 9;
    /// Connect reply: protocol version mismatch.
    pub const BADPROTOVER: u8 = 10;
    /// Connect reply: the authorizer was rejected.
    pub const BADAUTHORIZER: u8 = 11;
    /// Connect reply: required features are missing.
    pub const FEATURES: u8 = 12;
    /// Connect reply: le64 in_seq follows (after the authorizer reply).
    pub const SEQ: u8 = 13;
    /// Stream: keepalive carrying a timestamp (8 bytes).
    pub const KEEPALIVE2: u8 = 14;
    /// Stream: answer to KEEPALIVE2, echoing its timestamp.
    pub const KEEPALIVE2_ACK: u8 = 15;
    /// Connect reply: cephx server challenge.
    pub const CHALLENGE_AUTHORIZER: u8 = 16;

    /// The tag's name without the `CEPH_MSGR_TAG_` prefix (`None` for a byte that is not
    /// a v1 tag), for logs.
    #[must_use]
    pub const fn name(t: u8) -> Option<&'static str> {
        Some(match t {
            READY => "READY",
            RESETSESSION => "RESETSESSION",
            WAIT => "WAIT",
            RETRY_SESSION => "RETRY_SESSION",
            RETRY_GLOBAL => "RETRY_GLOBAL",
            CLOSE => "CLOSE",
            MSG => "MSG",
            ACK => "ACK",
            KEEPALIVE => "KEEPALIVE",
            BADPROTOVER => "BADPROTOVER",
            BADAUTHORIZER => "BADAUTHORIZER",
            FEATURES => "FEATURES",
            SEQ => "SEQ",
            KEEPALIVE2 => "KEEPALIVE2",
            KEEPALIVE2_ACK => "KEEPALIVE2_ACK",
            CHALLENGE_AUTHORIZER => "CHALLENGE_AUTHORIZER",
            _ => return None,
        })
    }
}

/// Feature bits (`CEPH_FEATURE_*`) this crate looks at.
pub mod feature {
    /// Bit 6: the connect reply may be SEQ, followed by the in_seq exchange.
    pub const RECONNECT_SEQ: u64 = 1 << 6;
    /// Bit 23: messages carry the 21-byte footer with a signature field.
    pub const MSG_AUTH: u64 = 1 << 23;
    /// Bit 42: KEEPALIVE2 / KEEPALIVE2_ACK are understood.
    pub const MSGR_KEEPALIVE2: u64 = 1 << 42;
}

/// Footer flag: the message was sent in full (not aborted).
pub const FOOTER_COMPLETE: u8 = 1;
/// Footer flag: the data CRC was not computed.
pub const FOOTER_NOCRC: u8 = 2;
/// Footer flag: the message is signed.
pub const FOOTER_SIGNED: u8 = 4;

/// Length of the tag byte plus the message header: the part of a message frame that always
/// goes out intact once its first byte is on the wire.
pub const MSG_HEAD_LEN: usize = 1 + header::HEADER_LEN;

/// A malformed record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the record needs.
    Truncated {
        /// Bytes the record needs.
        need: usize,
        /// Bytes that were given.
        have: usize,
    },
    /// The header CRC does not match the header bytes.
    HeaderCrc {
        /// CRC carried by the header.
        carried: u32,
        /// CRC computed over the first 49 bytes.
        computed: u32,
    },
    /// A tag byte that is not valid where it appeared.
    UnknownTag(u8),
    /// An entity type outside mon/mds/osd/client/auth/mgr.
    UnknownEntityType(u8),
    /// The peer's first 9 bytes are not the msgr v1 banner `ceph v027`.
    BadBanner([u8; 9]),
    /// The peer sent the msgr2 banner `ceph v2\n`: it does not speak msgr v1 on this port.
    Msgr2Banner,
    /// A legacy entity address whose (big-endian) family is not 0, AF_INET or AF_INET6.
    UnknownAddrFamily(u16),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { need, have } => {
                write!(f, "truncated record: need {need} bytes, have {have}")
            }
            Self::HeaderCrc { carried, computed } => write!(
                f,
                "message header crc mismatch: carried {carried:#010x}, computed {computed:#010x}"
            ),
            Self::UnknownTag(t) => write!(f, "unknown tag {t}"),
            Self::UnknownEntityType(t) => write!(f, "unknown entity type {t:#x}"),
            Self::BadBanner(b) => write!(
                f,
                "bad banner \"{}\", expected \"ceph v027\"",
                b.escape_ascii()
            ),
            Self::Msgr2Banner => write!(f, "peer sent the msgr2 banner; it does not speak msgr v1"),
            Self::UnknownAddrFamily(fam) => {
                write!(f, "unknown address family {fam} in entity address")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Returns `buf[..N]` as an array, or a [`DecodeError::Truncated`].
pub(crate) fn take<const N: usize>(buf: &[u8]) -> Result<&[u8; N], DecodeError> {
    buf.get(..N)
        .and_then(|b| b.try_into().ok())
        .ok_or(DecodeError::Truncated {
            need: N,
            have: buf.len(),
        })
}

pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}
