//! The receive side of an open stream: one input buffer ([`RecvBuffer`]) and a deframer
//! per protocol reading records off its front.
//!
//! ```text
//!   transport ──read in place──▶ RecvBuffer ──▶ V1Deframer  (msgr v1 records)
//!                                (BytesMut,   └─▶ v2::Deframer (msgr2.1 crc-mode frames)
//!                                 CRC folding,
//!                                 discard)
//! ```
//!
//! The buffer is fed with any split of the incoming bytes (one byte at a time works);
//! deframers yield whole records. Bytes are buffered until a record is complete; its
//! payload is then split off the buffer as [`Bytes`] without copying. The CRCs a record
//! carries are folded in as its bytes arrive, over any number of spans with any seed
//! (msgr v1: front, middle, data with seed 0; msgr2: up to four segments with seed
//! `0xFFFF_FFFF`), so every byte is CRC'd once, when it lands.
//!
//! A record is never larger than the [`Limits`]: a hostile length is refused as soon as
//! the header (v1) or preamble (v2) arrives, before any memory is reserved for it. A
//! record up to [`Limits::eager_reserve`] (8 MiB by default) gets its size reserved at
//! once; a larger one grows with the bytes that actually arrive — the capacity stays within
//! twice the bytes buffered — so a peer announcing the largest record and trickling it in
//! costs what it sent plus at most `eager_reserve`, not what it announced
//! (`tests/memory_bounds.rs`).
//!
//! [`Receiver`] is the msgr v1 pairing of the two, as the connection uses it.
#![forbid(unsafe_code)]

use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::v2::frame::{CRC_LEN, EPILOGUE_LEN, HEADER2_LEN, PREAMBLE_LEN};
use crate::wire::{header::HEADER_LEN, Control, DecodeError, FooterKind, MsgHeader};

mod buffer;
mod v1;
pub mod v2;

pub use buffer::RecvBuffer;
pub use v1::V1Deframer;

/// Largest sections a peer may announce (defaults follow the kernel client:
/// `CEPH_MSG_MAX_FRONT_LEN`/`MIDDLE_LEN` 16 MiB, `CEPH_MSG_MAX_DATA_LEN` 64 MiB). msgr2
/// MESSAGE frames are held to the same section limits (segments 1, 2, 3), other msgr2
/// frames to [`control`](Self::control).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum front length.
    pub front: u32,
    /// Maximum middle length.
    pub middle: u32,
    /// Maximum data length.
    pub data: u32,
    /// Maximum of front + middle + data of one message (both protocols).
    pub total: u32,
    /// Maximum length of each segment, and of all segments together, of a msgr2 frame
    /// other than MESSAGE (control frames: HELLO, AUTH_*, IDENT, …).
    pub control: u32,
    /// Records up to this size get their whole size reserved when their header arrives
    /// (saves the copies of a buffer that doubles as the record trickles in). This is
    /// the most a peer can make a connection reserve beyond what it actually sent.
    pub eager_reserve: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            front: 16 << 20,
            middle: 16 << 20,
            data: 64 << 20,
            total: 96 << 20,
            control: 1 << 20,
            eager_reserve: 8 << 20,
        }
    }
}

impl Limits {
    /// The largest message record (tag, header, sections, footer) these limits allow.
    #[must_use]
    pub fn max_record(&self) -> u64 {
        1 + HEADER_LEN as u64 + self.max_payload() + 21
    }

    /// The largest msgr2 frame (preamble, segments, their CRCs, epilogue) these limits
    /// allow.
    #[must_use]
    pub fn max_frame(&self) -> u64 {
        let message = (HEADER2_LEN + CRC_LEN) as u64 + self.max_payload();
        let control = u64::from(self.control) + CRC_LEN as u64;
        (PREAMBLE_LEN + EPILOGUE_LEN) as u64 + message.max(control)
    }

    /// A receive buffer whose reads are capped at the largest record or frame allowed.
    #[must_use]
    pub fn buffer(&self) -> RecvBuffer {
        let cap = self.max_record().max(self.max_frame());
        RecvBuffer::new(usize::try_from(cap).unwrap_or(usize::MAX))
    }

    /// Front + middle + data of the largest message.
    fn max_payload(&self) -> u64 {
        let sum = u64::from(self.front) + u64::from(self.middle) + u64::from(self.data);
        sum.min(u64::from(self.total))
    }
}

/// A message as received: header fields and payload sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The decoded header (seq, tid, type, src, …).
    pub header: MsgHeader,
    /// Front section.
    pub front: Bytes,
    /// Middle section.
    pub middle: Bytes,
    /// Data section.
    pub data: Bytes,
}

/// One record of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A complete message whose CRCs matched.
    Message(Received),
    /// A message the sender aborted (footer COMPLETE clear). Its payload CRCs are not
    /// checked; only the header is reported.
    Aborted(MsgHeader),
    /// A control record.
    Control(Control),
}

/// Why the stream cannot be parsed further. Every variant is a protocol fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// A record failed to decode (bad header CRC, unknown tag, …).
    Decode(DecodeError),
    /// A section longer than the configured limit.
    TooLong {
        /// `front`, `middle` or `data`.
        section: &'static str,
        /// Announced length.
        len: u32,
        /// The limit.
        limit: u32,
    },
    /// A payload CRC did not match a message marked complete.
    BadCrc {
        /// `front`, `middle` or `data`.
        section: &'static str,
        /// CRC in the footer.
        carried: u32,
        /// CRC of the bytes received.
        computed: u32,
    },
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "{e}"),
            Self::TooLong {
                section,
                len,
                limit,
            } => write!(f, "{section} of {len} bytes exceeds the limit of {limit}"),
            Self::BadCrc {
                section,
                carried,
                computed,
            } => write!(
                f,
                "{section} crc mismatch: footer says {carried:#010x}, bytes give {computed:#010x}"
            ),
        }
    }
}

impl std::error::Error for RecvError {}

impl From<DecodeError> for RecvError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

/// The msgr v1 receiver: a [`RecvBuffer`] and a [`V1Deframer`]. Feed bytes with
/// [`push`](Self::push) (or read in place into [`read_buffer`](Self::read_buffer)), take
/// records with [`next_record`](Self::next_record) until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Receiver {
    buf: RecvBuffer,
    v1: V1Deframer,
}

impl Receiver {
    /// A receiver for a connection with the given footer layout and limits.
    #[must_use]
    pub fn new(footer: FooterKind, limits: Limits) -> Self {
        Self {
            buf: limits.buffer(),
            v1: V1Deframer::new(footer, limits),
        }
    }

    /// Sets the footer layout (negotiated per connection).
    pub fn set_footer(&mut self, footer: FooterKind) {
        self.v1.set_footer(footer);
    }

    /// Appends incoming bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.push(data);
    }

    /// The buffer incoming bytes are appended to, with room reserved for at least `room`
    /// more bytes (a record whose header has arrived already has its whole size reserved,
    /// up to [`Limits::eager_reserve`]). Read from the transport straight into its spare
    /// capacity — tokio's `try_read_buf`, or any [`bytes::BufMut`] writer — and the bytes
    /// are parsed where they landed, never copied. Only append to it: bytes already in it
    /// are unparsed input. `room` is capped at the largest record the limits allow.
    pub fn read_buffer(&mut self, room: usize) -> &mut BytesMut {
        self.buf.read_buffer(room)
    }

    /// Drops bytes appended after the first `len` (input the connection ignores).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Bytes buffered and not yet parsed.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.buffered()
    }

    /// Bytes the buffer has room for (what the receiver holds in memory).
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Releases the buffer's memory if nothing is buffered (for idle connections).
    pub fn shrink_to_fit(&mut self) {
        self.buf.shrink_to_fit();
    }

    /// Drops everything buffered (the transport was reset).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Takes exactly `n` raw bytes if that many are buffered (handshake records).
    pub fn take(&mut self, n: usize) -> Option<Bytes> {
        self.buf.take(n)
    }

    /// The buffered bytes, unparsed.
    #[must_use]
    pub fn peek(&self) -> &[u8] {
        self.buf.peek()
    }

    /// The shared input buffer (to hand the stream to another deframer, e.g. a
    /// [`v2::Deframer`] after a msgr2 banner).
    #[must_use]
    pub fn buffer_ref(&self) -> &RecvBuffer {
        &self.buf
    }

    /// The shared input buffer, mutably (see [`buffer_ref`](Self::buffer_ref)).
    pub fn buffer_mut(&mut self) -> &mut RecvBuffer {
        &mut self.buf
    }

    /// Parses the next complete record, `Ok(None)` if more bytes are needed. An error is
    /// final: the stream has lost its framing (or its integrity), and what is buffered is
    /// left as it was; [`clear`](Self::clear) before reusing the receiver on a new
    /// transport.
    pub fn next_record(&mut self) -> Result<Option<Record>, RecvError> {
        self.v1.next_record(&mut self.buf)
    }
}
