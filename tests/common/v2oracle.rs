//! Independent reference model of `replay --protocol v2` (msgr2.1 crc mode, MESSAGE frames
//! only), written from the specification alone.
//!
//! Like the v1 model (`oracle.rs`), every frame is built in full when its first byte is
//! written and the stream is a plain byte copy from that buffer. The session rules (seq at
//! the first written byte, FIFO, ack, reset, requeue order) are the v1 model's; only the
//! frame layout and the revoke of a partly written frame differ:
//!
//! * nseg = 1 + index of the last non-empty segment of (header2, front, middle, data);
//! * frame = preamble (32) + header2 (41) + header2 crc (4) + segments 1..nseg + epilogue
//!   (13, only when nseg > 1);
//! * revoke of a partly written frame: if nseg > 1 and no epilogue byte is written yet, the
//!   rest of the head goes out unchanged, remaining segment bytes become zeros, and the
//!   epilogue says ABORTED with crcs over the bytes as sent; otherwise (header-only, or the
//!   epilogue has started) the frame completes unchanged. Either way it is never resent.
//!
//! The script language (`Ev`, `parse_script`, `render_script`, `section_bytes`) is shared
//! with the v1 model; `features` and `entity` change nothing here.

use std::collections::{HashSet, VecDeque};

#[allow(unused_imports)]
pub use super::oracle::{parse_script, render_script, section_bytes, Ev, MsgSpec};

/// Frame tag of MESSAGE.
pub const TAG_MESSAGE: u8 = 17;
pub const PREAMBLE_LEN: usize = 32;
/// `ceph_msg_header2`.
pub const HEADER2_LEN: usize = 41;
/// Preamble + header2 + its crc.
pub const HEAD_LEN: usize = PREAMBLE_LEN + HEADER2_LEN + 4;
/// late_status + 3 crcs.
pub const EPILOGUE_LEN: usize = 13;
/// Alignment of segments 0..4 (header2, front, middle, data).
pub const ALIGNMENTS: [u16; 4] = [8, 8, 8, 4096];
pub const LATE_COMPLETE: u8 = 0x0E;
pub const LATE_ABORTED: u8 = 0x01;

/// Ceph's raw CRC32C (no inversion), computed with the `crc32c` crate directly.
pub fn crc(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

/// Lengths of the four segments: header2, front, middle, data.
pub fn segment_lens(spec: &MsgSpec) -> [u32; 4] {
    [HEADER2_LEN as u32, spec.front, spec.middle, spec.data]
}

/// 1 + the index of the last non-empty segment (header2 is never empty).
pub fn nseg(spec: &MsgSpec) -> usize {
    let lens = segment_lens(spec);
    1 + (0..4)
        .rev()
        .find(|&i| lens[i] != 0)
        .expect("header2 is non-empty")
}

/// Offset of the epilogue in the frame (= frame length when there is none).
pub fn epilogue_offset(spec: &MsgSpec) -> usize {
    HEAD_LEN + spec.front as usize + spec.middle as usize + spec.data as usize
}

/// Total frame length.
pub fn frame_len(spec: &MsgSpec) -> usize {
    epilogue_offset(spec) + if nseg(spec) > 1 { EPILOGUE_LEN } else { 0 }
}

pub fn preamble(spec: &MsgSpec) -> Vec<u8> {
    let n = nseg(spec);
    let lens = segment_lens(spec);
    let mut p = vec![TAG_MESSAGE, n as u8];
    for i in 0..4 {
        let (len, align) = if i < n {
            (lens[i], ALIGNMENTS[i])
        } else {
            (0, 0)
        };
        p.extend_from_slice(&len.to_le_bytes());
        p.extend_from_slice(&align.to_le_bytes());
    }
    p.extend_from_slice(&[0, 0]);
    assert_eq!(p.len(), 28);
    let c = crc(0, &p);
    p.extend_from_slice(&c.to_le_bytes());
    assert_eq!(p.len(), PREAMBLE_LEN);
    p
}

pub fn header2(spec: &MsgSpec, seq: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER2_LEN);
    h.extend_from_slice(&seq.to_le_bytes());
    h.extend_from_slice(&spec.tid.to_le_bytes());
    h.extend_from_slice(&spec.ty.to_le_bytes());
    h.extend_from_slice(&spec.prio.to_le_bytes());
    h.extend_from_slice(&spec.version.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // data_pre_padding_len
    h.extend_from_slice(&0u16.to_le_bytes()); // data_off
    h.extend_from_slice(&0u64.to_le_bytes()); // ack_seq
    h.push(0); // flags
    h.extend_from_slice(&spec.compat.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // reserved
    assert_eq!(h.len(), HEADER2_LEN);
    h
}

/// Epilogue for segments 1..4 as sent (`segs[0]` = front, ...).
pub fn epilogue(status: u8, segs: [&[u8]; 3], nseg: usize) -> Vec<u8> {
    let mut e = vec![status];
    for (i, s) in segs.iter().enumerate() {
        let c = if i + 1 < nseg { crc(0xFFFF_FFFF, s) } else { 0 };
        e.extend_from_slice(&c.to_le_bytes());
    }
    e
}

/// The complete, un-aborted frame of one message.
pub fn encode_frame(spec: &MsgSpec, seq: u64) -> Vec<u8> {
    let front = section_bytes(spec.id, 0, spec.front);
    let middle = section_bytes(spec.id, 1, spec.middle);
    let data = section_bytes(spec.id, 2, spec.data);
    let h = header2(spec, seq);
    let mut out = preamble(spec);
    out.extend_from_slice(&h);
    out.extend_from_slice(&crc(0xFFFF_FFFF, &h).to_le_bytes());
    out.extend_from_slice(&front);
    out.extend_from_slice(&middle);
    out.extend_from_slice(&data);
    let n = nseg(spec);
    if n > 1 {
        out.extend(epilogue(LATE_COMPLETE, [&front, &middle, &data], n));
    }
    assert_eq!(out.len(), frame_len(spec));
    out
}

/// Turns a complete frame into the aborted frame a revoke after `written` bytes produces
/// (case 2 only: nseg > 1, `1 <= written <= epilogue offset`).
pub fn abort_frame(spec: &MsgSpec, bytes: &mut [u8], written: usize) {
    let n = nseg(spec);
    let epi = epilogue_offset(spec);
    assert!(n > 1 && written >= 1 && written <= epi);
    for b in &mut bytes[written.max(HEAD_LEN)..epi] {
        *b = 0;
    }
    let f = HEAD_LEN + spec.front as usize;
    let m = f + spec.middle as usize;
    let e = {
        let (front, middle, data) = (&bytes[HEAD_LEN..f], &bytes[f..m], &bytes[m..epi]);
        epilogue(LATE_ABORTED, [front, middle, data], n)
    };
    bytes[epi..].copy_from_slice(&e);
}

/// What a revoke did, per the spec's four cases (`None`: nothing, e.g. unknown id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeCase {
    /// 1: nothing written on this connection; removed.
    Removed,
    /// 2: aborted; the rest of the segments as zeros, epilogue ABORTED.
    Aborted,
    /// 3: too late to abort; the frame completes unchanged.
    Completes,
    /// 4: fully written; dropped from the resend list.
    Dropped,
}

struct Msg {
    spec: MsgSpec,
    seq: Option<u64>,
    /// Revoked, acked away, aborted or completing-after-revoke: never written again.
    gone: bool,
}

struct Current {
    idx: usize,
    bytes: Vec<u8>,
    off: usize,
}

struct Model {
    msgs: Vec<Msg>,
    out_seq: u64,
    acked: u64,
    queue: VecDeque<usize>,
    cur: Option<Current>,
    sent: Vec<usize>,
    conns: Vec<Vec<u8>>,
    any_queued: bool,
    ids: HashSet<u64>,
    revokes: Vec<(u64, Option<RevokeCase>)>,
}

impl Model {
    fn new() -> Self {
        Model {
            msgs: Vec::new(),
            out_seq: 0,
            acked: 0,
            queue: VecDeque::new(),
            cur: None,
            sent: Vec::new(),
            conns: vec![Vec::new()],
            any_queued: false,
            ids: HashSet::new(),
            revokes: Vec::new(),
        }
    }

    fn queue_msg(&mut self, spec: MsgSpec) {
        assert!(
            self.ids.insert(spec.id),
            "message id {} queued twice",
            spec.id
        );
        self.any_queued = true;
        self.msgs.push(Msg {
            spec,
            seq: None,
            gone: false,
        });
        self.queue.push_back(self.msgs.len() - 1);
    }

    fn write(&mut self, limit: Option<u64>) {
        let mut budget = limit.unwrap_or(u64::MAX);
        while budget > 0 {
            if self.cur.is_none() {
                let Some(idx) = self.queue.pop_front() else {
                    break;
                };
                let seq = match self.msgs[idx].seq {
                    Some(s) => s,
                    None => {
                        self.out_seq += 1;
                        self.msgs[idx].seq = Some(self.out_seq);
                        self.out_seq
                    }
                };
                let bytes = encode_frame(&self.msgs[idx].spec, seq);
                self.cur = Some(Current { idx, bytes, off: 0 });
            }
            let cur = self.cur.as_mut().expect("set above");
            let n = ((cur.bytes.len() - cur.off) as u64).min(budget) as usize;
            self.conns
                .last_mut()
                .expect("a connection")
                .extend_from_slice(&cur.bytes[cur.off..cur.off + n]);
            cur.off += n;
            budget -= n as u64;
            if cur.off == cur.bytes.len() {
                self.finish_current();
            }
        }
    }

    fn finish_current(&mut self) {
        let Some(cur) = self.cur.take() else { return };
        let msg = &mut self.msgs[cur.idx];
        if msg.gone {
            return;
        }
        if msg.seq.expect("written => seq") <= self.acked {
            msg.gone = true;
        } else {
            self.sent.push(cur.idx);
        }
    }

    fn revoke(&mut self, id: u64) -> Option<RevokeCase> {
        let idx = self.msgs.iter().position(|m| m.spec.id == id)?;
        if self.msgs[idx].gone {
            return None;
        }
        if let Some(pos) = self.queue.iter().position(|&i| i == idx) {
            self.queue.remove(pos);
            self.msgs[idx].gone = true;
            Some(RevokeCase::Removed)
        } else if let Some(cur) = self.cur.as_mut().filter(|c| c.idx == idx) {
            self.msgs[idx].gone = true;
            let spec = self.msgs[idx].spec;
            if nseg(&spec) == 1 || cur.off > epilogue_offset(&spec) {
                Some(RevokeCase::Completes)
            } else {
                abort_frame(&spec, &mut cur.bytes, cur.off);
                Some(RevokeCase::Aborted)
            }
        } else if let Some(pos) = self.sent.iter().position(|&i| i == idx) {
            self.sent.remove(pos);
            self.msgs[idx].gone = true;
            Some(RevokeCase::Dropped)
        } else {
            None
        }
    }

    fn ack(&mut self, n: u64) {
        self.acked = self.acked.max(n);
        let acked = self.acked;
        let msgs = &mut self.msgs;
        let mut keep = |idx: &usize| match msgs[*idx].seq {
            Some(seq) if seq <= acked => {
                msgs[*idx].gone = true;
                false
            }
            _ => true,
        };
        self.queue.retain(&mut keep);
        self.sent.retain(&mut keep);
    }

    fn reset(&mut self) {
        let mut requeue: Vec<usize> = std::mem::take(&mut self.sent);
        if let Some(cur) = self.cur.take() {
            if !self.msgs[cur.idx].gone {
                requeue.push(cur.idx);
            }
        }
        let mut fresh = Vec::new();
        for idx in self.queue.drain(..) {
            if self.msgs[idx].seq.is_some() {
                requeue.push(idx);
            } else {
                fresh.push(idx);
            }
        }
        let acked = self.acked;
        requeue.retain(|&idx| {
            if self.msgs[idx].seq.expect("requeued => seq") <= acked {
                self.msgs[idx].gone = true;
                false
            } else {
                true
            }
        });
        requeue.sort_by_key(|&idx| self.msgs[idx].seq);
        self.queue = requeue.into_iter().chain(fresh).collect();
        self.conns.push(Vec::new());
    }
}

/// Everything the model knows at the end of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOut {
    /// Bytes on each connection (at least one).
    pub conns: Vec<Vec<u8>>,
    /// (id, seq, frame length) of every queued message, in queue order.
    pub msgs: Vec<(u64, Option<u64>, u64)>,
    /// Every revoke line: (id, what it did).
    pub revokes: Vec<(u64, Option<RevokeCase>)>,
}

/// Run a script; panics on one `parse_script` would reject.
pub fn run_full(evs: &[Ev]) -> RunOut {
    let mut m = Model::new();
    for ev in evs {
        match *ev {
            Ev::Features(_) | Ev::Entity { .. } => {
                assert!(!m.any_queued, "features/entity after the first queue");
            }
            Ev::Queue {
                id,
                ty,
                tid,
                prio,
                version,
                compat,
                front,
                middle,
                data,
            } => m.queue_msg(MsgSpec {
                id,
                ty,
                tid,
                prio,
                version,
                compat,
                front,
                middle,
                data,
            }),
            Ev::Write(limit) => m.write(limit),
            Ev::Revoke(id) => {
                let c = m.revoke(id);
                m.revokes.push((id, c));
            }
            Ev::Ack(n) => m.ack(n),
            Ev::Reset => m.reset(),
        }
    }
    RunOut {
        msgs: m
            .msgs
            .iter()
            .map(|x| (x.spec.id, x.seq, frame_len(&x.spec) as u64))
            .collect(),
        conns: m.conns,
        revokes: m.revokes,
    }
}

/// The bytes of each connection.
pub fn run(evs: &[Ev]) -> Vec<Vec<u8>> {
    run_full(evs).conns
}

#[cfg(test)]
mod tests {
    use super::super::v2parse::{parse_cut, parse_stream, Frame};
    use super::*;

    fn conns(lines: &[&str]) -> Vec<Vec<u8>> {
        run(&parse_script(&lines.join("\n")).expect("valid script"))
    }

    fn frames(bytes: &[u8]) -> Vec<Frame> {
        parse_stream(bytes).expect("model output parses")
    }

    fn seq_tid(bytes: &[u8]) -> Vec<(u64, u64)> {
        frames(bytes).iter().map(|f| (f.seq, f.tid)).collect()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn spec(id: u64, front: u32, middle: u32, data: u32) -> MsgSpec {
        MsgSpec {
            id,
            ty: 0,
            tid: id,
            prio: 127,
            version: 1,
            compat: 1,
            front,
            middle,
            data,
        }
    }

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    // Golden frames below were computed by a separate bit-by-bit crc32c written in Python
    // from the spec's table (not from this file).
    const GOLD_HEADER_ONLY: &str = "11012900000008000000000000000000000000000000000000000000\
        af9604f00100000000000000010000000000000000007f00010000000000000000000000000000000001\
        000000354508c4";
    const GOLD_FRONT3_ID2: &str = "1102290000000800030000000800000000000000000000000000\
        0000af1666c20100000000000000020000000000000000007f000100000000000000000000000000000000\
        010000004438432a0e0f100ec5595c810000000000000000";
    const GOLD_FRONT2_DATA3_ID3: &str = "110429000000080002000000080000000000080003000000\
        00100000cee972d90100000000000000030000000000000000007f00010000000000000000000000000000\
        0000010000006b137a7015162f30310e80a08c5affffffff0c25b8b0";

    #[test]
    fn crc_vectors() {
        assert_eq!(crc(0, b"123456789"), 0x58E3_FA20);
        assert_eq!(crc(0xFFFF_FFFF, b"123456789"), 0x1CF9_6D7C);
        assert_eq!(crc(0xFFFF_FFFF, &[]), 0xFFFF_FFFF);
        assert_eq!(
            crc(0xFFFF_FFFF, b"123456789"),
            ceph_msgr::wire::ceph_crc32c(0xFFFF_FFFF, b"123456789")
        );
    }

    #[test]
    fn header_only_frame_is_77_bytes_no_epilogue() {
        let c = conns(&["queue 1", "write all"]);
        let b = &c[0];
        assert_eq!(b, &hex(GOLD_HEADER_ONLY));
        assert_eq!(b.len(), 77);
        assert_eq!(&b[..2], &[17, 1]);
        assert_eq!(&b[2..8], &[41, 0, 0, 0, 8, 0]); // slot 0: (41, 8)
        assert_eq!(&b[8..28], &[0; 20]); // slots 1..3 zero, 2 reserved bytes
        assert_eq!(le32(b, 28), crc(0, &b[..28]));
        assert_eq!(&b[32..40], &1u64.to_le_bytes()); // seq
        assert_eq!(&b[40..48], &1u64.to_le_bytes()); // tid = id
        assert_eq!(&b[48..54], &[0, 0, 127, 0, 1, 0]); // type, prio, version
        assert_eq!(&b[54..69], &[0; 15]); // padding len, data_off, ack_seq, flags
        assert_eq!(&b[69..73], &[1, 0, 0, 0]); // compat, reserved
        assert_eq!(le32(b, 73), crc(!0, &b[32..73]));
        let f = frames(b);
        assert_eq!((f[0].nseg, f[0].aborted), (1, false));
    }

    #[test]
    fn front_only_frame() {
        let c = conns(&["queue 2 front=3", "write all"]);
        let b = &c[0];
        assert_eq!(b, &hex(GOLD_FRONT3_ID2));
        assert_eq!(b.len(), 77 + 3 + 13);
        assert_eq!(&b[..2], &[17, 2]);
        assert_eq!(&b[8..14], &[3, 0, 0, 0, 8, 0]); // slot 1: (3, 8)
        assert_eq!(&b[14..26], &[0; 12]);
        assert_eq!(&b[77..80], &[14, 15, 16]); // 2*7 = 14
        assert_eq!(b[80], 0x0E);
        assert_eq!(le32(b, 81), crc(!0, &[14, 15, 16]));
        assert_eq!(&b[85..93], &[0; 8]);
    }

    #[test]
    fn front_and_data_with_empty_middle() {
        let c = conns(&["queue 3 front=2 data=3", "write all"]);
        let b = &c[0];
        assert_eq!(b, &hex(GOLD_FRONT2_DATA3_ID3));
        assert_eq!(b[1], 4);
        assert_eq!(&b[14..20], &[0, 0, 0, 0, 8, 0]); // middle slot (0, 8)
        assert_eq!(&b[20..26], &[3, 0, 0, 0, 0, 0x10]); // data slot (3, 4096)
        assert_eq!(&b[77..82], &[21, 22, 47, 48, 49]); // front 21.., data 21+26..
        assert_eq!(le32(b, 83 + 4), 0xFFFF_FFFF);
        let f = frames(b);
        assert_eq!(f[0].nseg, 4);
        assert!(f[0].middle.is_empty());
    }

    #[test]
    fn all_four_segments_by_hand() {
        let c = conns(&[
            "features 0 # ignored",
            "entity osd.3",
            "queue 5 type=9 tid=77 prio=3 version=4 compat=2 front=4 middle=2 data=5",
            "write all",
        ]);
        let b = &c[0];
        let (fr, mi, da): (Vec<u8>, Vec<u8>, Vec<u8>) =
            ((35..39).collect(), (48..50).collect(), (61..66).collect());
        let mut want = vec![17u8, 4];
        for (len, al) in [(41u32, 8u16), (4, 8), (2, 8), (5, 4096)] {
            want.extend_from_slice(&len.to_le_bytes());
            want.extend_from_slice(&al.to_le_bytes());
        }
        want.extend_from_slice(&[0, 0]);
        let pc = crc(0, &want);
        want.extend_from_slice(&pc.to_le_bytes());
        let mut h = vec![];
        h.extend_from_slice(&1u64.to_le_bytes());
        h.extend_from_slice(&77u64.to_le_bytes());
        h.extend_from_slice(&[9, 0, 3, 0, 4, 0]);
        h.extend_from_slice(&[0; 15]);
        h.extend_from_slice(&[2, 0, 0, 0]);
        want.extend_from_slice(&h);
        want.extend_from_slice(&crc(!0, &h).to_le_bytes());
        want.extend(&fr);
        want.extend(&mi);
        want.extend(&da);
        want.push(0x0E);
        for s in [&fr, &mi, &da] {
            want.extend_from_slice(&crc(!0, s).to_le_bytes());
        }
        assert_eq!(b, &want);
        // features/entity change nothing.
        let plain = conns(&[
            "queue 5 type=9 tid=77 prio=3 version=4 compat=2 front=4 middle=2 data=5",
            "write all",
        ]);
        assert_eq!(&plain[0], b);
        // middle only: nseg 3, empty front slot (0, 8) with crc 0xffffffff.
        let m = &conns(&["queue 1 middle=1", "write all"])[0];
        assert_eq!((m[1], &m[8..14]), (3, &[0u8, 0, 0, 0, 8, 0][..]));
        assert_eq!(&m[20..26], &[0; 6]);
        assert_eq!(le32(m, 79), 0xFFFF_FFFF);
        assert_eq!(le32(m, 87), 0);
    }

    #[test]
    fn partial_writes_concatenate() {
        let whole = conns(&["queue 1 front=10", "queue 2 data=7", "write all"]);
        let split = conns(&[
            "queue 1 front=10",
            "queue 2 data=7",
            "write 1",
            "write 0",
            "write 60",
            "write 30",
            "write 5",
            "write 1000",
        ]);
        assert_eq!(whole, split);
        assert_eq!(whole[0].len(), 100 + 97);
        assert_eq!(seq_tid(&whole[0]), vec![(1, 1), (2, 2)]);
    }

    #[test]
    fn revoke_case1_unstarted_consumes_no_seq() {
        let c = conns(&[
            "queue 1",
            "queue 2 front=5",
            "revoke 2",
            "write all",
            "queue 3",
            "write 0",
            "revoke 3",
            "queue 4",
            "write all",
        ]);
        assert_eq!(seq_tid(&c[0]), vec![(1, 1), (2, 4)]);
        let r = run_full(&parse_script("queue 1\nrevoke 1\nrevoke 1\nrevoke 9").unwrap());
        assert_eq!(
            r.revokes,
            vec![(1, Some(RevokeCase::Removed)), (1, None), (9, None)]
        );
        assert_eq!(r.msgs, vec![(1, None, 77)]);
    }

    #[test]
    fn revoke_case2_in_head_front_data_and_at_epilogue() {
        // front=10 data=4, id 1: 77 + 14 + 13 = 104 bytes; epilogue at 91.
        let full = encode_frame(&spec(1, 10, 0, 4), 1);
        assert_eq!(full.len(), 104);
        for k in [1usize, 20, 76, 77, 80, 87, 88, 90, 91] {
            let w = format!("write {k}");
            let c = conns(&[
                "queue 1 front=10 data=4",
                &w,
                "revoke 1",
                "queue 2",
                "write all",
            ]);
            let b = &c[0];
            assert_eq!(b.len(), 104 + 77, "k={k}");
            let kept = k.max(77);
            assert_eq!(&b[..kept], &full[..kept], "k={k}");
            assert!(b[kept..91].iter().all(|&x| x == 0), "k={k}");
            // Epilogue by hand: ABORTED, crcs over what was sent.
            let mut epi = vec![0x01];
            epi.extend_from_slice(&crc(!0, &b[77..87]).to_le_bytes());
            epi.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
            epi.extend_from_slice(&crc(!0, &b[87..91]).to_le_bytes());
            assert_eq!(&b[91..104], &epi[..], "k={k}");
            let f = frames(b);
            assert_eq!((f[0].seq, f[0].aborted), (1, true), "k={k}");
            assert_eq!((f[1].seq, f[1].tid, f[1].aborted), (2, 2, false), "k={k}");
            if k == 91 {
                // Nothing left to zero: the segments are the real ones, still ABORTED.
                assert_eq!(&b[..91], &full[..91]);
            }
            if k == 80 {
                let mut front: Vec<u8> = (7..10).collect();
                front.extend([0; 7]);
                assert_eq!(f[0].front, front);
                assert_eq!(f[0].data, vec![0; 4]);
            }
        }
        let r = run_full(&parse_script("queue 1 front=1\nwrite 1\nrevoke 1").unwrap());
        assert_eq!(r.revokes, vec![(1, Some(RevokeCase::Aborted))]);
    }

    #[test]
    fn revoke_case3_completes_unchanged() {
        // Header-only: any partial write means it completes.
        let full = encode_frame(&spec(1, 0, 0, 0), 1);
        for k in [1usize, 31, 32, 76] {
            let w = format!("write {k}");
            let c = conns(&[
                "queue 1",
                &w,
                "revoke 1",
                "queue 2",
                "write all",
                "reset",
                "write all",
            ]);
            assert_eq!(&c[0][..77], &full[..], "k={k}");
            assert_eq!(seq_tid(&c[0]), vec![(1, 1), (2, 2)], "k={k}");
            assert_eq!(
                seq_tid(&c[1]),
                vec![(2, 2)],
                "k={k}: message 1 is not resent"
            );
        }
        // Epilogue started: front=10 → epilogue 87..100.
        let full = encode_frame(&spec(1, 10, 0, 0), 1);
        for k in [88usize, 95, 99] {
            let w = format!("write {k}");
            let c = conns(&[
                "queue 1 front=10",
                &w,
                "revoke 1",
                "write all",
                "reset",
                "write all",
            ]);
            assert_eq!(c[0], full, "k={k}");
            assert!(!frames(&c[0])[0].aborted);
            assert!(c[1].is_empty());
        }
        let r = run_full(&parse_script("queue 1\nwrite 5\nrevoke 1\nrevoke 1").unwrap());
        assert_eq!(r.revokes, vec![(1, Some(RevokeCase::Completes)), (1, None)]);
    }

    #[test]
    fn revoke_case4_fully_written_is_dropped() {
        let c = conns(&[
            "queue 1 front=10",
            "queue 2",
            "write 100",
            "revoke 1",
            "write all",
            "reset",
            "write all",
        ]);
        assert_eq!(seq_tid(&c[0]), vec![(1, 1), (2, 2)]);
        assert!(!frames(&c[0])[0].aborted);
        assert_eq!(seq_tid(&c[1]), vec![(2, 2)]);
        // Fully written and acked: revoke changes nothing (not even a report of a case).
        let r = run_full(&parse_script("queue 1\nwrite all\nack 1\nrevoke 1").unwrap());
        assert_eq!(r.revokes, vec![(1, None)]);
    }

    #[test]
    fn reset_after_case3_revoke_forgets_the_rest() {
        let c = conns(&[
            "queue 1 front=10",
            "queue 2 front=1",
            "write 90",
            "revoke 1",
            "write 4",
            "reset",
            "write all",
        ]);
        assert_eq!(c[0].len(), 94);
        let cs = parse_cut(&c[0]).unwrap();
        assert_eq!((cs.frames.len(), cs.tail), (0, 94));
        // The new connection starts with message 2 (seq 2) at byte 0.
        assert_eq!(seq_tid(&c[1]), vec![(2, 2)]);
        // Same for a header-only frame.
        let c = conns(&[
            "queue 1",
            "queue 2",
            "write 10",
            "revoke 1",
            "reset",
            "write all",
        ]);
        assert_eq!(c[0].len(), 10);
        assert_eq!(seq_tid(&c[1]), vec![(2, 2)]);
    }

    #[test]
    fn reset_after_case2_revoke_forgets_the_zeros() {
        let c = conns(&[
            "queue 1 front=100",
            "queue 2",
            "write 10",
            "revoke 1",
            "reset",
            "write all",
        ]);
        assert_eq!(c[0].len(), 10);
        assert_eq!(seq_tid(&c[1]), vec![(2, 2)]);
    }

    #[test]
    fn requeued_revoked_before_restart_costs_nothing_keeps_seq() {
        let c = conns(&[
            "queue 1 front=5",
            "queue 2",
            "write 10",
            "reset",
            "revoke 1",
            "queue 3",
            "write all",
        ]);
        assert_eq!(seq_tid(&c[1]), vec![(2, 2), (3, 3)]);
    }

    #[test]
    fn reset_restarts_partial_frame_and_requeue_order() {
        let c = conns(&["queue 1 front=100", "write 10", "reset", "write all"]);
        assert_eq!(c[1].len(), 77 + 100 + 13);
        assert_eq!(&c[1][..10], &c[0][..]);
        let c = conns(&[
            "queue 1",
            "queue 2",
            "queue 3",
            "write 100",
            "queue 4",
            "reset",
            "write all",
        ]);
        assert_eq!(seq_tid(&c[1]), vec![(1, 1), (2, 2), (3, 3), (4, 4)]);
        let c = conns(&[
            "queue 1",
            "queue 2",
            "queue 3",
            "write all",
            "ack 1",
            "reset",
            "write all",
        ]);
        assert_eq!(seq_tid(&c[1]), vec![(2, 2), (3, 3)]);
    }

    #[test]
    fn ack_of_partial_does_not_protect_from_abort() {
        let c = conns(&[
            "queue 1 front=100",
            "write 80",
            "ack 1",
            "revoke 1",
            "write all",
        ]);
        assert_eq!(c[0].len(), 190);
        assert!(c[0][80..177].iter().all(|&x| x == 0));
        assert!(frames(&c[0])[0].aborted);
        let c = conns(&[
            "queue 1 front=100",
            "write 10",
            "ack 1",
            "write all",
            "reset",
            "write all",
        ]);
        assert!(!frames(&c[0])[0].aborted);
        assert!(c[1].is_empty());
    }

    #[test]
    fn revoke_twice_and_unknown_are_no_ops() {
        let a = conns(&["queue 1 front=100", "write 90", "revoke 1", "write all"]);
        let b = conns(&[
            "queue 1 front=100",
            "revoke 77",
            "write 90",
            "revoke 1",
            "write 3",
            "revoke 1",
            "write all",
        ]);
        assert_eq!(a, b);
    }
}
