//! The receive buffer shared by every deframer: one [`BytesMut`] that the transport reads
//! into in place, and that deframers split whole records off without copying.
//!
//! It also keeps the CRC folding progress of the record at its front ([`RecvBuffer::fold`]):
//! a deframer names the spans of that record whose CRCs it needs (any number up to
//! [`MAX_SPANS`], each with its own seed), and every byte of them is folded exactly once,
//! when it lands, while it is still in cache. The progress belongs to the buffer, not to
//! the deframer, because only the buffer knows when its front moves (a record is split
//! off, raw bytes are taken, the buffer is cleared or truncated): every such move forgets
//! it, so it can never be applied to the wrong record.
#![forbid(unsafe_code)]

use bytes::{Buf, Bytes, BytesMut};

use crate::wire::ceph_crc32c;

/// Most spans one record's CRCs may be folded over (msgr2: four segments).
pub(crate) const MAX_SPANS: usize = 4;

/// A run of bytes of the front record whose CRC is wanted: `len` bytes at offset `start`
/// from the front of the buffer, folded into a CRC starting from `seed` (in Ceph's raw
/// convention, [`ceph_crc32c`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    /// Offset of the first byte from the front of the buffer.
    pub start: usize,
    /// Number of bytes.
    pub len: usize,
    /// CRC seed.
    pub seed: u32,
}

/// CRC folding progress over the front record.
#[derive(Debug, Clone, Copy, Default)]
struct Fold {
    /// The spans it was started for (a guard: other spans start afresh).
    spans: [Span; MAX_SPANS],
    /// How many of `spans` are in use; 0 when there is no progress.
    n: usize,
    /// Bytes `0..done` of the buffer are folded into every span they belong to.
    done: usize,
    /// Running CRC of each span (`ceph_crc32c` chains: folding `a` then `b` gives the
    /// CRC of `a ‖ b`).
    crc: [u32; MAX_SPANS],
}

/// The input buffer of a connection. Deframers ([`super::V1Deframer`],
/// [`super::v2::Deframer`]) parse records at its front.
///
/// Memory: a deframer reserves a record's whole size at once when its head arrives only
/// up to `Limits::eager_reserve`; a larger record grows the buffer with the bytes that
/// actually arrive. [`read_buffer`](Self::read_buffer) never reserves more than the
/// largest record the limits allow.
#[derive(Debug)]
pub struct RecvBuffer {
    buf: BytesMut,
    /// Most room [`read_buffer`](Self::read_buffer) reserves.
    max_room: usize,
    /// Input still to be dropped as it arrives (see [`discard`](Self::discard)).
    discard: u64,
    fold: Fold,
}

impl RecvBuffer {
    /// An empty buffer; [`read_buffer`](Self::read_buffer) reserves at most `max_room`
    /// bytes at a time (the largest record the connection accepts).
    #[must_use]
    pub fn new(max_room: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max_room,
            discard: 0,
            fold: Fold::default(),
        }
    }

    /// Appends incoming bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        self.settle();
    }

    /// The buffer incoming bytes are appended to, with room reserved for at least `room`
    /// more bytes (capped at the largest record the limits allow). Read from the transport
    /// straight into its spare capacity — tokio's `try_read_buf`, or any
    /// [`bytes::BufMut`] writer — and the bytes are parsed where they landed, never
    /// copied. Only append to it: bytes already in it are unparsed input.
    pub fn read_buffer(&mut self, room: usize) -> &mut BytesMut {
        self.settle();
        self.buf.reserve(room.min(self.max_room));
        &mut self.buf
    }

    /// Bytes buffered and not yet parsed (input being [discarded](Self::discard) is not
    /// counted).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pending_discard()
    }

    /// Bytes the buffer has room for (what it holds in memory).
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Releases the buffer's memory if nothing is buffered (for idle connections).
    pub fn shrink_to_fit(&mut self) {
        self.settle();
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// Drops everything buffered and any pending [`discard`](Self::discard) (the
    /// transport was reset).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.discard = 0;
        self.forget_fold();
    }

    /// Takes exactly `n` raw bytes if that many are buffered (handshake records).
    pub fn take(&mut self, n: usize) -> Option<Bytes> {
        self.settle();
        (self.buf.len() >= n).then(|| self.split(n))
    }

    /// The buffered bytes, unparsed.
    #[must_use]
    pub fn peek(&self) -> &[u8] {
        &self.buf[self.pending_discard()..]
    }

    /// Drops the next `n` bytes of input: what is buffered now at once, the rest as it
    /// arrives (on the next [`push`](Self::push), [`read_buffer`](Self::read_buffer) or
    /// deframer call), so a skipped record is never held in memory beyond one read.
    /// Adds to a discard already pending.
    pub fn discard(&mut self, n: u64) {
        self.discard = self.discard.saturating_add(n);
        self.settle();
    }

    /// Input still to be dropped as it arrives.
    #[must_use]
    pub fn discarding(&self) -> u64 {
        self.discard - self.pending_discard() as u64
    }

    /// Drops bytes appended after the first `len` (input the connection ignores).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.settle();
        self.buf.truncate(len);
        if self.fold.done > len {
            self.forget_fold();
        }
    }

    /// Buffered bytes that a pending discard will drop.
    fn pending_discard(&self) -> usize {
        usize::try_from(self.discard).map_or(self.buf.len(), |d| d.min(self.buf.len()))
    }

    /// Applies a pending discard to what is buffered. Deframers call it first.
    pub(crate) fn settle(&mut self) {
        let k = self.pending_discard();
        if k > 0 {
            self.advance(k);
            self.discard -= k as u64;
        }
    }

    /// The buffered bytes (after [`settle`](Self::settle)).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Drops `n` bytes from the front (`n` ≤ buffered).
    pub(crate) fn advance(&mut self, n: usize) {
        self.buf.advance(n);
        self.forget_fold();
    }

    /// Splits the first `n` bytes off as their own [`Bytes`]: no copy, and no refcount
    /// for an empty run.
    pub(crate) fn split(&mut self, n: usize) -> Bytes {
        self.forget_fold();
        if n == 0 {
            Bytes::new()
        } else {
            self.buf.split_to(n).freeze()
        }
    }

    /// The front record is `total` bytes long and not complete: reserve the rest at once
    /// if the record is at most `eager` bytes (saves the copies of a buffer that doubles
    /// as the record trickles in); a larger one grows with what arrives, so a peer that
    /// announces a large record and trickles it in costs what it sent (plus at most
    /// `eager`).
    pub(crate) fn reserve_record(&mut self, total: usize, eager: usize) {
        if total <= eager && total > self.buf.len() {
            self.buf.reserve(total - self.buf.len());
        }
    }

    /// Folds every buffered byte of `spans` not folded yet and returns the running CRC of
    /// each (a span wholly buffered has its final CRC; an unbuffered one its seed). The
    /// progress is kept while the same spans are asked for and the front of the buffer
    /// stays where it is. At most [`MAX_SPANS`] spans are used.
    pub(crate) fn fold(&mut self, spans: &[Span]) -> [u32; MAX_SPANS] {
        let n = spans.len().min(MAX_SPANS);
        let f = &mut self.fold;
        if f.n != n || f.spans[..n] != spans[..n] || f.done > self.buf.len() {
            *f = Fold {
                n,
                ..Fold::default()
            };
            f.spans[..n].copy_from_slice(&spans[..n]);
            for (c, s) in f.crc.iter_mut().zip(&spans[..n]) {
                *c = s.seed;
            }
        }
        let avail = self.buf.len();
        let mut reach = f.done;
        for i in 0..n {
            let s = f.spans[i];
            let end = s.start.saturating_add(s.len);
            let (from, to) = (f.done.max(s.start), avail.min(end));
            if from < to {
                f.crc[i] = ceph_crc32c(f.crc[i], &self.buf[from..to]);
            }
            reach = reach.max(to);
        }
        f.done = reach;
        f.crc
    }

    fn forget_fold(&mut self) {
        self.fold.n = 0;
        self.fold.done = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_in_pieces_matches_one_pass_for_any_seeds_and_spans() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 253) as u8).collect();
        let spans = [
            Span {
                start: 5,
                len: 100,
                seed: 0,
            },
            Span {
                start: 109,
                len: 0,
                seed: 0xFFFF_FFFF,
            },
            Span {
                start: 109,
                len: 2000,
                seed: 0xFFFF_FFFF,
            },
            Span {
                start: 2200,
                len: 700,
                seed: 0x1234_5678,
            },
        ];
        let want: Vec<u32> = spans
            .iter()
            .map(|s| ceph_crc32c(s.seed, &data[s.start..s.start + s.len]))
            .collect();
        for step in [1usize, 3, 64, 1000, 3000] {
            let mut b = RecvBuffer::new(1 << 20);
            let mut got = [0; MAX_SPANS];
            for chunk in data.chunks(step) {
                b.push(chunk);
                got = b.fold(&spans);
            }
            assert_eq!(&got[..], &want[..], "step {step}");
        }
        // Fewer spans: a different layout starts afresh.
        let mut b = RecvBuffer::new(1 << 20);
        b.push(&data);
        b.fold(&spans);
        assert_eq!(b.fold(&spans[..1])[0], want[0]);
    }

    #[test]
    fn moving_the_front_forgets_the_progress() {
        let mut b = RecvBuffer::new(1 << 20);
        let span = [Span {
            start: 0,
            len: 8,
            seed: 0,
        }];
        b.push(b"abcd");
        b.fold(&span);
        b.take(1).unwrap();
        b.push(b"efghi");
        assert_eq!(b.fold(&span)[0], ceph_crc32c(0, b"bcdefghi"));
        b.truncate(2);
        b.push(b"XYZWVU");
        assert_eq!(b.fold(&span)[0], ceph_crc32c(0, b"bcXYZWVU"));
    }

    #[test]
    fn discard_drops_input_now_and_as_it_arrives() {
        let mut b = RecvBuffer::new(1 << 20);
        b.push(b"0123456789");
        b.discard(4);
        assert_eq!(b.peek(), b"456789");
        b.discard(10);
        assert_eq!(b.buffered(), 0);
        assert_eq!(b.discarding(), 4);
        b.read_buffer(16).extend_from_slice(b"abc");
        // Not settled yet, but already invisible.
        assert_eq!(b.peek(), b"");
        assert_eq!(b.discarding(), 1);
        b.push(b"defg");
        assert_eq!(b.peek(), b"efg");
        assert_eq!(b.discarding(), 0);
        b.discard(100);
        b.clear();
        b.push(b"x");
        assert_eq!(b.peek(), b"x");
    }
}
