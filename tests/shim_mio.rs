#![cfg(feature = "mio")]
//! The mio reactor over real loopback sockets: lossless clients stream thousands of
//! messages of random sizes to a lossless server in another reactor thread, revoking
//! random in-flight messages and dropping their transports now and then. The server
//! must deliver every message that was not revoked exactly once, in order, byte for byte.

mod common;

use common::sim::Rng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::send::{MsgId, MsgStatus, Revoked};
use ceph_msgr::shim::mio::{ConnId, Notice, Options, Reactor};
use ceph_msgr::wire::{EntityName, EntityType};
use ceph_msgr::{Config, Event, Message};

/// Tids with this bit set belong to a run of small messages only.
const SMALL: u64 = 1 << 39;

/// Section lengths of message `tid`: mostly small, 3% between 256 KiB and 1 MiB (so the
/// bytes in flight outgrow the socket buffers and revokes hit frames mid-write); with
/// [`SMALL`], a front of up to 128 bytes only.
fn lens(tid: u64) -> (usize, usize) {
    let mut r = Rng::new(tid.wrapping_mul(0x2545_F491_4F6C_DD1D));
    if tid & SMALL != 0 {
        return (r.below(128) as usize, 0);
    }
    let front = r.below(300) as usize;
    let data = match r.below(100) {
        0..=2 => 256 * 1024 + r.below(768 * 1024),
        3..=40 => r.below(4_000),
        _ => 0,
    } as usize;
    (front, data)
}

/// The bytes of section `section` of message `tid`: both sides compute them, so the
/// receiver checks every byte without the sender keeping a copy.
fn payload(tid: u64, section: u64, len: usize) -> Bytes {
    let mut r = Rng::new(tid ^ (section << 56) ^ 0xC0FF_EE00);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&r.next().to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

struct Sent {
    tid: u64,
    revoked: Option<Revoked>,
}

/// What the server thread saw: each delivered tid and whether its bytes were right.
#[derive(Default)]
struct ServerLog {
    delivered: Vec<(u64, bool)>,
    resumed: u64,
    opened: u64,
    aborted: u64,
    errors: Vec<String>,
}

fn server_cfg() -> Config {
    let mut c = Config::server(EntityName {
        ty: EntityType::Osd,
        num: 0,
    });
    c.lossy = false;
    c.sessions = true;
    c.nonce = 77;
    c
}

/// Runs a lossless server reactor until `stop`; returns what it received.
fn spawn_server(
    stop: Arc<AtomicBool>,
) -> (SocketAddr, Arc<mio::Waker>, thread::JoinHandle<ServerLog>) {
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        // Small reads: the server takes its time, so client sockets fill up.
        let mut r = Reactor::with_options(Options {
            read_buffer: 16 * 1024,
            read_budget: 32 * 1024,
            ..Options::default()
        })
        .expect("reactor");
        let l = r
            .listen(SocketAddr::from(([127, 0, 0, 1], 0)), server_cfg())
            .expect("listen");
        tx.send((r.local_addr(l).expect("addr"), r.waker().expect("waker")))
            .expect("send addr");
        let mut log = ServerLog::default();
        while !stop.load(Ordering::SeqCst) {
            r.run_once(None, |_, id, n| match n {
                Notice::Event(Event::Message(m)) => {
                    let tid = m.header.tid;
                    let (flen, dlen) = lens(tid);
                    let ok = m.front == payload(tid, 0, flen)
                        && m.data == payload(tid, 1, dlen)
                        && m.middle.is_empty();
                    log.delivered.push((tid, ok));
                }
                Notice::Event(Event::AbortedMessage(_)) => log.aborted += 1,
                Notice::Event(Event::Opened { .. }) => log.opened += 1,
                Notice::Resumed { .. } => log.resumed += 1,
                Notice::Event(Event::SessionReset { unsent }) if unsent.is_empty() => {}
                Notice::Event(Event::Closed { error, .. }) => {
                    log.errors.push(format!("server {id} closed: {error:?}"));
                }
                Notice::Event(Event::SessionReset { .. }) => {
                    log.errors.push(format!("server {id} session reset"));
                }
                _ => {}
            })
            .expect("server turn");
        }
        log
    });
    let (addr, waker) = rx.recv().expect("server address");
    (addr, waker, h)
}

/// One stress run.
struct Run {
    /// Small messages only.
    small: bool,
    clients: u64,
    per_client: u64,
    /// Messages held (queued or unacknowledged) per client.
    window: usize,
    /// Messages queued per client per turn.
    batch: usize,
    /// Transport drops per client, evenly spread.
    disconnects: u64,
}

#[test]
fn ten_thousand_messages_with_revokes_and_reconnects() {
    // ~12 MB held per client on average: the sockets fill up and block mid-frame.
    let f = stress(&Run {
        small: false,
        clients: 4,
        per_client: 3_000,
        window: 600,
        batch: 200,
        disconnects: 3,
    });
    assert!(
        f.revoke_kinds.get("aborted").copied().unwrap_or(0) > 0,
        "no revoke hit a frame mid-write"
    );
}

#[test]
fn small_messages_with_revokes_and_reconnects() {
    stress(&Run {
        small: true,
        clients: 4,
        per_client: 25_000,
        window: 2_000,
        batch: 500,
        disconnects: 2,
    });
}

/// Figures of a stress run.
struct Figures {
    revoke_kinds: HashMap<&'static str, u64>,
}

/// Streams `per_client` messages from each of `clients` lossless clients (one reactor) to a
/// lossless server (another reactor, another thread), with random revokes and evenly
/// spread transport drops; checks exactly-once, in-order, byte-identical delivery.
fn stress(run: &Run) -> Figures {
    let &Run {
        small,
        clients,
        per_client,
        window,
        batch,
        disconnects: drops,
    } = run;

    let stop = Arc::new(AtomicBool::new(false));
    let (addr, waker, server) = spawn_server(Arc::clone(&stop));

    let mut r = Reactor::new().expect("reactor");
    let mut rng = Rng::new(0x5eed_0f10);
    let mut ids = Vec::new();
    for c in 0..clients {
        let mut cfg = Config::client(EntityName::client(100 + c));
        cfg.lossy = false;
        cfg.nonce = 1000 + c as u32;
        cfg.backoff_initial = Duration::from_millis(5);
        cfg.backoff_max = Duration::from_millis(50);
        ids.push(r.connect(cfg, addr, EntityType::Osd));
    }
    // Per client: every message sent, in order, and its MsgId.
    let mut sent: Vec<Vec<Sent>> = (0..clients).map(|_| Vec::new()).collect();
    let mut msg_ids: Vec<Vec<MsgId>> = (0..clients).map(|_| Vec::new()).collect();
    let mut bytes_sent = 0u64;
    let mut revokes = 0u64;
    let mut revoke_kinds: HashMap<&'static str, u64> = HashMap::new();
    let mut disconnects = 0u64;
    let mut dropped = vec![0u64; clients as usize];
    let mut client_errors = Vec::new();
    let mut keepalive_acks = 0u64;
    let mut turns = 0u64;

    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "timeout: sent {:?}",
            sent.iter().map(Vec::len).collect::<Vec<_>>()
        );
        let mut done = true;
        for (c, &id) in ids.iter().enumerate() {
            let held = r.conn(id).expect("client lives").messenger().len();
            let s = &mut sent[c];
            if (s.len() as u64) < per_client || held > 0 {
                done = false;
            }
            // Top up the window.
            let mut added = 0;
            while added < batch.min(window.saturating_sub(held)) && (s.len() as u64) < per_client {
                added += 1;
                let tid = ((c as u64) << 40) | (s.len() as u64 + 1) | if small { SMALL } else { 0 };
                let (flen, dlen) = lens(tid);
                let front = payload(tid, 0, flen);
                let data = payload(tid, 1, dlen);
                let mut m = Message::new(42).with_tid(tid).with_front(front);
                // Split data into two chunks sometimes.
                if dlen > 1 && rng.below(2) == 0 {
                    let cut = rng.below(dlen as u64) as usize;
                    m = m
                        .with_data_chunk(data.slice(..cut))
                        .with_data_chunk(data.slice(cut..));
                } else if dlen > 0 {
                    m = m.with_data_chunk(data);
                }
                bytes_sent += (flen + dlen) as u64;
                msg_ids[c].push(r.send(id, m).expect("queue"));
                s.push(Sent { tid, revoked: None });
            }
            // Revoke random held messages (queued, written, unacknowledged): about one
            // for every eight sent.
            let held = r.conn(id).expect("client lives").messenger().len();
            let mut tries = added / 8 + usize::from(rng.below(2) == 0);
            while held > 0 && tries > 0 {
                tries -= 1;
                let i = s.len() - 1 - (rng.below(held as u64) as usize).min(s.len() - 1);
                if s[i].revoked.is_some() {
                    continue;
                }
                let res = r.revoke(id, msg_ids[c][i]);
                let kind = match res {
                    Revoked::Removed { seq: None } => "removed",
                    Revoked::Removed { seq: Some(_) } => "removed-resent",
                    Revoked::Aborted { .. } => "aborted",
                    Revoked::Dropped { .. } => "dropped",
                    Revoked::Unknown => "already-acked",
                    _ => "completing",
                };
                *revoke_kinds.entry(kind).or_default() += 1;
                if res != Revoked::Unknown {
                    s[i].revoked = Some(res);
                    revokes += 1;
                }
            }
            // Aim at the write head too: the frame the socket took only part of.
            if held > 0 && rng.below(100) < 25 {
                let m = r.conn(id).expect("client lives").messenger();
                let head = (s.len() - held.min(s.len())..s.len())
                    .find(|&i| matches!(m.status(msg_ids[c][i]), MsgStatus::Sending { .. }));
                if let Some(i) = head.filter(|&i| s[i].revoked.is_none()) {
                    let res = r.revoke(id, msg_ids[c][i]);
                    assert!(matches!(res, Revoked::Aborted { .. }), "{res:?}");
                    *revoke_kinds.entry("aborted").or_default() += 1;
                    s[i].revoked = Some(res);
                    revokes += 1;
                }
            }
            // Drop the transport now and then: the session must survive it.
            if (s.len() as u64) * (drops + 1) / per_client > dropped[c] {
                dropped[c] += 1;
                if dropped[c] <= drops {
                    r.disconnect(id, "test: injected transport failure");
                    disconnects += 1;
                }
            }
            if rng.below(1000) < 5 {
                r.send_keepalive(id);
            }
        }
        if done {
            break;
        }
        r.run_once(Some(Duration::from_millis(20)), |_, id, n| match n {
            Notice::Event(Event::KeepaliveAck { .. }) => keepalive_acks += 1,
            Notice::Event(Event::Closed { error, .. }) => {
                client_errors.push(format!("client {id} closed: {error:?}"));
            }
            Notice::Event(Event::SessionReset { .. }) => {
                client_errors.push(format!("client {id} session reset"));
            }
            _ => {}
        })
        .expect("client turn");
        turns += 1;
        assert!(client_errors.is_empty(), "{client_errors:?}");
    }
    let elapsed = start.elapsed();
    // Everything is acknowledged, so the server has handed every message out.
    stop.store(true, Ordering::SeqCst);
    waker.wake().expect("wake");
    let log = server.join().expect("server thread");
    assert!(log.errors.is_empty(), "{:?}", log.errors);

    // Exactly once, in order, byte-identical.
    let mut by_tid: HashMap<u64, &Sent> = HashMap::new();
    for s in sent.iter().flatten() {
        by_tid.insert(s.tid, s);
    }
    let mut last = vec![0u64; clients as usize];
    let mut seen: HashMap<u64, u32> = HashMap::new();
    for &(tid, ok) in &log.delivered {
        let s = by_tid
            .get(&tid)
            .unwrap_or_else(|| panic!("unknown tid {tid:#x}"));
        let c = (tid >> 40) as usize;
        let tid_seq = tid & ((1 << 39) - 1);
        assert!(tid_seq > last[c], "tid {tid:#x} after {:#x}", last[c]);
        last[c] = tid_seq;
        *seen.entry(tid).or_default() += 1;
        assert!(ok, "tid {tid:#x} delivered with different bytes");
        assert!(
            !matches!(s.revoked, Some(Revoked::Removed { seq: None })),
            "tid {tid:#x} was removed before a byte went out, yet delivered"
        );
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "a message was delivered twice"
    );
    let missing: Vec<u64> = sent
        .iter()
        .flatten()
        .filter(|s| s.revoked.is_none() && !seen.contains_key(&s.tid))
        .map(|s| s.tid)
        .collect();
    assert!(
        missing.is_empty(),
        "not revoked, never delivered: {missing:x?}"
    );

    let total = clients * per_client;
    let secs = elapsed.as_secs_f64();
    let label = if small { "small" } else { "mixed" };
    println!(
        "shim_mio[{label}]: {total} messages ({:.1} MB payload) from {clients} lossless clients to one \
         server thread in {:.2} s: {:.0} messages/s, {:.1} MB/s ({turns} client turns)",
        bytes_sent as f64 / 1e6,
        secs,
        total as f64 / secs,
        bytes_sent as f64 / 1e6 / secs
    );
    println!(
        "shim_mio[{label}]: {} delivered, {revokes} revoked {revoke_kinds:?}, {} aborted frames \
         received, {disconnects} injected disconnects, {} server opens, {} resumed sessions, \
         {keepalive_acks} keepalive acks",
        log.delivered.len(),
        log.aborted,
        log.opened,
        log.resumed
    );
    assert!(total >= 10_000);
    assert!(
        revokes > total / 20,
        "too few revokes to mean anything: {revokes}"
    );
    assert_eq!(disconnects, clients * drops);
    assert!(
        log.resumed >= 1,
        "no reconnect exercised the session registry"
    );
    Figures { revoke_kinds }
}

/// A refused connect is a transport failure: a lossless client keeps retrying (with
/// backoff), a lossy one ends with its messages handed back.
#[test]
fn connect_failures_are_transport_failures() {
    // A port nobody listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let mut r = Reactor::new().expect("reactor");
    let lossy = r.connect(
        Config::client(EntityName::client(1)),
        target,
        EntityType::Mon,
    );
    r.send(lossy, Message::new(1)).expect("queue");
    let mut cfg = Config::client(EntityName::client(2));
    cfg.lossy = false;
    cfg.backoff_initial = Duration::from_millis(2);
    cfg.backoff_max = Duration::from_millis(4);
    let lossless = r.connect(cfg, target, EntityType::Mon);
    let mut lossy_closed = None;
    let mut faults = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while (lossy_closed.is_none() || faults < 3) && Instant::now() < deadline {
        r.run_once(Some(Duration::from_millis(50)), |_, id, n| match n {
            Notice::Event(Event::Closed { error, unsent }) if id == lossy => {
                lossy_closed = Some((error.map(|e| e.to_string()), unsent.len()));
            }
            Notice::Event(Event::Fault { .. }) if id == lossless => faults += 1,
            _ => {}
        })
        .expect("turn");
    }
    let (error, unsent) = lossy_closed.expect("lossy client closed");
    assert!(
        error.as_deref().is_some_and(|e| e.contains("refused")),
        "{error:?}"
    );
    assert_eq!(unsent, 1, "the queued message is handed back");
    assert!(faults >= 3, "lossless client retried {faults} times");
    assert!(
        r.conn(lossy).is_none(),
        "closed connections leave the reactor"
    );
    assert!(r.conn(lossless).is_some());
    let conn = r.remove(lossless).expect("removed");
    assert!(conn.stats().faults >= 3);
    assert!(r.is_empty());
}

/// Keeps a map of ids so a lossless server session keeps its id across transports.
#[test]
fn lossless_session_keeps_its_id_across_reconnects() {
    let mut r = Reactor::new().expect("reactor");
    let l = r
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)), server_cfg())
        .expect("listen");
    let addr = r.local_addr(l).expect("addr");
    let mut cfg = Config::client(EntityName::client(9));
    cfg.lossy = false;
    cfg.nonce = 4242;
    cfg.backoff_initial = Duration::from_millis(1);
    let client = r.connect(cfg, addr, EntityType::Osd);
    let mut server_ids: Vec<ConnId> = Vec::new();
    let mut resumed_from = Vec::new();
    let mut got = Vec::new();
    let mut opens = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    for round in 0..3u64 {
        r.send(
            client,
            Message::new(7)
                .with_tid(round + 1)
                .with_front(Bytes::from(vec![round as u8; 10])),
        )
        .expect("queue");
        while got.len() < (round + 1) as usize {
            assert!(Instant::now() < deadline, "timeout in round {round}");
            r.run_once(Some(Duration::from_millis(50)), |_, id, n| match n {
                Notice::Accepted { .. } => server_ids.push(id),
                Notice::Resumed { from } => resumed_from.push((id, from)),
                Notice::Event(Event::Message(m)) => got.push((id, m.header.tid, m.header.seq)),
                Notice::Event(Event::Opened { .. }) if id == client => opens += 1,
                _ => {}
            })
            .expect("turn");
        }
        r.disconnect(client, "test");
    }
    let session = got[0].0;
    assert!(got.iter().all(|g| g.0 == session), "{got:?}");
    assert_eq!(
        got.iter().map(|g| (g.1, g.2)).collect::<Vec<_>>(),
        [(1, 1), (2, 2), (3, 3)],
        "tids and seqs continue across transports"
    );
    assert_eq!(server_ids.len(), 3, "three transports accepted");
    assert_eq!(resumed_from.len(), 2, "{resumed_from:?}");
    assert!(resumed_from.iter().all(|&(to, _)| to == session));
    assert_eq!(
        r.session(&r.conn(session).unwrap().peer_addr()),
        Some(session)
    );
    assert!(opens >= 3);
    let info = r.info(session).expect("session info");
    assert_eq!(info.transports, 3);
}

/// Streams are read straight into the connection's receive buffer; a connection that
/// reads little goes through the shared scratch buffer, and one that went quiet gives its
/// receive buffer back after `release_idle_buffers_after` (the reactor wakes up for it by
/// itself). Messages arrive intact either way.
#[test]
fn quiet_connections_give_their_read_buffer_back_and_streams_arrive_intact() {
    let mut r = Reactor::with_options(Options {
        release_idle_buffers_after: Some(Duration::from_millis(200)),
        ..Options::default()
    })
    .expect("reactor");
    let l = r
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)), server_cfg())
        .expect("listen");
    let addr = r.local_addr(l).expect("addr");
    let mut cfg = Config::client(EntityName::client(3));
    cfg.lossy = false;
    let client = r.connect(cfg, addr, EntityType::Osd);
    let mut server = None;
    let mut got: Vec<(u64, bool)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let round = |r: &mut Reactor,
                 msgs: Vec<(u64, usize)>,
                 got: &mut Vec<(u64, bool)>,
                 server: &mut Option<ConnId>| {
        let want = got.len() + msgs.len();
        for (tid, len) in msgs {
            r.send(
                client,
                Message::new(7)
                    .with_tid(tid)
                    .with_data_chunk(payload(tid, 1, len)),
            )
            .expect("queue");
        }
        while got.len() < want {
            assert!(Instant::now() < deadline, "timeout");
            r.run_once(Some(Duration::from_millis(50)), |_, id, n| match n {
                Notice::Accepted { .. } => *server = Some(id),
                Notice::Event(Event::Message(m)) => {
                    let tid = m.header.tid;
                    got.push((tid, m.data == payload(tid, 1, m.data.len())));
                }
                _ => {}
            })
            .expect("turn");
        }
    };
    round(
        &mut r,
        (1..=5).map(|t| (t, 100)).collect(),
        &mut got,
        &mut server,
    );
    let server = server.expect("accepted");
    // Turns that would sleep 3 s unless the reactor wakes itself for the release (due
    // 200 ms after the last input).
    let released_after = |r: &mut Reactor| {
        let quiet_since = Instant::now();
        while r.info(server).expect("info").receive_buffer > 0 {
            r.run_once(Some(Duration::from_secs(3)), |_, _, _| {})
                .expect("turn");
            let t = quiet_since.elapsed();
            assert!(t < Duration::from_millis(2500), "not released after {t:?}");
        }
    };
    released_after(&mut r);
    let mut unused = None;
    round(
        &mut r,
        (6..=13).map(|t| (t, 1 << 20)).collect(),
        &mut got,
        &mut unused,
    );
    let streamed = r.info(server).expect("info").receive_buffer;
    assert!(
        streamed > 0,
        "a connection that just streamed keeps its buffer"
    );
    released_after(&mut r);
    round(&mut r, vec![(14, 100)], &mut got, &mut unused);
    assert_eq!(got.len(), 14);
    assert!(got.iter().all(|g| g.1), "every payload intact");
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        (1..=14).collect::<Vec<_>>()
    );
    let info = r.info(server).expect("info");
    assert_eq!(info.bytes_read, r.info(client).expect("info").bytes_written);
}
