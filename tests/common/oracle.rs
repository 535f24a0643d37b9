//! Independent reference model of the msgr v1 sender (send path, revoke, ack, reset).
//!
//! The model takes an event script (`Ev`) and returns the exact bytes written on each
//! connection. It is deliberately simple: every message's wire bytes are built in full when
//! its first byte is written, and the stream is a plain byte copy from that buffer.

use std::collections::{HashSet, VecDeque};

/// Tag byte that starts a message frame.
pub const TAG_MSG: u8 = 7;
/// Size of `ceph_msg_header`.
pub const HEADER_LEN: usize = 53;
/// Tag + header: these bytes are always written intact, even for an aborted message.
pub const PREFIX_LEN: usize = 1 + HEADER_LEN;
/// `ceph_msg_footer` (used when the peer has MSG_AUTH).
pub const FOOTER_NEW_LEN: usize = 21;
/// `ceph_msg_footer_old`.
pub const FOOTER_OLD_LEN: usize = 13;
/// CEPH_FEATURE_MSG_AUTH.
pub const FEATURE_MSG_AUTH: u64 = 1 << 23;
/// Default peer features (has MSG_AUTH).
pub const DEFAULT_FEATURES: u64 = 0x3f01_cfbd_fffd_ffff;
/// Default source entity: `client.4242`.
pub const DEFAULT_ENTITY_TYPE: u8 = 8;
pub const DEFAULT_ENTITY_NUM: u64 = 4242;

/// One event of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ev {
    /// Peer feature bits; only valid before the first `Queue`.
    Features(u64),
    /// Source entity; only valid before the first `Queue`.
    Entity {
        ty: u8,
        num: u64,
    },
    Queue {
        id: u64,
        ty: u16,
        tid: u64,
        prio: u16,
        version: u16,
        compat: u16,
        front: u32,
        middle: u32,
        data: u32,
    },
    /// `Some(n)`: the socket accepts up to `n` bytes; `None`: write everything pending.
    Write(Option<u64>),
    Revoke(u64),
    Ack(u64),
    Reset,
}

/// Ceph's raw CRC32C: no pre- or post-inversion.
pub fn raw_crc(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

/// Payload bytes of a section: byte i = (id*7 + section*13 + i) % 251, computed exactly
/// (no overflow). Section 0 = front, 1 = middle, 2 = data.
pub fn section_bytes(id: u64, section: u64, len: u32) -> Vec<u8> {
    let base = u128::from(id) * 7 + u128::from(section) * 13;
    (0..len)
        .map(|i| ((base + u128::from(i)) % 251) as u8)
        .collect()
}

/// Everything needed to encode one message (except its seq).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgSpec {
    pub id: u64,
    pub ty: u16,
    pub tid: u64,
    pub prio: u16,
    pub version: u16,
    pub compat: u16,
    pub front: u32,
    pub middle: u32,
    pub data: u32,
}

/// Footer length for the given peer features.
pub fn footer_len(features: u64) -> usize {
    if features & FEATURE_MSG_AUTH != 0 {
        FOOTER_NEW_LEN
    } else {
        FOOTER_OLD_LEN
    }
}

/// Total wire length of a message: tag + header + sections + footer.
pub fn wire_len(spec: &MsgSpec, features: u64) -> u64 {
    PREFIX_LEN as u64
        + u64::from(spec.front)
        + u64::from(spec.middle)
        + u64::from(spec.data)
        + footer_len(features) as u64
}

/// The complete, un-aborted wire bytes of one message.
pub fn encode_message(
    spec: &MsgSpec,
    seq: u64,
    features: u64,
    src_type: u8,
    src_num: u64,
) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(&seq.to_le_bytes()); // 0
    header.extend_from_slice(&spec.tid.to_le_bytes()); // 8
    header.extend_from_slice(&spec.ty.to_le_bytes()); // 16
    header.extend_from_slice(&spec.prio.to_le_bytes()); // 18
    header.extend_from_slice(&spec.version.to_le_bytes()); // 20
    header.extend_from_slice(&spec.front.to_le_bytes()); // 22
    header.extend_from_slice(&spec.middle.to_le_bytes()); // 26
    header.extend_from_slice(&spec.data.to_le_bytes()); // 30
    header.extend_from_slice(&0u16.to_le_bytes()); // 34 data_off
    header.push(src_type); // 36
    header.extend_from_slice(&src_num.to_le_bytes()); // 37
    header.extend_from_slice(&spec.compat.to_le_bytes()); // 45
    header.extend_from_slice(&0u16.to_le_bytes()); // 47 reserved
    assert_eq!(header.len(), 49);
    let crc = raw_crc(0, &header);
    header.extend_from_slice(&crc.to_le_bytes()); // 49
    assert_eq!(header.len(), HEADER_LEN);

    let front = section_bytes(spec.id, 0, spec.front);
    let middle = section_bytes(spec.id, 1, spec.middle);
    let data = section_bytes(spec.id, 2, spec.data);

    let mut out = vec![TAG_MSG];
    out.extend_from_slice(&header);
    out.extend_from_slice(&front);
    out.extend_from_slice(&middle);
    out.extend_from_slice(&data);
    out.extend_from_slice(&raw_crc(0, &front).to_le_bytes());
    out.extend_from_slice(&raw_crc(0, &middle).to_le_bytes());
    out.extend_from_slice(&raw_crc(0, &data).to_le_bytes());
    if features & FEATURE_MSG_AUTH != 0 {
        out.extend_from_slice(&0u64.to_le_bytes()); // sig
    }
    out.push(1); // flags = COMPLETE
    assert_eq!(out.len() as u64, wire_len(spec, features));
    out
}

/// A queued message and what the session knows about it.
struct Msg {
    spec: MsgSpec,
    /// Fixed when the first byte is ever written; kept across connections.
    seq: Option<u64>,
    /// Revoked, dropped by an ack, or aborted: never written again, never resent.
    gone: bool,
}

/// The message whose bytes are being written right now.
struct Current {
    idx: usize,
    /// Full wire bytes (already zero-filled after offset 54 if aborted).
    bytes: Vec<u8>,
    /// Number of bytes already written on this connection.
    off: usize,
}

struct Model {
    features: u64,
    src_type: u8,
    src_num: u64,
    msgs: Vec<Msg>,
    out_seq: u64,
    acked: u64,
    /// Messages to start on the current connection, in order (requeued first).
    queue: VecDeque<usize>,
    /// Partially written message, if any.
    cur: Option<Current>,
    /// Fully written on the current connection, awaiting ack (resend candidates).
    sent: Vec<usize>,
    conns: Vec<Vec<u8>>,
    any_queued: bool,
    ids: HashSet<u64>,
}

impl Model {
    fn new() -> Self {
        Model {
            features: DEFAULT_FEATURES,
            src_type: DEFAULT_ENTITY_TYPE,
            src_num: DEFAULT_ENTITY_NUM,
            msgs: Vec::new(),
            out_seq: 0,
            acked: 0,
            queue: VecDeque::new(),
            cur: None,
            sent: Vec::new(),
            conns: vec![Vec::new()],
            any_queued: false,
            ids: HashSet::new(),
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
                    Some(seq) => seq,
                    None => {
                        self.out_seq += 1;
                        self.msgs[idx].seq = Some(self.out_seq);
                        self.out_seq
                    }
                };
                let bytes = encode_message(
                    &self.msgs[idx].spec,
                    seq,
                    self.features,
                    self.src_type,
                    self.src_num,
                );
                self.cur = Some(Current { idx, bytes, off: 0 });
            }
            let Some(cur) = self.cur.as_mut() else {
                unreachable!()
            };
            let remaining = (cur.bytes.len() - cur.off) as u64;
            let n = remaining.min(budget) as usize;
            let conn = self.conns.last_mut().expect("at least one connection");
            conn.extend_from_slice(&cur.bytes[cur.off..cur.off + n]);
            cur.off += n;
            budget -= n as u64;
            if cur.off == cur.bytes.len() {
                self.finish_current();
            }
        }
    }

    /// The current message has been written to its last byte.
    fn finish_current(&mut self) {
        let Some(cur) = self.cur.take() else {
            return;
        };
        let msg = &mut self.msgs[cur.idx];
        if msg.gone {
            return; // aborted: never resent
        }
        let seq = msg.seq.expect("a written message has a seq");
        if seq <= self.acked {
            msg.gone = true;
        } else {
            self.sent.push(cur.idx);
        }
    }

    fn revoke(&mut self, id: u64) {
        let Some(idx) = self.msgs.iter().position(|m| m.spec.id == id) else {
            return;
        };
        if self.msgs[idx].gone {
            return;
        }
        if let Some(pos) = self.queue.iter().position(|&i| i == idx) {
            // Nothing of it written on this connection: it simply disappears.
            self.queue.remove(pos);
            self.msgs[idx].gone = true;
        } else if let Some(cur) = self.cur.as_mut().filter(|c| c.idx == idx) {
            // Partially written: abort. Tag+header stay intact; the rest becomes zeros.
            let from = cur.off.max(PREFIX_LEN);
            for b in &mut cur.bytes[from..] {
                *b = 0;
            }
            self.msgs[idx].gone = true;
        } else if let Some(pos) = self.sent.iter().position(|&i| i == idx) {
            // Fully written: only forget it for resend.
            self.sent.remove(pos);
            self.msgs[idx].gone = true;
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
            let seq = self.msgs[idx].seq.expect("requeued message has a seq");
            if seq <= acked {
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

/// Run a script; returns the bytes written on each connection (at least one).
///
/// Panics on a script `parse_script` would reject (features/entity after a queue, duplicate id).
pub fn run(evs: &[Ev]) -> Vec<Vec<u8>> {
    let mut m = Model::new();
    for ev in evs {
        match *ev {
            Ev::Features(f) => {
                assert!(!m.any_queued, "features after the first queue");
                m.features = f;
            }
            Ev::Entity { ty, num } => {
                assert!(!m.any_queued, "entity after the first queue");
                m.src_type = ty;
                m.src_num = num;
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
            Ev::Revoke(id) => m.revoke(id),
            Ev::Ack(n) => m.ack(n),
            Ev::Reset => m.reset(),
        }
    }
    m.conns
}

// ---------------------------------------------------------------------------------------
// Script text format
// ---------------------------------------------------------------------------------------

const ENTITY_NAMES: [(&str, u8); 4] = [("mon", 1), ("mds", 2), ("osd", 4), ("client", 8)];

/// Decimal, or hex with a `0x` prefix. No sign, no underscores.
fn parse_num(s: &str) -> Result<u64, String> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(format!("bad number {s:?}"));
    }
    u64::from_str_radix(digits, radix).map_err(|_| format!("number {s:?} out of range"))
}

fn parse_narrow<T: TryFrom<u64>>(s: &str, what: &str) -> Result<T, String> {
    let v = parse_num(s)?;
    T::try_from(v).map_err(|_| format!("{what}={s} out of range"))
}

fn one_arg<'a>(word: &str, args: &[&'a str]) -> Result<&'a str, String> {
    match args {
        [a] => Ok(a),
        _ => Err(format!("`{word}` takes exactly one argument")),
    }
}

fn parse_entity(s: &str) -> Result<Ev, String> {
    let (name, num) = s
        .split_once('.')
        .ok_or_else(|| format!("bad entity {s:?} (want TYPE.NUM)"))?;
    let ty = ENTITY_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, t)| t)
        .ok_or_else(|| format!("unknown entity type {name:?}"))?;
    Ok(Ev::Entity {
        ty,
        num: parse_num(num)?,
    })
}

fn parse_queue(args: &[&str]) -> Result<Ev, String> {
    let Some((id, keys)) = args.split_first() else {
        return Err("`queue` needs an ID".to_string());
    };
    let id = parse_num(id)?;
    let mut seen: Vec<&str> = Vec::new();
    let (mut ty, mut tid, mut prio, mut version, mut compat) = (0u16, id, 127u16, 1u16, 1u16);
    let (mut front, mut middle, mut data) = (0u32, 0u32, 0u32);
    for kv in keys {
        let (key, val) = kv
            .split_once('=')
            .ok_or_else(|| format!("bad queue option {kv:?} (want key=value)"))?;
        if seen.contains(&key) {
            return Err(format!("duplicate key {key:?}"));
        }
        seen.push(key);
        match key {
            "type" => ty = parse_narrow(val, key)?,
            "tid" => tid = parse_narrow(val, key)?,
            "prio" => prio = parse_narrow(val, key)?,
            "version" => version = parse_narrow(val, key)?,
            "compat" => compat = parse_narrow(val, key)?,
            "front" => front = parse_narrow(val, key)?,
            "middle" => middle = parse_narrow(val, key)?,
            "data" => data = parse_narrow(val, key)?,
            _ => return Err(format!("unknown key {key:?}")),
        }
    }
    Ok(Ev::Queue {
        id,
        ty,
        tid,
        prio,
        version,
        compat,
        front,
        middle,
        data,
    })
}

fn parse_line(words: &[&str]) -> Result<Ev, String> {
    let (word, args) = (words[0], &words[1..]);
    match word {
        "features" => Ok(Ev::Features(parse_num(one_arg(word, args)?)?)),
        "entity" => parse_entity(one_arg(word, args)?),
        "queue" => parse_queue(args),
        "write" => match one_arg(word, args)? {
            "all" => Ok(Ev::Write(None)),
            n => Ok(Ev::Write(Some(parse_num(n)?))),
        },
        "revoke" => Ok(Ev::Revoke(parse_num(one_arg(word, args)?)?)),
        "ack" => Ok(Ev::Ack(parse_num(one_arg(word, args)?)?)),
        "reset" if args.is_empty() => Ok(Ev::Reset),
        "reset" => Err("`reset` takes no argument".to_string()),
        _ => Err(format!("unknown event {word:?}")),
    }
}

/// Parse the script text format. Errors start with `line N: ` (1-based).
pub fn parse_script(text: &str) -> Result<Vec<Ev>, String> {
    let mut evs = Vec::new();
    let mut ids = HashSet::new();
    let mut any_queued = false;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let content = line.split('#').next().unwrap_or("");
        let words: Vec<&str> = content.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let ev = parse_line(&words).map_err(|e| format!("line {lineno}: {e}"))?;
        match ev {
            Ev::Features(_) | Ev::Entity { .. } if any_queued => {
                return Err(format!(
                    "line {lineno}: `{}` after the first `queue`",
                    words[0]
                ));
            }
            Ev::Queue { id, .. } => {
                if !ids.insert(id) {
                    return Err(format!("line {lineno}: message id {id} already queued"));
                }
                any_queued = true;
            }
            _ => {}
        }
        evs.push(ev);
    }
    Ok(evs)
}

/// Inverse of `parse_script`. Panics on an entity type that has no name in the format.
pub fn render_script(evs: &[Ev]) -> String {
    let mut out = String::new();
    for ev in evs {
        let line = match *ev {
            Ev::Features(f) => format!("features {f:#x}"),
            Ev::Entity { ty, num } => {
                let name = ENTITY_NAMES
                    .iter()
                    .find(|&&(_, t)| t == ty)
                    .map(|&(n, _)| n)
                    .unwrap_or_else(|| panic!("entity type {ty} has no script name"));
                format!("entity {name}.{num}")
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
            } => format!(
                "queue {id} type={ty} tid={tid} prio={prio} version={version} compat={compat} \
                 front={front} middle={middle} data={data}"
            ),
            Ev::Write(None) => "write all".to_string(),
            Ev::Write(Some(n)) => format!("write {n}"),
            Ev::Revoke(id) => format!("revoke {id}"),
            Ev::Ack(n) => format!("ack {n}"),
            Ev::Reset => "reset".to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::v1parse::{parse_stream, ParsedMsg};
    use super::*;

    fn conns(lines: &[&str]) -> Vec<Vec<u8>> {
        run(&parse_script(&lines.join("\n")).expect("valid script"))
    }

    fn parse(bytes: &[u8]) -> Vec<ParsedMsg> {
        parse_stream(bytes, true).expect("model output parses")
    }

    /// (seq, tid) of every message on a connection; tid defaults to the message id.
    fn seq_tid(bytes: &[u8]) -> Vec<(u64, u64)> {
        parse(bytes).iter().map(|m| (m.seq, m.tid)).collect()
    }

    fn spec(id: u64, front: u32) -> MsgSpec {
        MsgSpec {
            id,
            ty: 0,
            tid: id,
            prio: 127,
            version: 1,
            compat: 1,
            front,
            middle: 0,
            data: 0,
        }
    }

    #[test]
    fn crc_vectors() {
        assert_eq!(raw_crc(0, b"123456789"), 0x58E3_FA20);
        assert_eq!(raw_crc(0xFFFF_FFFF, b"123456789"), 0x1CF9_6D7C);
        assert_eq!(raw_crc(0, &[0u8; 4096]), 0);
        assert_eq!(raw_crc(0xFFFF_FFFF, &[]), 0xFFFF_FFFF);
    }

    #[test]
    fn section_bytes_formula() {
        assert_eq!(section_bytes(1, 0, 3), vec![7, 8, 9]);
        assert_eq!(section_bytes(0, 1, 2), vec![13, 14]);
        assert_eq!(section_bytes(0, 2, 3), vec![26, 27, 28]);
        let long = section_bytes(0, 0, 253);
        assert_eq!((long[250], long[251], long[252]), (250, 0, 1));
        // (2^64-1)*7 mod 251 = 225; exact arithmetic, no wrapping.
        assert_eq!(section_bytes(u64::MAX, 0, 2), vec![225, 226]);
        assert!(section_bytes(5, 2, 0).is_empty());
    }

    #[test]
    fn header_only_message_is_75_bytes() {
        let c = conns(&["queue 1", "write all"]);
        assert_eq!(c.len(), 1);
        let b = &c[0];
        assert_eq!(b.len(), 75);
        assert_eq!(b[0], 7);
        assert_eq!(&b[1..9], &1u64.to_le_bytes()); // seq
        assert_eq!(&b[9..17], &1u64.to_le_bytes()); // tid = id
        assert_eq!(&b[17..19], &[0, 0]); // type
        assert_eq!(&b[19..21], &[127, 0]); // prio
        assert_eq!(&b[21..23], &[1, 0]); // version
        assert_eq!(&b[23..35], &[0; 12]); // front/middle/data len
        assert_eq!(&b[35..37], &[0, 0]); // data_off
        assert_eq!(b[37], 8); // client
        assert_eq!(&b[38..46], &4242u64.to_le_bytes());
        assert_eq!(&b[46..48], &[1, 0]); // compat
        assert_eq!(&b[48..50], &[0, 0]); // reserved
        assert_eq!(&b[50..54], &raw_crc(0, &b[1..50]).to_le_bytes());
        assert_eq!(&b[54..74], &[0; 20]); // three zero crcs + zero sig
        assert_eq!(b[74], 1); // COMPLETE
    }

    #[test]
    fn old_footer_and_entity() {
        let c = conns(&["features 0", "entity osd.3", "queue 9 front=2", "write all"]);
        assert_eq!(c[0].len(), 1 + 53 + 2 + 13);
        assert_eq!(c[0][37], 4);
        assert_eq!(&c[0][38..46], &3u64.to_le_bytes());
        assert_eq!(&c[0][54..56], &[63, 64]); // 9*7 = 63
        assert_eq!(*c[0].last().unwrap(), 1);
        let m = parse_stream(&c[0], false).unwrap();
        assert_eq!((m[0].src_type, m[0].src_num, m[0].complete), (4, 3, true));
    }

    #[test]
    fn sections_and_footer_crcs() {
        let c = conns(&["queue 1 front=10 middle=2 data=3", "write all"]);
        let b = &c[0];
        assert_eq!(b.len(), 54 + 15 + 21);
        assert_eq!(&b[54..64], &[7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        assert_eq!(&b[64..66], &[20, 21]);
        assert_eq!(&b[66..69], &[33, 34, 35]);
        assert_eq!(&b[69..73], &raw_crc(0, &b[54..64]).to_le_bytes());
        assert_eq!(&b[73..77], &raw_crc(0, &b[64..66]).to_le_bytes());
        assert_eq!(&b[77..81], &raw_crc(0, &b[66..69]).to_le_bytes());
        assert_eq!(parse(b).len(), 1);
    }

    #[test]
    fn partial_writes_concatenate_to_the_full_stream() {
        let whole = conns(&["queue 1 front=10", "queue 2 data=7", "write all"]);
        let split = conns(&[
            "queue 1 front=10",
            "queue 2 data=7",
            "write 1",
            "write 0",
            "write 60",
            "write 30",
            "write 1000",
            "write 5",
        ]);
        assert_eq!(whole, split);
        assert_eq!(whole[0].len(), 85 + 82);
    }

    #[test]
    fn revoke_inside_payload_zero_fills_the_rest() {
        // front=10: 54 prefix + 10 front + 21 footer = 85 bytes; revoke at offset 60.
        let full = encode_message(&spec(1, 10), 1, DEFAULT_FEATURES, 8, 4242);
        let c = conns(&["queue 1 front=10", "write 60", "revoke 1", "write all"]);
        let b = &c[0];
        assert_eq!(b.len(), 85);
        assert_eq!(&b[..60], &full[..60]);
        assert_eq!(&b[60..], &[0u8; 25][..]);
        let m = parse(b);
        assert!(!m[0].complete);
        assert_eq!(m[0].front, vec![7, 8, 9, 10, 11, 12, 0, 0, 0, 0]);
    }

    #[test]
    fn revoke_inside_header_keeps_header_intact() {
        let full = encode_message(&spec(1, 10), 1, DEFAULT_FEATURES, 8, 4242);
        let c = conns(&["queue 1 front=10", "write 20", "revoke 1", "write all"]);
        let b = &c[0];
        assert_eq!(b.len(), 85);
        assert_eq!(&b[..54], &full[..54]);
        assert_eq!(&b[54..], &[0u8; 31][..]);
    }

    #[test]
    fn revoke_inside_footer() {
        // Footer starts at 64; the front crc occupies 64..68. Revoke at 66.
        let full = encode_message(&spec(1, 10), 1, DEFAULT_FEATURES, 8, 4242);
        let c = conns(&["queue 1 front=10", "write 66", "revoke 1", "write all"]);
        let b = &c[0];
        assert_eq!(&b[..66], &full[..66]);
        assert_eq!(&b[66..], &[0u8; 19][..]);
        assert!(!parse(b)[0].complete);
    }

    #[test]
    fn revoke_after_last_byte_changes_nothing() {
        let c = conns(&[
            "queue 1",
            "write 75",
            "revoke 1",
            "write all",
            "reset",
            "write all",
        ]);
        assert_eq!(c[0].len(), 75);
        assert_eq!(c[0][74], 1);
        assert!(c[1].is_empty());
    }

    #[test]
    fn revoke_unstarted_consumes_no_seq() {
        let c = conns(&[
            "queue 1",
            "queue 2",
            "revoke 2",
            "write all",
            "queue 3",
            "write 0",
            "revoke 3",
            "queue 4",
            "write all",
        ]);
        assert_eq!(seq_tid(&c[0]), vec![(1, 1), (2, 4)]);
    }

    #[test]
    fn abort_does_not_rewind_out_seq() {
        let c = conns(&["queue 1", "write 5", "revoke 1", "queue 2", "write all"]);
        assert_eq!(c[0].len(), 150);
        assert_eq!(c[0][74], 0);
        let m = parse(&c[0]);
        assert_eq!((m[0].seq, m[0].complete), (1, false));
        assert_eq!((m[1].seq, m[1].complete), (2, true));
    }

    #[test]
    fn revoke_unknown_or_twice_is_a_no_op() {
        let a = conns(&["queue 1 front=100", "write 70", "revoke 1", "write all"]);
        let b = conns(&[
            "queue 1 front=100",
            "revoke 77",
            "write 70",
            "revoke 1",
            "write 3",
            "revoke 1",
            "write all",
        ]);
        assert_eq!(a, b);
    }

    #[test]
    fn reset_requeues_unacked_in_seq_order() {
        let c = conns(&[
            "queue 1",
            "queue 2",
            "queue 3",
            "write all",
            "ack 1",
            "reset",
            "write all",
        ]);
        assert_eq!(c.len(), 2);
        assert_eq!(seq_tid(&c[1]), vec![(2, 2), (3, 3)]);
    }

    #[test]
    fn reset_restarts_partial_message_from_its_first_byte() {
        let c = conns(&["queue 1 front=100", "write 10", "reset", "write all"]);
        assert_eq!(c[0].len(), 10);
        assert_eq!(c[1].len(), 175);
        assert_eq!(&c[1][..10], &c[0][..]);
        assert_eq!(seq_tid(&c[1]), vec![(1, 1)]);
    }

    #[test]
    fn requeued_messages_go_before_never_started_ones() {
        // 100 bytes = message 1 (75) + 25 bytes of message 2.
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
        // Requeued but unwritten messages keep their place across a second reset.
        let c = conns(&[
            "queue 1",
            "write all",
            "reset",
            "queue 2",
            "reset",
            "write all",
        ]);
        assert_eq!(c.len(), 3);
        assert!(c[1].is_empty());
        assert_eq!(seq_tid(&c[2]), vec![(1, 1), (2, 2)]);
    }

    #[test]
    fn revoke_of_requeued_message_removes_it() {
        let c = conns(&[
            "queue 1",
            "queue 2",
            "write all",
            "reset",
            "revoke 1",
            "write all",
        ]);
        assert_eq!(seq_tid(&c[1]), vec![(2, 2)]);
    }

    #[test]
    fn aborted_message_is_not_resent() {
        let c = conns(&[
            "queue 1 front=100",
            "write 10",
            "revoke 1",
            "reset",
            "write all",
        ]);
        assert_eq!(c[0].len(), 10);
        assert!(c[1].is_empty());
    }

    #[test]
    fn ack_of_partial_message_lets_it_finish() {
        let c = conns(&[
            "queue 1 front=100",
            "write 10",
            "ack 1",
            "write all",
            "reset",
            "write all",
        ]);
        assert_eq!(c[0].len(), 175);
        assert!(parse(&c[0])[0].complete);
        assert!(c[1].is_empty());
        // ...but a revoke still aborts it.
        let c = conns(&[
            "queue 1 front=100",
            "write 60",
            "ack 1",
            "revoke 1",
            "write all",
        ]);
        assert_eq!(c[0].len(), 175);
        assert_eq!(&c[0][60..], &[0u8; 115][..]);
        // ...and a reset before it finishes drops it.
        let c = conns(&[
            "queue 1 front=100",
            "write 10",
            "ack 1",
            "reset",
            "write all",
        ]);
        assert!(c[1].is_empty());
    }

    #[test]
    fn ack_drops_requeued_messages() {
        let c = conns(&[
            "queue 1",
            "queue 2",
            "write all",
            "reset",
            "ack 1",
            "write all",
            "ack 0",
        ]);
        assert_eq!(seq_tid(&c[1]), vec![(2, 2)]);
    }

    #[test]
    fn ack_beyond_out_seq() {
        // The unstarted message had no seq when acked, so it is written; seq 1 <= acked, so
        // it is not resent.
        let c = conns(&["ack 5", "queue 1", "write all", "reset", "write all"]);
        assert_eq!(c[0].len(), 75);
        assert!(c[1].is_empty());
    }

    #[test]
    fn always_at_least_one_connection() {
        assert_eq!(run(&[]), vec![Vec::<u8>::new()]);
        assert_eq!(run(&[Ev::Reset, Ev::Reset]).len(), 3);
    }

    #[test]
    fn script_defaults_and_keys() {
        let evs = parse_script(
            "# comment\n\n  features 0x10  # trailing\nentity mon.0x10\n\
             queue 3\nqueue 0x10 type=0xffff tid=0 prio=64 version=2 compat=0 \
             front=1 middle=2 data=4294967295\nwrite 12\nwrite all\nrevoke 3\nack 0x2\nreset\n",
        )
        .unwrap();
        assert_eq!(
            evs,
            vec![
                Ev::Features(16),
                Ev::Entity { ty: 1, num: 16 },
                Ev::Queue {
                    id: 3,
                    ty: 0,
                    tid: 3,
                    prio: 127,
                    version: 1,
                    compat: 1,
                    front: 0,
                    middle: 0,
                    data: 0
                },
                Ev::Queue {
                    id: 16,
                    ty: 0xffff,
                    tid: 0,
                    prio: 64,
                    version: 2,
                    compat: 0,
                    front: 1,
                    middle: 2,
                    data: u32::MAX
                },
                Ev::Write(Some(12)),
                Ev::Write(None),
                Ev::Revoke(3),
                Ev::Ack(2),
                Ev::Reset,
            ]
        );
        assert_eq!(parse_script(&render_script(&evs)).unwrap(), evs);
        assert_eq!(
            parse_script("entity mds.7\nentity osd.1\nentity client.2\nqueue 18446744073709551615")
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn script_errors_name_the_line() {
        let cases = [
            "queue 1 colour=3",
            "queue 1 front=1 front=2",
            "queue 1 prio=65536",
            "queue 1 type=0x10000",
            "queue 1 front=0x100000000",
            "queue 18446744073709551616",
            "queue 1 tid=18446744073709551616",
            "queue 1 front",
            "queue 1 front=",
            "queue",
            "queue 2",
            "features 5",
            "entity client.1",
            "frobnicate",
            "write",
            "write 1 2",
            "write some",
            "write -1",
            "write +1",
            "write 0x",
            "write 12a",
            "revoke",
            "ack 1 2",
            "reset now",
            "entity foo.1",
            "entity client4",
            "entity client.x",
        ];
        for case in cases {
            let text = format!("# header\nqueue 2\n{case}\nwrite all\n");
            let err = parse_script(&text).expect_err(case);
            assert!(err.starts_with("line 3: "), "{case:?} gave {err:?}");
        }
        let err = parse_script("write 1\n\nack x").unwrap_err();
        assert!(err.starts_with("line 3: "), "{err}");
    }

    #[test]
    fn render_writes_every_key() {
        let text = render_script(&[
            Ev::Features(0),
            Ev::Entity { ty: 8, num: 4242 },
            Ev::Queue {
                id: 1,
                ty: 2,
                tid: 3,
                prio: 4,
                version: 5,
                compat: 6,
                front: 7,
                middle: 8,
                data: 9,
            },
            Ev::Write(Some(0)),
            Ev::Write(None),
        ]);
        assert_eq!(
            text,
            "features 0x0\nentity client.4242\n\
             queue 1 type=2 tid=3 prio=4 version=5 compat=6 front=7 middle=8 data=9\n\
             write 0\nwrite all\n"
        );
    }
}
