//! The send queue: every message the messenger still owes the peer, in queue order.
//!
//! Slots are indexed by [`MsgId`]: slot `i` holds id `base + i`, so finding a message by id
//! is one subtraction, whatever the queue length. A message that leaves (revoked, or
//! acknowledged while not at the front) leaves a tombstone (`None`) that is popped once it
//! reaches the front.
//!
//! Ids are handed out in queue order and messages are sent in that order, so the slots are
//! always sorted three ways at once: by id, by send order, and — among the messages that
//! have a seq — by seq. Every message with a seq comes before every message without one.

use std::collections::VecDeque;

use crate::message::Message;

/// Identifies a queued message; unique within one [`Messenger`](crate::Messenger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId(pub(crate) u64);

impl MsgId {
    /// The raw id: ids count up from 0 in queue order.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// Where a queued message stands on the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Not yet described to the caller on this connection.
    Queued,
    /// Has a frame in the staged list; none of its bytes written.
    Staged,
    /// At least one byte written, not all: the frame at the front of the staged list.
    Started,
    /// Every byte written on this connection; awaiting the peer's ack.
    Written,
}

/// A message the messenger still holds.
pub(crate) struct Entry {
    pub(crate) msg: Message,
    /// Fixed when the first byte goes out on some connection; kept across resets.
    pub(crate) seq: Option<u64>,
    pub(crate) stage: Stage,
    /// front, middle and data CRCs in the current protocol's convention (v1 seed 0, v2
    /// seed 0xFFFF_FFFF), computed once when the message is first staged.
    pub(crate) crcs: Option<[u32; 3]>,
}

/// Id-indexed slots with tombstones.
#[derive(Default)]
pub(crate) struct SendQueue {
    /// Id of `slots[0]`.
    base: u64,
    slots: VecDeque<Option<Entry>>,
    /// Live entries (slots that are `Some`).
    live: usize,
    /// Payload bytes (front + middle + data) of the live entries.
    bytes: u64,
}

impl SendQueue {
    /// Appends a message; returns its id.
    pub(crate) fn push(&mut self, msg: Message) -> MsgId {
        let id = MsgId(self.base + self.slots.len() as u64);
        self.bytes += msg.payload_len();
        self.slots.push_back(Some(Entry {
            msg,
            seq: None,
            stage: Stage::Queued,
            crcs: None,
        }));
        self.live += 1;
        id
    }

    /// Id of the first slot (live or not).
    pub(crate) fn base_id(&self) -> u64 {
        self.base
    }

    /// Number of live messages.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Payload bytes of the live messages.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    fn index(&self, id: u64) -> Option<usize> {
        let i = id.checked_sub(self.base)?;
        (i < self.slots.len() as u64).then_some(i as usize)
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Entry> {
        self.slots.get(self.index(id)?)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut Entry> {
        let i = self.index(id)?;
        self.slots.get_mut(i)?.as_mut()
    }

    /// Removes a message, leaving a tombstone; pops tombstones off the front.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Entry> {
        let i = self.index(id)?;
        let e = self.slots.get_mut(i)?.take()?;
        self.live -= 1;
        self.bytes -= e.msg.payload_len();
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(e)
    }

    /// Forgets every cached CRC (the protocol changed).
    pub(crate) fn clear_crcs(&mut self) {
        for e in self.slots.iter_mut().flatten() {
            e.crcs = None;
        }
    }

    /// Releases spare capacity.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.slots.shrink_to_fit();
    }

    /// The first live id at or after `from`.
    pub(crate) fn next_live(&self, from: u64) -> Option<u64> {
        let start = from.max(self.base);
        let i = (start - self.base) as usize;
        self.slots
            .range(i.min(self.slots.len())..)
            .position(Option::is_some)
            .map(|p| start + p as u64)
    }

    /// Live ids in `[self.base, end)`, in order.
    pub(crate) fn live_ids_before(&self, end: u64) -> impl Iterator<Item = u64> + '_ {
        let n = end.saturating_sub(self.base).min(self.slots.len() as u64) as usize;
        self.slots
            .range(..n)
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(move |(i, _)| self.base + i as u64)
    }
}
