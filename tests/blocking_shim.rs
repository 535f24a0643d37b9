//! The blocking shim over real loopback sockets, against a server built on the core (a
//! thread with a std socket, lossless, resuming the session across transports).

mod common;

use common::sim::Rng;
use std::io::{IoSlice, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::conn::{Config, Connection, Error, Event};
use ceph_msgr::send::{MsgId, MsgStatus, Revoked};
use ceph_msgr::shim::blocking::{BlockingConnection, ConnectError};
use ceph_msgr::wire::handshake::EntityAddr;
use ceph_msgr::wire::{EntityName, EntityType};
use ceph_msgr::Message;

/// What the server saw.
#[derive(Debug, Default)]
struct ServerLog {
    /// (tid, front, data) of every delivered message, in delivery order.
    delivered: Vec<(u64, Bytes, Bytes)>,
    aborted: u64,
    transports: u64,
    errors: Vec<String>,
}

fn write_all(c: &mut Connection, s: &mut TcpStream) -> std::io::Result<()> {
    loop {
        let n = {
            let t = c.poll_transmit();
            let mut slices = [IoSlice::new(&[]); 64];
            let k = t.fill(&mut slices);
            if k == 0 {
                return Ok(());
            }
            s.write_vectored(&slices[..k])?
        };
        c.advance(n).expect("advance within the offer");
    }
}

/// A lossless OSD-like server: one client session that survives transports. Every write
/// the server makes answers input (handshake, acks, keepalive acks), so a blocking read
/// per turn is enough. Ends when the client sends CLOSE.
fn spawn_server() -> (SocketAddr, JoinHandle<ServerLog>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let mut log = ServerLog::default();
        let mut session: Option<Connection> = None;
        let mut cfg = Config::server(EntityName {
            ty: EntityType::Osd,
            num: 0,
        });
        cfg.lossy = false;
        cfg.sessions = true;
        let me = EntityAddr::new(Some(addr), 77);
        loop {
            let Ok((mut s, peer)) = listener.accept() else {
                log.errors.push("accept failed".into());
                return log;
            };
            log.transports += 1;
            s.set_nodelay(true).unwrap();
            // Bounds a stuck test; every read normally returns long before.
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut pending = Some(Connection::server(cfg.clone(), me, peer));
            let mut buf = vec![0u8; 256 * 1024];
            'transport: loop {
                let now = Instant::now();
                let conn = match (&mut pending, &mut session) {
                    (Some(p), _) => p,
                    (None, Some(sess)) => sess,
                    (None, None) => unreachable!(),
                };
                if write_all(conn, &mut s).is_err() {
                    conn.transport_failed(now, "write failed");
                }
                // Events.
                let mut identified = false;
                let mut done = false;
                let mut transport_over = false;
                while let Some(ev) = conn.poll_event() {
                    match ev {
                        Event::PeerIdentified(_) => identified = true,
                        Event::Message(m) => {
                            log.delivered.push((m.header.tid, m.front, m.data));
                        }
                        Event::AbortedMessage(_) => log.aborted += 1,
                        Event::Fault { error } => {
                            if !matches!(error, Error::Transport(_)) {
                                log.errors.push(format!("server fault: {error}"));
                            }
                            transport_over = true;
                        }
                        Event::Closed { error, .. } => {
                            if error != Some(Error::PeerClosed) {
                                log.errors.push(format!("server closed: {error:?}"));
                            }
                            done = true;
                        }
                        Event::Opened { .. } | Event::Acked(_) | Event::KeepaliveAck { .. } => {}
                        // A revoked frame whose header had gone out, lost with its
                        // transport: its seq never arrives (delivery is checked in full).
                        Event::OutOfSequence {
                            duplicate: false, ..
                        } => {}
                        Event::SessionReset { unsent } if unsent.is_empty() => {}
                        other => log.errors.push(format!("server event {other:?}")),
                    }
                }
                if done {
                    return log;
                }
                if identified {
                    let p = pending.take().expect("pending identified");
                    match &mut session {
                        Some(sess) => sess.adopt(now, p),
                        None => {
                            let mut p = p;
                            p.accept_new_session(now);
                            session = Some(p);
                        }
                    }
                    continue 'transport;
                }
                if transport_over {
                    break 'transport;
                }
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        conn.transport_failed(Instant::now(), "read ended");
                    }
                    Ok(n) => conn.handle_input(Instant::now(), &buf[..n]),
                }
            }
        }
    });
    (addr, h)
}

fn client_cfg() -> Config {
    let mut cfg = Config::client(EntityName::client(4242));
    cfg.lossy = false;
    cfg.nonce = 4242;
    cfg.backoff_initial = Duration::from_millis(1);
    cfg.backoff_max = Duration::from_millis(20);
    cfg
}

struct Sent {
    id: MsgId,
    tid: u64,
    front: Bytes,
    data: Bytes,
    revoked: Option<Revoked>,
}

fn drain_events(c: &mut BlockingConnection, faults: &mut u64) {
    while let Some(ev) = c.recv(Duration::ZERO) {
        match ev {
            Event::Fault { .. } => *faults += 1,
            Event::Closed { error, .. } => panic!("client closed: {error:?}"),
            Event::SessionReset { .. } => panic!("unexpected session reset"),
            _ => {}
        }
    }
}

/// Waits until the server acknowledged everything the client holds.
fn settle(c: &mut BlockingConnection, faults: &mut u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !c.connection().messenger().is_empty() {
        assert!(Instant::now() < deadline, "not settled: {c:?}");
        if let Some(ev) = c.recv(Duration::from_millis(200)) {
            match ev {
                Event::Fault { .. } => *faults += 1,
                Event::Closed { error, .. } => panic!("client closed: {error:?}"),
                _ => {}
            }
        }
    }
}

fn check(sent: &[Sent], log: &ServerLog) {
    assert!(log.errors.is_empty(), "server errors: {:?}", log.errors);
    let by_tid: std::collections::HashMap<u64, &Sent> = sent.iter().map(|s| (s.tid, s)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut last = 0;
    for (tid, front, data) in &log.delivered {
        let s = by_tid
            .get(tid)
            .unwrap_or_else(|| panic!("unknown tid {tid}"));
        assert!(seen.insert(*tid), "tid {tid} delivered twice");
        assert!(*tid > last, "tid {tid} delivered after {last}");
        last = *tid;
        assert!(
            front == &s.front && data == &s.data,
            "tid {tid} delivered with other bytes"
        );
        assert!(
            !matches!(s.revoked, Some(Revoked::Removed { seq: None })),
            "tid {tid} was removed before any byte went out, yet delivered"
        );
    }
    for s in sent {
        if s.revoked.is_none() {
            assert!(seen.contains(&s.tid), "tid {} never delivered", s.tid);
        }
    }
}

#[test]
fn ten_thousand_messages_with_revokes_and_faults_exactly_once_in_order() {
    let (addr, server) = spawn_server();
    let started = Instant::now();
    let mut c =
        BlockingConnection::connect(client_cfg(), addr, EntityType::Osd, Duration::from_secs(5))
            .expect("connect");
    let mut rng = Rng::new(0x5eed_0001);
    let mut sent: Vec<Sent> = Vec::new();
    let mut faults = 0;
    let mut injected = 0;
    let mut lo = 0;
    let (mut removed, mut aborted, mut dropped) = (0, 0, 0);
    const N: u64 = 10_000;
    for tid in 1..=N {
        let flen = rng.below(200) as usize;
        let dlen = match rng.below(10) {
            0..=5 => 0,
            6..=8 => rng.below(4096) as usize,
            _ => 16_384 + rng.below(100_000) as usize,
        };
        let seed = rng.next() as u8;
        let front: Bytes = (0..flen).map(|i| seed.wrapping_add(i as u8)).collect();
        let data: Bytes = (0..dlen).map(|i| seed ^ (i as u8)).collect();
        let mut m = Message::new(42).with_tid(tid).with_front(front.clone());
        if !data.is_empty() {
            m = m.with_data_chunk(data.clone());
        }
        let id = c.send(m).expect("queue");
        sent.push(Sent {
            id,
            tid,
            front,
            data,
            revoked: None,
        });
        match rng.below(100) {
            // Write part of what is queued: revokes then land mid-frame.
            0..=29 => {
                let n = match rng.below(3) {
                    0 => rng.below(200),
                    1 => rng.below(5_000),
                    _ => rng.below(30_000),
                } as usize;
                c.write_some(n, Duration::from_secs(5));
                // Now and then, revoke the message the write stopped in.
                if rng.below(4) == 0 {
                    // Skip the settled prefix (acknowledged or revoked: gone).
                    while lo < sent.len()
                        && matches!(
                            c.connection().messenger().status(sent[lo].id),
                            MsgStatus::Gone
                        )
                    {
                        lo += 1;
                    }
                    for s in &mut sent[lo..] {
                        let st = c.connection().messenger().status(s.id);
                        if s.revoked.is_none() && matches!(st, MsgStatus::Sending { .. }) {
                            let r = c.revoke(s.id);
                            assert!(matches!(r, Revoked::Aborted { .. }), "{r:?}");
                            aborted += 1;
                            s.revoked = Some(r);
                            break;
                        }
                    }
                }
            }
            30..=33 => {
                // Revoke one of the last few messages.
                let back = rng.below(6) as usize;
                if let Some(i) = sent.len().checked_sub(1 + back) {
                    if sent[i].revoked.is_none() {
                        let r = c.revoke(sent[i].id);
                        match r {
                            Revoked::Removed { .. } => removed += 1,
                            Revoked::Aborted { .. } => aborted += 1,
                            Revoked::Dropped { .. } => dropped += 1,
                            _ => {}
                        }
                        sent[i].revoked = Some(r);
                    }
                }
            }
            _ => {}
        }
        // (Under load the previous fault's reconnect may still be waiting out its backoff:
        // then there is nothing to break.)
        if tid % 1000 == 500 && c.inject_transport_failure() {
            injected += 1;
        }
        drain_events(&mut c, &mut faults);
    }
    settle(&mut c, &mut faults);
    let elapsed = started.elapsed();
    let stats = c.stats();
    c.close(Duration::from_secs(5)).expect("close");
    let log = server.join().expect("server thread");
    check(&sent, &log);
    let not_revoked = sent.iter().filter(|s| s.revoked.is_none()).count();
    assert!(not_revoked >= 9_000);
    assert!(aborted > 0, "no revoke landed mid-frame");
    assert!(injected >= 5, "only {injected} faults injected");
    assert!(faults >= injected, "faults {faults} < injected {injected}");
    assert_eq!(stats.transports, 1 + injected);
    println!(
        "blocking shim: {N} messages ({not_revoked} not revoked; revoked: {removed} removed, \
         {aborted} aborted mid-frame, {dropped} dropped), {injected} injected faults, \
         {} transports: {} delivered, {} aborted seen by the server, {:.2} s, {:.0} msgs/s, {:.1} MB out",
        log.transports,
        log.delivered.len(),
        log.aborted,
        elapsed.as_secs_f64(),
        N as f64 / elapsed.as_secs_f64(),
        stats.bytes_out as f64 / 1e6,
    );
}

#[test]
fn throughput_small_messages() {
    let (addr, server) = spawn_server();
    let mut c =
        BlockingConnection::connect(client_cfg(), addr, EntityType::Osd, Duration::from_secs(5))
            .expect("connect");
    const N: u64 = 50_000;
    let front = Bytes::from(vec![7u8; 64]);
    let started = Instant::now();
    let mut faults = 0;
    for tid in 1..=N {
        c.send(Message::new(42).with_tid(tid).with_front(front.clone()))
            .unwrap();
        if tid % 256 == 0 {
            drain_events(&mut c, &mut faults);
        }
    }
    settle(&mut c, &mut faults);
    let elapsed = started.elapsed();
    c.close(Duration::from_secs(5)).expect("close");
    let log = server.join().unwrap();
    assert!(log.errors.is_empty(), "{:?}", log.errors);
    assert_eq!(log.delivered.len() as u64, N);
    assert!(log.delivered.windows(2).all(|w| w[0].0 + 1 == w[1].0));
    assert_eq!(faults, 0);
    println!(
        "blocking shim throughput: {N} messages of 64 B front in {:.3} s: {:.0} msgs/s",
        elapsed.as_secs_f64(),
        N as f64 / elapsed.as_secs_f64()
    );
}

#[test]
fn keepalive_round_trip_and_events_kept_in_order() {
    let (addr, server) = spawn_server();
    let mut c =
        BlockingConnection::connect(client_cfg(), addr, EntityType::Osd, Duration::from_secs(5))
            .expect("connect");
    assert!(c.handshake_time().is_some());
    c.send(Message::new(42).with_tid(1)).unwrap();
    let rtt = c.keepalive(Duration::from_secs(5)).expect("keepalive ack");
    let rtt = rtt.expect("KEEPALIVE2 negotiated: the ack echoes our stamp");
    assert!(rtt < Duration::from_secs(5));
    // The ack for message 1 arrived before or with the keepalive ack and was kept.
    let mut acked = false;
    while let Some(ev) = c.recv(Duration::from_millis(200)) {
        if let Event::Acked(1) = ev {
            acked = true;
        }
        if acked {
            break;
        }
    }
    assert!(acked, "Acked(1) kept for recv");
    c.close(Duration::from_secs(5)).unwrap();
    let log = server.join().unwrap();
    assert_eq!(log.delivered.len(), 1);
    println!("blocking shim keepalive rtt over loopback: {rtt:?}");
}

#[test]
fn connect_errors_are_typed() {
    let t = Duration::from_secs(3);
    // Refused: a port nobody listens on (bind, learn the port, close).
    let port = {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap()
    };
    let e = BlockingConnection::connect(client_cfg(), port, EntityType::Osd, t).unwrap_err();
    assert!(matches!(e, ConnectError::Refused(_)), "{e:?}");

    // Timeout: the listener accepts (kernel backlog) but never says a word.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let at = Instant::now();
    let e = BlockingConnection::connect(
        client_cfg(),
        silent.local_addr().unwrap(),
        EntityType::Osd,
        Duration::from_millis(300),
    )
    .unwrap_err();
    assert!(matches!(e, ConnectError::Timeout), "{e:?}");
    assert!(at.elapsed() < Duration::from_secs(2));

    // Closed: the server accepts and hangs up.
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let a = l.local_addr().unwrap();
    let h = std::thread::spawn(move || drop(l.accept().unwrap()));
    let e = BlockingConnection::connect(client_cfg(), a, EntityType::Osd, t).unwrap_err();
    assert!(matches!(e, ConnectError::Closed(_)), "{e:?}");
    h.join().unwrap();

    // Protocol: a msgr2-only peer.
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let a = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(
            b"ceph v2\n\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        )
        .unwrap();
        let mut b = [0u8; 512];
        let _ = s.read(&mut b);
    });
    let e = BlockingConnection::connect(client_cfg(), a, EntityType::Osd, t).unwrap_err();
    assert!(matches!(e, ConnectError::Protocol(_)), "{e:?}");
    assert!(e.to_string().contains("msgr2"), "{e}");
    h.join().unwrap();
}

#[test]
fn keepalive_without_keepalive2_returns_at_once() {
    let (addr, server) = spawn_server();
    let mut cfg = client_cfg();
    cfg.features &= !ceph_msgr::wire::handshake::features::MSGR_KEEPALIVE2;
    let mut c = BlockingConnection::connect(cfg, addr, EntityType::Osd, Duration::from_secs(5))
        .expect("connect");
    let t = Instant::now();
    assert_eq!(c.keepalive(Duration::from_secs(5)), Ok(None));
    assert!(t.elapsed() < Duration::from_secs(1));
    c.send(Message::new(42).with_tid(9)).unwrap();
    c.flush(Duration::from_secs(5)).unwrap();
    c.close(Duration::from_secs(5)).unwrap();
    let log = server.join().unwrap();
    assert_eq!(log.delivered.len(), 1);
    assert!(log.errors.is_empty(), "{:?}", log.errors);
}
