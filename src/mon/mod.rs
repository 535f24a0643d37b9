//! Talking to a Ceph monitor over msgr v1: the payloads of the few messages a client needs
//! to authenticate (auth "none"), subscribe to maps and ask for map versions, and a small
//! blocking [`MonClient`] on top of [`BlockingConnection`](crate::shim::blocking::BlockingConnection).
//!
//! This module sits beside the protocol core, not in it: the core moves [`Message`]s and
//! knows nothing of what their fronts mean.
//!
//! | message | type | here |
//! |---|---|---|
//! | `MAuth` | 17 | [`auth_hello`] (encode) |
//! | `MAuthReply` | 18 | [`AuthReply`] (decode) |
//! | `MMonSubscribe` | 15 | [`subscribe`] (encode) |
//! | `MMonMap` | 4 | [`MonMap`] (decode: legacy and versioned encodings) |
//! | `MMonGetVersion` | 19 | [`get_version`] (encode) |
//! | `MMonGetVersionReply` | 20 | [`VersionReply`] (decode) |
//!
//! # Features
//!
//! What a monitor puts in a payload depends on the features negotiated on the
//! connection. [`MON_CLIENT_FEATURES`] is the kernel client's set: it includes MONNAMES,
//! MONENC and SERVER_NAUTILUS, so the monitor sends the current `MonMap` encoding (with
//! monitor names and address vectors). [`features::KERNEL_LIKE`](crate::wire::handshake::features::KERNEL_LIKE)
//! lacks them and gets the legacy version-1 encoding (as in the recorded session in
//! `tests/data/v1-auth.server.bin`), which has no monitor names.
//!
//! ```no_run
//! use std::time::Duration;
//! use ceph_msgr::mon::{MonClient, MonClientConfig, Subscription};
//!
//! let t = Duration::from_secs(5);
//! let mut mon = MonClient::connect("127.0.0.1:6789".parse()?, MonClientConfig::default())?;
//! mon.authenticate(t)?;
//! mon.subscribe(&[Subscription::persistent("monmap", 0)])?;
//! let map = mon.wait_monmap(t)?;
//! println!("fsid {} epoch {}", map.fsid, map.epoch);
//! println!("osdmap {}", mon.get_version("osdmap", t)?.version);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Message`]: crate::Message
#![forbid(unsafe_code)]

mod client;
mod messages;
mod monmap;

pub use crate::denc::{Addr, AddrKind, DecodeError as MonDecodeError};
pub use client::{MonClient, MonClientConfig, MonError};
pub use messages::{
    auth_hello, auth_request, get_version, subscribe, AuthReply, Subscription, VersionReply,
    SUBSCRIBE_ONETIME,
};
pub use monmap::{Fsid, MonInfo, MonMap};

use crate::wire::handshake::features as feat;

/// Message types of the client ↔ monitor conversation (`CEPH_MSG_*`).
pub mod msg_type {
    /// `CEPH_MSG_PING`.
    pub const PING: u16 = 2;
    /// `CEPH_MSG_MON_MAP`.
    pub const MON_MAP: u16 = 4;
    /// `CEPH_MSG_MON_GET_MAP`.
    pub const MON_GET_MAP: u16 = 5;
    /// `CEPH_MSG_MON_SUBSCRIBE`.
    pub const MON_SUBSCRIBE: u16 = 15;
    /// `CEPH_MSG_MON_SUBSCRIBE_ACK`.
    pub const MON_SUBSCRIBE_ACK: u16 = 16;
    /// `CEPH_MSG_AUTH`.
    pub const AUTH: u16 = 17;
    /// `CEPH_MSG_AUTH_REPLY`.
    pub const AUTH_REPLY: u16 = 18;
    /// `CEPH_MSG_MON_GET_VERSION`.
    pub const MON_GET_VERSION: u16 = 19;
    /// `CEPH_MSG_MON_GET_VERSION_REPLY`.
    pub const MON_GET_VERSION_REPLY: u16 = 20;
    /// `CEPH_MSG_OSD_MAP`.
    pub const OSD_MAP: u16 = 41;
    /// `MSG_CONFIG`.
    pub const CONFIG: u16 = 62;
}

/// The feature set [`MonClient`] advertises by default: the kernel client's
/// (`KERNEL_LIKE` plus SERVER_NAUTILUS, MONNAMES, MONENC and SERVER_MIMIC). With a
/// Pacific monitor it negotiates MSG_AUTH (21-byte footers), KEEPALIVE2, RECONNECT_SEQ
/// (SEQ replies) and the current `MonMap` encoding.
pub const MON_CLIENT_FEATURES: u64 =
    feat::KERNEL_LIKE | feat::SERVER_NAUTILUS | feat::MONNAMES | feat::MONENC | feat::SERVER_MIMIC;

#[cfg(test)]
mod tests;
