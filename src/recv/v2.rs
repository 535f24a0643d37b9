//! The msgr2.1 deframer (crc mode): whole frames off the front of a [`RecvBuffer`].
//!
//! It starts at a frame boundary: the caller has already taken the 26-byte banner off the
//! buffer ([`RecvBuffer::take`]). Each frame is
//!
//! ```text
//!  0      1      2                                   28   32
//! +------+------+-----------------------------------+----+------------+------+--------- - -+------------+
//! | tag  | nseg | 4 × (le32 len, le16 align), 2 rsv | crc| segment 0  | crc0 | segments    | epilogue   |
//! +------+------+-----------------------------------+----+------------+------+ 1 .. nseg-1 + (13 bytes) +
//!  preamble (32): crc = crc32c(0, bytes 0..28)        only if seg0 ≠ ∅     raw   only if nseg > 1
//!
//!  epilogue: | late_status (u8) | le32 crc seg1 | le32 crc seg2 | le32 crc seg3 |
//!  segment crcs: crc32c(0xFFFF_FFFF, segment), Ceph's raw convention
//! ```
//!
//! A MESSAGE frame's segments are `ceph_msg_header2` (41 bytes), front, middle, data.
//!
//! Checks, in the order the bytes arrive (so any split of the stream into reads gives the
//! same frames and the same error as one read, `tests/deframe_v2.rs`):
//!
//! 1. the preamble, when its 32 bytes are there: its CRC, `nseg` in 1..=4, the last
//!    announced segment non-empty and unused slots zero ([`Preamble::decode`]), a known
//!    tag, a MESSAGE's segment 0 exactly 41 bytes, each segment and their sum within the
//!    [`Limits`] — before any memory is reserved for the frame;
//! 2. segment 0's CRC, as soon as it and its CRC are there;
//! 3. when the whole frame is there: the epilogue's CRCs of segments 1 .. nseg-1, in
//!    order, then its `late_status` (low nibble 0xE complete, 0x1 aborted, anything else an
//!    error). A frame with good CRCs that the sender aborted is dropped and reported as
//!    [`Deframed::Aborted`], not as an error (what Ceph's `ProtocolV2` does).
//!
//! Segment CRCs are folded as the bytes land (see [`RecvBuffer`]), and a good frame's
//! segments are split off the buffer as [`Bytes`] without copying (no refcount for an
//! empty segment, nor for a MESSAGE's header2, which is decoded in place).
//!
//! A MESSAGE the caller no longer wants can be dropped while it arrives
//! ([`Deframer::skip_message`]): what is buffered of it is released at once and the rest
//! is discarded as it is read, never buffered whole.
#![forbid(unsafe_code)]

use std::fmt;

use bytes::Bytes;

use crate::v2::frame::{
    segment_crc, Epilogue, FrameError, MsgHeader2, Preamble, Tag, CRC_LEN, EPILOGUE_LEN,
    HEADER2_LEN, MAX_SEGMENTS, MESSAGE_HEAD_LEN, PREAMBLE_LEN, SEGMENT_CRC_SEED,
};

use super::buffer::{RecvBuffer, Span};
use super::Limits;

/// A complete frame other than MESSAGE, its CRCs checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame's tag.
    pub tag: Tag,
    /// Segment count, 1..=4.
    pub nseg: u8,
    /// The segments, slices of the receive buffer; those past `nseg` are empty.
    pub segments: [Bytes; MAX_SEGMENTS],
}

impl Frame {
    /// The `nseg` announced segments.
    #[must_use]
    pub fn segments(&self) -> &[Bytes] {
        &self.segments[..usize::from(self.nseg).min(MAX_SEGMENTS)]
    }

    /// Segment 0: the payload of a control frame (they all have one segment).
    #[must_use]
    pub fn payload(&self) -> &Bytes {
        &self.segments[0]
    }
}

/// A complete MESSAGE frame, its CRCs checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFrame {
    /// Segment 0, decoded.
    pub header: MsgHeader2,
    /// Segment 1 (a slice of the receive buffer).
    pub front: Bytes,
    /// Segment 2 (a slice of the receive buffer).
    pub middle: Bytes,
    /// Segment 3 (a slice of the receive buffer).
    pub data: Bytes,
}

/// A frame the sender aborted (epilogue `late_status` ABORTED, CRCs good): it was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aborted {
    /// The frame's tag.
    pub tag: Tag,
    /// For a MESSAGE frame, its header (segment 0, whose CRC was checked).
    pub header: Option<MsgHeader2>,
}

/// What [`Deframer::next_frame`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deframed {
    /// A frame other than MESSAGE.
    Frame(Frame),
    /// A MESSAGE frame.
    Message(MessageFrame),
    /// A frame the sender aborted, dropped: not a fault; count it and carry on.
    Aborted(Aborted),
}

/// Why the msgr2 stream cannot be deframed further. Every variant is a protocol fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeframeError {
    /// A malformed frame: bad preamble CRC ([`FrameError::PreambleCrc`]), segment count
    /// ([`FrameError::BadSegmentCount`]) or table ([`FrameError::BadSegments`]), unknown
    /// tag ([`FrameError::UnknownTag`]), segment CRC mismatch
    /// ([`FrameError::SegmentCrc`], naming the segment), invalid `late_status`
    /// ([`FrameError::BadLateStatus`]), or the stream ended inside a frame
    /// ([`FrameError::Truncated`], from [`Deframer::finish`]).
    Frame(FrameError),
    /// A segment longer than the limit for it.
    SegmentTooLong {
        /// The frame's tag.
        tag: Tag,
        /// Segment index.
        segment: usize,
        /// Announced length.
        len: u32,
        /// The limit ([`Limits::front`], `middle`, `data` for a MESSAGE's segments 1..3,
        /// [`Limits::control`] for other frames).
        limit: u32,
    },
    /// Segments longer together than the limit ([`Limits::total`] for a MESSAGE's
    /// front, middle and data; [`Limits::control`] for other frames).
    FrameTooLong {
        /// The frame's tag.
        tag: Tag,
        /// Announced length of the segments it counts.
        len: u64,
        /// The limit.
        limit: u32,
    },
    /// A MESSAGE frame whose segment 0 is not a 41-byte `ceph_msg_header2`.
    MessageHeaderLen(u32),
}

impl fmt::Display for DeframeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Frame(e) => write!(f, "{e}"),
            Self::SegmentTooLong {
                tag,
                segment,
                len,
                limit,
            } => write!(
                f,
                "{} frame segment {segment} of {len} bytes exceeds the limit of {limit}",
                tag.name()
            ),
            Self::FrameTooLong { tag, len, limit } => write!(
                f,
                "{} frame segments of {len} bytes exceed the limit of {limit}",
                tag.name()
            ),
            Self::MessageHeaderLen(n) => write!(
                f,
                "MESSAGE frame segment 0 of {n} bytes, expected {HEADER2_LEN} (ceph_msg_header2)"
            ),
        }
    }
}

impl std::error::Error for DeframeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Frame(e) => Some(e),
            _ => None,
        }
    }
}

impl From<FrameError> for DeframeError {
    fn from(e: FrameError) -> Self {
        Self::Frame(e)
    }
}

/// Where the pieces of the frame at the front of the buffer lie (offsets from its start).
#[derive(Debug, Clone, Copy)]
struct Layout {
    tag: Tag,
    nseg: usize,
    /// Segment lengths (0 past `nseg`).
    lens: [usize; MAX_SEGMENTS],
    /// Segment offsets.
    starts: [usize; MAX_SEGMENTS],
    /// Offset of the epilogue (the frame's end when there is none).
    epilogue: usize,
    /// Length of the whole frame.
    total: usize,
}

impl Layout {
    /// Offset of segment 0's inline CRC, if it has one.
    fn crc0(&self) -> Option<usize> {
        (self.lens[0] > 0).then_some(PREAMBLE_LEN + self.lens[0])
    }

    fn spans(&self) -> [Span; MAX_SEGMENTS] {
        std::array::from_fn(|i| Span {
            start: self.starts[i],
            len: self.lens[i],
            seed: SEGMENT_CRC_SEED,
        })
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Deframes msgr2.1 crc-mode frames off a [`RecvBuffer`]. It keeps no parse state of its
/// own (the CRC folding progress lives in the buffer), so the buffer may also be read raw
/// between frames. Feed the buffer, call [`next_frame`](Self::next_frame) until it returns
/// `Ok(None)`; at the end of the stream, [`finish`](Self::finish).
#[derive(Debug, Clone)]
pub struct Deframer {
    limits: Limits,
}

impl Deframer {
    /// A deframer enforcing `limits`. Pair it with a buffer from [`Limits::buffer`].
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }

    /// The limits it enforces.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes and judges a preamble (32 bytes).
    fn layout(&self, preamble: &[u8]) -> Result<Layout, DeframeError> {
        let p = Preamble::decode(preamble)?;
        let tag = Tag::from_u8(p.tag).ok_or(FrameError::UnknownTag(p.tag))?;
        let lens = p.segments.map(|s| s.0);
        let l = &self.limits;
        let (limits, total_limit, counted) = if tag == Tag::Message {
            if lens[0] as usize != HEADER2_LEN {
                return Err(DeframeError::MessageHeaderLen(lens[0]));
            }
            ([u32::MAX, l.front, l.middle, l.data], l.total, 1)
        } else {
            ([l.control; MAX_SEGMENTS], l.control, 0)
        };
        for (segment, (&len, &limit)) in lens.iter().zip(&limits).enumerate() {
            if len > limit {
                return Err(DeframeError::SegmentTooLong {
                    tag,
                    segment,
                    len,
                    limit,
                });
            }
        }
        let sum: u64 = lens[counted..].iter().map(|&n| u64::from(n)).sum();
        if sum > u64::from(total_limit) {
            return Err(DeframeError::FrameTooLong {
                tag,
                len: sum,
                limit: total_limit,
            });
        }
        let too_long = || DeframeError::FrameTooLong {
            tag,
            len: sum,
            limit: total_limit,
        };
        let total = PREAMBLE_LEN as u64 + p.body_len();
        // Within the limits, so it fits in memory; on a 32-bit target with huge limits it
        // may not fit a usize, which is then refused like an over-long frame.
        usize::try_from(total).map_err(|_| too_long())?;
        let nseg = p.nseg();
        let mut lens_us = [0usize; MAX_SEGMENTS];
        let mut starts = [0usize; MAX_SEGMENTS];
        let mut at = PREAMBLE_LEN;
        for i in 0..MAX_SEGMENTS {
            lens_us[i] = lens[i] as usize;
            starts[i] = at;
            at += lens_us[i];
            if i == 0 && lens_us[0] > 0 {
                at += CRC_LEN;
            }
        }
        let epilogue = at;
        if nseg > 1 {
            at += EPILOGUE_LEN;
        }
        Ok(Layout {
            tag,
            nseg,
            lens: lens_us,
            starts,
            epilogue,
            total: at,
        })
    }

    /// Deframes the next complete frame at the front of `buf`, `Ok(None)` if more bytes
    /// are needed. An error is final: the stream has lost its framing (or its integrity),
    /// and what is buffered is left as it was; [`RecvBuffer::clear`] before reusing the
    /// buffer on a new transport.
    pub fn next_frame(&mut self, buf: &mut RecvBuffer) -> Result<Option<Deframed>, DeframeError> {
        buf.settle();
        if buf.bytes().len() < PREAMBLE_LEN {
            return Ok(None);
        }
        let lay = self.layout(&buf.bytes()[..PREAMBLE_LEN])?;
        let crcs = buf.fold(&lay.spans()[..lay.nseg]);
        let b = buf.bytes();
        if let Some(at) = lay.crc0() {
            if b.len() >= at + CRC_LEN {
                let got = le32(&b[at..]);
                if got != crcs[0] {
                    return Err(FrameError::SegmentCrc {
                        segment: 0,
                        got,
                        want: crcs[0],
                    }
                    .into());
                }
            }
        }
        if b.len() < lay.total {
            buf.reserve_record(lay.total, self.limits.eager_reserve as usize);
            return Ok(None);
        }
        let mut aborted = false;
        if lay.nseg > 1 {
            let e = Epilogue::decode(&b[lay.epilogue..lay.total])?;
            for segment in 1..lay.nseg {
                let (got, want) = (e.crcs[segment - 1], crcs[segment]);
                if got != want {
                    return Err(FrameError::SegmentCrc { segment, got, want }.into());
                }
            }
            aborted = e.aborted()?;
        }
        let header = if lay.tag == Tag::Message {
            Some(MsgHeader2::decode(&b[PREAMBLE_LEN..])?)
        } else {
            None
        };
        if aborted {
            buf.advance(lay.total);
            return Ok(Some(Deframed::Aborted(Aborted {
                tag: lay.tag,
                header,
            })));
        }
        // Split off in order; the CRCs and the epilogue are only skipped.
        buf.advance(PREAMBLE_LEN);
        let mut segments: [Bytes; MAX_SEGMENTS] = Default::default();
        for (i, seg) in segments.iter_mut().enumerate().take(lay.nseg) {
            if i == 0 && header.is_some() {
                buf.advance(lay.lens[0]);
            } else {
                *seg = buf.split(lay.lens[i]);
            }
            if i == 0 && lay.lens[0] > 0 {
                buf.advance(CRC_LEN);
            }
        }
        buf.advance(lay.total - lay.epilogue);
        Ok(Some(match header {
            Some(header) => {
                let [_, front, middle, data] = segments;
                Deframed::Message(MessageFrame {
                    header,
                    front,
                    middle,
                    data,
                })
            }
            None => Deframed::Frame(Frame {
                tag: lay.tag,
                nseg: lay.nseg as u8,
                segments,
            }),
        }))
    }

    /// The header of the MESSAGE frame being received, once its preamble and segment 0
    /// (with a good CRC) are at the front of the buffer (the frame not taken yet); `None`
    /// otherwise (a malformed frame is reported by [`next_frame`](Self::next_frame)).
    #[must_use]
    pub fn pending_message(&self, buf: &RecvBuffer) -> Option<MsgHeader2> {
        self.message_head(buf.peek()).map(|(h, _)| h)
    }

    fn message_head(&self, b: &[u8]) -> Option<(MsgHeader2, usize)> {
        if b.len() < MESSAGE_HEAD_LEN {
            return None;
        }
        let lay = self.layout(&b[..PREAMBLE_LEN]).ok()?;
        if lay.tag != Tag::Message {
            return None;
        }
        let seg0 = &b[PREAMBLE_LEN..PREAMBLE_LEN + HEADER2_LEN];
        if le32(&b[PREAMBLE_LEN + HEADER2_LEN..]) != segment_crc(seg0) {
            return None;
        }
        Some((MsgHeader2::decode(seg0).ok()?, lay.total))
    }

    /// Drops the MESSAGE frame being received (the caller has no use for it): what is
    /// buffered of it goes at once, the rest is discarded as it arrives
    /// ([`RecvBuffer::discard`]) without being buffered whole, and its remaining CRCs and
    /// epilogue are not checked. Returns its header, or `None` (and does nothing) if no
    /// MESSAGE head is at the front of the buffer ([`pending_message`](Self::pending_message)).
    pub fn skip_message(&mut self, buf: &mut RecvBuffer) -> Option<MsgHeader2> {
        buf.settle();
        let (header, total) = self.message_head(buf.peek())?;
        buf.discard(total as u64);
        Some(header)
    }

    /// The stream ended: an error if it ended inside a frame (including one being
    /// skipped). Call it once [`next_frame`](Self::next_frame) has returned `Ok(None)`.
    pub fn finish(&self, buf: &RecvBuffer) -> Result<(), DeframeError> {
        let skipping = buf.discarding();
        if skipping > 0 {
            return Err(FrameError::Truncated {
                what: "skipped frame",
                need: usize::try_from(skipping).unwrap_or(usize::MAX),
                have: 0,
            }
            .into());
        }
        let b = buf.peek();
        if b.is_empty() {
            return Ok(());
        }
        if b.len() < PREAMBLE_LEN {
            return Err(FrameError::Truncated {
                what: "preamble",
                need: PREAMBLE_LEN,
                have: b.len(),
            }
            .into());
        }
        let lay = self.layout(&b[..PREAMBLE_LEN])?;
        Err(FrameError::Truncated {
            what: "frame",
            need: lay.total,
            have: b.len(),
        }
        .into())
    }
}
