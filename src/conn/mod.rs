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
//! See `docs/session.md` for the full state diagram and the rules of each reply tag.

pub mod auth;

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

pub use auth::{AuthNone, Authorizer, Verdict};

use crate::recv::{Limits, Received, Receiver, Record, RecvError};
use crate::send::{AdvanceError, Messenger, MsgId, QueueError, Revoked, Transmit};
use crate::wire::handshake::{
    self, features as feat, ClientHello, ConnectMsg, ConnectReply, EntityAddr, ServerHello,
    CLIENT_HELLO_LEN, CONNECT_LEN, CONNECT_LOSSY, CONNECT_REPLY_LEN, SEQ_LEN, SERVER_HELLO_LEN,
};
use crate::wire::{
    tag, Control, DecodeError, EntityName, EntityType, FooterKind, MsgHeader, Timespec,
};
use crate::Message;

/// Largest authorizer (or authorizer reply) accepted in a handshake.
pub const MAX_AUTHORIZER_LEN: u32 = 64 * 1024;

/// What to do with an incoming message whose footer says the sender aborted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnAborted {
    /// Drop it and continue, counting its seq as received (so it is acknowledged and the
    /// next message is in order). This matches SimpleMessenger and msgr2, and it is the
    /// default because an abort is how a sender revokes a message it had started: the
    /// stream is intact, so there is nothing to recover from.
    Drop,
    /// Fault the connection, as AsyncMessenger v1 does.
    Fault,
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our entity name; its type is the `host_type` of our connect message.
    pub name: EntityName,
    /// Feature bits we support.
    pub features: u64,
    /// Feature bits we require of the peer.
    pub required_features: u64,
    /// Lossy policy: on a fault the session ends and queued messages are handed back.
    /// Lossless: a client reconnects (with backoff) and resends; a server keeps the
    /// session for the peer to come back.
    pub lossy: bool,
    /// Section size limits for incoming messages.
    pub limits: Limits,
    /// Send a keepalive this often while open (`None`: only on request).
    pub keepalive_interval: Option<Duration>,
    /// First reconnect delay; it doubles after every failed attempt.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Treat a gap in incoming seqs as a fault (the kernel's rule); by default gaps are
    /// accepted, as Ceph userspace does.
    pub strict_seq: bool,
    /// Policy for aborted incoming messages.
    pub on_aborted: OnAborted,
    /// Our address nonce (tells processes on one address apart).
    pub nonce: u32,
    /// Server: pause after the peer identified itself so the caller can attach the
    /// session it already holds for that peer ([`Event::PeerIdentified`]). Lossless
    /// servers need this to resume sessions across transports.
    pub sessions: bool,
}

impl Config {
    /// A client named `name` with a kernel-like feature set, lossy, no keepalives.
    #[must_use]
    pub fn client(name: EntityName) -> Self {
        Self {
            name,
            features: feat::KERNEL_LIKE,
            required_features: 0,
            lossy: true,
            limits: Limits::default(),
            keepalive_interval: None,
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(15),
            strict_seq: false,
            on_aborted: OnAborted::Drop,
            nonce: 0,
            sessions: false,
        }
    }

    /// A server named `name` (same defaults as a client).
    #[must_use]
    pub fn server(name: EntityName) -> Self {
        Self::client(name)
    }
}

/// Which side of the handshake this connection plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Connects to a server.
    Client,
    /// Accepted a transport.
    Server,
}

/// The public view of a connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Client: waiting for the caller to open a transport ([`Event::OpenTransport`]).
    Connecting,
    /// Banner and connect negotiation in progress.
    Handshake,
    /// Server: the peer identified itself; waiting for
    /// [`Connection::accept_new_session`] or [`Connection::adopt`].
    AwaitingSession,
    /// Session open: messages flow.
    Open,
    /// Client: waiting out the reconnect delay.
    Backoff,
    /// Server (lossless): no transport; the session waits for the peer to reconnect.
    Standby,
    /// Flushing a CLOSE before ending.
    Closing,
    /// Ended. Nothing more happens.
    Closed,
}

/// Why a connection faulted or ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent bytes that break the protocol.
    Recv(RecvError),
    /// A handshake record failed to decode (bad banner, unknown tag, …).
    Handshake(DecodeError),
    /// The peer requires features we lack (FEATURES), or lacks ones we require.
    MissingFeatures {
        /// The missing bits.
        missing: u64,
    },
    /// Protocol version mismatch (BADPROTOVER).
    BadProtocolVersion {
        /// Ours.
        ours: u32,
        /// The peer's.
        theirs: u32,
    },
    /// The authorizer was rejected twice, or the authorizer reply did not verify.
    AuthFailed,
    /// The server answered WAIT, which a client cannot get.
    UnexpectedWait,
    /// A length in the handshake over the limit.
    AuthorizerTooLong(u32),
    /// The peer's entity type is unknown.
    BadPeerType(u32),
    /// A gap in incoming seqs with strict seq checking on.
    SeqGap {
        /// The seq received.
        got: u64,
        /// The seq expected.
        expected: u64,
    },
    /// An aborted message with [`OnAborted::Fault`].
    AbortedMessage {
        /// Its seq.
        seq: u64,
    },
    /// The transport failed or was closed (reported by the caller).
    Transport(String),
    /// The peer sent CLOSE.
    PeerClosed,
    /// The peer sent bytes while we were not expecting any (e.g. before our banner went
    /// out, or after CLOSE).
    UnexpectedInput,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Recv(e) => write!(f, "bad incoming stream: {e}"),
            Self::Handshake(e) => write!(f, "bad handshake: {e}"),
            Self::MissingFeatures { missing } => {
                write!(f, "missing required features {missing:#x}")
            }
            Self::BadProtocolVersion { ours, theirs } => {
                write!(f, "protocol version mismatch: ours {ours}, peer's {theirs}")
            }
            Self::AuthFailed => f.write_str("authorization failed"),
            Self::UnexpectedWait => f.write_str("server answered WAIT to a client"),
            Self::AuthorizerTooLong(n) => write!(f, "authorizer of {n} bytes is too long"),
            Self::BadPeerType(t) => write!(f, "unknown peer entity type {t}"),
            Self::SeqGap { got, expected } => {
                write!(f, "incoming seq {got}, expected {expected}")
            }
            Self::AbortedMessage { seq } => write!(f, "peer aborted message seq {seq}"),
            Self::Transport(e) => write!(f, "transport: {e}"),
            Self::PeerClosed => f.write_str("peer closed the connection"),
            Self::UnexpectedInput => f.write_str("unexpected input"),
        }
    }
}

impl std::error::Error for Error {}

/// Who the peer says it is, reported by [`Event::PeerIdentified`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its address (IP filled in from the socket if it sent a blank one).
    pub addr: EntityAddr,
    /// Its entity type.
    pub ty: EntityType,
    /// The connect message it sent.
    pub connect: ConnectMsg,
}

/// Something the caller must act on or may want to know.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Client: open a transport to the peer now, then call
    /// [`Connection::transport_connected`] (or [`Connection::transport_failed`]).
    OpenTransport,
    /// Server: the peer identified itself. Attach the session you hold for
    /// `info.addr` with [`Connection::adopt`] on that session, or call
    /// [`Connection::accept_new_session`].
    PeerIdentified(PeerInfo),
    /// The session is open on this transport.
    Opened {
        /// Negotiated features (ours & the peer's).
        features: u64,
        /// The peer's address.
        peer_addr: EntityAddr,
        /// Our address, as the peer sees it.
        my_addr: EntityAddr,
        /// The peer's entity type.
        peer_type: EntityType,
        /// The connect reply tag (READY or SEQ).
        reply_tag: u8,
        /// Whether the peer runs this session lossy.
        lossy: bool,
    },
    /// A message arrived, in order and CRC-checked.
    Message(Received),
    /// An aborted message arrived and was dropped ([`OnAborted::Drop`]).
    AbortedMessage(MsgHeader),
    /// The peer acknowledged every seq up to this one.
    Acked(u64),
    /// The peer answered our keepalive2; `rtt` is set if it echoed our latest stamp.
    KeepaliveAck {
        /// Round-trip time of the keepalive.
        rtt: Option<Duration>,
    },
    /// The transport faulted. Close it. A lossless client reconnects after a delay; the
    /// messages stay queued and unacknowledged ones are resent with their seqs.
    Fault {
        /// What went wrong.
        error: Error,
    },
    /// The peer reset the session (RESETSESSION, or a server saw a peer restart): seqs
    /// start over and every message we held is handed back.
    SessionReset {
        /// Messages that were queued or unacknowledged.
        unsent: Vec<(MsgId, Message)>,
    },
    /// The connection ended. Close the transport. Messages not yet acknowledged are
    /// handed back (a lossy session, or a fatal error).
    Closed {
        /// Why, if it was not a local `close()`.
        error: Option<Error>,
        /// Messages that were queued or unacknowledged.
        unsent: Vec<(MsgId, Message)>,
    },
}

/// Counters, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages delivered.
    pub msgs_in: u64,
    /// Payload bytes of delivered messages.
    pub bytes_in: u64,
    /// Messages discarded as duplicates (seq already received).
    pub dups_in: u64,
    /// Aborted messages received.
    pub aborted_in: u64,
    /// Transport faults.
    pub faults: u64,
    /// Times the session opened (1 + reconnects).
    pub opens: u64,
    /// Keepalives sent.
    pub keepalives: u64,
    /// KEEPALIVE2s received from the peer (each one is answered with KEEPALIVE2_ACK).
    pub keepalives_answered: u64,
}

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
    /// Server: the peer identified itself; the caller decides about the session.
    AwaitSession(ConnectMsg),
    /// Server: SEQ reply sent; reading the client's in_seq.
    ReadSeq,
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
        let mut tx = Messenger::new(cfg.name, cfg.features);
        tx.set_hold(true);
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
            has_session: false,
            reset_from_peer: false,
            peer_lossy: false,
            auth_retries: 0,
            challenge: None,
            backoff,
            next_keepalive: None,
            keepalive_sent: None,
            epoch: None,
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
    pub fn send(&mut self, msg: Message) -> Result<MsgId, QueueError> {
        if matches!(self.state, Inner::Closed | Inner::Closing) {
            return Err(QueueError::Closed);
        }
        self.tx.queue(msg)
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
        if self.features & feat::MSGR_KEEPALIVE2 != 0 {
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
                self.tx.push_control(Control::Close);
                self.state = Inner::Closing;
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
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.touch(now);
        match self.state {
            Inner::Handshake(_) | Inner::Open => {}
            // Bytes on a transport we consider gone (or closing) are ignored.
            _ => return,
        }
        self.rx.push(data);
        if let Err(e) = self.process(now) {
            self.fault(now, e);
            return;
        }
        if matches!(self.state, Inner::Open) && self.in_seq > self.in_seq_acked {
            self.tx.push_ack(self.in_seq);
            self.in_seq_acked = self.in_seq;
        }
    }

    /// Describes the next bytes to write; see [`Messenger::poll_transmit`].
    pub fn poll_transmit(&mut self) -> Transmit<'_> {
        self.tx.poll_transmit()
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
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            Inner::Backoff(until) => Some(until),
            Inner::Open => self.next_keepalive,
            _ => None,
        }
    }

    /// Time passed: reconnect after a backoff, send interval keepalives.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.touch(now);
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

    fn start_server_transport(&mut self, peer_sock: SocketAddr) {
        self.rx.clear();
        self.peer_sock = Some(peer_sock);
        let hello = ServerHello {
            addr: self.my_addr,
            peer_addr_for_me: EntityAddr::new(Some(peer_sock), 0),
        };
        self.tx.push_raw(Bytes::copy_from_slice(&hello.encode()));
        self.state = Inner::Handshake(Phase::ReadClientHello);
    }

    /// Continues after a handshake step that may have left input buffered.
    fn after_handshake_step(&mut self, now: Instant) {
        if let Err(e) = self.process(now) {
            self.fault(now, e);
        }
    }

    /// Parses as much buffered input as the state allows.
    fn process(&mut self, now: Instant) -> Result<(), Error> {
        loop {
            let progressed = match &self.state {
                Inner::Handshake(Phase::AwaitSession(_)) => false,
                Inner::Handshake(p) => {
                    let p = p.clone();
                    self.handshake_step(now, p)?
                }
                Inner::Open => self.open_step(now)?,
                _ => false,
            };
            if !progressed {
                return Ok(());
            }
        }
    }

    fn handshake_step(&mut self, now: Instant, phase: Phase) -> Result<bool, Error> {
        match phase {
            Phase::ReadServerHello => {
                // Judge the banner as soon as it is in: a msgr2-only peer sends its 26-byte
                // banner and then waits for ours, so the full hello would never come.
                let head = self.rx.peek();
                if head.len() >= handshake::BANNER_LEN || head.starts_with(handshake::MSGR2_BANNER)
                {
                    handshake::check_banner(head).map_err(Error::Handshake)?;
                }
                let Some(b) = self.rx.take(SERVER_HELLO_LEN) else {
                    return Ok(false);
                };
                let hello = ServerHello::decode(&b).map_err(Error::Handshake)?;
                self.peer_addr = EntityAddr {
                    addr: self.peer_addr.addr.or(hello.addr.addr),
                    ..hello.addr
                };
                if self.my_addr.is_blank_ip() {
                    if let Some(ip) = hello.peer_addr_for_me.ip() {
                        let port = self.my_addr.addr.map_or(0, |a| a.port());
                        self.my_addr.addr = Some(SocketAddr::new(ip, port));
                    }
                }
                self.send_connect();
                self.state = Inner::Handshake(Phase::ReadConnectReply);
                Ok(true)
            }
            Phase::ReadConnectReply => {
                let Some(head) = self.rx.peek().get(..CONNECT_REPLY_LEN) else {
                    return Ok(false);
                };
                let reply = ConnectReply::decode(head).map_err(Error::Handshake)?;
                if reply.authorizer_len > MAX_AUTHORIZER_LEN {
                    return Err(Error::AuthorizerTooLong(reply.authorizer_len));
                }
                let total = CONNECT_REPLY_LEN + reply.trailer_len() as usize;
                let Some(b) = self.rx.take(total) else {
                    return Ok(false);
                };
                let auth_reply =
                    b.slice(CONNECT_REPLY_LEN..CONNECT_REPLY_LEN + reply.authorizer_len as usize);
                self.handle_connect_reply(
                    now,
                    &reply,
                    &auth_reply,
                    &b[b.len() - SEQ_LEN.min(b.len())..],
                )?;
                Ok(true)
            }
            Phase::ReadClientHello => {
                let Some(b) = self.rx.take(CLIENT_HELLO_LEN) else {
                    return Ok(false);
                };
                let hello = ClientHello::decode(&b).map_err(Error::Handshake)?;
                let mut addr = hello.addr;
                if addr.is_blank_ip() {
                    if let Some(sock) = self.peer_sock {
                        let port = addr.addr.map_or(0, |a| a.port());
                        addr.addr = Some(SocketAddr::new(sock.ip(), port));
                    }
                }
                self.peer_addr = addr;
                self.state = Inner::Handshake(Phase::ReadConnect);
                Ok(true)
            }
            Phase::ReadConnect => {
                let Some(head) = self.rx.peek().get(..CONNECT_LEN) else {
                    return Ok(false);
                };
                let c = ConnectMsg::decode(head).map_err(Error::Handshake)?;
                if c.authorizer_len > MAX_AUTHORIZER_LEN {
                    return Err(Error::AuthorizerTooLong(c.authorizer_len));
                }
                let Some(b) = self.rx.take(CONNECT_LEN + c.authorizer_len as usize) else {
                    return Ok(false);
                };
                self.handle_connect(now, c, &b[CONNECT_LEN..])?;
                Ok(true)
            }
            Phase::ReadSeq => {
                let Some(b) = self.rx.take(SEQ_LEN) else {
                    return Ok(false);
                };
                let peer_in_seq = handshake::decode_seq(&b).map_err(Error::Handshake)?;
                self.tx.on_ack(peer_in_seq);
                self.open(now, tag::SEQ);
                Ok(true)
            }
            Phase::AwaitSession(_) => Ok(false),
        }
    }

    fn send_connect(&mut self) {
        self.global_seq = self.global_seq.wrapping_add(1);
        let (proto, authorizer) = self.auth.build(self.peer_type, self.challenge.as_deref());
        let c = ConnectMsg {
            features: self.cfg.features,
            host_type: u32::from(self.cfg.name.ty.to_u8()),
            global_seq: self.global_seq,
            connect_seq: self.connect_seq,
            protocol_version: proto_for(self.peer_type),
            authorizer_protocol: proto,
            authorizer_len: authorizer.len() as u32,
            flags: if self.cfg.lossy { CONNECT_LOSSY } else { 0 },
        };
        let mut b = BytesMut::with_capacity(CONNECT_LEN + authorizer.len());
        b.put_slice(&c.encode());
        b.put_slice(&authorizer);
        self.tx.push_raw(b.freeze());
    }

    fn handle_connect_reply(
        &mut self,
        now: Instant,
        r: &ConnectReply,
        auth_reply: &[u8],
        seq_bytes: &[u8],
    ) -> Result<(), Error> {
        if r.tag == tag::CHALLENGE_AUTHORIZER {
            self.challenge = Some(Bytes::copy_from_slice(auth_reply));
            self.send_connect();
            return Ok(());
        }
        if !auth_reply.is_empty() && !self.auth.verify_reply(auth_reply) {
            return Err(Error::AuthFailed);
        }
        match r.tag {
            tag::FEATURES => Err(Error::MissingFeatures {
                missing: r.features & !self.cfg.features,
            }),
            tag::BADPROTOVER => Err(Error::BadProtocolVersion {
                ours: proto_for(self.peer_type),
                theirs: r.protocol_version,
            }),
            tag::BADAUTHORIZER => {
                self.auth_retries += 1;
                if self.auth_retries >= 2 {
                    return Err(Error::AuthFailed);
                }
                self.send_connect();
                Ok(())
            }
            tag::RESETSESSION => {
                self.reset_session();
                self.send_connect();
                Ok(())
            }
            tag::RETRY_SESSION => {
                self.connect_seq = r.connect_seq;
                self.send_connect();
                Ok(())
            }
            tag::RETRY_GLOBAL => {
                self.global_seq = self.global_seq.max(r.global_seq);
                self.send_connect();
                Ok(())
            }
            tag::WAIT => Err(Error::UnexpectedWait),
            tag::READY | tag::SEQ => {
                let missing = self.cfg.required_features & !r.features;
                if missing != 0 {
                    return Err(Error::MissingFeatures { missing });
                }
                self.features = self.cfg.features & r.features;
                self.peer_global_seq = r.global_seq;
                self.connect_seq = self.connect_seq.wrapping_add(1);
                self.peer_lossy = r.is_lossy();
                self.auth_retries = 0;
                self.challenge = None;
                if r.tag == tag::SEQ {
                    let peer_in_seq = handshake::decode_seq(seq_bytes).map_err(Error::Handshake)?;
                    self.tx.on_ack(peer_in_seq);
                    self.tx
                        .push_raw(Bytes::copy_from_slice(&handshake::encode_seq(self.in_seq)));
                }
                self.open(now, r.tag);
                Ok(())
            }
            other => Err(Error::Handshake(DecodeError::UnknownTag(other))),
        }
    }

    fn handle_connect(
        &mut self,
        now: Instant,
        c: ConnectMsg,
        authorizer: &[u8],
    ) -> Result<(), Error> {
        let ty = u8::try_from(c.host_type)
            .ok()
            .and_then(|t| EntityType::from_u8(t).ok())
            .ok_or(Error::BadPeerType(c.host_type))?;
        self.peer_type = ty;
        // The client protocol number of our own type, unless we are a plain client.
        if self.cfg.name.ty != EntityType::Client {
            let ours = proto_for(self.cfg.name.ty);
            if c.protocol_version != ours {
                self.reply(tag::BADPROTOVER, &c, &[]);
                return Ok(());
            }
        }
        if self.cfg.required_features & !c.features != 0 {
            self.reply(tag::FEATURES, &c, &[]);
            return Ok(());
        }
        match self.auth.verify(ty, c.authorizer_protocol, authorizer) {
            Verdict::Reject => {
                self.reply(tag::BADAUTHORIZER, &c, &[]);
                return Ok(());
            }
            Verdict::Challenge(ch) => {
                self.reply(tag::CHALLENGE_AUTHORIZER, &c, &ch);
                return Ok(());
            }
            Verdict::Accept(_) => {}
        }
        if self.cfg.sessions && !self.cfg.lossy && !self.has_session {
            self.state = Inner::Handshake(Phase::AwaitSession(c));
            self.events.push_back(Event::PeerIdentified(PeerInfo {
                addr: self.peer_addr,
                ty,
                connect: c,
            }));
            return Ok(());
        }
        self.decide(now, c);
        Ok(())
    }

    /// Server: answers a verified connect against this session's state.
    fn decide(&mut self, now: Instant, c: ConnectMsg) {
        if self.cfg.lossy || !self.has_session {
            if !self.cfg.lossy && c.connect_seq > 0 {
                // The peer thinks we share a session; we have none.
                self.reply(tag::RESETSESSION, &c, &[]);
                return;
            }
            self.accept(now, c);
            return;
        }
        if c.global_seq < self.peer_global_seq {
            let mut r = self.reply_base(tag::RETRY_GLOBAL, &c);
            r.global_seq = self.peer_global_seq;
            self.send_reply(&r, &[]);
        } else if c.connect_seq == 0 && self.connect_seq > 0 {
            // The peer restarted: its old session is gone, so is ours.
            self.reset_session();
            self.reset_from_peer = true;
            self.accept(now, c);
        } else if c.connect_seq <= self.connect_seq {
            let mut r = self.reply_base(tag::RETRY_SESSION, &c);
            r.connect_seq = self.connect_seq.wrapping_add(1);
            self.send_reply(&r, &[]);
        } else {
            self.accept(now, c);
        }
    }

    fn reply_base(&self, t: u8, c: &ConnectMsg) -> ConnectReply {
        ConnectReply {
            tag: t,
            features: (c.features & self.cfg.features) | self.cfg.required_features,
            global_seq: self.global_seq,
            connect_seq: 0,
            protocol_version: proto_for(self.cfg.name.ty),
            authorizer_len: 0,
            flags: 0,
        }
    }

    fn reply(&mut self, t: u8, c: &ConnectMsg, auth_reply: &[u8]) {
        let r = self.reply_base(t, c);
        self.send_reply(&r, auth_reply);
    }

    fn send_reply(&mut self, r: &ConnectReply, auth_reply: &[u8]) {
        let r = ConnectReply {
            authorizer_len: auth_reply.len() as u32,
            ..*r
        };
        let mut b = BytesMut::with_capacity(CONNECT_REPLY_LEN + auth_reply.len() + SEQ_LEN);
        b.put_slice(&r.encode());
        b.put_slice(auth_reply);
        if r.tag == tag::SEQ {
            b.put_slice(&handshake::encode_seq(self.in_seq));
        }
        self.tx.push_raw(b.freeze());
        self.state = Inner::Handshake(Phase::ReadConnect);
    }

    /// Server: opens the session on this transport (READY, or SEQ and wait for the
    /// peer's in_seq).
    fn accept(&mut self, now: Instant, c: ConnectMsg) {
        self.connect_seq = c.connect_seq.wrapping_add(1);
        self.peer_global_seq = c.global_seq;
        self.global_seq = self.global_seq.wrapping_add(1);
        let seq = c.features & feat::RECONNECT_SEQ != 0 && !self.reset_from_peer;
        if !seq {
            self.in_seq = 0;
            self.in_seq_acked = 0;
        }
        self.reset_from_peer = false;
        let r = ConnectReply {
            tag: if seq { tag::SEQ } else { tag::READY },
            features: self.cfg.features,
            global_seq: self.global_seq,
            connect_seq: self.connect_seq,
            protocol_version: proto_for(self.cfg.name.ty),
            authorizer_len: 0,
            flags: if self.cfg.lossy { CONNECT_LOSSY } else { 0 },
        };
        self.features = self.cfg.features & c.features;
        self.send_reply(&r, &[]);
        self.has_session = true;
        if seq {
            self.state = Inner::Handshake(Phase::ReadSeq);
        } else {
            self.open(now, tag::READY);
        }
    }

    fn open(&mut self, now: Instant, reply_tag: u8) {
        let footer = FooterKind::for_features(self.features);
        self.tx.set_peer_features(self.features);
        self.rx.set_footer(footer);
        self.tx.set_hold(false);
        self.in_seq_acked = self.in_seq;
        self.backoff = self.cfg.backoff_initial;
        self.stats.opens += 1;
        self.state = Inner::Open;
        self.next_keepalive = self.cfg.keepalive_interval.map(|i| later(now, i));
        self.events.push_back(Event::Opened {
            features: self.features,
            peer_addr: self.peer_addr,
            my_addr: self.my_addr,
            peer_type: self.peer_type,
            reply_tag,
            lossy: self.is_lossy(),
        });
    }

    fn reset_session(&mut self) {
        let unsent = self.tx.drain(true);
        self.in_seq = 0;
        self.in_seq_acked = 0;
        self.connect_seq = 0;
        self.peer_global_seq = 0;
        self.events.push_back(Event::SessionReset { unsent });
    }

    fn open_step(&mut self, now: Instant) -> Result<bool, Error> {
        let Some(rec) = self.rx.next_record().map_err(Error::Recv)? else {
            return Ok(false);
        };
        match rec {
            Record::Message(m) => {
                let seq = m.header.seq;
                if seq <= self.in_seq {
                    self.stats.dups_in += 1;
                    return Ok(true);
                }
                if self.cfg.strict_seq && seq > self.in_seq.saturating_add(1) {
                    return Err(Error::SeqGap {
                        got: seq,
                        expected: self.in_seq.saturating_add(1),
                    });
                }
                self.in_seq = seq;
                self.stats.msgs_in += 1;
                self.stats.bytes_in += m.header.payload_len();
                self.events.push_back(Event::Message(m));
            }
            Record::Aborted(h) => {
                self.stats.aborted_in += 1;
                if self.cfg.on_aborted == OnAborted::Fault {
                    return Err(Error::AbortedMessage { seq: h.seq });
                }
                if h.seq > self.in_seq {
                    self.in_seq = h.seq;
                }
                self.events.push_back(Event::AbortedMessage(h));
            }
            Record::Control(Control::Ack(seq)) => {
                let before = self.tx.acked();
                self.tx.on_ack(seq);
                if self.tx.acked() > before {
                    self.events.push_back(Event::Acked(seq));
                }
            }
            Record::Control(Control::Keepalive) => {}
            Record::Control(Control::Keepalive2(ts)) => {
                self.stats.keepalives_answered += 1;
                self.tx.push_control(Control::Keepalive2Ack(ts));
            }
            Record::Control(Control::Keepalive2Ack(ts)) => {
                let rtt = match self.keepalive_sent {
                    Some((stamp, at)) if stamp == ts => Some(now.saturating_duration_since(at)),
                    _ => None,
                };
                self.events.push_back(Event::KeepaliveAck { rtt });
            }
            Record::Control(Control::Close) => {
                self.finish_closed(Some(Error::PeerClosed));
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn fault(&mut self, now: Instant, error: Error) {
        self.stats.faults += 1;
        self.rx.clear();
        self.tx.reset();
        self.tx.set_hold(true);
        self.next_keepalive = None;
        let fatal = matches!(
            error,
            Error::MissingFeatures { .. }
                | Error::BadProtocolVersion { .. }
                | Error::AuthFailed
                | Error::PeerClosed
        );
        if fatal || self.cfg.lossy || (self.role == Role::Server && self.peer_lossy) {
            self.finish_closed(Some(error));
            return;
        }
        if self.peer_lossy {
            // We are a lossless client of a lossy server (a mon, an OSD): the server drops
            // the session on a fault, so the next connection is a new session. Keep every
            // message and send it again with a fresh seq.
            self.tx.restart_session();
            self.in_seq = 0;
            self.in_seq_acked = 0;
            self.connect_seq = 0;
            self.peer_global_seq = 0;
        }
        self.events.push_back(Event::Fault { error });
        match self.role {
            Role::Client => {
                self.state = Inner::Backoff(later(now, self.backoff));
                self.backoff = self.backoff.saturating_mul(2).min(self.cfg.backoff_max);
            }
            Role::Server => self.state = Inner::Standby,
        }
    }

    fn finish_closed(&mut self, error: Option<Error>) {
        let unsent = self.tx.drain(false);
        self.rx.clear();
        self.state = Inner::Closed;
        self.next_keepalive = None;
        self.events.push_back(Event::Closed { error, unsent });
    }
}

/// The protocol version a connect to (or a reply from) an entity of type `t` carries; 0
/// for types without one.
fn proto_for(t: EntityType) -> u32 {
    handshake::protocol::for_peer(t).unwrap_or(0)
}

/// `now + d`, saturating far in the future instead of panicking on overflow.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}
