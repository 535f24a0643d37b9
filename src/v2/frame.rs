//! msgr2.1 frame pieces in crc mode: banner, preamble, epilogue, `ceph_msg_header2`.
//!
//! ```text
//!  preamble (32)                          seg0        crc0   seg1..3      epilogue (13)
//! | tag | nseg | 4×(len32,align16) | 00 00 | crc32 | ....... | le32 | ........ | st | c1 | c2 | c3 |
//! ```
//!
//! The preamble's CRC is `crc32c(0, first 28 bytes)`; segment CRCs are
//! `crc32c(0xFFFF_FFFF, segment)`, both in Ceph's raw convention
//! ([`ceph_crc32c`]). Segment 0's CRC follows it inline only
//! when it is non-empty; the epilogue exists only when `nseg > 1`.

use std::fmt;

use crate::wire::ceph_crc32c;

/// The 8 banner bytes that open a msgr2 stream.
pub const BANNER_PREFIX: &[u8; 8] = b"ceph v2\n";
/// Length of the banner: prefix, le16 payload length (16), two le64 feature sets.
pub const BANNER_LEN: usize = 26;
/// msgr2 feature bit: revision 1 of the protocol (msgr2.1). Required by this crate.
pub const FEATURE_REVISION_1: u64 = 1;
/// msgr2 feature bit: on-wire compression (never offered here).
pub const FEATURE_COMPRESSION: u64 = 1 << 1;

/// Length of a preamble.
pub const PREAMBLE_LEN: usize = 32;
/// Length of a crc-mode epilogue.
pub const EPILOGUE_LEN: usize = 13;
/// Length of `ceph_msg_header2`.
pub const HEADER2_LEN: usize = 41;
/// Bytes of a segment's inline CRC.
pub const CRC_LEN: usize = 4;
/// Most segments a frame may have.
pub const MAX_SEGMENTS: usize = 4;
/// Alignment advertised for control-frame segments and the first three message segments.
pub const DEFAULT_ALIGNMENT: u16 = 8;
/// Alignment advertised for a message's data segment.
pub const DATA_ALIGNMENT: u16 = 4096;
/// Segment alignments of a MESSAGE frame: header2, front, middle, data.
pub const MESSAGE_ALIGNMENTS: [u16; 4] = [
    DEFAULT_ALIGNMENT,
    DEFAULT_ALIGNMENT,
    DEFAULT_ALIGNMENT,
    DATA_ALIGNMENT,
];
/// Length of a MESSAGE frame's head: preamble, header2 and its CRC.
pub const MESSAGE_HEAD_LEN: usize = PREAMBLE_LEN + HEADER2_LEN + CRC_LEN;

/// Epilogue `late_status`: the frame is complete.
pub const LATE_STATUS_COMPLETE: u8 = 0x0E;
/// Epilogue `late_status`: the sender aborted the frame; the receiver drops it.
pub const LATE_STATUS_ABORTED: u8 = 0x01;
/// Mask of the bits `late_status` is judged by.
pub const LATE_STATUS_MASK: u8 = 0x0F;

/// Seed of segment CRCs.
pub const SEGMENT_CRC_SEED: u32 = 0xFFFF_FFFF;

/// CRC of one segment as msgr2 computes it.
#[inline]
#[must_use]
pub fn segment_crc(data: &[u8]) -> u32 {
    ceph_crc32c(SEGMENT_CRC_SEED, data)
}

/// msgr2 frame tags (`enum class Tag` in Ceph's `frames_v2.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Tag {
    /// Entity type and the peer's address as seen.
    Hello = 1,
    /// Auth method, preferred modes, method payload.
    AuthRequest = 2,
    /// The server refuses the method; lists allowed methods and modes.
    AuthBadMethod = 3,
    /// Another auth round (server to client).
    AuthReplyMore = 4,
    /// Another auth round (client to server).
    AuthRequestMore = 5,
    /// Auth done: global id, connection mode, method payload.
    AuthDone = 6,
    /// HMAC of every byte received so far.
    AuthSignature = 7,
    /// The client's addresses, target, features, cookie.
    ClientIdent = 8,
    /// The server's addresses, features, cookie.
    ServerIdent = 9,
    /// The server requires features the client lacks.
    IdentMissingFeatures = 10,
    /// Resume a lossless session.
    SessionReconnect = 11,
    /// The server has no such session.
    SessionReset = 12,
    /// Retry with a higher connect_seq.
    SessionRetry = 13,
    /// Retry with a higher global_seq.
    SessionRetryGlobal = 14,
    /// The session resumed; carries the server's in_seq.
    SessionReconnectOk = 15,
    /// Connection race: wait for the peer's connection.
    Wait = 16,
    /// A message: header2, front, middle, data.
    Message = 17,
    /// Keepalive with a timestamp.
    Keepalive2 = 18,
    /// Answer to a keepalive, echoing its timestamp.
    Keepalive2Ack = 19,
    /// Cumulative acknowledgement.
    Ack = 20,
}

impl Tag {
    /// The tag with this wire value.
    #[must_use]
    pub fn from_u8(v: u8) -> Option<Self> {
        use Tag::*;
        Some(match v {
            1 => Hello,
            2 => AuthRequest,
            3 => AuthBadMethod,
            4 => AuthReplyMore,
            5 => AuthRequestMore,
            6 => AuthDone,
            7 => AuthSignature,
            8 => ClientIdent,
            9 => ServerIdent,
            10 => IdentMissingFeatures,
            11 => SessionReconnect,
            12 => SessionReset,
            13 => SessionRetry,
            14 => SessionRetryGlobal,
            15 => SessionReconnectOk,
            16 => Wait,
            17 => Message,
            18 => Keepalive2,
            19 => Keepalive2Ack,
            20 => Ack,
            _ => return None,
        })
    }

    /// The tag's name as Ceph logs it.
    #[must_use]
    pub fn name(self) -> &'static str {
        use Tag::*;
        match self {
            Hello => "HELLO",
            AuthRequest => "AUTH_REQUEST",
            AuthBadMethod => "AUTH_BAD_METHOD",
            AuthReplyMore => "AUTH_REPLY_MORE",
            AuthRequestMore => "AUTH_REQUEST_MORE",
            AuthDone => "AUTH_DONE",
            AuthSignature => "AUTH_SIGNATURE",
            ClientIdent => "CLIENT_IDENT",
            ServerIdent => "SERVER_IDENT",
            IdentMissingFeatures => "IDENT_MISSING_FEATURES",
            SessionReconnect => "SESSION_RECONNECT",
            SessionReset => "SESSION_RESET",
            SessionRetry => "SESSION_RETRY",
            SessionRetryGlobal => "SESSION_RETRY_GLOBAL",
            SessionReconnectOk => "SESSION_RECONNECT_OK",
            Wait => "WAIT",
            Message => "MESSAGE",
            Keepalive2 => "KEEPALIVE2",
            Keepalive2Ack => "KEEPALIVE2_ACK",
            Ack => "ACK",
        }
    }
}

/// A malformed msgr2 frame piece.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The banner does not start with `ceph v2\n` (the peer may speak msgr v1).
    BadBanner,
    /// The banner's payload length is not 16.
    BadBannerLength(u16),
    /// The peer requires msgr2 features we do not support.
    MissingFeatures {
        /// The bits it requires that we lack.
        missing: u64,
    },
    /// The peer does not support msgr2.1 (revision 1), which we require.
    NoRevision1,
    /// The preamble CRC does not match its 28 bytes.
    PreambleCrc {
        /// CRC carried.
        got: u32,
        /// CRC computed.
        want: u32,
    },
    /// A tag byte that is not a msgr2 tag.
    UnknownTag(u8),
    /// A segment count of 0 or more than 4.
    BadSegmentCount(u8),
    /// The last announced segment is empty, or a slot past nseg is not zero.
    BadSegments,
    /// A segment CRC does not match.
    SegmentCrc {
        /// Segment index.
        segment: usize,
        /// CRC carried.
        got: u32,
        /// CRC computed.
        want: u32,
    },
    /// A late_status whose low nibble is neither COMPLETE nor ABORTED.
    BadLateStatus(u8),
    /// Fewer bytes than the structure needs.
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadBanner => f.write_str("the peer's banner is not `ceph v2`"),
            Self::BadBannerLength(n) => write!(f, "msgr2 banner payload length {n}, expected 16"),
            Self::MissingFeatures { missing } => {
                write!(f, "the peer requires msgr2 features {missing:#x} we lack")
            }
            Self::NoRevision1 => f.write_str("the peer does not support msgr2.1 (revision 1)"),
            Self::PreambleCrc { got, want } => {
                write!(f, "preamble crc {got:#010x}, computed {want:#010x}")
            }
            Self::UnknownTag(t) => write!(f, "unknown msgr2 frame tag {t}"),
            Self::BadSegmentCount(n) => write!(f, "msgr2 frame with {n} segments (1..=4)"),
            Self::BadSegments => f.write_str("msgr2 preamble: bad segment lengths"),
            Self::SegmentCrc { segment, got, want } => write!(
                f,
                "segment {segment} crc {got:#010x}, computed {want:#010x}"
            ),
            Self::BadLateStatus(s) => write!(f, "epilogue late_status {s:#04x} is not valid"),
            Self::Truncated { what, need, have } => {
                write!(f, "truncated {what}: need {need} bytes, have {have}")
            }
        }
    }
}

impl std::error::Error for FrameError {}

fn need(buf: &[u8], n: usize, what: &'static str) -> Result<(), FrameError> {
    if buf.len() < n {
        return Err(FrameError::Truncated {
            what,
            need: n,
            have: buf.len(),
        });
    }
    Ok(())
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// The msgr2 banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Banner {
    /// msgr2 features supported.
    pub supported: u64,
    /// msgr2 features required.
    pub required: u64,
}

impl Banner {
    /// What this crate sends: msgr2.1 supported and required, no compression.
    pub const OURS: Banner = Banner {
        supported: FEATURE_REVISION_1,
        required: FEATURE_REVISION_1,
    };

    /// Encodes the 26 banner bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; BANNER_LEN] {
        let mut b = [0u8; BANNER_LEN];
        b[..8].copy_from_slice(BANNER_PREFIX);
        b[8..10].copy_from_slice(&16u16.to_le_bytes());
        b[10..18].copy_from_slice(&self.supported.to_le_bytes());
        b[18..26].copy_from_slice(&self.required.to_le_bytes());
        b
    }

    /// Checks what has arrived of a banner against the msgr2 prefix, so a v1 peer (whose
    /// banner is `ceph v027`) is told apart before 26 bytes are in.
    pub fn check_prefix(buf: &[u8]) -> Result<(), FrameError> {
        let n = buf.len().min(BANNER_PREFIX.len());
        if buf[..n] != BANNER_PREFIX[..n] {
            return Err(FrameError::BadBanner);
        }
        Ok(())
    }

    /// Decodes a banner (the prefix is checked first, so a v1 peer is `BadBanner`).
    pub fn decode(buf: &[u8]) -> Result<Self, FrameError> {
        Self::check_prefix(buf)?;
        need(buf, BANNER_LEN, "banner")?;
        let len = le16(buf, 8);
        if len != 16 {
            return Err(FrameError::BadBannerLength(len));
        }
        Ok(Self {
            supported: le64(buf, 10),
            required: le64(buf, 18),
        })
    }

    /// Checks a peer's banner against ours: it must support revision 1 and require
    /// nothing we lack.
    pub fn check_peer(&self, peer: &Banner) -> Result<(), FrameError> {
        let missing = peer.required & !self.supported;
        if missing != 0 {
            return Err(FrameError::MissingFeatures { missing });
        }
        if peer.supported & FEATURE_REVISION_1 == 0 {
            return Err(FrameError::NoRevision1);
        }
        Ok(())
    }
}

/// A frame preamble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preamble {
    /// The frame's tag (raw; see [`Tag::from_u8`]).
    pub tag: u8,
    /// Segment count, 1..=4.
    pub nseg: u8,
    /// Length and alignment of each segment; slots ≥ nseg are zero.
    pub segments: [(u32, u16); MAX_SEGMENTS],
}

impl Preamble {
    /// The preamble of a frame whose segments have these lengths and alignments: nseg is
    /// one past the last non-empty segment (at least 1), and slots past it are zero.
    #[must_use]
    pub fn for_segments(tag: Tag, lens: [u32; MAX_SEGMENTS], aligns: [u16; 4]) -> Self {
        let nseg = lens.iter().rposition(|&l| l > 0).map_or(1, |i| i + 1);
        let mut segments = [(0u32, 0u16); MAX_SEGMENTS];
        for i in 0..nseg {
            segments[i] = (lens[i], aligns[i]);
        }
        Self {
            tag: tag as u8,
            nseg: nseg as u8,
            segments,
        }
    }

    /// Segment count as a `usize`.
    #[must_use]
    pub fn nseg(&self) -> usize {
        usize::from(self.nseg)
    }

    /// Whether the frame ends with an epilogue (crc mode: only with more than one segment).
    #[must_use]
    pub fn has_epilogue(&self) -> bool {
        self.nseg > 1
    }

    /// Bytes of the frame after the preamble: seg0 (+ its crc if non-empty), the other
    /// segments, and the epilogue if any.
    #[must_use]
    pub fn body_len(&self) -> u64 {
        let mut n: u64 = self.segments.iter().map(|s| u64::from(s.0)).sum();
        if self.segments[0].0 > 0 {
            n += CRC_LEN as u64;
        }
        if self.has_epilogue() {
            n += EPILOGUE_LEN as u64;
        }
        n
    }

    /// Encodes the 32 bytes, CRC included.
    #[must_use]
    pub fn encode(&self) -> [u8; PREAMBLE_LEN] {
        let mut b = [0u8; PREAMBLE_LEN];
        b[0] = self.tag;
        b[1] = self.nseg;
        for (i, (len, align)) in self.segments.iter().enumerate() {
            let at = 2 + i * 6;
            b[at..at + 4].copy_from_slice(&len.to_le_bytes());
            b[at + 4..at + 6].copy_from_slice(&align.to_le_bytes());
        }
        let crc = ceph_crc32c(0, &b[..28]);
        b[28..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a preamble: CRC, segment count, and that the last announced
    /// segment is non-empty and the unused slots are zero. The tag is not judged here.
    pub fn decode(buf: &[u8]) -> Result<Self, FrameError> {
        need(buf, PREAMBLE_LEN, "preamble")?;
        let want = ceph_crc32c(0, &buf[..28]);
        let got = le32(buf, 28);
        if got != want {
            return Err(FrameError::PreambleCrc { got, want });
        }
        let nseg = buf[1];
        if nseg == 0 || usize::from(nseg) > MAX_SEGMENTS {
            return Err(FrameError::BadSegmentCount(nseg));
        }
        let mut segments = [(0u32, 0u16); MAX_SEGMENTS];
        for (i, s) in segments.iter_mut().enumerate() {
            let at = 2 + i * 6;
            *s = (le32(buf, at), le16(buf, at + 4));
        }
        let n = usize::from(nseg);
        // Ceph refuses an empty last segment only when more than one is announced; a
        // one-segment frame may be empty (e.g. WAIT).
        if (n > 1 && segments[n - 1].0 == 0) || segments[n..].iter().any(|s| s.0 != 0) {
            return Err(FrameError::BadSegments);
        }
        Ok(Self {
            tag: buf[0],
            nseg,
            segments,
        })
    }
}

/// A crc-mode epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epilogue {
    /// `late_status`: [`LATE_STATUS_COMPLETE`] or [`LATE_STATUS_ABORTED`].
    pub late_status: u8,
    /// CRCs of segments 1, 2, 3 (0 for slots past nseg).
    pub crcs: [u32; 3],
}

impl Epilogue {
    /// Encodes the 13 bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; EPILOGUE_LEN] {
        let mut b = [0u8; EPILOGUE_LEN];
        b[0] = self.late_status;
        for (i, c) in self.crcs.iter().enumerate() {
            b[1 + i * 4..5 + i * 4].copy_from_slice(&c.to_le_bytes());
        }
        b
    }

    /// Decodes 13 bytes (the status is judged by [`Epilogue::aborted`]).
    pub fn decode(buf: &[u8]) -> Result<Self, FrameError> {
        need(buf, EPILOGUE_LEN, "epilogue")?;
        Ok(Self {
            late_status: buf[0],
            crcs: [le32(buf, 1), le32(buf, 5), le32(buf, 9)],
        })
    }

    /// Whether the sender aborted the frame; an invalid status is an error.
    pub fn aborted(&self) -> Result<bool, FrameError> {
        match self.late_status & LATE_STATUS_MASK {
            LATE_STATUS_COMPLETE => Ok(false),
            LATE_STATUS_ABORTED => Ok(true),
            _ => Err(FrameError::BadLateStatus(self.late_status)),
        }
    }
}

/// `ceph_msg_header2`: segment 0 of a MESSAGE frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsgHeader2 {
    /// Message seq.
    pub seq: u64,
    /// Transaction id.
    pub tid: u64,
    /// Message type.
    pub ty: u16,
    /// Priority.
    pub priority: u16,
    /// Encoding version.
    pub version: u16,
    /// Padding before data (always 0 here).
    pub data_pre_padding_len: u32,
    /// Data offset hint.
    pub data_off: u16,
    /// Piggybacked acknowledgement: the sender's in_seq.
    pub ack_seq: u64,
    /// Flags (userspace Ceph copies the footer flags here).
    pub flags: u8,
    /// Oldest version that can decode the message.
    pub compat_version: u16,
    /// Reserved.
    pub reserved: u16,
}

impl MsgHeader2 {
    /// Encodes the 41 bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER2_LEN] {
        let mut b = [0u8; HEADER2_LEN];
        b[0..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.tid.to_le_bytes());
        b[16..18].copy_from_slice(&self.ty.to_le_bytes());
        b[18..20].copy_from_slice(&self.priority.to_le_bytes());
        b[20..22].copy_from_slice(&self.version.to_le_bytes());
        b[22..26].copy_from_slice(&self.data_pre_padding_len.to_le_bytes());
        b[26..28].copy_from_slice(&self.data_off.to_le_bytes());
        b[28..36].copy_from_slice(&self.ack_seq.to_le_bytes());
        b[36] = self.flags;
        b[37..39].copy_from_slice(&self.compat_version.to_le_bytes());
        b[39..41].copy_from_slice(&self.reserved.to_le_bytes());
        b
    }

    /// Decodes 41 bytes.
    pub fn decode(buf: &[u8]) -> Result<Self, FrameError> {
        need(buf, HEADER2_LEN, "ceph_msg_header2")?;
        Ok(Self {
            seq: le64(buf, 0),
            tid: le64(buf, 8),
            ty: le16(buf, 16),
            priority: le16(buf, 18),
            version: le16(buf, 20),
            data_pre_padding_len: le32(buf, 22),
            data_off: le16(buf, 26),
            ack_seq: le64(buf, 28),
            flags: buf[36],
            compat_version: le16(buf, 37),
            reserved: le16(buf, 39),
        })
    }
}

/// Encodes a one-segment control frame: preamble, payload, payload CRC (when the payload
/// is non-empty). No epilogue: control frames always have one segment.
#[must_use]
pub fn encode_control(tag: Tag, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREAMBLE_LEN + payload.len() + CRC_LEN);
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let p = Preamble::for_segments(tag, [len, 0, 0, 0], [DEFAULT_ALIGNMENT; 4]);
    out.extend_from_slice(&p.encode());
    out.extend_from_slice(payload);
    if !payload.is_empty() {
        out.extend_from_slice(&segment_crc(payload).to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_round_trip_and_checks() {
        // 16.2.15 sends supported = REVISION_1, required = 0.
        let theirs = Banner {
            supported: 1,
            required: 0,
        };
        let b = theirs.encode();
        assert_eq!(&b[..10], b"ceph v2\n\x10\x00");
        assert_eq!(Banner::decode(&b).unwrap(), theirs);
        assert!(Banner::OURS.check_peer(&theirs).is_ok());
        assert_eq!(
            Banner::decode(b"ceph v027"),
            Err(FrameError::BadBanner),
            "a v1 banner is told apart at its prefix"
        );
        let old = Banner {
            supported: 0,
            required: 0,
        };
        assert_eq!(Banner::OURS.check_peer(&old), Err(FrameError::NoRevision1));
        let greedy = Banner {
            supported: 3,
            required: 2,
        };
        assert_eq!(
            Banner::OURS.check_peer(&greedy),
            Err(FrameError::MissingFeatures { missing: 2 })
        );
    }

    #[test]
    fn preamble_matches_a_captured_mosdop() {
        // From a 16.2.15 capture: MESSAGE, 4 segments 41/213/0/12, alignments 8/8/8/4096.
        let p = Preamble::for_segments(Tag::Message, [41, 213, 0, 12], MESSAGE_ALIGNMENTS);
        let b = p.encode();
        assert_eq!(
            &b[..26],
            &[
                0x11, 0x04, 0x29, 0, 0, 0, 0x08, 0, 0xd5, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0x08, 0,
                0x0c, 0, 0, 0, 0x00, 0x10
            ]
        );
        let d = Preamble::decode(&b).unwrap();
        assert_eq!(d, p);
        assert_eq!(d.body_len(), 41 + 4 + 213 + 12 + 13);
        let mut bad = b;
        bad[3] ^= 1;
        assert!(matches!(
            Preamble::decode(&bad),
            Err(FrameError::PreambleCrc { .. })
        ));
    }

    #[test]
    fn preamble_rejects_bad_segment_tables() {
        let mut raw = [0u8; 32];
        raw[0] = 17;
        for (nseg, lens, ok) in [
            (0u8, [0u32, 0, 0, 0], false),
            (5, [1, 1, 1, 1], false),
            (2, [41, 0, 0, 0], false),
            (1, [41, 5, 0, 0], false),
            (1, [0, 0, 0, 0], true),
            (2, [41, 1, 0, 0], true),
        ] {
            raw[1] = nseg;
            for (i, l) in lens.iter().enumerate() {
                raw[2 + i * 6..6 + i * 6].copy_from_slice(&l.to_le_bytes());
            }
            let crc = ceph_crc32c(0, &raw[..28]);
            raw[28..].copy_from_slice(&crc.to_le_bytes());
            assert_eq!(
                Preamble::decode(&raw).is_ok(),
                ok,
                "nseg {nseg} lens {lens:?}"
            );
        }
    }

    #[test]
    fn header_only_message_has_one_segment_and_no_epilogue() {
        let p = Preamble::for_segments(Tag::Message, [41, 0, 0, 0], MESSAGE_ALIGNMENTS);
        assert_eq!(p.nseg, 1);
        assert!(!p.has_epilogue());
        assert_eq!(p.segments[1], (0, 0));
        // Empty middle before data keeps its slot with its alignment.
        let p = Preamble::for_segments(Tag::Message, [41, 3, 0, 9], MESSAGE_ALIGNMENTS);
        assert_eq!(p.nseg, 4);
        assert_eq!(p.segments[2], (0, 8));
    }

    #[test]
    fn epilogue_status() {
        for (s, r) in [
            (0x0E, Ok(false)),
            (0x01, Ok(true)),
            (0xFE, Ok(false)),
            (0x00, Err(FrameError::BadLateStatus(0))),
            (0x0F, Err(FrameError::BadLateStatus(0x0F))),
        ] {
            let e = Epilogue {
                late_status: s,
                crcs: [1, 2, 3],
            };
            let d = Epilogue::decode(&e.encode()).unwrap();
            assert_eq!(d, e);
            assert_eq!(d.aborted(), r);
        }
    }

    #[test]
    fn header2_round_trip_and_empty_segment_crc() {
        let h = MsgHeader2 {
            seq: 1,
            tid: 2,
            ty: 42,
            priority: 63,
            version: 8,
            data_off: 7,
            ack_seq: 9,
            flags: 3,
            compat_version: 3,
            ..MsgHeader2::default()
        };
        assert_eq!(MsgHeader2::decode(&h.encode()).unwrap(), h);
        assert_eq!(segment_crc(&[]), 0xFFFF_FFFF);
    }

    #[test]
    fn control_frames_carry_payload_crc_only_when_non_empty() {
        assert_eq!(encode_control(Tag::Wait, &[]).len(), 32);
        let f = encode_control(Tag::AuthSignature, &[0u8; 32]);
        assert_eq!(f.len(), 32 + 32 + 4);
        // From a 16.2.15 capture: the all-zero AUTH_SIGNATURE's crc.
        assert_eq!(&f[64..], &[0x55, 0xc9, 0x6e, 0x75]);
    }
}
