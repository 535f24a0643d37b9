//! Many connections on one thread: a [`Reactor`] drives any number of client and server
//! [`Connection`]s over [`mio`] sockets.
//!
//! The reactor owns listeners, sockets and connections. It moves bytes between the sockets
//! and the cores, fires their timers, opens client transports when a core asks for one
//! ([`Event::OpenTransport`]), closes sockets on [`Event::Fault`] / [`Event::Closed`], and
//! for lossless servers attaches a reconnecting peer's transport to the session it already
//! holds for it ([`Event::PeerIdentified`] → [`Connection::adopt`]). Everything else it hands
//! to you, as a [`Notice`] for a [`ConnId`], through a handler you pass to
//! [`Reactor::run_once`] or [`Reactor::run`]:
//!
//! ```text
//! handler(&mut Control, ConnId, Notice)
//! ```
//!
//! Inside the handler, [`Control`] queues messages, revokes them, opens new connections,
//! closes connections, or stops the loop. Outside it, the [`Reactor`] dereferences to the
//! same [`Control`], so the same calls work between turns.
//!
//! # Example
//!
//! A server and a client in one reactor, one message, one acknowledgement:
//!
//! ```
//! use bytes::Bytes;
//! use ceph_msgr::shim::mio::{Notice, Reactor};
//! use ceph_msgr::wire::{EntityName, EntityType};
//! use ceph_msgr::{Config, Event, Message};
//!
//! # fn main() -> std::io::Result<()> {
//! let mut reactor = Reactor::new()?;
//! let server_name = EntityName { ty: EntityType::Osd, num: 0 };
//! let listener = reactor.listen("127.0.0.1:0".parse().unwrap(), Config::server(server_name))?;
//! let addr = reactor.local_addr(listener).unwrap();
//!
//! let client = reactor.connect(Config::client(EntityName::client(1)), addr, EntityType::Osd);
//! reactor.send(client, Message::new(42).with_front(Bytes::from_static(b"hi"))).unwrap();
//!
//! let mut received = Vec::new();
//! let mut acked = false;
//! while !acked {
//!     reactor.run_once(None, |_ctl, id, notice| match notice {
//!         Notice::Event(Event::Message(m)) => received.push((id, m.front)),
//!         Notice::Event(Event::Acked(_)) if id == client => acked = true,
//!         _ => {}
//!     })?;
//! }
//! assert_eq!(received.len(), 1);
//! assert_eq!(&received[0].1[..], b"hi");
//! # Ok(())
//! # }
//! ```
//!
//! # How a turn runs
//!
//! [`Reactor::run_once`]:
//!
//! 1. writes what calls made since the last turn queued, and delivers pending notices;
//! 2. waits for socket readiness, at most until the earliest timer of any connection (or
//!    your timeout; not at all if work is pending);
//! 3. accepts new transports, completes client connects, reads every readable socket into
//!    its core (up to [`Options::read_budget`] bytes per connection per turn, so one busy
//!    peer cannot starve the others), and fires due timers;
//! 4. hands every resulting event to the handler, and writes.
//!
//! Writes go straight from the core's buffers to `write_vectored` until the socket would
//! block; only then is WRITABLE interest registered, and it is dropped again once the core
//! has nothing more to write. On Unix, reads of a streaming connection land straight in its
//! receive buffer (no copy); see [`Options::read_buffer`].
//!
//! # Lifetimes of ids
//!
//! A [`ConnId`] stays valid until the [`Event::Closed`] notice for it has been handled (the
//! handler can still inspect the connection with [`Control::conn`] while handling it), or
//! until [`Control::remove`]; after that every call with it is refused
//! ([`QueueError::Closed`], [`Revoked::Unknown`], `None`). Ids are not reused.
//!
//! A lossless server session (`cfg.lossy = false`, `cfg.sessions = true`) keeps its id
//! across transports: when its peer reconnects, the transport accepted under a new id is
//! attached to the old session, which gets [`Notice::Resumed`] naming the id that went away.
//! A transport that fails before its peer identified itself is closed for good; a session
//! whose transport fails waits (without a socket) until its peer comes back or you
//! [`close`](Control::close) it.
//!
//! # Limits
//!
//! Listeners made by [`Control::listen`] have a backlog of [`Options::listen_backlog`]
//! (1,024 by default; the kernel caps it at `net.core.somaxconn`): when one thread both
//! opens and accepts more connections than that, open them in waves
//! (`examples/mio_many.rs` adds 100 per turn). An `accept` error other than `WouldBlock` (out of descriptors, say) leaves the pending
//! transport in the kernel's backlog until the next connection attempt wakes the
//! listener. Connect attempts have no timeout of their own beyond the kernel's.
//!
//! # Waking the loop
//!
//! [`Reactor::waker`] returns a handle other threads can use to interrupt a blocked
//! [`Reactor::run_once`]; [`Reactor::add_wakeup_source`] registers any [`mio`] source (for
//! instance the read end of a signal self-pipe) that does the same when it turns readable.
#![forbid(unsafe_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use crate::conn::{Config, Connection, Event, Role, State, WriteStep};
use crate::send::{MsgId, QueueError, Revoked};
use crate::wire::handshake::EntityAddr;
use crate::wire::EntityType;
use crate::Message;

/// Token of the waker and of wakeup sources.
const WAKE: Token = Token(usize::MAX);
/// Tokens with this bit set are listeners; the rest are connection slots.
const LISTENER_BIT: usize = 1 << (usize::BITS - 2);

/// Identifies a connection held by a [`Reactor`]. Never reused within one reactor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId {
    /// Counts up from 1 in the order connections were taken in.
    serial: u64,
    /// The slot it lives in.
    idx: u32,
}

impl ConnId {
    /// The serial number: ids count up from 1 in the order the reactor took the
    /// connections in (ids also compare in that order).
    #[must_use]
    pub fn get(self) -> u64 {
        self.serial
    }
}

/// `c` and the serial number: `c1`, `c2`, …
impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.serial)
    }
}

/// Identifies a listener of a [`Reactor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerId(usize);

impl fmt::Display for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "l{}", self.0)
    }
}

/// What the reactor tells the handler about a connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Notice {
    /// A listener accepted a transport; this id is its new server connection. The
    /// handshake runs on its own; [`Event::Opened`] follows once it is done.
    Accepted {
        /// The listener.
        listener: ListenerId,
        /// The peer's socket address.
        peer: SocketAddr,
    },
    /// An event of the connection's core. [`Event::OpenTransport`] and
    /// [`Event::PeerIdentified`] are handled by the reactor and never appear here.
    /// [`Event::Closed`] is the last notice of a connection.
    Event(Event),
    /// Lossless server: the peer of this (existing) session reconnected. The transport it
    /// came in on, accepted as connection `from`, now belongs to this session, and `from`
    /// is gone. The session's previous transport, if it had one, was closed.
    Resumed {
        /// The id the transport was accepted under.
        from: ConnId,
    },
}

/// Tuning knobs of a [`Reactor`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Size of the scratch buffer shared by all connections, and the room reserved per
    /// read in a connection's own receive buffer. On Unix a streaming connection (its
    /// last turn filled a buffer) or one with a record partly received is read straight
    /// into its receive buffer, without a copy; a connection that reads little is read
    /// through the scratch buffer and copied in. See also
    /// [`release_idle_buffers_after`](Self::release_idle_buffers_after).
    pub read_buffer: usize,
    /// Bytes read from one connection per turn before the others get their go (the rest
    /// is read on the next turn).
    pub read_budget: usize,
    /// Readiness events taken from the OS per poll.
    pub events_capacity: usize,
    /// A connection whose receive buffer holds no partly received record and that has
    /// read nothing for this long gives the buffer back (a streaming connection keeps its
    /// buffer between turns, so 1,000 connections that streamed once and went quiet do
    /// not hold 64 KiB or more each for ever). `None`: never.
    pub release_idle_buffers_after: Option<Duration>,
    /// Backlog of listeners made by [`Control::listen`] (the kernel caps it at
    /// `net.core.somaxconn`): connections accepted by the kernel and not yet by the loop.
    pub listen_backlog: i32,
    /// Set `TCP_NODELAY` on every transport.
    pub nodelay: bool,
    /// Busy-poll: after a turn that had work, keep polling without sleeping for up to
    /// this long before blocking. Trades CPU for latency where waking a sleeping thread
    /// is slow (as on VMs whose idle vCPUs take tens of µs to wake); `None` (the default)
    /// always blocks.
    pub busy_poll: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            read_buffer: 64 * 1024,
            read_budget: 256 * 1024,
            events_capacity: 1024,
            listen_backlog: 1024,
            release_idle_buffers_after: Some(Duration::from_secs(1)),
            nodelay: true,
            busy_poll: None,
        }
    }
}

/// Byte counters and facts about a connection's transports, from [`Control::info`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// Client or server.
    pub role: Role,
    /// The socket address of the current (or last) transport's peer.
    pub peer: Option<SocketAddr>,
    /// The listener that accepted it (server connections).
    pub listener: Option<ListenerId>,
    /// When the reactor took the connection in.
    pub since: Instant,
    /// Bytes read from its transports.
    pub bytes_read: u64,
    /// Bytes written to its transports.
    pub bytes_written: u64,
    /// Transports it has had (accepted, adopted, or connected).
    pub transports: u64,
    /// Whether a transport is attached now.
    pub has_transport: bool,
    /// Bytes allocated for its receive buffer now (see [`Options::read_buffer`] and
    /// [`Options::release_idle_buffers_after`]: a quiet connection gives it back).
    pub receive_buffer: usize,
}

struct Entry {
    conn: Connection,
    sock: Option<TcpStream>,
    /// A non-blocking connect is in progress on `sock`.
    connecting: bool,
    /// Interest currently registered for `sock`.
    registered: Option<Interest>,
    /// Client: where transports are opened to.
    target: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    listener: Option<ListenerId>,
    /// The key this entry holds in the session registry.
    session_key: Option<EntityAddr>,
    /// The deadline pushed to the timer heap for this entry.
    timer: Option<Instant>,
    /// In the dirty queue.
    queued: bool,
    since: Instant,
    bytes_read: u64,
    bytes_written: u64,
    transports: u64,
    /// Streaming: its last turn read at least a full buffer, so reads go straight into
    /// its receive buffer. A connection that reads little is read through the shared
    /// scratch buffer instead.
    in_place: bool,
    /// When it last read anything (for [`Options::release_idle_buffers_after`]).
    last_input: Instant,
}

impl Entry {
    fn new(conn: Connection, since: Instant) -> Self {
        Self {
            conn,
            sock: None,
            connecting: false,
            registered: None,
            target: None,
            peer: None,
            listener: None,
            session_key: None,
            timer: None,
            queued: false,
            since,
            bytes_read: 0,
            bytes_written: 0,
            transports: 0,
            in_place: false,
            last_input: since,
        }
    }
}

struct Slot {
    /// Serial of the entry it holds (or held last).
    serial: u64,
    entry: Option<Box<Entry>>,
}

struct ListenerSlot {
    sock: TcpListener,
    cfg: Config,
    my_addr: EntityAddr,
    local: SocketAddr,
}

type Handler<'h> = dyn FnMut(&mut Control, ConnId, Notice) + 'h;

/// The connections, listeners and bookkeeping of a [`Reactor`]; what the handler gets to
/// act with. A [`Reactor`] dereferences to its `Control`.
pub struct Control {
    registry: Registry,
    opts: Options,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    listeners: Vec<Option<ListenerSlot>>,
    sessions: HashMap<EntityAddr, ConnId>,
    timers: BinaryHeap<Reverse<(Instant, u32, u64)>>,
    /// The last serial handed out.
    serial: u64,
    /// Connections to process: events to hand out, bytes to write, interest and timer to
    /// update.
    dirty: VecDeque<u32>,
    /// Connections whose socket may have more to read (readiness is edge-triggered).
    backlog: VecDeque<u32>,
    /// Reactor notices waiting for the handler.
    notices: VecDeque<(ConnId, Notice)>,
    buf: Vec<u8>,
    now: Instant,
    stop: bool,
    /// When to look for idle connections' receive buffers to release (`None`: no
    /// connection has read since the last look).
    next_release: Option<Instant>,
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("connections", &self.live)
            .field("listeners", &self.listeners.iter().flatten().count())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

/// An event loop running many [`Connection`]s on one thread (see the
/// [module docs](self)).
pub struct Reactor {
    poll: Poll,
    events: Events,
    waker: Option<Arc<Waker>>,
    ctl: Control,
    /// When a poll last returned events (for [`Options::busy_poll`]).
    last_work: Option<Instant>,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("ctl", &self.ctl)
            .finish_non_exhaustive()
    }
}

impl Deref for Reactor {
    type Target = Control;
    fn deref(&self) -> &Control {
        &self.ctl
    }
}

impl DerefMut for Reactor {
    fn deref_mut(&mut self) -> &mut Control {
        &mut self.ctl
    }
}

impl Reactor {
    /// A reactor with default [`Options`].
    pub fn new() -> io::Result<Self> {
        Self::with_options(Options::default())
    }

    /// A reactor with the given options.
    pub fn with_options(opts: Options) -> io::Result<Self> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let events = Events::with_capacity(opts.events_capacity.max(16));
        let buf = vec![0; opts.read_buffer.max(1024)];
        Ok(Self {
            poll,
            events,
            waker: None,
            last_work: None,
            ctl: Control {
                registry,
                opts,
                slots: Vec::new(),
                free: Vec::new(),
                live: 0,
                listeners: Vec::new(),
                sessions: HashMap::new(),
                timers: BinaryHeap::new(),
                serial: 0,
                dirty: VecDeque::new(),
                backlog: VecDeque::new(),
                notices: VecDeque::new(),
                buf,
                now: Instant::now(),
                stop: false,
                next_release: None,
            },
        })
    }

    /// The [`Control`] (also reachable through `Deref`).
    pub fn control(&mut self) -> &mut Control {
        &mut self.ctl
    }

    /// A handle that wakes a blocked [`run_once`](Self::run_once) from any thread
    /// (`waker.wake()`); the turn then returns without a notice.
    pub fn waker(&mut self) -> io::Result<Arc<Waker>> {
        if let Some(w) = &self.waker {
            return Ok(Arc::clone(w));
        }
        let w = Arc::new(Waker::new(self.poll.registry(), WAKE)?);
        self.waker = Some(Arc::clone(&w));
        Ok(w)
    }

    /// Registers a source (a pipe, a Unix socket, …) whose readability ends the current
    /// turn, like [`waker`](Self::waker). Readiness is edge-triggered: drain the source
    /// yourself if you want to hear about it again. Typical use: the read end of a signal
    /// self-pipe.
    pub fn add_wakeup_source<S: Source + ?Sized>(&mut self, source: &mut S) -> io::Result<()> {
        self.poll
            .registry()
            .register(source, WAKE, Interest::READABLE)
    }

    /// Runs one turn (see the [module docs](self)): waits for readiness at most `timeout`
    /// (`None`: until something happens or a connection timer is due), then handles
    /// everything that is ready and hands the results to `handler`.
    pub fn run_once<H>(&mut self, timeout: Option<Duration>, mut handler: H) -> io::Result<()>
    where
        H: FnMut(&mut Control, ConnId, Notice),
    {
        let h: &mut Handler<'_> = &mut handler;
        self.ctl.now = Instant::now();
        self.ctl.settle(h);
        let wait = self.ctl.wait_time(timeout);
        let spin_until = match (self.ctl.opts.busy_poll, self.last_work) {
            (Some(spin), Some(at)) if wait != Some(Duration::ZERO) => Some(at + spin),
            _ => None,
        };
        let mut polled = false;
        while spin_until.is_some_and(|until| Instant::now() < until) {
            match self.poll.poll(&mut self.events, Some(Duration::ZERO)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if !self.events.is_empty() {
                polled = true;
                break;
            }
            std::hint::spin_loop();
        }
        if !polled {
            match self.poll.poll(&mut self.events, wait) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.ctl.now = Instant::now();
        if !self.events.is_empty() {
            self.last_work = Some(self.ctl.now);
        }
        for ev in &self.events {
            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            let writable = ev.is_writable() || ev.is_write_closed() || ev.is_error();
            self.ctl.on_ready(ev.token(), readable, writable);
        }
        self.ctl.read_backlog();
        self.ctl.fire_timers();
        self.ctl.release_idle_buffers();
        self.ctl.settle(h);
        Ok(())
    }

    /// Runs turns until [`Control::stop`] is called (by the handler, or between turns by
    /// whoever holds the reactor), then clears the stop request and returns.
    pub fn run<H>(&mut self, mut handler: H) -> io::Result<()>
    where
        H: FnMut(&mut Control, ConnId, Notice),
    {
        while !self.ctl.stop {
            self.run_once(None, &mut handler)?;
        }
        self.ctl.stop = false;
        Ok(())
    }
}

impl Control {
    // ----- listeners ----------------------------------------------------------------------

    /// Binds a listener on `addr` (port 0 picks a free port). Every transport it accepts
    /// becomes a server [`Connection`] with `cfg`, announcing the bound address with
    /// `cfg.nonce`.
    ///
    /// For sessions that survive reconnects, set `cfg.lossy = false` and
    /// `cfg.sessions = true`: the reactor then keeps a registry of sessions keyed by the
    /// peer's address and nonce.
    pub fn listen(&mut self, addr: SocketAddr, cfg: Config) -> io::Result<ListenerId> {
        let sock = bind_listener(addr, self.opts.listen_backlog)?;
        self.add_mio_listener(TcpListener::from_std(sock), cfg)
    }

    /// Like [`listen`](Self::listen), with a listener you bound yourself (it is switched
    /// to non-blocking mode).
    pub fn add_listener(
        &mut self,
        listener: std::net::TcpListener,
        cfg: Config,
    ) -> io::Result<ListenerId> {
        listener.set_nonblocking(true)?;
        self.add_mio_listener(TcpListener::from_std(listener), cfg)
    }

    fn add_mio_listener(&mut self, mut sock: TcpListener, cfg: Config) -> io::Result<ListenerId> {
        let local = sock.local_addr()?;
        let id = self.listeners.len();
        self.registry
            .register(&mut sock, Token(LISTENER_BIT | id), Interest::READABLE)?;
        let my_addr = EntityAddr::new(Some(local), cfg.nonce);
        self.listeners.push(Some(ListenerSlot {
            sock,
            cfg,
            my_addr,
            local,
        }));
        Ok(ListenerId(id))
    }

    /// The address a listener is bound to.
    #[must_use]
    pub fn local_addr(&self, listener: ListenerId) -> Option<SocketAddr> {
        self.listeners.get(listener.0)?.as_ref().map(|l| l.local)
    }

    /// Stops listening. Connections it accepted stay.
    pub fn close_listener(&mut self, listener: ListenerId) {
        if let Some(slot) = self.listeners.get_mut(listener.0) {
            if let Some(mut l) = slot.take() {
                let _ = self.registry.deregister(&mut l.sock);
            }
        }
    }

    // ----- connections ---------------------------------------------------------------------

    /// Adds a client connection to `peer` (an entity of type `peer_type`). The reactor
    /// opens its transport (and reopens it after faults, for a lossless `cfg`).
    pub fn connect(&mut self, cfg: Config, peer: SocketAddr, peer_type: EntityType) -> ConnId {
        self.add_client(Connection::client(cfg, peer, peer_type))
    }

    /// Adds a client connection you built yourself (for instance with an authorizer). Its
    /// transports are opened to the socket address it was created with.
    pub fn add_client(&mut self, conn: Connection) -> ConnId {
        let target = conn.peer_addr().addr;
        let mut e = Entry::new(conn, Instant::now());
        e.target = target;
        let id = self.insert(e);
        self.mark(id.idx);
        id
    }

    /// Queues a message on a connection; see [`Connection::send`].
    pub fn send(&mut self, id: ConnId, msg: Message) -> Result<MsgId, QueueError> {
        let Some(e) = self.entry_mut(id) else {
            return Err(QueueError::Closed);
        };
        let r = e.conn.send(msg);
        self.mark(id.idx);
        r
    }

    /// Revokes a message; see [`Connection::revoke`].
    pub fn revoke(&mut self, id: ConnId, msg: MsgId) -> Revoked {
        let Some(e) = self.entry_mut(id) else {
            return Revoked::Unknown;
        };
        let r = e.conn.revoke(msg);
        self.mark(id.idx);
        r
    }

    /// Sends a keepalive on an open connection; see [`Connection::send_keepalive`].
    pub fn send_keepalive(&mut self, id: ConnId) {
        let now = Instant::now();
        if let Some(e) = self.entry_mut(id) {
            e.conn.send_keepalive(now);
            self.mark(id.idx);
        }
    }

    /// Ends a connection gracefully (CLOSE is flushed first); [`Event::Closed`] follows.
    pub fn close(&mut self, id: ConnId) {
        if let Some(e) = self.entry_mut(id) {
            e.conn.close();
            self.mark(id.idx);
        }
    }

    /// Drops the current transport of a connection as if it had failed: a lossless client
    /// reconnects after its backoff, a lossless server session waits for its peer, a lossy
    /// connection ends ([`Event::Closed`]).
    pub fn disconnect(&mut self, id: ConnId, reason: &str) {
        let now = Instant::now();
        if let Some(e) = self.entry_mut(id) {
            if e.sock.is_some() {
                e.conn.transport_failed(now, reason);
                self.drop_transport(id.idx);
                self.mark(id.idx);
            }
        }
    }

    /// Takes a connection out of the reactor at once: its socket is closed without a CLOSE
    /// and no further notice is given. Returns the connection (queued messages included).
    pub fn remove(&mut self, id: ConnId) -> Option<Connection> {
        self.entry(id)?;
        self.drop_transport(id.idx);
        self.free_slot(id.idx).map(|e| e.conn)
    }

    /// The connection (state, stats, messenger).
    #[must_use]
    pub fn conn(&self, id: ConnId) -> Option<&Connection> {
        self.entry(id).map(|e| &e.conn)
    }

    /// Transport facts and byte counters of a connection.
    #[must_use]
    pub fn info(&self, id: ConnId) -> Option<ConnInfo> {
        self.entry(id).map(|e| ConnInfo {
            role: e.conn.role(),
            peer: e.peer,
            listener: e.listener,
            since: e.since,
            bytes_read: e.bytes_read,
            bytes_written: e.bytes_written,
            transports: e.transports,
            has_transport: e.sock.is_some(),
            receive_buffer: e.conn.receive_capacity(),
        })
    }

    /// The lossless server session held for a peer address (address + nonce).
    #[must_use]
    pub fn session(&self, peer: &EntityAddr) -> Option<ConnId> {
        self.sessions.get(peer).copied()
    }

    /// Ids of all connections held.
    pub fn ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.entry.as_ref().map(|_| ConnId {
                idx: i as u32,
                serial: s.serial,
            })
        })
    }

    /// Number of connections held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no connection is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The time the current turn started (what the cores were told).
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Asks [`Reactor::run`] to return after the current turn.
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Whether a stop was requested and not yet honoured.
    #[must_use]
    pub fn stop_requested(&self) -> bool {
        self.stop
    }

    // ----- slots ---------------------------------------------------------------------------

    fn insert(&mut self, e: Entry) -> ConnId {
        self.live += 1;
        self.serial += 1;
        let serial = self.serial;
        if let Some(idx) = self.free.pop() {
            let s = &mut self.slots[idx as usize];
            s.serial = serial;
            s.entry = Some(Box::new(e));
            return ConnId { serial, idx };
        }
        let idx = u32::try_from(self.slots.len()).expect("fewer than 2^32 connections");
        self.slots.push(Slot {
            serial,
            entry: Some(Box::new(e)),
        });
        ConnId { serial, idx }
    }

    fn free_slot(&mut self, idx: u32) -> Option<Box<Entry>> {
        let s = self.slots.get_mut(idx as usize)?;
        let e = s.entry.take()?;
        let id = ConnId {
            serial: s.serial,
            idx,
        };
        self.free.push(idx);
        self.live -= 1;
        if let Some(key) = e.session_key {
            if self.sessions.get(&key) == Some(&id) {
                self.sessions.remove(&key);
            }
        }
        Some(e)
    }

    fn id_of(&self, idx: u32) -> Option<ConnId> {
        let s = self.slots.get(idx as usize)?;
        s.entry.as_ref().map(|_| ConnId {
            serial: s.serial,
            idx,
        })
    }

    fn entry(&self, id: ConnId) -> Option<&Entry> {
        let s = self.slots.get(id.idx as usize)?;
        if s.serial != id.serial {
            return None;
        }
        s.entry.as_deref()
    }

    fn entry_mut(&mut self, id: ConnId) -> Option<&mut Entry> {
        let s = self.slots.get_mut(id.idx as usize)?;
        if s.serial != id.serial {
            return None;
        }
        s.entry.as_deref_mut()
    }

    fn at(&mut self, idx: u32) -> Option<&mut Entry> {
        self.slots.get_mut(idx as usize)?.entry.as_deref_mut()
    }

    /// Queues a connection for processing at the end of the turn.
    fn mark(&mut self, idx: u32) {
        if let Some(e) = self.at(idx) {
            if !e.queued {
                e.queued = true;
                self.dirty.push_back(idx);
            }
        }
    }

    fn drop_transport(&mut self, idx: u32) {
        let Some(e) = self
            .slots
            .get_mut(idx as usize)
            .and_then(|s| s.entry.as_deref_mut())
        else {
            return;
        };
        if let Some(mut sock) = e.sock.take() {
            if e.registered.is_some() {
                let _ = self.registry.deregister(&mut sock);
            }
        }
        e.registered = None;
        e.connecting = false;
    }

    // ----- the turn ----------------------------------------------------------------------

    fn wait_time(&mut self, user: Option<Duration>) -> Option<Duration> {
        if !self.backlog.is_empty() || !self.dirty.is_empty() || !self.notices.is_empty() {
            return Some(Duration::ZERO);
        }
        let timer = self
            .timers
            .peek()
            .map(|Reverse((t, _, _))| *t)
            .into_iter()
            .chain(self.next_release)
            .min()
            .map(|t| t.saturating_duration_since(self.now));
        match (user, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_ready(&mut self, token: Token, readable: bool, writable: bool) {
        if token == WAKE {
            return;
        }
        if token.0 & LISTENER_BIT != 0 {
            self.accept_all(token.0 & !LISTENER_BIT);
            return;
        }
        let idx = token.0 as u32;
        let Some(e) = self.at(idx) else {
            return;
        };
        if e.sock.is_none() {
            return;
        }
        if e.connecting {
            self.check_connect(idx);
            return;
        }
        if readable {
            self.backlog.push_back(idx);
        }
        if writable {
            self.mark(idx);
        }
    }

    fn accept_all(&mut self, l: usize) {
        loop {
            let Some(Some(ls)) = self.listeners.get_mut(l) else {
                return;
            };
            let (sock, peer) = match ls.sock.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: done. Other errors (out of descriptors, …) leave the
                // transport in the backlog; the next connection attempt retries.
                Err(_) => return,
            };
            let mut conn = Connection::server(ls.cfg.clone(), ls.my_addr, peer);
            // Starts the handshake deadline (Config::handshake_timeout).
            conn.handle_timeout(self.now);
            let mut sock = sock;
            if self.opts.nodelay {
                let _ = sock.set_nodelay(true);
            }
            let mut e = Entry::new(conn, self.now);
            e.listener = Some(ListenerId(l));
            e.peer = Some(peer);
            e.transports = 1;
            let id = self.insert(e);
            if self
                .registry
                .register(&mut sock, Token(id.idx as usize), Interest::READABLE)
                .is_err()
            {
                self.free_slot(id.idx);
                continue;
            }
            let e = self.at(id.idx).expect("just inserted");
            e.sock = Some(sock);
            e.registered = Some(Interest::READABLE);
            self.notices.push_back((
                id,
                Notice::Accepted {
                    listener: ListenerId(l),
                    peer,
                },
            ));
            // The client's banner may already be waiting.
            self.backlog.push_back(id.idx);
            self.mark(id.idx);
        }
    }

    /// Client: the non-blocking connect may have completed.
    fn check_connect(&mut self, idx: u32) {
        let now = self.now;
        let nodelay = self.opts.nodelay;
        let Some(e) = self.at(idx) else { return };
        let Some(sock) = e.sock.as_ref() else { return };
        let outcome = match sock.take_error() {
            Ok(Some(err)) | Err(err) => Err(err),
            Ok(None) => match sock.peer_addr() {
                Ok(_) => Ok(true),
                Err(err)
                    if err.kind() == io::ErrorKind::NotConnected
                        || err.kind() == io::ErrorKind::WouldBlock =>
                {
                    Ok(false)
                }
                Err(err) => Err(err),
            },
        };
        match outcome {
            Ok(false) => {}
            Ok(true) => {
                if nodelay {
                    let _ = sock.set_nodelay(true);
                }
                e.connecting = false;
                e.conn.transport_connected(now);
                self.backlog.push_back(idx);
                self.mark(idx);
            }
            Err(err) => {
                let reason = match e.target {
                    Some(t) => format!("connect to {t}: {err}"),
                    None => format!("connect: {err}"),
                };
                e.conn.transport_failed(now, &reason);
                self.drop_transport(idx);
                self.mark(idx);
            }
        }
    }

    /// Reads from every connection in the backlog once (up to the budget each).
    fn read_backlog(&mut self) {
        for _ in 0..self.backlog.len() {
            let Some(idx) = self.backlog.pop_front() else {
                break;
            };
            // Duplicates are harmless: a second read finds the socket drained.
            if self.read_conn(idx) {
                self.backlog.push_back(idx);
            }
        }
    }

    /// Reads into the core; true if the socket may hold more.
    fn read_conn(&mut self, idx: u32) -> bool {
        let now = self.now;
        let budget = self.opts.read_budget;
        let room = self.buf.len();
        let mut got = 0;
        let mut failed = None;
        let mut more = false;
        let Some(e) = self
            .slots
            .get_mut(idx as usize)
            .and_then(|s| s.entry.as_deref_mut())
        else {
            return false;
        };
        let buf = &mut self.buf;
        let Some(sock) = e.sock.as_mut() else {
            return false;
        };
        if e.connecting {
            return false;
        }
        // In place while streaming or while a record is partly received (its whole size
        // is reserved already); otherwise through the scratch buffer until a read fills it.
        let mut in_place = IN_PLACE && (e.in_place || e.conn.input_buffered() > 0);
        loop {
            let r = if in_place {
                read_in_place(&mut e.conn, now, sock, room)
            } else {
                read_copied(&mut e.conn, now, sock, buf)
            };
            match r {
                Ok(0) => {
                    failed = Some("connection closed by peer".to_owned());
                    break;
                }
                Ok(n) => {
                    e.bytes_read += n as u64;
                    got += n;
                    in_place |= IN_PLACE && n == buf.len();
                    match e.conn.state() {
                        State::Handshake | State::Open | State::Closing => {}
                        // Waiting for the session decision: resume after it.
                        State::AwaitingSession => {
                            more = true;
                            break;
                        }
                        // Faulted or ended: the socket goes.
                        _ => break,
                    }
                    if got >= budget {
                        more = true;
                        break;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    // Drained. The buffer stays, even empty, so the next burst costs no
                    // allocation; `release_idle_buffers` takes it once the connection
                    // has been quiet for a while.
                    e.in_place = got >= room;
                    break;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    failed = Some(err.to_string());
                    break;
                }
            }
        }
        if more {
            e.in_place = IN_PLACE;
        }
        if got > 0 {
            e.last_input = now;
            if let Some(after) = self.opts.release_idle_buffers_after {
                self.next_release.get_or_insert(now + after);
            }
        }
        if got > 0 || failed.is_some() {
            self.mark(idx);
        }
        if let Some(reason) = failed {
            if let Some(e) = self.at(idx) {
                e.conn.transport_failed(now, &reason);
            }
            self.drop_transport(idx);
            return false;
        }
        more
    }

    /// Gives back the receive buffers of connections that read nothing for
    /// [`Options::release_idle_buffers_after`] and hold no partly received record; looks
    /// again when the next holder would turn idle.
    fn release_idle_buffers(&mut self) {
        let (Some(at), Some(after)) = (self.next_release, self.opts.release_idle_buffers_after)
        else {
            return;
        };
        if at > self.now {
            return;
        }
        let now = self.now;
        let mut next: Option<Instant> = None;
        for e in self.slots.iter_mut().filter_map(|s| s.entry.as_deref_mut()) {
            if e.conn.receive_capacity() == 0 {
                continue;
            }
            let due = e.last_input + after;
            if due <= now && e.conn.input_buffered() == 0 {
                e.conn.release_receive_buffer();
            } else {
                // Still reading, or a record partly received: look again later.
                let again = if due > now { due } else { now + after };
                next = Some(next.map_or(again, |n| n.min(again)));
            }
        }
        self.next_release = next;
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        while let Some(&Reverse((t, idx, serial))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(s) = self.slots.get_mut(idx as usize) else {
                continue;
            };
            if s.serial != serial {
                continue;
            }
            let Some(e) = s.entry.as_deref_mut() else {
                continue;
            };
            if e.timer != Some(t) {
                continue;
            }
            e.timer = None;
            e.conn.handle_timeout(now);
            self.mark(idx);
        }
    }

    /// Processes dirty connections until none is left: events to the handler, writes,
    /// interest, timers.
    fn settle(&mut self, h: &mut Handler<'_>) {
        loop {
            while let Some((id, n)) = self.notices.pop_front() {
                if self.entry(id).is_some() {
                    h(self, id, n);
                }
            }
            let Some(idx) = self.dirty.pop_front() else {
                if self.notices.is_empty() {
                    return;
                }
                continue;
            };
            self.process(idx, h);
        }
    }

    fn process(&mut self, idx: u32, h: &mut Handler<'_>) {
        let Some(id) = self.id_of(idx) else { return };
        loop {
            if !self.drain_events(id, h) {
                return;
            }
            if !self.flush(idx) {
                break;
            }
        }
        let Some(e) = self.entry_mut(id) else { return };
        e.queued = false;
        let deadline = e.conn.poll_timeout();
        if deadline != e.timer {
            e.timer = deadline;
            if let Some(t) = deadline {
                self.timers.push(Reverse((t, id.idx, id.serial)));
            }
        }
    }

    /// Hands the connection's events out; false if the connection is gone.
    fn drain_events(&mut self, id: ConnId, h: &mut Handler<'_>) -> bool {
        loop {
            let Some(e) = self.entry_mut(id) else {
                return false;
            };
            let Some(ev) = e.conn.poll_event() else {
                return true;
            };
            match ev {
                Event::OpenTransport => self.open_transport(id),
                Event::PeerIdentified(info) => {
                    if !self.identify(id, info.addr) {
                        return false;
                    }
                }
                Event::Fault { error } => {
                    self.drop_transport(id.idx);
                    let session = e_has_session(self.entry(id));
                    h(self, id, Notice::Event(Event::Fault { error }));
                    // A server transport that never got a session: nothing to keep.
                    if !session {
                        if let Some(e) = self.entry_mut(id) {
                            e.conn.close();
                        }
                    }
                }
                ev @ Event::Closed { .. } => {
                    self.drop_transport(id.idx);
                    h(self, id, Notice::Event(ev));
                    if self.entry(id).is_some() {
                        self.free_slot(id.idx);
                    }
                    return false;
                }
                ev => h(self, id, Notice::Event(ev)),
            }
        }
    }

    fn open_transport(&mut self, id: ConnId) {
        self.drop_transport(id.idx);
        let now = self.now;
        let Some(target) = self.entry(id).map(|e| e.target) else {
            return;
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        let opened = match target {
            None => Err("no address to connect to".to_owned()),
            Some(t) => TcpStream::connect(t)
                .map_err(|err| format!("connect to {t}: {err}"))
                .and_then(|mut sock| {
                    self.registry
                        .register(&mut sock, Token(id.idx as usize), interest)
                        .map(|()| sock)
                        .map_err(|err| format!("register socket: {err}"))
                }),
        };
        let Some(e) = self.entry_mut(id) else { return };
        match opened {
            Ok(sock) => {
                e.sock = Some(sock);
                e.connecting = true;
                e.registered = Some(interest);
                e.peer = target;
                e.transports += 1;
            }
            Err(reason) => e.conn.transport_failed(now, &reason),
        }
    }

    /// Lossless server: the peer of pending connection `id` identified itself. Returns
    /// false if `id` is gone (its transport went to an existing session).
    fn identify(&mut self, id: ConnId, key: EntityAddr) -> bool {
        let now = self.now;
        let existing = self
            .sessions
            .get(&key)
            .copied()
            .filter(|&s| s != id)
            .filter(|&s| {
                self.entry(s)
                    .is_some_and(|e| e.conn.state() != State::Closed)
            });
        let Some(existing) = existing else {
            let e = self.entry_mut(id).expect("caller checked");
            e.conn.accept_new_session(now);
            e.session_key = Some(key);
            self.sessions.insert(key, id);
            return true;
        };
        let Some(mut pending) = self.free_slot(id.idx) else {
            return false;
        };
        self.drop_transport(existing.idx);
        let mut sock = pending.sock.take();
        let mut registered = pending.registered.take();
        if let Some(s) = sock.as_mut() {
            let interest = registered.unwrap_or(Interest::READABLE);
            match self
                .registry
                .reregister(s, Token(existing.idx as usize), interest)
            {
                Ok(()) => registered = Some(interest),
                Err(_) => {
                    sock = None;
                    registered = None;
                }
            }
        }
        let ex = self.entry_mut(existing).expect("checked above");
        ex.conn.adopt(now, pending.conn);
        if sock.is_none() {
            ex.conn
                .transport_failed(now, "could not move the transport");
        }
        ex.sock = sock;
        ex.registered = registered;
        ex.connecting = false;
        ex.peer = pending.peer;
        ex.listener = pending.listener.or(ex.listener);
        ex.transports += 1;
        ex.bytes_read += pending.bytes_read;
        ex.bytes_written += pending.bytes_written;
        self.notices
            .push_back((existing, Notice::Resumed { from: id }));
        self.backlog.push_back(existing.idx);
        self.mark(existing.idx);
        false
    }

    /// Writes until the core has nothing left or the socket would block; updates the
    /// interest. True if this may have produced events (bytes went out and the core ran
    /// dry, or the transport failed).
    fn flush(&mut self, idx: u32) -> bool {
        let now = self.now;
        let Some(e) = self
            .slots
            .get_mut(idx as usize)
            .and_then(|s| s.entry.as_deref_mut())
        else {
            return false;
        };
        if e.connecting {
            return false;
        }
        let Some(sock) = e.sock.as_mut() else {
            return false;
        };
        let mut wrote = 0u64;
        let mut blocked = false;
        let mut failed = false;
        while e.conn.wants_write() {
            match e
                .conn
                .write_with(now, usize::MAX, |s| sock.write_vectored(s))
            {
                WriteStep::Wrote(n) => wrote += n as u64,
                WriteStep::Blocked => {
                    blocked = true;
                    break;
                }
                // The core already ended the transport's session state.
                WriteStep::Failed(_) => {
                    failed = true;
                    break;
                }
                _ => break,
            }
        }
        e.bytes_written += wrote;
        if failed {
            self.drop_transport(idx);
            return true;
        }
        let want = if blocked {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if e.registered != Some(want) {
            match self.registry.reregister(sock, Token(idx as usize), want) {
                Ok(()) => e.registered = Some(want),
                Err(err) => {
                    e.conn
                        .transport_failed(now, &format!("reregister socket: {err}"));
                    self.drop_transport(idx);
                    return true;
                }
            }
        }
        wrote > 0 && !blocked
    }
}

/// A non-blocking listener on `addr` with the given backlog (`SO_REUSEADDR` on Unix, as
/// `mio` and `std` set it).
fn bind_listener(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if cfg!(unix) {
        sock.set_reuse_address(true)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(backlog.max(1))?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// Whether reads can land in a connection's receive buffer directly (`shim::in_place`).
const IN_PLACE: bool = cfg!(unix);

/// One read from `sock` straight into `conn`'s receive buffer, parsed where it landed.
#[cfg(unix)]
fn read_in_place(
    conn: &mut Connection,
    now: Instant,
    sock: &TcpStream,
    room: usize,
) -> io::Result<usize> {
    conn.read_with(now, room, |buf| super::in_place::recv_into(sock, buf))
}

#[cfg(not(unix))]
fn read_in_place(_: &mut Connection, _: Instant, _: &TcpStream, _: usize) -> io::Result<usize> {
    unreachable!("IN_PLACE is false here")
}

/// One read from `sock` into the shared `scratch` buffer, copied into `conn`.
fn read_copied(
    conn: &mut Connection,
    now: Instant,
    mut sock: &TcpStream,
    scratch: &mut [u8],
) -> io::Result<usize> {
    let n = sock.read(scratch)?;
    conn.handle_input(now, &scratch[..n]);
    Ok(n)
}

/// Whether a connection holds a session worth keeping without a transport: every client
/// (it reconnects) and every server connection registered as a session.
fn e_has_session(e: Option<&Entry>) -> bool {
    e.is_some_and(|e| e.conn.role() == Role::Client || e.session_key.is_some())
}
