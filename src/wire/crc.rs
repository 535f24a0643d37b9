//! Ceph's CRC32C convention.
//!
//! Ceph's `ceph_crc32c(seed, data)` (and the kernel's `crc32c`) is a *raw* Castagnoli
//! register update: no pre-inversion and no final inversion. The `crc32c` crate computes
//! the standard (inverted) form, so the two are related by
//! `raw(seed, d) == !crc32c_append(!seed, d)`. Chaining works as with any raw CRC:
//! `raw(raw(s, a), b) == raw(s, a ‖ b)`, and the raw CRC of any run of zero bytes with
//! seed 0 is 0.

/// Raw Ceph CRC32C of `data`, starting from `seed` (no inversion on either end).
#[inline]
#[must_use]
pub fn ceph_crc32c(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

#[cfg(test)]
mod tests {
    use super::ceph_crc32c;

    #[test]
    fn known_vectors() {
        assert_eq!(ceph_crc32c(0, b"123456789"), 0x58E3_FA20);
        assert_eq!(ceph_crc32c(0xFFFF_FFFF, b"123456789"), 0x1CF9_6D7C);
        assert_eq!(!ceph_crc32c(0xFFFF_FFFF, b"123456789"), 0xE306_9283);
        assert_eq!(ceph_crc32c(0, &[0u8; 4096]), 0);
        assert_eq!(ceph_crc32c(0xFFFF_FFFF, &[0u8]), 0xAD82_ACAE);
        assert_eq!(ceph_crc32c(0xFFFF_FFFF, &[]), 0xFFFF_FFFF);
        assert_eq!(ceph_crc32c(0, &[]), 0);
    }

    #[test]
    fn chains_like_a_raw_crc() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        for cut in [0, 1, 7, 500, 999, 1000] {
            let (a, b) = data.split_at(cut);
            for seed in [0, 0xFFFF_FFFF, 0x1234_5678] {
                assert_eq!(
                    ceph_crc32c(ceph_crc32c(seed, a), b),
                    ceph_crc32c(seed, &data)
                );
            }
        }
    }
}
