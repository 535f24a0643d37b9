//! A whole msgr v1 session as a Sans-IO state machine: handshake in both roles, the
//! receive path, acks and keepalives, faults, lossy close and lossless reconnect.
//!
//! A [`Connection`] is a *session*: it outlives transports. The caller owns the sockets
//! and tells the connection what happened to them; the connection hands back bytes to
//! write, events to act on, and the next instant it wants to be woken at.
//!
//! ```text
//!              client                                   server
//!   Connecting --transport_connected--> Banner     Banner (on accept)
//!   Banner   --server hello--> Connect             Banner --client hello--> Connect
//!   Connect  --READY--> Open                       Connect --connect--> [PeerIdentified]
//!   Connect  --SEQ + 8 bytes--> Open                       --> reply READY --> Open
//!   Connect  --RETRY_* / RESETSESSION--> Connect           --> reply SEQ --> Seq --> Open
//!   any      --fault--> Backoff (lossless) | Closed (lossy)      any --fault--> Standby | Closed
//!   Backoff  --timeout--> Connecting (OpenTransport event)
//! ```
//!
//! The caller's loop, per turn: bytes that arrived go in with
//! [`Connection::handle_input`] (a copy) or [`Connection::read_with`] (the socket reads
//! straight into the receive buffer, and messages come out as slices of it); bytes to
//! write come from [`Connection::poll_transmit`], and what the socket took goes back with
//! [`Connection::advance`]; events come from [`Connection::poll_event`] until `None`;
//! [`Connection::poll_timeout`] says when to call [`Connection::handle_timeout`].
//!
//! See `docs/session.md` for the full state diagram and the rules of each reply tag.
#![forbid(unsafe_code)]

pub mod auth;
mod handshake;
mod stream;
mod types;
mod v2;

use std::collections::VecDeque;
use std::fmt;
use std::io::IoSlice;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

pub use auth::{AuthNone, Authorizer, Verdict};
pub use types::{Config, Error, Event, OnAborted, PeerInfo, Role, State, Stats, TimeoutKind};

use crate::recv::Receiver;
use crate::send::{AdvanceError, Messenger, MsgId, Protocol, QueueError, Revoked, Transmit};
use crate::wire::handshake::{
    features as feat, ClientHello, ConnectMsg, EntityAddr, CLIENT_HELLO_LEN,
};
use crate::wire::{Control, EntityName, EntityType, FooterKind, Timespec};
use crate::Message;

/// Slices [`Connection::write_with`] offers to one write.
const WRITE_SLICES: usize = 64;

/// What one [`Connection::write_with`] step did.
#[derive(Debug)]
#[must_use = "a failed transport must be closed by the driver"]
#[non_exhaustive]
pub enum WriteStep {
    /// The transport took this many bytes.
    Wrote(usize),
    /// Nothing to write now.
    Idle,
    /// The transport would block: wait until it is writable.
    Blocked,
    /// The transport failed (the session already knows: close the transport and handle
    /// the events).
    Failed(std::io::Error),
}

/// Largest authorizer (or authorizer reply) accepted in a handshake.
pub const MAX_AUTHORIZER_LEN: u32 = 64 * 1024;

#[derive(Debug, Clone)]
enum Phase {
    /// Client: banner and address sent; reading the server's banner and two addresses.
    ReadServerHello,
    /// Client: connect sent; reading the reply.
    ReadConnectReply,
    /// Server: banner sent; reading the client's banner and address.
    ReadClientHello,
    /// Server: reading a connect message.
    ReadConnect,
    /// Server (accepting both protocols): reading the client's banner to learn which.
    DetectProtocol,
    /// msgr2, both roles: banner sent; reading the peer's.
    V2ReadBanner,
    /// msgr2, both roles: HELLO sent; reading the peer's.
    V2ReadHello,
    /// msgr2 client: AUTH_REQUEST sent; reading AUTH_REPLY_MORE / AUTH_DONE.
    V2ReadAuth,
    /// msgr2 server: reading AUTH_REQUEST (or another one after AUTH_BAD_METHOD).
    V2ReadAuthRequest,
    /// msgr2, both roles: AUTH_SIGNATURE sent; reading the peer's.
    V2ReadSignature,
    /// msgr2 client: CLIENT_IDENT sent; reading SERVER_IDENT.
    V2ReadServerIdent,
    /// msgr2 server: reading CLIENT_IDENT.
    V2ReadClientIdent,
    /// Server: the peer identified itself; the caller decides about the session.
    AwaitSession(ConnectMsg),
    /// Server: SEQ reply sent; reading the client's in_seq.
    ReadSeq,
}

impl Phase {
    /// Whether the msgr2 handshake code runs this phase.
    fn is_v2(&self) -> bool {
        matches!(
            self,
            Self::DetectProtocol
                | Self::V2ReadBanner
                | Self::V2ReadHello
                | Self::V2ReadAuth
                | Self::V2ReadAuthRequest
                | Self::V2ReadSignature
                | Self::V2ReadServerIdent
                | Self::V2ReadClientIdent
        )
    }
}

#[derive(Debug, Clone)]
enum Inner {
    Connecting,
    Handshake(Phase),
    Open,
    Backoff(Instant),
    Standby,
    Closing,
    Closed,
}

/// One msgr v1 session (see the [module docs](self)).
pub struct Connection {
    role: Role,
    cfg: Config,
    auth: Box<dyn Authorizer>,
    tx: Messenger,
    rx: Receiver,
    /// The msgr2 deframer over `rx`'s buffer (used while `proto` is v2).
    v2rx: crate::recv::v2::Deframer,
    /// The protocol of the current transport.
    proto: Protocol,
    state: Inner,
    /// Client: the server we target; server: the peer once identified.
    peer_addr: EntityAddr,
    peer_type: EntityType,
    /// Server: the socket address of the current transport's peer.
    peer_sock: Option<SocketAddr>,
    my_addr: EntityAddr,
    /// Negotiated features while open.
    features: u64,
    in_seq: u64,
    in_seq_acked: u64,
    connect_seq: u32,
    global_seq: u32,
    peer_global_seq: u32,
    /// msgr2: the global id our auth got (client) or gave (server).
    global_id: u64,
    /// msgr2: the peer's gid from its IDENT frame (the `num` of its entity name).
    peer_gid: i64,
    /// msgr2: session cookies (0 for lossy sessions).
    client_cookie: u64,
    server_cookie: u64,
    /// Mixed into fresh cookies.
    cookie_counter: u64,
    /// Server: this object holds an established session (opened before).
    has_session: bool,
    /// Server: the peer restarted (connect_seq 0 against our session): reply READY.
    reset_from_peer: bool,
    /// The peer said LOSSY in its connect reply (client) — we then run lossy too.
    peer_lossy: bool,
    auth_retries: u8,
    challenge: Option<Bytes>,
    backoff: Duration,
    next_keepalive: Option<Instant>,
    keepalive_sent: Option<(Timespec, Instant)>,
    epoch: Option<Instant>,
    /// When connecting plus the handshake must be over (set at the first instant seen in
    /// `Connecting` or `Handshake`; cleared when the session opens or the transport ends).
    handshake_deadline: Option<Instant>,
    /// When the peer was last heard from while open.
    last_heard: Option<Instant>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state())
            .field("peer", &self.peer_addr)
            .field("in_seq", &self.in_seq)
            .field("out_seq", &self.tx.out_seq())
            .field("queued", &self.tx.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(role: Role, cfg: Config, peer_addr: EntityAddr, peer_type: EntityType) -> Self {
        let proto = match role {
            Role::Client => cfg.protocol,
            Role::Server => Protocol::V1,
        };
        let mut tx = Messenger::with_protocol(proto, cfg.name, cfg.features);
        tx.set_hold(true);
        let v2rx = crate::recv::v2::Deframer::new(cfg.limits);
        let rx = Receiver::new(FooterKind::for_features(cfg.features), cfg.limits);
        let my_addr = EntityAddr::new(
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)),
            cfg.nonce,
        );
        let backoff = cfg.backoff_initial;
        Self {
            role,
            auth: Box::new(AuthNone {
                entity: cfg.name,
                ..AuthNone::default()
            }),
            cfg,
            tx,
            rx,
            v2rx,
            proto,
            state: Inner::Connecting,
            peer_addr,
            peer_type,
            peer_sock: None,
            my_addr,
            features: 0,
            in_seq: 0,
            in_seq_acked: 0,
            connect_seq: 0,
            global_seq: 0,
            peer_global_seq: 0,
            global_id: 0,
            peer_gid: 0,
            client_cookie: 0,
            server_cookie: 0,
            cookie_counter: 0,
            has_session: false,
            reset_from_peer: false,
            peer_lossy: false,
            auth_retries: 0,
            challenge: None,
            backoff,
            next_keepalive: None,
            keepalive_sent: None,
            epoch: None,
            handshake_deadline: None,
            last_heard: None,
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// A client session to `peer` (an entity of type `peer_type`). The first event is
    /// [`Event::OpenTransport`].
    #[must_use]
    pub fn client(cfg: Config, peer: SocketAddr, peer_type: EntityType) -> Self {
        let mut c = Self::new(Role::Client, cfg, EntityAddr::new(Some(peer), 0), peer_type);
        c.events.push_back(Event::OpenTransport);
        c
    }

    /// A server session for a transport just accepted from `peer_sock`; `my_addr` is the
    /// address we announce. The banner is queued at once.
    #[must_use]
    pub fn server(cfg: Config, my_addr: EntityAddr, peer_sock: SocketAddr) -> Self {
        let mut c = Self::new(Role::Server, cfg, EntityAddr::default(), EntityType::Client);
        c.my_addr = my_addr;
        c.start_server_transport(peer_sock);
        c
    }

    /// Replaces the authorizer hook (auth none by default).
    #[must_use]
    pub fn with_authorizer(mut self, auth: Box<dyn Authorizer>) -> Self {
        self.auth = auth;
        self
    }

    /// Which side this is.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> State {
        match self.state {
            Inner::Connecting => State::Connecting,
            Inner::Handshake(Phase::AwaitSession(_)) => State::AwaitingSession,
            Inner::Handshake(_) => State::Handshake,
            Inner::Open => State::Open,
            Inner::Backoff(_) => State::Backoff,
            Inner::Standby => State::Standby,
            Inner::Closing => State::Closing,
            Inner::Closed => State::Closed,
        }
    }

    /// Negotiated features (0 until the session first opens).
    #[must_use]
    pub fn features(&self) -> u64 {
        self.features
    }

    /// The peer's address.
    #[must_use]
    pub fn peer_addr(&self) -> EntityAddr {
        self.peer_addr
    }

    /// Our address (its IP learned from the server's banner if ours was blank).
    #[must_use]
    pub fn my_addr(&self) -> EntityAddr {
        self.my_addr
    }

    /// Highest incoming seq received.
    #[must_use]
    pub fn in_seq(&self) -> u64 {
        self.in_seq
    }

    /// The send side (seqs, queue length, message status).
    #[must_use]
    pub fn messenger(&self) -> &Messenger {
        &self.tx
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether this session runs lossy (by our policy or because the peer said so).
    #[must_use]
    pub fn is_lossy(&self) -> bool {
        self.cfg.lossy || self.peer_lossy
    }

    /// Our entity name (the source of every message header).
    #[must_use]
    pub fn name(&self) -> EntityName {
        self.cfg.name
    }

    /// Changes our entity name, e.g. to `client.<global_id>` once a monitor assigned a
    /// global id. Messages not started yet carry the new name; a message already partly
    /// written keeps the old one. The entity type should stay the same (it is also the
    /// `host_type` of later connect messages).
    pub fn set_name(&mut self, name: EntityName) {
        self.cfg.name = name;
        self.tx.set_src(name);
    }

    // ----- caller → connection: messages -------------------------------------------------

    /// Queues a message; it goes out once the session is open, in queue order.
    ///
    /// Refused with [`QueueError::Full`] when [`Config::max_queued_bytes`] is set and
    /// the held messages would exceed it (the message is dropped; its payload is
    /// `Bytes`, so keeping a clone to retry is cheap).
    pub fn send(&mut self, msg: Message) -> Result<MsgId, QueueError> {
        if matches!(self.state, Inner::Closed | Inner::Closing) {
            return Err(QueueError::Closed);
        }
        if let Some(limit) = self.cfg.max_queued_bytes {
            let held = self.tx.held_bytes();
            if held > 0 && held.saturating_add(msg.payload_len()) > limit {
                return Err(QueueError::Full { held, limit });
            }
        }
        self.tx.queue(msg)
    }

    /// Payload bytes that can be queued now without [`QueueError::Full`] (`u64::MAX`
    /// without a limit).
    #[must_use]
    pub fn send_room(&self) -> u64 {
        match self.cfg.max_queued_bytes {
            None => u64::MAX,
            Some(_) if self.tx.held_bytes() == 0 => u64::MAX,
            Some(limit) => limit.saturating_sub(self.tx.held_bytes()),
        }
    }

    /// Revokes a message; the stream stays framed in every state (see [`Revoked`]).
    pub fn revoke(&mut self, id: MsgId) -> Revoked {
        self.tx.revoke(id)
    }

    /// Sends a keepalive now (KEEPALIVE2 with a stamp if the peer supports it).
    pub fn send_keepalive(&mut self, now: Instant) {
        if !matches!(self.state, Inner::Open) {
            return;
        }
        self.stats.keepalives += 1;
        if self.proto == Protocol::V2 || self.features & feat::MSGR_KEEPALIVE2 != 0 {
            let stamp = self.stamp(now);
            self.keepalive_sent = Some((stamp, now));
            self.tx.push_control(Control::Keepalive2(stamp));
        } else {
            self.tx.push_control(Control::Keepalive);
        }
    }

    /// Ends the session: queues CLOSE, flushes it, then reports [`Event::Closed`].
    pub fn close(&mut self) {
        match self.state {
            Inner::Open => {
                self.tx.set_hold(true);
                // msgr2 has no CLOSE frame: the transport just ends.
                self.tx.push_control(Control::Close);
                self.state = Inner::Closing;
                if !self.tx.wants_write() {
                    self.finish_closed(None);
                }
            }
            Inner::Closed | Inner::Closing => {}
            _ => self.finish_closed(None),
        }
    }

    // ----- caller → connection: transport --------------------------------------------------

    /// Client: the transport the caller opened after [`Event::OpenTransport`] is connected.
    pub fn transport_connected(&mut self, now: Instant) {
        self.touch(now);
        if self.role != Role::Client || !matches!(self.state, Inner::Connecting) {
            return;
        }
        self.rx.clear();
        self.tx.set_hold(true);
        if self.proto == Protocol::V2 {
            self.v2_start_client();
            return;
        }
        let mut hello = BytesMut::with_capacity(CLIENT_HELLO_LEN);
        hello.put_slice(&ClientHello { addr: self.my_addr }.encode());
        self.tx.push_raw(hello.freeze());
        self.state = Inner::Handshake(Phase::ReadServerHello);
    }

    /// The transport failed, or the peer closed it (EOF), or connecting failed.
    pub fn transport_failed(&mut self, now: Instant, reason: &str) {
        self.touch(now);
        match self.state {
            Inner::Closed | Inner::Backoff(_) | Inner::Standby => {}
            Inner::Closing => self.finish_closed(None),
            _ => self.fault(now, Error::Transport(reason.to_owned())),
        }
    }

    /// Bytes arrived from the transport.
    ///
    /// They are copied into the receive buffer; [`read_with`](Self::read_with) reads into
    /// it directly instead.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.touch(now);
        if !self.takes_input() {
            // Bytes on a transport we consider gone (or closing) are ignored.
            return;
        }
        self.rx.push(data);
        self.heard(now);
        self.after_input(now);
    }

    /// Reads from the transport straight into the receive buffer, then handles what
    /// arrived as [`handle_input`](Self::handle_input) would, without copying it.
    ///
    /// `read` is called once with the buffer, whose spare capacity has room for at least
    /// `room` bytes (more when a large record is under way). It MUST only append to it —
    /// with tokio's `try_read_buf`, `bytes::BufMut` methods or `extend_from_slice` — and
    /// MUST NOT touch the bytes already in it: they are unparsed input. Whatever it
    /// appended is handled, whatever it returns; its result is handed back, so the caller
    /// still tells end of stream and errors apart (and reports them with
    /// [`transport_failed`](Self::transport_failed)). A `read` that removes buffered bytes
    /// breaks the stream's framing: the transport faults.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use ceph_msgr::{Config, Connection, EntityName, EntityType};
    /// let mut conn = Connection::client(
    ///     Config::client(EntityName::client(1)),
    ///     "127.0.0.1:6789".parse().unwrap(),
    ///     EntityType::Mon,
    /// );
    /// conn.transport_connected(Instant::now());
    /// // A socket read would go here; this one appends the start of the server's banner.
    /// let n = conn.read_with(Instant::now(), 4096, |buf| {
    ///     buf.extend_from_slice(b"ceph v0");
    ///     7
    /// });
    /// assert_eq!(n, 7);
    /// ```
    pub fn read_with<R>(
        &mut self,
        now: Instant,
        room: usize,
        read: impl FnOnce(&mut BytesMut) -> R,
    ) -> R {
        let before = self.rx.buffered();
        let result = read(self.rx.read_buffer(room));
        let after = self.rx.buffered();
        if after == before {
            return result;
        }
        self.touch(now);
        if after < before {
            self.rx.clear();
            self.fault(
                now,
                Error::Transport(format!(
                    "the reader removed {} buffered bytes",
                    before - after
                )),
            );
        } else if !self.takes_input() {
            self.rx.truncate(before);
        } else {
            self.heard(now);
            self.after_input(now);
        }
        result
    }

    /// Whether input is parsed now (a handshake or an open session).
    fn takes_input(&self) -> bool {
        matches!(self.state, Inner::Handshake(_) | Inner::Open)
    }

    /// Parses what the receive buffer holds and acknowledges new messages.
    fn after_input(&mut self, now: Instant) {
        if let Err(e) = self.process(now) {
            self.fault(now, e);
            return;
        }
        if matches!(self.state, Inner::Open) && self.in_seq > self.in_seq_acked {
            self.tx.push_ack(self.in_seq);
            self.tx.set_piggyback_ack(self.in_seq);
            self.in_seq_acked = self.in_seq;
        }
    }

    /// Describes the next bytes to write; see [`Messenger::poll_transmit`].
    pub fn poll_transmit(&mut self) -> Transmit<'_> {
        self.tx.poll_transmit()
    }

    /// The write step, for every driver: offers the bytes to write (at most `max`) as
    /// slices to `write` — one `write_vectored`-like call on the transport — and accounts
    /// for what it took. An interrupted call is retried. A transport that fails, takes no
    /// bytes of a non-empty offer, or claims more than it was offered is reported to the
    /// session ([`transport_failed`](Self::transport_failed)) and comes back as
    /// [`WriteStep::Failed`]; `WouldBlock` is [`WriteStep::Blocked`]. Call it while
    /// [`wants_write`](Self::wants_write).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use std::io::Write;
    /// # use ceph_msgr::{Config, Connection, EntityName, EntityType};
    /// # use ceph_msgr::conn::WriteStep;
    /// let mut conn = Connection::client(
    ///     Config::client(EntityName::client(1)),
    ///     "127.0.0.1:6789".parse().unwrap(),
    ///     EntityType::Mon,
    /// );
    /// conn.transport_connected(Instant::now());
    /// let mut socket: Vec<u8> = Vec::new(); // stands in for a TcpStream
    /// while conn.wants_write() {
    ///     match conn.write_with(Instant::now(), usize::MAX, |s| socket.write_vectored(s)) {
    ///         WriteStep::Wrote(_) => {}
    ///         WriteStep::Failed(e) => panic!("{e}"),
    ///         _ => break, // Blocked or Idle: wait until the socket is writable
    ///     }
    /// }
    /// assert!(socket.starts_with(b"ceph v027"));
    /// ```
    pub fn write_with<W>(&mut self, now: Instant, max: usize, mut write: W) -> WriteStep
    where
        W: FnMut(&[IoSlice<'_>]) -> std::io::Result<usize>,
    {
        loop {
            let result = {
                let t = self.tx.poll_transmit();
                let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
                let k = t.fill(&mut slices);
                // Cut the offer down to `max` bytes.
                let mut cut = [IoSlice::new(&[]); WRITE_SLICES];
                let mut room = max;
                let mut used = 0;
                for s in &slices[..k] {
                    if room == 0 {
                        break;
                    }
                    let n = s.len().min(room);
                    cut[used] = IoSlice::new(&s[..n]);
                    room -= n;
                    used += 1;
                }
                if used == 0 {
                    return WriteStep::Idle;
                }
                write(&cut[..used])
            };
            let failure = match result {
                Ok(0) => "the transport accepted no bytes".to_owned(),
                Ok(n) => match self.advance(n) {
                    Ok(()) => return WriteStep::Wrote(n),
                    Err(e) => format!("the transport claimed {e}"),
                },
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return WriteStep::Blocked,
                Err(e) => {
                    let reason = format!("write: {e}");
                    self.transport_failed(now, &reason);
                    return WriteStep::Failed(e);
                }
            };
            self.transport_failed(now, &failure);
            return WriteStep::Failed(std::io::Error::new(std::io::ErrorKind::WriteZero, failure));
        }
    }

    /// Reports bytes written; see [`Messenger::advance`].
    pub fn advance(&mut self, n: usize) -> Result<(), AdvanceError> {
        self.tx.advance(n)?;
        if matches!(self.state, Inner::Closing) && !self.tx.wants_write() {
            self.finish_closed(None);
        }
        Ok(())
    }

    /// Whether there are bytes to write.
    #[must_use]
    pub fn wants_write(&self) -> bool {
        self.tx.wants_write()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to be called next.
    ///
    /// A server's handshake deadline starts at the first call that passes the time, so a
    /// driver calls [`handle_timeout`](Self::handle_timeout) once right after accepting.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            Inner::Backoff(until) => Some(until),
            Inner::Open => {
                let silent = self.peer_deadline();
                match (self.next_keepalive, silent) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            Inner::Connecting | Inner::Handshake(_) => self.handshake_deadline,
            _ => None,
        }
    }

    /// When an open session gives up on a silent peer.
    fn peer_deadline(&self) -> Option<Instant> {
        let d = self.cfg.peer_timeout?;
        Some(later(self.last_heard?, d))
    }

    /// Time passed: reconnect after a backoff, send interval keepalives, give up on a peer
    /// that does not finish the handshake or went silent.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.touch(now);
        let expired = |d: Option<Instant>| d.is_some_and(|d| now >= d);
        match self.state {
            Inner::Connecting | Inner::Handshake(_) if expired(self.handshake_deadline) => {
                self.handshake_deadline = None;
                self.fault(now, Error::Timeout(TimeoutKind::Handshake));
                return;
            }
            Inner::Open if expired(self.peer_deadline()) => {
                self.fault(now, Error::Timeout(TimeoutKind::PeerSilent));
                return;
            }
            _ => {}
        }
        match self.state {
            Inner::Backoff(until) if now >= until => {
                self.state = Inner::Connecting;
                self.events.push_back(Event::OpenTransport);
            }
            Inner::Open => {
                if let Some(t) = self.next_keepalive {
                    if now >= t {
                        self.send_keepalive(now);
                        self.next_keepalive = self.cfg.keepalive_interval.map(|i| later(now, i));
                    }
                }
            }
            _ => {}
        }
    }

    /// Frees the receive buffer if it holds no unparsed bytes (a partly received record
    /// keeps it). For drivers that read in place ([`read_with`](Self::read_with)) into
    /// many connections: called for a connection that has gone quiet, it stops it holding
    /// the room its reads reserved (the mio shim does it after
    /// `Options::release_idle_buffers_after`). Not after every read: a stream would then
    /// allocate (and fault in) a fresh block for every record.
    pub fn release_receive_buffer(&mut self) {
        self.rx.shrink_to_fit();
    }

    /// Bytes allocated for the receive buffer (unparsed input plus spare room).
    #[must_use]
    pub fn receive_capacity(&self) -> usize {
        self.rx.capacity()
    }

    /// Bytes received and not parsed yet: the start of a record still arriving.
    #[must_use]
    pub fn input_buffered(&self) -> usize {
        self.rx.buffered()
    }

    /// Releases memory kept from earlier bursts: spare queue capacity and an empty
    /// receive buffer. Call it on connections that went idle (a shim can do it from a
    /// timer); the next burst allocates again. See `benches/idle_memory.rs`.
    pub fn shrink_to_fit(&mut self) {
        self.tx.shrink_to_fit();
        self.rx.shrink_to_fit();
        self.events.shrink_to_fit();
    }

    // ----- server sessions ---------------------------------------------------------------

    /// Server: after [`Event::PeerIdentified`], continue as a brand-new session.
    pub fn accept_new_session(&mut self, now: Instant) {
        self.touch(now);
        if let Inner::Handshake(Phase::AwaitSession(c)) = self.state.clone() {
            self.has_session = false;
            self.state = Inner::Handshake(Phase::ReadConnect);
            self.decide(now, c);
            self.after_handshake_step(now);
        }
    }

    /// Server: `other` is a new transport whose peer turned out to be the one this
    /// (existing) session belongs to. This session takes the transport over and answers
    /// the peer's connect against its own state (RETRY_SESSION, RETRY_GLOBAL, reconnect
    /// with the SEQ exchange, …). The caller must close the transport this session had
    /// before, and drive `self` with the new one from now on.
    pub fn adopt(&mut self, now: Instant, other: Connection) {
        self.touch(now);
        let Inner::Handshake(Phase::AwaitSession(c)) = other.state else {
            return;
        };
        self.tx.reset();
        self.tx.set_hold(true);
        self.rx = other.rx;
        self.peer_sock = other.peer_sock;
        self.peer_addr = other.peer_addr;
        self.peer_type = other.peer_type;
        self.state = Inner::Handshake(Phase::ReadConnect);
        self.decide(now, c);
        self.after_handshake_step(now);
    }

    // ----- internals -----------------------------------------------------------------------

    fn touch(&mut self, now: Instant) {
        self.epoch.get_or_insert(now);
        match self.state {
            Inner::Handshake(Phase::AwaitSession(_)) => {}
            Inner::Connecting | Inner::Handshake(_) => {
                if self.handshake_deadline.is_none() {
                    self.handshake_deadline = self.cfg.handshake_timeout.map(|d| later(now, d));
                }
            }
            _ => self.handshake_deadline = None,
        }
    }

    /// Input arrived at `now`: the peer is alive.
    fn heard(&mut self, now: Instant) {
        self.last_heard = Some(now);
    }

    /// A keepalive stamp: time since this connection first saw the clock (the peer only
    /// echoes it back).
    fn stamp(&self, now: Instant) -> Timespec {
        let d = now.saturating_duration_since(self.epoch.unwrap_or(now));
        Timespec {
            sec: d.as_secs() as u32,
            nsec: d.subsec_nanos(),
        }
    }
}

/// `now + d`, saturating far in the future instead of panicking on overflow.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}
