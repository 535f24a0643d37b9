//! Strict parser for a msgr2.1 (crc mode) stream made only of MESSAGE frames, as in a
//! `replay --protocol v2` connection file.
//!
//! Standalone on purpose (does not use `v2oracle`), so it checks the model's output too.
//! Every frame: tag 17; 1 <= nseg <= 4; slot 0 = (41, 8); slot i < nseg has segment i's
//! alignment (8, 8, 8, 4096) and slot nseg-1 a non-zero length; slots >= nseg all zero; the
//! two reserved bytes zero; preamble crc (seed 0) matches; header2 crc (seed !0) matches and
//! its data_pre_padding_len, data_off, ack_seq, flags and reserved are 0; if nseg > 1 an
//! epilogue whose late_status is 0x0E (complete) or 0x01 (aborted) and whose crcs are
//! crc32c(!0, segment as received) for 1 <= i < nseg and 0 above; seqs strictly increase.

const TAG_MESSAGE: u8 = 17;
const PREAMBLE_LEN: usize = 32;
const HEADER2_LEN: usize = 41;
const HEAD_LEN: usize = PREAMBLE_LEN + HEADER2_LEN + 4;
const EPILOGUE_LEN: usize = 13;
const ALIGNMENTS: [u16; 4] = [8, 8, 8, 4096];
const LATE_COMPLETE: u8 = 0x0E;
const LATE_ABORTED: u8 = 0x01;

/// One MESSAGE frame as found on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the frame in the stream and its length.
    pub offset: usize,
    pub len: usize,
    pub nseg: usize,
    pub seq: u64,
    pub tid: u64,
    pub ty: u16,
    pub prio: u16,
    pub version: u16,
    pub compat: u16,
    pub front: Vec<u8>,
    pub middle: Vec<u8>,
    pub data: Vec<u8>,
    /// late_status was ABORTED (a header-only frame, with no epilogue, is never aborted).
    pub aborted: bool,
}

/// A stream whose last frame may be cut short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutStream {
    pub frames: Vec<Frame>,
    /// Bytes of the cut final frame (0 if the stream ends on a frame boundary).
    pub tail: usize,
}

fn crc(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
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

enum Parsed {
    Whole(Frame),
    /// The stream ends inside this frame after this many (valid so far) bytes.
    Cut(usize),
}

/// Checks the 32-byte preamble; returns (nseg, segment lengths).
fn check_preamble(p: &[u8]) -> Result<(usize, [u32; 4]), String> {
    if p[0] != TAG_MESSAGE {
        return Err(format!("tag {} is not MESSAGE ({TAG_MESSAGE})", p[0]));
    }
    let want = crc(0, &p[..28]);
    let got = u32_at(p, 28);
    if got != want {
        return Err(format!("preamble crc {got:#010x}, expected {want:#010x}"));
    }
    let nseg = p[1] as usize;
    if !(1..=4).contains(&nseg) {
        return Err(format!("nseg {nseg} not in 1..=4"));
    }
    let mut lens = [0u32; 4];
    for i in 0..4 {
        let len = u32_at(p, 2 + 6 * i);
        let align = u16_at(p, 6 + 6 * i);
        if i < nseg {
            if align != ALIGNMENTS[i] {
                return Err(format!(
                    "segment {i} alignment {align}, expected {}",
                    ALIGNMENTS[i]
                ));
            }
        } else if (len, align) != (0, 0) {
            return Err(format!(
                "slot {i} >= nseg {nseg} is ({len}, {align}), not zero"
            ));
        }
        lens[i] = len;
    }
    if lens[0] != HEADER2_LEN as u32 {
        return Err(format!(
            "segment 0 length {}, expected {HEADER2_LEN}",
            lens[0]
        ));
    }
    if lens[nseg - 1] == 0 {
        return Err(format!(
            "nseg {nseg} but segment {} is empty (nseg must end at the last non-empty one)",
            nseg - 1
        ));
    }
    if u16_at(p, 26) != 0 {
        return Err("preamble reserved bytes are not zero".to_string());
    }
    Ok((nseg, lens))
}

/// Checks header2 + its crc (45 bytes).
fn check_header(h: &[u8]) -> Result<(), String> {
    let want = crc(0xFFFF_FFFF, &h[..HEADER2_LEN]);
    let got = u32_at(h, HEADER2_LEN);
    if got != want {
        return Err(format!("header2 crc {got:#010x}, expected {want:#010x}"));
    }
    let checks: [(&str, u64); 5] = [
        ("data_pre_padding_len", u64::from(u32_at(h, 22))),
        ("data_off", u64::from(u16_at(h, 26))),
        ("ack_seq", u64_at(h, 28)),
        ("flags", u64::from(h[36])),
        ("reserved", u64::from(u16_at(h, 39))),
    ];
    for (name, v) in checks {
        if v != 0 {
            return Err(format!("header2 {name} = {v}, expected 0"));
        }
    }
    Ok(())
}

fn parse_frame(bytes: &[u8], start: usize) -> Result<Parsed, String> {
    let avail = bytes.len() - start;
    let b = &bytes[start..];
    if b[0] != TAG_MESSAGE {
        return Err(format!("tag {} is not MESSAGE ({TAG_MESSAGE})", b[0]));
    }
    if avail < PREAMBLE_LEN {
        return Ok(Parsed::Cut(avail));
    }
    let (nseg, lens) = check_preamble(&b[..PREAMBLE_LEN])?;
    if avail < HEAD_LEN {
        return Ok(Parsed::Cut(avail));
    }
    let h = &b[PREAMBLE_LEN..HEAD_LEN];
    check_header(h)?;
    let payload: u64 = lens[1..].iter().map(|&l| u64::from(l)).sum();
    let total = HEAD_LEN as u64 + payload + if nseg > 1 { EPILOGUE_LEN as u64 } else { 0 };
    if (avail as u64) < total {
        return Ok(Parsed::Cut(avail));
    }
    let total = total as usize;
    let mut p = HEAD_LEN;
    let mut segs: Vec<Vec<u8>> = Vec::new();
    for &l in &lens[1..] {
        segs.push(b[p..p + l as usize].to_vec());
        p += l as usize;
    }
    let mut aborted = false;
    if nseg > 1 {
        let e = &b[p..p + EPILOGUE_LEN];
        aborted = match e[0] {
            LATE_COMPLETE => false,
            LATE_ABORTED => true,
            s => return Err(format!("late_status {s:#04x} is neither 0x0e nor 0x01")),
        };
        for i in 1..4 {
            let got = u32_at(e, 1 + 4 * (i - 1));
            let want = if i < nseg {
                crc(0xFFFF_FFFF, &segs[i - 1])
            } else {
                0
            };
            if got != want {
                return Err(format!(
                    "epilogue crc of segment {i} {got:#010x}, expected {want:#010x}"
                ));
            }
        }
        p += EPILOGUE_LEN;
    }
    assert_eq!(p, total);
    let [front, middle, data]: [Vec<u8>; 3] = segs.try_into().expect("three segments");
    Ok(Parsed::Whole(Frame {
        offset: start,
        len: total,
        nseg,
        seq: u64_at(h, 0),
        tid: u64_at(h, 8),
        ty: u16_at(h, 16),
        prio: u16_at(h, 18),
        version: u16_at(h, 20),
        compat: u16_at(h, 37),
        front,
        middle,
        data,
        aborted,
    }))
}

fn parse(bytes: &[u8], allow_cut: bool) -> Result<CutStream, String> {
    let mut frames: Vec<Frame> = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        match parse_frame(bytes, pos).map_err(|e| format!("offset {pos}: {e}"))? {
            Parsed::Whole(f) => {
                if let Some(prev) = frames.last() {
                    if f.seq <= prev.seq {
                        return Err(format!(
                            "offset {pos}: seq {} not greater than previous seq {}",
                            f.seq, prev.seq
                        ));
                    }
                }
                pos += f.len;
                frames.push(f);
            }
            Parsed::Cut(n) if allow_cut => return Ok(CutStream { frames, tail: n }),
            Parsed::Cut(n) => {
                return Err(format!(
                    "offset {pos}: truncated frame ({n} bytes left in the stream)"
                ))
            }
        }
    }
    Ok(CutStream { frames, tail: 0 })
}

/// A whole stream: must end exactly on a frame boundary.
pub fn parse_stream(bytes: &[u8]) -> Result<Vec<Frame>, String> {
    parse(bytes, false).map(|s| s.frames)
}

/// A connection that may end inside a frame: whole frames are checked fully, the cut one
/// as far as its bytes go (tag, then preamble once 32 bytes are there, header2 once 77).
pub fn parse_cut(bytes: &[u8]) -> Result<CutStream, String> {
    parse(bytes, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-built frame with tid 100+seq, type 3, prio 127, version 1, compat 1.
    fn frame(seq: u64, segs: [&[u8]; 3], late: u8) -> Vec<u8> {
        let lens = [
            41u32,
            segs[0].len() as u32,
            segs[1].len() as u32,
            segs[2].len() as u32,
        ];
        let nseg = 1 + (0..4).rev().find(|&i| lens[i] != 0).unwrap();
        let mut f = vec![17, nseg as u8];
        for i in 0..4 {
            if i < nseg {
                f.extend_from_slice(&lens[i].to_le_bytes());
                f.extend_from_slice(&[8u16, 8, 8, 4096][i].to_le_bytes());
            } else {
                f.extend_from_slice(&[0; 6]);
            }
        }
        f.extend_from_slice(&[0, 0]);
        let c = crc(0, &f);
        f.extend_from_slice(&c.to_le_bytes());
        let mut h = Vec::new();
        h.extend_from_slice(&seq.to_le_bytes());
        h.extend_from_slice(&(100 + seq).to_le_bytes());
        h.extend_from_slice(&[3, 0, 127, 0, 1, 0]);
        h.extend_from_slice(&[0; 4 + 2 + 8 + 1]);
        h.extend_from_slice(&[1, 0, 0, 0]);
        assert_eq!(h.len(), 41);
        f.extend_from_slice(&h);
        f.extend_from_slice(&crc(!0, &h).to_le_bytes());
        for s in segs {
            f.extend_from_slice(s);
        }
        if nseg > 1 {
            f.push(late);
            for (i, s) in segs.iter().enumerate() {
                let c = if i + 1 < nseg { crc(!0, s) } else { 0 };
                f.extend_from_slice(&c.to_le_bytes());
            }
        }
        f
    }

    fn fix_preamble(b: &mut [u8], at: usize) {
        let c = crc(0, &b[at..at + 28]);
        b[at + 28..at + 32].copy_from_slice(&c.to_le_bytes());
    }

    fn fix_header(b: &mut [u8], at: usize) {
        let c = crc(!0, &b[at + 32..at + 73]);
        b[at + 73..at + 77].copy_from_slice(&c.to_le_bytes());
    }

    fn err_of(b: &[u8]) -> String {
        parse_stream(b).expect_err("must be rejected")
    }

    #[test]
    fn valid_streams() {
        assert_eq!(parse_stream(&[]).unwrap(), vec![]);
        let a = frame(1, [&[], &[], &[]], 0x0e);
        assert_eq!(a.len(), 77);
        let b = frame(2, [b"abc", &[], b"xy"], 0x0e);
        assert_eq!(b.len(), 77 + 5 + 13);
        let c = frame(5, [&[], b"m", &[]], 0x01);
        let mut s = a.clone();
        s.extend(&b);
        s.extend(&c);
        let f = parse_stream(&s).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(
            (f[0].nseg, f[0].aborted, f[0].seq, f[0].tid),
            (1, false, 1, 101)
        );
        assert_eq!((f[1].nseg, f[1].offset, f[1].len), (4, 77, 95));
        assert_eq!(
            (f[1].front.as_slice(), f[1].data.as_slice()),
            (&b"abc"[..], &b"xy"[..])
        );
        assert!(f[1].middle.is_empty());
        assert_eq!(
            (f[2].nseg, f[2].aborted, f[2].middle.clone()),
            (3, true, b"m".to_vec())
        );
        assert_eq!(
            (f[2].ty, f[2].prio, f[2].version, f[2].compat),
            (3, 127, 1, 1)
        );
        // A cut stream: whole frames and the cut tail's length.
        for cut in [1, 31, 32, 76, 77, 94] {
            let mut t = a.clone();
            t.extend_from_slice(&b[..cut]);
            let cs = parse_cut(&t).unwrap();
            assert_eq!((cs.frames.len(), cs.tail), (1, cut), "cut {cut}");
            assert!(err_of(&t).contains("truncated"), "cut {cut}");
        }
    }

    #[test]
    fn preamble_rules() {
        let good = frame(1, [b"abc", &[], b"xy"], 0x0e);
        let mut b = good.clone();
        b[0] = 16;
        fix_preamble(&mut b, 0);
        assert!(err_of(&b).contains("tag"));
        // preamble crc
        let mut b = good.clone();
        b[30] ^= 1;
        assert!(err_of(&b).contains("preamble crc"));
        // nseg too large / zero
        for n in [0u8, 5] {
            let mut b = good.clone();
            b[1] = n;
            fix_preamble(&mut b, 0);
            assert!(err_of(&b).contains("nseg"), "{n}");
        }
        // middle slot alignment must be 8 even when empty
        let mut b = good.clone();
        b[6 + 12] = 0;
        fix_preamble(&mut b, 0);
        assert!(err_of(&b).contains("alignment"), "{}", err_of(&b));
        // data alignment 4096
        let mut b = good.clone();
        b[6 + 18..8 + 18].copy_from_slice(&8u16.to_le_bytes());
        fix_preamble(&mut b, 0);
        assert!(err_of(&b).contains("alignment"));
        // header2 length
        let mut b = good.clone();
        b[2] = 40;
        fix_preamble(&mut b, 0);
        assert!(parse_stream(&b).is_err());
        // reserved
        let mut b = good.clone();
        b[27] = 1;
        fix_preamble(&mut b, 0);
        assert!(err_of(&b).contains("reserved"));
        // a slot >= nseg that is not zero
        let mut h = frame(1, [b"abc", &[], &[]], 0x0e);
        assert_eq!(h[1], 2);
        h[6 + 12] = 8; // middle alignment in an unused slot
        fix_preamble(&mut h, 0);
        assert!(err_of(&h).contains("not zero"));
        // nseg larger than needed (last segment empty)
        let mut h = frame(1, [b"abc", &[], &[]], 0x0e);
        h[1] = 3;
        h[6 + 12..8 + 12].copy_from_slice(&8u16.to_le_bytes());
        fix_preamble(&mut h, 0);
        assert!(err_of(&h).contains("empty"));
    }

    #[test]
    fn header_rules() {
        let good = frame(1, [b"abc", &[], &[]], 0x0e);
        let mut b = good.clone();
        b[40] ^= 1; // tid
        assert!(err_of(&b).contains("header2 crc"));
        for (at, name) in [
            (32 + 22, "data_pre_padding_len"),
            (32 + 26, "data_off"),
            (32 + 28, "ack_seq"),
            (32 + 36, "flags"),
            (32 + 39, "reserved"),
        ] {
            let mut b = good.clone();
            b[at] = 1;
            fix_header(&mut b, 0);
            assert!(err_of(&b).contains(name), "{name}: {}", err_of(&b));
        }
    }

    #[test]
    fn epilogue_rules() {
        let good = frame(1, [b"abc", &[], b"xy"], 0x0e);
        let e = good.len() - 13;
        let mut b = good.clone();
        b[e] = 0x0f;
        assert!(err_of(&b).contains("late_status"));
        let mut b = good.clone();
        b[77] ^= 1; // a front byte
        assert!(err_of(&b).contains("segment 1"));
        let mut b = good.clone();
        b[e + 5] ^= 1; // middle crc (must be 0xffffffff)
        assert!(err_of(&b).contains("segment 2"));
        // crc of a segment >= nseg must be 0
        let mut b = frame(1, [b"abc", &[], &[]], 0x0e);
        let e = b.len() - 13;
        assert_eq!(&b[e + 5..], &[0; 8]);
        b[e + 9] = 1;
        assert!(err_of(&b).contains("segment 3"));
        // aborted with crcs over the bytes as received (zeros) is fine
        let mut b = frame(1, [b"abc", &[], b"xy"], 0x01);
        assert!(parse_stream(&b).unwrap()[0].aborted);
        b[78] = 0;
        assert!(err_of(&b).contains("segment 1"));
    }

    #[test]
    fn seqs_must_increase() {
        let mut s = frame(2, [&[], &[], &[]], 0);
        s.extend(frame(2, [b"a", &[], &[]], 0x0e));
        assert!(err_of(&s).starts_with("offset 77:"));
        assert!(err_of(&s).contains("seq 2 not greater"));
    }
}
