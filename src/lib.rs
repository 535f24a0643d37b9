//! # ceph-msgr
//!
//! Ceph's messenger wire protocol — msgr v1 (banner `ceph v027`) and msgr2.1 in crc mode
//! (banner `ceph v2`) — as a **Sans-IO state machine**. The core owns no socket, spawns no thread and reads no clock: you feed it
//! events and it hands back the exact bytes to write.
//!
//! The send side, [`Messenger`], is built around one invariant:
//!
//! > **The bytes on the wire are exactly the bytes acknowledged with
//! > [`Messenger::advance`].**
//!
//! so a message can be revoked at any moment — queued, mid-header, mid-data, mid-footer,
//! fully written, or just before a reset — and the stream stays exactly framed for the
//! peer. A message none of whose bytes was written costs zero bytes and consumes no seq.
//! (This is the class of bug fixed in the Linux kernel by "libceph: fix
//! ceph_msg_revoke()"; here it is a property of the design.)
//!
//! ## The run loop
//!
//! The caller owns the socket and drives the messenger:
//!
//! 1. **Queue** messages with [`Messenger::queue`]; **revoke** with [`Messenger::revoke`].
//! 2. **Write**: call [`Messenger::poll_transmit`], [`Transmit::fill`] an array of
//!    [`IoSlice`](std::io::IoSlice)s, hand a prefix of them to the socket
//!    (`write_vectored`), and report the count it accepted with [`Messenger::advance`] —
//!    *before any other call that changes the messenger* (queueing is allowed in between;
//!    a revoke, ack or reset voids the offer). Any count from 0 to what was offered is
//!    fine, one byte at a time included; more is refused with [`AdvanceError`].
//! 3. **Acknowledgements** from the peer go to [`Messenger::on_ack`]: acknowledged
//!    messages leave the resend list.
//! 4. **Transport failure**: call [`Messenger::reset`]. Owed zeros are forgotten; every
//!    unacknowledged started message is requeued, ahead of the unstarted ones, with its
//!    original seq, and goes out from its first byte on the next connection.
//!
//! ```
//! use std::io::{IoSlice, Write};
//! use bytes::Bytes;
//! use ceph_msgr::{EntityName, Message, Messenger, Revoked};
//! use ceph_msgr::wire::feature::MSG_AUTH;
//!
//! /// A socket that takes at most 100 bytes per call, like a congested TCP stream.
//! struct Slow(Vec<u8>);
//! impl Write for Slow {
//!     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
//!         self.write_vectored(&[IoSlice::new(b)])
//!     }
//!     fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
//!         let mut room = 100;
//!         for b in bufs {
//!             let n = b.len().min(room);
//!             self.0.extend_from_slice(&b[..n]);
//!             room -= n;
//!         }
//!         Ok(100 - room)
//!     }
//!     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! }
//!
//! let mut m = Messenger::new(EntityName::client(4242), MSG_AUTH);
//! let big = m.queue(Message::new(42).with_data_chunk(Bytes::from(vec![1u8; 10_000]))).unwrap();
//! let small = m.queue(Message::new(42).with_front(Bytes::from_static(b"ping"))).unwrap();
//! let mut sock = Slow(Vec::new());
//!
//! // The run loop: offer, write, advance.
//! for _ in 0..3 {
//!     let t = m.poll_transmit();
//!     let mut slices = [IoSlice::new(&[]); 16];
//!     let k = t.fill(&mut slices);
//!     let n = sock.write_vectored(&slices[..k]).unwrap();
//!     m.advance(n).unwrap();
//! }
//! // 300 bytes of the big message are out; revoking it now keeps the stream framed:
//! // the rest of its frame goes out as zeros with the footer's COMPLETE flag clear.
//! let Revoked::Aborted { zeros, .. } = m.revoke(big) else { unreachable!() };
//! assert_eq!(zeros, 54 + 10_000 + 21 - 300);
//! while m.write_to(&mut sock).unwrap() > 0 {}
//! assert_eq!(sock.0.len(), (54 + 10_000 + 21) + (54 + 4 + 21));
//! # let _ = small;
//! ```
//!
//! ## Layout
//!
//! | module | what |
//! |---|---|
//! | [`wire`] | the msgr v1 codec: tags, header, footers, control records, handshake records, CRC convention |
//! | [`v2`] | the msgr2.1 codec: banner, preamble, epilogue, header2, every control frame |
//! | [`denc`] | Ceph's payload encoding: integers, strings, versioned structs, `entity_addr_t` |
//! | [`send`] | the send-side accounting for both protocols: [`Messenger`], frames, the queue |
//! | [`recv`] | the receive side: one input buffer, a deframer per protocol, size limits |
//! | [`conn`] | the session: [`Connection`], both roles, both protocols, timeouts, flow control |
//! | [`shim`] | drivers on sockets: blocking std, tokio, futures-io (smol, async-std), mio |
//! | [`mon`] | monitor messages and a small blocking `MonClient` |
//! | [`message`] | the outgoing [`Message`] (payload as `Bytes`, never copied) |
//! | [`replay`] | event scripts, as run by `ceph-msgr replay` (v1 and v2 framing) |
//!
//! `docs/accounting.md` explains the accounting model with byte diagrams (both
//! protocols), `docs/session.md` the session states of both protocols.
//!
//! ## `unsafe`
//!
//! None in the core: `wire`, `send`, `recv`, `conn`, `mon` and the shims are
//! `#![forbid(unsafe_code)]`. The one reviewed exception is a private module of the mio
//! shim (Unix only) that reads from a socket straight into a receive buffer's
//! uninitialized spare capacity — one `set_len` after `socket2`'s safe `recv`. It replaced
//! a copy of every received byte that took 30% of `ceph-msgr serve`'s CPU time
//! (`docs/performance.md`, `docs/shims.md`).
// `unsafe` is denied everywhere and forbidden in every module but `shim::in_place`, the
// one reviewed exception (reading from a socket into uninitialized buffer capacity).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod conn;
pub mod denc;
pub mod message;
pub mod mon;
pub mod recv;
pub mod replay;
pub mod send;
pub mod shim;
pub mod v2;
pub mod wire;

pub use conn::{Config, Connection, Event};
pub use message::Message;
pub use send::{
    AdvanceError, FrameInfo, Messenger, MsgId, MsgStatus, Protocol, QueueError, Revoked, Transmit,
};
pub use wire::{EntityName, EntityType, FooterKind};
