//! The outgoing message: header fields chosen by the caller plus payload sections held as
//! [`Bytes`], so the core never copies payload.
#![forbid(unsafe_code)]

use bytes::Bytes;

/// Default message priority (`CEPH_MSG_PRIO_DEFAULT`).
pub const PRIO_DEFAULT: u16 = 127;

/// A message to send: the caller's header fields and the three payload sections.
///
/// The messenger fills in `seq`, the source entity, lengths and CRCs itself. `data` is a
/// list of chunks (for instance pages of an object) that goes out back to back; its
/// length is the sum of the chunks.
///
/// ```
/// use bytes::Bytes;
/// use ceph_msgr::Message;
///
/// let m = Message::new(42)
///     .with_tid(7)
///     .with_front(Bytes::from_static(b"front"))
///     .with_data_chunk(Bytes::from(vec![0u8; 4096]))
///     .with_data_chunk(Bytes::from(vec![1u8; 4096]));
/// assert_eq!(m.data_len(), 8192);
/// assert_eq!(m.payload_len(), 5 + 8192);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Message type (`CEPH_MSG_*`).
    pub ty: u16,
    /// Priority; carried in the header (this messenger sends strictly in queue order).
    pub priority: u16,
    /// Payload encoding version.
    pub version: u16,
    /// Oldest payload encoding version a receiver must understand.
    pub compat_version: u16,
    /// Transaction id.
    pub tid: u64,
    /// Data offset hint carried in the header.
    pub data_off: u16,
    /// Front section.
    pub front: Bytes,
    /// Middle section (usually empty).
    pub middle: Bytes,
    /// Data section as a list of chunks sent back to back.
    pub data: Vec<Bytes>,
}

impl Message {
    /// An empty message of the given type with default priority, version 1, compat 1, tid 0.
    #[must_use]
    pub fn new(ty: u16) -> Self {
        Self {
            ty,
            priority: PRIO_DEFAULT,
            version: 1,
            compat_version: 1,
            tid: 0,
            data_off: 0,
            front: Bytes::new(),
            middle: Bytes::new(),
            data: Vec::new(),
        }
    }

    /// Sets the transaction id.
    #[must_use]
    pub fn with_tid(mut self, tid: u64) -> Self {
        self.tid = tid;
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn with_priority(mut self, priority: u16) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the version and compat version.
    #[must_use]
    pub fn with_version(mut self, version: u16, compat_version: u16) -> Self {
        self.version = version;
        self.compat_version = compat_version;
        self
    }

    /// Sets the data offset hint.
    #[must_use]
    pub fn with_data_off(mut self, data_off: u16) -> Self {
        self.data_off = data_off;
        self
    }

    /// Sets the front section.
    #[must_use]
    pub fn with_front(mut self, front: Bytes) -> Self {
        self.front = front;
        self
    }

    /// Sets the middle section.
    #[must_use]
    pub fn with_middle(mut self, middle: Bytes) -> Self {
        self.middle = middle;
        self
    }

    /// Appends a chunk to the data section.
    #[must_use]
    pub fn with_data_chunk(mut self, chunk: Bytes) -> Self {
        self.data.push(chunk);
        self
    }

    /// Length of the data section (sum of its chunks).
    #[must_use]
    pub fn data_len(&self) -> u64 {
        self.data.iter().map(|c| c.len() as u64).sum()
    }

    /// Length of front, middle and data together.
    #[must_use]
    pub fn payload_len(&self) -> u64 {
        self.front.len() as u64 + self.middle.len() as u64 + self.data_len()
    }
}
