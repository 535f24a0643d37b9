//! A small blocking monitor client: connect, authenticate (auth none), subscribe, ask for
//! map versions — enough for `ceph-msgr mon-status` and the interop tests.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::messages::{auth_hello, get_version, subscribe, AuthReply, Subscription, VersionReply};
use super::monmap::MonMap;
use super::{msg_type, MonDecodeError, MON_CLIENT_FEATURES};
use crate::conn::{self, Config, Event, State};
use crate::recv::Received;
use crate::send::{MsgId, Protocol, QueueError};
use crate::shim::blocking::{BlockingConnection, ConnectError, WaitError};
use crate::wire::handshake::auth as auth_proto;
use crate::wire::{EntityName, EntityType};
use crate::Message;

/// Messages of other types kept for [`MonClient::take_other`] (older ones are dropped).
const MAX_OTHER: usize = 256;

/// Settings of a [`MonClient`].
#[derive(Debug, Clone)]
pub struct MonClientConfig {
    /// The entity name without its type (`admin` for `client.admin`).
    pub entity: String,
    /// Feature bits to advertise ([`MON_CLIENT_FEATURES`] by default).
    pub features: u64,
    /// Lossy (like librados: a fault ends the session) or lossless (reconnect, resend,
    /// authenticate again).
    pub lossy: bool,
    /// Bounds the TCP connect and handshake, and each TCP connect of a reconnect.
    pub connect_timeout: Duration,
    /// Our address nonce.
    pub nonce: u32,
    /// The hostname sent in subscriptions.
    pub hostname: String,
    /// The protocol to speak. Over msgr2 the monitor authenticates the client in the
    /// handshake (AUTH_REQUEST / AUTH_DONE), so no `MAuth` message is exchanged.
    pub protocol: Protocol,
}

impl Default for MonClientConfig {
    fn default() -> Self {
        Self {
            entity: "admin".to_owned(),
            features: MON_CLIENT_FEATURES,
            lossy: true,
            connect_timeout: Duration::from_secs(5),
            nonce: default_nonce(),
            hostname: "ceph-msgr".to_owned(),
            protocol: Protocol::V1,
        }
    }
}

/// A nonce that differs between processes and runs.
fn default_nonce() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::process::id().rotate_left(16) ^ t
}

/// Why a [`MonClient`] call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum MonError {
    /// Connecting or the handshake failed.
    Connect(ConnectError),
    /// Nothing arrived in time; the string says what was awaited.
    Timeout(&'static str),
    /// The session ended.
    Closed(Option<conn::Error>),
    /// The monitor refused the authentication.
    AuthRejected {
        /// The (negative errno) result.
        result: i32,
        /// The monitor's message.
        message: String,
    },
    /// The monitor wants an authentication protocol other than none (e.g. cephx).
    AuthUnsupported {
        /// The protocol it chose.
        protocol: u32,
    },
    /// A monitor payload did not decode.
    Decode(MonDecodeError),
    /// The connection refused a message.
    Queue(QueueError),
}

impl fmt::Display for MonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "{e}"),
            Self::Timeout(what) => write!(f, "timed out waiting for {what}"),
            Self::Closed(Some(e)) => write!(f, "connection closed: {e}"),
            Self::Closed(None) => f.write_str("connection closed"),
            Self::AuthRejected { result, message } => {
                write!(f, "authentication rejected (result {result}")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                f.write_str(")")
            }
            Self::AuthUnsupported { protocol } => write!(
                f,
                "the monitor requires authentication protocol {protocol} (only auth none is supported)"
            ),
            Self::Decode(e) => write!(f, "bad monitor payload: {e}"),
            Self::Queue(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for MonError {}

impl From<ConnectError> for MonError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::AuthFailed => Self::AuthRejected {
                result: 0,
                message: "authorizer rejected".to_owned(),
            },
            other => Self::Connect(other),
        }
    }
}

impl From<MonDecodeError> for MonError {
    fn from(e: MonDecodeError) -> Self {
        Self::Decode(e)
    }
}

impl From<QueueError> for MonError {
    fn from(e: QueueError) -> Self {
        Self::Queue(e)
    }
}

/// A request that needs an authenticated monitor session, kept until answered so it can
/// be sent again on a new session.
#[derive(Debug)]
struct Outstanding {
    handle: u64,
    id: MsgId,
    msg: Message,
}

/// A blocking monitor client (see the [module docs](super)).
///
/// With a lossless config, a fault makes the connection reconnect (the monitor runs client
/// sessions lossy, so the next connection is a new monitor session). The client then
/// authenticates again before anything else: it revokes the requests it still holds (they
/// are not on any transport during the backoff, so nothing is on the wire), queues a fresh
/// `MAuth` and queues the requests again behind it — the monitor drops requests from an
/// unauthenticated session.
#[derive(Debug)]
pub struct MonClient {
    conn: BlockingConnection,
    cfg: MonClientConfig,
    global_id: u64,
    auth: Option<AuthReply>,
    auth_error: Option<MonError>,
    authenticated: bool,
    sessions: u64,
    faults: u64,
    monmap: Option<MonMap>,
    monmaps_seen: u64,
    monmaps_returned: u64,
    next_handle: u64,
    outstanding: Vec<Outstanding>,
    versions: HashMap<u64, VersionReply>,
    subs: Vec<Subscription>,
    sub_id: Option<MsgId>,
    auth_id: Option<MsgId>,
    other: VecDeque<Received>,
}

impl MonClient {
    /// Connects to the monitor at `addr` (msgr v1 port) and runs the handshake; does not
    /// authenticate yet (see [`authenticate`](Self::authenticate)).
    pub fn connect(addr: SocketAddr, cfg: MonClientConfig) -> Result<Self, MonError> {
        let mut c = Config::client(EntityName::client(u64::MAX));
        c.features = cfg.features;
        c.lossy = cfg.lossy;
        c.nonce = cfg.nonce;
        c.protocol = cfg.protocol;
        c.handshake_timeout = Some(cfg.connect_timeout);
        c.backoff_initial = Duration::from_millis(50);
        c.backoff_max = Duration::from_secs(2);
        let conn = BlockingConnection::connect(c, addr, EntityType::Mon, cfg.connect_timeout)?;
        Ok(Self {
            conn,
            cfg,
            global_id: 0,
            auth: None,
            auth_error: None,
            authenticated: false,
            sessions: 0,
            faults: 0,
            monmap: None,
            monmaps_seen: 0,
            monmaps_returned: 0,
            next_handle: 1,
            outstanding: Vec::new(),
            versions: HashMap::new(),
            subs: Vec::new(),
            sub_id: None,
            auth_id: None,
            other: VecDeque::new(),
        })
    }

    /// Authenticates with auth none: sends the `MAuth` hello and waits for the reply. On
    /// success the connection's entity name becomes `client.<global_id>`. Over msgr2 the
    /// handshake already authenticated the session: this records the global id the
    /// monitor gave in AUTH_DONE.
    pub fn authenticate(&mut self, timeout: Duration) -> Result<&AuthReply, MonError> {
        self.authenticated = false;
        self.auth = None;
        if self.cfg.protocol == Protocol::V2 {
            self.wait_until(timeout, "the msgr2 session", |c| {
                (c.conn.connection().state() == State::Open).then_some(Ok(()))
            })?;
            self.adopt_v2_auth();
            return Ok(self.auth.as_ref().expect("set by adopt_v2_auth"));
        }
        let id = self.conn.send(self.hello())?;
        self.auth_id = Some(id);
        self.wait_until(timeout, "the MAuthReply", |c| {
            if let Some(e) = c.auth_error.take() {
                return Some(Err(e));
            }
            c.authenticated.then_some(Ok(()))
        })?;
        Ok(self.auth.as_ref().expect("authenticated implies a reply"))
    }

    fn hello(&self) -> Message {
        let epoch = self.monmap.as_ref().map_or(0, |m| m.epoch);
        auth_hello(&self.cfg.entity, self.global_id, epoch)
    }

    /// Subscribes to maps (`monmap`, `osdmap`, …); replaces the previous subscription set.
    pub fn subscribe(&mut self, subs: &[Subscription]) -> Result<(), MonError> {
        if let Some(id) = self.sub_id.take() {
            let _ = self.conn.revoke(id);
        }
        self.subs = subs.to_vec();
        self.sub_id = Some(self.conn.send(subscribe(&self.subs, &self.cfg.hostname))?);
        Ok(())
    }

    /// Waits for a monitor map newer than the ones already returned (the first call returns
    /// the first map received).
    pub fn wait_monmap(&mut self, timeout: Duration) -> Result<MonMap, MonError> {
        let m = self.wait_until(timeout, "the monitor map", |c| {
            (c.monmaps_seen > c.monmaps_returned)
                .then(|| c.monmap.clone().map(Ok))
                .flatten()
        })?;
        self.monmaps_returned = self.monmaps_seen;
        Ok(m)
    }

    /// Queues an `MMonGetVersion` for map `what`; returns its handle for
    /// [`wait_version`](Self::wait_version).
    pub fn send_get_version(&mut self, what: &str) -> Result<u64, MonError> {
        let handle = self.next_handle;
        self.next_handle += 1;
        let msg = get_version(handle, what);
        let id = self.conn.send(msg.clone())?;
        self.outstanding.push(Outstanding { handle, id, msg });
        Ok(handle)
    }

    /// Waits for the reply to the version request `handle`.
    pub fn wait_version(
        &mut self,
        handle: u64,
        timeout: Duration,
    ) -> Result<VersionReply, MonError> {
        self.wait_until(timeout, "the MMonGetVersionReply", |c| {
            c.versions.remove(&handle).map(Ok)
        })
    }

    /// Asks for the newest version of map `what` (`osdmap`, `monmap`, …).
    pub fn get_version(&mut self, what: &str, timeout: Duration) -> Result<VersionReply, MonError> {
        let h = self.send_get_version(what)?;
        self.wait_version(h, timeout)
    }

    /// A keepalive round trip; `None` if the monitor does not echo stamps.
    pub fn keepalive(&mut self, timeout: Duration) -> Result<Option<Duration>, MonError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .conn
                .keepalive(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(rtt) => return Ok(rtt),
                Err(WaitError::Timeout) => return Err(MonError::Timeout("the keepalive ack")),
                Err(WaitError::Closed(e)) => return Err(MonError::Closed(e)),
                Err(_) => {
                    // Not open (reconnecting): let the connection make progress.
                    self.wait_until(
                        deadline.saturating_duration_since(Instant::now()),
                        "the session to reopen",
                        |c| (c.conn.connection().state() == State::Open).then_some(Ok(())),
                    )?;
                }
            }
        }
    }

    /// Drives the connection for up to `timeout`, handling what arrives (maps, replies,
    /// reconnects).
    pub fn poll(&mut self, timeout: Duration) -> Result<(), MonError> {
        match self.wait_until(timeout, "nothing", |_| None::<Result<(), MonError>>) {
            Err(MonError::Timeout(_)) | Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Ends the session (sends CLOSE).
    pub fn close(&mut self, timeout: Duration) {
        let _ = self.conn.close(timeout);
    }

    /// The global id the monitor assigned (0 before authentication).
    #[must_use]
    pub fn global_id(&self) -> u64 {
        self.global_id
    }

    /// The last `MAuthReply`.
    #[must_use]
    pub fn auth_reply(&self) -> Option<&AuthReply> {
        self.auth.as_ref()
    }

    /// The newest monitor map received.
    #[must_use]
    pub fn monmap(&self) -> Option<&MonMap> {
        self.monmap.as_ref()
    }

    /// Monitor sessions authenticated so far (1 + re-authentications after reconnects).
    #[must_use]
    pub fn sessions(&self) -> u64 {
        self.sessions
    }

    /// Transport faults seen.
    #[must_use]
    pub fn faults(&self) -> u64 {
        self.faults
    }

    /// Takes the messages of types this client does not handle (MConfig, MOSDMap, …).
    pub fn take_other(&mut self) -> Vec<Received> {
        self.other.drain(..).collect()
    }

    /// The connection underneath (to send other messages, revoke, read stats).
    pub fn connection(&mut self) -> &mut BlockingConnection {
        &mut self.conn
    }

    /// Drives the connection until `check` yields a result, handling every event.
    fn wait_until<T>(
        &mut self,
        timeout: Duration,
        what: &'static str,
        mut check: impl FnMut(&mut Self) -> Option<Result<T, MonError>>,
    ) -> Result<T, MonError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = check(self) {
                return r;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(ev) = self.conn.recv(left) else {
                if self.conn.connection().state() == State::Closed {
                    return Err(MonError::Closed(None));
                }
                if Instant::now() >= deadline {
                    return Err(MonError::Timeout(what));
                }
                continue;
            };
            self.handle(ev)?;
        }
    }

    fn handle(&mut self, ev: Event) -> Result<(), MonError> {
        match ev {
            Event::Message(m) => self.on_message(m)?,
            Event::Opened { .. } if self.cfg.protocol == Protocol::V2 && self.sessions > 0 => {
                self.adopt_v2_auth();
            }
            Event::Fault { .. } => {
                self.faults += 1;
                if self.conn.connection().state() != State::Closed {
                    self.prepare_new_session()?;
                }
            }
            Event::Closed { error, .. } => return Err(MonError::Closed(error)),
            _ => {}
        }
        Ok(())
    }

    fn on_message(&mut self, m: Received) -> Result<(), MonError> {
        match m.header.ty {
            msg_type::AUTH_REPLY => {
                let r = AuthReply::from_message(&m)?;
                if r.result != 0 {
                    self.auth_error = Some(MonError::AuthRejected {
                        result: r.result,
                        message: r.message.clone(),
                    });
                } else if r.protocol != auth_proto::NONE {
                    self.auth_error = Some(MonError::AuthUnsupported {
                        protocol: r.protocol,
                    });
                } else {
                    self.global_id = r.global_id;
                    self.conn
                        .connection_mut()
                        .set_name(EntityName::client(r.global_id));
                    self.authenticated = true;
                    self.sessions += 1;
                    self.auth_id = None;
                }
                self.auth = Some(r);
            }
            msg_type::MON_MAP => {
                self.monmap = Some(MonMap::from_message_front(&m.front)?);
                self.monmaps_seen += 1;
            }
            msg_type::MON_GET_VERSION_REPLY => {
                let r = VersionReply::from_message(&m)?;
                self.outstanding.retain(|o| o.handle != r.handle);
                self.versions.insert(r.handle, r);
            }
            _ => {
                if self.other.len() == MAX_OTHER {
                    self.other.pop_front();
                }
                self.other.push_back(m);
            }
        }
        Ok(())
    }

    /// msgr2: the session the handshake opened is authenticated; record its global id.
    fn adopt_v2_auth(&mut self) {
        let global_id = self.conn.connection().global_id();
        self.global_id = global_id;
        self.authenticated = true;
        self.sessions += 1;
        self.auth = Some(AuthReply {
            protocol: auth_proto::NONE,
            result: 0,
            global_id,
            result_bl: bytes::Bytes::new(),
            message: String::new(),
        });
    }

    /// After a fault on a lossless connection: the monitor forgot the session, so the next
    /// one must authenticate first. Nothing is on a transport now (the connection waits
    /// out its backoff), so revoking the held requests puts no byte on the wire.
    fn prepare_new_session(&mut self) -> Result<(), MonError> {
        if self.sessions == 0 && self.auth_id.is_none() {
            return Ok(()); // never authenticated: nothing to redo
        }
        if self.cfg.protocol == Protocol::V2 {
            // The next handshake authenticates again; the held requests stay queued and
            // go out on the new session.
            self.authenticated = false;
            return Ok(());
        }
        self.authenticated = false;
        if let Some(id) = self.auth_id.take() {
            let _ = self.conn.revoke(id);
        }
        let sub_id = self.sub_id.take();
        if let Some(id) = sub_id {
            let _ = self.conn.revoke(id);
        }
        for o in &self.outstanding {
            let _ = self.conn.revoke(o.id);
        }
        self.auth_id = Some(self.conn.send(self.hello())?);
        if sub_id.is_some() && !self.subs.is_empty() {
            self.sub_id = Some(self.conn.send(subscribe(&self.subs, &self.cfg.hostname))?);
        }
        for o in &mut self.outstanding {
            o.id = self.conn.send(o.msg.clone())?;
        }
        Ok(())
    }
}
