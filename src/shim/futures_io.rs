//! A [`Connection`] on any [`futures_io`] transport: smol, async-std, or anything else that
//! implements [`AsyncRead`] + [`AsyncWrite`] (TCP streams, Unix sockets, TLS wrappers).
//!
//! [`AsyncConnection`] owns the session and the current transport. Its methods only move
//! bytes, time and commands between them; every protocol decision stays in the core.
//!
//! * [`send`](AsyncConnection::send), [`revoke`](AsyncConnection::revoke) and
//!   [`send_keepalive`](AsyncConnection::send_keepalive) act at once and never wait.
//! * [`next_event`](AsyncConnection::next_event) drives reads, writes and timers until the
//!   core has an [`Event`] for you. Received messages, acks, faults and reconnect requests
//!   all arrive through it.
//! * [`flush`](AsyncConnection::flush) waits until everything queued is on the socket;
//!   [`write_some`](AsyncConnection::write_some) waits for one write, for callers who want
//!   to interleave writes with revokes.
//! * [`close`](AsyncConnection::close) sends CLOSE, flushes it and shuts the transport.
//!
//! Every `async fn` here is **cancel-safe**: all state lives in the `AsyncConnection`,
//! bytes read are handed to the core at once and bytes written are reported to it at once,
//! so dropping a future (for example the losing branch of a race) loses nothing.
//!
//! # Time
//!
//! `futures-io` has no timers, so time is yours. Either hand the connection a sleep
//! function once with [`with_timer`](AsyncConnection::with_timer) (`smol::Timer::at`,
//! `async_io::Timer::at`, …) and it fires keepalives and reconnect delays by itself while
//! you await its methods — or leave it out and drive
//! [`poll_timeout`](AsyncConnection::poll_timeout) /
//! [`handle_timeout`](AsyncConnection::handle_timeout) yourself, for example by racing
//! `next_event` against a timer (see the second example).
//!
//! # Transports
//!
//! A client is built on a socket you already connected. When it faults, a lossless client
//! waits out its backoff and then reports [`Event::OpenTransport`]: connect a new socket
//! and hand it over with [`reconnect`](AsyncConnection::reconnect). The shim drops (closes)
//! a transport as soon as the core is done with it: on [`Event::Fault`], on
//! [`Event::Closed`], and when an I/O call fails or the peer closes the stream.
//!
//! A server is built per accepted socket. With [`Config::sessions`] set it reports
//! [`Event::PeerIdentified`]; then either
//! [`accept_new_session`](AsyncConnection::accept_new_session) or hand it to the session
//! you already hold for that peer with [`adopt`](AsyncConnection::adopt).
//!
//! # Example
//!
//! A lossless client with keepalives driven by `smol::Timer`, talking to a server on the
//! same shim:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use ceph_msgr::shim::futures_io::AsyncConnection;
//! use ceph_msgr::wire::handshake::EntityAddr;
//! use ceph_msgr::{Config, EntityName, EntityType, Event, Message};
//! use smol::net::{TcpListener, TcpStream};
//!
//! # fn main() -> std::io::Result<()> {
//! smol::block_on(async {
//!     let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
//!     let addr = listener.local_addr()?;
//!
//!     // A server that takes one connection and collects what it receives.
//!     let server = smol::spawn(async move {
//!         let (sock, peer) = listener.accept().await?;
//!         let cfg = Config::server(EntityName { ty: EntityType::Osd, num: 0 });
//!         let mut conn = AsyncConnection::server(cfg, EntityAddr::new(Some(addr), 1), peer, sock);
//!         let mut got = Vec::new();
//!         loop {
//!             match conn.next_event().await? {
//!                 Event::Message(m) => got.push(m.front),
//!                 Event::Closed { .. } => return Ok::<_, std::io::Error>(got),
//!                 _ => {}
//!             }
//!         }
//!     });
//!
//!     // The client: keepalives every 10 ms, fired by smol's timer.
//!     let mut cfg = Config::client(EntityName::client(7));
//!     cfg.keepalive_interval = Some(Duration::from_millis(10));
//!     let sock = TcpStream::connect(addr).await?;
//!     let mut conn = AsyncConnection::client(cfg, addr, EntityType::Osd, sock)
//!         .with_timer(smol::Timer::at);
//!     for i in 0..3u8 {
//!         conn.send(Message::new(2).with_front(Bytes::from(vec![i; 10]))).unwrap();
//!     }
//!     // Wait for the acknowledgement of all three and one keepalive round trip.
//!     let (mut acked, mut rtt) = (0, None);
//!     while acked < 3 || rtt.is_none() {
//!         match conn.next_event().await? {
//!             Event::Acked(seq) => acked = seq,
//!             Event::KeepaliveAck { rtt: r } => rtt = r,
//!             Event::OpenTransport => conn.reconnect(TcpStream::connect(addr).await?)?,
//!             _ => {}
//!         }
//!     }
//!     conn.close().await?;
//!     let got = server.await?;
//!     assert_eq!(got.len(), 3);
//!     assert_eq!(got[2], Bytes::from(vec![2u8; 10]));
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Without [`with_timer`](AsyncConnection::with_timer), race `next_event` against your own
//! timer and call `handle_timeout` when it wins (cancelling `next_event` is safe):
//!
//! ```no_run
//! # use std::time::Instant;
//! # use ceph_msgr::shim::futures_io::AsyncConnection;
//! # use ceph_msgr::Event;
//! # async fn drive(conn: &mut AsyncConnection<smol::net::TcpStream>) -> std::io::Result<Event> {
//! loop {
//!     let Some(deadline) = conn.poll_timeout() else {
//!         return conn.next_event().await;
//!     };
//!     let ev = smol::future::or(async { Some(conn.next_event().await) }, async {
//!         smol::Timer::at(deadline).await;
//!         None
//!     })
//!     .await;
//!     match ev {
//!         Some(ev) => return ev,
//!         None => conn.handle_timeout(Instant::now()),
//!     }
//! }
//! # }
//! ```
#![forbid(unsafe_code)]

use crate::conn::WriteStep;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

use crate::conn::{Config, Connection, Event, State};
use crate::send::{MsgId, MsgStatus, QueueError, Revoked};
use crate::wire::handshake::EntityAddr;
use crate::wire::EntityType;
use crate::Message;

/// Bytes read from the transport per call.
const READ_BUF: usize = 64 * 1024;
/// I/O operations done in one poll before yielding to the executor (fairness).
const POLL_BUDGET: usize = 64;

type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;
type MakeSleep = Box<dyn FnMut(Instant) -> Sleep + Send>;

/// The caller's timer source and the timer currently armed.
struct Timer {
    make: MakeSleep,
    armed: Option<(Instant, Sleep)>,
}

/// A [`Connection`] driven over a `futures-io` transport `T` (see the
/// [module docs](self)).
pub struct AsyncConnection<T> {
    conn: Connection,
    io: Option<T>,
    rbuf: Box<[u8]>,
    /// Bytes were written since the transport was last flushed.
    unflushed: bool,
    /// `close()` is shutting the transport down itself.
    closing: bool,
    timer: Option<Timer>,
}

impl<T> fmt::Debug for AsyncConnection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncConnection")
            .field("conn", &self.conn)
            .field("transport", &self.io.is_some())
            .field("timer", &self.timer.is_some())
            .finish_non_exhaustive()
    }
}

fn not_connected(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, what.to_owned())
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncConnection<T> {
    /// Wraps a connection that has not started yet, and its first transport.
    ///
    /// * A client ([`Connection::client`]) gets `io` as the transport its first
    ///   [`Event::OpenTransport`] asks for: that event is consumed here and the handshake
    ///   starts at once.
    /// * A server ([`Connection::server`]) gets the socket it was created for.
    ///
    /// Use this instead of [`client`](Self::client) / [`server`](Self::server) to set
    /// something on the connection first, such as an authorizer.
    #[must_use]
    pub fn new(mut conn: Connection, io: T) -> Self {
        if conn.state() == State::Connecting {
            if let Some(ev) = conn.poll_event() {
                debug_assert!(matches!(ev, Event::OpenTransport), "{ev:?}");
            }
            conn.transport_connected(Instant::now());
        }
        Self {
            conn,
            io: Some(io),
            rbuf: vec![0; READ_BUF].into_boxed_slice(),
            unflushed: false,
            closing: false,
            timer: None,
        }
    }

    /// A client session to `peer` (an entity of type `peer_type`) on `io`, a transport
    /// already connected to it. The handshake starts at once.
    #[must_use]
    pub fn client(cfg: Config, peer: SocketAddr, peer_type: EntityType, io: T) -> Self {
        Self::new(Connection::client(cfg, peer, peer_type), io)
    }

    /// A server connection on `io`, a transport just accepted from `peer_sock`; `my_addr`
    /// is the address we announce.
    #[must_use]
    pub fn server(cfg: Config, my_addr: EntityAddr, peer_sock: SocketAddr, io: T) -> Self {
        let mut conn = Connection::server(cfg, my_addr, peer_sock);
        // Starts the handshake deadline (Config::handshake_timeout).
        conn.handle_timeout(std::time::Instant::now());
        Self::new(conn, io)
    }

    /// Fires the connection's timers (keepalives, reconnect delays) while its `async`
    /// methods are awaited: `sleep(deadline)` must return a future that completes at
    /// `deadline`, such as `smol::Timer::at` or `async_io::Timer::at` (with async-std:
    /// `|at| async_std::task::sleep(at.saturating_duration_since(Instant::now()))`).
    #[must_use]
    pub fn with_timer<F, S>(mut self, mut sleep: F) -> Self
    where
        F: FnMut(Instant) -> S + Send + 'static,
        S: Future + Send + 'static,
    {
        let make: MakeSleep = Box::new(move |at| {
            let s = sleep(at);
            Box::pin(async move {
                s.await;
            })
        });
        self.timer = Some(Timer { make, armed: None });
        self
    }

    // ----- commands (never wait) ---------------------------------------------------------

    /// Queues a message; it goes out, in queue order, while the connection is driven
    /// ([`next_event`](Self::next_event), [`flush`](Self::flush), …).
    pub fn send(&mut self, msg: Message) -> Result<MsgId, QueueError> {
        self.conn.send(msg)
    }

    /// Revokes a message; the stream stays framed whatever its state (see [`Revoked`]).
    pub fn revoke(&mut self, id: MsgId) -> Revoked {
        self.conn.revoke(id)
    }

    /// Where a message stands (queued, partly written, written, gone).
    #[must_use]
    pub fn status(&self, id: MsgId) -> MsgStatus {
        self.conn.messenger().status(id)
    }

    /// Queues a keepalive now (answered by [`Event::KeepaliveAck`] when the peer supports
    /// KEEPALIVE2).
    pub fn send_keepalive(&mut self, now: Instant) {
        self.conn.send_keepalive(now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to be called next. Only needed
    /// without [`with_timer`](Self::with_timer).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    /// Time passed: sends interval keepalives, ends a reconnect delay (then
    /// [`next_event`](Self::next_event) reports [`Event::OpenTransport`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.conn.handle_timeout(now);
        self.sync_transport();
    }

    /// Client: the new transport asked for by [`Event::OpenTransport`], connected to the
    /// peer. The handshake (with the SEQ exchange of a lossless reconnect) starts at once.
    ///
    /// # Errors
    ///
    /// The connection is not waiting for a transport; `io` is dropped.
    pub fn reconnect(&mut self, io: T) -> io::Result<()> {
        if self.conn.state() != State::Connecting {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not waiting for a transport ({:?})", self.conn.state()),
            ));
        }
        self.conn.transport_connected(Instant::now());
        self.io = Some(io);
        self.unflushed = false;
        Ok(())
    }

    /// Drops the current transport and tells the core it failed (your own read timeout,
    /// for example). A lossless client then reconnects after its delay.
    pub fn fail_transport(&mut self, reason: &str) {
        self.conn.transport_failed(Instant::now(), reason);
        self.io = None;
        self.sync_transport();
    }

    /// Server: after [`Event::PeerIdentified`], continue as a brand-new session.
    pub fn accept_new_session(&mut self) {
        self.conn.accept_new_session(Instant::now());
        self.sync_transport();
    }

    /// Server: `other` (a fresh connection that reported [`Event::PeerIdentified`]) is the
    /// peer of this existing session coming back. This session takes `other`'s transport
    /// over and answers the peer's connect against its own state (resuming seqs with the
    /// SEQ exchange); its previous transport, if it still had one, is dropped.
    ///
    /// # Errors
    ///
    /// `other` is not waiting for a session decision; it is dropped and this session is
    /// unchanged.
    pub fn adopt(&mut self, other: AsyncConnection<T>) -> io::Result<()> {
        if other.conn.state() != State::AwaitingSession {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the adopted connection is not awaiting a session ({:?})",
                    other.conn.state()
                ),
            ));
        }
        self.conn.adopt(Instant::now(), other.conn);
        self.io = other.io;
        self.unflushed = false;
        self.sync_transport();
        Ok(())
    }

    // ----- accessors ---------------------------------------------------------------------

    /// The session (state, seqs, counters, the send queue).
    #[must_use]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The session, for calls this wrapper does not forward. Events taken from it directly
    /// do not pass through [`next_event`](Self::next_event); the transport is still
    /// dropped when the session is done with it.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The current transport, if any.
    #[must_use]
    pub fn transport(&self) -> Option<&T> {
        self.io.as_ref()
    }

    /// The current transport, if any (to set socket options, say). Reading or writing it
    /// directly breaks the stream.
    pub fn transport_mut(&mut self) -> Option<&mut T> {
        self.io.as_mut()
    }

    /// Takes the session and its transport apart.
    #[must_use]
    pub fn into_parts(self) -> (Connection, Option<T>) {
        (self.conn, self.io)
    }

    // ----- driving -------------------------------------------------------------------------

    /// Drives the transport (reads, writes, timers) until the core has an event, and
    /// returns it. Cancel-safe.
    ///
    /// What to do with some of them: [`Event::OpenTransport`] → connect and
    /// [`reconnect`](Self::reconnect); [`Event::PeerIdentified`] →
    /// [`accept_new_session`](Self::accept_new_session) or [`adopt`](Self::adopt) into the
    /// existing session. On [`Event::Fault`] and [`Event::Closed`] the transport has
    /// already been dropped.
    ///
    /// While there is no transport (a client's reconnect delay, a server session in
    /// standby) this waits for the timer or forever; see the [module docs](self).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotConnected`] when nothing more can happen: the session is closed
    /// and every event was taken, or a client is waiting for [`reconnect`](Self::reconnect).
    /// Transport errors are not returned here: they become [`Event::Fault`] or
    /// [`Event::Closed`].
    pub async fn next_event(&mut self) -> io::Result<Event> {
        poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// The poll form of [`next_event`](Self::next_event).
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Event>> {
        if self.closing {
            // A close() was cancelled.
            self.closing = false;
            self.sync_transport();
        }
        for _ in 0..POLL_BUDGET {
            self.poll_timer(cx);
            if let Some(ev) = self.conn.poll_event() {
                self.sync_transport();
                return Poll::Ready(Ok(ev));
            }
            match self.conn.state() {
                State::Closed => return Poll::Ready(Err(not_connected("the session is closed"))),
                State::Connecting if self.io.is_none() => {
                    return Poll::Ready(Err(not_connected(
                        "waiting for a transport: call reconnect after Event::OpenTransport",
                    )))
                }
                _ => {}
            }
            if !self.poll_io(cx, true) {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Drives the transport until the session is open and every queued byte is written
    /// (and the transport flushed). It reads too, so the handshake can progress and the
    /// peer is never stalled; what arrives waits for [`next_event`](Self::next_event).
    /// Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotConnected`] if the transport is gone or goes while flushing
    /// (the messages stay queued; [`next_event`](Self::next_event) reports what
    /// happened), or the session is closed; [`io::ErrorKind::WouldBlock`] for a server
    /// connection waiting for [`accept_new_session`](Self::accept_new_session) or
    /// [`adopt`](Self::adopt).
    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// The poll form of [`flush`](Self::flush).
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closing {
            // A close() was cancelled.
            self.closing = false;
            self.sync_transport();
        }
        for _ in 0..POLL_BUDGET {
            self.poll_timer(cx);
            match self.conn.state() {
                State::Open if !self.conn.wants_write() && !self.unflushed => {
                    return Poll::Ready(Ok(()))
                }
                State::AwaitingSession => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "the server connection awaits a session decision",
                    )))
                }
                State::Closed => return Poll::Ready(Err(not_connected("the session is closed"))),
                _ if self.io.is_none() => {
                    return Poll::Ready(Err(not_connected("no transport")));
                }
                _ => {}
            }
            if !self.poll_io(cx, true) {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Waits until the transport accepts some of the bytes the core has to write, and
    /// returns how many it took; `Ok(0)` at once if there is nothing to write now. It does
    /// not read. Handy to interleave writes with [`revoke`](Self::revoke) and
    /// [`status`](Self::status). Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotConnected`] without a transport; the transport's error if the
    /// write fails (the fault is also reported by [`next_event`](Self::next_event)).
    pub async fn write_some(&mut self) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write_some(cx)).await
    }

    /// The poll form of [`write_some`](Self::write_some).
    pub fn poll_write_some(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.io.is_none() {
            return Poll::Ready(Err(not_connected("no transport")));
        }
        if !self.conn.wants_write() {
            return Poll::Ready(Ok(0));
        }
        self.poll_write_once(cx)
    }

    /// Ends the session: sends CLOSE (if open), flushes it, shuts the transport down and
    /// drops it. [`Event::Closed`], with any messages not acknowledged, then waits in
    /// [`next_event`](Self::next_event) together with whatever arrived before.
    ///
    /// # Errors
    ///
    /// The transport's error from shutting it down (the session is closed anyway).
    pub async fn close(&mut self) -> io::Result<()> {
        self.closing = true;
        self.conn.close();
        let r = poll_fn(|cx| self.poll_close(cx)).await;
        self.closing = false;
        self.io = None;
        r
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        for _ in 0..POLL_BUDGET {
            if self.conn.state() == State::Closed || self.io.is_none() {
                return match self.io.as_mut() {
                    Some(io) => Pin::new(io).poll_close(cx),
                    None => Poll::Ready(Ok(())),
                };
            }
            if !self.poll_io(cx, true) {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    // ----- internals -----------------------------------------------------------------------

    /// Drops the transport once the core is done with it.
    fn sync_transport(&mut self) {
        let done = match self.conn.state() {
            State::Connecting | State::Backoff | State::Standby => true,
            State::Closed => !self.closing,
            _ => false,
        };
        if done {
            self.io = None;
            self.unflushed = false;
        }
    }

    fn failed(&mut self, reason: &str) {
        self.conn.transport_failed(Instant::now(), reason);
        self.io = None;
        self.unflushed = false;
        self.sync_transport();
    }

    /// Arms the caller's timer for the core's deadline and fires the core's timeouts.
    fn poll_timer(&mut self, cx: &mut Context<'_>) {
        for _ in 0..4 {
            let Some(deadline) = self.conn.poll_timeout() else {
                if let Some(t) = self.timer.as_mut() {
                    t.armed = None;
                }
                return;
            };
            let now = Instant::now();
            if deadline <= now {
                self.handle_timeout(now);
                continue;
            }
            let Some(t) = self.timer.as_mut() else {
                return;
            };
            if t.armed.as_ref().map(|(at, _)| *at) != Some(deadline) {
                t.armed = Some((deadline, (t.make)(deadline)));
            }
            let Some((_, sleep)) = t.armed.as_mut() else {
                return;
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return;
            }
            t.armed = None;
            self.handle_timeout(Instant::now().max(deadline));
        }
        // The deadline keeps passing: come back soon rather than spin here.
        cx.waker().wake_by_ref();
    }

    /// One `poll_write_vectored` of what the core offers, through the core's write step.
    fn poll_write_once(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(io) = self.io.as_mut() else {
            return Poll::Ready(Err(not_connected("no transport")));
        };
        // `Pending` (the waker is registered) is the core's "would block".
        let step = self.conn.write_with(Instant::now(), usize::MAX, |s| {
            match Pin::new(&mut *io).poll_write_vectored(cx, s) {
                Poll::Ready(r) => r,
                Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
            }
        });
        match step {
            WriteStep::Wrote(n) => {
                self.unflushed = true;
                self.sync_transport();
                Poll::Ready(Ok(n))
            }
            WriteStep::Idle => Poll::Ready(Ok(0)),
            WriteStep::Blocked => Poll::Pending,
            WriteStep::Failed(e) => {
                // The core already ended the transport's session state.
                self.io = None;
                self.unflushed = false;
                self.sync_transport();
                Poll::Ready(Err(e))
            }
        }
    }

    /// Writes while the transport takes bytes, flushes when the core has nothing more, and
    /// (with `read`) reads once. Returns whether anything happened; if not, every
    /// operation it tried has registered the waker.
    fn poll_io(&mut self, cx: &mut Context<'_>, read: bool) -> bool {
        let mut progressed = false;
        let mut writes = 0;
        while self.io.is_some() && self.conn.wants_write() {
            match self.poll_write_once(cx) {
                Poll::Ready(Ok(0)) => break,
                Poll::Ready(_) => progressed = true,
                Poll::Pending => break,
            }
            writes += 1;
            if writes == POLL_BUDGET {
                // Let reads and other tasks run; the caller's loop comes back.
                return true;
            }
        }
        if self.unflushed && !self.conn.wants_write() {
            if let Some(io) = self.io.as_mut() {
                match Pin::new(io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        self.unflushed = false;
                        progressed = true;
                    }
                    Poll::Ready(Err(e)) => {
                        self.failed(&e.to_string());
                        progressed = true;
                    }
                    Poll::Pending => {}
                }
            }
        }
        if read {
            if let Some(io) = self.io.as_mut() {
                match Pin::new(io).poll_read(cx, &mut self.rbuf) {
                    Poll::Ready(Ok(0)) => {
                        self.failed("the peer closed the transport");
                        progressed = true;
                    }
                    Poll::Ready(Ok(n)) => {
                        self.conn.handle_input(Instant::now(), &self.rbuf[..n]);
                        self.sync_transport();
                        progressed = true;
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                        progressed = true;
                    }
                    Poll::Ready(Err(e)) => {
                        self.failed(&e.to_string());
                        progressed = true;
                    }
                    Poll::Pending => {}
                }
            }
        }
        progressed
    }
}
