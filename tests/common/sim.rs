//! A deterministic two-party simulator: a client [`Connection`] and a server side joined
//! by in-memory transports with random write sizes, random delays, injected transport
//! failures (at random points, or after exactly k bytes of one direction, noticed by
//! both sides, by one, or by the server first), random revokes and keepalives, on
//! virtual time — for msgr v1 and msgr2.1.
//!
//! msgr v1: the server keeps lossless sessions across transports (a registry keyed by
//! the client's nonce, [`Connection::adopt`]); the property is exactly-once in order.
//! msgr2: the server keeps no session across transports. Lossy, it says so (LOSSY in
//! SERVER_IDENT) and the lossless client restarts the session on every new transport,
//! resending every message it holds with fresh seqs; configured lossless, it does not,
//! and the client resends what it holds with the old seqs (the fresh server connection
//! accepts the gap). Either way delivery is at-least-once (see [`Sim::check`]).
//!
//! Everything random comes from one seed, so a failing scenario replays exactly.

use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::conn::{Config, Connection, Error, Event};
use ceph_msgr::send::{MsgId, Protocol, Revoked};
use ceph_msgr::wire::handshake::EntityAddr;
use ceph_msgr::wire::{EntityName, EntityType};
use ceph_msgr::Message;

/// SplitMix64: small, seedable, good enough for test scheduling. A fuzzer can drive it
/// instead: [`Rng::from_bytes`] takes its choices from the input first.
#[derive(Debug, Clone)]
pub struct Rng(u64, Vec<u8>, usize);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15, Vec::new(), 0)
    }
    /// Choices come from `bytes` (4 per draw) until they run out, then from SplitMix64.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(0x1234_5678, bytes.to_vec(), 0)
    }
    pub fn next(&mut self) -> u64 {
        if self.2 < self.1.len() {
            let end = (self.2 + 4).min(self.1.len());
            let mut b = [0u8; 8];
            b[..end - self.2].copy_from_slice(&self.1[self.2..end]);
            self.2 = end;
            return u64::from_le_bytes(b);
        }
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What a scenario runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The client's protocol.
    pub protocol: Protocol,
    /// The server listens with `Config::protocol = V2` (detects v1 or v2 from the
    /// client's banner) instead of `V1`. Always so for a v2 client.
    pub server_detects: bool,
    /// Every new transport may get a [`Cut`] (while faults are injected).
    pub handshake_cuts: bool,
    /// msgr2: the server is configured lossless (it still keeps no session across
    /// transports); otherwise lossy.
    pub v2_server_lossless: bool,
}

impl Options {
    pub fn v1() -> Self {
        Self {
            protocol: Protocol::V1,
            server_detects: false,
            handshake_cuts: true,
            v2_server_lossless: false,
        }
    }
    pub fn v2() -> Self {
        Self {
            protocol: Protocol::V2,
            server_detects: true,
            handshake_cuts: true,
            v2_server_lossless: false,
        }
    }
}

/// Which direction of a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    C2s = 0,
    /// Server to client.
    S2c = 1,
}

/// Who learns of a transport failure, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Both sides at once; bytes in flight are lost.
    Both = 0,
    /// The client only: the server's side stays half-open (a v1 session learns of it
    /// when the client comes back; a v2 server connection is just dropped).
    ClientOnly = 1,
    /// The server at once (its end failed), the client a random while later; bytes in
    /// flight are lost and what the client writes meanwhile goes nowhere.
    ServerFirst = 2,
    /// Neither side writes any more; every byte already written arrives, then both
    /// sides see the end of the stream (the peer got exactly k bytes).
    Drain = 3,
}

impl Notice {
    pub const ALL: [Notice; 4] = [
        Notice::Both,
        Notice::ClientOnly,
        Notice::ServerFirst,
        Notice::Drain,
    ];
}

/// Fail a transport once one direction has carried `at` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Cut {
    pub dir: Dir,
    pub at: usize,
    pub notice: Notice,
}

/// One direction of a transport: chunks with the virtual time they arrive.
#[derive(Default)]
struct Pipe {
    chunks: VecDeque<(Duration, Vec<u8>)>,
}

struct Transport {
    id: u64,
    c2s: Pipe,
    s2c: Pipe,
    /// Key of the server session driving this transport (after identification), or the
    /// pending (unidentified) server connection. A msgr2 server connection stays
    /// pending: it is its own session.
    server: ServerSide,
    /// Bytes written so far, per [`Dir`].
    written: [usize; 2],
    cut: Option<Cut>,
    /// Failing: `Drain` (no writes, deliver what is in flight), or dead and the client
    /// learns at this virtual time (`ServerFirst`).
    failing: Option<Failing>,
}

#[derive(Clone, Copy)]
enum Failing {
    Drain,
    ClientLearnsAt(Duration),
}

enum ServerSide {
    Pending(Box<Connection>),
    Session(u64),
}

/// What the client's application sent, and what became of it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub id: MsgId,
    pub tid: u64,
    pub front: Bytes,
    pub data: Bytes,
    pub revoked: Option<Revoked>,
    /// `delivered.len()` when it was revoked: deliveries from this index on came after.
    pub revoked_at: usize,
}

/// One message the server delivered.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub tid: u64,
    pub seq: u64,
    pub front: Bytes,
    pub data: Bytes,
    /// The transport it arrived on (for msgr2, the session).
    pub transport: u64,
}

/// Totals over a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub sent: u64,
    pub revoked: u64,
    /// Revokes by outcome: removed, aborted, completing, dropped, unknown.
    pub revoked_by: [u64; 5],
    pub delivered: u64,
    /// Deliveries of a tid delivered before (msgr2, only across a session restart).
    pub duplicates: u64,
    pub failures: u64,
    /// Failures by [`Notice`].
    pub failures_by: [u64; 4],
    /// Failures from a [`Cut`] inside the handshake (before the client opened).
    pub handshake_cuts: u64,
    /// Failures from a [`Cut`] after the client opened.
    pub stream_cuts: u64,
    pub reconnects: u64,
    pub aborted_seen: u64,
    /// Seq gaps the server accepted: a revoked message whose header had started out was
    /// lost with its transport (v1), or an aborted frame was dropped (v2); `check` still
    /// proves every message not revoked arrived.
    pub seq_gaps: u64,
    /// Keepalive answers (KEEPALIVE2_ACK / KEEPALIVE_ACK) either side received.
    pub keepalive_acks: u64,
}

impl Totals {
    pub fn add(&mut self, t: &Totals) {
        self.sent += t.sent;
        self.revoked += t.revoked;
        for i in 0..5 {
            self.revoked_by[i] += t.revoked_by[i];
        }
        self.delivered += t.delivered;
        self.duplicates += t.duplicates;
        self.failures += t.failures;
        for i in 0..4 {
            self.failures_by[i] += t.failures_by[i];
        }
        self.handshake_cuts += t.handshake_cuts;
        self.stream_cuts += t.stream_cuts;
        self.reconnects += t.reconnects;
        self.aborted_seen += t.aborted_seen;
        self.seq_gaps += t.seq_gaps;
        self.keepalive_acks += t.keepalive_acks;
    }
}

pub struct Sim {
    pub rng: Rng,
    pub opts: Options,
    base: Instant,
    now: Duration,
    pub client: Connection,
    sessions: HashMap<u64, Connection>,
    next_session: u64,
    transport: Option<Transport>,
    next_transport: u64,
    pub sent: Vec<Sent>,
    pub delivered: Vec<Delivered>,
    pub errors: Vec<String>,
    pub totals: Totals,
    server_addr: EntityAddr,
    next_tid: u64,
    /// The last seq the client's `Acked` events reported.
    acked_reported: u64,
    /// Whether faults are injected now (`step` with a non-zero percentage); `settle`
    /// turns them off.
    faults: bool,
    /// A cut for the next transport, set by the caller.
    forced_cut: Option<Cut>,
    /// Handshake bytes per direction (for choosing cuts), measured once per protocol.
    hs_len: [usize; 2],
}

fn client_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 40000))
}

/// Handshake bytes per direction for `opts`, measured on a clean run.
fn handshake_len(opts: Options) -> [usize; 2] {
    use std::sync::OnceLock;
    type Lens = HashMap<(u8, bool, bool), [usize; 2]>;
    static LENS: OnceLock<std::sync::Mutex<Lens>> = OnceLock::new();
    let key = (
        opts.protocol as u8,
        opts.server_detects,
        opts.v2_server_lossless,
    );
    let map = LENS.get_or_init(Default::default);
    if let Some(l) = map.lock().expect("lock").get(&key) {
        return *l;
    }
    let mut sim = Sim::build(Rng::new(0), opts, [0, 0]);
    sim.faults = false;
    sim.events();
    for _ in 0..100 {
        sim.pump_all();
        sim.events();
    }
    let t = sim.transport.as_ref().expect("a transport");
    assert!(
        sim.client.state() == ceph_msgr::conn::State::Open,
        "{:?}",
        sim.errors
    );
    let l = t.written;
    map.lock().expect("lock").insert(key, l);
    l
}

impl Sim {
    /// A msgr v1 scenario; odd seeds' servers detect the protocol from the banner.
    pub fn new(seed: u64) -> Self {
        let mut o = Options::v1();
        o.server_detects = seed % 2 == 1;
        Self::with_options(Rng::new(seed), o)
    }

    /// A msgr v1 scenario driven by `rng`.
    pub fn with_rng(rng: Rng) -> Self {
        Self::with_options(rng, Options::v1())
    }

    pub fn with_options(rng: Rng, opts: Options) -> Self {
        let hs = handshake_len(opts);
        Self::build(rng, opts, hs)
    }

    fn build(mut rng: Rng, opts: Options, hs_len: [usize; 2]) -> Self {
        let mut ccfg = Config::client(EntityName::client(4242));
        ccfg.lossy = false;
        ccfg.nonce = 7;
        ccfg.keepalive_interval = Some(Duration::from_millis(300));
        ccfg.strict_seq = rng.chance(50);
        ccfg.protocol = opts.protocol;
        let server_sock = SocketAddr::from((Ipv4Addr::LOCALHOST, 6789));
        let client = Connection::client(ccfg, server_sock, EntityType::Osd);
        Self {
            rng,
            opts,
            base: Instant::now(),
            now: Duration::ZERO,
            client,
            sessions: HashMap::new(),
            next_session: 0,
            transport: None,
            next_transport: 0,
            sent: Vec::new(),
            delivered: Vec::new(),
            errors: Vec::new(),
            acked_reported: 0,
            totals: Totals::default(),
            server_addr: EntityAddr::new(Some(server_sock), 99),
            next_tid: 1,
            faults: true,
            forced_cut: None,
            hs_len,
        }
    }

    /// The next transport fails once `cut.dir` has carried `cut.at` bytes.
    pub fn force_cut(&mut self, cut: Cut) {
        self.forced_cut = Some(cut);
    }

    /// Handshake bytes per direction ([`Dir`] order).
    pub fn handshake_bytes(&self) -> [usize; 2] {
        self.hs_len
    }

    fn at(&self) -> Instant {
        self.base + self.now
    }

    fn server_cfg(&self) -> Config {
        let mut c = Config::server(EntityName {
            ty: EntityType::Osd,
            num: 0,
        });
        c.keepalive_interval = Some(Duration::from_millis(450));
        if self.opts.server_detects || self.opts.protocol == Protocol::V2 {
            c.protocol = Protocol::V2;
        }
        if self.opts.protocol == Protocol::V2 {
            // No session outlives a msgr2 transport here. A lossy server says so (the
            // client restarts its session, fresh seqs); a lossless one does not (the
            // client resends what it holds with its old seqs, which the fresh server
            // connection takes as a gap).
            c.lossy = !self.opts.v2_server_lossless;
        } else {
            c.lossy = false;
            c.sessions = true;
        }
        c
    }

    /// Queues a client message with random sections.
    pub fn send_random(&mut self) {
        let tid = self.next_tid;
        self.next_tid += 1;
        let flen = match self.rng.below(4) {
            0 => 0,
            1 => self.rng.below(64),
            2 => self.rng.below(600),
            _ => self.rng.below(5000),
        } as usize;
        let dlen = match self.rng.below(5) {
            0 | 1 => 0,
            2 => self.rng.below(300),
            3 => self.rng.below(9000),
            _ => 60_000 + self.rng.below(80_000),
        } as usize;
        let seed = self.rng.next();
        let front: Bytes = (0..flen).map(|i| (seed as usize + i * 7) as u8).collect();
        let data: Bytes = (0..dlen)
            .map(|i| (seed as usize >> 8).wrapping_add(i * 13) as u8)
            .collect();
        let mut msg = Message::new(42).with_tid(tid).with_front(front.clone());
        // Split data into up to three chunks.
        let mut at = 0;
        while at < data.len() {
            let n = (1 + self.rng.below(data.len() as u64) as usize).min(data.len() - at);
            msg = msg.with_data_chunk(data.slice(at..at + n));
            at += n;
        }
        let id = self.client.send(msg).expect("client accepts messages");
        self.sent.push(Sent {
            id,
            tid,
            front,
            data,
            revoked: None,
            revoked_at: 0,
        });
        self.totals.sent += 1;
    }

    /// Revokes a random earlier message that was not revoked yet.
    pub fn revoke_random(&mut self) {
        if self.sent.is_empty() {
            return;
        }
        let i = self.rng.below(self.sent.len() as u64) as usize;
        if self.sent[i].revoked.is_some() {
            return;
        }
        let r = self.client.revoke(self.sent[i].id);
        self.totals.revoked_by[match r {
            Revoked::Removed { .. } => 0,
            Revoked::Aborted { .. } => 1,
            Revoked::Completing { .. } => 2,
            Revoked::Dropped { .. } => 3,
            _ => 4,
        }] += 1;
        self.sent[i].revoked = Some(r);
        self.sent[i].revoked_at = self.delivered.len();
        self.totals.revoked += 1;
    }

    /// Breaks the transport at a random point, noticed in a random way.
    pub fn fail_transport(&mut self) {
        let notice = Notice::ALL[self.rng.below(4) as usize];
        self.fail_with(notice);
    }

    fn fail_with(&mut self, notice: Notice) {
        let Some(t) = self.transport.as_mut() else {
            return;
        };
        if t.failing.is_some() {
            return;
        }
        self.totals.failures += 1;
        self.totals.failures_by[notice as usize] += 1;
        match notice {
            Notice::Both | Notice::ClientOnly => {
                let t = self.transport.take().expect("checked");
                let now = self.at();
                self.client.transport_failed(now, "injected failure");
                if notice == Notice::Both {
                    self.server_failed(t);
                } else {
                    self.retire(t);
                }
            }
            Notice::ServerFirst => {
                let later = self.now + Duration::from_micros(self.rng.below(200_000));
                t.failing = Some(Failing::ClientLearnsAt(later));
                t.c2s.chunks.clear();
                t.s2c.chunks.clear();
                let now = self.at();
                if let Some(s) = self.server_conn() {
                    s.transport_failed(now, "injected failure (server end)");
                }
            }
            Notice::Drain => t.failing = Some(Failing::Drain),
        }
    }

    /// The server's end of `t` learns it failed; then `t` is gone.
    fn server_failed(&mut self, mut t: Transport) {
        let now = self.at();
        match &mut t.server {
            ServerSide::Pending(c) => c.transport_failed(now, "injected failure"),
            ServerSide::Session(k) => {
                if let Some(s) = self.sessions.get_mut(k) {
                    s.transport_failed(now, "injected failure");
                }
            }
        }
        self.retire(t);
    }

    /// Drops `t`, after taking in its pending server connection's last events.
    fn retire(&mut self, mut t: Transport) {
        if let ServerSide::Pending(c) = &mut t.server {
            let mut evs = Vec::new();
            while let Some(ev) = c.poll_event() {
                evs.push(ev);
            }
            for ev in evs {
                self.server_event(t.id, ev, true);
            }
        }
    }

    fn server_conn(&mut self) -> Option<&mut Connection> {
        let t = self.transport.as_mut()?;
        match &mut t.server {
            ServerSide::Pending(c) => Some(c),
            ServerSide::Session(k) => self.sessions.get_mut(k),
        }
    }

    /// Moves bytes: each side writes a random amount of what it offers into its pipe.
    pub fn write_some(&mut self) {
        let limit_c = self.write_budget();
        let delay_c = Duration::from_micros(self.rng.below(3000));
        let limit_s = self.write_budget();
        let delay_s = Duration::from_micros(self.rng.below(3000));
        self.write_with([limit_c, limit_s], [delay_c, delay_s]);
    }

    fn write_with(&mut self, limits: [usize; 2], delays: [Duration; 2]) {
        let Some(mut t) = self.transport.take() else {
            return;
        };
        let now = self.now;
        let room = |t: &Transport, d: Dir, limit: usize| match t.cut {
            Some(c) if c.dir == d => limit.min(c.at.saturating_sub(t.written[d as usize])),
            _ => limit,
        };
        match t.failing {
            Some(Failing::Drain) => {}
            Some(Failing::ClientLearnsAt(_)) => {
                // The client writes into a dead socket: the bytes go nowhere.
                let mut void = Pipe::default();
                Self::write_side(
                    &mut self.client,
                    &mut void,
                    limits[0],
                    now,
                    &mut self.errors,
                );
            }
            None => {
                let lc = room(&t, Dir::C2s, limits[0]);
                t.written[0] += Self::write_side(
                    &mut self.client,
                    &mut t.c2s,
                    lc,
                    now + delays[0],
                    &mut self.errors,
                );
                let ls = room(&t, Dir::S2c, limits[1]);
                let server = match &mut t.server {
                    ServerSide::Pending(c) => Some(&mut **c),
                    ServerSide::Session(k) => self.sessions.get_mut(k),
                };
                if let Some(s) = server {
                    t.written[1] +=
                        Self::write_side(s, &mut t.s2c, ls, now + delays[1], &mut self.errors);
                }
            }
        }
        let cut = t
            .cut
            .filter(|c| t.failing.is_none() && t.written[c.dir as usize] >= c.at);
        self.transport = Some(t);
        if let Some(c) = cut {
            if self.client.state() == ceph_msgr::conn::State::Open {
                self.totals.stream_cuts += 1;
            } else {
                self.totals.handshake_cuts += 1;
            }
            self.fail_with(c.notice);
        }
    }

    fn write_budget(&mut self) -> usize {
        match self.rng.below(6) {
            0 => 0,
            1 => 1,
            2 => self.rng.below(16) as usize,
            3 => self.rng.below(500) as usize,
            4 => self.rng.below(20_000) as usize,
            _ => usize::MAX,
        }
    }

    /// Writes up to `limit` bytes of what `c` offers; returns how many.
    fn write_side(
        c: &mut Connection,
        pipe: &mut Pipe,
        limit: usize,
        arrive: Duration,
        errors: &mut Vec<String>,
    ) -> usize {
        let mut left = limit;
        while left > 0 {
            let t = c.poll_transmit();
            let mut slices = [IoSlice::new(&[]); 32];
            let k = t.fill(&mut slices);
            let mut buf = Vec::new();
            for s in &slices[..k] {
                let n = s.len().min(left - buf.len());
                buf.extend_from_slice(&s[..n]);
                if buf.len() == left {
                    break;
                }
            }
            if buf.is_empty() {
                break;
            }
            let n = buf.len();
            if let Err(e) = c.advance(n) {
                errors.push(format!("advance: {e}"));
                break;
            }
            left -= n;
            pipe.chunks.push_back((arrive, buf));
        }
        limit - left
    }

    /// Delivers pipe chunks whose time has come, split randomly, through either input
    /// path (chosen by the cut, so the scenarios' random streams stay as they were).
    pub fn deliver(&mut self) {
        let Some(mut t) = self.transport.take() else {
            return;
        };
        let now = self.at();
        while t.c2s.chunks.front().is_some_and(|(at, _)| *at <= self.now) {
            let (_, bytes) = t.c2s.chunks.pop_front().expect("front");
            let cut = self.rng.below(bytes.len() as u64 + 1) as usize;
            for part in [&bytes[..cut], &bytes[cut..]] {
                match &mut t.server {
                    ServerSide::Pending(c) => feed(c, now, part, cut),
                    ServerSide::Session(k) => {
                        if let Some(s) = self.sessions.get_mut(k) {
                            feed(s, now, part, cut);
                        }
                    }
                }
            }
        }
        while t.s2c.chunks.front().is_some_and(|(at, _)| *at <= self.now) {
            let (_, bytes) = t.s2c.chunks.pop_front().expect("front");
            let cut = self.rng.below(bytes.len() as u64 + 1) as usize;
            feed(&mut self.client, now, &bytes[..cut], cut);
            feed(&mut self.client, now, &bytes[cut..], cut);
        }
        if matches!(t.failing, Some(Failing::Drain))
            && t.c2s.chunks.is_empty()
            && t.s2c.chunks.is_empty()
        {
            // Everything written arrived; now both ends see the stream end. The server's
            // last events (messages from the drained bytes) are taken in first.
            self.transport = Some(t);
            self.events();
            let Some(t) = self.transport.take() else {
                return;
            };
            self.client.transport_failed(now, "end of stream");
            self.server_failed(t);
            return;
        }
        self.transport = Some(t);
    }

    /// Advances virtual time and fires timers.
    pub fn tick(&mut self, by: Duration) {
        self.now += by;
        let now = self.at();
        if let Some(Failing::ClientLearnsAt(at)) = self.transport.as_ref().and_then(|t| t.failing) {
            if at <= self.now {
                let t = self.transport.take().expect("checked");
                self.client.transport_failed(now, "peer closed");
                self.retire(t);
            }
        }
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        for s in self.sessions.values_mut() {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        if let Some(s) = self.server_conn() {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
    }

    fn new_transport(&mut self) {
        if let Some(old) = self.transport.take() {
            // The client gave up on it by itself; its driver closed the socket.
            self.server_failed(old);
        }
        let now = self.at();
        self.next_transport += 1;
        let cut = match self.forced_cut.take() {
            Some(c) => Some(c),
            None if self.faults && self.opts.handshake_cuts && self.rng.chance(30) => {
                let dir = if self.rng.chance(50) {
                    Dir::C2s
                } else {
                    Dir::S2c
                };
                // Every handshake byte offset, and a little beyond (the first frames).
                let span = self.hs_len[dir as usize];
                let at = self.rng.below(span as u64 + span as u64 / 2 + 2) as usize;
                let notice = Notice::ALL[self.rng.below(4) as usize];
                Some(Cut { dir, at, notice })
            }
            None => None,
        };
        let server = Connection::server(self.server_cfg(), self.server_addr, client_addr());
        self.transport = Some(Transport {
            id: self.next_transport,
            c2s: Pipe::default(),
            s2c: Pipe::default(),
            server: ServerSide::Pending(Box::new(server)),
            written: [0, 0],
            cut,
            failing: None,
        });
        self.client.transport_connected(now);
        // A server calls handle_timeout right after accepting (its handshake deadline).
        if let Some(s) = self.server_conn() {
            s.handle_timeout(now);
        }
    }

    /// One server event from transport `transport`'s session.
    fn server_event(&mut self, transport: u64, ev: Event, _retiring: bool) {
        let v2 = self.opts.protocol == Protocol::V2;
        match ev {
            Event::Message(m) => {
                self.totals.delivered += 1;
                if self.delivered.iter().any(|d| d.tid == m.header.tid) {
                    self.totals.duplicates += 1;
                }
                self.delivered.push(Delivered {
                    tid: m.header.tid,
                    seq: m.header.seq,
                    front: m.front,
                    data: m.data,
                    transport,
                });
            }
            Event::AbortedMessage(_) => self.totals.aborted_seen += 1,
            Event::OutOfSequence {
                duplicate: false, ..
            } => self.totals.seq_gaps += 1,
            Event::Fault {
                error: Error::Transport(_),
            } => {}
            // A lossy (msgr2) server's session ends with its transport.
            Event::Closed {
                error: Some(Error::Transport(_)),
                unsent,
            } if v2 && unsent.is_empty() => {}
            Event::Fault { error } => self.errors.push(format!("server fault: {error}")),
            Event::Opened { .. } | Event::Acked(_) => {}
            Event::KeepaliveAck { .. } => self.totals.keepalive_acks += 1,
            // The client's first connect reached us, our reply did not reach it: it comes
            // back with connect_seq 0 and we start the session over. It had sent nothing
            // yet, and we hold nothing for it.
            Event::SessionReset { unsent } if unsent.is_empty() => {}
            other => self
                .errors
                .push(format!("unexpected server event {other:?}")),
        }
    }

    /// Handles every pending event on both sides.
    pub fn events(&mut self) {
        let now = self.at();
        let v2 = self.opts.protocol == Protocol::V2;
        while let Some(ev) = self.client.poll_event() {
            match ev {
                Event::OpenTransport => self.new_transport(),
                Event::Opened { .. } => self.totals.reconnects += 1,
                Event::Fault { error } => {
                    if !matches!(error, Error::Transport(_)) {
                        self.errors.push(format!("client fault: {error}"));
                    }
                    // msgr2: the client restarted its session (the server is lossy), so
                    // acks count from zero again.
                    if v2 {
                        self.acked_reported =
                            self.acked_reported.min(self.client.messenger().acked());
                    }
                }
                Event::Closed { error, .. } => {
                    self.errors.push(format!("client closed: {error:?}"))
                }
                Event::SessionReset { .. } => self.errors.push("client session reset".into()),
                Event::Acked(seq) => {
                    if seq <= self.acked_reported {
                        self.errors
                            .push(format!("Acked({seq}) after Acked({})", self.acked_reported));
                    }
                    self.acked_reported = seq;
                }
                Event::KeepaliveAck { .. } => self.totals.keepalive_acks += 1,
                Event::Message(_) | Event::AbortedMessage(_) => {}
                other => self
                    .errors
                    .push(format!("unexpected client event {other:?}")),
            }
        }
        // Every ack the client took in, from an ack record or a resumed session's SEQ
        // exchange, was reported.
        let acked = self.client.messenger().acked();
        if acked != self.acked_reported {
            self.errors.push(format!(
                "client acked {acked}, events reported {}",
                self.acked_reported
            ));
            self.acked_reported = acked;
        }
        // The pending server connection may identify its peer (v1), or is the session
        // itself (v2).
        let mut identified = None;
        let mut evs = Vec::new();
        let mut tid = 0;
        if let Some(Transport {
            server: ServerSide::Pending(c),
            id,
            ..
        }) = self.transport.as_mut()
        {
            tid = *id;
            while let Some(ev) = c.poll_event() {
                match ev {
                    Event::PeerIdentified(info) => identified = Some(info),
                    other => evs.push(other),
                }
            }
        }
        for ev in evs {
            self.server_event(tid, ev, false);
        }
        if let Some(info) = identified {
            let Some(mut t) = self.transport.take() else {
                return;
            };
            let ServerSide::Pending(pending) =
                std::mem::replace(&mut t.server, ServerSide::Session(0))
            else {
                unreachable!()
            };
            // One client: key sessions by its address nonce.
            let key = u64::from(info.addr.nonce);
            if let Some(existing) = self.sessions.get_mut(&key) {
                existing.adopt(now, *pending);
            } else {
                let mut s = *pending;
                s.accept_new_session(now);
                self.sessions.insert(key, s);
                self.next_session += 1;
            }
            t.server = ServerSide::Session(key);
            self.transport = Some(t);
        }
        let mut evs = Vec::new();
        for s in self.sessions.values_mut() {
            while let Some(ev) = s.poll_event() {
                evs.push(ev);
            }
        }
        let cur = self.transport.as_ref().map_or(0, |t| t.id);
        for ev in evs {
            self.server_event(cur, ev, false);
        }
        // The server gave up on a live transport by itself (every such fault is also an
        // error above): its driver closes the socket, and the client hears of it.
        let live = self.transport.as_ref().is_some_and(|t| t.failing.is_none());
        let gave_up = self.server_conn().is_some_and(|s| {
            matches!(
                s.state(),
                ceph_msgr::conn::State::Standby | ceph_msgr::conn::State::Closed
            )
        });
        if live && gave_up {
            let at = self.now + Duration::from_millis(1);
            if let Some(t) = self.transport.as_mut() {
                t.failing = Some(Failing::ClientLearnsAt(at));
            }
        }
    }

    /// One random step.
    pub fn step(&mut self, fail_percent: u64) {
        self.faults = fail_percent > 0;
        match self.rng.below(100) {
            0..=14 => self.send_random(),
            15..=19 => self.revoke_random(),
            20..=54 => self.write_some(),
            55..=84 => self.deliver(),
            85..=97 => {
                let by = Duration::from_micros(self.rng.below(400_000));
                self.tick(by);
            }
            _ => {
                if self.rng.below(100) < fail_percent {
                    self.fail_transport();
                }
            }
        }
        self.events();
    }

    /// Runs without new failures or revokes until everything not revoked is delivered
    /// and the client holds nothing, or the step budget runs out.
    pub fn settle(&mut self, max_steps: usize) -> bool {
        self.faults = false;
        for _ in 0..max_steps {
            if self.client.messenger().is_empty()
                && self
                    .transport
                    .as_ref()
                    .is_some_and(|t| t.c2s.chunks.is_empty() && t.failing.is_none())
            {
                return true;
            }
            self.write_some();
            self.tick(Duration::from_millis(5));
            self.deliver();
            self.events();
        }
        false
    }

    /// Writes and delivers everything at once, no delays (measuring the handshake).
    fn pump_all(&mut self) {
        self.write_with([usize::MAX, usize::MAX], [Duration::ZERO, Duration::ZERO]);
        self.deliver();
    }

    /// The property of the scenario's protocol; returns a description of the first
    /// violation.
    ///
    /// Both protocols: no error on either side (no framing or CRC error, no unexpected
    /// event, acks reported once and in order); every delivered message is one that was
    /// sent, byte-identical; every message not revoked is delivered; a message revoked
    /// while removed or aborted is not delivered after the revoke, one revoked while
    /// completing or written at most once more; within one transport seqs and tids
    /// strictly increase.
    ///
    /// msgr v1 (sessions resume): exactly once, in order, overall; a message removed
    /// before any byte went out is never delivered.
    ///
    /// msgr2 (every transport a new session, the client resends what it holds): at least
    /// once; a tid delivered again is delivered on a later transport than before (never
    /// twice in one session); and nothing is skipped: when a transport delivers tid `b`
    /// right after tid `a` (or first), every non-revoked tid between them (or before
    /// `b`) was already delivered by an earlier transport.
    pub fn check(&self) -> Result<(), String> {
        if let Some(e) = self.errors.first() {
            return Err(e.clone());
        }
        let v2 = self.opts.protocol == Protocol::V2;
        let by_tid: HashMap<u64, &Sent> = self.sent.iter().map(|s| (s.tid, s)).collect();
        let mut seen: HashMap<u64, usize> = HashMap::new();
        // Per transport: the last (seq, tid) it delivered.
        let mut last_on: HashMap<u64, (u64, u64)> = HashMap::new();
        let mut last = 0;
        for (i, d) in self.delivered.iter().enumerate() {
            let tid = d.tid;
            let Some(s) = by_tid.get(&tid) else {
                return Err(format!("delivered unknown tid {tid}"));
            };
            if d.front != s.front || d.data != s.data {
                return Err(format!("tid {tid} delivered with different bytes"));
            }
            let (prev_seq, prev_tid) = last_on.get(&d.transport).copied().unwrap_or((0, 0));
            if d.seq <= prev_seq || tid <= prev_tid {
                return Err(format!(
                    "transport {}: tid {tid} seq {} delivered after tid {prev_tid} seq {prev_seq}",
                    d.transport, d.seq
                ));
            }
            last_on.insert(d.transport, (d.seq, tid));
            if v2 {
                // Nothing skipped: every non-revoked tid between the previous one on this
                // transport and this one came earlier (on an earlier transport).
                for c in prev_tid + 1..tid {
                    let revoked = by_tid.get(&c).is_some_and(|s| s.revoked.is_some());
                    if !revoked && !seen.contains_key(&c) {
                        return Err(format!(
                            "transport {}: tid {tid} delivered after tid {prev_tid}, skipping tid {c} (never delivered before)",
                            d.transport
                        ));
                    }
                }
            } else {
                if seen.contains_key(&tid) {
                    return Err(format!("tid {tid} delivered twice"));
                }
                if tid <= last {
                    return Err(format!("tid {tid} delivered after {last}"));
                }
                last = tid;
                if matches!(s.revoked, Some(Revoked::Removed { seq: None })) {
                    return Err(format!(
                        "tid {tid} was removed before any byte went out, yet delivered"
                    ));
                }
            }
            *seen.entry(tid).or_insert(0) += 1;
            if let Some(r) = s.revoked {
                if i >= s.revoked_at {
                    let after = self.delivered[s.revoked_at..=i]
                        .iter()
                        .filter(|x| x.tid == tid)
                        .count();
                    let ok = match r {
                        Revoked::Completing { .. } | Revoked::Dropped { .. } => after <= 1,
                        _ => false,
                    };
                    if !ok {
                        return Err(format!(
                            "tid {tid} revoked ({r:?}) yet delivered {after} time(s) after"
                        ));
                    }
                }
            }
        }
        for s in &self.sent {
            if s.revoked.is_none() && !seen.contains_key(&s.tid) {
                return Err(format!("tid {} never delivered", s.tid));
            }
        }
        Ok(())
    }
}

/// Hands `part` to `c`: copied in (`handle_input`) or appended into the receive buffer the
/// way a socket read does (`read_with`), which must behave the same.
fn feed(c: &mut Connection, now: Instant, part: &[u8], cut: usize) {
    if cut % 2 == 0 {
        c.handle_input(now, part);
    } else {
        let n = c.read_with(now, cut % 7 * 1000, |buf| {
            buf.extend_from_slice(part);
            part.len()
        });
        assert_eq!(n, part.len());
    }
}
