//! msgr2.1 ("ceph v2"), crc mode: the wire codec, as pure functions over bytes.
//!
//! | piece | bytes | module |
//! |---|---|---|
//! | banner: `ceph v2\n`, le16 16, le64 supported, le64 required | 26 | [`frame`] |
//! | preamble: tag, nseg, 4 × (le32 len, le16 align), 2 reserved, le32 crc | 32 | [`frame`] |
//! | segment 0 + le32 crc32c(-1, seg0) (only when seg0 is non-empty) | n + 4 | [`frame`] |
//! | segments 1 .. nseg-1, raw | … | |
//! | epilogue (only when nseg > 1): late_status + 3 × le32 segment crc | 13 | [`frame`] |
//! | `ceph_msg_header2` (segment 0 of a MESSAGE frame) | 41 | [`frame`] |
//! | control-frame payloads (HELLO … ACK) | … | [`control`] |
//!
//! The send-side accounting is shared with msgr v1 ([`crate::send`]); this module only
//! knows layouts.
#![forbid(unsafe_code)]

pub mod control;
pub mod frame;

pub use control::{ControlError, ControlFrame, ControlPayload};
pub use frame::{Epilogue, FrameError, MsgHeader2, Preamble, Tag};
