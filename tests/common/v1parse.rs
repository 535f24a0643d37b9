//! Strict parser for a msgr v1 stream consisting only of MSG frames.
//!
//! Standalone on purpose (does not use `oracle`), so it can check the model's output too.

const TAG_MSG: u8 = 7;
const HEADER_LEN: usize = 53;
const PREFIX_LEN: usize = 1 + HEADER_LEN;
const FLAG_COMPLETE: u8 = 1;

/// One message frame as found on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMsg {
    pub seq: u64,
    pub tid: u64,
    pub ty: u16,
    pub prio: u16,
    pub version: u16,
    pub compat: u16,
    pub src_type: u8,
    pub src_num: u64,
    pub front: Vec<u8>,
    pub middle: Vec<u8>,
    pub data: Vec<u8>,
    /// Footer flags had COMPLETE set (false = aborted message).
    pub complete: bool,
}

fn raw_crc(data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!0, data)
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// The footer a sender produces for a complete message with these sections.
fn complete_footer(front: &[u8], middle: &[u8], data: &[u8], new_footer: bool) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&raw_crc(front).to_le_bytes());
    f.extend_from_slice(&raw_crc(middle).to_le_bytes());
    f.extend_from_slice(&raw_crc(data).to_le_bytes());
    if new_footer {
        f.extend_from_slice(&0u64.to_le_bytes());
    }
    f.push(FLAG_COMPLETE);
    f
}

/// Parse a whole stream of MSG frames. `new_footer`: 21-byte footer (MSG_AUTH) vs 13-byte.
///
/// Rules: every frame starts with tag 7; header crc matches; data_off = 0 and reserved = 0;
/// the stream ends exactly on a frame boundary; seqs strictly increase. A footer with
/// COMPLETE set must be exactly the correct footer (crcs match, sig 0, flags 1). A footer with
/// COMPLETE clear (aborted message) must be a prefix of the correct footer followed by zeros
/// (normally all zeros; a non-empty prefix only when the abort happened inside the footer).
pub fn parse_stream(bytes: &[u8], new_footer: bool) -> Result<Vec<ParsedMsg>, String> {
    let footer_len: usize = if new_footer { 21 } else { 13 };
    let mut out: Vec<ParsedMsg> = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let start = pos;
        if bytes[start] != TAG_MSG {
            return Err(format!(
                "offset {start}: expected tag {TAG_MSG} (MSG), found {}",
                bytes[start]
            ));
        }
        if bytes.len() - start < PREFIX_LEN {
            return Err(format!(
                "offset {start}: truncated header ({} of {PREFIX_LEN} bytes)",
                bytes.len() - start
            ));
        }
        let h = &bytes[start + 1..start + PREFIX_LEN];
        let want_crc = raw_crc(&h[..49]);
        let got_crc = u32_at(h, 49);
        if got_crc != want_crc {
            return Err(format!(
                "offset {start}: header crc {got_crc:#010x}, expected {want_crc:#010x}"
            ));
        }
        let data_off = u16_at(h, 34);
        if data_off != 0 {
            return Err(format!("offset {start}: data_off {data_off} != 0"));
        }
        let reserved = u16_at(h, 47);
        if reserved != 0 {
            return Err(format!("offset {start}: reserved {reserved} != 0"));
        }
        let seq = u64_at(h, 0);
        let front_len = u32_at(h, 22) as usize;
        let middle_len = u32_at(h, 26) as usize;
        let data_len = u32_at(h, 30) as usize;

        let total = PREFIX_LEN as u64
            + front_len as u64
            + middle_len as u64
            + data_len as u64
            + footer_len as u64;
        let available = (bytes.len() - start) as u64;
        if available < total {
            return Err(format!(
                "offset {start}: truncated message (seq {seq}): {available} of {total} bytes"
            ));
        }
        let mut p = start + PREFIX_LEN;
        let front = bytes[p..p + front_len].to_vec();
        p += front_len;
        let middle = bytes[p..p + middle_len].to_vec();
        p += middle_len;
        let data = bytes[p..p + data_len].to_vec();
        p += data_len;
        let footer = &bytes[p..p + footer_len];
        p += footer_len;

        let expected = complete_footer(&front, &middle, &data, new_footer);
        let flags = footer[footer_len - 1];
        let complete = flags & FLAG_COMPLETE != 0;
        if complete {
            if flags != FLAG_COMPLETE {
                return Err(format!("offset {start}: footer flags {flags:#x} != 0x1"));
            }
            if new_footer && u64_at(footer, 12) != 0 {
                return Err(format!("offset {start}: footer sig is not 0"));
            }
            for (i, name) in ["front", "middle", "data"].iter().enumerate() {
                let got = u32_at(footer, i * 4);
                let want = u32_at(&expected, i * 4);
                if got != want {
                    return Err(format!(
                        "offset {start}: {name} crc {got:#010x}, expected {want:#010x}"
                    ));
                }
            }
        } else {
            let matching = footer
                .iter()
                .zip(&expected)
                .take_while(|(a, b)| a == b)
                .count();
            if footer[matching..].iter().any(|&b| b != 0) {
                return Err(format!(
                    "offset {start}: aborted message (COMPLETE clear) with a footer that is \
                     not zeros (nor a correct prefix followed by zeros): {footer:02x?}"
                ));
            }
        }

        if let Some(prev) = out.last() {
            if seq <= prev.seq {
                return Err(format!(
                    "offset {start}: seq {seq} not greater than previous seq {}",
                    prev.seq
                ));
            }
        }
        out.push(ParsedMsg {
            seq,
            tid: u64_at(h, 8),
            ty: u16_at(h, 16),
            prio: u16_at(h, 18),
            version: u16_at(h, 20),
            compat: u16_at(h, 45),
            src_type: h[36],
            src_num: u64_at(h, 37),
            front,
            middle,
            data,
            complete,
        });
        pos = p;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-built frame: tid 100+seq, type 3, prio 127, version 1, compat 1, src osd.5.
    fn frame(seq: u64, front: &[u8], new_footer: bool) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&seq.to_le_bytes());
        h.extend_from_slice(&(100 + seq).to_le_bytes());
        h.extend_from_slice(&[3, 0, 127, 0, 1, 0]); // type, prio, version
        h.extend_from_slice(&(front.len() as u32).to_le_bytes());
        h.extend_from_slice(&[0; 8]); // middle_len, data_len
        h.extend_from_slice(&[0, 0, 4]); // data_off, src.type
        h.extend_from_slice(&5u64.to_le_bytes());
        h.extend_from_slice(&[1, 0, 0, 0]); // compat, reserved
        let crc = raw_crc(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        let mut f = vec![7];
        f.extend_from_slice(&h);
        f.extend_from_slice(front);
        f.extend_from_slice(&raw_crc(front).to_le_bytes());
        f.extend_from_slice(&[0; 8]); // middle and data crc (empty)
        if new_footer {
            f.extend_from_slice(&[0; 8]);
        }
        f.push(1);
        f
    }

    /// Rewrite the header crc after editing header bytes of the frame at `at`.
    fn fix_crc(b: &mut [u8], at: usize) {
        let crc = raw_crc(&b[at + 1..at + 50]);
        b[at + 50..at + 54].copy_from_slice(&crc.to_le_bytes());
    }

    fn err_of(b: &[u8]) -> String {
        parse_stream(b, true).expect_err("must be rejected")
    }

    #[test]
    fn parses_valid_stream() {
        assert_eq!(parse_stream(&[], true).unwrap(), vec![]);
        let a = frame(1, &[], true);
        assert_eq!(a.len(), 75);
        let mut s = a.clone();
        s.extend(frame(4, b"abc", true));
        let m = parse_stream(&s, true).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[1],
            ParsedMsg {
                seq: 4,
                tid: 104,
                ty: 3,
                prio: 127,
                version: 1,
                compat: 1,
                src_type: 4,
                src_num: 5,
                front: b"abc".to_vec(),
                middle: vec![],
                data: vec![],
                complete: true,
            }
        );
        let old = frame(1, b"xy", false);
        assert_eq!(old.len(), 1 + 53 + 2 + 13);
        assert_eq!(parse_stream(&old, false).unwrap()[0].front, b"xy".to_vec());
        // The wrong footer size is caught as a framing error.
        assert!(parse_stream(&old, true).is_err());
    }

    #[test]
    fn bad_tag() {
        let mut b = frame(1, &[], true);
        b[0] = 8;
        assert!(err_of(&b).starts_with("offset 0:"));
        let mut s = frame(1, &[], true);
        s.push(9);
        assert!(err_of(&s).starts_with("offset 75:"), "{}", err_of(&s));
    }

    #[test]
    fn bad_header_crc() {
        let mut b = frame(1, &[], true);
        b[9] ^= 1; // tid
        assert!(err_of(&b).contains("header crc"));
        let mut b = frame(1, &[], true);
        b[52] ^= 0x80; // crc itself
        assert!(err_of(&b).contains("header crc"));
    }

    #[test]
    fn reserved_and_data_off_must_be_zero() {
        let mut b = frame(1, &[], true);
        b[48] = 1;
        fix_crc(&mut b, 0);
        assert!(err_of(&b).contains("reserved"));
        let mut b = frame(1, &[], true);
        b[35] = 1;
        fix_crc(&mut b, 0);
        assert!(err_of(&b).contains("data_off"));
    }

    #[test]
    fn truncated() {
        let b = frame(1, b"hello", true);
        for cut in [1, 10, 53, 54, 58, b.len() - 1] {
            assert!(err_of(&b[..cut]).contains("truncated"), "cut {cut}");
        }
        let mut s = frame(1, &[], true);
        s.extend_from_slice(&frame(2, &[], true)[..60]);
        assert!(err_of(&s).starts_with("offset 75: truncated"));
    }

    #[test]
    fn bad_payload_crc_with_complete() {
        let mut b = frame(1, b"hello", true);
        b[55] ^= 1; // a front byte
        assert!(err_of(&b).contains("front crc"));
        let mut b = frame(1, &[], true);
        b[58] = 1; // middle crc of an empty middle
        assert!(err_of(&b).contains("middle crc"));
        let mut b = frame(1, &[], true);
        b[62] = 1; // data crc
        assert!(err_of(&b).contains("data crc"));
    }

    #[test]
    fn complete_footer_must_be_exact() {
        let mut b = frame(1, &[], true);
        b[74] = 3; // COMPLETE | NOCRC
        assert!(err_of(&b).contains("flags"));
        let mut b = frame(1, &[], true);
        b[66] = 1; // sig
        assert!(err_of(&b).contains("sig"));
    }

    #[test]
    fn aborted_footer() {
        // Zero payload and zero footer: accepted, complete = false.
        let mut b = frame(1, b"hello", true);
        for x in &mut b[54..] {
            *x = 0;
        }
        let m = parse_stream(&b, true).unwrap();
        assert_eq!((m[0].complete, m[0].front.clone()), (false, vec![0; 5]));
        // Aborted inside the footer: real crc prefix, then zeros.
        let mut b = frame(1, b"hello", true);
        for x in &mut b[61..] {
            *x = 0;
        }
        assert!(!parse_stream(&b, true).unwrap()[0].complete);
        // Flags cleared while the rest of the real footer was kept: a legal abort at the
        // very last byte (footer 59..80, flags at 79).
        let mut b = frame(1, b"hello", true);
        b[79] = 0;
        assert!(!parse_stream(&b, true).unwrap()[0].complete);
        // COMPLETE clear but a non-zero byte after the zeros (in sig): rejected.
        b[75] = 5;
        assert!(err_of(&b).contains("aborted"));
        // COMPLETE clear, footer garbage that is not the real crc.
        let mut b = frame(1, b"hello", true);
        for x in &mut b[54..] {
            *x = 0;
        }
        b[59] = 0xaa;
        assert!(err_of(&b).contains("aborted"));
    }

    #[test]
    fn seqs_must_increase() {
        let mut s = frame(2, &[], true);
        s.extend(frame(2, &[], true));
        assert!(err_of(&s).starts_with("offset 75:"));
        assert!(err_of(&s).contains("seq 2 not greater"));
        let mut s = frame(3, &[], true);
        s.extend(frame(2, &[], true));
        assert!(err_of(&s).contains("seq 2 not greater than previous seq 3"));
    }
}
