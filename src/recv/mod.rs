//! The receive side of an open msgr v1 stream: an incremental parser fed with any split of
//! the incoming bytes (one byte at a time works) that yields whole records.
//!
//! Bytes are buffered until a record is complete; a message's sections are then split off
//! the buffer as [`Bytes`] without copying. A record is never larger than the [`Limits`]:
//! a hostile length is refused as soon as the header arrives, before any memory is
//! reserved for it. A record up to [`Limits::eager_reserve`] (8 MiB by default) gets its
//! size reserved at once; a larger one grows with the bytes that actually arrive — the
//! capacity stays within twice the bytes buffered — so a peer announcing the largest
//! record and trickling it in costs what it sent plus at most `eager_reserve`, not what it
//! announced (`tests/memory_bounds.rs`).
#![forbid(unsafe_code)]

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use crate::wire::{
    ceph_crc32c, header::HEADER_LEN, tag, Control, DecodeError, Footer, FooterKind, MsgHeader,
    FOOTER_NOCRC,
};

/// Largest sections a peer may announce (defaults follow the kernel client:
/// `CEPH_MSG_MAX_FRONT_LEN`/`MIDDLE_LEN` 16 MiB, `CEPH_MSG_MAX_DATA_LEN` 64 MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum front length.
    pub front: u32,
    /// Maximum middle length.
    pub middle: u32,
    /// Maximum data length.
    pub data: u32,
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
            eager_reserve: 8 << 20,
        }
    }
}

impl Limits {
    /// The largest message record (tag, header, sections, footer) these limits allow.
    #[must_use]
    pub fn max_record(&self) -> u64 {
        1 + HEADER_LEN as u64
            + u64::from(self.front)
            + u64::from(self.middle)
            + u64::from(self.data)
            + 21
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

/// The parser. Feed bytes with [`push`](Self::push), take records with
/// [`next_record`](Self::next_record) until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Receiver {
    buf: BytesMut,
    footer: FooterKind,
    limits: Limits,
    /// Check data CRCs (front and middle are always checked).
    verify_data_crc: bool,
    /// The payload CRCs of the message at the front of `buf`, folded in as its bytes
    /// arrive. Invariant: when `Some`, `buf` starts with that message's tag and header
    /// and holds at least its first `done` payload bytes; it is reset whenever the front
    /// record is taken or the buffer is cleared.
    folded: Option<Folded>,
}

/// CRCs of a partly received message, computed over each read's bytes while they are
/// still in cache instead of over the whole (possibly megabytes long, long evicted)
/// payload once the footer arrives. The data CRC is folded even before the footer says
/// whether the sender computed one (`FOOTER_NOCRC`): senders set that flag rarely, and
/// the work is what a checked message costs anyway.
#[derive(Debug, Clone, Copy)]
struct Folded {
    /// Front, middle and data lengths of the message it belongs to (a guard).
    lens: [usize; 3],
    /// Payload bytes (front, then middle, then data) folded so far.
    done: usize,
    /// Running CRCs of front, middle and data (`ceph_crc32c` chains: folding `a` then
    /// `b` gives the CRC of `a ‖ b`).
    crc: [u32; 3],
}

impl Folded {
    /// Folds payload bytes `self.done..upto` (`payload` holds the whole payload from its
    /// start, at least `upto` bytes of it).
    fn fold(&mut self, payload: &[u8], upto: usize, with_data: bool) {
        let mut start = 0;
        for (i, len) in self.lens.into_iter().enumerate() {
            let end = start + len;
            let (from, to) = (self.done.max(start), upto.min(end));
            if from < to && (i < 2 || with_data) {
                self.crc[i] = ceph_crc32c(self.crc[i], &payload[from..to]);
            }
            start = end;
        }
        self.done = self.done.max(upto);
    }
}

impl Receiver {
    /// A receiver for a connection with the given footer layout and limits.
    #[must_use]
    pub fn new(footer: FooterKind, limits: Limits) -> Self {
        Self {
            buf: BytesMut::new(),
            footer,
            limits,
            verify_data_crc: true,
            folded: None,
        }
    }

    /// Sets the footer layout (negotiated per connection).
    pub fn set_footer(&mut self, footer: FooterKind) {
        self.footer = footer;
    }

    /// Appends incoming bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The buffer incoming bytes are appended to, with room reserved for at least `room`
    /// more bytes (a record whose header has arrived already has its whole size reserved,
    /// up to [`Limits::eager_reserve`]). Read from the transport straight into its spare
    /// capacity — tokio's `try_read_buf`, or any [`bytes::BufMut`] writer — and the bytes
    /// are parsed where they landed, never copied. Only append to it: bytes already in it
    /// are unparsed input. `room` is capped at the largest record the limits allow.
    pub fn read_buffer(&mut self, room: usize) -> &mut BytesMut {
        let cap = usize::try_from(self.limits.max_record()).unwrap_or(usize::MAX);
        self.buf.reserve(room.min(cap));
        &mut self.buf
    }

    /// Drops bytes appended after the first `len` (input the connection ignores).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
        if let Some(f) = self.folded {
            if 1 + HEADER_LEN + f.done > len {
                self.folded = None;
            }
        }
    }

    /// Bytes buffered and not yet parsed.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes the buffer has room for (what the receiver holds in memory).
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Releases the buffer's memory if nothing is buffered (for idle connections).
    pub fn shrink_to_fit(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// Drops everything buffered (the transport was reset).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.folded = None;
    }

    /// Takes exactly `n` raw bytes if that many are buffered (handshake records).
    pub fn take(&mut self, n: usize) -> Option<Bytes> {
        self.folded = None;
        (self.buf.len() >= n).then(|| self.buf.split_to(n).freeze())
    }

    /// The buffered bytes, unparsed.
    #[must_use]
    pub fn peek(&self) -> &[u8] {
        &self.buf
    }

    /// Parses the next complete record, `Ok(None)` if more bytes are needed. An error is
    /// final: the stream has lost its framing (or its integrity), and what is buffered is
    /// left as it was; [`clear`](Self::clear) before reusing the receiver on a new
    /// transport.
    pub fn next_record(&mut self) -> Result<Option<Record>, RecvError> {
        let Some(&t) = self.buf.first() else {
            return Ok(None);
        };
        if t != tag::MSG {
            let Some(len) = Control::payload_len(t) else {
                return Err(DecodeError::UnknownTag(t).into());
            };
            if self.buf.len() < 1 + len {
                return Ok(None);
            }
            let c = Control::decode(t, &self.buf[1..=len])?;
            self.buf.advance(1 + len);
            return Ok(Some(Record::Control(c)));
        }
        if self.buf.len() < 1 + HEADER_LEN {
            return Ok(None);
        }
        let h = MsgHeader::decode(&self.buf[1..])?;
        for (section, len, limit) in [
            ("front", h.front_len, self.limits.front),
            ("middle", h.middle_len, self.limits.middle),
            ("data", h.data_len, self.limits.data),
        ] {
            if len > limit {
                return Err(RecvError::TooLong {
                    section,
                    len,
                    limit,
                });
            }
        }
        let footer_len = self.footer.encoded_len();
        // Bounded by the limits: at most ~96 MiB with the defaults.
        let payload_len = h.payload_len() as usize;
        let total = 1 + HEADER_LEN + payload_len + footer_len;
        let body = 1 + HEADER_LEN;
        let lens = [
            h.front_len as usize,
            h.middle_len as usize,
            h.data_len as usize,
        ];
        let mut folded = match self.folded.take() {
            Some(f) if f.lens == lens && self.buf.len() >= body + f.done => f,
            _ => Folded {
                lens,
                done: 0,
                crc: [0; 3],
            },
        };
        let upto = (self.buf.len() - body).min(payload_len);
        folded.fold(&self.buf[body..], upto, self.verify_data_crc);
        if self.buf.len() < total {
            self.folded = Some(folded);
            // A record up to `eager_reserve` gets its whole size reserved now, so it is
            // not copied again and again as the buffer doubles; a larger one grows with
            // what arrives, so a peer that announces a large record and trickles it in
            // costs what it sent (plus at most `eager_reserve`).
            if total <= self.limits.eager_reserve as usize {
                self.buf.reserve(total - self.buf.len());
            }
            return Ok(None);
        }
        // Checked where they lie; only a good record is split off, one refcount per
        // non-empty section and none for the header, the footer or empty sections.
        let [fl, ml, dl] = lens;
        let f = Footer::decode(self.footer, &self.buf[body + payload_len..total])?;
        // COMPLETE first: an aborted message's payload is (partly) zeros and its CRCs
        // are meaningless.
        if !f.is_complete() {
            self.buf.advance(total);
            return Ok(Some(Record::Aborted(h)));
        }
        let check_data = self.verify_data_crc && f.flags & FOOTER_NOCRC == 0;
        for (section, computed, carried, check) in [
            ("front", folded.crc[0], f.front_crc, true),
            ("middle", folded.crc[1], f.middle_crc, true),
            ("data", folded.crc[2], f.data_crc, check_data),
        ] {
            if check && computed != carried {
                return Err(RecvError::BadCrc {
                    section,
                    carried,
                    computed,
                });
            }
        }
        self.buf.advance(body);
        let front = split_section(&mut self.buf, fl);
        let middle = split_section(&mut self.buf, ml);
        let data = split_section(&mut self.buf, dl);
        self.buf.advance(footer_len);
        Ok(Some(Record::Message(Received {
            header: h,
            front,
            middle,
            data,
        })))
    }
}

/// The next `len` bytes of `buf` as their own `Bytes` (no copy; nothing for an empty
/// section).
fn split_section(buf: &mut BytesMut, len: usize) -> Bytes {
    if len == 0 {
        Bytes::new()
    } else {
        buf.split_to(len).freeze()
    }
}
