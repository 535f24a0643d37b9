//! A deterministic two-party simulator: a client [`Connection`] and a server session
//! registry joined by in-memory transports with random write sizes, random delays,
//! injected transport failures and random revokes, on virtual time.
//!
//! Everything random comes from one seed, so a failing scenario replays exactly.

use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::conn::{Config, Connection, Error, Event};
use ceph_msgr::send::{MsgId, Revoked};
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
    /// index of the pending (unidentified) server connection.
    server: ServerSide,
    alive: bool,
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
}

/// Totals over a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub sent: u64,
    pub revoked: u64,
    pub delivered: u64,
    pub failures: u64,
    pub reconnects: u64,
    pub aborted_seen: u64,
    /// Seq gaps the server accepted: a revoked message whose header had started out was
    /// lost with its transport, so its seq never arrived (`check` still proves that every
    /// message not revoked arrived exactly once, in order).
    pub seq_gaps: u64,
}

pub struct Sim {
    pub rng: Rng,
    base: Instant,
    now: Duration,
    pub client: Connection,
    sessions: HashMap<u64, Connection>,
    next_session: u64,
    transport: Option<Transport>,
    next_transport: u64,
    pub sent: Vec<Sent>,
    pub delivered: Vec<(u64, Bytes, Bytes)>,
    pub errors: Vec<String>,
    pub totals: Totals,
    server_addr: EntityAddr,
    next_tid: u64,
    /// The last seq the client's `Acked` events reported.
    acked_reported: u64,
}

fn client_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 40000))
}

impl Sim {
    pub fn new(seed: u64) -> Self {
        Self::with_rng(Rng::new(seed))
    }

    pub fn with_rng(mut rng: Rng) -> Self {
        let mut ccfg = Config::client(EntityName::client(4242));
        ccfg.lossy = false;
        ccfg.nonce = 7;
        ccfg.keepalive_interval = Some(Duration::from_millis(300));
        ccfg.strict_seq = rng.chance(50);
        let server_sock = SocketAddr::from((Ipv4Addr::LOCALHOST, 6789));
        let client = Connection::client(ccfg, server_sock, EntityType::Osd);
        Self {
            rng,
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
        }
    }

    fn at(&self) -> Instant {
        self.base + self.now
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
        self.sent[i].revoked = Some(r);
        self.totals.revoked += 1;
    }

    /// Breaks the transport. The client always notices; the server notices at once or
    /// only when the client comes back (a half-open connection).
    pub fn fail_transport(&mut self) {
        let Some(mut t) = self.transport.take() else {
            return;
        };
        t.alive = false;
        self.totals.failures += 1;
        let now = self.at();
        self.client.transport_failed(now, "injected failure");
        if self.rng.chance(70) {
            if let ServerSide::Session(k) = t.server {
                if let Some(s) = self.sessions.get_mut(&k) {
                    s.transport_failed(now, "injected failure");
                }
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
        let Some(mut t) = self.transport.take() else {
            return;
        };
        let now = self.now;
        let limit_c = self.write_budget();
        let delay_c = Duration::from_micros(self.rng.below(3000));
        Self::write_side(
            &mut self.client,
            &mut t.c2s,
            limit_c,
            now + delay_c,
            &mut self.errors,
        );
        let limit_s = self.write_budget();
        let delay_s = Duration::from_micros(self.rng.below(3000));
        let server = match &mut t.server {
            ServerSide::Pending(c) => Some(&mut **c),
            ServerSide::Session(k) => self.sessions.get_mut(k),
        };
        if let Some(s) = server {
            Self::write_side(s, &mut t.s2c, limit_s, now + delay_s, &mut self.errors);
        }
        self.transport = Some(t);
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

    fn write_side(
        c: &mut Connection,
        pipe: &mut Pipe,
        limit: usize,
        arrive: Duration,
        errors: &mut Vec<String>,
    ) {
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
                return;
            }
            let n = buf.len();
            if let Err(e) = c.advance(n) {
                errors.push(format!("advance: {e}"));
                return;
            }
            left -= n;
            pipe.chunks.push_back((arrive, buf));
        }
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
        self.transport = Some(t);
    }

    /// Advances virtual time and fires timers.
    pub fn tick(&mut self, by: Duration) {
        self.now += by;
        let now = self.at();
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        for s in self.sessions.values_mut() {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
    }

    /// Handles every pending event on both sides.
    pub fn events(&mut self) {
        let now = self.at();
        while let Some(ev) = self.client.poll_event() {
            match ev {
                Event::OpenTransport => {
                    // A new transport: the server accepts it with a fresh connection.
                    self.next_transport += 1;
                    let server =
                        Connection::server(Self::server_cfg(), self.server_addr, client_addr());
                    self.transport = Some(Transport {
                        id: self.next_transport,
                        c2s: Pipe::default(),
                        s2c: Pipe::default(),
                        server: ServerSide::Pending(Box::new(server)),
                        alive: true,
                    });
                    self.client.transport_connected(now);
                }
                Event::Opened { .. } => self.totals.reconnects += 1,
                Event::Fault { error } => {
                    if !matches!(error, Error::Transport(_)) {
                        self.errors.push(format!("client fault: {error}"));
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
                Event::Message(_) | Event::AbortedMessage(_) | Event::KeepaliveAck { .. } => {}
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
        // The pending server connection may identify its peer.
        let mut identified = None;
        if let Some(Transport {
            server: ServerSide::Pending(c),
            ..
        }) = self.transport.as_mut()
        {
            while let Some(ev) = c.poll_event() {
                match ev {
                    Event::PeerIdentified(info) => identified = Some(info),
                    Event::Fault {
                        error: Error::Transport(_),
                    } => {}
                    other => self.errors.push(format!("pending server event {other:?}")),
                }
            }
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
        for s in self.sessions.values_mut() {
            while let Some(ev) = s.poll_event() {
                match ev {
                    Event::Message(m) => {
                        self.totals.delivered += 1;
                        self.delivered.push((m.header.tid, m.front, m.data));
                    }
                    Event::AbortedMessage(_) => self.totals.aborted_seen += 1,
                    Event::OutOfSequence {
                        duplicate: false, ..
                    } => self.totals.seq_gaps += 1,
                    Event::Fault { error } => {
                        if !matches!(error, Error::Transport(_)) {
                            self.errors.push(format!("server fault: {error}"));
                        }
                    }
                    Event::Opened { .. } | Event::Acked(_) | Event::KeepaliveAck { .. } => {}
                    // The client's first connect reached us, our reply did not reach it:
                    // it comes back with connect_seq 0 and we start the session over. It
                    // had sent nothing yet, and we hold nothing for it.
                    Event::SessionReset { unsent } if unsent.is_empty() => {}
                    other => self
                        .errors
                        .push(format!("unexpected server event {other:?}")),
                }
            }
        }
    }

    /// One random step.
    pub fn step(&mut self, fail_percent: u64) {
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

    /// Runs without failures or revokes until everything not revoked is delivered and the
    /// client holds nothing, or the step budget runs out.
    pub fn settle(&mut self, max_steps: usize) -> bool {
        for _ in 0..max_steps {
            if self.client.messenger().is_empty()
                && self
                    .transport
                    .as_ref()
                    .is_some_and(|t| t.c2s.chunks.is_empty())
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

    /// The exactly-once / in-order / byte-identical property; returns a description of
    /// the first violation.
    pub fn check(&self) -> Result<(), String> {
        if let Some(e) = self.errors.first() {
            return Err(e.clone());
        }
        let by_tid: HashMap<u64, &Sent> = self.sent.iter().map(|s| (s.tid, s)).collect();
        let mut seen = HashMap::new();
        let mut last = 0;
        for (tid, front, data) in &self.delivered {
            let Some(s) = by_tid.get(tid) else {
                return Err(format!("delivered unknown tid {tid}"));
            };
            if *seen.entry(*tid).or_insert(0) > 0 {
                return Err(format!("tid {tid} delivered twice"));
            }
            *seen.get_mut(tid).expect("inserted") += 1;
            if *tid <= last {
                return Err(format!("tid {tid} delivered after {last}"));
            }
            last = *tid;
            if front != &s.front || data != &s.data {
                return Err(format!("tid {tid} delivered with different bytes"));
            }
            if matches!(s.revoked, Some(Revoked::Removed { seq: None })) {
                return Err(format!(
                    "tid {tid} was removed before any byte went out, yet delivered"
                ));
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
