//! msgr2 control-frame payloads: one struct per tag, each a pure encode/decode pair.
//!
//! A control frame has exactly one segment, its payload, which is a plain concatenation
//! of the fields below (no `ENCODE_START` around it; Ceph's `ControlFrame` in
//! `frames_v2.h`). `vector<u32>` is a le32 count then the items, a bufferlist a le32
//! length then the bytes, and addresses use the msgr2-era `entity_addr_t` encoding
//! ([`Addr::encode`]).
//!
//! | tag | payload | type |
//! |---|---|---|
//! | HELLO | u8 entity type, `entity_addr_t` peer address as seen | [`Hello`] |
//! | AUTH_REQUEST | le32 method, `vector<u32>` preferred modes, bufferlist | [`AuthRequest`] |
//! | AUTH_BAD_METHOD | le32 method, le32 result, `vector<u32>` methods, `vector<u32>` modes | [`AuthBadMethod`] |
//! | AUTH_REPLY_MORE | bufferlist | [`AuthReplyMore`] |
//! | AUTH_REQUEST_MORE | bufferlist | [`AuthRequestMore`] |
//! | AUTH_DONE | le64 global_id, le32 con_mode, bufferlist | [`AuthDone`] |
//! | AUTH_SIGNATURE | 32-byte SHA-256 digest, raw | [`AuthSignature`] |
//! | CLIENT_IDENT | addrvec, `entity_addr_t` target, le64 gid, global_seq, supported, required, flags, cookie | [`ClientIdent`] |
//! | SERVER_IDENT | addrvec, le64 gid, global_seq, supported, required, flags, cookie | [`ServerIdent`] |
//! | IDENT_MISSING_FEATURES | le64 features | [`IdentMissingFeatures`] |
//! | SESSION_RECONNECT | addrvec, le64 client_cookie, server_cookie, global_seq, connect_seq, msg_seq | [`SessionReconnect`] |
//! | SESSION_RESET | u8 full | [`SessionReset`] |
//! | SESSION_RETRY | le64 connect_seq | [`SessionRetry`] |
//! | SESSION_RETRY_GLOBAL | le64 global_seq | [`SessionRetryGlobal`] |
//! | SESSION_RECONNECT_OK | le64 msg_seq | [`SessionReconnectOk`] |
//! | WAIT | empty | [`Wait`] |
//! | KEEPALIVE2 | `utime_t`: le32 sec, le32 nsec | [`Keepalive2`] |
//! | KEEPALIVE2_ACK | `utime_t` | [`Keepalive2Ack`] |
//! | ACK | le64 seq | [`Ack`] |
//!
//! # Decoding
//!
//! Decoding never panics and never allocates for a count the payload cannot hold:
//! truncation, oversized counts and lengths, unknown address markers and families are
//! [`ControlError`]s. **Trailing bytes after the last field are ignored**, as Ceph does
//! (`ControlFrame::Decode` reads the fields and never checks the iterator reached the
//! end), so a later protocol revision may append fields. Likewise bytes an
//! `entity_addr_t` block carries past the fields we know are skipped by its length.
//!
//! Re-encoding a decoded payload gives the same bytes for everything Ceph and the kernel
//! emit. The exceptions are inputs they never write: a SESSION_RESET `full` byte other
//! than 0 or 1 (read as `true`, as Ceph's `bool` decode does), an address in the legacy
//! 136-byte form or with a zero-length sockaddr (written back in the msgr2 form, blank
//! as 28 zero bytes), an `entity_addrvec_t` given as a bare address, and trailing bytes.

use std::fmt;

use bytes::BufMut;

use super::frame::{self, encode_control, segment_crc, FrameError, Preamble, Tag, CRC_LEN};
use crate::denc::{decode_addr, decode_addrvec, encode_addrvec, Put, Reader};
pub use crate::denc::{Addr, AddrKind, DecodeError};
use crate::wire::Timespec;

/// Auth method `CEPH_AUTH_NONE`.
pub const AUTH_METHOD_NONE: u32 = 1;
/// Auth method `CEPH_AUTH_CEPHX`.
pub const AUTH_METHOD_CEPHX: u32 = 2;
/// Connection mode `CEPH_CON_MODE_CRC`: frames protected by CRCs only.
pub const CON_MODE_CRC: u32 = 1;
/// Connection mode `CEPH_CON_MODE_SECURE`: frames encrypted (AES-GCM).
pub const CON_MODE_SECURE: u32 = 2;
/// First byte of an AUTH_REQUEST payload sent to a monitor (`AUTH_MODE_MON`).
pub const AUTH_MODE_MON: u8 = 10;
/// First byte of an AUTH_REQUEST payload that is an authorizer, as sent to an OSD or MDS
/// (`AUTH_MODE_AUTHORIZER`).
pub const AUTH_MODE_AUTHORIZER: u8 = 1;
/// CLIENT_IDENT / SERVER_IDENT flag `CEPH_MSG_CONNECT_LOSSY`.
pub const CLIENT_IDENT_FLAG_LOSSY: u64 = 1;
/// Length of an AUTH_SIGNATURE digest (SHA-256).
pub const SIGNATURE_LEN: usize = 32;

/// Why a control frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlError {
    /// The payload of a frame with this tag is malformed.
    Payload {
        /// The frame's tag.
        tag: Tag,
        /// What is wrong with it.
        error: DecodeError,
    },
    /// The tag is MESSAGE, which is not a control frame.
    NotControl(Tag),
    /// The frame around the payload is malformed (only [`decode_control_frame`]).
    Frame(FrameError),
    /// A control frame announcing more than one segment (only [`decode_control_frame`]).
    Segments(u8),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Payload { tag, error } => write!(f, "malformed {} payload: {error}", tag.name()),
            Self::NotControl(tag) => write!(f, "{} is not a control frame", tag.name()),
            Self::Frame(e) => write!(f, "malformed control frame: {e}"),
            Self::Segments(n) => write!(f, "control frame with {n} segments (must be 1)"),
        }
    }
}

impl std::error::Error for ControlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Payload { error, .. } => Some(error),
            Self::Frame(e) => Some(e),
            Self::NotControl(_) | Self::Segments(_) => None,
        }
    }
}

impl From<FrameError> for ControlError {
    fn from(e: FrameError) -> Self {
        Self::Frame(e)
    }
}

/// A control-frame payload: its tag, and its encoding as segment 0 of the frame.
pub trait ControlPayload: Sized {
    /// The frame tag this payload travels under.
    const TAG: Tag;

    /// Appends the payload bytes to `out`.
    fn encode_into(&self, out: &mut Vec<u8>);

    /// Decodes a payload (trailing bytes are ignored, as Ceph does).
    fn decode(payload: &[u8]) -> Result<Self, ControlError>;

    /// The payload bytes.
    #[must_use]
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// The whole frame: preamble, payload, payload CRC ([`frame::encode_control`]).
    #[must_use]
    fn encode_frame(&self) -> Vec<u8> {
        encode_control(Self::TAG, &self.encode())
    }
}

fn u32_vec(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<u32>, DecodeError> {
    let n = r.count(what, 4)?;
    (0..n).map(|_| r.u32(what)).collect()
}

fn put_u32_vec(out: &mut Vec<u8>, v: &[u32]) {
    out.put_u32_le(v.len() as u32);
    for x in v {
        out.put_u32_le(*x);
    }
}

fn utime(r: &mut Reader<'_>, what: &'static str) -> Result<Timespec, DecodeError> {
    Ok(Timespec {
        sec: r.u32(what)?,
        nsec: r.u32(what)?,
    })
}

fn put_utime(out: &mut Vec<u8>, t: Timespec) {
    out.put_u32_le(t.sec);
    out.put_u32_le(t.nsec);
}

/// Implements [`ControlPayload`] from the type's private `read` / `write`.
macro_rules! control_payload {
    ($($ty:ident => $tag:ident,)*) => {
        $(
            impl ControlPayload for $ty {
                const TAG: Tag = Tag::$tag;

                fn encode_into(&self, out: &mut Vec<u8>) {
                    self.write(out);
                }

                fn decode(payload: &[u8]) -> Result<Self, ControlError> {
                    Self::read(&mut Reader::new(payload))
                        .map_err(|error| ControlError::Payload { tag: Tag::$tag, error })
                }
            }

            impl From<$ty> for ControlFrame {
                fn from(p: $ty) -> Self {
                    ControlFrame::$tag(p)
                }
            }
        )*

        /// Any control frame's payload, by tag.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum ControlFrame {
            $(
                #[doc = concat!("A `", stringify!($tag), "` frame: [`", stringify!($ty), "`].")]
                $tag($ty),
            )*
        }

        impl ControlFrame {
            /// The frame's tag.
            #[must_use]
            pub fn tag(&self) -> Tag {
                match self {
                    $(Self::$tag(_) => Tag::$tag,)*
                }
            }

            /// Appends the payload bytes to `out`.
            pub fn encode_into(&self, out: &mut Vec<u8>) {
                match self {
                    $(Self::$tag(p) => p.encode_into(out),)*
                }
            }

            /// Decodes the payload of a control frame with this tag (MESSAGE is
            /// [`ControlError::NotControl`]).
            pub fn decode(tag: Tag, payload: &[u8]) -> Result<Self, ControlError> {
                match tag {
                    $(Tag::$tag => $ty::decode(payload).map(Self::$tag),)*
                    other => Err(ControlError::NotControl(other)),
                }
            }
        }
    };
}

control_payload! {
    Hello => Hello,
    AuthRequest => AuthRequest,
    AuthBadMethod => AuthBadMethod,
    AuthReplyMore => AuthReplyMore,
    AuthRequestMore => AuthRequestMore,
    AuthDone => AuthDone,
    AuthSignature => AuthSignature,
    ClientIdent => ClientIdent,
    ServerIdent => ServerIdent,
    IdentMissingFeatures => IdentMissingFeatures,
    SessionReconnect => SessionReconnect,
    SessionReset => SessionReset,
    SessionRetry => SessionRetry,
    SessionRetryGlobal => SessionRetryGlobal,
    SessionReconnectOk => SessionReconnectOk,
    Wait => Wait,
    Keepalive2 => Keepalive2,
    Keepalive2Ack => Keepalive2Ack,
    Ack => Ack,
}

impl ControlFrame {
    /// The payload bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// The whole frame: preamble, payload, payload CRC ([`frame::encode_control`]).
    #[must_use]
    pub fn encode_frame(&self) -> Vec<u8> {
        encode_control(self.tag(), &self.encode())
    }
}

/// Decodes one whole control frame from the front of `buf` (preamble, payload, payload
/// CRC), checking both CRCs and that it has one segment; returns it and the bytes it
/// took. For frames already in one buffer (tests, replay); a receiver reading from a
/// socket deframes first and calls [`ControlFrame::decode`] on the payload.
pub fn decode_control_frame(buf: &[u8]) -> Result<(ControlFrame, usize), ControlError> {
    let p = Preamble::decode(buf)?;
    let tag = Tag::from_u8(p.tag).ok_or(FrameError::UnknownTag(p.tag))?;
    if tag == Tag::Message {
        return Err(ControlError::NotControl(tag));
    }
    if p.nseg != 1 {
        return Err(ControlError::Segments(p.nseg));
    }
    let len = p.segments[0].0 as usize;
    let body = &buf[frame::PREAMBLE_LEN..];
    let total = if len == 0 { 0 } else { len + CRC_LEN };
    if body.len() < total {
        return Err(FrameError::Truncated {
            what: "control frame",
            need: frame::PREAMBLE_LEN + total,
            have: buf.len(),
        }
        .into());
    }
    let payload = &body[..len];
    if len > 0 {
        let c = &body[len..len + CRC_LEN];
        let got = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let want = segment_crc(payload);
        if got != want {
            return Err(FrameError::SegmentCrc {
                segment: 0,
                got,
                want,
            }
            .into());
        }
    }
    Ok((
        ControlFrame::decode(tag, payload)?,
        frame::PREAMBLE_LEN + total,
    ))
}

/// HELLO: the sender's entity type and the peer's address as the sender sees it (the
/// client sends the address it connected to; the server the client's address as seen,
/// which the client may adopt for its IP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The sender's entity type (`CEPH_ENTITY_TYPE_*`, see
    /// [`EntityType::to_u8`](crate::wire::EntityType::to_u8)): CLIENT 8, MON 1, OSD 4.
    pub entity_type: u8,
    /// The peer's address as the sender sees it.
    pub peer_addr: Addr,
}

impl Hello {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            entity_type: r.u8("HELLO entity type")?,
            peer_addr: decode_addr(r)?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(self.entity_type);
        self.peer_addr.encode(out);
    }
}

/// AUTH_REQUEST (client to server): the auth method, the connection modes the client
/// prefers, and the method's payload.
///
/// For auth "none" the payload is, to a monitor, [`AUTH_MODE_MON`], the `EntityName`
/// (le32 type, le32 length, name) and le64 global_id; to an OSD an authorizer:
/// [`AUTH_MODE_AUTHORIZER`], `EntityName`, le64 global_id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// Auth method ([`AUTH_METHOD_NONE`], [`AUTH_METHOD_CEPHX`]).
    pub method: u32,
    /// Connection modes, most preferred first ([`CON_MODE_CRC`], [`CON_MODE_SECURE`]).
    pub preferred_modes: Vec<u32>,
    /// The method's payload.
    pub auth_payload: Vec<u8>,
}

impl AuthRequest {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            method: r.u32("AUTH_REQUEST method")?,
            preferred_modes: u32_vec(r, "AUTH_REQUEST preferred modes")?,
            auth_payload: r.blob("AUTH_REQUEST auth payload")?.to_vec(),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_u32_le(self.method);
        put_u32_vec(out, &self.preferred_modes);
        out.put_blob(&self.auth_payload);
    }
}

/// AUTH_BAD_METHOD (server to client): the method is refused; what the server allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthBadMethod {
    /// The method the client asked for.
    pub method: u32,
    /// The error (a negative errno, e.g. `-EOPNOTSUPP`).
    pub result: i32,
    /// Methods the server accepts.
    pub allowed_methods: Vec<u32>,
    /// Connection modes the server accepts.
    pub allowed_modes: Vec<u32>,
}

impl AuthBadMethod {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            method: r.u32("AUTH_BAD_METHOD method")?,
            result: r.i32("AUTH_BAD_METHOD result")?,
            allowed_methods: u32_vec(r, "AUTH_BAD_METHOD allowed methods")?,
            allowed_modes: u32_vec(r, "AUTH_BAD_METHOD allowed modes")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_u32_le(self.method);
        out.put_i32_le(self.result);
        put_u32_vec(out, &self.allowed_methods);
        put_u32_vec(out, &self.allowed_modes);
    }
}

/// AUTH_REPLY_MORE (server to client): another round of the auth method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthReplyMore {
    /// The method's payload.
    pub auth_payload: Vec<u8>,
}

impl AuthReplyMore {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            auth_payload: r.blob("AUTH_REPLY_MORE auth payload")?.to_vec(),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_blob(&self.auth_payload);
    }
}

/// AUTH_REQUEST_MORE (client to server): the client's answer to an AUTH_REPLY_MORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequestMore {
    /// The method's payload.
    pub auth_payload: Vec<u8>,
}

impl AuthRequestMore {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            auth_payload: r.blob("AUTH_REQUEST_MORE auth payload")?.to_vec(),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_blob(&self.auth_payload);
    }
}

/// AUTH_DONE (server to client): authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthDone {
    /// The global id the server assigned (a monitor) or confirmed (an OSD).
    pub global_id: u64,
    /// The connection mode chosen ([`CON_MODE_CRC`], [`CON_MODE_SECURE`]).
    pub con_mode: u32,
    /// The method's payload (empty for auth "none").
    pub auth_payload: Vec<u8>,
}

impl AuthDone {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            global_id: r.u64("AUTH_DONE global_id")?,
            con_mode: r.u32("AUTH_DONE con_mode")?,
            auth_payload: r.blob("AUTH_DONE auth payload")?.to_vec(),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_u64_le(self.global_id);
        out.put_u32_le(self.con_mode);
        out.put_blob(&self.auth_payload);
    }
}

/// AUTH_SIGNATURE (both ways): HMAC-SHA256, keyed with the session key, of every byte
/// received since the banner. With no session key (auth "none") it is all zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthSignature {
    /// The digest, raw (no length prefix on the wire).
    pub sha256: [u8; SIGNATURE_LEN],
}

impl AuthSignature {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut sha256 = [0u8; SIGNATURE_LEN];
        sha256.copy_from_slice(r.bytes(SIGNATURE_LEN, "AUTH_SIGNATURE sha256")?);
        Ok(Self { sha256 })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_slice(&self.sha256);
    }
}

/// CLIENT_IDENT (client to server): who the client is and what it wants from a new
/// session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdent {
    /// The client's addresses (librados: one `TYPE_ANY` address, port 0, its nonce).
    pub addrs: Vec<Addr>,
    /// The server address the client means, which must be one of the server's own
    /// (exact match, nonce included).
    pub target_addr: Addr,
    /// The client's global id, or -1 before a monitor assigned one.
    pub gid: i64,
    /// The client's messenger-wide connection counter.
    pub global_seq: u64,
    /// Ceph features supported (`CEPH_FEATURE_*`).
    pub supported_features: u64,
    /// Ceph features required of the server.
    pub required_features: u64,
    /// [`CLIENT_IDENT_FLAG_LOSSY`] or 0.
    pub flags: u64,
    /// A random non-zero cookie for a lossless session, 0 for a lossy one.
    pub client_cookie: u64,
}

impl ClientIdent {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            addrs: decode_addrvec(r)?,
            target_addr: decode_addr(r)?,
            gid: r.u64("CLIENT_IDENT gid")? as i64,
            global_seq: r.u64("CLIENT_IDENT global_seq")?,
            supported_features: r.u64("CLIENT_IDENT supported features")?,
            required_features: r.u64("CLIENT_IDENT required features")?,
            flags: r.u64("CLIENT_IDENT flags")?,
            client_cookie: r.u64("CLIENT_IDENT cookie")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        encode_addrvec(out, &self.addrs);
        self.target_addr.encode(out);
        out.put_i64_le(self.gid);
        out.put_u64_le(self.global_seq);
        out.put_u64_le(self.supported_features);
        out.put_u64_le(self.required_features);
        out.put_u64_le(self.flags);
        out.put_u64_le(self.client_cookie);
    }
}

/// SERVER_IDENT (server to client): the session is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdent {
    /// The server's addresses (they contain the client's target address).
    pub addrs: Vec<Addr>,
    /// The server's global id (its entity number: a monitor's rank, an OSD's id).
    pub gid: i64,
    /// The server's messenger-wide connection counter.
    pub global_seq: u64,
    /// Ceph features supported.
    pub supported_features: u64,
    /// Ceph features required of the client.
    pub required_features: u64,
    /// [`CLIENT_IDENT_FLAG_LOSSY`] or 0: whether the session is lossy.
    pub flags: u64,
    /// The server's cookie (0 for a lossy session).
    pub server_cookie: u64,
}

impl ServerIdent {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            addrs: decode_addrvec(r)?,
            gid: r.u64("SERVER_IDENT gid")? as i64,
            global_seq: r.u64("SERVER_IDENT global_seq")?,
            supported_features: r.u64("SERVER_IDENT supported features")?,
            required_features: r.u64("SERVER_IDENT required features")?,
            flags: r.u64("SERVER_IDENT flags")?,
            server_cookie: r.u64("SERVER_IDENT cookie")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        encode_addrvec(out, &self.addrs);
        out.put_i64_le(self.gid);
        out.put_u64_le(self.global_seq);
        out.put_u64_le(self.supported_features);
        out.put_u64_le(self.required_features);
        out.put_u64_le(self.flags);
        out.put_u64_le(self.server_cookie);
    }
}

/// IDENT_MISSING_FEATURES (server to client): the client lacks required features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentMissingFeatures {
    /// The features the server requires that the client did not offer.
    pub features: u64,
}

impl IdentMissingFeatures {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            features: r.u64("IDENT_MISSING_FEATURES features")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_u64_le(self.features);
    }
}

/// SESSION_RECONNECT (client to server): resume a lossless session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionReconnect {
    /// The client's addresses.
    pub addrs: Vec<Addr>,
    /// The session's client cookie.
    pub client_cookie: u64,
    /// The session's server cookie.
    pub server_cookie: u64,
    /// The client's messenger-wide connection counter.
    pub global_seq: u64,
    /// Reconnection attempts of this session.
    pub connect_seq: u64,
    /// The client's in_seq: the last message it received.
    pub msg_seq: u64,
}

impl SessionReconnect {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            addrs: decode_addrvec(r)?,
            client_cookie: r.u64("SESSION_RECONNECT client cookie")?,
            server_cookie: r.u64("SESSION_RECONNECT server cookie")?,
            global_seq: r.u64("SESSION_RECONNECT global_seq")?,
            connect_seq: r.u64("SESSION_RECONNECT connect_seq")?,
            msg_seq: r.u64("SESSION_RECONNECT msg_seq")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        encode_addrvec(out, &self.addrs);
        out.put_u64_le(self.client_cookie);
        out.put_u64_le(self.server_cookie);
        out.put_u64_le(self.global_seq);
        out.put_u64_le(self.connect_seq);
        out.put_u64_le(self.msg_seq);
    }
}

/// SESSION_RESET (server to client): no such session; start a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionReset {
    /// Whether the client must also reset its own session state (any non-zero byte).
    pub full: bool,
}

impl SessionReset {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            full: r.u8("SESSION_RESET full")? != 0,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(u8::from(self.full));
    }
}

/// SESSION_RETRY (server to client): reconnect with a connect_seq above this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRetry {
    /// The server's connect_seq for the session.
    pub connect_seq: u64,
}

impl SessionRetry {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            connect_seq: r.u64("SESSION_RETRY connect_seq")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_u64_le(self.connect_seq);
    }
}

/// SESSION_RETRY_GLOBAL (server to client): reconnect with a global_seq above this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRetryGlobal {
    /// The highest global_seq the server has seen from the client.
    pub global_seq: u64,
}

impl SessionRetryGlobal {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            global_seq: r.u64("SESSION_RETRY_GLOBAL global_seq")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_u64_le(self.global_seq);
    }
}

/// SESSION_RECONNECT_OK (server to client): the session resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionReconnectOk {
    /// The server's in_seq: requeued messages up to it are dropped, not resent.
    pub msg_seq: u64,
}

impl SessionReconnectOk {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            msg_seq: r.u64("SESSION_RECONNECT_OK msg_seq")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_u64_le(self.msg_seq);
    }
}

/// WAIT (server to client): connection race; wait for the server's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wait;

impl Wait {
    #[allow(clippy::unnecessary_wraps)]
    fn read(_: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self)
    }

    fn write(&self, _: &mut Vec<u8>) {}
}

/// KEEPALIVE2: a keepalive carrying the sender's clock (`utime_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Keepalive2 {
    /// The sender's time stamp (le32 sec, le32 nsec).
    pub timestamp: Timespec,
}

impl Keepalive2 {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            timestamp: utime(r, "KEEPALIVE2 timestamp")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        put_utime(out, self.timestamp);
    }
}

/// KEEPALIVE2_ACK: the answer to a KEEPALIVE2, echoing its time stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Keepalive2Ack {
    /// The KEEPALIVE2's time stamp.
    pub timestamp: Timespec,
}

impl Keepalive2Ack {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            timestamp: utime(r, "KEEPALIVE2_ACK timestamp")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        put_utime(out, self.timestamp);
    }
}

/// ACK: every message with seq up to this one was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ack {
    /// The receiver's in_seq.
    pub seq: u64,
}

impl Ack {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            seq: r.u64("ACK seq")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_u64_le(self.seq);
    }
}

#[cfg(test)]
mod tests;
