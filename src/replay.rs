//! Event scripts: drive a [`Messenger`] from a small text format and record the bytes each
//! connection carries. This is what `ceph-msgr replay` runs, so a trace can be reproduced
//! and compared without writing Rust.
//!
//! One event per line; `#` starts a comment; numbers are decimal or `0x` hex.
//!
//! | line | meaning |
//! |---|---|
//! | `features N` | the peer's feature bits (default has MSG_AUTH); only before the first `queue` |
//! | `entity TYPE.NUM` | source entity, TYPE one of mon/mds/osd/client (default `client.4242`); only before the first `queue` |
//! | `queue ID [type=N] [tid=N] [prio=N] [version=N] [compat=N] [front=LEN] [middle=LEN] [data=LEN]` | queue a message; defaults type 0, tid = ID, prio 127, version 1, compat 1, lengths 0; byte `i` of section `S` (0 front, 1 middle, 2 data) is `(ID*7 + S*13 + i) % 251` |
//! | `write N` / `write all` | the socket accepts up to N bytes / everything pending |
//! | `revoke ID` | revoke (an unknown or already revoked ID is not an error) |
//! | `ack SEQ` | the peer acknowledged every seq up to SEQ |
//! | `reset` | the connection ends; the next one resumes the session losslessly |
//!
//! ```
//! let script = "queue 1 front=10\nwrite 20\nrevoke 1\nqueue 2\nwrite all\n";
//! let events = ceph_msgr::replay::parse(script).unwrap();
//! let out = ceph_msgr::replay::run(&events);
//! // Message 1: 20 bytes written, then the rest (1+53+10+21-20 = 65) as tag/header/zeros.
//! // Message 2: a header-only message, 75 bytes.
//! assert_eq!(out.connections[0].len(), 85 + 75);
//! ```
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::io::IoSlice;

use bytes::Bytes;

pub use crate::send::Protocol;
use crate::send::{Messenger, MsgId, MsgStatus, Revoked};
use crate::wire::{EntityName, EntityType};
use crate::Message;

/// Feature bits assumed when a script says none: Pacific's full set (has MSG_AUTH).
pub const DEFAULT_FEATURES: u64 = 0x3f01_cfbd_fffd_ffff;

/// One parsed script line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `features N`
    Features(u64),
    /// `entity TYPE.NUM`
    Entity(EntityName),
    /// `queue ID ...`
    Queue(QueueSpec),
    /// `write N`, or `write all` as `None`.
    Write(Option<u64>),
    /// `revoke ID`
    Revoke(u64),
    /// `ack SEQ`
    Ack(u64),
    /// `reset`
    Reset,
}

/// The fields of a `queue` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    /// The script's id for the message.
    pub id: u64,
    /// Message type.
    pub ty: u16,
    /// Transaction id (defaults to `id`).
    pub tid: u64,
    /// Priority (default 127).
    pub prio: u16,
    /// Version (default 1).
    pub version: u16,
    /// Compat version (default 1).
    pub compat: u16,
    /// Front length.
    pub front: u32,
    /// Middle length.
    pub middle: u32,
    /// Data length.
    pub data: u32,
}

impl QueueSpec {
    /// The message this line queues, with the script's deterministic section bytes.
    #[must_use]
    pub fn message(&self) -> Message {
        let mut m = Message::new(self.ty)
            .with_tid(self.tid)
            .with_priority(self.prio)
            .with_version(self.version, self.compat)
            .with_front(section_bytes(self.id, 0, self.front))
            .with_middle(section_bytes(self.id, 1, self.middle));
        if self.data > 0 {
            m = m.with_data_chunk(section_bytes(self.id, 2, self.data));
        }
        m
    }
}

/// Byte `i` of section `section` of message `id`: `(id*7 + section*13 + i) % 251`.
#[must_use]
pub fn section_bytes(id: u64, section: u64, len: u32) -> Bytes {
    let start = ((u128::from(id) * 7 + u128::from(section) * 13) % 251) as u32;
    (0..len).map(|i| ((start + i % 251) % 251) as u8).collect()
}

/// A script line that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ScriptError {}

fn number<T: TryFrom<u64>>(s: &str, what: &str) -> Result<T, String> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None => None,
    };
    let v = v.ok_or_else(|| format!("{what}: {s:?} is not a number"))?;
    T::try_from(v).map_err(|_| format!("{what}: {s} is out of range"))
}

/// Parses a script.
pub fn parse(text: &str) -> Result<Vec<Event>, ScriptError> {
    let mut events = Vec::new();
    let mut queued_ids = std::collections::HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&verb, args)) = words.split_first() else {
            continue;
        };
        let err = |message: String| ScriptError {
            line: i + 1,
            message,
        };
        let one = |what: &str| -> Result<&str, ScriptError> {
            match args {
                [a] => Ok(a),
                _ => Err(err(format!("`{verb}` takes exactly one {what}"))),
            }
        };
        let ev = match verb {
            "features" | "entity" if !queued_ids.is_empty() => {
                return Err(err(format!("`{verb}` must come before the first `queue`")))
            }
            "features" => Event::Features(number(one("number")?, "features").map_err(err)?),
            "entity" => Event::Entity(entity(one("TYPE.NUM")?).map_err(err)?),
            "queue" => {
                let spec = parse_queue(args).map_err(err)?;
                if !queued_ids.insert(spec.id) {
                    return Err(err(format!("message {} was already queued", spec.id)));
                }
                Event::Queue(spec)
            }
            "write" => match one("count (or `all`)")? {
                "all" => Event::Write(None),
                n => Event::Write(Some(number(n, "write").map_err(err)?)),
            },
            "revoke" => Event::Revoke(number(one("ID")?, "revoke").map_err(err)?),
            "ack" => Event::Ack(number(one("SEQ")?, "ack").map_err(err)?),
            "reset" if args.is_empty() => Event::Reset,
            "reset" => return Err(err("`reset` takes no arguments".into())),
            other => return Err(err(format!("unknown event `{other}`"))),
        };
        events.push(ev);
    }
    Ok(events)
}

/// `TYPE.NUM`, the number decimal or `0x` hex like every number in a script.
fn entity(s: &str) -> Result<EntityName, String> {
    let bad =
        || format!("bad entity name {s:?}: expected TYPE.NUM, TYPE one of mon/mds/osd/client");
    let (ty, num) = s.split_once('.').ok_or_else(bad)?;
    Ok(EntityName {
        ty: EntityType::from_name(ty).ok_or_else(bad)?,
        num: number(num, "entity number")?,
    })
}

fn parse_queue(args: &[&str]) -> Result<QueueSpec, String> {
    let (id, keys) = args.split_first().ok_or("`queue` needs an ID".to_owned())?;
    let id = number(id, "queue ID")?;
    let mut spec = QueueSpec {
        id,
        ty: 0,
        tid: id,
        prio: crate::message::PRIO_DEFAULT,
        version: 1,
        compat: 1,
        front: 0,
        middle: 0,
        data: 0,
    };
    let mut seen = Vec::new();
    for kv in keys {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE, got {kv:?}"))?;
        if seen.contains(&k) {
            return Err(format!("`{k}` given twice"));
        }
        seen.push(k);
        match k {
            "type" => spec.ty = number(v, k)?,
            "tid" => spec.tid = number(v, k)?,
            "prio" => spec.prio = number(v, k)?,
            "version" => spec.version = number(v, k)?,
            "compat" => spec.compat = number(v, k)?,
            "front" => spec.front = number(v, k)?,
            "middle" => spec.middle = number(v, k)?,
            "data" => spec.data = number(v, k)?,
            _ => return Err(format!("unknown key `{k}`")),
        }
    }
    Ok(spec)
}

/// What happened to one scripted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Revoked before any of its bytes were written on the connection: zero bytes.
    Removed,
    /// Revoked part-way: the rest of the frame went (or was owed) as zeros.
    Aborted,
    /// msgr2: revoked too late to abort (a header-only frame, or its epilogue had
    /// started): the frame completed unchanged and is never resent.
    Completed,
    /// Fully written, then revoked: dropped from the resend list.
    Dropped,
    /// Fully written and acknowledged.
    Acked,
    /// Fully written, awaiting acknowledgement at the end of the script.
    Written,
    /// Partly written when the script ended.
    Partial,
    /// Never started (or requeued and not restarted) when the script ended.
    Queued,
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Removed => "removed",
            Self::Aborted => "aborted",
            Self::Completed => "completed",
            Self::Dropped => "dropped",
            Self::Acked => "acked",
            Self::Written => "written",
            Self::Partial => "partial",
            Self::Queued => "queued",
        })
    }
}

/// Per-message summary of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgReport {
    /// The script's id.
    pub id: u64,
    /// Its seq, if it got one.
    pub seq: Option<u64>,
    /// Length of its frame.
    pub frame_len: u64,
    /// Bytes of it written, per connection it appeared on (connection index, bytes).
    pub written: Vec<(usize, u64)>,
    /// How it ended.
    pub fate: Fate,
}

/// The result of running a script.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The protocol the frames were encoded for.
    pub protocol: Protocol,
    /// Bytes written on each connection, in order (at least one connection).
    pub connections: Vec<Vec<u8>>,
    /// One report per queued message, in queue order.
    pub messages: Vec<MsgReport>,
}

/// Runs parsed events through a msgr v1 [`Messenger`].
#[must_use]
pub fn run(events: &[Event]) -> Outcome {
    run_protocol(events, Protocol::V1)
}

/// Runs parsed events through a [`Messenger`] framing for `protocol`. Under msgr2 the
/// `features` and `entity` lines change nothing, and each connection's bytes are its
/// MESSAGE frames only (crc mode, ack_seq 0: a replay receives nothing).
#[must_use]
pub fn run_protocol(events: &[Event], protocol: Protocol) -> Outcome {
    let src = EntityName {
        ty: EntityType::Client,
        num: 4242,
    };
    let mut m = Messenger::with_protocol(protocol, src, DEFAULT_FEATURES);
    let mut out = Outcome {
        protocol,
        connections: vec![Vec::new()],
        messages: Vec::new(),
    };
    let mut by_script: HashMap<u64, (MsgId, usize)> = HashMap::new();
    let mut by_msg: HashMap<MsgId, usize> = HashMap::new();
    let mut revoked: HashMap<usize, Fate> = HashMap::new();
    for ev in events {
        match ev {
            // The parser only accepts these before the first `queue`.
            Event::Features(f) => m.set_peer_features(*f),
            Event::Entity(e) => m.set_src(*e),
            Event::Queue(spec) => {
                let msg = spec.message();
                let frame_len = m.frame_len(&msg);
                // Lengths come from u32 fields: this cannot fail.
                if let Ok(id) = m.queue(msg) {
                    by_script.insert(spec.id, (id, out.messages.len()));
                    by_msg.insert(id, out.messages.len());
                    out.messages.push(MsgReport {
                        id: spec.id,
                        seq: None,
                        frame_len,
                        written: Vec::new(),
                        fate: Fate::Queued,
                    });
                }
            }
            Event::Write(limit) => {
                let mut left = limit.unwrap_or(u64::MAX);
                let conn = out.connections.len() - 1;
                while left > 0 {
                    let t = m.poll_transmit();
                    if t.is_empty() {
                        break;
                    }
                    let mut slices = [IoSlice::new(&[]); 256];
                    let n = t.fill(&mut slices);
                    let buf = &mut out.connections[conn];
                    let mut took = 0u64;
                    for s in &slices[..n] {
                        let k = (s.len() as u64).min(left - took) as usize;
                        buf.extend_from_slice(&s[..k]);
                        took += k as u64;
                        if took == left {
                            break;
                        }
                    }
                    let mut share = took;
                    for f in t.frames() {
                        if share == 0 {
                            break;
                        }
                        let k = share.min(f.remaining);
                        share -= k;
                        if let Some(&i) = f.id.and_then(|id| by_msg.get(&id)) {
                            out.messages[i].seq = Some(f.seq);
                            let w = &mut out.messages[i].written;
                            match w.last_mut() {
                                Some((c, b)) if *c == conn => *b += k,
                                _ => w.push((conn, k)),
                            }
                        }
                    }
                    // `took` never exceeds what `fill` offered.
                    if m.advance(took as usize).is_err() {
                        break;
                    }
                    left -= took;
                }
            }
            Event::Revoke(sid) => {
                let Some(&(id, i)) = by_script.get(sid) else {
                    continue;
                };
                let fate = match m.revoke(id) {
                    Revoked::Removed { .. } => Fate::Removed,
                    Revoked::Aborted { .. } => Fate::Aborted,
                    Revoked::Completing { .. } => Fate::Completed,
                    Revoked::Dropped { .. } => Fate::Dropped,
                    _ => continue,
                };
                revoked.insert(i, fate);
            }
            Event::Ack(seq) => m.on_ack(*seq),
            Event::Reset => {
                m.reset();
                out.connections.push(Vec::new());
            }
        }
    }
    for (i, r) in out.messages.iter_mut().enumerate() {
        r.fate = match (revoked.get(&i), by_script.get(&r.id)) {
            (Some(f), _) => *f,
            (None, Some((id, _))) => match m.status(*id) {
                MsgStatus::Queued { .. } => Fate::Queued,
                MsgStatus::Sending { .. } => Fate::Partial,
                MsgStatus::Written { .. } => Fate::Written,
                MsgStatus::Gone => Fate::Acked,
            },
            _ => Fate::Queued,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_numbers_take_hex_like_every_number() {
        let osd16 = EntityName {
            ty: EntityType::Osd,
            num: 16,
        };
        for s in ["entity osd.16", "entity osd.0x10", "entity osd.0X10"] {
            assert_eq!(parse(s).unwrap(), vec![Event::Entity(osd16)], "{s}");
        }
        for s in [
            "entity osd.",
            "entity osd.0x",
            "entity disk.1",
            "entity osd",
            "entity osd.+1",
        ] {
            let e = parse(s).unwrap_err();
            assert_eq!(e.line, 1, "{s}");
        }
    }
}
