//! The Tokio shim over real loopback sockets.
//!
//! * `many_messages_with_revokes_and_failures`: 12,000 messages of mixed sizes from a
//!   lossless client to a lossless server, both through the shim, with revokes mixed in
//!   (right after queueing, after a short delay, a few messages later) and the client's
//!   transport broken every 600 messages. Every message not revoked is delivered exactly
//!   once, in order, byte-identical; a revoked one at most once, and never if none of its
//!   bytes had been written.
//! * `revoke_outcomes_through_the_handle`: each [`Revoked`] outcome, forced against a
//!   hand-driven server that completes the handshake and then reads only when told to.
//! * `demo_*`: the `ceph-msgr demo` binary.

mod common;

use common::sim::Rng;
use std::collections::HashMap;
use std::io::{IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::process::Command;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::conn::{Config, Error, Event};
use ceph_msgr::recv::Received;
use ceph_msgr::shim::tokio::{connect, serve, spawn_client, Handle, Options, ServerEvent};
use ceph_msgr::wire::handshake::EntityAddr;
use ceph_msgr::{
    Connection, EntityName, EntityType, Message, MsgId, MsgStatus, QueueError, Revoked,
};
use tokio::sync::{mpsc, oneshot};

fn osd() -> EntityName {
    EntityName {
        ty: EntityType::Osd,
        num: 0,
    }
}

fn lossless_client(nonce: u32) -> Config {
    let mut c = Config::client(EntityName::client(4242));
    c.lossy = false;
    c.nonce = nonce;
    c.backoff_initial = Duration::from_millis(1);
    c.backoff_max = Duration::from_millis(20);
    c
}

/// Where message `tid`'s payload lives in the pool: `front` bytes of front, then data.
#[derive(Clone, Copy)]
struct Sent {
    off: usize,
    front: usize,
    len: usize,
}

const POOL: usize = 512 * 1024;

fn make(pool: &Bytes, rng: &mut Rng, tid: u64) -> (Message, Sent) {
    // 16 B .. 128 KiB, log-uniform, plus the odd empty message.
    let len = if rng.below(50) == 0 {
        0
    } else {
        let lo = 16usize << rng.below(13);
        (lo + rng.below(lo as u64) as usize).min(128 * 1024)
    };
    let off = rng.below((POOL - 128 * 1024) as u64) as usize;
    let front = len.min(rng.below(2000) as usize);
    let mut msg = Message::new(42)
        .with_tid(tid)
        .with_front(pool.slice(off..off + front));
    let mut at = off + front;
    let end = off + len;
    while at < end {
        let n = (1 + rng.below((end - at) as u64) as usize).min(end - at);
        msg = msg.with_data_chunk(pool.slice(at..at + n));
        at += n;
    }
    (msg, Sent { off, front, len })
}

#[derive(Default)]
struct Delivered {
    tids: Vec<u64>,
    corrupt: Vec<u64>,
    aborted_frames: u64,
    bytes: u64,
    errors: Vec<String>,
    /// Server sessions that delivered messages.
    sessions: Vec<u64>,
}

/// Server events until the client is done and the transport that delivered `last` ended.
async fn collect(
    last: u64,
    mut srx: mpsc::Receiver<ServerEvent>,
    mut client_done: oneshot::Receiver<()>,
    pool: Bytes,
    sent: Arc<Mutex<HashMap<u64, Sent>>>,
) -> Delivered {
    let mut d = Delivered::default();
    let (mut seen_last, mut ended_after_last, mut done) = (false, false, false);
    loop {
        if done && seen_last && ended_after_last {
            return d;
        }
        let ev = tokio::select! {
            ev = srx.recv() => ev,
            _ = &mut client_done, if !done => { done = true; continue; }
        };
        let Some(ServerEvent { session, event, .. }) = ev else {
            return d;
        };
        match event {
            Event::Message(m) => {
                if !d.sessions.contains(&session) {
                    d.sessions.push(session);
                }
                let tid = m.header.tid;
                let s = sent.lock().unwrap().get(&tid).copied();
                let ok = s.is_some_and(|s| {
                    let body = &pool[s.off..s.off + s.len];
                    m.front[..] == body[..s.front]
                        && m.data[..] == body[s.front..]
                        && m.middle.is_empty()
                });
                if !ok {
                    d.corrupt.push(tid);
                }
                d.bytes += (m.front.len() + m.data.len()) as u64;
                d.tids.push(tid);
                seen_last |= tid == last;
            }
            Event::AbortedMessage(_) => d.aborted_frames += 1,
            Event::Fault { error } => {
                if !matches!(error, Error::Transport(_)) {
                    d.errors.push(format!("server fault: {error}"));
                }
                ended_after_last |= seen_last;
            }
            Event::Closed { error, .. } => {
                if !matches!(error, None | Some(Error::PeerClosed)) {
                    d.errors.push(format!("server closed: {error:?}"));
                }
                ended_after_last |= seen_last;
            }
            Event::SessionReset { .. } => d.errors.push("server session reset".into()),
            _ => {}
        }
    }
}

#[derive(Default, Debug)]
struct ClientSeen {
    opens: u64,
    faults: u64,
    errors: Vec<String>,
    unsent: usize,
    closed: bool,
}

async fn client_events(
    mut cev: mpsc::Receiver<Event>,
    keepalive_acks: mpsc::UnboundedSender<()>,
) -> ClientSeen {
    let mut c = ClientSeen::default();
    while let Some(ev) = cev.recv().await {
        match ev {
            Event::Opened { .. } => c.opens += 1,
            Event::Fault { error } => {
                c.faults += 1;
                if !matches!(error, Error::Transport(_)) {
                    c.errors.push(format!("client fault: {error}"));
                }
            }
            Event::KeepaliveAck { .. } => {
                let _ = keepalive_acks.send(());
            }
            Event::SessionReset { .. } => c.errors.push("client session reset".into()),
            Event::Closed { error, unsent } => {
                if let Some(e) = error {
                    c.errors.push(format!("client closed: {e}"));
                }
                c.unsent = unsent.len();
                c.closed = true;
            }
            _ => {}
        }
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_messages_with_revokes_and_failures() {
    tokio::time::timeout(Duration::from_secs(60), many_messages(None))
        .await
        .expect("the run finishes within 60 s");
}

/// The same with the client task busy-polling between wake-ups: nothing changes but
/// when the task sleeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_messages_with_revokes_and_failures_busy_polling() {
    let spin = Some(Duration::from_micros(200));
    tokio::time::timeout(Duration::from_secs(60), many_messages(spin))
        .await
        .expect("the run finishes within 60 s");
}

async fn many_messages(busy_poll: Option<Duration>) {
    const N: u64 = 12_000;
    const REVOKE_EVERY: u64 = 9;
    const FAIL_EVERY: u64 = 600;
    let mut rng = Rng::new(7);
    let pool: Bytes = (0..POOL).map(|_| rng.next() as u8).collect();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut scfg = Config::server(osd());
    scfg.lossy = false;
    let (stx, srx) = mpsc::channel(256);
    let server = tokio::spawn(serve(listener, scfg, stx));
    let sent_map: Arc<Mutex<HashMap<u64, Sent>>> = Arc::default();
    let (done_tx, done_rx) = oneshot::channel();
    let collector = tokio::spawn(collect(N, srx, done_rx, pool.clone(), sent_map.clone()));

    // A small flow-control window: the producer waits for acknowledgements.
    let opts = Options {
        max_queued_bytes: 2 << 20,
        busy_poll,
        ..Options::default()
    };
    let conn = Connection::client(lossless_client(0xabc), addr, EntityType::Osd);
    let (h, cev) = spawn_client(conn, addr, opts);
    let (ka_tx, mut ka_rx) = mpsc::unbounded_channel();
    let client_seen = tokio::spawn(client_events(cev, ka_tx));

    let start = Instant::now();
    let mut fates: HashMap<u64, Revoked> = HashMap::new();
    let mut later = Vec::new();
    let mut deferred: Vec<(u64, MsgId, u64)> = Vec::new();
    let mut injected = 0;
    let mut sent_bytes = 0u64;
    for tid in 1..=N {
        let (msg, s) = make(&pool, &mut rng, tid);
        sent_map.lock().unwrap().insert(tid, s);
        sent_bytes += s.len as u64;
        let id = h.send(msg).await.expect("send");
        let due: Vec<_> = deferred.iter().filter(|d| d.2 <= tid).copied().collect();
        deferred.retain(|d| d.2 > tid);
        for (t, id, _) in due {
            fates.insert(t, h.revoke(id).await);
        }
        if tid % REVOKE_EVERY == 0 && tid != N {
            match (tid / REVOKE_EVERY) % 3 {
                0 => {
                    fates.insert(tid, h.revoke(id).await);
                }
                1 => {
                    let h2: Handle = h.clone();
                    let delay = Duration::from_micros(rng.below(2000));
                    later.push(tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        (tid, h2.revoke(id).await)
                    }));
                }
                _ => deferred.push((tid, id, tid + 1 + rng.below(5))),
            }
        }
        if tid % FAIL_EVERY == FAIL_EVERY / 2 && h.inject_fault().await {
            injected += 1;
        }
    }
    for (t, id, _) in deferred {
        fates.insert(t, h.revoke(id).await);
    }
    for j in later {
        let (t, r) = j.await.unwrap();
        fates.insert(t, r);
    }
    h.flush()
        .await
        .expect("every message acknowledged or revoked");
    let elapsed = start.elapsed();

    // The session is open (the last failure was injected hundreds of messages ago and
    // those were just acknowledged): a keepalive is answered.
    h.keepalive().await;
    tokio::time::timeout(Duration::from_secs(10), ka_rx.recv())
        .await
        .expect("keepalive answered")
        .expect("event task alive");

    h.close().await;
    assert!(h.is_closed());
    assert_eq!(
        h.send(Message::new(1)).await,
        Err(QueueError::Closed),
        "a closed session refuses messages"
    );
    let seen = client_seen.await.unwrap();
    done_tx.send(()).unwrap();
    let d = collector.await.unwrap();
    server.await.unwrap().unwrap();

    // Checks.
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert!(seen.closed, "the client reported Closed");
    assert_eq!(seen.unsent, 0, "nothing handed back after flush");
    assert!(d.corrupt.is_empty(), "corrupt messages: {:?}", d.corrupt);
    assert_eq!(
        d.sessions.len(),
        1,
        "one server session delivered everything, across every transport"
    );
    let mut count: HashMap<u64, u32> = HashMap::new();
    let mut last = 0;
    for &t in &d.tids {
        *count.entry(t).or_default() += 1;
        assert!(t > last, "message {t} delivered after {last}");
        last = t;
    }
    let mut outcomes: HashMap<&str, u64> = HashMap::new();
    for tid in 1..=N {
        let n = count.get(&tid).copied().unwrap_or(0);
        match fates.get(&tid) {
            None => assert_eq!(n, 1, "message {tid} (not revoked) delivered {n} times"),
            Some(r) => {
                assert!(n <= 1, "revoked message {tid} delivered {n} times");
                let k = match r {
                    Revoked::Removed { seq: None } => {
                        assert_eq!(n, 0, "message {tid} removed unsent, yet delivered");
                        "removed"
                    }
                    Revoked::Removed { .. } => "removed (started earlier)",
                    Revoked::Aborted { .. } => "aborted",
                    Revoked::Dropped { .. } => "dropped",
                    _ => {
                        assert_eq!(n, 1, "message {tid} acknowledged before its revoke");
                        "already acked"
                    }
                };
                *outcomes.entry(k).or_default() += 1;
            }
        }
    }
    let opens = seen.opens;
    let secs = elapsed.as_secs_f64();
    println!(
        "{N} messages ({:.1} MB) in {secs:.2} s: {} delivered ({:.1} MB), {} revoked {outcomes:?}, \
         {} aborted frames dropped by the server, {injected} injected failures, {} reconnects; \
         {:.1} MB/s, {:.0} msgs/s",
        sent_bytes as f64 / 1e6,
        d.tids.len(),
        d.bytes as f64 / 1e6,
        fates.len(),
        d.aborted_frames,
        opens - 1,
        d.bytes as f64 / 1e6 / secs,
        d.tids.len() as f64 / secs,
    );
    assert!(injected >= 15, "only {injected} failures injected");
    // A failure injected while the session was still reconnecting from the previous one
    // costs no extra reconnect.
    assert!(
        (15..=injected).contains(&(opens - 1)),
        "{} reconnects for {injected} injected failures",
        opens - 1
    );
    assert!(fates.len() as u64 >= N / REVOKE_EVERY - 1);
    assert!(outcomes.get("removed").copied().unwrap_or(0) > 0);
    assert!(outcomes.get("dropped").copied().unwrap_or(0) > 0);
}

// ----- revoke outcomes against a hand-driven server ------------------------------------

enum Ctl {
    /// Complete the handshake, then report.
    Handshake,
    /// Report the next message or aborted frame (reading as needed).
    Next,
}

#[derive(Debug)]
enum Seen {
    Opened,
    Message(Received),
    Aborted(u64),
    Failed(String),
}

/// A server that drives a [`Connection`] by hand on a blocking socket: it accepts, waits
/// for `Handshake`, completes it, and from then on never writes (so nothing is ever
/// acknowledged) and reads only to answer `Next`.
fn hand_server(listener: StdListener, ctl: std_mpsc::Receiver<Ctl>, out: std_mpsc::Sender<Seen>) {
    let fail = |out: &std_mpsc::Sender<Seen>, e: String| {
        let _ = out.send(Seen::Failed(e));
    };
    let (mut sock, peer) = match listener.accept() {
        Ok(x) => x,
        Err(e) => return fail(&out, format!("accept: {e}")),
    };
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut cfg = Config::server(osd());
    cfg.lossy = false;
    let me = EntityAddr::new(Some(listener.local_addr().unwrap()), 1);
    let mut conn = Connection::server(cfg, me, peer);
    let mut buf = vec![0u8; 1 << 20];
    let mut pending = std::collections::VecDeque::new();
    let mut read_some = |conn: &mut Connection, sock: &mut StdStream| -> Result<(), String> {
        let n = sock.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("EOF".into());
        }
        conn.handle_input(Instant::now(), &buf[..n]);
        Ok(())
    };
    while let Ok(cmd) = ctl.recv() {
        match cmd {
            Ctl::Handshake => loop {
                while conn.wants_write() {
                    let t = conn.poll_transmit();
                    let mut sl = [IoSlice::new(&[]); 16];
                    let k = t.fill(&mut sl);
                    let n = sock.write_vectored(&sl[..k]).unwrap();
                    conn.advance(n).unwrap();
                }
                let mut opened = false;
                while let Some(ev) = conn.poll_event() {
                    match ev {
                        Event::Opened { .. } => opened = true,
                        Event::Message(m) => pending.push_back(Seen::Message(m)),
                        Event::AbortedMessage(h) => pending.push_back(Seen::Aborted(h.seq)),
                        _ => {}
                    }
                }
                if opened {
                    let _ = out.send(Seen::Opened);
                    break;
                }
                if let Err(e) = read_some(&mut conn, &mut sock) {
                    return fail(&out, e);
                }
            },
            Ctl::Next => loop {
                if let Some(s) = pending.pop_front() {
                    let _ = out.send(s);
                    break;
                }
                if let Err(e) = read_some(&mut conn, &mut sock) {
                    return fail(&out, e);
                }
                while let Some(ev) = conn.poll_event() {
                    match ev {
                        Event::Message(m) => pending.push_back(Seen::Message(m)),
                        Event::AbortedMessage(h) => pending.push_back(Seen::Aborted(h.seq)),
                        _ => {}
                    }
                }
            },
        }
    }
}

/// Asks the hand-driven server for something, off the runtime's threads.
async fn ask(
    ctl: &std_mpsc::Sender<Ctl>,
    out: &Arc<Mutex<std_mpsc::Receiver<Seen>>>,
    cmd: Ctl,
) -> Seen {
    ctl.send(cmd).unwrap();
    let out = out.clone();
    let seen = tokio::task::spawn_blocking(move || {
        out.lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(20))
            .expect("the hand-driven server answers")
    })
    .await
    .unwrap();
    if let Seen::Failed(e) = &seen {
        panic!("hand-driven server: {e}");
    }
    seen
}

async fn wait_opened(events: &mut mpsc::Receiver<Event>) {
    loop {
        match events.recv().await.expect("client alive") {
            Event::Opened { .. } => return,
            Event::Fault { error }
            | Event::Closed {
                error: Some(error), ..
            } => {
                panic!("client failed: {error}")
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_outcomes_through_the_handle() {
    tokio::time::timeout(Duration::from_secs(60), revoke_outcomes())
        .await
        .expect("the test finishes within 60 s");
}

async fn revoke_outcomes() {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (ctl, ctl_rx) = std_mpsc::channel();
    let (out_tx, out) = std_mpsc::channel();
    let out = Arc::new(Mutex::new(out));
    let server = std::thread::spawn(move || hand_server(listener, ctl_rx, out_tx));

    let (h, mut events) = connect(lossless_client(0x51), addr, EntityType::Osd);
    let small = |tid: u64| {
        Message::new(42)
            .with_tid(tid)
            .with_front(Bytes::from(vec![tid as u8; 100]))
    };

    // 1. The session is not open (the server has not answered): the message is held, no
    //    byte of it is out, and revoking it removes it without a seq.
    let x = h.send(small(1)).await.unwrap();
    assert_eq!(h.status(x).await, MsgStatus::Queued { seq: None });
    assert_eq!(h.revoke(x).await, Revoked::Removed { seq: None });
    assert_eq!(h.status(x).await, MsgStatus::Gone);

    assert!(matches!(
        ask(&ctl, &out, Ctl::Handshake).await,
        Seen::Opened
    ));
    wait_opened(&mut events).await;

    // 2. Fully written (the server has it) and never acknowledged: dropped, with seq 1
    //    (the removed message took none).
    let a = h.send(small(2)).await.unwrap();
    match ask(&ctl, &out, Ctl::Next).await {
        Seen::Message(m) => {
            assert_eq!((m.header.tid, m.header.seq), (2, 1));
            assert_eq!(&m.front[..], &[2u8; 100][..]);
        }
        other => panic!("expected message 2, got {other:?}"),
    }
    assert_eq!(h.status(a).await, MsgStatus::Written { seq: 1 });
    assert_eq!(h.revoke(a).await, Revoked::Dropped { seq: 1 });

    // 3. Partly written: the server stopped reading, so a 48 MiB message stalls in the
    //    socket buffers. Revoking it aborts it: the rest of its frame goes out as zeros.
    const BIG: usize = 48 << 20;
    let b = h
        .send(
            Message::new(42)
                .with_tid(3)
                .with_data_chunk(Bytes::from(vec![0xA5u8; BIG])),
        )
        .await
        .unwrap();
    let frame_len = 1 + 53 + BIG as u64 + 21;
    let written = loop {
        match h.status(b).await {
            MsgStatus::Sending { written, len, .. } if written > 0 => {
                assert_eq!(len, frame_len);
                break written;
            }
            MsgStatus::Queued { .. } | MsgStatus::Sending { .. } => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            other => panic!("message 3: unexpected status {other:?}"),
        }
    };
    match h.revoke(b).await {
        Revoked::Aborted {
            seq,
            head_left,
            zeros,
        } => {
            assert_eq!(seq, 2);
            assert!(written < frame_len);
            // What was written, what is still owed: the whole frame.
            assert!(head_left + zeros <= frame_len - written);
            assert!(zeros > 0);
        }
        other => panic!("expected Aborted, got {other:?} (written {written})"),
    }

    // 4. The server reads on: the aborted frame arrives whole and is dropped, and the
    //    next message follows it, framed, with the next seq.
    let c = h.send(small(4)).await.unwrap();
    match ask(&ctl, &out, Ctl::Next).await {
        Seen::Aborted(seq) => assert_eq!(seq, 2),
        other => panic!("expected the aborted frame, got {other:?}"),
    }
    match ask(&ctl, &out, Ctl::Next).await {
        Seen::Message(m) => assert_eq!((m.header.tid, m.header.seq), (4, 3)),
        other => panic!("expected message 4, got {other:?}"),
    }

    // 5. Unknown ids: already revoked.
    assert_eq!(h.revoke(a).await, Revoked::Unknown);
    assert_eq!(h.revoke(b).await, Revoked::Unknown);
    assert_eq!(h.revoke(c).await, Revoked::Dropped { seq: 3 });

    // 6. Close: nothing is held any more, so nothing is handed back.
    h.close().await;
    loop {
        match events.recv().await {
            Some(Event::Closed { unsent, .. }) => {
                assert!(unsent.is_empty());
                break;
            }
            Some(_) => {}
            None => panic!("no Closed event"),
        }
    }
    assert_eq!(h.revoke(c).await, Revoked::Unknown);
    drop(ctl);
    server.join().unwrap();
}

// ----- the demo binary -----------------------------------------------------------------

fn demo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ceph-msgr"))
        .arg("demo")
        .args(args)
        .output()
        .expect("run ceph-msgr demo")
}

#[test]
fn demo_runs_and_checks() {
    for protocol in ["v1", "v2"] {
        let o = demo(&[
            "--messages",
            "400",
            "--revoke-every",
            "7",
            "--fail-every",
            "100",
            "--quiet",
            "--timeout",
            "60",
            "--protocol",
            protocol,
        ]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        let stderr = String::from_utf8_lossy(&o.stderr);
        println!("{stdout}{stderr}");
        assert!(o.status.success(), "demo over {protocol} failed: {stderr}");
        let summary = stdout
            .lines()
            .find(|l| l.starts_with("summary: "))
            .expect("a summary line");
        let fields: HashMap<&str, &str> = summary["summary: ".len()..]
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let n = |k: &str| -> u64 { fields[k].parse().unwrap() };
        assert_eq!(fields["protocol"], protocol);
        assert_eq!(fields["sent"], "400");
        assert_eq!(fields["check"], "ok");
        // Failures at messages 100, 200 and 300 (none at the last message).
        assert_eq!(fields["reconnects"], "3");
        let revoked = n("revoked");
        assert_eq!(revoked, 57, "every 7th message but the last");
        let parts: u64 = ["removed", "aborted", "completing", "dropped", "acked"]
            .iter()
            .map(|k| n(k))
            .sum();
        assert_eq!(parts, revoked);
        let delivered = n("delivered");
        assert!((400 - revoked..=400).contains(&delivered));
        assert!(n("aborted_frames") <= n("aborted"), "{summary}");
        if protocol == "v1" {
            // One session resumed across transports: nothing comes twice.
            assert_eq!(n("sessions"), 1, "{summary}");
            assert_eq!(n("repeats"), 0, "{summary}");
        } else {
            // A new server session per transport (one that broke before delivering is
            // not counted); repeats are the resent tails.
            assert!((1..=4).contains(&n("sessions")), "{summary}");
        }
        assert!(stdout.contains("check: ok"));
    }
}

/// Over msgr2 with no injected failure there is one transport: exactly once, in order.
#[test]
fn demo_v2_without_failures_is_exactly_once() {
    let o = demo(&[
        "--messages",
        "300",
        "--fail-every",
        "0",
        "--revoke-every",
        "4",
        "--quiet",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("summary: protocol=v2 "), "{stdout}");
    assert!(stdout.contains(" repeats=0 "), "{stdout}");
    assert!(stdout.contains(" sessions=1 "), "{stdout}");
    assert!(stdout.contains("check: ok: every non-revoked message delivered exactly once"));
}

#[test]
fn demo_fails_loudly_when_a_check_fails() {
    // --sabotage makes the checker expect different bytes for message 1.
    let o = demo(&["--messages", "50", "--quiet", "--sabotage"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a failed check must fail the run");
    assert!(stdout.contains("check=FAILED"), "{stdout}");
    assert!(
        stderr.contains("demo check FAILED")
            && stderr.contains("message 1 delivered with different bytes"),
        "{stderr}"
    );
}

#[test]
fn demo_rejects_bad_arguments() {
    let o = demo(&["--messages", "lots"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a number"));
}
