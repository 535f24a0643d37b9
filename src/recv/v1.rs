//! The msgr v1 deframer: records (a tag byte, then a fixed-size control payload or a
//! message's header, sections and footer) at the front of a [`RecvBuffer`].
#![forbid(unsafe_code)]

use crate::wire::{
    header::HEADER_LEN, tag, Control, DecodeError, Footer, FooterKind, MsgHeader, FOOTER_NOCRC,
};

use super::buffer::{RecvBuffer, Span};
use super::{Limits, Received, Record, RecvError};

/// Parses msgr v1 records off a [`RecvBuffer`]. It keeps no parse state of its own (the
/// CRC folding progress lives in the buffer), so the buffer may be used for raw
/// handshake reads ([`RecvBuffer::take`]) between records.
#[derive(Debug, Clone)]
pub struct V1Deframer {
    footer: FooterKind,
    limits: Limits,
    /// Check data CRCs (front and middle are always checked).
    verify_data_crc: bool,
}

impl V1Deframer {
    /// A deframer for a connection with the given footer layout and limits.
    #[must_use]
    pub fn new(footer: FooterKind, limits: Limits) -> Self {
        Self {
            footer,
            limits,
            verify_data_crc: true,
        }
    }

    /// Sets the footer layout (negotiated per connection).
    pub fn set_footer(&mut self, footer: FooterKind) {
        self.footer = footer;
    }

    /// The limits it enforces.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses the next complete record at the front of `buf`, `Ok(None)` if more bytes
    /// are needed. An error is final: the stream has lost its framing (or its integrity),
    /// and what is buffered is left as it was.
    ///
    /// The payload CRCs are folded in as the bytes arrive (over each read's bytes while
    /// they are in cache, instead of over a possibly megabytes long, long evicted payload
    /// once the footer arrives). The data CRC is folded even before the footer says
    /// whether the sender computed one (`FOOTER_NOCRC`): senders set that flag rarely,
    /// and the work is what a checked message costs anyway.
    pub fn next_record(&mut self, buf: &mut RecvBuffer) -> Result<Option<Record>, RecvError> {
        buf.settle();
        let Some(&t) = buf.bytes().first() else {
            return Ok(None);
        };
        if t != tag::MSG {
            let Some(len) = Control::payload_len(t) else {
                return Err(DecodeError::UnknownTag(t).into());
            };
            if buf.bytes().len() < 1 + len {
                return Ok(None);
            }
            let c = Control::decode(t, &buf.bytes()[1..=len])?;
            buf.advance(1 + len);
            return Ok(Some(Record::Control(c)));
        }
        if buf.bytes().len() < 1 + HEADER_LEN {
            return Ok(None);
        }
        let h = MsgHeader::decode(&buf.bytes()[1..])?;
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
        if h.payload_len() > u64::from(self.limits.total) {
            return Err(RecvError::TooLong {
                section: "payload",
                len: u32::try_from(h.payload_len()).unwrap_or(u32::MAX),
                limit: self.limits.total,
            });
        }
        let footer_len = self.footer.encoded_len();
        // Bounded by the limits: at most ~96 MiB with the defaults.
        let payload_len = h.payload_len() as usize;
        let body = 1 + HEADER_LEN;
        let total = body + payload_len + footer_len;
        let [fl, ml, dl] = [
            h.front_len as usize,
            h.middle_len as usize,
            h.data_len as usize,
        ];
        let spans = [
            Span {
                start: body,
                len: fl,
                seed: 0,
            },
            Span {
                start: body + fl,
                len: ml,
                seed: 0,
            },
            Span {
                start: body + fl + ml,
                len: dl,
                seed: 0,
            },
        ];
        let n = if self.verify_data_crc { 3 } else { 2 };
        let crc = buf.fold(&spans[..n]);
        if buf.bytes().len() < total {
            buf.reserve_record(total, self.limits.eager_reserve as usize);
            return Ok(None);
        }
        // Checked where they lie; only a good record is split off, one refcount per
        // non-empty section and none for the header, the footer or empty sections.
        let f = Footer::decode(self.footer, &buf.bytes()[body + payload_len..total])?;
        // COMPLETE first: an aborted message's payload is (partly) zeros and its CRCs
        // are meaningless.
        if !f.is_complete() {
            buf.advance(total);
            return Ok(Some(Record::Aborted(h)));
        }
        let check_data = self.verify_data_crc && f.flags & FOOTER_NOCRC == 0;
        for (section, computed, carried, check) in [
            ("front", crc[0], f.front_crc, true),
            ("middle", crc[1], f.middle_crc, true),
            ("data", crc[2], f.data_crc, check_data),
        ] {
            if check && computed != carried {
                return Err(RecvError::BadCrc {
                    section,
                    carried,
                    computed,
                });
            }
        }
        buf.advance(body);
        let front = buf.split(fl);
        let middle = buf.split(ml);
        let data = buf.split(dl);
        buf.advance(footer_len);
        Ok(Some(Record::Message(Received {
            header: h,
            front,
            middle,
            data,
        })))
    }
}
