//! The checks behind the cargo-fuzz targets in `fuzz/`. They live here so that the corpus
//! replay test (`tests/fuzz_corpus.rs`) runs exactly the same checks on stable Rust.
//! Each function panics on a violation; nothing else may panic.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use ceph_msgr::conn::{Config, Connection, Error, Event};
use ceph_msgr::recv::v2::{DeframeError, Deframed, Deframer};
use ceph_msgr::recv::{Limits, Receiver, Record, RecvBuffer, RecvError};
use ceph_msgr::v2::frame::Tag;
use ceph_msgr::wire::handshake::EntityAddr;
use ceph_msgr::wire::{EntityName, EntityType, FooterKind};
use ceph_msgr::{Message, Protocol};

use super::drive::{run_api, run_api_protocol};
use super::oracle::{self, Ev};
use super::pair::drain;
use super::sim::{Rng, Sim};
use super::{v1parse, v2oracle, v2parse};

#[derive(Arbitrary, Debug)]
enum Op {
    Queue {
        front: u16,
        middle: u8,
        data: u16,
        big: bool,
    },
    Write(u16),
    WriteAll,
    Revoke(u8),
    Ack(u8),
    Reset,
}

/// An `arbitrary` script for the send-path targets: footer kind (v1 only), slice count,
/// data chunk cuts and the events.
struct Script {
    old_footer: bool,
    slots: usize,
    cuts: Vec<usize>,
    evs: Vec<Ev>,
}

fn script(data: &[u8]) -> Script {
    let mut u = Unstructured::new(data);
    let old_footer = u.arbitrary::<bool>().unwrap_or(false);
    let slots = 1 + u.int_in_range(0..=7u8).unwrap_or(0) as usize;
    let cuts: Vec<usize> = (0..3)
        .map(|_| u.int_in_range(0..=5000usize).unwrap_or(0))
        .collect();
    let ops: Vec<Op> = u.arbitrary().unwrap_or_default();
    let features = if old_footer {
        oracle::DEFAULT_FEATURES & !oracle::FEATURE_MSG_AUTH
    } else {
        oracle::DEFAULT_FEATURES
    };
    let mut evs = vec![Ev::Features(features)];
    let mut ids = Vec::new();
    for op in ops.into_iter().take(200) {
        evs.push(match op {
            Op::Queue {
                front,
                middle,
                data,
                big,
            } => {
                let id = ids.len() as u64 + 1;
                ids.push(id);
                let data = u32::from(data) % 3000 + if big { 66_000 } else { 0 };
                Ev::Queue {
                    id,
                    ty: 42,
                    tid: id,
                    prio: 127,
                    version: 1,
                    compat: 1,
                    front: u32::from(front) % 2000,
                    middle: u32::from(middle) % 64,
                    data: if data == 0 { 0 } else { data },
                }
            }
            Op::Write(n) => Ev::Write(Some(u64::from(n))),
            Op::WriteAll => Ev::Write(None),
            Op::Revoke(i) => Ev::Revoke(u64::from(i) % (ids.len() as u64 + 2)),
            Op::Ack(s) => Ev::Ack(u64::from(s)),
            Op::Reset => Ev::Reset,
        });
    }
    if std::env::var("FUZZ_DEBUG").is_ok() {
        eprintln!(
            "slots {slots} cuts {cuts:?}\n{}",
            oracle::render_script(&evs)
        );
    }
    Script {
        old_footer,
        slots,
        cuts,
        evs,
    }
}

/// `events`: API events against the send path and the independent oracle: any divergence
/// from the oracle's bytes, or any framing error in the stream, is a crash.
pub fn events(data: &[u8]) {
    let Script {
        old_footer,
        slots,
        cuts,
        evs,
    } = script(data);
    let expected = oracle::run(&evs);
    let got = run_api(&evs, &cuts, slots);
    assert_eq!(got, expected, "messenger diverges from the oracle");
    // Whole frames of every connection parse strictly.
    let footer = if old_footer { 13 } else { 21 };
    for c in &got {
        let mut end = 0;
        while c.len() - end >= 54 {
            let h = ceph_msgr::wire::MsgHeader::decode(&c[end + 1..]).expect("header");
            let len = 54 + h.payload_len() as usize + footer;
            if end + len > c.len() {
                break;
            }
            end += len;
        }
        v1parse::parse_stream(&c[..end], !old_footer).expect("framed stream");
    }
}

/// `events_v2`: the same API events against the msgr2 framing (`Messenger` with
/// `Protocol::V2`) and the independent v2 model (`v2oracle.rs`): byte-identical output, and
/// every connection parses strictly as MESSAGE frames (`v2parse.rs`; the last frame may be
/// cut by a reset or the end of the script). The footer bit is ignored: msgr2 has one layout.
pub fn events_v2(data: &[u8]) {
    let Script {
        slots, cuts, evs, ..
    } = script(data);
    let expected = v2oracle::run(&evs);
    let got = run_api_protocol(&evs, &cuts, slots, Protocol::V2);
    if got != expected {
        let i = got
            .iter()
            .zip(&expected)
            .position(|(g, e)| g != e)
            .unwrap_or(got.len().min(expected.len()));
        let (g, e) = (got.get(i), expected.get(i));
        let at = match (g, e) {
            (Some(g), Some(e)) => g
                .iter()
                .zip(e)
                .position(|(a, b)| a != b)
                .unwrap_or(g.len().min(e.len())),
            _ => 0,
        };
        panic!(
            "messenger diverges from the v2 oracle: {} connections (oracle {}), connection {i} \
             differs at byte {at} (got {:?} bytes, oracle {:?})\n{}",
            got.len(),
            expected.len(),
            g.map(Vec::len),
            e.map(Vec::len),
            oracle::render_script(&evs)
        );
    }
    for (i, c) in got.iter().enumerate() {
        if let Err(e) = v2parse::parse_cut(c) {
            panic!("connection {i} does not parse: {e}");
        }
    }
}

fn records(rx: &mut Receiver, out: &mut Vec<Result<Record, RecvError>>) -> bool {
    loop {
        match rx.next_record() {
            Ok(Some(r)) => out.push(Ok(r)),
            Ok(None) => return true,
            Err(e) => {
                out.push(Err(e));
                return false;
            }
        }
    }
}

/// `decode`: arbitrary bytes through the receive parser, whole and in arbitrary splits:
/// no panic, the same records and error however the input is split, and the buffer never
/// holds more than one record's worth beyond what was fed and not yet parsed.
pub fn decode(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let footer = if mode & 1 == 0 {
        FooterKind::New
    } else {
        FooterKind::Old
    };
    let limits = if mode & 2 == 0 {
        Limits::default()
    } else {
        Limits {
            front: 512,
            middle: 64,
            data: 4096,
            eager_reserve: 1024,
            ..Limits::default()
        }
    };
    let (splits, input) = rest.split_at(rest.len().min(8));
    let mut whole = Vec::new();
    let mut rx = Receiver::new(footer, limits);
    rx.push(input);
    records(&mut rx, &mut whole);

    let mut pieces = Vec::new();
    let mut rx = Receiver::new(footer, limits);
    let mut at = 0;
    let mut k = 0;
    while at < input.len() {
        let step = 1 + usize::from(splits.get(k % splits.len().max(1)).copied().unwrap_or(0)) % 97;
        k += 1;
        let end = (at + step).min(input.len());
        rx.push(&input[at..end]);
        at = end;
        let ok = records(&mut rx, &mut pieces);
        assert!(
            rx.buffered() as u64 <= limits.max_record() + 97,
            "buffer beyond one record"
        );
        if !ok {
            break;
        }
    }
    assert_eq!(whole, pieces, "result depends on how the input is split");
}

/// `handshake`: arbitrary server bytes against a client, or arbitrary client bytes
/// against a server, fed in arbitrary pieces: no panic, output always drainable.
pub fn handshake(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 6789));
    let mut cfg = Config::client(EntityName::client(1));
    cfg.lossy = mode & 2 == 0;
    cfg.sessions = mode & 4 != 0;
    let mut c = if mode & 1 == 0 {
        let mut c = Connection::client(cfg, peer, EntityType::Mon);
        c.transport_connected(now);
        c
    } else {
        cfg.name = EntityName {
            ty: EntityType::Mon,
            num: 0,
        };
        Connection::server(cfg, EntityAddr::new(Some(peer), 0), peer)
    };
    let _ = drain(&mut c);
    let step = 1 + usize::from(mode >> 3);
    for chunk in rest.chunks(step) {
        c.handle_input(now, chunk);
        let _ = drain(&mut c);
        while c.poll_event().is_some() {}
        if c.state() == ceph_msgr::conn::State::AwaitingSession {
            c.accept_new_session(now);
        }
    }
    c.transport_failed(now, "fuzz input ended");
    while c.poll_event().is_some() {}
}

/// `session`: two connected connections (the simulator) with fuzzer-chosen write sizes,
/// delays, splits, revokes and failures; checks exactly-once, in-order delivery.
pub fn session(data: &[u8]) {
    let mut sim = Sim::with_rng(Rng::from_bytes(data));
    let steps = (data.len() / 2).clamp(10, 600);
    for _ in 0..steps {
        sim.step(40);
    }
    assert!(sim.settle(20_000), "did not settle: {:?}", sim.errors);
    if let Err(e) = sim.check() {
        panic!("{e}");
    }
}

/// Every frame the deframer gives for what `buf` holds, until it wants more bytes (`true`)
/// or fails (`false`, the error pushed last).
fn frames_v2(
    d: &mut Deframer,
    buf: &mut RecvBuffer,
    out: &mut Vec<Result<Deframed, DeframeError>>,
) -> bool {
    loop {
        match d.next_frame(buf) {
            Ok(Some(f)) => out.push(Ok(f)),
            Ok(None) => return true,
            Err(e) => {
                out.push(Err(e));
                return false;
            }
        }
    }
}

/// Limits for `decode_v2`, picked by the mode byte: the defaults, small ones, tiny ones
/// with no eager reservation, and the defaults without eager reservation.
fn limits_v2(mode: u8) -> Limits {
    match (mode >> 1) & 3 {
        0 => Limits::default(),
        1 => Limits {
            front: 512,
            middle: 64,
            data: 4096,
            total: 4096,
            control: 256,
            eager_reserve: 1024,
        },
        2 => Limits {
            front: 16,
            middle: 8,
            data: 64,
            total: 64,
            control: 48,
            eager_reserve: 0,
        },
        _ => Limits {
            eager_reserve: 0,
            ..Limits::default()
        },
    }
}

/// The receive buffer holds at most one frame's worth beyond what one piece fed, and its
/// memory follows what is buffered (plus at most the eager reservation of one frame).
fn check_v2_memory(buf: &RecvBuffer, limits: &Limits, piece: usize) {
    let max = limits.max_frame() + piece as u64;
    assert!(
        buf.buffered() as u64 <= max,
        "buffer of {} bytes beyond one frame ({max})",
        buf.buffered()
    );
    let cap_max = 2 * (buf.buffered() + piece) + limits.eager_reserve as usize + 4096;
    assert!(
        buf.capacity() <= cap_max,
        "buffer capacity {} for {} bytes buffered (at most {cap_max})",
        buf.capacity(),
        buf.buffered()
    );
}

/// `decode_v2`: arbitrary bytes through the msgr2 deframer (the banner already taken),
/// whole and in arbitrary splits: no panic, the same frames and the same error (including
/// the end-of-stream verdict of `finish`) however the input is split, and the buffer never
/// holds more than one frame's worth beyond what was fed. A third pass drops every MESSAGE
/// as soon as its head is in (`skip_message`): no panic, memory bounded, and the frames it
/// gets agree with the whole pass's up to the first MESSAGE (delivered or aborted) or error.
pub fn decode_v2(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let limits = limits_v2(mode);
    let (splits, input) = rest.split_at(rest.len().min(8));
    let step_at = |k: usize| {
        let s = splits.get(k % splits.len().max(1)).copied().unwrap_or(0);
        // Mostly small pieces, sometimes large ones.
        1 + if s & 0x80 == 0 {
            usize::from(s) % 97
        } else {
            usize::from(s & 0x7F) * 64
        }
    };

    let mut whole = Vec::new();
    let mut buf = limits.buffer();
    let mut d = Deframer::new(limits);
    buf.push(input);
    let whole_end = if frames_v2(&mut d, &mut buf, &mut whole) {
        Some(d.finish(&buf))
    } else {
        None
    };

    let mut pieces = Vec::new();
    let mut buf = limits.buffer();
    let mut d = Deframer::new(limits);
    let (mut at, mut k, mut ok) = (0, 0, true);
    while at < input.len() {
        let end = (at + step_at(k)).min(input.len());
        k += 1;
        buf.push(&input[at..end]);
        ok = frames_v2(&mut d, &mut buf, &mut pieces);
        check_v2_memory(&buf, &limits, end - at);
        at = end;
        if !ok {
            break;
        }
    }
    let pieces_end = ok.then(|| d.finish(&buf));
    assert_eq!(whole, pieces, "frames depend on how the input is split");
    assert_eq!(
        whole_end, pieces_end,
        "finish depends on how the input is split"
    );

    // Skipping every MESSAGE while it arrives.
    let mut skipped = Vec::new();
    let mut buf = limits.buffer();
    let mut d = Deframer::new(limits);
    let (mut at, mut k) = (0, 0);
    'feed: while at < input.len() {
        let end = (at + step_at(k)).min(input.len());
        k += 1;
        buf.push(&input[at..end]);
        loop {
            if let Some(h) = d.pending_message(&buf) {
                assert_eq!(d.skip_message(&mut buf), Some(h), "skip what is pending");
                continue;
            }
            match d.next_frame(&mut buf) {
                Ok(Some(Deframed::Message(_))) => panic!("a pending MESSAGE was not seen"),
                Ok(Some(f)) => skipped.push(f),
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
        check_v2_memory(&buf, &limits, end - at);
        at = end;
    }
    let _ = d.finish(&buf);
    // Before the first MESSAGE of the whole pass, both passes agree frame for frame.
    let before_message: Vec<Deframed> = whole
        .iter()
        .map_while(|r| match r {
            // Aborted MESSAGE frames are skipped too.
            Ok(Deframed::Message(_)) | Err(_) => None,
            Ok(Deframed::Aborted(a)) if a.tag == Tag::Message => None,
            Ok(f) => Some(f.clone()),
        })
        .collect();
    let n = before_message.len().min(skipped.len());
    assert_eq!(
        before_message[..n],
        skipped[..n],
        "skipping changes the frames before the first MESSAGE"
    );
}

/// Errors a msgr2 connection may fault with on peer bytes (and our own transport
/// failure): the msgr2 ones and the session rules both protocols share.
fn v2_peer_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Banner(_)
            | Error::Frame(_)
            | Error::Control(_)
            | Error::UnexpectedFrame(_)
            | Error::BadPeerType(_)
            | Error::AuthFailed
            | Error::AuthMethodRefused { .. }
            | Error::UnsupportedConMode(_)
            | Error::MissingFeatures { .. }
            | Error::UnexpectedWait
            | Error::SeqGap { .. }
            | Error::AbortedMessage { .. }
            | Error::Transport(_)
    )
}

/// What a connection's events say about its messages.
#[derive(Default, Debug)]
struct Tally {
    /// Messages handed back (Closed, SessionReset).
    handed: usize,
    /// Highest Acked.
    acked: u64,
    faults: usize,
    closed: bool,
    opened: bool,
    messages: usize,
}

fn tally(c: &mut Connection, t: &mut Tally, v2: bool) {
    while let Some(e) = c.poll_event() {
        let error = match e {
            Event::Opened { .. } => {
                t.opened = true;
                None
            }
            Event::Message(_) => {
                t.messages += 1;
                None
            }
            Event::Fault { error } => {
                t.faults += 1;
                Some(error)
            }
            Event::Closed { error, unsent } => {
                t.handed += unsent.len();
                t.closed = true;
                error
            }
            Event::SessionReset { unsent } => {
                t.handed += unsent.len();
                None
            }
            Event::Acked(n) => {
                t.acked = t.acked.max(n);
                None
            }
            _ => None,
        };
        if let Some(error) = error {
            // A detecting server that heard a v1 banner runs the v1 rules.
            assert!(
                !v2 || c.protocol() != Protocol::V2 || v2_peer_error(&error),
                "untyped msgr2 fault: {error:?} ({error})"
            );
            assert!(!error.to_string().is_empty());
        }
    }
}

/// Messages a `handshake_v2` client queues before the handshake.
const HANDSHAKE_V2_QUEUED: usize = 2;

/// `handshake_v2`: arbitrary peer bytes in arbitrary pieces against a msgr2 client (its
/// peer a mon or an OSD) or a server detecting v1 or v2 (`Config::protocol = V2`), lossy
/// or lossless: no panic; output always drainable; every fault is a msgr2 (or shared
/// session) error; every message the client queued is still held, handed back or acked,
/// and a lossless client that faulted still holds them all when its next transport opens.
///
/// Input: mode byte (bit 0 server, bit 1 lossless, bit 2 peer/own type OSD), 4 split
/// bytes, then the peer's bytes.
pub fn handshake_v2(data: &[u8]) {
    handshake_v2_outcome(data);
}

/// How far a `handshake_v2` input got.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeV2 {
    /// The session opened.
    pub opened: bool,
    /// Messages delivered.
    pub messages: usize,
}

/// [`handshake_v2`], telling how far the input got (for the seed tests).
pub fn handshake_v2_outcome(data: &[u8]) -> HandshakeV2 {
    let mut got = HandshakeV2::default();
    let Some((&mode, rest)) = data.split_first() else {
        return got;
    };
    let (splits, input) = rest.split_at(rest.len().min(4));
    let now = Instant::now();
    let sock = SocketAddr::from((Ipv4Addr::LOCALHOST, 3300));
    let server = mode & 1 != 0;
    let lossy = mode & 2 == 0;
    let ty = if mode & 4 == 0 {
        EntityType::Mon
    } else {
        EntityType::Osd
    };
    let mut cfg = Config::client(EntityName::client(1));
    cfg.protocol = Protocol::V2;
    cfg.lossy = lossy;
    let mut queued = 0;
    let mut c = if server {
        cfg.name = EntityName { ty, num: 0 };
        Connection::server(cfg, EntityAddr::new(Some(sock), 7), sock)
    } else {
        let mut c = Connection::client(cfg, sock, ty);
        assert!(matches!(c.poll_event(), Some(Event::OpenTransport)));
        c.transport_connected(now);
        for i in 0..HANDSHAKE_V2_QUEUED {
            c.send(Message::new(42).with_front(Bytes::from(vec![i as u8; 10 + i])))
                .expect("queue before the handshake");
            queued += 1;
        }
        c
    };
    let mut t = Tally::default();
    let out = drain(&mut c);
    if !server {
        assert!(
            out.starts_with(b"ceph v2\n"),
            "a v2 client starts with its banner"
        );
    }
    let (mut at, mut k) = (0, 0);
    while at < input.len() {
        let s = splits.get(k % splits.len().max(1)).copied().unwrap_or(0);
        k += 1;
        let end = (at + 1 + usize::from(s)).min(input.len());
        c.handle_input(now, &input[at..end]);
        at = end;
        let _ = drain(&mut c);
        tally(&mut c, &mut t, true);
        if c.state() == ceph_msgr::conn::State::AwaitingSession {
            c.accept_new_session(now);
        }
    }
    c.transport_failed(now, "fuzz input ended");
    let _ = drain(&mut c);
    tally(&mut c, &mut t, true);
    got = HandshakeV2 {
        opened: t.opened,
        messages: t.messages,
    };
    if server {
        return got;
    }
    let held = c.messenger().len();
    assert_eq!(
        held + t.handed + t.acked as usize,
        queued,
        "messages lost: {held} held, {t:?}"
    );
    if !lossy && !t.closed {
        // The fault kept them for the next transport.
        assert!(t.faults > 0, "the transport failure is a fault");
        assert_eq!(held, queued - t.acked as usize);
        let later = c.poll_timeout().expect("a lossless client backs off");
        c.handle_timeout(later);
        assert!(matches!(c.poll_event(), Some(Event::OpenTransport)));
        c.transport_connected(later);
        assert!(drain(&mut c).starts_with(b"ceph v2\n"));
        assert_eq!(c.messenger().len(), held, "kept across the fault");
    }
    got
}
