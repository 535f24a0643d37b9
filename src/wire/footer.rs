//! Message footers: `ceph_msg_footer` (21 bytes) and `ceph_msg_footer_old` (13 bytes).

use super::{feature, le32, le64, take, DecodeError, FOOTER_COMPLETE};

/// Which footer layout a connection uses: decided by the peer's MSG_AUTH feature (bit 23).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FooterKind {
    /// `ceph_msg_footer`: three CRCs, a 64-bit signature, flags: 21 bytes.
    New,
    /// `ceph_msg_footer_old`: three CRCs and flags: 13 bytes.
    Old,
}

impl FooterKind {
    /// The layout for a peer with these feature bits.
    #[must_use]
    pub const fn for_features(features: u64) -> Self {
        if features & feature::MSG_AUTH != 0 {
            Self::New
        } else {
            Self::Old
        }
    }

    /// Encoded length.
    #[must_use]
    pub const fn encoded_len(self) -> usize {
        match self {
            Self::New => 21,
            Self::Old => 13,
        }
    }
}

/// Longest footer.
pub const MAX_FOOTER_LEN: usize = 21;

/// The fields of a message footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footer {
    /// Raw CRC (seed 0) of the front section.
    pub front_crc: u32,
    /// Raw CRC (seed 0) of the middle section (0 when empty).
    pub middle_crc: u32,
    /// Raw CRC (seed 0) of the data section.
    pub data_crc: u32,
    /// Message signature (0 unless signing is active; absent in the old footer).
    pub sig: u64,
    /// `FOOTER_*` flags; [`FOOTER_COMPLETE`] clear means the sender aborted the message.
    pub flags: u8,
}

impl Footer {
    /// Whether the sender marked the message complete (not aborted).
    #[must_use]
    pub const fn is_complete(&self) -> bool {
        self.flags & FOOTER_COMPLETE != 0
    }

    /// Encodes into the front of `out`, returning the length written (21 or 13).
    pub fn encode(&self, kind: FooterKind, out: &mut [u8; MAX_FOOTER_LEN]) -> usize {
        out[0..4].copy_from_slice(&self.front_crc.to_le_bytes());
        out[4..8].copy_from_slice(&self.middle_crc.to_le_bytes());
        out[8..12].copy_from_slice(&self.data_crc.to_le_bytes());
        match kind {
            FooterKind::New => {
                out[12..20].copy_from_slice(&self.sig.to_le_bytes());
                out[20] = self.flags;
            }
            FooterKind::Old => out[12] = self.flags,
        }
        kind.encoded_len()
    }

    /// Decodes a footer of the given layout from the front of `buf`.
    pub fn decode(kind: FooterKind, buf: &[u8]) -> Result<Self, DecodeError> {
        match kind {
            FooterKind::New => {
                let b = take::<21>(buf)?;
                Ok(Self {
                    front_crc: le32(b, 0),
                    middle_crc: le32(b, 4),
                    data_crc: le32(b, 8),
                    sig: le64(b, 12),
                    flags: b[20],
                })
            }
            FooterKind::Old => {
                let b = take::<13>(buf)?;
                Ok(Self {
                    front_crc: le32(b, 0),
                    middle_crc: le32(b, 4),
                    data_crc: le32(b, 8),
                    sig: 0,
                    flags: b[12],
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_msg_auth() {
        assert_eq!(FooterKind::for_features(1 << 23), FooterKind::New);
        assert_eq!(FooterKind::for_features(!(1 << 23)), FooterKind::Old);
        assert_eq!(FooterKind::New.encoded_len(), 21);
        assert_eq!(FooterKind::Old.encoded_len(), 13);
    }

    #[test]
    fn round_trips_both_layouts() {
        let f = Footer {
            front_crc: 0x1111_2222,
            middle_crc: 0,
            data_crc: 0xdead_beef,
            sig: 0x0102_0304_0506_0708,
            flags: FOOTER_COMPLETE,
        };
        let mut b = [0u8; MAX_FOOTER_LEN];
        assert_eq!(f.encode(FooterKind::New, &mut b), 21);
        assert_eq!(b[20], 1);
        assert_eq!(Footer::decode(FooterKind::New, &b), Ok(f));
        let mut b = [0u8; MAX_FOOTER_LEN];
        assert_eq!(f.encode(FooterKind::Old, &mut b), 13);
        assert_eq!(b[12], 1);
        assert_eq!(
            Footer::decode(FooterKind::Old, &b[..13]),
            Ok(Footer { sig: 0, ..f })
        );
        assert!(Footer::decode(FooterKind::New, &b[..13]).is_err());
        let zero = Footer::decode(FooterKind::New, &[0u8; 21]).unwrap();
        assert!(!zero.is_complete());
    }
}
