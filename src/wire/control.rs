//! Control records of an open msgr v1 stream: ACK, KEEPALIVE, KEEPALIVE2(_ACK), CLOSE.

use super::{le32, le64, tag, take, DecodeError};

/// Longest control record (tag + 8 bytes).
pub const MAX_CONTROL_LEN: usize = 9;

/// `ceph_timespec`: le32 seconds, le32 nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Timespec {
    /// Seconds.
    pub sec: u32,
    /// Nanoseconds.
    pub nsec: u32,
}

/// A control record (everything in an open stream except a message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Cumulative acknowledgement of every message with seq ≤ the value.
    Ack(u64),
    /// Keepalive without payload.
    Keepalive,
    /// Keepalive with a timestamp the peer echoes.
    Keepalive2(Timespec),
    /// Answer to a [`Control::Keepalive2`], echoing its stamp.
    Keepalive2Ack(Timespec),
    /// The sender is closing the connection.
    Close,
}

impl Control {
    /// The record's tag byte.
    #[must_use]
    pub const fn tag(&self) -> u8 {
        match self {
            Self::Ack(_) => tag::ACK,
            Self::Keepalive => tag::KEEPALIVE,
            Self::Keepalive2(_) => tag::KEEPALIVE2,
            Self::Keepalive2Ack(_) => tag::KEEPALIVE2_ACK,
            Self::Close => tag::CLOSE,
        }
    }

    /// Bytes after the tag for records with this tag, or `None` if the tag is not a
    /// control tag.
    #[must_use]
    pub const fn payload_len(tag: u8) -> Option<usize> {
        match tag {
            tag::ACK | tag::KEEPALIVE2 | tag::KEEPALIVE2_ACK => Some(8),
            tag::KEEPALIVE | tag::CLOSE => Some(0),
            _ => None,
        }
    }

    /// Encodes tag and payload into `out`, returning the length (1 or 9).
    pub fn encode(&self, out: &mut [u8; MAX_CONTROL_LEN]) -> usize {
        out[0] = self.tag();
        match *self {
            Self::Ack(seq) => {
                out[1..9].copy_from_slice(&seq.to_le_bytes());
                9
            }
            Self::Keepalive2(ts) | Self::Keepalive2Ack(ts) => {
                out[1..5].copy_from_slice(&ts.sec.to_le_bytes());
                out[5..9].copy_from_slice(&ts.nsec.to_le_bytes());
                9
            }
            Self::Keepalive | Self::Close => 1,
        }
    }

    /// Decodes the payload that follows `tag` (see [`Control::payload_len`]).
    pub fn decode(tag: u8, payload: &[u8]) -> Result<Self, DecodeError> {
        let stamp = |p: &[u8]| -> Result<Timespec, DecodeError> {
            let b = take::<8>(p)?;
            Ok(Timespec {
                sec: le32(b, 0),
                nsec: le32(b, 4),
            })
        };
        Ok(match tag {
            tag::ACK => Self::Ack(le64(take::<8>(payload)?, 0)),
            tag::KEEPALIVE => Self::Keepalive,
            tag::KEEPALIVE2 => Self::Keepalive2(stamp(payload)?),
            tag::KEEPALIVE2_ACK => Self::Keepalive2Ack(stamp(payload)?),
            tag::CLOSE => Self::Close,
            other => return Err(DecodeError::UnknownTag(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sizes() {
        let ts = Timespec {
            sec: 1_700_000_000,
            nsec: 123,
        };
        for (c, len) in [
            (Control::Ack(0xfeed), 9),
            (Control::Keepalive, 1),
            (Control::Keepalive2(ts), 9),
            (Control::Keepalive2Ack(ts), 9),
            (Control::Close, 1),
        ] {
            let mut b = [0u8; MAX_CONTROL_LEN];
            assert_eq!(c.encode(&mut b), len);
            assert_eq!(Control::payload_len(b[0]), Some(len - 1));
            assert_eq!(Control::decode(b[0], &b[1..len]), Ok(c));
        }
        let mut b = [0u8; MAX_CONTROL_LEN];
        Control::Ack(5).encode(&mut b);
        assert_eq!(b, [8, 5, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(Control::payload_len(tag::MSG), None);
        assert_eq!(
            Control::decode(tag::MSG, &[]),
            Err(DecodeError::UnknownTag(7))
        );
        assert!(matches!(
            Control::decode(tag::ACK, &[1, 2, 3]),
            Err(DecodeError::Truncated { need: 8, have: 3 })
        ));
    }
}
