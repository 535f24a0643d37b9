//! The checks behind the cargo-fuzz targets in `fuzz/`. They live here so that the corpus
//! replay test (`tests/fuzz_corpus.rs`) runs exactly the same checks on stable Rust.
//! Each function panics on a violation; nothing else may panic.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};
use ceph_msgr::conn::{Config, Connection};
use ceph_msgr::recv::{Limits, Receiver, Record, RecvError};
use ceph_msgr::wire::handshake::EntityAddr;
use ceph_msgr::wire::{EntityName, EntityType, FooterKind};

use super::drive::run_api;
use super::oracle::{self, Ev};
use super::pair::drain;
use super::sim::{Rng, Sim};
use super::v1parse;

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

/// `events`: API events against the send path and the independent oracle: any divergence
/// from the oracle's bytes, or any framing error in the stream, is a crash.
pub fn events(data: &[u8]) {
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
