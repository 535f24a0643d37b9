//! One outgoing frame and its byte accounting, independent of the protocol version.
//!
//! Every frame msgr v1 and msgr2 send has the same three parts:
//!
//! ```text
//!  | head ............ | body ........................... | tail ...... |
//!  | v1: tag + header  | front | middle | data chunks ... | v1: footer  |
//!  | v2: preamble+hdr2 |                                  | v2: epilogue|
//!  0                head_len                    head_len+body_len      len
//! ```
//!
//! * the **head** is small, encoded into the frame itself, and always goes out intact once
//!   its first byte is on the wire (a peer that has part of a header needs all of it);
//! * the **body** points into the caller's [`Bytes`](bytes::Bytes) and is never copied;
//! * the **tail** is small and encoded into the frame.
//!
//! `written` counts the bytes of the frame the caller has acknowledged as written. When a
//! started frame is aborted, every body byte at or after `max(written, head_len)` goes out
//! as zeros from a shared static buffer, and the tail is replaced by what the protocol
//! sends for an aborted frame. The frame's length never changes, so the peer's framing is
//! kept exactly. [`TailRule`] is the only protocol knowledge here:
//!
//! * **v1**: any started, unfinished frame can be aborted; the unsent rest of the footer
//!   goes out as zeros (so its COMPLETE flag is clear unless the flags byte was out);
//! * **v2 (crc)**: a frame can be aborted until the first byte of its epilogue is written;
//!   the epilogue then says ABORTED and carries the CRC of each segment *as sent* (the
//!   written prefix, then the zeros). A frame without an epilogue (one segment), or whose
//!   epilogue has started, cannot be aborted any more: it completes unchanged.
//!
//! This module is the single place where revoke is decided for every protocol.

use std::io::IoSlice;

use bytes::Bytes;

use crate::v2::frame::{Epilogue, LATE_STATUS_ABORTED, SEGMENT_CRC_SEED};
use crate::wire::ceph_crc32c;

/// Capacity of an inline head (v1 uses 54 bytes: tag + header).
pub(crate) const HEAD_CAP: usize = 96;
/// Capacity of an inline tail (v1 uses 21 or 13 bytes).
pub(crate) const TAIL_CAP: usize = 32;

/// Zeros handed out for aborted bytes. One static buffer; never allocated per message.
pub(crate) static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Small inline byte buffer for a head or tail.
#[derive(Clone, Copy)]
pub(crate) struct Inline<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> Inline<N> {
    pub(crate) fn new(src: &[u8]) -> Self {
        debug_assert!(src.len() <= N && N <= 255);
        let mut bytes = [0u8; N];
        let len = src.len().min(N);
        bytes[..len].copy_from_slice(&src[..len]);
        Self {
            bytes,
            len: len as u8,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }
}

/// The body of a frame: borrowed views of the caller's sections, in wire order.
#[derive(Clone, Copy)]
pub(crate) struct BodyRef<'a> {
    pub(crate) sections: [&'a [u8]; 2],
    pub(crate) chunks: &'a [Bytes],
}

impl<'a> BodyRef<'a> {
    /// Piece `i` of the body in wire order: the two sections, then the chunks (empty
    /// pieces included); `None` past the end.
    fn piece(&self, i: usize) -> Option<&'a [u8]> {
        match i {
            0 | 1 => Some(self.sections[i]),
            _ => self.chunks.get(i - 2).map(|c| &c[..]),
        }
    }
}

/// What a protocol sends for the unsent rest of an aborted frame, and until when a frame
/// can be aborted at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TailRule {
    /// msgr v1 (and connection-level bytes): the unsent tail becomes zeros.
    ZeroTail,
    /// msgr2 crc mode with `nseg` segments (segment 0, header2, is in the head; segments
    /// 1.. are the body sections front, middle, data). With `nseg > 1` the tail is the
    /// epilogue; with `nseg == 1` there is no tail and a started frame cannot be aborted.
    V2Epilogue {
        /// Segment count of the frame (1..=4).
        nseg: u8,
    },
}

/// What [`OutFrame::abort`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Abort {
    /// The frame was aborted; this is what is still owed.
    Aborted(AbortOwed),
    /// The frame had gone too far to abort (v2: no epilogue, or the epilogue had started):
    /// its remaining `left` bytes go out unchanged, and none of them is a body byte.
    Completing {
        /// Bytes still to go out.
        left: u64,
    },
}

/// Accounting for one frame on the current connection.
pub(crate) struct OutFrame {
    /// Encoded head; goes out intact once started.
    head: Inline<HEAD_CAP>,
    /// Total body length (front + middle + data).
    body_len: u64,
    /// Encoded tail. After an abort it holds what the protocol sends instead.
    tail: Inline<TAIL_CAP>,
    /// Bytes of this frame acknowledged as written. Invariant: `written <= len()`.
    written: u64,
    /// Set by [`OutFrame::abort`]: the frame no longer reads the caller's body. Body bytes
    /// from `max(written, head_len)` on are zeros (there are none left when the frame was
    /// only detached to complete unchanged). Invariant: only ever set while
    /// `0 < written < len()`.
    aborted: bool,
    /// How an abort is encoded, and whether one is still possible.
    rule: TailRule,
    /// The first body piece not completely written, and the wire offset it starts at, so
    /// that `fill` does not walk the pieces already written (a body may have thousands of
    /// chunks). Invariant: `cursor.1 <= max(written, head_len)`; kept by `advance`.
    cursor: (usize, u64),
}

/// What an abort left owed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortOwed {
    /// Head bytes still to go out intact.
    pub(crate) head_left: u64,
    /// Body and tail bytes that go out as zeros (or, for v2, as the aborted epilogue).
    pub(crate) zeros: u64,
}

impl OutFrame {
    /// A frame whose abort zeros its tail (msgr v1, connection-level bytes).
    pub(crate) fn new(head: &[u8], body_len: u64, tail: &[u8]) -> Self {
        Self::with_rule(head, body_len, tail, TailRule::ZeroTail)
    }

    /// A frame with the given abort rule.
    pub(crate) fn with_rule(head: &[u8], body_len: u64, tail: &[u8], rule: TailRule) -> Self {
        Self {
            head: Inline::new(head),
            body_len,
            tail: Inline::new(tail),
            written: 0,
            aborted: false,
            rule,
            cursor: (0, head.len() as u64),
        }
    }

    fn head_len(&self) -> u64 {
        self.head.len() as u64
    }

    /// Total wire length of the frame.
    pub(crate) fn len(&self) -> u64 {
        self.head_len() + self.body_len + self.tail.len() as u64
    }

    /// Bytes not yet acknowledged.
    pub(crate) fn remaining(&self) -> u64 {
        self.len() - self.written
    }

    pub(crate) fn started(&self) -> bool {
        self.written > 0
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted
    }

    /// Acknowledges up to `n` bytes of a frame whose body is `body` (or `None` once
    /// aborted); returns how many were taken.
    pub(crate) fn advance(&mut self, n: u64, body: Option<BodyRef<'_>>) -> u64 {
        let take = n.min(self.remaining());
        self.written += take;
        if let Some(b) = body {
            while let Some(p) = b.piece(self.cursor.0) {
                let end = self.cursor.1 + p.len() as u64;
                if end > self.written {
                    break;
                }
                self.cursor = (self.cursor.0 + 1, end);
            }
        }
        take
    }

    /// Aborts a started, unfinished frame whose body is `body`: the rest of the head stays,
    /// the rest of the body becomes zeros, and the unsent part of the tail is replaced by
    /// what the frame's [`TailRule`] sends for an aborted frame at the same offsets. Under
    /// the v2 rule a frame past its last abortable byte is only detached from `body` and
    /// completes unchanged. Either way the frame never reads `body` again.
    pub(crate) fn abort(&mut self, body: BodyRef<'_>) -> Abort {
        debug_assert!(self.started() && self.remaining() > 0 && !self.aborted);
        let tail_start = self.head_len() + self.body_len;
        let aborted_tail = match self.rule {
            TailRule::ZeroTail => [0u8; TAIL_CAP],
            TailRule::V2Epilogue { nseg } => {
                // Abortable while no epilogue byte is out, and only if there is one.
                if nseg <= 1 || self.written > tail_start {
                    self.aborted = true;
                    return Abort::Completing {
                        left: self.remaining(),
                    };
                }
                self.v2_aborted_epilogue(body, nseg)
            }
        };
        // Tail bytes already written stay as they were; the rest come from `aborted_tail`.
        let sent_of_tail = self.written.saturating_sub(tail_start) as usize;
        let mut tail = [0u8; TAIL_CAP];
        let len = self.tail.len();
        tail[..len].copy_from_slice(self.tail.as_slice());
        if sent_of_tail < len {
            tail[sent_of_tail..len].copy_from_slice(&aborted_tail[sent_of_tail..len]);
        }
        self.tail = Inline::new(&tail[..len]);
        self.aborted = true;
        let head_left = self.head_len().saturating_sub(self.written);
        Abort::Aborted(AbortOwed {
            head_left,
            zeros: self.remaining() - head_left,
        })
    }

    /// The epilogue of an aborted v2 frame: late_status ABORTED and, for each segment below
    /// `nseg`, the CRC of its bytes as they go out — the part already written, then zeros.
    fn v2_aborted_epilogue(&self, body: BodyRef<'_>, nseg: u8) -> [u8; TAIL_CAP] {
        // Body bytes already written (the head is not part of any body segment).
        let sent = self.written.saturating_sub(self.head_len());
        let mut crcs = [0u32; 3];
        let mut seg_start = 0u64;
        let data_len = body.chunks.iter().map(|c| c.len() as u64).sum::<u64>();
        let lens = [
            body.sections[0].len() as u64,
            body.sections[1].len() as u64,
            data_len,
        ];
        for (i, crc) in crcs.iter_mut().enumerate().take(usize::from(nseg) - 1) {
            let real = sent.saturating_sub(seg_start).min(lens[i]);
            let mut c = SEGMENT_CRC_SEED;
            let mut left = real;
            let pieces: &[&[u8]] = if i < 2 { &body.sections[i..=i] } else { &[] };
            let chunks = body.chunks.iter().map(|b| &b[..]).filter(|_| i == 2);
            for p in pieces.iter().copied().chain(chunks) {
                if left == 0 {
                    break;
                }
                let k = (p.len() as u64).min(left) as usize;
                c = ceph_crc32c(c, &p[..k]);
                left -= k as u64;
            }
            let mut zeros = lens[i] - real;
            while zeros > 0 {
                let n = zeros.min(ZEROS.len() as u64) as usize;
                c = ceph_crc32c(c, &ZEROS[..n]);
                zeros -= n as u64;
            }
            *crc = c;
            seg_start += lens[i];
        }
        let e = Epilogue {
            late_status: LATE_STATUS_ABORTED,
            crcs,
        }
        .encode();
        let mut out = [0u8; TAIL_CAP];
        out[..e.len()].copy_from_slice(&e);
        out
    }

    /// Pushes the unwritten bytes of the frame into `out` as slices, at most `out.len()`
    /// of them; `body` must describe this frame's body (ignored once aborted). Returns the
    /// number of slices and bytes pushed, and whether the whole frame fit.
    pub(crate) fn fill<'a>(
        &'a self,
        body: BodyRef<'a>,
        out: &mut [IoSlice<'a>],
    ) -> (usize, u64, bool) {
        let mut filler = Filler {
            out,
            used: 0,
            bytes: 0,
        };
        let mut pos = 0u64; // wire offset of the piece being considered
        let skip = self.written;
        let ok = (|| {
            filler.piece(&mut pos, skip, self.head.as_slice())?;
            if self.aborted {
                let zero_from = skip.max(self.head_len());
                let body_end = self.head_len() + self.body_len;
                pos = zero_from;
                let mut left = body_end.saturating_sub(zero_from);
                while left > 0 {
                    let n = left.min(ZEROS.len() as u64) as usize;
                    filler.piece(&mut pos, skip, &ZEROS[..n])?;
                    left -= n as u64;
                }
                pos = body_end;
            } else {
                let (mut i, start) = self.cursor;
                pos = start;
                while let Some(piece) = body.piece(i) {
                    filler.piece(&mut pos, skip, piece)?;
                    i += 1;
                }
            }
            filler.piece(&mut pos, skip, self.tail.as_slice())
        })()
        .is_some();
        (filler.used, filler.bytes, ok)
    }
}

/// Appends slices to an output array, skipping what is already written.
struct Filler<'o, 'a> {
    out: &'o mut [IoSlice<'a>],
    used: usize,
    bytes: u64,
}

impl<'a> Filler<'_, 'a> {
    /// Offers the part of `piece` (which starts at wire offset `*pos`) that lies at or after
    /// `skip`. Returns `None` when the output is full.
    fn piece(&mut self, pos: &mut u64, skip: u64, piece: &'a [u8]) -> Option<()> {
        let start = *pos;
        *pos += piece.len() as u64;
        if *pos <= skip || piece.is_empty() {
            return Some(());
        }
        let from = skip.saturating_sub(start) as usize;
        let slot = self.out.get_mut(self.used)?;
        *slot = IoSlice::new(&piece[from..]);
        self.used += 1;
        self.bytes += (piece.len() - from) as u64;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(f: &OutFrame, body: BodyRef<'_>) -> Vec<u8> {
        let mut slots = [IoSlice::new(&[]); 64];
        let (n, bytes, whole) = f.fill(body, &mut slots);
        assert!(whole);
        let v: Vec<u8> = slots[..n].iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(v.len() as u64, bytes);
        v
    }

    #[test]
    fn fill_skips_written_bytes_and_aborts_keep_the_length() {
        let front = [1u8, 2, 3];
        let chunks = [Bytes::from_static(&[4, 5]), Bytes::from_static(&[6])];
        let body = BodyRef {
            sections: [&front, &[]],
            chunks: &chunks,
        };
        let mut f = OutFrame::new(&[9, 9], 6, &[7, 7, 7]);
        assert_eq!(f.len(), 11);
        assert_eq!(collect(&f, body), [9, 9, 1, 2, 3, 4, 5, 6, 7, 7, 7]);
        f.advance(3, Some(body));
        assert_eq!(collect(&f, body), [2, 3, 4, 5, 6, 7, 7, 7]);
        let owed = f.abort(body);
        assert_eq!(
            owed,
            Abort::Aborted(AbortOwed {
                head_left: 0,
                zeros: 8
            })
        );
        assert_eq!(collect(&f, body), [0; 8]);

        let mut f = OutFrame::new(&[9, 9], 6, &[7, 7, 7]);
        f.advance(1, Some(body));
        assert_eq!(
            f.abort(body),
            Abort::Aborted(AbortOwed {
                head_left: 1,
                zeros: 9
            })
        );
        assert_eq!(collect(&f, body), [9, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

        let mut f = OutFrame::new(&[9, 9], 6, &[7, 7, 7]);
        f.advance(9, Some(body));
        assert_eq!(
            f.abort(body),
            Abort::Aborted(AbortOwed {
                head_left: 0,
                zeros: 2
            })
        );
        assert_eq!(collect(&f, body), [0, 0]);
    }

    #[test]
    fn fill_stops_when_out_of_slices() {
        let front = [1u8; 10];
        let body = BodyRef {
            sections: [&front, &[]],
            chunks: &[],
        };
        let f = OutFrame::new(&[9], 10, &[7]);
        let mut slots = [IoSlice::new(&[]); 2];
        let (n, bytes, whole) = f.fill(body, &mut slots);
        assert_eq!((n, bytes, whole), (2, 11, false));
    }

    #[test]
    fn long_aborts_use_several_zero_slices() {
        let data = vec![5u8; 200_000];
        let chunks = [Bytes::from(data)];
        let body = BodyRef {
            sections: [&[], &[]],
            chunks: &chunks,
        };
        let mut f = OutFrame::new(&[1; 54], 200_000, &[2; 21]);
        f.advance(60, Some(body));
        let _ = f.abort(body);
        let out = collect(&f, body);
        assert_eq!(out.len() as u64, f.remaining());
        assert!(out.iter().all(|&b| b == 0));
    }
}
