//! The client ↔ monitor messages: authentication (auth "none"), subscriptions and map
//! versions. Layouts follow `src/messages/MAuth.h`, `MAuthReply.h`, `MMonSubscribe.h`,
//! `MMonGetVersion.h`, `MMonGetVersionReply.h` and `PaxosServiceMessage.h` in Ceph, and
//! match the recorded bytes in `tests/data/`.

use bytes::{BufMut, Bytes, BytesMut};

use super::msg_type;
use super::MonDecodeError;
use crate::denc::{Put, Reader};
use crate::recv::Received;
use crate::wire::handshake::auth as auth_proto;
use crate::Message;

/// `CEPH_SUBSCRIBE_ONETIME`: send one map, then end the subscription.
pub const SUBSCRIBE_ONETIME: u8 = 1;

/// The `MAuth` "hello" a client opens a monitor session with (what
/// `MonConnection::start` and the kernel's `ceph_auth_build_hello` send):
///
/// ```text
/// PaxosServiceMessage: le64 version 0, le16 session_mon 0xffff, le64 session_mon_tid 0
/// le32 protocol 0 (not chosen yet)
/// le32 length, auth_payload:
///     u8 1, le32 count, count × le32 protocol, EntityName (le32 type, le32 len, name),
///     le64 global_id
/// le32 monmap_epoch (userspace sends it; the kernel omits it)
/// ```
///
/// `entity` is the name without its type (`admin` for `client.admin`); `global_id` is 0
/// for a first session, or the id a monitor gave before (reclaimed on a new session).
#[must_use]
pub fn auth_hello(entity: &str, global_id: u64, monmap_epoch: u32) -> Message {
    auth_request(&[auth_proto::NONE], entity, global_id, monmap_epoch)
}

/// An `MAuth` hello offering the given authentication protocols (see [`auth_hello`]).
#[must_use]
pub fn auth_request(protocols: &[u32], entity: &str, global_id: u64, monmap_epoch: u32) -> Message {
    let mut payload = BytesMut::new();
    payload.put_u8(1);
    payload.put_u32_le(protocols.len() as u32);
    for p in protocols {
        payload.put_u32_le(*p);
    }
    payload.put_u32_le(u32::from(crate::wire::EntityType::Client.to_u8()));
    payload.put_string(entity);
    payload.put_u64_le(global_id);

    let mut f = BytesMut::with_capacity(18 + 8 + payload.len() + 4);
    paxos_header(&mut f);
    f.put_u32_le(auth_proto::UNKNOWN);
    f.put_blob(&payload);
    f.put_u32_le(monmap_epoch);
    // PaxosServiceMessage's default header versions: 1, compat 0.
    Message::new(msg_type::AUTH)
        .with_version(1, 0)
        .with_front(f.freeze())
}

/// `PaxosServiceMessage::paxos_encode`: version 0, deprecated session_mon -1 and its tid 0.
fn paxos_header(f: &mut BytesMut) {
    f.put_u64_le(0);
    f.put_i16_le(-1);
    f.put_u64_le(0);
}

/// `MAuthReply` (type 18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthReply {
    /// The protocol the monitor chose (1 = none, 2 = cephx).
    pub protocol: u32,
    /// 0 on success, else a negative errno.
    pub result: i32,
    /// The global id the monitor assigned (0: none).
    pub global_id: u64,
    /// Protocol-specific reply (empty for auth none).
    pub result_bl: Bytes,
    /// A human-readable message (usually empty).
    pub message: String,
}

impl AuthReply {
    /// Decodes the front: le32 protocol, le32 result, le64 global_id, le32-length
    /// result_bl, le32-length result_msg.
    pub fn decode(front: &[u8]) -> Result<Self, MonDecodeError> {
        let mut r = Reader::new(front);
        Ok(Self {
            protocol: r.u32("MAuthReply protocol")?,
            result: r.i32("MAuthReply result")?,
            global_id: r.u64("MAuthReply global_id")?,
            result_bl: Bytes::copy_from_slice(r.blob("MAuthReply result_bl")?),
            message: r.string("MAuthReply result_msg")?,
        })
    }

    /// Decodes a received message, checking its type.
    pub fn from_message(m: &Received) -> Result<Self, MonDecodeError> {
        expect_type(m, msg_type::AUTH_REPLY)?;
        Self::decode(&m.front)
    }

    /// Whether authentication is complete: result 0 with auth none. (cephx would need more
    /// rounds; a negative result is a refusal.)
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.result == 0 && self.protocol == auth_proto::NONE
    }
}

/// One entry of an `MMonSubscribe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// What to subscribe to: `monmap`, `osdmap`, `config`, `mgrmap`, …
    pub what: String,
    /// The first epoch wanted (0: the current one).
    pub start: u64,
    /// [`SUBSCRIBE_ONETIME`] or 0.
    pub flags: u8,
}

impl Subscription {
    /// A subscription from `start` that stays (the monitor sends every new map).
    #[must_use]
    pub fn persistent(what: &str, start: u64) -> Self {
        Self {
            what: what.to_owned(),
            start,
            flags: 0,
        }
    }

    /// A subscription for one map.
    #[must_use]
    pub fn onetime(what: &str, start: u64) -> Self {
        Self {
            what: what.to_owned(),
            start,
            flags: SUBSCRIBE_ONETIME,
        }
    }
}

/// `MMonSubscribe` (type 15), header version 3 (needs SUBSCRIBE2, which every supported
/// monitor has): `map<string, {le64 start, u8 flags}>` then the client's hostname. The
/// map is sorted by name, as `std::map` is.
#[must_use]
pub fn subscribe(subs: &[Subscription], hostname: &str) -> Message {
    let mut sorted: Vec<&Subscription> = subs.iter().collect();
    sorted.sort_by(|a, b| a.what.cmp(&b.what));
    sorted.dedup_by(|a, b| a.what == b.what);
    let mut f = BytesMut::new();
    f.put_u32_le(sorted.len() as u32);
    for s in sorted {
        f.put_string(&s.what);
        f.put_u64_le(s.start);
        f.put_u8(s.flags);
    }
    f.put_string(hostname);
    Message::new(msg_type::MON_SUBSCRIBE)
        .with_version(3, 1)
        .with_front(f.freeze())
}

/// `MMonGetVersion` (type 19): le64 handle (echoed in the reply), le32-length name of the
/// map (`osdmap`, `monmap`, `mdsmap`, …). Header version 1, compat 0.
#[must_use]
pub fn get_version(handle: u64, what: &str) -> Message {
    let mut f = BytesMut::with_capacity(8 + 4 + what.len());
    f.put_u64_le(handle);
    f.put_string(what);
    Message::new(msg_type::MON_GET_VERSION)
        .with_tid(handle)
        .with_version(1, 0)
        .with_front(f.freeze())
}

/// `MMonGetVersionReply` (type 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionReply {
    /// The handle of the request.
    pub handle: u64,
    /// The newest version (epoch) of the map.
    pub version: u64,
    /// The oldest version the monitor still has (header version 2 and up).
    pub oldest_version: Option<u64>,
}

impl VersionReply {
    /// Decodes the front: le64 handle, le64 version, and from header version 2 on, le64
    /// oldest_version.
    pub fn decode(front: &[u8], header_version: u16) -> Result<Self, MonDecodeError> {
        let mut r = Reader::new(front);
        let handle = r.u64("MMonGetVersionReply handle")?;
        let version = r.u64("MMonGetVersionReply version")?;
        let oldest_version = if header_version >= 2 {
            Some(r.u64("MMonGetVersionReply oldest_version")?)
        } else {
            None
        };
        Ok(Self {
            handle,
            version,
            oldest_version,
        })
    }

    /// Decodes a received message, checking its type.
    pub fn from_message(m: &Received) -> Result<Self, MonDecodeError> {
        expect_type(m, msg_type::MON_GET_VERSION_REPLY)?;
        Self::decode(&m.front, m.header.version)
    }
}

fn expect_type(m: &Received, expected: u16) -> Result<(), MonDecodeError> {
    if m.header.ty == expected {
        Ok(())
    } else {
        Err(MonDecodeError::WrongType {
            expected,
            got: m.header.ty,
        })
    }
}
