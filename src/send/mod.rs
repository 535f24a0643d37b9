//! The send side: [`Messenger`] turns queued messages into the exact byte stream a peer
//! must see, and keeps that stream framed through revokes, acks and resets.
//!
//! # The accounting invariant
//!
//! **The bytes on the wire are exactly the bytes acknowledged with [`Messenger::advance`].**
//! Everything follows from counting only acknowledged bytes:
//!
//! * a message's seq is fixed when its first byte is acknowledged; revoking it before then
//!   removes it with zero bytes on the wire and no seq consumed;
//! * once its first byte is out, the rest of tag and header go out intact and every
//!   remaining front/middle/data/footer byte goes out as zeros, so the peer's framing holds
//!   and the footer's COMPLETE flag is clear (unless the flags byte was already out);
//! * `out_seq` is never rewound; a reset forgets owed zeros, because a new connection
//!   starts at a frame boundary.
//!
//! See `docs/accounting.md` for the byte diagrams.
#![forbid(unsafe_code)]

mod frame;
mod queue;

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, Write};

use frame::{Abort, BodyRef, OutFrame, TailRule};
pub use queue::MsgId;
use queue::{SendQueue, Stage};

use crate::message::Message;
use crate::v2::frame::{
    self as v2f, Epilogue, MsgHeader2, Preamble, Tag, CRC_LEN, LATE_STATUS_COMPLETE,
    MESSAGE_ALIGNMENTS, MESSAGE_HEAD_LEN, PREAMBLE_LEN,
};
use crate::wire::{
    ceph_crc32c, control::MAX_CONTROL_LEN, footer::MAX_FOOTER_LEN, tag, Control, EntityName,
    Footer, FooterKind, MsgHeader, FOOTER_COMPLETE, MSG_HEAD_LEN,
};
use bytes::Bytes;

/// At most this many frames are staged (described to the caller) at once.
const MAX_STAGED_FRAMES: usize = 64;
/// Staging stops once this many bytes are staged.
const MAX_STAGED_BYTES: u64 = 4 << 20;
/// Slices [`Messenger::write_to`] hands to one `write_vectored` call.
const WRITE_SLICES: usize = 64;

/// The wire protocol a [`Messenger`] frames messages for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// msgr v1 (`ceph v027`): tag, header, sections, footer.
    V1,
    /// msgr2.1 in crc mode (`ceph v2`): preamble, header2, segments, epilogue.
    #[default]
    V2,
}

impl Protocol {
    /// `"v1"` or `"v2"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "v1" | "1" => Ok(Self::V1),
            "v2" | "2" => Ok(Self::V2),
            _ => Err(format!("unknown protocol `{s}` (expected v1 or v2)")),
        }
    }
}

/// What [`Messenger::revoke`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Revoked {
    /// No byte of the message was on the current connection: it was removed and costs
    /// zero bytes. `seq` is its seq if it had been started on an earlier connection (the
    /// peer may have received it then); a message never started consumed no seq.
    Removed {
        /// Seq from an earlier connection, if any.
        seq: Option<u64>,
    },
    /// The message was partly written: `head_left` more bytes of tag and header still go
    /// out intact, then `zeros` zero bytes (the rest of front, middle, data and footer).
    Aborted {
        /// The seq the peer sees in the header.
        seq: u64,
        /// Tag and header bytes still to go out.
        head_left: u64,
        /// Zero bytes still owed.
        zeros: u64,
    },
    /// msgr2 only: the frame had gone too far to abort (it has no epilogue, or its epilogue
    /// had started), so its remaining `left` bytes go out unchanged and the peer will
    /// deliver the message. It is never resent.
    Completing {
        /// Its seq.
        seq: u64,
        /// Bytes of the frame still to go out.
        left: u64,
    },
    /// Every byte had already been written; the message was dropped from the resend list
    /// (it will not be sent again after a reset). The peer has probably received it.
    Dropped {
        /// Its seq.
        seq: u64,
    },
    /// No such message: never queued here, already revoked, or already acknowledged.
    Unknown,
}

/// Where a message stands, as reported by [`Messenger::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgStatus {
    /// Waiting; no byte on the current connection. `seq` is set if it was started on an
    /// earlier connection and will be resent with it.
    Queued {
        /// Seq from an earlier connection.
        seq: Option<u64>,
    },
    /// Partly written on the current connection.
    Sending {
        /// Its seq.
        seq: u64,
        /// Bytes of its frame written so far.
        written: u64,
        /// Total length of its frame.
        len: u64,
    },
    /// Fully written, awaiting acknowledgement (resent after a reset unless acknowledged).
    Written {
        /// Its seq.
        seq: u64,
    },
    /// Not held any more: acknowledged, revoked, or never queued.
    Gone,
}

/// [`Messenger::queue`] refused a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueError {
    /// A section is longer than the 32-bit length field of the header allows.
    SectionTooLong {
        /// `front`, `middle` or `data`.
        section: &'static str,
        /// Its length.
        len: u64,
    },
    /// The connection has ended.
    Closed,
    /// Flow control: the messages held (queued or unacknowledged) already carry `held`
    /// payload bytes, and this one would take them past `limit`
    /// ([`Config::max_queued_bytes`](crate::Config::max_queued_bytes)). Wait for
    /// acknowledgements ([`Event::Acked`](crate::Event::Acked)) and try again; a message
    /// larger than the limit is accepted when nothing else is held.
    Full {
        /// Payload bytes held now.
        held: u64,
        /// The limit.
        limit: u64,
    },
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("the connection is closed"),
            Self::Full { held, limit } => write!(
                f,
                "send queue full: {held} payload bytes held, the limit is {limit}"
            ),
            Self::SectionTooLong { section, len } => write!(
                f,
                "message {section} section is {len} bytes; the header allows at most {}",
                u32::MAX
            ),
        }
    }
}

impl std::error::Error for QueueError {}

/// [`Messenger::advance`] was told more bytes were written than were offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvanceError {
    /// Bytes offered by the last [`Messenger::poll_transmit`] and not yet acknowledged
    /// (0 if a revoke, ack or reset has since voided the offer).
    pub offered: u64,
    /// Bytes the caller claimed.
    pub advanced: u64,
}

impl fmt::Display for AdvanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "advance({}) exceeds the {} bytes offered by the last poll_transmit",
            self.advanced, self.offered
        )
    }
}

impl std::error::Error for AdvanceError {}

/// A frame described to the caller on the current connection.
struct Staged {
    kind: Kind,
    /// The seq in the frame's header (provisional until its first byte is written; 0 for
    /// control records).
    seq: u64,
    frame: OutFrame,
}

/// What a staged frame carries.
enum Kind {
    /// A queued message (its body lives in the queue entry until the frame is aborted).
    Msg(MsgId),
    /// Connection-level bytes: handshake records, ACK, keepalives, CLOSE. The head holds
    /// short records; longer ones are the body.
    Raw {
        body: Bytes,
        /// This is an ACK whose value may still be raised (not started).
        ack: bool,
    },
}

impl Staged {
    fn msg_id(&self) -> Option<MsgId> {
        match self.kind {
            Kind::Msg(id) => Some(id),
            Kind::Raw { .. } => None,
        }
    }
}

/// One frame offered by a [`Transmit`], as listed by [`Transmit::frames`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// The message, or `None` for connection-level bytes (handshake, ACK, keepalive).
    pub id: Option<MsgId>,
    /// The seq its header carries: fixed once its first byte is written.
    pub seq: u64,
    /// Bytes of its frame still to go out.
    pub remaining: u64,
}

/// The send side of a msgr v1 session, as a pure state machine.
///
/// Feed it events — [`queue`](Self::queue), [`revoke`](Self::revoke),
/// [`on_ack`](Self::on_ack), [`reset`](Self::reset) — and move bytes with
/// [`poll_transmit`](Self::poll_transmit) + [`advance`](Self::advance) (or
/// [`write_to`](Self::write_to)). It owns no socket and reads no clock.
///
/// # Contract
/// 1. Call [`poll_transmit`](Self::poll_transmit), give some prefix of its slices to the
///    socket, and report the count the socket accepted with
///    [`advance`](Self::advance) **before any other call that changes the messenger**
///    (`queue` is the exception: it only appends). A revoke, ack or reset voids the offer;
///    an `advance` of more than was offered is refused with [`AdvanceError`].
/// 2. After the transport fails, call [`reset`](Self::reset) before offering bytes on the
///    next connection.
///
/// ```
/// use bytes::Bytes;
/// use ceph_msgr::{EntityName, Message, Messenger, Revoked};
///
/// let mut m = Messenger::new(EntityName::client(4242), ceph_msgr::wire::feature::MSG_AUTH);
/// let a = m.queue(Message::new(42).with_front(Bytes::from_static(b"hello"))).unwrap();
/// let b = m.queue(Message::new(42).with_data_chunk(Bytes::from(vec![7u8; 1000]))).unwrap();
///
/// let mut wire = Vec::new();
/// m.write_to(&mut wire).unwrap(); // a Vec accepts everything: both messages go out
/// assert_eq!(wire.len(), (54 + 5 + 21) + (54 + 1000 + 21));
/// assert_eq!(m.revoke(b), Revoked::Dropped { seq: 2 });
///
/// // A message none of whose bytes was written costs nothing.
/// let c = m.queue(Message::new(42)).unwrap();
/// assert_eq!(m.revoke(c), Revoked::Removed { seq: None });
/// m.on_ack(1);
/// assert_eq!(m.revoke(a), Revoked::Unknown);
/// ```
pub struct Messenger {
    src: EntityName,
    protocol: Protocol,
    /// v1 footer layout (from the peer's features); unused by v2.
    footer: FooterKind,
    /// v2: the ack_seq piggybacked in each header2 (the caller's in_seq at staging time).
    ack_seq: u64,
    queue: SendQueue,
    /// Frames described to the caller, in wire order. Only the front may be started;
    /// an aborted frame has no queue entry any more.
    staged: VecDeque<Staged>,
    /// Ids below this have been staged on the current connection (or are gone).
    /// Invariant: every live entry with id ≥ `next_stage` is `Stage::Queued`.
    next_stage: u64,
    /// Sum of `remaining()` over `staged`.
    staged_bytes: u64,
    /// Staged frames whose entry has no seq yet (their header carries a provisional one).
    staged_unseq: u64,
    /// Highest seq handed out. Never decreases.
    out_seq: u64,
    /// Highest seq the peer acknowledged.
    acked: u64,
    /// Bytes of the current offer not yet acknowledged; 0 when voided.
    offered: u64,
    /// Connections so far: 0 until the first reset.
    connection: u64,
    /// While set, messages are not staged (the connection is not open); raw frames are.
    hold: bool,
}

impl fmt::Debug for Messenger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Messenger")
            .field("src", &self.src)
            .field("protocol", &self.protocol)
            .field("footer", &self.footer)
            .field("queued", &self.queue.len())
            .field("staged", &self.staged.len())
            .field("out_seq", &self.out_seq)
            .field("acked", &self.acked)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

impl Messenger {
    /// A msgr v1 messenger sending as `src` to a peer with the given feature bits (they
    /// pick the footer layout: 21 bytes with MSG_AUTH, 13 without).
    #[must_use]
    pub fn new(src: EntityName, peer_features: u64) -> Self {
        Self::with_protocol(Protocol::V1, src, peer_features)
    }

    /// A messenger framing for `protocol`. `src` and `peer_features` matter to msgr v1
    /// only (msgr2's header2 carries no source entity and has one layout).
    #[must_use]
    pub fn with_protocol(protocol: Protocol, src: EntityName, peer_features: u64) -> Self {
        Self {
            src,
            protocol,
            footer: FooterKind::for_features(peer_features),
            ack_seq: 0,
            queue: SendQueue::default(),
            staged: VecDeque::new(),
            next_stage: 0,
            staged_bytes: 0,
            staged_unseq: 0,
            out_seq: 0,
            acked: 0,
            offered: 0,
            connection: 0,
            hold: false,
        }
    }

    /// The source entity written into every header.
    #[must_use]
    pub fn src(&self) -> EntityName {
        self.src
    }

    /// Changes the source entity (e.g. once a mon assigned a global id). Frames not yet
    /// started are re-encoded; the frame in flight keeps the old value.
    pub fn set_src(&mut self, src: EntityName) {
        self.src = src;
        self.unstage_unstarted();
    }

    /// Sets the peer's feature bits, negotiated anew on every connection. Frames not yet
    /// started are re-encoded with the matching footer; the frame in flight keeps its own.
    pub fn set_peer_features(&mut self, features: u64) {
        self.footer = FooterKind::for_features(features);
        self.unstage_unstarted();
    }

    /// The footer layout msgr v1 frames use.
    #[must_use]
    pub fn footer_kind(&self) -> FooterKind {
        self.footer
    }

    /// The protocol frames are encoded for.
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Switches the framing protocol (a server learns it from the peer's banner). Frames
    /// not yet started are re-encoded; the frame in flight keeps its own.
    pub fn set_protocol(&mut self, protocol: Protocol) {
        if protocol != self.protocol {
            self.protocol = protocol;
            self.queue.clear_crcs();
            self.unstage_unstarted();
        }
    }

    /// msgr2: the ack_seq piggybacked in the header2 of frames staged from now on (the
    /// receiver's in_seq). Frames already staged keep the value they were encoded with;
    /// explicit ACK frames ([`push_ack`](Self::push_ack)) carry the latest.
    pub fn set_piggyback_ack(&mut self, seq: u64) {
        self.ack_seq = seq;
    }

    /// Wire length of `msg`'s frame under the current protocol (and footer layout).
    #[must_use]
    pub fn frame_len(&self, msg: &Message) -> u64 {
        match self.protocol {
            Protocol::V1 => {
                MSG_HEAD_LEN as u64 + msg.payload_len() + self.footer.encoded_len() as u64
            }
            Protocol::V2 => {
                let p = v2_preamble(msg);
                let tail = if p.has_epilogue() {
                    v2f::EPILOGUE_LEN
                } else {
                    0
                };
                (MESSAGE_HEAD_LEN + tail) as u64 + msg.payload_len()
            }
        }
    }

    /// The highest seq handed out so far (0 before the first message starts).
    #[must_use]
    pub fn out_seq(&self) -> u64 {
        self.out_seq
    }

    /// The highest seq the peer has acknowledged.
    #[must_use]
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// How many connections have ended with [`reset`](Self::reset).
    #[must_use]
    pub fn resets(&self) -> u64 {
        self.connection
    }

    /// Messages held: queued, in flight or awaiting acknowledgement.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Payload bytes (front + middle + data) of the messages held: queued, in flight or
    /// awaiting acknowledgement. This is what flow control counts.
    #[must_use]
    pub fn held_bytes(&self) -> u64 {
        self.queue.bytes()
    }

    /// Whether no message is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queue.len() == 0
    }

    /// Whether there are bytes to write on the current connection.
    #[must_use]
    pub fn wants_write(&self) -> bool {
        self.staged_bytes > 0 || (!self.hold && self.queue.next_live(self.next_stage).is_some())
    }

    /// Queues a message at the end of the send order.
    pub fn queue(&mut self, msg: Message) -> Result<MsgId, QueueError> {
        for (section, len) in [
            ("front", msg.front.len() as u64),
            ("middle", msg.middle.len() as u64),
            ("data", msg.data_len()),
        ] {
            if len > u64::from(u32::MAX) {
                return Err(QueueError::SectionTooLong { section, len });
            }
        }
        Ok(self.queue.push(msg))
    }

    /// Where a message stands.
    #[must_use]
    pub fn status(&self, id: MsgId) -> MsgStatus {
        let Some(e) = self.queue.get(id.0) else {
            return MsgStatus::Gone;
        };
        match (e.stage, e.seq) {
            (Stage::Queued | Stage::Staged, seq) => MsgStatus::Queued { seq },
            (Stage::Started, Some(seq)) => {
                let f = &self.staged[0].frame;
                MsgStatus::Sending {
                    seq,
                    written: f.len() - f.remaining(),
                    len: f.len(),
                }
            }
            (Stage::Written, Some(seq)) => MsgStatus::Written { seq },
            // Started and written entries always have a seq.
            (_, None) => MsgStatus::Queued { seq: None },
        }
    }

    /// Revokes a message. Whatever its state, the stream stays framed: see [`Revoked`].
    pub fn revoke(&mut self, id: MsgId) -> Revoked {
        let Some(e) = self.queue.get(id.0) else {
            return Revoked::Unknown;
        };
        let (stage, seq) = (e.stage, e.seq);
        self.offered = 0;
        match stage {
            Stage::Queued => {
                self.queue.remove(id.0);
                Revoked::Removed { seq }
            }
            Stage::Staged => {
                if let Some(pos) = self.staged.iter().position(|s| s.msg_id() == Some(id)) {
                    self.unstage_from(pos);
                }
                self.queue.remove(id.0);
                Revoked::Removed { seq }
            }
            Stage::Started => {
                let Some(e) = self.queue.remove(id.0) else {
                    return Revoked::Unknown; // unreachable: `get` found it
                };
                let body = BodyRef {
                    sections: [&e.msg.front, &e.msg.middle],
                    chunks: &e.msg.data,
                };
                let seq = seq.unwrap_or(0);
                match self.staged[0].frame.abort(body) {
                    Abort::Aborted(owed) => Revoked::Aborted {
                        seq,
                        head_left: owed.head_left,
                        zeros: owed.zeros,
                    },
                    Abort::Completing { left } => Revoked::Completing { seq, left },
                }
            }
            Stage::Written => {
                self.queue.remove(id.0);
                Revoked::Dropped {
                    seq: seq.unwrap_or(0),
                }
            }
        }
    }

    /// The peer acknowledged every seq up to and including `seq`: those messages leave the
    /// resend list. The message in flight, if covered, still goes out in full (the stream
    /// must stay framed) and is then dropped.
    pub fn on_ack(&mut self, seq: u64) {
        self.acked = self.acked.max(seq);
        let mut id = self.queue.base_id();
        while let Some(next) = self.queue.next_live(id) {
            id = next + 1;
            let e = self.queue.get(next).expect("next_live returns live ids");
            match e.seq {
                Some(s) if s <= self.acked => {}
                _ => break, // seqs increase along the queue; the rest is newer
            }
            match e.stage {
                Stage::Started => continue,
                Stage::Staged => {
                    if let Some(pos) = self
                        .staged
                        .iter()
                        .position(|s| s.msg_id() == Some(MsgId(next)))
                    {
                        self.offered = 0;
                        self.unstage_from(pos);
                    }
                }
                Stage::Queued | Stage::Written => {}
            }
            self.queue.remove(next);
        }
    }

    /// The transport failed. Owed bytes (including zeros of an aborted message) are
    /// forgotten; every unacknowledged message that has a seq is requeued ahead of the
    /// unstarted ones, to be resent with its original seq on the next connection.
    pub fn reset(&mut self) {
        self.clear_staged();
        self.connection += 1;
        let ids: Vec<u64> = self.queue.live_ids_before(self.next_stage).collect();
        for id in ids {
            let Some(e) = self.queue.get_mut(id) else {
                continue;
            };
            if e.seq.is_some_and(|s| s <= self.acked) {
                self.queue.remove(id);
            } else {
                e.stage = Stage::Queued;
            }
        }
        self.next_stage = self.queue.base_id();
    }

    /// Describes the next bytes to write. Give some prefix of them to the socket, then
    /// report how many it accepted with [`advance`](Self::advance).
    pub fn poll_transmit(&mut self) -> Transmit<'_> {
        self.stage_more();
        self.offered = self.staged_bytes;
        Transmit { m: self }
    }

    /// Acknowledges `n` bytes of the last offer as written to the socket.
    pub fn advance(&mut self, n: usize) -> Result<(), AdvanceError> {
        let mut n = n as u64;
        if n > self.offered {
            return Err(AdvanceError {
                offered: self.offered,
                advanced: n,
            });
        }
        self.offered -= n;
        while n > 0 {
            let Some(front) = self.staged.front_mut() else {
                break; // unreachable: offered never exceeds staged_bytes
            };
            if let (false, Some(id)) = (front.frame.started(), front.msg_id()) {
                if let Some(e) = self.queue.get_mut(id.0) {
                    if e.seq.is_none() {
                        self.out_seq += 1;
                        e.seq = Some(self.out_seq);
                        self.staged_unseq -= 1;
                    }
                    e.stage = Stage::Started;
                }
            }
            let body = match &front.kind {
                _ if front.frame.is_aborted() => None,
                Kind::Raw { body, .. } => Some(BodyRef {
                    sections: [body, &[]],
                    chunks: &[],
                }),
                Kind::Msg(id) => self.queue.get(id.0).map(|e| BodyRef {
                    sections: [&e.msg.front, &e.msg.middle],
                    chunks: &e.msg.data,
                }),
            };
            let took = front.frame.advance(n, body);
            n -= took;
            self.staged_bytes -= took;
            if front.frame.remaining() == 0 {
                let done = self.staged.pop_front().expect("front exists");
                if let (false, Some(id)) = (done.frame.is_aborted(), done.msg_id()) {
                    self.finish(id);
                }
            }
        }
        Ok(())
    }

    /// Convenience for blocking writers: one `poll_transmit`, one `write_vectored`, one
    /// `advance`. Returns the bytes written (0 when there is nothing to write).
    pub fn write_to<W: Write + ?Sized>(&mut self, w: &mut W) -> io::Result<usize> {
        let t = self.poll_transmit();
        if t.is_empty() {
            return Ok(0);
        }
        let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
        let k = t.fill(&mut slices);
        let n = w.write_vectored(&slices[..k])?;
        self.advance(n)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(n)
    }

    /// While `hold` is set no message is offered (the connection is not open); bytes pushed
    /// with [`push_raw`](Self::push_raw) still are. Setting it withdraws message frames
    /// that were offered but not started.
    pub fn set_hold(&mut self, hold: bool) {
        self.hold = hold;
        if hold {
            self.unstage_unstarted();
        }
    }

    /// Whether messages are held back.
    #[must_use]
    pub fn is_held(&self) -> bool {
        self.hold
    }

    /// Queues connection-level bytes (a handshake record, a keepalive, CLOSE) at the next
    /// frame boundary: after the frame being written and any bytes pushed before, ahead of
    /// every message not yet started. Voids the current offer.
    pub fn push_raw(&mut self, bytes: Bytes) {
        self.insert_raw(OutFrame::new(&[], bytes.len() as u64, &[]), bytes, false);
    }

    /// Queues a control record (encoded inline, no allocation) like [`push_raw`](Self::push_raw).
    /// Under msgr2 the record becomes the matching frame (ACK, KEEPALIVE2,
    /// KEEPALIVE2_ACK); v1's KEEPALIVE and CLOSE have no msgr2 frame and are not sent.
    pub fn push_control(&mut self, c: Control) {
        let mut b = [0u8; CONTROL_FRAME_CAP];
        let n = self.encode_control(c, &mut b);
        if n > 0 {
            self.insert_raw(OutFrame::new(&b[..n], 0, &[]), Bytes::new(), false);
        }
    }

    /// Encodes a control record for the current protocol; 0 when it has no encoding.
    fn encode_control(&self, c: Control, out: &mut [u8; CONTROL_FRAME_CAP]) -> usize {
        match self.protocol {
            Protocol::V1 => {
                let mut b = [0u8; MAX_CONTROL_LEN];
                let n = c.encode(&mut b);
                out[..n].copy_from_slice(&b[..n]);
                n
            }
            Protocol::V2 => {
                let (tag, payload) = match c {
                    Control::Ack(seq) => (Tag::Ack, seq.to_le_bytes()),
                    Control::Keepalive2(ts) => (Tag::Keepalive2, stamp(ts)),
                    Control::Keepalive2Ack(ts) => (Tag::Keepalive2Ack, stamp(ts)),
                    Control::Keepalive | Control::Close => return 0,
                };
                let p = Preamble::for_segments(tag, [8, 0, 0, 0], [v2f::DEFAULT_ALIGNMENT; 4]);
                out[..PREAMBLE_LEN].copy_from_slice(&p.encode());
                out[PREAMBLE_LEN..PREAMBLE_LEN + 8].copy_from_slice(&payload);
                let crc = v2f::segment_crc(&payload);
                out[PREAMBLE_LEN + 8..V2_CONTROL_LEN].copy_from_slice(&crc.to_le_bytes());
                V2_CONTROL_LEN
            }
        }
    }

    /// Acknowledges every incoming seq up to `seq` to the peer: an ACK record at the next
    /// frame boundary, or, if one is already waiting there unstarted, that record raised
    /// to `seq` (acks are cumulative, so one is enough).
    pub fn push_ack(&mut self, seq: u64) {
        let mut b = [0u8; CONTROL_FRAME_CAP];
        let n = self.encode_control(Control::Ack(seq), &mut b);
        if let Some(s) = self
            .staged
            .iter_mut()
            .find(|s| matches!(s.kind, Kind::Raw { ack: true, .. }) && !s.frame.started())
        {
            s.frame = OutFrame::new(&b[..n], 0, &[]);
            self.offered = 0;
            return;
        }
        self.insert_raw(OutFrame::new(&b[..n], 0, &[]), Bytes::new(), true);
    }

    fn insert_raw(&mut self, frame: OutFrame, body: Bytes, ack: bool) {
        let mut pos = usize::from(self.staged.front().is_some_and(|s| s.frame.started()));
        while self
            .staged
            .get(pos)
            .is_some_and(|s| matches!(s.kind, Kind::Raw { .. }))
        {
            pos += 1;
        }
        self.staged_bytes += frame.remaining();
        self.offered = 0;
        self.staged.insert(
            pos,
            Staged {
                kind: Kind::Raw { body, ack },
                seq: 0,
                frame,
            },
        );
    }

    /// Removes every message and returns them in queue order (for a lossy connection that
    /// closed, or a session reset). With `session` set, `out_seq` and the ack state start
    /// over (a new session); otherwise they are kept.
    pub fn drain(&mut self, session: bool) -> Vec<(MsgId, Message)> {
        self.clear_staged();
        let mut out = Vec::with_capacity(self.queue.len());
        while let Some(id) = self.queue.next_live(self.queue.base_id()) {
            if let Some(e) = self.queue.remove(id) {
                out.push((MsgId(id), e.msg));
            }
        }
        self.next_stage = self.queue.base_id();
        if session {
            self.out_seq = 0;
            self.acked = 0;
        }
        out
    }

    /// Starts a new session on the next connection while keeping every message: for a
    /// lossless sender whose peer forgot the session (a lossy server, or RESETSESSION when
    /// the caller wants to resend). Owed bytes are forgotten, `out_seq` and the ack state
    /// start over, and every held message — including ones written but unacknowledged —
    /// goes out again in queue order with a fresh seq. Delivery becomes at-least-once for
    /// the messages the old session had written.
    pub fn restart_session(&mut self) {
        self.reset();
        let ids: Vec<u64> = self.queue.live_ids_before(u64::MAX).collect();
        for id in ids {
            if let Some(e) = self.queue.get_mut(id) {
                e.seq = None;
            }
        }
        self.out_seq = 0;
        self.acked = 0;
    }

    /// Releases spare capacity kept from earlier bursts (for connections going idle; the
    /// next burst allocates again).
    pub fn shrink_to_fit(&mut self) {
        self.staged.shrink_to_fit();
        self.queue.shrink_to_fit();
    }

    /// Forgets every staged frame (and so any owed bytes) and the current offer.
    fn clear_staged(&mut self) {
        self.staged.clear();
        self.staged_bytes = 0;
        self.staged_unseq = 0;
        self.offered = 0;
    }

    /// A frame's last byte was acknowledged.
    fn finish(&mut self, id: MsgId) {
        let acked = self.acked;
        if let Some(e) = self.queue.get_mut(id.0) {
            if e.seq.is_some_and(|s| s <= acked) {
                self.queue.remove(id.0);
            } else {
                e.stage = Stage::Written;
            }
        }
    }

    /// Stages frames until the batch limits are reached or nothing is left.
    fn stage_more(&mut self) {
        while !self.hold
            && self.staged.len() < MAX_STAGED_FRAMES
            && self.staged_bytes < MAX_STAGED_BYTES
        {
            let Some(id) = self.queue.next_live(self.next_stage) else {
                break;
            };
            self.next_stage = id + 1;
            let provisional = self.out_seq + self.staged_unseq + 1;
            let (src, footer, ack_seq) = (self.src, self.footer, self.ack_seq);
            let protocol = self.protocol;
            let e = self.queue.get_mut(id).expect("next_live returns live ids");
            let seq = match e.seq {
                Some(s) => s,
                None => {
                    self.staged_unseq += 1;
                    provisional
                }
            };
            e.stage = Stage::Staged;
            let frame = match protocol {
                Protocol::V1 => encode_v1_frame(e, seq, src, footer),
                Protocol::V2 => encode_v2_frame(e, seq, ack_seq),
            };
            self.staged_bytes += frame.remaining();
            self.staged.push_back(Staged {
                kind: Kind::Msg(MsgId(id)),
                seq,
                frame,
            });
        }
    }

    /// Drops staged frames from `pos` on (none of them started); their messages go back to
    /// `Queued` and will be staged again with fresh provisional seqs.
    fn unstage_from(&mut self, pos: usize) {
        // Raw frames sit right after the started frame, before every unstarted message
        // frame, so from the first unstarted message frame on everything is a message.
        let Some(pos) = (pos..self.staged.len()).find(|&i| self.staged[i].msg_id().is_some())
        else {
            return;
        };
        let first = &self.staged[pos];
        debug_assert!(!first.frame.started());
        self.next_stage = first.msg_id().map_or(self.next_stage, |id| id.0);
        for s in self.staged.drain(pos..) {
            self.staged_bytes -= s.frame.remaining();
            let Some(id) = s.msg_id() else { continue };
            if let Some(e) = self.queue.get_mut(id.0) {
                if e.seq.is_none() {
                    self.staged_unseq -= 1;
                }
                e.stage = Stage::Queued;
            }
        }
    }

    fn unstage_unstarted(&mut self) {
        let pos = self
            .staged
            .iter()
            .position(|s| !s.frame.started())
            .unwrap_or(self.staged.len());
        self.offered = 0;
        self.unstage_from(pos);
    }
}

/// Encodes tag, header and footer of a v1 message frame. Payload CRCs are computed once
/// per message and cached in the entry.
fn encode_v1_frame(
    e: &mut queue::Entry,
    seq: u64,
    src: EntityName,
    footer: FooterKind,
) -> OutFrame {
    let m = &e.msg;
    let [front_crc, middle_crc, data_crc] = *e.crcs.get_or_insert_with(|| {
        let data = m.data.iter().fold(0, |c, chunk| ceph_crc32c(c, chunk));
        [ceph_crc32c(0, &m.front), ceph_crc32c(0, &m.middle), data]
    });
    let hdr = MsgHeader {
        seq,
        tid: m.tid,
        ty: m.ty,
        priority: m.priority,
        version: m.version,
        front_len: m.front.len() as u32,
        middle_len: m.middle.len() as u32,
        data_len: m.data_len() as u32,
        data_off: m.data_off,
        src,
        compat_version: m.compat_version,
    };
    let mut head = [0u8; MSG_HEAD_LEN];
    head[0] = tag::MSG;
    head[1..].copy_from_slice(&hdr.encode());
    let mut tail = [0u8; MAX_FOOTER_LEN];
    let tail_len = Footer {
        front_crc,
        middle_crc,
        data_crc,
        sig: 0,
        flags: FOOTER_COMPLETE,
    }
    .encode(footer, &mut tail);
    OutFrame::new(&head, hdr.payload_len(), &tail[..tail_len])
}

/// Room for any control record: a v1 record (9 bytes) or a msgr2 ACK / KEEPALIVE2 frame.
const CONTROL_FRAME_CAP: usize = V2_CONTROL_LEN;
/// A msgr2 control frame with an 8-byte payload: preamble, payload, payload CRC.
const V2_CONTROL_LEN: usize = PREAMBLE_LEN + 8 + CRC_LEN;

fn stamp(ts: crate::wire::Timespec) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&ts.sec.to_le_bytes());
    b[4..].copy_from_slice(&ts.nsec.to_le_bytes());
    b
}

/// The preamble of `msg`'s MESSAGE frame: segments header2, front, middle, data.
fn v2_preamble(msg: &Message) -> Preamble {
    // Section lengths were checked against u32 by `queue`.
    let len = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    Preamble::for_segments(
        Tag::Message,
        [
            v2f::HEADER2_LEN as u32,
            len(msg.front.len() as u64),
            len(msg.middle.len() as u64),
            len(msg.data_len()),
        ],
        MESSAGE_ALIGNMENTS,
    )
}

/// Encodes the head (preamble, header2, its CRC) and epilogue of a msgr2 crc-mode MESSAGE
/// frame. Segment CRCs are computed once per message and cached in the entry.
fn encode_v2_frame(e: &mut queue::Entry, seq: u64, ack_seq: u64) -> OutFrame {
    let m = &e.msg;
    let crcs = *e.crcs.get_or_insert_with(|| {
        let seed = v2f::SEGMENT_CRC_SEED;
        let data = m.data.iter().fold(seed, |c, chunk| ceph_crc32c(c, chunk));
        [
            ceph_crc32c(seed, &m.front),
            ceph_crc32c(seed, &m.middle),
            data,
        ]
    });
    let p = v2_preamble(m);
    let hdr = MsgHeader2 {
        seq,
        tid: m.tid,
        ty: m.ty,
        priority: m.priority,
        version: m.version,
        data_pre_padding_len: 0,
        data_off: m.data_off,
        ack_seq,
        flags: 0,
        compat_version: m.compat_version,
        reserved: 0,
    }
    .encode();
    let mut head = [0u8; MESSAGE_HEAD_LEN];
    head[..PREAMBLE_LEN].copy_from_slice(&p.encode());
    head[PREAMBLE_LEN..PREAMBLE_LEN + hdr.len()].copy_from_slice(&hdr);
    head[PREAMBLE_LEN + hdr.len()..].copy_from_slice(&v2f::segment_crc(&hdr).to_le_bytes());
    let mut used = [0u32; 3];
    for (i, c) in used.iter_mut().enumerate().take(p.nseg() - 1) {
        *c = crcs[i];
    }
    let epilogue = Epilogue {
        late_status: LATE_STATUS_COMPLETE,
        crcs: used,
    }
    .encode();
    let tail: &[u8] = if p.has_epilogue() { &epilogue } else { &[] };
    OutFrame::with_rule(
        &head,
        m.payload_len(),
        tail,
        TailRule::V2Epilogue { nseg: p.nseg },
    )
}

/// The bytes a [`Messenger`] offers for writing, borrowed from it until the next call.
#[must_use = "hand the slices to the socket, then call Messenger::advance"]
pub struct Transmit<'a> {
    m: &'a Messenger,
}

impl<'a> Transmit<'a> {
    /// Total bytes offered (all of them may be accepted by one `advance`).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.m.staged_bytes
    }

    /// Whether nothing is offered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.m.staged_bytes == 0
    }

    /// Fills `out` with the offered bytes in wire order, as many slices as fit; returns the
    /// number of slices filled. The slices point into the caller's payload (`Bytes`), the
    /// messenger's encoded heads and tails, and a static buffer of zeros.
    pub fn fill(&self, out: &mut [IoSlice<'a>]) -> usize {
        let mut used = 0;
        for s in &self.m.staged {
            let body = match &s.kind {
                _ if s.frame.is_aborted() => BodyRef {
                    sections: [&[], &[]],
                    chunks: &[],
                },
                Kind::Raw { body, .. } => BodyRef {
                    sections: [body, &[]],
                    chunks: &[],
                },
                Kind::Msg(id) => match self.m.queue.get(id.0) {
                    Some(e) => BodyRef {
                        sections: [&e.msg.front, &e.msg.middle],
                        chunks: &e.msg.data,
                    },
                    None => break, // unreachable: a live frame always has its entry
                },
            };
            let (n, _, whole) = s.frame.fill(body, &mut out[used..]);
            used += n;
            if !whole {
                break;
            }
        }
        used
    }

    /// The offered frames in wire order (an aborted message stays listed until its zeros
    /// are written).
    pub fn frames(&self) -> impl Iterator<Item = FrameInfo> + 'a {
        self.m.staged.iter().map(|s| FrameInfo {
            id: s.msg_id(),
            seq: s.seq,
            remaining: s.frame.remaining(),
        })
    }

    /// Copies every offered byte into `out` (for tests and tools; the hot path uses
    /// [`fill`](Self::fill)).
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        let mut slices = vec![IoSlice::new(&[]); 4 * MAX_STAGED_FRAMES + 64];
        let n = self.fill(&mut slices);
        for s in &slices[..n] {
            out.extend_from_slice(s);
        }
    }
}
