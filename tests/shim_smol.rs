//! The `futures-io` shim on smol over real loopback TCP.
//!
//! A smol server (its own thread, one task per accepted socket, all on the same shim in
//! the server role, lossless with session adoption) and smol clients. Property: every
//! message not revoked is delivered exactly once, in order, byte-identical; a message
//! revoked before any byte of it went out is never delivered; the others at most once.
//!
//! The client transport is a real `smol::net::TcpStream` behind a wrapper that accepts a
//! random number of bytes per write (so messages are often left partly written, and
//! revoked then), and that can break after a byte budget (an injected transport failure:
//! the socket is shut down mid-stream).

#![cfg(feature = "smol")]

#[path = "common/sim.rs"]
#[allow(dead_code)]
mod sim;

#[path = "../examples/smol_client.rs"]
#[allow(dead_code)]
mod smol_client;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::conn::{Error, State};
use ceph_msgr::shim::futures_io::AsyncConnection;
use ceph_msgr::wire::handshake::EntityAddr;
use ceph_msgr::{Config, EntityName, EntityType, Event, Message, MsgId, MsgStatus, Revoked};
use futures_io::{AsyncRead, AsyncWrite};
use sim::Rng;
use smol::channel::{Receiver, Sender};
use smol::net::{TcpListener, TcpStream};
use smol::LocalExecutor;

/// Every test ends within this, or fails.
const DEADLINE: Duration = Duration::from_secs(60);

// ----- payloads ------------------------------------------------------------------------------

/// The message `tid` of client `key`: sizes and bytes follow from the pair, so the server
/// checks what it receives byte for byte without the client shipping it a copy.
fn payload(key: u32, tid: u64) -> (Bytes, Vec<Bytes>) {
    let mut rng = Rng::new((u64::from(key) << 40) ^ tid);
    let flen = match rng.below(4) {
        0 => 0,
        1 => rng.below(64),
        2 => rng.below(600),
        _ => rng.below(5000),
    } as usize;
    let dlen = match rng.below(10) {
        0..=3 => 0,
        4..=5 => rng.below(300),
        6..=8 => rng.below(9000),
        _ => 60_000 + rng.below(60_000),
    } as usize;
    let seed = rng.next() as u8;
    let front: Bytes = (0..flen)
        .map(|i| seed.wrapping_add((i as u8).wrapping_mul(7)))
        .collect();
    let data: Bytes = (0..dlen)
        .map(|i| seed ^ (i as u8).wrapping_mul(13) ^ (i >> 8) as u8)
        .collect();
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let n = (1 + rng.below(data.len() as u64) as usize).min(data.len() - at);
        chunks.push(data.slice(at..at + n));
        at += n;
    }
    (front, chunks)
}

fn message(key: u32, tid: u64) -> Message {
    let (front, chunks) = payload(key, tid);
    let mut m = Message::new(42).with_tid(tid).with_front(front);
    for c in chunks {
        m = m.with_data_chunk(c);
    }
    m
}

/// Keys (client nonces) at or above this are not test clients (the example): the server
/// does not check their bytes.
const FOREIGN_KEYS: u32 = 1000;

// ----- the client's transport ------------------------------------------------------------

/// A TCP stream that takes a random number of bytes per write and can break after a
/// byte budget.
struct TestIo {
    inner: TcpStream,
    rng: Rng,
    chunky: bool,
    fail_after: Option<u64>,
    written: u64,
    broken: bool,
    /// Break half-open: keep the socket open here (the peer sees nothing) instead of
    /// shutting it down.
    zombies: Option<Rc<RefCell<Vec<TcpStream>>>>,
}

impl TestIo {
    fn break_now(&mut self) -> io::Error {
        self.broken = true;
        match &self.zombies {
            Some(z) => z.borrow_mut().push(self.inner.clone()),
            None => {
                let _ = self.inner.shutdown(Shutdown::Both);
            }
        }
        io::Error::new(io::ErrorKind::ConnectionReset, "injected transport failure")
    }
}

impl AsyncRead for TestIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.broken {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TestIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.broken {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let mut cap = if this.chunky {
            match this.rng.below(6) {
                0 => 1,
                1 => 1 + this.rng.below(64) as usize,
                2 => 1 + this.rng.below(4096) as usize,
                3 => 1 + this.rng.below(65536) as usize,
                _ => usize::MAX,
            }
        } else {
            usize::MAX
        };
        if let Some(limit) = this.fail_after {
            let left = limit.saturating_sub(this.written);
            if left == 0 {
                return Poll::Ready(Err(this.break_now()));
            }
            cap = cap.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        let mut cut = Vec::with_capacity(bufs.len());
        let mut room = cap;
        for b in bufs {
            if room == 0 {
                break;
            }
            let n = b.len().min(room);
            cut.push(IoSlice::new(&b[..n]));
            room -= n;
        }
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, &cut);
        if let Poll::Ready(Ok(n)) = r {
            this.written += n as u64;
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

// ----- the server --------------------------------------------------------------------------

/// What the server tells the test.
#[derive(Debug)]
enum Note {
    Delivered {
        key: u32,
        tid: u64,
        /// Byte-identical to `payload(key, tid)`; `None` for foreign keys.
        identical: Option<bool>,
        front_len: usize,
    },
    NewSession,
    Adopted {
        /// The session still had a transport (the server had not noticed the failure).
        replaced_live: bool,
    },
    Done {
        key: u32,
        error: Option<String>,
    },
    Problem(String),
}

struct Server {
    addr: SocketAddr,
    notes: Receiver<Note>,
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn server_cfg() -> Config {
    let mut c = Config::server(EntityName {
        ty: EntityType::Osd,
        num: 0,
    });
    c.lossy = false;
    c.sessions = true;
    c
}

type Registry = Rc<RefCell<HashMap<u32, Sender<AsyncConnection<TcpStream>>>>>;

fn start_server() -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (ntx, nrx) = smol::channel::unbounded();
    let (stx, srx) = smol::channel::bounded(1);
    let thread = std::thread::spawn(move || {
        let ex = Rc::new(LocalExecutor::new());
        let listener = TcpListener::try_from(listener).expect("async listener");
        smol::block_on(ex.run(accept_loop(ex.clone(), listener, addr, ntx, srx)));
    });
    Server {
        addr,
        notes: nrx,
        stop: stx,
        thread: Some(thread),
    }
}

async fn accept_loop(
    ex: Rc<LocalExecutor<'static>>,
    listener: TcpListener,
    addr: SocketAddr,
    notes: Sender<Note>,
    stop: Receiver<()>,
) {
    let registry: Registry = Rc::default();
    loop {
        let accepted = smol::future::or(async { Some(listener.accept().await) }, async {
            let _ = stop.recv().await;
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Ok((sock, peer))) => {
                let _ = sock.set_nodelay(true);
                let task = transport_task(sock, peer, addr, registry.clone(), notes.clone());
                ex.spawn(task).detach();
            }
            Some(Err(e)) => {
                let _ = notes.try_send(Note::Problem(format!("accept: {e}")));
            }
        }
    }
}

/// One accepted socket: handshake until the peer says who it is, then hand the
/// connection to the session held for that peer, or start one.
async fn transport_task(
    sock: TcpStream,
    peer: SocketAddr,
    my_addr: SocketAddr,
    registry: Registry,
    notes: Sender<Note>,
) {
    let mut conn =
        AsyncConnection::server(server_cfg(), EntityAddr::new(Some(my_addr), 99), peer, sock);
    let info = match conn.next_event().await {
        Ok(Event::PeerIdentified(info)) => info,
        // The transport died before the peer identified itself.
        Ok(Event::Fault { .. } | Event::Closed { .. }) | Err(_) => return,
        Ok(other) => {
            let _ = notes.try_send(Note::Problem(format!("pending server: {other:?}")));
            return;
        }
    };
    let key = info.addr.nonce;
    let existing = registry.borrow().get(&key).cloned();
    let mut conn = match existing {
        Some(tx) => match tx.send(conn).await {
            Ok(()) => return,
            Err(back) => back.0, // that session just ended
        },
        None => conn,
    };
    conn.accept_new_session();
    let (tx, rx) = smol::channel::unbounded();
    registry.borrow_mut().insert(key, tx);
    let _ = notes.try_send(Note::NewSession);
    session_task(conn, rx, key, &notes).await;
    registry.borrow_mut().remove(&key);
}

enum Step {
    Event(io::Result<Event>),
    Transport(Option<Box<AsyncConnection<TcpStream>>>),
}

/// A session: its events, and the transports its peer comes back on.
async fn session_task(
    mut conn: AsyncConnection<TcpStream>,
    transports: Receiver<AsyncConnection<TcpStream>>,
    key: u32,
    notes: &Sender<Note>,
) {
    let problem = |s: String| {
        let _ = notes.try_send(Note::Problem(s));
    };
    loop {
        let step = smol::future::or(async { Step::Event(conn.next_event().await) }, async {
            Step::Transport(transports.recv().await.ok().map(Box::new))
        })
        .await;
        match step {
            Step::Event(Ok(Event::Message(m))) => {
                let identical = (key < FOREIGN_KEYS).then(|| {
                    let (front, chunks) = payload(key, m.header.tid);
                    m.front == front && m.middle.is_empty() && m.data == chunks.concat()
                });
                let _ = notes.try_send(Note::Delivered {
                    key,
                    tid: m.header.tid,
                    identical,
                    front_len: m.front.len(),
                });
            }
            Step::Event(Ok(Event::Closed { error, .. })) => {
                let _ = notes.try_send(Note::Done {
                    key,
                    error: error
                        .filter(|e| !matches!(e, Error::PeerClosed))
                        .map(|e| e.to_string()),
                });
                return;
            }
            Step::Event(Ok(Event::Fault { error })) => {
                if !matches!(error, Error::Transport(_)) {
                    problem(format!("server fault: {error}"));
                }
            }
            // A gap: a revoked frame whose header had gone out was lost with its
            // transport, so its seq never arrived (delivery is checked in full below).
            Step::Event(Ok(
                Event::Opened { .. }
                | Event::Acked(_)
                | Event::KeepaliveAck { .. }
                | Event::AbortedMessage(_)
                | Event::OutOfSequence {
                    duplicate: false, ..
                },
            )) => {}
            Step::Event(Ok(Event::SessionReset { unsent })) if unsent.is_empty() => {}
            Step::Event(Ok(other)) => problem(format!("server event {other:?}")),
            Step::Event(Err(e)) => {
                problem(format!("server session: {e}"));
                return;
            }
            Step::Transport(Some(c)) => match (conn.transport().is_some(), conn.adopt(*c)) {
                (replaced_live, Ok(())) => {
                    let _ = notes.try_send(Note::Adopted { replaced_live });
                }
                (_, Err(e)) => problem(format!("adopt: {e}")),
            },
            Step::Transport(None) => return,
        }
    }
}

// ----- the client --------------------------------------------------------------------------

struct Plan {
    key: u32,
    count: u64,
    /// Byte budgets of the first transports (one injected failure each); odd-numbered
    /// failures are half-open (the server is not told).
    failures: Vec<u64>,
    chunky: bool,
}

struct Sent {
    id: MsgId,
    tid: u64,
    revoked: Option<Revoked>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    removed_at_once: u64,
    aborted_mid_write: u64,
    revoked_other: u64,
    faults: u64,
    opens: u64,
    rtts: u64,
    payload_bytes: u64,
}

struct Client {
    addr: SocketAddr,
    plan: Plan,
    rng: Rng,
    transports: usize,
    sent: Vec<Sent>,
    /// Every entry before this one is gone from the send queue for good.
    scan_from: usize,
    counts: Counts,
    zombies: Rc<RefCell<Vec<TcpStream>>>,
}

impl Client {
    async fn connect(&mut self) -> TestIo {
        let inner = TcpStream::connect(self.addr).await.expect("connect");
        inner.set_nodelay(true).expect("nodelay");
        let fail_after = self.plan.failures.get(self.transports).copied();
        let zombies = (self.transports % 2 == 1).then(|| self.zombies.clone());
        self.transports += 1;
        TestIo {
            inner,
            rng: Rng::new(self.rng.next()),
            chunky: self.plan.chunky,
            fail_after,
            written: 0,
            broken: false,
            zombies,
        }
    }

    async fn handle(&mut self, conn: &mut AsyncConnection<TestIo>, ev: io::Result<Event>) {
        match ev.expect("client next_event") {
            Event::OpenTransport => {
                let io = self.connect().await;
                conn.reconnect(io).expect("reconnect");
            }
            Event::Opened { .. } => self.counts.opens += 1,
            Event::Fault { error } => {
                assert!(matches!(error, Error::Transport(_)), "client fault {error}");
                self.counts.faults += 1;
            }
            Event::KeepaliveAck { rtt } => self.counts.rtts += u64::from(rtt.is_some()),
            Event::Acked(_) => {}
            other => panic!("unexpected client event {other:?}"),
        }
    }

    /// The message partly written on the current transport, if any.
    fn sending(&mut self, conn: &AsyncConnection<TestIo>) -> Option<usize> {
        let mut i = self.scan_from;
        let mut all_gone = true;
        while i < self.sent.len() {
            match conn.status(self.sent[i].id) {
                MsgStatus::Gone => {
                    if all_gone {
                        self.scan_from = i + 1;
                    }
                }
                MsgStatus::Written { .. } => all_gone = false,
                MsgStatus::Sending { .. } => return Some(i),
                MsgStatus::Queued { .. } => return None,
            }
            i += 1;
        }
        None
    }

    async fn run(mut self) -> (Vec<Sent>, Counts, Duration) {
        let mut cfg = Config::client(EntityName::client(u64::from(self.plan.key)));
        cfg.lossy = false;
        cfg.nonce = self.plan.key;
        cfg.keepalive_interval = Some(Duration::from_millis(20));
        cfg.backoff_initial = Duration::from_millis(5);
        cfg.backoff_max = Duration::from_millis(40);
        let io = self.connect().await;
        let mut conn = AsyncConnection::client(cfg, self.addr, EntityType::Osd, io)
            .with_timer(smol::Timer::at);
        let start = Instant::now();
        let mut tid = 0;
        while tid < self.plan.count {
            // Queue a batch; revoke some at once.
            for _ in 0..1 + self.rng.below(12) {
                if tid == self.plan.count {
                    break;
                }
                tid += 1;
                let m = message(self.plan.key, tid);
                self.counts.payload_bytes += m.payload_len();
                let id = conn.send(m).expect("send");
                let mut s = Sent {
                    id,
                    tid,
                    revoked: None,
                };
                if self.rng.chance(4) {
                    let r = conn.revoke(id);
                    assert_eq!(r, Revoked::Removed { seq: None }, "revoke right after send");
                    s.revoked = Some(r);
                    self.counts.removed_at_once += 1;
                }
                self.sent.push(s);
            }
            // Write a little, then maybe revoke the message left partly written.
            if conn.connection().state() == State::Open {
                for _ in 0..self.rng.below(4) {
                    match conn.write_some().await {
                        Ok(n) if n > 0 => {}
                        _ => break,
                    }
                }
                if self.rng.chance(30) {
                    if let Some(i) = self.sending(&conn) {
                        let r = conn.revoke(self.sent[i].id);
                        assert!(matches!(r, Revoked::Aborted { .. }), "mid-write: {r:?}");
                        self.sent[i].revoked = Some(r);
                        self.counts.aborted_mid_write += 1;
                    }
                }
            }
            // Now and then revoke an older message, whatever its state.
            if self.rng.chance(3) && !self.sent.is_empty() {
                let lo = self.sent.len().saturating_sub(400);
                let i = lo + self.rng.below((self.sent.len() - lo) as u64) as usize;
                if self.sent[i].revoked.is_none() {
                    let r = conn.revoke(self.sent[i].id);
                    if r != Revoked::Unknown {
                        self.sent[i].revoked = Some(r);
                        self.counts.revoked_other += 1;
                    }
                }
            }
            // Take what is ready without waiting (cancelling next_event is safe) ...
            while let Some(ev) = smol::future::poll_once(conn.next_event()).await {
                self.handle(&mut conn, ev).await;
            }
            // ... and wait when too much is held.
            while conn.connection().messenger().len() > 600 {
                let ev = conn.next_event().await;
                self.handle(&mut conn, ev).await;
            }
        }
        // Everything acknowledged (or revoked), then one keepalive round trip.
        while !conn.connection().messenger().is_empty() {
            let ev = conn.next_event().await;
            self.handle(&mut conn, ev).await;
        }
        let elapsed = start.elapsed();
        let rtts = self.counts.rtts;
        while self.counts.rtts == rtts {
            let ev = conn.next_event().await;
            self.handle(&mut conn, ev).await;
        }
        conn.close().await.expect("close");
        loop {
            match conn.next_event().await.expect("events until Closed") {
                Event::Closed { error, unsent } => {
                    assert!(error.is_none(), "closed with {error:?}");
                    assert!(unsent.is_empty(), "{} unsent", unsent.len());
                    break;
                }
                Event::Acked(_) | Event::KeepaliveAck { .. } => {}
                other => panic!("after close: {other:?}"),
            }
        }
        assert!(conn.transport().is_none(), "transport dropped after close");
        (self.sent, self.counts, elapsed)
    }
}

fn client(addr: SocketAddr, plan: Plan) -> Client {
    Client {
        addr,
        rng: Rng::new(u64::from(plan.key) * 0x1234_5678),
        plan,
        transports: 0,
        sent: Vec::new(),
        scan_from: 0,
        counts: Counts::default(),
        zombies: Rc::default(),
    }
}

/// Runs `f` or fails after [`DEADLINE`].
fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    smol::block_on(smol::future::or(f, async {
        smol::Timer::after(DEADLINE).await;
        panic!("test exceeded {DEADLINE:?}");
    }))
}

/// Collects the server's notes until every key in `keys` is done.
fn collect(server: &Server, keys: &[u32]) -> Vec<Note> {
    bounded(async {
        let mut notes = Vec::new();
        let mut done = 0;
        while done < keys.len() {
            let n = server.notes.recv().await.expect("server alive");
            if let Note::Problem(p) = &n {
                panic!("server: {p}");
            }
            if let Note::Done { key, error } = &n {
                assert!(error.is_none(), "session {key} ended with {error:?}");
                done += 1;
            }
            notes.push(n);
        }
        notes
    })
}

/// Exactly once, in order, byte-identical for every message of `key` not revoked; never
/// for one removed before its first byte; at most once for the others. Returns the
/// number delivered.
fn check(key: u32, sent: &[Sent], notes: &[Note]) -> u64 {
    let by_tid: HashMap<u64, &Sent> = sent.iter().map(|s| (s.tid, s)).collect();
    let mut last = 0;
    let mut delivered = 0;
    for n in notes {
        let Note::Delivered {
            key: k,
            tid,
            identical,
            ..
        } = n
        else {
            continue;
        };
        if *k != key {
            continue;
        }
        assert_eq!(
            *identical,
            Some(true),
            "client {key} tid {tid}: bytes differ"
        );
        assert!(
            *tid > last,
            "client {key}: tid {tid} after {last} (dup or reorder)"
        );
        last = *tid;
        delivered += 1;
        let s = by_tid.get(tid).expect("a tid the client sent");
        assert_ne!(
            s.revoked,
            Some(Revoked::Removed { seq: None }),
            "client {key} tid {tid}: removed before any byte went out, yet delivered"
        );
    }
    let got: std::collections::HashSet<u64> = notes
        .iter()
        .filter_map(|n| match n {
            Note::Delivered { key: k, tid, .. } if *k == key => Some(*tid),
            _ => None,
        })
        .collect();
    for s in sent {
        if s.revoked.is_none() {
            assert!(got.contains(&s.tid), "client {key} tid {} lost", s.tid);
        }
    }
    delivered
}

fn count(notes: &[Note], f: impl Fn(&Note) -> bool) -> usize {
    notes.iter().filter(|n| f(n)).count()
}

// ----- tests -------------------------------------------------------------------------------

/// Two clients, 5,000 messages each, random partial writes, revokes at every stage.
#[test]
fn ten_thousand_messages_with_revokes() {
    let server = start_server();
    let addr = server.addr;
    let plans = [1u32, 2].map(|key| Plan {
        key,
        count: 5_000,
        failures: Vec::new(),
        chunky: true,
    });
    let t0 = Instant::now();
    let results = bounded(async {
        let mut it = plans.into_iter();
        let (a, b) = (it.next().expect("plan"), it.next().expect("plan"));
        smol::future::zip(client(addr, a).run(), client(addr, b).run()).await
    });
    let wall = t0.elapsed();
    let notes = collect(&server, &[1, 2]);
    let mut total = Counts::default();
    let mut delivered = 0;
    for (key, (sent, c, _)) in [(1, &results.0), (2, &results.1)] {
        delivered += check(key, sent, &notes);
        assert_eq!(c.faults, 0);
        assert_eq!(c.opens, 1);
        assert!(c.rtts >= 1, "keepalive round trip driven by the timer");
        total.removed_at_once += c.removed_at_once;
        total.aborted_mid_write += c.aborted_mid_write;
        total.revoked_other += c.revoked_other;
        total.payload_bytes += c.payload_bytes;
    }
    assert!(total.removed_at_once > 100, "{total:?}");
    assert!(total.aborted_mid_write > 50, "{total:?}");
    assert_eq!(count(&notes, |n| matches!(n, Note::NewSession)), 2);
    let secs = wall.as_secs_f64();
    println!(
        "smol shim: 10000 messages ({} delivered, {} removed at once, {} aborted mid-write, \
         {} other revokes), {:.1} MB payload, 2 clients, {:.3} s: {:.0} msgs/s, {:.1} MB/s",
        delivered,
        total.removed_at_once,
        total.aborted_mid_write,
        total.revoked_other,
        total.payload_bytes as f64 / 1e6,
        secs,
        10_000.0 / secs,
        total.payload_bytes as f64 / 1e6 / secs
    );
}

/// Six injected transport failures after a random byte budget, mid-stream: three shut the
/// socket down, three leave it half-open (the server hears nothing and still holds it).
/// The lossless client reconnects with a new socket and the server adopts it into the
/// session it holds: nothing lost, nothing twice.
#[test]
fn injected_failures_reconnect_losslessly() {
    let server = start_server();
    let mut rng = Rng::new(77);
    let failures: Vec<u64> = (0..6).map(|_| 100_000 + rng.below(1_400_000)).collect();
    let plan = Plan {
        key: 3,
        count: 3_000,
        failures,
        chunky: true,
    };
    let t0 = Instant::now();
    let (sent, c, _) = bounded(client(server.addr, plan).run());
    let wall = t0.elapsed();
    let notes = collect(&server, &[3]);
    let delivered = check(3, &sent, &notes);
    assert_eq!(c.faults, 6, "{c:?}");
    assert_eq!(c.opens, 7, "{c:?}");
    assert_eq!(count(&notes, |n| matches!(n, Note::NewSession)), 1);
    assert_eq!(count(&notes, |n| matches!(n, Note::Adopted { .. })), 6);
    // The three half-open failures: the session still held the old transport.
    let live = count(&notes, |n| {
        matches!(
            n,
            Note::Adopted {
                replaced_live: true
            }
        )
    });
    assert!(live >= 3, "{live} adoptions replaced a live transport");
    let secs = wall.as_secs_f64();
    println!(
        "smol shim, 6 injected failures: 3000 messages ({delivered} delivered, {} removed at \
         once, {} aborted mid-write, {} other revokes), {} reconnects, {:.3} s: {:.0} msgs/s",
        c.removed_at_once,
        c.aborted_mid_write,
        c.revoked_other,
        c.opens - 1,
        secs,
        3_000.0 / secs
    );
}

/// Plain writes (no chunking): the throughput figure of the shim itself.
#[test]
fn throughput_whole_writes() {
    let server = start_server();
    let plan = Plan {
        key: 4,
        count: 10_000,
        failures: Vec::new(),
        chunky: false,
    };
    let (sent, c, elapsed) = bounded(client(server.addr, plan).run());
    let notes = collect(&server, &[4]);
    let delivered = check(4, &sent, &notes);
    let secs = elapsed.as_secs_f64();
    println!(
        "smol shim, whole writes: {delivered} of 10000 messages delivered, {:.1} MB payload, \
         {:.3} s: {:.0} msgs/s, {:.1} MB/s",
        c.payload_bytes as f64 / 1e6,
        secs,
        10_000.0 / secs,
        c.payload_bytes as f64 / 1e6 / secs
    );
}

/// The `smol_client` example against the in-test server.
#[test]
fn example_client_against_smol_server() {
    let server = start_server();
    let opts = smol_client::Options::parse(
        [
            server.addr.to_string(),
            "--count".into(),
            "2000".into(),
            "--size".into(),
            "300".into(),
            "--keepalive-ms".into(),
            "10".into(),
        ]
        .map(String::from),
    )
    .expect("options");
    let s = bounded(smol_client::run(&opts)).expect("example run");
    assert_eq!(s.acked, 2000);
    assert_eq!(s.opens, 1);
    assert!(s.rtt.is_some());
    let key = std::process::id();
    let notes = collect(&server, &[key]);
    let tids: Vec<u64> = notes
        .iter()
        .filter_map(|n| match n {
            Note::Delivered {
                key: k,
                tid,
                front_len,
                ..
            } if *k == key => {
                assert_eq!(*front_len, 300);
                Some(*tid)
            }
            _ => None,
        })
        .collect();
    assert_eq!(tids, (1..=2000).collect::<Vec<_>>());
    println!(
        "smol_client example: 2000 x 300 B in {:.3} s ({:.0} msgs/s), keepalive rtt {:?}",
        s.elapsed.as_secs_f64(),
        2000.0 / s.elapsed.as_secs_f64().max(1e-9),
        s.rtt
    );
}

/// `next_event` reports a closed session as an error instead of hanging, and `reconnect`
/// refuses a transport nobody asked for.
#[test]
fn misuse_is_reported() {
    let server = start_server();
    let addr = server.addr;
    bounded(async {
        let sock = TcpStream::connect(addr).await.expect("connect");
        let mut conn = AsyncConnection::client(
            Config::client(EntityName::client(5)),
            addr,
            EntityType::Osd,
            sock,
        );
        assert!(matches!(conn.next_event().await, Ok(Event::Opened { .. })));
        conn.flush().await.expect("flush when open");
        let extra = TcpStream::connect(addr).await.expect("connect");
        assert!(conn.reconnect(extra).is_err());
        conn.close().await.expect("close");
        assert!(matches!(
            conn.next_event().await,
            Ok(Event::Closed { error: None, .. })
        ));
        let e = conn.next_event().await.expect_err("closed");
        assert_eq!(e.kind(), io::ErrorKind::NotConnected);
        assert!(conn.send(Message::new(1)).is_err());
        assert_eq!(
            conn.flush().await.expect_err("closed").kind(),
            io::ErrorKind::NotConnected
        );
    });
}

/// Without `with_timer`: the caller races `next_event` against its own timer, as the
/// module docs show.
async fn next_event_manual_timer(conn: &mut AsyncConnection<TcpStream>) -> io::Result<Event> {
    loop {
        let Some(deadline) = conn.poll_timeout() else {
            return conn.next_event().await;
        };
        let ev = smol::future::or(async { Some(conn.next_event().await) }, async {
            smol::Timer::at(deadline).await;
            None
        })
        .await;
        match ev {
            Some(ev) => return ev,
            None => conn.handle_timeout(Instant::now()),
        }
    }
}

/// `flush` waits for the handshake and then for every queued byte; keepalives fire with
/// caller-driven timers.
#[test]
fn flush_and_caller_driven_timers() {
    let server = start_server();
    let addr = server.addr;
    let sent = bounded(async {
        let sock = TcpStream::connect(addr).await.expect("connect");
        let mut cfg = Config::client(EntityName::client(6));
        cfg.nonce = 6;
        cfg.keepalive_interval = Some(Duration::from_millis(5));
        let mut conn = AsyncConnection::client(cfg, addr, EntityType::Osd, sock);
        let sent: Vec<Sent> = (1..=50)
            .map(|tid| Sent {
                id: conn.send(message(6, tid)).expect("send"),
                tid,
                revoked: None,
            })
            .collect();
        assert_eq!(conn.connection().state(), State::Handshake);
        conn.flush().await.expect("flush");
        assert_eq!(conn.connection().state(), State::Open);
        assert!(!conn.connection().wants_write());
        for s in &sent {
            assert!(
                matches!(
                    conn.status(s.id),
                    MsgStatus::Written { .. } | MsgStatus::Gone
                ),
                "tid {} not written after flush",
                s.tid
            );
        }
        let mut keepalives = 0;
        while keepalives < 3 {
            match next_event_manual_timer(&mut conn).await.expect("event") {
                Event::KeepaliveAck { rtt: Some(_) } => keepalives += 1,
                Event::Opened { .. } | Event::Acked(_) | Event::KeepaliveAck { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(conn.connection().stats().keepalives >= 3);
        conn.close().await.expect("close");
        sent
    });
    let notes = collect(&server, &[6]);
    assert_eq!(check(6, &sent, &notes), 50);
}
