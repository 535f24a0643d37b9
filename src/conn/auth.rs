//! The authorizer hook: what a client puts in its connect message and how a server judges
//! it. Auth "none" is built in; cephx plugs in here later.

use bytes::{BufMut, Bytes, BytesMut};

use crate::v2::control::AUTH_MODE_MON;
use crate::wire::handshake::auth as proto;
use crate::wire::{EntityName, EntityType};

/// A server's verdict on a client's authorizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accept; the bytes are the authorizer reply.
    Accept(Bytes),
    /// Reject with BADAUTHORIZER.
    Reject,
    /// Ask the client to answer a challenge (CHALLENGE_AUTHORIZER) carrying these bytes.
    Challenge(Bytes),
}

/// The authorizer hook of a connection.
pub trait Authorizer: Send {
    /// Client: the authorizer protocol and bytes for a connect message to a peer of type
    /// `peer`. `challenge` is set when the server answered CHALLENGE_AUTHORIZER.
    fn build(&mut self, peer: EntityType, challenge: Option<&[u8]>) -> (u32, Bytes);

    /// Client: checks the server's authorizer reply (empty for auth none).
    fn verify_reply(&mut self, reply: &[u8]) -> bool;

    /// Server: judges a client's authorizer.
    fn verify(&mut self, peer: EntityType, protocol: u32, authorizer: &[u8]) -> Verdict;

    /// msgr2 client: the auth method and method payload of the AUTH_REQUEST frame to a
    /// peer of type `peer`. By default the v1 authorizer of [`build`](Self::build).
    fn v2_request(&mut self, peer: EntityType) -> (u32, Bytes) {
        self.build(peer, None)
    }

    /// msgr2 client: the AUTH_REQUEST_MORE payload answering the server's
    /// AUTH_REPLY_MORE, or `None` when the method has no further rounds (the connection
    /// then fails with an authentication error).
    fn v2_more(&mut self, _reply: &[u8]) -> Option<Bytes> {
        None
    }
}

/// Auth "none": monitors get an empty authorizer (mon sessions authenticate with MAuth
/// messages); other daemons get the auth-none authorizer `u8 1, EntityName, u64
/// global_id`. As a server it accepts everything.
#[derive(Debug, Clone)]
pub struct AuthNone {
    /// The name the authorizer carries.
    pub name: String,
    /// The entity type of the name.
    pub entity: EntityName,
    /// The global id to present (0 before a mon assigned one).
    pub global_id: u64,
}

impl Default for AuthNone {
    fn default() -> Self {
        Self {
            name: "admin".to_owned(),
            entity: EntityName::client(0),
            global_id: 0,
        }
    }
}

impl Authorizer for AuthNone {
    fn build(&mut self, peer: EntityType, _challenge: Option<&[u8]>) -> (u32, Bytes) {
        if peer == EntityType::Mon {
            return (proto::UNKNOWN, Bytes::new());
        }
        let mut b = BytesMut::with_capacity(1 + 8 + self.name.len() + 8);
        b.put_u8(1);
        b.put_u32_le(u32::from(self.entity.ty.to_u8()));
        b.put_u32_le(self.name.len() as u32);
        b.put_slice(self.name.as_bytes());
        b.put_u64_le(self.global_id);
        (proto::NONE, b.freeze())
    }

    fn verify_reply(&mut self, _reply: &[u8]) -> bool {
        true
    }

    /// To a monitor: `u8 AUTH_MODE_MON (10)`, the entity name, the global id (Ceph's
    /// `MonConnection::get_auth_request`; auth none adds nothing). To others: the
    /// authorizer.
    fn v2_request(&mut self, peer: EntityType) -> (u32, Bytes) {
        if peer != EntityType::Mon {
            let (_, b) = self.build(peer, None);
            return (proto::NONE, b);
        }
        let mut b = BytesMut::with_capacity(1 + 8 + self.name.len() + 8);
        b.put_u8(AUTH_MODE_MON);
        b.put_u32_le(u32::from(self.entity.ty.to_u8()));
        b.put_u32_le(self.name.len() as u32);
        b.put_slice(self.name.as_bytes());
        b.put_u64_le(self.global_id);
        (proto::NONE, b.freeze())
    }

    fn verify(&mut self, _peer: EntityType, _protocol: u32, _authorizer: &[u8]) -> Verdict {
        Verdict::Accept(Bytes::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_none_authorizer_layout() {
        let mut a = AuthNone {
            global_id: 0x101e,
            ..AuthNone::default()
        };
        assert_eq!(a.build(EntityType::Mon, None), (0, Bytes::new()));
        let (p, b) = a.build(EntityType::Osd, None);
        assert_eq!(p, 1);
        // Matches the 22-byte authorizer librados sent to an OSD (tests/data README).
        assert_eq!(
            &b[..],
            &[
                1, 8, 0, 0, 0, 5, 0, 0, 0, b'a', b'd', b'm', b'i', b'n', 0x1e, 0x10, 0, 0, 0, 0, 0,
                0
            ]
        );
        // msgr2: the OSD gets the same authorizer under method none.
        assert_eq!(a.v2_request(EntityType::Osd), (1, b));
    }

    #[test]
    fn auth_none_v2_mon_payload_matches_a_capture() {
        // The AUTH_REQUEST payload a 16.2.15 CLI sent a mon (shared/data/captures/cli-v2).
        let mut a = AuthNone::default();
        let (m, b) = a.v2_request(EntityType::Mon);
        assert_eq!(m, 1);
        assert_eq!(
            &b[..],
            &[10, 8, 0, 0, 0, 5, 0, 0, 0, b'a', b'd', b'm', b'i', b'n', 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }
}
