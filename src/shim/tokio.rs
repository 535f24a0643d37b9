//! The Tokio shim: a [`Connection`] on a [`tokio::net::TcpStream`], run by one task.
//!
//! **Client.** [`connect`] spawns a connection task and hands back a cloneable [`Handle`]
//! and a receiver of [`Event`]s. The task owns the socket and the [`Connection`]; it
//! connects when the core asks ([`Event::OpenTransport`], again after each backoff of a
//! lossless session), writes the core's slices with one vectored write per offer, feeds
//! what it reads to the core, sleeps until [`Connection::poll_timeout`], and drops the
//! socket on [`Event::Fault`] and [`Event::Closed`]. Commands from the handle (send, revoke,
//! keepalive, close) are applied by the task in the order it receives them; a revoke's
//! outcome is the core's answer at the instant the task applies it.
//!
//! **Server.** [`serve`] accepts connections and runs each as a task. A lossless server
//! keeps one task per *session*: when a new transport's peer identifies itself
//! ([`Event::PeerIdentified`]) as one that already has a session (same [`EntityAddr`]:
//! IP, port and nonce), the new transport is handed over to that session's task, which
//! [`adopt`](Connection::adopt)s it; otherwise the transport starts a new session. Events
//! of every session come out of one channel as [`ServerEvent`]s.
//!
//! The shim makes no protocol decision: everything it does is "the core said so" or "the
//! socket said so". Events the shim consumes itself ([`Event::OpenTransport`],
//! [`Event::PeerIdentified`]) are not forwarded; every other event is.
//!
//! ## Flow control
//!
//! [`Handle::send`] waits while the messages held by the session (queued, in flight or
//! awaiting acknowledgement) add up to more than [`Options::max_queued_bytes`]; a message
//! stops counting once acknowledged, revoked or handed back. The event channel is
//! bounded ([`Options::event_buffer`]): while the caller does not drain it, the task stops
//! reading from the socket (commands and writes go on).
//!
//! ## Example
//!
//! A server and a lossless client in one process, over loopback:
//!
//! ```
//! use bytes::Bytes;
//! use ceph_msgr::conn::{Config, Event};
//! use ceph_msgr::shim::tokio::{connect, serve, ServerEvent};
//! use ceph_msgr::{EntityName, EntityType, Message};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let mut scfg = Config::server(EntityName { ty: EntityType::Osd, num: 0 });
//! scfg.lossy = false;
//! let (stx, mut server_events) = tokio::sync::mpsc::channel(64);
//! tokio::spawn(serve(listener, scfg, stx));
//!
//! let mut ccfg = Config::client(EntityName::client(4242));
//! ccfg.lossy = false;
//! let (client, mut events) = connect(ccfg, addr, EntityType::Osd);
//! client.send(Message::new(42).with_tid(1).with_front(Bytes::from_static(b"hello"))).await.unwrap();
//!
//! // The server delivers it...
//! loop {
//!     let ServerEvent { event, .. } = server_events.recv().await.unwrap();
//!     if let Event::Message(m) = event {
//!         assert_eq!(&m.front[..], b"hello");
//!         break;
//!     }
//! }
//! // ...and acknowledges it.
//! client.flush().await.unwrap();
//! client.close().await;
//! while let Some(ev) = events.recv().await {
//!     if let Event::Closed { unsent, .. } = ev {
//!         assert!(unsent.is_empty());
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Sleep;

use crate::conn::{Config, Connection, Event};
use crate::send::{MsgId, MsgStatus, QueueError, Revoked};
use crate::wire::handshake::EntityAddr;
use crate::wire::EntityType;
use crate::Message;

/// Slices offered to one vectored write.
const SLICES: usize = 64;
/// Events held in the task (beyond the channel) before it stops reading.
const OUT_HIGH: usize = 64;

/// Tuning of the shim's tasks.
#[derive(Debug, Clone)]
pub struct Options {
    /// Room reserved in the connection's receive buffer before each read: the most one
    /// read takes, unless a large record is under way (then its whole size is reserved).
    /// The socket reads straight into that buffer and messages are slices of it, so an
    /// application that keeps a small message keeps its block alive.
    pub read_buffer: usize,
    /// Capacity of the event channel.
    pub event_buffer: usize,
    /// Client: payload bytes the session may hold before [`Handle::send`] waits. A
    /// message larger than this counts as this much.
    pub max_queued_bytes: usize,
    /// Client: how long a TCP connect may take before it counts as a transport failure.
    pub connect_timeout: Duration,
    /// Set `TCP_NODELAY` on every socket.
    pub nodelay: bool,
    /// After activity (a read, a write, a command), keep polling the socket without
    /// sleeping for this long before the task waits for a wake-up. Trades a core's worth
    /// of CPU for latency where waking a sleeping thread is slow (virtual machines: tens
    /// of microseconds). `None` (the default) never spins.
    pub busy_poll: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            read_buffer: 64 * 1024,
            event_buffer: 1024,
            max_queued_bytes: 16 << 20,
            connect_timeout: Duration::from_secs(10),
            nodelay: true,
            busy_poll: None,
        }
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// What woke the task up.
enum Wake<C> {
    Inbox(Option<C>),
    Readable(io::Result<()>),
    Wrote(io::Result<usize>),
    Connected(io::Result<TcpStream>),
    Timer,
    EventSent,
    EventsClosed,
    /// A busy-poll round found nothing yet.
    Spin,
    Idle,
}

/// The I/O half of a task: one connection, its transport, its timer and its outgoing
/// events. `E` is the type of event the task emits.
struct Link<E> {
    conn: Connection,
    rd: Option<OwnedReadHalf>,
    wr: Option<OwnedWriteHalf>,
    read_room: usize,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    connecting: Option<ConnectFuture>,
    out: VecDeque<E>,
    tx: mpsc::Sender<E>,
    nodelay: bool,
    busy_poll: Option<Duration>,
    /// When the task last had something to do (for `busy_poll`).
    last_active: Option<Instant>,
}

impl<E: Send + 'static> Link<E> {
    fn new(conn: Connection, opts: &Options, tx: mpsc::Sender<E>) -> Self {
        Self {
            conn,
            rd: None,
            wr: None,
            read_room: opts.read_buffer.max(4096),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            timer_at: None,
            connecting: None,
            out: VecDeque::new(),
            tx,
            nodelay: opts.nodelay,
            busy_poll: opts.busy_poll,
            last_active: None,
        }
    }

    fn attach(&mut self, sock: TcpStream) {
        if self.nodelay {
            // A failure here only costs latency.
            let _ = sock.set_nodelay(true);
        }
        let (rd, wr) = sock.into_split();
        self.attach_halves(rd, wr);
    }

    fn attach_halves(&mut self, rd: OwnedReadHalf, wr: OwnedWriteHalf) {
        self.rd = Some(rd);
        self.wr = Some(wr);
    }

    /// Closes the socket (and abandons a connect in progress).
    fn drop_transport(&mut self) {
        self.rd = None;
        self.wr = None;
        self.connecting = None;
    }

    fn has_transport(&self) -> bool {
        self.rd.is_some() || self.connecting.is_some()
    }

    /// The transport failed: close it and tell the core.
    fn fail(&mut self, reason: &str) {
        self.drop_transport();
        self.conn.transport_failed(now(), reason);
    }

    fn start_connect(&mut self, peer: SocketAddr, timeout: Duration) {
        self.drop_transport();
        self.connecting = Some(Box::pin(async move {
            match tokio::time::timeout(timeout, TcpStream::connect(peer)).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
            }
        }));
    }

    fn emit(&mut self, ev: E) {
        self.out.push_back(ev);
    }

    /// Moves held events into the channel as far as it has room.
    fn flush_out(&mut self) {
        while let Some(ev) = self.out.pop_front() {
            match self.tx.try_send(ev) {
                Ok(()) => {}
                Err(TrySendError::Full(ev)) => {
                    self.out.push_front(ev);
                    return;
                }
                Err(TrySendError::Closed(_)) => {
                    // Nobody listens: events are dropped.
                    self.out.clear();
                    return;
                }
            }
        }
    }

    /// Sends every held event, waiting for room (the task is ending).
    async fn drain_out(&mut self) {
        while let Some(ev) = self.out.pop_front() {
            if self.tx.send(ev).await.is_err() {
                self.out.clear();
            }
        }
    }

    fn arm_timer(&mut self) {
        let at = self.conn.poll_timeout();
        if at != self.timer_at {
            if let Some(at) = at {
                self.timer
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(at));
            }
            self.timer_at = at;
        }
    }

    /// Waits for the next thing to happen. The core is offered the socket for writing
    /// (one vectored write of its slices), the socket for reading, the timer, the connect
    /// in progress, the inbox (commands or adopted transports) and room in the event
    /// channel.
    async fn wait<C>(
        &mut self,
        inbox: &mut mpsc::Receiver<C>,
        inbox_open: bool,
        stop_when_unheard: bool,
    ) -> Wake<C> {
        self.flush_out();
        self.arm_timer();
        let mut slices = [IoSlice::new(&[]); SLICES];
        let k = if self.wr.is_some() && self.conn.wants_write() {
            self.conn.poll_transmit().fill(&mut slices)
        } else {
            0
        };
        let can_read = self.rd.is_some() && self.out.len() < OUT_HIGH;
        let timer_armed = self.timer_at.is_some();
        let connecting = self.connecting.is_some();
        let has_out = !self.out.is_empty();
        let spinning = match (self.busy_poll, self.last_active) {
            (Some(d), Some(at)) => at.elapsed() < d,
            _ => false,
        };
        let w = tokio::select! {
            r = write_some(self.wr.as_mut(), &slices[..k]), if k > 0 => Wake::Wrote(r),
            r = readable(self.rd.as_ref()), if can_read => Wake::Readable(r),
            r = opt_future(&mut self.connecting), if connecting => Wake::Connected(r),
            () = &mut self.timer, if timer_armed => Wake::Timer,
            c = inbox.recv(), if inbox_open => Wake::Inbox(c),
            p = self.tx.reserve(), if has_out => match p {
                Ok(permit) => {
                    if let Some(ev) = self.out.pop_front() {
                        permit.send(ev);
                    }
                    Wake::EventSent
                }
                Err(_) => {
                    self.out.clear();
                    Wake::EventsClosed
                }
            },
            () = self.tx.closed(), if stop_when_unheard => Wake::EventsClosed,
            // Yields to the runtime, which polls its I/O driver without sleeping, and comes
            // straight back.
            () = tokio::task::yield_now(), if spinning => Wake::Spin,
            else => Wake::Idle,
        };
        if matches!(
            w,
            Wake::Readable(_) | Wake::Wrote(_) | Wake::Inbox(_) | Wake::Connected(_)
        ) && self.busy_poll.is_some()
        {
            self.last_active = Some(Instant::now());
        }
        w
    }

    /// Applies an I/O wake-up to the core. Returns the wake-up back if it is not an I/O
    /// one.
    fn on_io<C>(&mut self, w: Wake<C>) -> Option<Wake<C>> {
        match w {
            Wake::Wrote(Ok(0)) => self.fail("the socket accepted no bytes"),
            Wake::Wrote(Ok(n)) => {
                if let Err(e) = self.conn.advance(n) {
                    // Only a shim bug could cause this; end the transport, not the process.
                    self.fail(&format!("internal: {e}"));
                }
            }
            Wake::Wrote(Err(e)) => self.fail(&format!("write: {e}")),
            Wake::Readable(Ok(())) => {
                // (No read half: the wake-up is spent.)
                let rd = self.rd.as_ref()?;
                // Straight into the connection's receive buffer: no copy.
                match self
                    .conn
                    .read_with(now(), self.read_room, |buf| rd.try_read_buf(buf))
                {
                    Ok(0) => self.fail("the peer closed the connection"),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => self.fail(&format!("read: {e}")),
                }
            }
            Wake::Readable(Err(e)) => self.fail(&format!("read: {e}")),
            Wake::Connected(Ok(sock)) => {
                self.connecting = None;
                self.attach(sock);
                self.conn.transport_connected(now());
            }
            Wake::Connected(Err(e)) => self.fail(&format!("connect: {e}")),
            Wake::Timer => {
                self.timer_at = None;
                self.conn.handle_timeout(now());
            }
            Wake::EventSent | Wake::Spin => {}
            other => return Some(other),
        }
        None
    }
}

async fn write_some(w: Option<&mut OwnedWriteHalf>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    match w {
        Some(w) if !bufs.is_empty() => w.write_vectored(bufs).await,
        _ => std::future::pending().await,
    }
}

async fn readable(r: Option<&OwnedReadHalf>) -> io::Result<()> {
    match r {
        Some(r) => r.readable().await,
        None => std::future::pending().await,
    }
}

async fn opt_future<F: Future + Unpin>(f: &mut Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

// ----- client --------------------------------------------------------------------------

enum Cmd {
    Send(Message, u32, oneshot::Sender<Result<MsgId, QueueError>>),
    SendBatch(
        Vec<(Message, u32)>,
        oneshot::Sender<Result<Vec<MsgId>, QueueError>>,
    ),
    Revoke(MsgId, oneshot::Sender<Revoked>),
    Status(MsgId, oneshot::Sender<MsgStatus>),
    Keepalive(oneshot::Sender<()>),
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
    InjectFault(oneshot::Sender<bool>),
}

/// A cloneable handle on a client connection task (see the [module docs](self)).
///
/// Every method is a command to the task, applied in the order the task receives them.
/// Once the session has ended, `send` fails with [`QueueError::Closed`], `revoke` answers
/// [`Revoked::Unknown`] (the messages were handed back in [`Event::Closed`]), and the
/// other methods return at once.
#[derive(Debug, Clone)]
pub struct Handle {
    cmds: mpsc::Sender<Cmd>,
    window: Arc<Semaphore>,
    max_cost: u32,
}

impl Handle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.cmds.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Queues a message; it goes out once the session is open, in queue order, and (for a
    /// lossless session) is resent on reconnect until acknowledged. Waits while the
    /// session holds more than [`Options::max_queued_bytes`].
    pub async fn send(&self, msg: Message) -> Result<MsgId, QueueError> {
        let cost = cost_of(&msg, self.max_cost);
        let permit = self
            .window
            .acquire_many(cost)
            .await
            .map_err(|_| QueueError::Closed)?;
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Send(msg, cost, tx))
            .await
            .map_err(|_| QueueError::Closed)?;
        // The task accounts for the message from now on (and returns the permits when it
        // leaves the session). Until here, dropping this future returns them.
        permit.forget();
        rx.await.unwrap_or(Err(QueueError::Closed))
    }

    /// Queues several messages with one command to the task (one round trip instead of
    /// one per message), in order; returns their ids. Waits while the session holds more
    /// than [`Options::max_queued_bytes`]. On an error, the messages before the failing
    /// one are queued (their ids are lost with the error) and the rest are not.
    pub async fn send_batch(&self, msgs: Vec<Message>) -> Result<Vec<MsgId>, QueueError> {
        let costs: Vec<u32> = msgs.iter().map(|m| cost_of(m, self.max_cost)).collect();
        let total: u64 = costs.iter().map(|&c| u64::from(c)).sum();
        if total > u64::from(self.max_cost) {
            // Larger than the whole window: one at a time.
            let mut ids = Vec::with_capacity(msgs.len());
            for m in msgs {
                ids.push(self.send(m).await?);
            }
            return Ok(ids);
        }
        let permit = self
            .window
            .acquire_many(total as u32)
            .await
            .map_err(|_| QueueError::Closed)?;
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::SendBatch(msgs.into_iter().zip(costs).collect(), tx))
            .await
            .map_err(|_| QueueError::Closed)?;
        // The task returns each message's permits when it leaves the session.
        permit.forget();
        rx.await.unwrap_or(Err(QueueError::Closed))
    }

    /// Revokes a message. The outcome is the core's, decided when the task applies the
    /// command: [`Revoked::Removed`] (no byte of it on the current connection),
    /// [`Revoked::Aborted`] (partly written: the rest of its frame goes out as zeros and
    /// the peer drops it), [`Revoked::Dropped`] (fully written; the peer has probably
    /// received it) or [`Revoked::Unknown`].
    pub async fn revoke(&self, id: MsgId) -> Revoked {
        self.ask(|tx| Cmd::Revoke(id, tx))
            .await
            .unwrap_or(Revoked::Unknown)
    }

    /// Where a message stands ([`MsgStatus::Gone`] once the session has ended).
    pub async fn status(&self, id: MsgId) -> MsgStatus {
        self.ask(|tx| Cmd::Status(id, tx))
            .await
            .unwrap_or(MsgStatus::Gone)
    }

    /// Sends a keepalive now (if the session is open); the answer comes as
    /// [`Event::KeepaliveAck`].
    pub async fn keepalive(&self) {
        let _ = self.ask(Cmd::Keepalive).await;
    }

    /// Waits until the session holds no message: every message queued so far was
    /// acknowledged by the peer, revoked, or handed back by [`Event::SessionReset`].
    /// Fails with [`QueueError::Closed`] if the session ends first.
    pub async fn flush(&self) -> Result<(), QueueError> {
        self.ask(Cmd::Flush).await.ok_or(QueueError::Closed)
    }

    /// Ends the session and waits until the task has finished. If the session is open a
    /// CLOSE goes out first; if its transport is down (a lossless client waiting to
    /// reconnect) it ends at once and the server learns nothing. Messages not yet
    /// acknowledged are handed back in [`Event::Closed`]: call [`flush`](Self::flush)
    /// first to wait for them.
    pub async fn close(&self) {
        let _ = self.ask(Cmd::Close).await;
    }

    /// Breaks the current transport as a network failure would: the task drops its socket
    /// (or abandons the connect in progress) and reports
    /// [`Connection::transport_failed`]. A lossless session reconnects after its backoff.
    /// Returns whether there was a transport to break (not while waiting out a backoff).
    /// For tests and demonstrations.
    pub async fn inject_fault(&self) -> bool {
        self.ask(Cmd::InjectFault).await.unwrap_or(false)
    }

    /// Whether the connection task has ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.cmds.is_closed()
    }
}

fn cost_of(msg: &Message, max: u32) -> u32 {
    u32::try_from(msg.payload_len())
        .unwrap_or(u32::MAX)
        .clamp(1, max)
}

/// A nonce for a client whose config left it 0, so that two clients of one process
/// (which share an IP) have distinct sessions on a server.
fn pick_nonce() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    (std::process::id() << 12) ^ n
}

/// Spawns a client connection task for a session with `cfg` to the server at `peer` (an
/// entity of type `peer_type`), with default [`Options`]. If `cfg.nonce` is 0 a nonce
/// unique in this process is picked.
///
/// Must be called from within a Tokio runtime.
pub fn connect(
    mut cfg: Config,
    peer: SocketAddr,
    peer_type: EntityType,
) -> (Handle, mpsc::Receiver<Event>) {
    if cfg.nonce == 0 {
        cfg.nonce = pick_nonce();
    }
    spawn_client(
        Connection::client(cfg, peer, peer_type),
        peer,
        Options::default(),
    )
}

/// Spawns a client connection task for `conn` (made with [`Connection::client`], e.g.
/// with a custom authorizer), connecting to `peer`.
///
/// Must be called from within a Tokio runtime.
pub fn spawn_client(
    conn: Connection,
    peer: SocketAddr,
    opts: Options,
) -> (Handle, mpsc::Receiver<Event>) {
    let max_cost =
        u32::try_from(opts.max_queued_bytes.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
    let window = Arc::new(Semaphore::new(max_cost as usize));
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (ev_tx, ev_rx) = mpsc::channel(opts.event_buffer.max(1));
    let link = Link::new(conn, &opts, ev_tx);
    let task = ClientTask {
        link,
        peer,
        connect_timeout: opts.connect_timeout,
        window: BTreeMap::new(),
        sem: window.clone(),
        flushers: Vec::new(),
        closers: Vec::new(),
    };
    tokio::spawn(task.run(cmd_rx));
    (
        Handle {
            cmds: cmd_tx,
            window,
            max_cost,
        },
        ev_rx,
    )
}

struct ClientTask {
    link: Link<Event>,
    peer: SocketAddr,
    connect_timeout: Duration,
    /// Messages the session holds, with the flow-control permits each took.
    window: BTreeMap<MsgId, u32>,
    sem: Arc<Semaphore>,
    flushers: Vec<oneshot::Sender<()>>,
    closers: Vec<oneshot::Sender<()>>,
}

impl ClientTask {
    async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>) {
        let mut cmds_open = true;
        loop {
            if self.core_events() {
                break;
            }
            let w = self.link.wait(&mut cmds, cmds_open, false).await;
            match self.link.on_io(w) {
                None => {}
                Some(Wake::Inbox(Some(cmd))) => {
                    // Apply every command already waiting before the next write, so that
                    // messages queued together go out in one vectored write.
                    self.command(cmd);
                    while let Ok(cmd) = cmds.try_recv() {
                        self.command(cmd);
                    }
                }
                Some(Wake::Inbox(None)) => {
                    // Every handle is gone: end the session.
                    cmds_open = false;
                    self.link.conn.close();
                }
                Some(Wake::Idle) => {
                    // Nothing can happen any more (no handle, no transport, no timer).
                    self.link.conn.close();
                    self.core_events();
                    break;
                }
                Some(_) => {}
            }
        }
        self.sem.close();
        cmds.close();
        self.link.drop_transport();
        self.link.drain_out().await;
        for c in self.closers.drain(..) {
            let _ = c.send(());
        }
    }

    /// Handles the core's events; returns whether the session is over.
    fn core_events(&mut self) -> bool {
        let mut over = false;
        while let Some(ev) = self.link.conn.poll_event() {
            match ev {
                Event::OpenTransport => self.link.start_connect(self.peer, self.connect_timeout),
                Event::PeerIdentified(_) => {} // server only
                ev @ Event::Fault { .. } => {
                    self.link.drop_transport();
                    self.link.emit(ev);
                }
                ev @ (Event::Closed { .. } | Event::SessionReset { .. }) => {
                    if matches!(ev, Event::Closed { .. }) {
                        self.link.drop_transport();
                        over = true;
                    }
                    // Every held message was handed back.
                    let total: u32 = std::mem::take(&mut self.window).values().sum();
                    self.sem.add_permits(total as usize);
                    self.link.emit(ev);
                }
                ev => self.link.emit(ev),
            }
        }
        self.release_gone();
        if over {
            // Waiting flushes fail: the session ended.
            self.flushers.clear();
        }
        if self.link.conn.messenger().is_empty() {
            for f in self.flushers.drain(..) {
                let _ = f.send(());
            }
        }
        over
    }

    /// Returns the permits of messages that left the session (acknowledged), oldest
    /// first.
    fn release_gone(&mut self) {
        while let Some((&id, &cost)) = self.window.first_key_value() {
            if self.link.conn.messenger().status(id) != MsgStatus::Gone {
                break;
            }
            self.window.remove(&id);
            self.sem.add_permits(cost as usize);
        }
    }

    fn command(&mut self, cmd: Cmd) {
        let conn = &mut self.link.conn;
        match cmd {
            Cmd::Send(msg, cost, reply) => {
                let r = conn.send(msg);
                match r {
                    Ok(id) => {
                        self.window.insert(id, cost);
                    }
                    Err(_) => self.sem.add_permits(cost as usize),
                }
                let _ = reply.send(r);
            }
            Cmd::SendBatch(msgs, reply) => {
                let mut ids = Vec::with_capacity(msgs.len());
                let mut err = None;
                for (msg, cost) in msgs {
                    match (err.is_none()).then(|| conn.send(msg)) {
                        Some(Ok(id)) => {
                            self.window.insert(id, cost);
                            ids.push(id);
                        }
                        Some(Err(e)) => {
                            err = Some(e);
                            self.sem.add_permits(cost as usize);
                        }
                        None => self.sem.add_permits(cost as usize),
                    }
                }
                let _ = reply.send(err.map_or(Ok(ids), Err));
            }
            Cmd::Revoke(id, reply) => {
                let r = conn.revoke(id);
                if let Some(cost) = self.window.remove(&id) {
                    self.sem.add_permits(cost as usize);
                }
                let _ = reply.send(r);
            }
            Cmd::Status(id, reply) => {
                let _ = reply.send(conn.messenger().status(id));
            }
            Cmd::Keepalive(reply) => {
                conn.send_keepalive(now());
                let _ = reply.send(());
            }
            Cmd::Flush(reply) => self.flushers.push(reply),
            Cmd::Close(reply) => {
                conn.close();
                self.closers.push(reply);
            }
            Cmd::InjectFault(reply) => {
                let broke = self.link.has_transport();
                if broke {
                    self.link.fail("injected fault");
                }
                let _ = reply.send(broke);
            }
        }
    }
}

// ----- server --------------------------------------------------------------------------

/// An event of one server session.
#[derive(Debug)]
pub struct ServerEvent {
    /// The session (a number unique within one [`serve`] call). A lossless session keeps
    /// its number across the transports it adopts; a transport whose peer has not
    /// identified itself yet (whose handshake failed, say) has a number of its own.
    pub session: u64,
    /// The peer's address (blank until it identified itself).
    pub peer: EntityAddr,
    /// What happened.
    pub event: Event,
}

/// A transport accepted for a session whose peer identified itself.
struct Adopt {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    conn: Connection,
}

struct Entry {
    id: u64,
    tx: mpsc::Sender<Adopt>,
}

struct Shared {
    cfg: Config,
    my_addr: EntityAddr,
    opts: Options,
    registry: Mutex<HashMap<EntityAddr, Entry>>,
    next_id: AtomicU64,
}

impl Shared {
    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<EntityAddr, Entry>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Accepts connections on `listener` and runs each as a task, with default [`Options`]
/// (see [`serve_with`]).
pub async fn serve(
    listener: TcpListener,
    cfg: Config,
    events: mpsc::Sender<ServerEvent>,
) -> io::Result<()> {
    serve_with(listener, cfg, Options::default(), events).await
}

/// Accepts connections on `listener` and runs each as a task; every session's events go
/// to `events`.
///
/// A lossless `cfg` gets [`Config::sessions`] set: sessions are kept in a registry keyed
/// by the peer's [`EntityAddr`], so a client that reconnects resumes its session (the
/// SEQ exchange tells it what the server already has). A session ends when its peer
/// closes it or fails fatally; a lossless session whose transport failed waits for the
/// peer to come back.
///
/// Returns when `events`' receiver is dropped; every session task ends then too.
pub async fn serve_with(
    listener: TcpListener,
    mut cfg: Config,
    opts: Options,
    events: mpsc::Sender<ServerEvent>,
) -> io::Result<()> {
    let my_addr = EntityAddr::new(Some(listener.local_addr()?), cfg.nonce);
    if !cfg.lossy {
        cfg.sessions = true;
    }
    let shared = Arc::new(Shared {
        cfg,
        my_addr,
        opts,
        registry: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
    });
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, peer)) => {
                    spawn_session(shared.clone(), Start::Accepted(sock, peer), events.clone());
                }
                // Out of descriptors, aborted handshakes, …: not fatal for a listener.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            () = events.closed() => return Ok(()),
        }
    }
}

enum Start {
    Accepted(TcpStream, SocketAddr),
    /// A transport whose session ended before it could adopt it: start a new one.
    Orphan(Box<Adopt>),
}

fn spawn_session(shared: Arc<Shared>, start: Start, events: mpsc::Sender<ServerEvent>) {
    tokio::spawn(server_task(shared, start, events));
}

async fn server_task(shared: Arc<Shared>, start: Start, events: mpsc::Sender<ServerEvent>) {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (adopt_tx, mut adopt_rx) = mpsc::channel::<Adopt>(16);
    let mut registered: Option<EntityAddr> = None;
    let mut link = match start {
        Start::Accepted(sock, peer) => {
            let mut conn = Connection::server(shared.cfg.clone(), shared.my_addr, peer);
            // Starts the handshake deadline (Config::handshake_timeout).
            conn.handle_timeout(now());
            let mut link = Link::new(conn, &shared.opts, events);
            link.attach(sock);
            link
        }
        Start::Orphan(a) => {
            let mut link = Link::new(a.conn, &shared.opts, events);
            link.attach_halves(a.rd, a.wr);
            let key = link.conn.peer_addr();
            shared.registry().insert(
                key,
                Entry {
                    id,
                    tx: adopt_tx.clone(),
                },
            );
            registered = Some(key);
            link.conn.accept_new_session(now());
            link
        }
    };
    loop {
        // The core's events.
        let mut over = false;
        let mut identified = None;
        while let Some(ev) = link.conn.poll_event() {
            let peer = link.conn.peer_addr();
            match ev {
                Event::PeerIdentified(info) => {
                    identified = Some(info.addr);
                    break;
                }
                Event::OpenTransport => {} // client only
                ev @ Event::Fault { .. } => {
                    link.drop_transport();
                    // A transport that never got a session has nothing to wait for.
                    over |= registered.is_none();
                    link.emit(ServerEvent {
                        session: id,
                        peer,
                        event: ev,
                    });
                }
                ev @ Event::Closed { .. } => {
                    link.drop_transport();
                    over = true;
                    link.emit(ServerEvent {
                        session: id,
                        peer,
                        event: ev,
                    });
                }
                ev => link.emit(ServerEvent {
                    session: id,
                    peer,
                    event: ev,
                }),
            }
        }
        if let Some(key) = identified {
            let mut reg = shared.registry();
            // (Our own entry when the peer identified itself again on this transport, e.g.
            // after a RESETSESSION: we stay its session.)
            let existing = reg.get(&key).filter(|e| e.id != id).map(|e| e.tx.clone());
            if let Some(tx) = existing {
                // Hand this transport over to the peer's session.
                link.flush_out();
                let (Some(rd), Some(wr)) = (link.rd.take(), link.wr.take()) else {
                    return;
                };
                let adopt = Adopt {
                    rd,
                    wr,
                    conn: link.conn,
                };
                match tx.try_send(adopt) {
                    Ok(()) => return,
                    // The peer is reconnecting in a storm: drop this transport.
                    Err(TrySendError::Full(_)) => return,
                    Err(TrySendError::Closed(a)) => {
                        // The session is ending: this transport starts a new one.
                        reg.remove(&key);
                        drop(reg);
                        spawn_session(shared.clone(), Start::Orphan(Box::new(a)), link.tx);
                        return;
                    }
                }
            }
            reg.insert(
                key,
                Entry {
                    id,
                    tx: adopt_tx.clone(),
                },
            );
            drop(reg);
            registered = Some(key);
            link.conn.accept_new_session(now());
            continue; // the answer may have produced events
        }
        if over {
            break;
        }
        let w = link.wait(&mut adopt_rx, registered.is_some(), true).await;
        match link.on_io(w) {
            None => {}
            Some(Wake::Inbox(Some(a))) => {
                link.drop_transport();
                link.conn.adopt(now(), a.conn);
                link.attach_halves(a.rd, a.wr);
            }
            Some(Wake::EventsClosed | Wake::Idle | Wake::Inbox(None)) => break,
            Some(_) => {}
        }
    }
    // Leave the registry, then give transports that were handed to us too late a session
    // of their own.
    if let Some(key) = registered {
        let mut reg = shared.registry();
        if reg.get(&key).is_some_and(|e| e.id == id) {
            reg.remove(&key);
        }
    }
    adopt_rx.close();
    link.drop_transport();
    while let Ok(a) = adopt_rx.try_recv() {
        if !link.tx.is_closed() {
            spawn_session(shared.clone(), Start::Orphan(Box::new(a)), link.tx.clone());
        }
    }
    link.drain_out().await;
}
