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
            let carried = e.crcs.iter().zip(&crcs[1..lay.nseg]);
            for (segment, (&got, &want)) in (1..).zip(carried) {
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
    /// epilogue are not checked. The room reserved for it is released. Returns its header, or `None` (and does nothing) if no
    /// MESSAGE head is at the front of the buffer ([`pending_message`](Self::pending_message)).
    pub fn skip_message(&mut self, buf: &mut RecvBuffer) -> Option<MsgHeader2> {
        buf.settle();
        let (header, total) = self.message_head(buf.peek())?;
        buf.discard(total as u64);
        // Whatever was reserved for the frame when its preamble arrived goes too.
        buf.shrink_to_fit();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v2::frame::{
        encode_control, DEFAULT_ALIGNMENT, LATE_STATUS_ABORTED, LATE_STATUS_COMPLETE,
        MESSAGE_ALIGNMENTS,
    };
    use crate::wire::ceph_crc32c;

    /// A crc-mode frame built from the `frame.rs` pieces.
    fn frame(tag: Tag, segs: &[&[u8]], late_status: u8) -> Vec<u8> {
        let mut lens = [0u32; MAX_SEGMENTS];
        for (l, s) in lens.iter_mut().zip(segs) {
            *l = s.len() as u32;
        }
        let aligns = if tag == Tag::Message {
            MESSAGE_ALIGNMENTS
        } else {
            [DEFAULT_ALIGNMENT; 4]
        };
        let p = Preamble::for_segments(tag, lens, aligns);
        let mut out = p.encode().to_vec();
        out.extend_from_slice(segs[0]);
        if !segs[0].is_empty() {
            out.extend_from_slice(&segment_crc(segs[0]).to_le_bytes());
        }
        for s in &segs[1..p.nseg()] {
            out.extend_from_slice(s);
        }
        if p.has_epilogue() {
            let mut crcs = [0u32; 3];
            for i in 1..p.nseg() {
                crcs[i - 1] = segment_crc(segs[i]);
            }
            out.extend_from_slice(&Epilogue { late_status, crcs }.encode());
        }
        out
    }

    fn header(seq: u64) -> MsgHeader2 {
        MsgHeader2 {
            seq,
            tid: seq + 100,
            ty: 42,
            priority: 63,
            version: 8,
            compat_version: 3,
            flags: 3,
            ..MsgHeader2::default()
        }
    }

    fn message(seq: u64, front: &[u8], middle: &[u8], data: &[u8], late: u8) -> Vec<u8> {
        frame(
            Tag::Message,
            &[&header(seq).encode(), front, middle, data],
            late,
        )
    }

    /// A preamble with any fields, its CRC right.
    fn raw_preamble(tag: u8, nseg: u8, lens: [u32; 4]) -> Vec<u8> {
        let mut b = [0u8; PREAMBLE_LEN];
        b[0] = tag;
        b[1] = nseg;
        for (i, l) in lens.iter().enumerate() {
            b[2 + i * 6..6 + i * 6].copy_from_slice(&l.to_le_bytes());
            b[6 + i * 6..8 + i * 6].copy_from_slice(&8u16.to_le_bytes());
        }
        let crc = ceph_crc32c(0, &b[..28]);
        b[28..].copy_from_slice(&crc.to_le_bytes());
        b.to_vec()
    }

    /// Everything `stream` deframes to, fed in `step`-byte reads, then `finish`.
    fn deframe(
        stream: &[u8],
        step: usize,
        limits: Limits,
    ) -> (Vec<Deframed>, Option<DeframeError>) {
        let mut buf = limits.buffer();
        let mut d = Deframer::new(limits);
        let mut out = Vec::new();
        for chunk in stream.chunks(step.max(1)) {
            buf.push(chunk);
            loop {
                match d.next_frame(&mut buf) {
                    Ok(Some(f)) => out.push(f),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, d.finish(&buf).err())
    }

    fn one(stream: &[u8]) -> Result<Deframed, DeframeError> {
        let (mut frames, err) = deframe(stream, stream.len(), Limits::default());
        match err {
            Some(e) => Err(e),
            None => {
                assert_eq!(frames.len(), 1, "{frames:?}");
                Ok(frames.remove(0))
            }
        }
    }

    #[test]
    fn control_frames_and_messages_come_out_whole_and_zero_copy() {
        let mut s = encode_control(Tag::Hello, b"hello payload");
        s.extend(encode_control(Tag::Wait, &[]));
        s.extend(message(1, b"front", b"", b"data!", LATE_STATUS_COMPLETE));
        s.extend(message(2, b"", b"", b"", LATE_STATUS_COMPLETE));
        s.extend(frame(Tag::Keepalive2, &[b"", b"x"], LATE_STATUS_COMPLETE));
        let limits = Limits::default();
        let mut buf = limits.buffer();
        buf.read_buffer(s.len()).extend_from_slice(&s);
        let range = buf.peek().as_ptr_range();
        let mut d = Deframer::new(limits);
        let mut got = Vec::new();
        while let Some(f) = d.next_frame(&mut buf).unwrap() {
            got.push(f);
        }
        d.finish(&buf).unwrap();
        assert_eq!(got.len(), 5);
        let Deframed::Frame(hello) = &got[0] else {
            panic!("{:?}", got[0])
        };
        assert_eq!((hello.tag, hello.nseg), (Tag::Hello, 1));
        assert_eq!(&hello.payload()[..], b"hello payload");
        assert!(
            range.contains(&hello.payload().as_ptr()),
            "a slice, not a copy"
        );
        let Deframed::Frame(wait) = &got[1] else {
            panic!()
        };
        assert_eq!(wait.tag, Tag::Wait);
        assert_eq!(wait.segments(), &[Bytes::new()]);
        let Deframed::Message(m) = &got[2] else {
            panic!()
        };
        assert_eq!(m.header, header(1));
        assert_eq!(
            (&m.front[..], &m.middle[..], &m.data[..]),
            (&b"front"[..], &b""[..], &b"data!"[..])
        );
        assert!(range.contains(&m.front.as_ptr()) && range.contains(&m.data.as_ptr()));
        let Deframed::Message(m) = &got[3] else {
            panic!()
        };
        assert_eq!(m.header.seq, 2);
        assert!(m.front.is_empty() && m.data.is_empty());
        let Deframed::Frame(k) = &got[4] else {
            panic!()
        };
        assert_eq!(k.nseg, 2);
        assert_eq!(k.segments(), &[Bytes::new(), Bytes::from_static(b"x")]);
        assert_eq!(buf.buffered(), 0);
    }

    /// The client and server halves of a real 16.2.15 session (`rados put` to an OSD),
    /// after the banner: HELLO, AUTH_*, IDENT, then one MOSDOp (4 segments, empty
    /// middle) and its MOSDOpReply (2 segments). Byte at a time gives the same.
    #[test]
    fn a_captured_session_deframes() {
        let client = include_bytes!("../../tests/data/rados-v2-osd.client.bin");
        let server = include_bytes!("../../tests/data/rados-v2-osd.server.bin");
        for (stream, tags, msg) in [
            (
                &client[..],
                &[
                    Tag::Hello,
                    Tag::AuthRequest,
                    Tag::AuthSignature,
                    Tag::ClientIdent,
                ][..],
                (42u16, 213usize, 0usize, 12usize),
            ),
            (
                &server[..],
                &[
                    Tag::Hello,
                    Tag::AuthDone,
                    Tag::AuthSignature,
                    Tag::ServerIdent,
                ][..],
                (43, 148, 0, 0),
            ),
        ] {
            assert_eq!(&stream[..8], b"ceph v2\n");
            let body = &stream[26..];
            let whole = deframe(body, body.len(), Limits::default());
            assert_eq!(whole.1, None);
            assert_eq!(deframe(body, 1, Limits::default()), whole);
            let frames = whole.0;
            assert_eq!(frames.len(), tags.len() + 1);
            for (f, &t) in frames.iter().zip(tags) {
                match f {
                    Deframed::Frame(f) => assert_eq!((f.tag, f.nseg), (t, 1)),
                    other => panic!("{other:?}"),
                }
            }
            let Some(Deframed::Message(m)) = frames.last() else {
                panic!("{:?}", frames.last())
            };
            assert_eq!(
                (m.header.ty, m.front.len(), m.middle.len(), m.data.len()),
                msg
            );
            assert_eq!(m.header.flags, 3);
        }
    }

    #[test]
    fn an_aborted_frame_is_dropped_after_its_crcs_check() {
        let mut s = message(1, b"front", b"mid", b"data", LATE_STATUS_ABORTED);
        s.extend(message(2, b"f", b"", b"", LATE_STATUS_COMPLETE));
        let (frames, err) = deframe(&s, 7, Limits::default());
        assert_eq!(err, None);
        assert_eq!(
            frames[0],
            Deframed::Aborted(Aborted {
                tag: Tag::Message,
                header: Some(header(1)),
            })
        );
        assert!(matches!(&frames[1], Deframed::Message(m) if m.header.seq == 2));
        // High bits of late_status are not judged.
        let f = frame(Tag::AuthRequest, &[b"a", b"b"], 0xF1);
        assert_eq!(
            one(&f),
            Ok(Deframed::Aborted(Aborted {
                tag: Tag::AuthRequest,
                header: None
            }))
        );
        // CRCs are checked first: a bad one is an error even when aborted.
        let mut bad = message(1, b"front", b"mid", b"data", LATE_STATUS_ABORTED);
        let at = bad.len() - 13 - 2;
        bad[at] ^= 1;
        assert!(matches!(
            one(&bad),
            Err(DeframeError::Frame(FrameError::SegmentCrc {
                segment: 3,
                ..
            }))
        ));
    }

    #[test]
    fn every_flipped_byte_is_caught_and_names_its_piece() {
        let s = message(9, b"front", b"", b"some data", LATE_STATUS_COMPLETE);
        // preamble 0..32, header2 32..73, crc0 73..77, front 77..82, data 82..91,
        // epilogue 91..104 (status, crc1, crc2, crc3).
        assert_eq!(s.len(), 104);
        for i in 0..s.len() {
            let mut bad = s.clone();
            bad[i] ^= 0x5a;
            let err = one(&bad).unwrap_err();
            let ok = match i {
                0..=31 => matches!(err, DeframeError::Frame(FrameError::PreambleCrc { .. })),
                32..=76 => matches!(
                    err,
                    DeframeError::Frame(FrameError::SegmentCrc { segment: 0, .. })
                ),
                77..=81 | 92..=95 => matches!(
                    err,
                    DeframeError::Frame(FrameError::SegmentCrc { segment: 1, .. })
                ),
                96..=99 => matches!(
                    err,
                    DeframeError::Frame(FrameError::SegmentCrc { segment: 2, .. })
                ),
                82..=90 | 100..=103 => matches!(
                    err,
                    DeframeError::Frame(FrameError::SegmentCrc { segment: 3, .. })
                ),
                91 => err == DeframeError::Frame(FrameError::BadLateStatus(0x54)),
                _ => unreachable!(),
            };
            assert!(ok, "byte {i}: {err}");
        }
        // An unused epilogue slot is not checked (nseg 2: slots 2 and 3 unused).
        let mut s = message(9, b"front", b"", b"", LATE_STATUS_COMPLETE);
        let n = s.len();
        s[n - 1] ^= 0xFF;
        s[n - 5] ^= 0xFF;
        assert!(matches!(one(&s), Ok(Deframed::Message(_))));
    }

    #[test]
    fn malformed_preambles_are_refused_before_anything_is_reserved() {
        let limits = Limits {
            front: 100,
            middle: 10,
            data: 1000,
            total: 1050,
            control: 64,
            ..Limits::default()
        };
        let cases: Vec<(Vec<u8>, DeframeError)> = vec![
            (
                raw_preamble(17, 0, [0; 4]),
                FrameError::BadSegmentCount(0).into(),
            ),
            (
                raw_preamble(17, 5, [41, 1, 1, 1]),
                FrameError::BadSegmentCount(5).into(),
            ),
            (
                raw_preamble(17, 2, [41, 0, 0, 0]),
                FrameError::BadSegments.into(),
            ),
            (
                raw_preamble(99, 1, [4, 0, 0, 0]),
                FrameError::UnknownTag(99).into(),
            ),
            (
                raw_preamble(0, 1, [4, 0, 0, 0]),
                FrameError::UnknownTag(0).into(),
            ),
            (
                raw_preamble(17, 1, [40, 0, 0, 0]),
                DeframeError::MessageHeaderLen(40),
            ),
            (
                raw_preamble(17, 2, [41, 101, 0, 0]),
                DeframeError::SegmentTooLong {
                    tag: Tag::Message,
                    segment: 1,
                    len: 101,
                    limit: 100,
                },
            ),
            (
                raw_preamble(17, 3, [41, 0, 11, 0]),
                DeframeError::SegmentTooLong {
                    tag: Tag::Message,
                    segment: 2,
                    len: 11,
                    limit: 10,
                },
            ),
            (
                raw_preamble(17, 4, [41, 0, 0, u32::MAX]),
                DeframeError::SegmentTooLong {
                    tag: Tag::Message,
                    segment: 3,
                    len: u32::MAX,
                    limit: 1000,
                },
            ),
            (
                raw_preamble(17, 4, [41, 100, 0, 1000]),
                DeframeError::FrameTooLong {
                    tag: Tag::Message,
                    len: 1100,
                    limit: 1050,
                },
            ),
            (
                raw_preamble(2, 1, [65, 0, 0, 0]),
                DeframeError::SegmentTooLong {
                    tag: Tag::AuthRequest,
                    segment: 0,
                    len: 65,
                    limit: 64,
                },
            ),
            (
                raw_preamble(2, 2, [40, 40, 0, 0]),
                DeframeError::FrameTooLong {
                    tag: Tag::AuthRequest,
                    len: 80,
                    limit: 64,
                },
            ),
        ];
        for (pre, want) in cases {
            let mut buf = limits.buffer();
            buf.push(&pre);
            let got = Deframer::new(limits).next_frame(&mut buf);
            assert_eq!(got, Err(want.clone()), "{want}");
            assert!(buf.capacity() < 4096, "nothing reserved for {want}");
            assert_eq!(buf.buffered(), 32, "left as it was");
        }
        let mut bad = encode_control(Tag::Hello, b"x");
        bad[2] ^= 1;
        assert!(matches!(
            one(&bad),
            Err(DeframeError::Frame(FrameError::PreambleCrc { .. }))
        ));
    }

    #[test]
    fn a_stream_ending_inside_a_frame_is_truncated() {
        let f = message(1, b"front", b"", b"data", LATE_STATUS_COMPLETE);
        for cut in 1..f.len() {
            let (frames, err) = deframe(&f[..cut], 3, Limits::default());
            assert!(frames.is_empty());
            let (what, need) = if cut < 32 {
                ("preamble", 32)
            } else {
                ("frame", f.len())
            };
            assert_eq!(
                err,
                Some(DeframeError::Frame(FrameError::Truncated {
                    what,
                    need,
                    have: cut
                })),
                "cut at {cut}"
            );
        }
        assert_eq!(deframe(&f, 3, Limits::default()).1, None);
    }

    #[test]
    fn a_skipped_message_is_never_buffered_whole() {
        let big = vec![0xA5u8; 1 << 20];
        let mut s = message(1, b"front", b"", &big, LATE_STATUS_COMPLETE);
        let after = encode_control(Tag::Keepalive2, &[7u8; 12]);
        s.extend_from_slice(&after);
        let limits = Limits::default();
        let mut buf = limits.buffer();
        let mut d = Deframer::new(limits);
        let mut skipped = None;
        let mut got = Vec::new();
        for chunk in s.chunks(16 * 1024) {
            buf.read_buffer(chunk.len()).extend_from_slice(chunk);
            while let Some(f) = d.next_frame(&mut buf).unwrap() {
                got.push(f);
            }
            if skipped.is_none() {
                assert_eq!(d.pending_message(&buf), Some(header(1)));
                skipped = d.skip_message(&mut buf);
                assert_eq!(d.skip_message(&mut buf), None, "nothing left to skip");
            }
            assert!(buf.capacity() <= 64 * 1024, "capacity {}", buf.capacity());
        }
        assert_eq!(skipped, Some(header(1)));
        d.finish(&buf).unwrap();
        assert_eq!(got.len(), 1);
        assert!(matches!(&got[0], Deframed::Frame(f) if f.tag == Tag::Keepalive2));

        // Ending the stream inside the skipped frame is still a truncation.
        let mut buf = limits.buffer();
        buf.push(&s[..1000]);
        assert!(d.next_frame(&mut buf).unwrap().is_none());
        assert!(d.skip_message(&mut buf).is_some());
        assert!(matches!(
            d.finish(&buf),
            Err(DeframeError::Frame(FrameError::Truncated {
                what: "skipped frame",
                ..
            }))
        ));
        // Only a MESSAGE whose head has arrived can be skipped.
        let mut buf = limits.buffer();
        buf.push(&s[..MESSAGE_HEAD_LEN - 1]);
        assert_eq!(d.skip_message(&mut buf), None);
        buf.clear();
        buf.push(&after);
        assert_eq!(d.skip_message(&mut buf), None);
        assert!(d.next_frame(&mut buf).unwrap().is_some());
    }

    #[test]
    fn a_trickled_maximal_frame_grows_with_what_arrived() {
        let limits = Limits::default();
        let mut buf = limits.buffer();
        let mut d = Deframer::new(limits);
        let mut pre = raw_preamble(17, 4, [41, limits.front, limits.middle, limits.data]);
        pre.extend_from_slice(&header(1).encode());
        pre.extend_from_slice(&segment_crc(&header(1).encode()).to_le_bytes());
        buf.push(&pre);
        assert!(d.next_frame(&mut buf).unwrap().is_none());
        let mut fed = pre.len();
        let chunk = vec![0u8; 64 * 1024];
        for _ in 0..64 {
            buf.read_buffer(chunk.len()).extend_from_slice(&chunk);
            fed += chunk.len();
            assert!(d.next_frame(&mut buf).unwrap().is_none());
            assert!(
                buf.capacity() <= 2 * fed + 4096,
                "{} after {fed}",
                buf.capacity()
            );
        }
        // A frame within `eager_reserve` is reserved once, when its preamble arrives.
        let mut buf = limits.buffer();
        let pre = raw_preamble(17, 4, [41, 0, 0, 4 << 20]);
        buf.push(&pre);
        assert!(d.next_frame(&mut buf).unwrap().is_none());
        let cap = buf.capacity();
        assert!(cap >= 32 + 45 + (4 << 20) + 13);
    }
}
