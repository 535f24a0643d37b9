//! The session layer's public types: configuration, states, errors, events, counters.

use std::fmt;
use std::time::Duration;

use crate::recv::{Limits, Received, RecvError};
use crate::send::MsgId;
use crate::wire::handshake::{features as feat, ConnectMsg, EntityAddr};
use crate::wire::{DecodeError, EntityName, EntityType, MsgHeader};
use crate::Message;

#[allow(unused_imports)] // for intra-doc links
use super::Connection;

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
    /// Server: answer BADPROTOVER to a connect whose protocol version is not the one our
    /// entity type serves (15 for a mon, 24 for an OSD, 32 for an MDS), as Ceph does. A
    /// test peer may turn this off to accept any client.
    pub check_protocol_version: bool,
    /// Server: pause after the peer identified itself so the caller can attach the
    /// session it already holds for that peer ([`Event::PeerIdentified`]). Lossless
    /// servers need this to resume sessions across transports.
    pub sessions: bool,
    /// Bounds connecting plus the whole handshake, from [`Event::OpenTransport`] (client)
    /// or the first call after accept (server) until the session opens. A peer that
    /// accepts and never speaks, or stops mid-handshake, faults the transport with
    /// [`Error::Timeout`]`(`[`TimeoutKind::Handshake`]`)`. `None`: no bound.
    pub handshake_timeout: Option<Duration>,
    /// While open, a peer from which nothing at all (messages, acks, keepalive answers)
    /// arrives for this long faults the transport with
    /// [`Error::Timeout`]`(`[`TimeoutKind::PeerSilent`]`)`. Pair it with a shorter
    /// [`keepalive_interval`](Self::keepalive_interval) so a healthy idle peer keeps
    /// answering. `None` (the default): no bound.
    pub peer_timeout: Option<Duration>,
    /// Flow control: [`Connection::send`] refuses a message with
    /// [`QueueError::Full`](crate::QueueError::Full) while the messages held (queued,
    /// in flight or awaiting acknowledgement) carry this many payload bytes or would with
    /// it. A message is always accepted when nothing is held. `None`: no limit.
    pub max_queued_bytes: Option<u64>,
    /// Client: the protocol to speak (msgr v1 or msgr2.1 crc mode). Server: `V1` sends
    /// the v1 banner at once and speaks v1 only; `V2` waits for the client's banner and
    /// speaks whichever protocol it shows, so one listener serves both.
    pub protocol: crate::send::Protocol,
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
            check_protocol_version: true,
            sessions: false,
            handshake_timeout: Some(Duration::from_secs(30)),
            peer_timeout: None,
            max_queued_bytes: None,
            protocol: crate::send::Protocol::V1,
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

/// Which wait on the peer ran out, in [`Error::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Connecting and the handshake took longer than [`Config::handshake_timeout`].
    Handshake,
    /// An open session heard nothing from the peer for [`Config::peer_timeout`].
    PeerSilent,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Handshake => "the handshake did not finish in time",
            Self::PeerSilent => "the peer went silent",
        })
    }
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
    /// A wait on the peer ran out (injected time: see [`Config::handshake_timeout`] and
    /// [`Config::peer_timeout`]).
    Timeout(TimeoutKind),
    /// msgr2: the peer's banner is not a msgr2 banner we can speak with (a v1 peer, or
    /// missing / unsupported msgr2 features).
    Banner(crate::v2::frame::FrameError),
    /// msgr2: the stream broke framing or integrity (preamble or segment CRC, segment
    /// count, lengths past [`Config::limits`], unknown tag, bad late_status).
    Frame(crate::recv::v2::DeframeError),
    /// msgr2: a control frame's payload did not decode.
    Control(crate::v2::control::ControlError),
    /// msgr2: a frame that is not valid in the current state (e.g. a MESSAGE during the
    /// handshake, or SERVER_IDENT once open).
    UnexpectedFrame(crate::v2::frame::Tag),
    /// msgr2: the server refused our auth method (AUTH_BAD_METHOD).
    AuthMethodRefused {
        /// The method we asked for (1 none, 2 cephx).
        method: u32,
        /// The server's result (a negative errno).
        result: i32,
        /// Methods the server allows.
        allowed: Vec<u32>,
    },
    /// msgr2: the server picked a connection mode we did not offer (2 is secure mode).
    UnsupportedConMode(u32),
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
            Self::Timeout(k) => write!(f, "timeout: {k}"),
            Self::Banner(e) => write!(f, "msgr2 banner: {e}"),
            Self::Frame(e) => write!(f, "bad msgr2 frame: {e}"),
            Self::Control(e) => write!(f, "{e}"),
            Self::UnexpectedFrame(t) => write!(f, "unexpected {} frame", t.name()),
            Self::AuthMethodRefused {
                method,
                result,
                allowed,
            } => write!(
                f,
                "the server refused auth method {method} (result {result}); it allows {allowed:?}"
            ),
            Self::UnsupportedConMode(m) => write!(f, "the server chose connection mode {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Recv(e) => Some(e),
            Self::Handshake(e) => Some(e),
            Self::Banner(e) => Some(e),
            Self::Frame(e) => Some(e),
            Self::Control(e) => Some(e),
            _ => None,
        }
    }
}

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
    /// Server: a connect was refused with `reply_tag` (BADPROTOVER, FEATURES or
    /// BADAUTHORIZER). The peer may send another connect on this transport; most give up
    /// and close it. Ceph logs these at level 0.
    ConnectRefused {
        /// The reply tag sent.
        reply_tag: u8,
        /// Why, in words (the protocol numbers, the missing feature bits).
        reason: String,
    },
    /// A message arrived out of sequence and the session carried on. Either a duplicate
    /// (`seq` at or below the last one received, as when a peer resends after losing our
    /// ACK) was dropped, or a gap (`seq` beyond `expected`, accepted because
    /// [`Config::strict_seq`] is off, the userspace rule) was delivered; the
    /// [`Message`](Event::Message) event follows it. Ceph logs both at level 0.
    OutOfSequence {
        /// The message's seq.
        seq: u64,
        /// The seq that was due: the last one received plus one.
        expected: u64,
        /// Dropped as a duplicate; otherwise delivered after a gap.
        duplicate: bool,
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
    /// Messages delivered after a gap in seqs (accepted with `strict_seq` off).
    pub gaps_in: u64,
    /// Aborted messages received.
    pub aborted_in: u64,
    /// Incoming messages skipped with [`Connection::skip_incoming`].
    pub skipped_in: u64,
    /// Transport faults.
    pub faults: u64,
    /// Times the session opened (1 + reconnects).
    pub opens: u64,
    /// Keepalives sent.
    pub keepalives: u64,
    /// KEEPALIVE2s received from the peer (each one is answered with KEEPALIVE2_ACK).
    pub keepalives_answered: u64,
}
