//! ceph-msgr: Ceph's messenger wire protocol as a Sans-IO state machine.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod message;
pub mod replay;
pub mod send;
pub mod wire;

pub use message::Message;
pub use send::{
    AdvanceError, FrameInfo, Messenger, MsgId, MsgStatus, QueueError, Revoked, Transmit,
};
pub use wire::{EntityName, EntityType, FooterKind};
