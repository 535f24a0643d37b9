//! `ceph_msg_header`: 53 bytes, its CRC over the first 49.

use super::{ceph_crc32c, le16, le32, le64, take, DecodeError, EntityName, EntityType};

/// Encoded length of a message header.
pub const HEADER_LEN: usize = 53;
/// Bytes covered by the header CRC (everything before the `crc` field).
pub const HEADER_CRC_SPAN: usize = 49;

/// The fields of a v1 message header (`ceph_msg_header`).
///
/// | off | size | field |
/// |---|---|---|
/// | 0 | 8 | seq |
/// | 8 | 8 | tid |
/// | 16 | 2 | type |
/// | 18 | 2 | priority |
/// | 20 | 2 | version |
/// | 22 | 4 | front_len |
/// | 26 | 4 | middle_len |
/// | 30 | 4 | data_len |
/// | 34 | 2 | data_off |
/// | 36 | 1 | src.type |
/// | 37 | 8 | src.num |
/// | 45 | 2 | compat_version |
/// | 47 | 2 | reserved |
/// | 49 | 4 | crc (raw crc32c, seed 0, over bytes 0..49) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgHeader {
    /// Sequence number within the session (1 for the first message).
    pub seq: u64,
    /// Transaction id, chosen by the sender.
    pub tid: u64,
    /// Message type (`CEPH_MSG_*`).
    pub ty: u16,
    /// Priority (64 low, 127 default, 196 high, 255 highest).
    pub priority: u16,
    /// Encoding version of the payload.
    pub version: u16,
    /// Length of the front section.
    pub front_len: u32,
    /// Length of the middle section.
    pub middle_len: u32,
    /// Length of the data section.
    pub data_len: u32,
    /// Offset hint for the data (e.g. the object offset of a write).
    pub data_off: u16,
    /// The sender.
    pub src: EntityName,
    /// Oldest encoding version a receiver must understand.
    pub compat_version: u16,
}

impl MsgHeader {
    /// Encodes the header, computing its CRC.
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.tid.to_le_bytes());
        b[16..18].copy_from_slice(&self.ty.to_le_bytes());
        b[18..20].copy_from_slice(&self.priority.to_le_bytes());
        b[20..22].copy_from_slice(&self.version.to_le_bytes());
        b[22..26].copy_from_slice(&self.front_len.to_le_bytes());
        b[26..30].copy_from_slice(&self.middle_len.to_le_bytes());
        b[30..34].copy_from_slice(&self.data_len.to_le_bytes());
        b[34..36].copy_from_slice(&self.data_off.to_le_bytes());
        b[36] = self.src.ty.to_u8();
        b[37..45].copy_from_slice(&self.src.num.to_le_bytes());
        b[45..47].copy_from_slice(&self.compat_version.to_le_bytes());
        // 47..49 reserved, zero.
        let crc = ceph_crc32c(0, &b[..HEADER_CRC_SPAN]);
        b[49..53].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header from the first 53 bytes of `buf`, checking its CRC.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let b = take::<HEADER_LEN>(buf)?;
        let carried = le32(b, 49);
        let computed = ceph_crc32c(0, &b[..HEADER_CRC_SPAN]);
        if carried != computed {
            return Err(DecodeError::HeaderCrc { carried, computed });
        }
        Ok(Self {
            seq: le64(b, 0),
            tid: le64(b, 8),
            ty: le16(b, 16),
            priority: le16(b, 18),
            version: le16(b, 20),
            front_len: le32(b, 22),
            middle_len: le32(b, 26),
            data_len: le32(b, 30),
            data_off: le16(b, 34),
            src: EntityName {
                ty: EntityType::from_u8(b[36])?,
                num: le64(b, 37),
            },
            compat_version: le16(b, 45),
        })
    }

    /// Bytes of front, middle and data together.
    #[must_use]
    pub fn payload_len(&self) -> u64 {
        u64::from(self.front_len) + u64::from(self.middle_len) + u64::from(self.data_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MsgHeader {
        MsgHeader {
            seq: 0x0102_0304_0506_0708,
            tid: 99,
            ty: 17,
            priority: 196,
            version: 3,
            front_len: 10,
            middle_len: 0,
            data_len: 4096,
            data_off: 512,
            src: EntityName::client(4242),
            compat_version: 1,
        }
    }

    #[test]
    fn layout_and_round_trip() {
        let h = sample();
        let b = h.encode();
        assert_eq!(&b[0..8], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(b[16], 17);
        assert_eq!(&b[22..26], &10u32.to_le_bytes());
        assert_eq!(&b[30..34], &4096u32.to_le_bytes());
        assert_eq!(b[36], 8);
        assert_eq!(&b[37..45], &4242u64.to_le_bytes());
        assert_eq!(&b[47..49], &[0, 0]);
        assert_eq!(le32(&b, 49), ceph_crc32c(0, &b[..49]));
        assert_eq!(MsgHeader::decode(&b), Ok(h));
        assert_eq!(h.payload_len(), 4106);
    }

    #[test]
    fn crc_and_truncation_are_checked() {
        let mut b = sample().encode();
        assert_eq!(
            MsgHeader::decode(&b[..52]),
            Err(DecodeError::Truncated { need: 53, have: 52 })
        );
        b[3] ^= 1;
        assert!(matches!(
            MsgHeader::decode(&b),
            Err(DecodeError::HeaderCrc { .. })
        ));
    }
}
