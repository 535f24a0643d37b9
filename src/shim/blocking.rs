//! A blocking driver for simple programs: one [`Connection`] on a [`std::net::TcpStream`],
//! std only.
//!
//! [`BlockingConnection::connect`] opens the TCP connection and runs the handshake until
//! the session is open, or fails with a typed [`ConnectError`] (refused, closed, timeout,
//! authentication, features, protocol). Then [`send`](BlockingConnection::send) and
//! [`revoke`](BlockingConnection::revoke) queue and withdraw messages, and
//! [`recv`](BlockingConnection::recv) drives the socket — writes, reads, timers,
//! reconnects — until the next [`Event`] or the timeout.
//!
//! ```no_run
//! use std::time::Duration;
//! use bytes::Bytes;
//! use ceph_msgr::shim::blocking::BlockingConnection;
//! use ceph_msgr::{Config, EntityName, EntityType, Event, Message};
//!
//! let cfg = Config::client(EntityName::client(u64::MAX));
//! let addr = "127.0.0.1:6789".parse().unwrap();
//! let mut c = BlockingConnection::connect(cfg, addr, EntityType::Mon, Duration::from_secs(5))?;
//! c.send(Message::new(2).with_front(Bytes::from_static(b"")))?;
//! println!("keepalive rtt {:?}", c.keepalive(Duration::from_secs(5))?);
//! while let Some(ev) = c.recv(Duration::from_secs(1)) {
//!     if let Event::Message(m) = ev {
//!         println!("got type {}", m.header.ty);
//!     }
//! }
//! c.close(Duration::from_secs(1))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it moves bytes
//!
//! std has no readiness API, so each transport gets a small reader thread that does
//! blocking reads into a channel; the caller's thread does everything else: it feeds
//! received chunks to the core, writes with `write_vectored` (a socket write timeout
//! bounds each call by the caller's deadline), and otherwise waits on the channel until the
//! deadline or the core's next timer. Reads therefore never wait for writes, so two peers
//! writing large messages at each other cannot deadlock. What the peer sends is buffered
//! in the channel until the caller next calls into this connection.
//!
//! Lossless reconnects are automatic: when the core asks for a transport again
//! ([`Event::OpenTransport`], after a fault and its backoff), the shim connects anew and
//! the core resumes the session. [`Event::Fault`] is still reported so the caller knows.
#![forbid(unsafe_code)]

use crate::conn::WriteStep;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::conn::{self, Config, Connection, Event, State};
use crate::send::{MsgId, QueueError, Revoked};
use crate::wire::EntityType;
use crate::Message;

/// Bytes one read of the reader thread asks for.
const READ_CHUNK: usize = 64 * 1024;
/// Shortest timeout handed to the socket (zero means "forever" to std).
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Why [`BlockingConnection::connect`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// Nothing listens at the address (TCP connection refused).
    Refused(io::Error),
    /// The peer closed or reset the connection during the handshake.
    Closed(String),
    /// The TCP connection or the handshake did not finish in time.
    Timeout,
    /// The peer rejected our authorizer (or its reply did not verify).
    AuthFailed,
    /// The peer requires features we lack, or lacks features we require.
    MissingFeatures {
        /// The missing bits.
        missing: u64,
    },
    /// The peer broke the protocol (bad banner, a msgr2-only peer, version mismatch, …).
    Protocol(conn::Error),
    /// Any other socket error (unreachable network, …).
    Io(io::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(e) => write!(f, "connection refused ({e})"),
            Self::Closed(why) => {
                write!(f, "peer closed the connection during the handshake ({why})")
            }
            Self::Timeout => f.write_str("timed out"),
            Self::AuthFailed => f.write_str("authentication failed"),
            Self::MissingFeatures { missing } => {
                write!(f, "feature mismatch: missing {missing:#x} (")?;
                let names: Vec<&str> = crate::wire::handshake::features::names(*missing).collect();
                write!(f, "{})", names.join(" "))
            }
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Why a wait ([`keepalive`](BlockingConnection::keepalive),
/// [`wait_for`](BlockingConnection::wait_for), [`flush`](BlockingConnection::flush),
/// [`close`](BlockingConnection::close)) ended without its result.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitError {
    /// The timeout passed first.
    Timeout,
    /// The session ended ([`Event::Closed`]; the event stays queued for
    /// [`recv`](BlockingConnection::recv)). The error is the one the event carried.
    Closed(Option<conn::Error>),
    /// The session is not open, so there is nothing to wait for (e.g. a keepalive while
    /// reconnecting).
    NotOpen,
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out"),
            Self::Closed(Some(e)) => write!(f, "connection closed: {e}"),
            Self::Closed(None) => f.write_str("connection closed"),
            Self::NotOpen => f.write_str("the session is not open"),
        }
    }
}

impl std::error::Error for WaitError {}

/// Counters of the shim (the core keeps its own, see [`Connection::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShimStats {
    /// TCP connections opened.
    pub transports: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
}

/// How the last transport ended, as the shim saw it (to type connect errors).
#[derive(Debug)]
enum Failure {
    Refused(io::Error),
    Eof,
    TimedOut,
    Io(io::Error),
}

impl Failure {
    fn from_io(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Self::Refused(e),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Self::TimedOut,
            io::ErrorKind::UnexpectedEof => Self::Eof,
            _ => Self::Io(e),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Refused(e) | Self::Io(e) => e.to_string(),
            Self::Eof => "peer closed the connection".to_owned(),
            Self::TimedOut => "timed out".to_owned(),
        }
    }
}

/// What the reader thread of transport `gen` reports.
enum Chunk {
    Data(u64, Vec<u8>),
    End(u64, Option<io::Error>),
}

struct Transport {
    stream: TcpStream,
    gen: u64,
    reader: Option<JoinHandle<()>>,
    /// The write timeout currently set on the socket.
    write_timeout: Option<Duration>,
}

impl Transport {
    fn shutdown(mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

/// One msgr v1 session driven over blocking std sockets (see the [module docs](self)).
pub struct BlockingConnection {
    conn: Connection,
    peer: SocketAddr,
    connect_timeout: Duration,
    transport: Option<Transport>,
    gen: u64,
    chunk_tx: Sender<Chunk>,
    chunk_rx: Receiver<Chunk>,
    pending: VecDeque<Event>,
    last_failure: Option<Failure>,
    connected_at: Option<Instant>,
    tcp_connect_time: Option<Duration>,
    handshake_time: Option<Duration>,
    stats: ShimStats,
}

impl fmt::Debug for BlockingConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingConnection")
            .field("peer", &self.peer)
            .field("conn", &self.conn)
            .field("transport", &self.transport.as_ref().map(|t| t.gen))
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl BlockingConnection {
    /// Connects to `addr` (an entity of type `peer_type`) and runs the handshake until the
    /// session is open. `timeout` bounds the whole of it, and later bounds each TCP
    /// connect of a reconnect.
    pub fn connect(
        cfg: Config,
        addr: SocketAddr,
        peer_type: EntityType,
        timeout: Duration,
    ) -> Result<Self, ConnectError> {
        Self::connect_with(Connection::client(cfg, addr, peer_type), addr, timeout)
    }

    /// Like [`connect`](Self::connect) for a client [`Connection`] the caller built (for
    /// instance with [`Connection::with_authorizer`]). `conn` must be a fresh client whose
    /// first event is [`Event::OpenTransport`]; `addr` is where to connect.
    pub fn connect_with(
        conn: Connection,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<Self, ConnectError> {
        let (chunk_tx, chunk_rx) = mpsc::channel();
        let mut c = Self {
            conn,
            peer: addr,
            connect_timeout: timeout.max(MIN_TIMEOUT),
            transport: None,
            gen: 0,
            chunk_tx,
            chunk_rx,
            pending: VecDeque::new(),
            last_failure: None,
            connected_at: None,
            tcp_connect_time: None,
            handshake_time: None,
            stats: ShimStats::default(),
        };
        let deadline = Instant::now() + timeout;
        loop {
            match c.next_event(deadline) {
                None => return Err(ConnectError::Timeout),
                Some(Event::Opened { .. }) => return Ok(c),
                Some(
                    Event::Fault { error }
                    | Event::Closed {
                        error: Some(error), ..
                    },
                ) => return Err(c.connect_error(error)),
                Some(Event::Closed { error: None, .. }) => {
                    return Err(ConnectError::Closed("closed locally".to_owned()))
                }
                Some(other) => c.pending.push_back(other),
            }
        }
    }

    fn connect_error(&mut self, error: conn::Error) -> ConnectError {
        match error {
            conn::Error::Transport(reason) => match self.last_failure.take() {
                Some(Failure::Refused(e)) => ConnectError::Refused(e),
                Some(Failure::TimedOut) => ConnectError::Timeout,
                Some(Failure::Io(e)) => match e.kind() {
                    io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe => ConnectError::Closed(e.to_string()),
                    _ => ConnectError::Io(e),
                },
                Some(Failure::Eof) | None => ConnectError::Closed(reason),
            },
            conn::Error::PeerClosed => ConnectError::Closed("peer sent CLOSE".to_owned()),
            conn::Error::AuthFailed => ConnectError::AuthFailed,
            conn::Error::Timeout(_) => ConnectError::Timeout,
            conn::Error::MissingFeatures { missing } => ConnectError::MissingFeatures { missing },
            other => ConnectError::Protocol(other),
        }
    }

    // ----- the caller's API -----------------------------------------------------------------

    /// Queues a message; it goes out as [`recv`](Self::recv) (or another driving call)
    /// writes.
    pub fn send(&mut self, msg: Message) -> Result<MsgId, QueueError> {
        self.conn.send(msg)
    }

    /// Revokes a message; the stream stays framed whatever was written (see [`Revoked`]).
    pub fn revoke(&mut self, id: MsgId) -> Revoked {
        self.conn.revoke(id)
    }

    /// Drives the connection (writes, reads, timers, reconnects) until the next event or
    /// until `timeout` passes (`None`). [`Event::OpenTransport`] never comes out: the shim
    /// handles it. After [`Event::Closed`], returns `None` at once.
    pub fn recv(&mut self, timeout: Duration) -> Option<Event> {
        self.next_event(Instant::now() + timeout)
    }

    /// Sends a keepalive and waits for its acknowledgement; returns the round-trip time.
    /// Without KEEPALIVE2 negotiated the peer gets a plain KEEPALIVE, which has no
    /// acknowledgement: this returns `Ok(None)` at once. Events that arrive meanwhile stay
    /// queued for [`recv`](Self::recv).
    pub fn keepalive(&mut self, timeout: Duration) -> Result<Option<Duration>, WaitError> {
        if self.conn.state() != State::Open {
            return Err(WaitError::NotOpen);
        }
        self.conn.send_keepalive(Instant::now());
        if self.conn.features() & crate::wire::handshake::features::MSGR_KEEPALIVE2 == 0 {
            return Ok(None);
        }
        self.wait_for(timeout, |ev| match ev {
            Event::KeepaliveAck { rtt } => Some(*rtt),
            _ => None,
        })
    }

    /// Drives the connection until `pick` accepts an event (returning `Some`), which is
    /// consumed; every other event stays queued, in order, for [`recv`](Self::recv).
    /// Fails on timeout or when the session ends ([`Event::Closed`], which stays queued).
    pub fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> Result<T, WaitError> {
        let deadline = Instant::now() + timeout;
        let mut skipped = VecDeque::new();
        let result = loop {
            match self.next_event(deadline) {
                None => break Err(WaitError::Timeout),
                Some(ev) => {
                    if let Some(t) = pick(&ev) {
                        break Ok(t);
                    }
                    let closed = match &ev {
                        Event::Closed { error, .. } => Some(error.clone()),
                        _ => None,
                    };
                    skipped.push_back(ev);
                    if let Some(error) = closed {
                        break Err(WaitError::Closed(error));
                    }
                }
            }
        };
        while let Some(ev) = skipped.pop_back() {
            self.pending.push_front(ev);
        }
        result
    }

    /// Drives the connection until every queued byte is written (events that arrive are
    /// kept for [`recv`](Self::recv)).
    pub fn flush(&mut self, timeout: Duration) -> Result<(), WaitError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump_core_events();
            if self.conn.state() == State::Closed {
                return Err(WaitError::Closed(None));
            }
            if self.conn.state() == State::Open && !self.conn.wants_write() {
                return Ok(());
            }
            if !self.turn(deadline, &mut false) {
                return Err(WaitError::Timeout);
            }
        }
    }

    /// Writes at most `limit` bytes of what is queued (blocking up to `timeout`) and
    /// returns how many went out. For tools and tests that need to stop in the middle of a
    /// message, e.g. to revoke it there.
    pub fn write_some(&mut self, limit: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut done = 0;
        while done < limit && self.conn.wants_write() && self.transport.is_some() {
            match self.write_once(deadline, limit - done) {
                Some(0) | None => break,
                Some(n) => done += n,
            }
        }
        done
    }

    /// Ends the session: sends CLOSE, waits up to `timeout` for it to be written, and
    /// shuts the socket. Returns the messages that were still queued or unacknowledged.
    pub fn close(&mut self, timeout: Duration) -> Result<Vec<(MsgId, Message)>, WaitError> {
        self.conn.close();
        let out = self.wait_for(timeout, |ev| match ev {
            Event::Closed { .. } => Some(()),
            _ => None,
        });
        // `wait_for` keeps Closed queued when it ends the wait: take it back out.
        let mut unsent = Vec::new();
        self.pending.retain_mut(|ev| match ev {
            Event::Closed { unsent: u, .. } => {
                unsent.append(u);
                false
            }
            _ => true,
        });
        self.close_transport();
        match out {
            Ok(()) | Err(WaitError::Closed(_)) => Ok(unsent),
            Err(e) => Err(e),
        }
    }

    /// Breaks the current transport as if the network failed: the socket is shut down and
    /// the core told. A lossless session reconnects. For tests and fault drills. Returns
    /// whether there was a transport to break (there is none while a faulted session
    /// waits out its backoff).
    pub fn inject_transport_failure(&mut self) -> bool {
        if self.transport.is_none() {
            return false;
        }
        self.fail_transport(Failure::Io(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "transport failure injected by the caller",
        )));
        true
    }

    /// The session state machine (seqs, queue, stats, negotiated features).
    #[must_use]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Mutable access to the session, e.g. for [`Connection::set_name`]. Do not take its
    /// events or drive its transport through it; this shim does that.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The address this connection connects to.
    #[must_use]
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// How long the last TCP connect took.
    #[must_use]
    pub fn tcp_connect_time(&self) -> Option<Duration> {
        self.tcp_connect_time
    }

    /// How long the last handshake took, from the TCP connection being up to the session
    /// being open (banner and address exchange, connect and its reply: two round trips).
    #[must_use]
    pub fn handshake_time(&self) -> Option<Duration> {
        self.handshake_time
    }

    /// The shim's counters.
    #[must_use]
    pub fn stats(&self) -> ShimStats {
        self.stats
    }

    // ----- the driving loop -------------------------------------------------------------------

    /// The next event, driving I/O until one comes or the deadline passes.
    fn next_event(&mut self, deadline: Instant) -> Option<Event> {
        // Even a zero timeout gets one write attempt (one that the socket can take without
        // waiting), so `recv(Duration::ZERO)` in a loop still moves queued bytes.
        let mut late_write = true;
        loop {
            self.pump_core_events();
            if let Some(ev) = self.pending.pop_front() {
                return Some(ev);
            }
            if self.conn.state() == State::Closed {
                return None;
            }
            if !self.turn(deadline, &mut late_write) {
                return None;
            }
        }
    }

    /// Moves the core's events into `pending`, acting on the ones that concern the
    /// transport.
    fn pump_core_events(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            match ev {
                Event::OpenTransport => self.open_transport(),
                Event::Opened { .. } => {
                    self.handshake_time = self.connected_at.map(|t| t.elapsed());
                    self.pending.push_back(ev);
                }
                Event::Fault { .. } | Event::Closed { .. } => {
                    self.close_transport();
                    self.pending.push_back(ev);
                }
                other => self.pending.push_back(other),
            }
        }
    }

    /// One round of I/O: timers, received bytes, a write, or a wait for the peer. Returns
    /// false once the deadline has passed with nothing to do. `late_write`: one write may
    /// still be tried after the deadline (it is cleared when used).
    fn turn(&mut self, deadline: Instant, late_write: &mut bool) -> bool {
        let now = Instant::now();
        let timer = self.conn.poll_timeout();
        if timer.is_some_and(|t| t <= now) {
            self.conn.handle_timeout(now);
            return true;
        }
        // Bytes already received go first: they may carry acks or end the transport.
        let mut got = false;
        while let Ok(chunk) = self.chunk_rx.try_recv() {
            self.on_chunk(chunk);
            got = true;
        }
        if got {
            return true;
        }
        if now >= deadline {
            if *late_write && self.transport.is_some() && self.conn.wants_write() {
                *late_write = false;
                let _ = self.write_once(now, usize::MAX);
                return true;
            }
            return false;
        }
        let wake = timer.map_or(deadline, |t| t.min(deadline));
        if self.transport.is_some() && self.conn.wants_write() {
            // A blocked write ends at `wake` at the latest; then the loop comes round.
            let _ = self.write_once(wake, usize::MAX);
            return true;
        }
        match self
            .chunk_rx
            .recv_timeout(wake.saturating_duration_since(now))
        {
            Ok(chunk) => self.on_chunk(chunk),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        true
    }

    /// One `write_vectored` of at most `limit` bytes, blocking until `deadline` at most.
    /// `Some(n)`: n bytes written (0 on timeout); `None`: the transport failed.
    fn write_once(&mut self, deadline: Instant, limit: usize) -> Option<usize> {
        let t = self.transport.as_mut()?;
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(MIN_TIMEOUT);
        if t.write_timeout != Some(wait) {
            if let Err(e) = t.stream.set_write_timeout(Some(wait)) {
                self.fail_transport(Failure::from_io(e));
                return None;
            }
            t.write_timeout = Some(wait);
        }
        let stream = &mut t.stream;
        // The socket's write timeout is our deadline: a timed-out write wrote nothing.
        let step = self.conn.write_with(Instant::now(), limit, |s| {
            stream.write_vectored(s).map_err(|e| match e.kind() {
                io::ErrorKind::TimedOut => io::ErrorKind::WouldBlock.into(),
                _ => e,
            })
        });
        match step {
            WriteStep::Wrote(n) => {
                self.stats.bytes_out += n as u64;
                Some(n)
            }
            WriteStep::Blocked | WriteStep::Idle => Some(0),
            WriteStep::Failed(e) => {
                // The core already took the transport down; drop the socket.
                self.close_transport();
                self.last_failure = Some(Failure::from_io(e));
                None
            }
        }
    }

    fn on_chunk(&mut self, chunk: Chunk) {
        let current = self.transport.as_ref().map(|t| t.gen);
        match chunk {
            Chunk::Data(gen, data) if Some(gen) == current => {
                self.stats.bytes_in += data.len() as u64;
                self.conn.handle_input(Instant::now(), &data);
            }
            Chunk::End(gen, err) if Some(gen) == current => {
                let f = err.map_or(Failure::Eof, Failure::from_io);
                self.fail_transport(f);
            }
            _ => {} // left over from an earlier transport
        }
    }

    /// The core asked for a transport: connect (bounded by the connect timeout).
    fn open_transport(&mut self) {
        self.close_transport();
        let started = Instant::now();
        let stream = match TcpStream::connect_timeout(&self.peer, self.connect_timeout) {
            Ok(s) => s,
            Err(e) => {
                self.last_failure = Some(Failure::from_io(e));
                let why = self.last_failure.as_ref().map(Failure::describe);
                self.conn
                    .transport_failed(Instant::now(), why.as_deref().unwrap_or("connect failed"));
                return;
            }
        };
        self.tcp_connect_time = Some(started.elapsed());
        let _ = stream.set_nodelay(true);
        let reader = match stream.try_clone() {
            Ok(r) => r,
            Err(e) => {
                let _ = stream.shutdown(Shutdown::Both);
                self.last_failure = Some(Failure::from_io(e));
                self.conn
                    .transport_failed(Instant::now(), "could not clone the socket");
                return;
            }
        };
        self.gen += 1;
        let gen = self.gen;
        let tx = self.chunk_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("ceph-msgr-rd-{gen}"))
            .spawn(move || read_loop(reader, gen, &tx));
        let handle = match handle {
            Ok(h) => h,
            Err(e) => {
                let _ = stream.shutdown(Shutdown::Both);
                self.last_failure = Some(Failure::Io(e));
                self.conn
                    .transport_failed(Instant::now(), "could not start the reader thread");
                return;
            }
        };
        self.stats.transports += 1;
        self.last_failure = None;
        self.transport = Some(Transport {
            stream,
            gen,
            reader: Some(handle),
            write_timeout: None,
        });
        let now = Instant::now();
        self.connected_at = Some(now);
        self.conn.transport_connected(now);
    }

    /// The transport failed: close it and tell the core.
    fn fail_transport(&mut self, why: Failure) {
        self.close_transport();
        let reason = why.describe();
        self.last_failure = Some(why);
        self.conn.transport_failed(Instant::now(), &reason);
    }

    fn close_transport(&mut self) {
        if let Some(t) = self.transport.take() {
            t.shutdown();
        }
    }
}

impl Drop for BlockingConnection {
    fn drop(&mut self) {
        self.close_transport();
    }
}

/// The reader thread: blocking reads into the channel until EOF or an error.
fn read_loop(mut stream: TcpStream, gen: u64, tx: &Sender<Chunk>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Chunk::End(gen, None));
                return;
            }
            Ok(n) => {
                if tx.send(Chunk::Data(gen, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Chunk::End(gen, Some(e)));
                return;
            }
        }
    }
}
