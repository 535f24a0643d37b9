//! The banner and connect negotiation, in both roles: reading the peer's hello, the
//! connect message and its reply, every reply tag, the server's session rules and the
//! SEQ exchange. See `docs/session.md` for the rules and their sources.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use super::{Connection, Error, Event, Inner, PeerInfo, Phase, Verdict, MAX_AUTHORIZER_LEN};
use crate::send::Protocol;
use crate::wire::handshake::{
    self, features as feat, ClientHello, ConnectMsg, ConnectReply, EntityAddr, ServerHello,
    CLIENT_HELLO_LEN, CONNECT_LEN, CONNECT_LOSSY, CONNECT_REPLY_LEN, SEQ_LEN, SERVER_HELLO_LEN,
};
use crate::wire::{tag, DecodeError, EntityType};

impl Connection {
    pub(super) fn start_server_transport(&mut self, peer_sock: SocketAddr) {
        self.rx.clear();
        self.peer_sock = Some(peer_sock);
        if self.cfg.protocol == Protocol::V2 {
            // Both protocols on one listener: the client speaks first in both, so wait
            // for its banner before sending ours.
            self.state = Inner::Handshake(Phase::DetectProtocol);
            return;
        }
        self.v1_start_server();
    }

    /// Server: sends the v1 banner and our addresses; reads the client's.
    pub(super) fn v1_start_server(&mut self) {
        self.proto = Protocol::V1;
        self.tx.set_protocol(Protocol::V1);
        let Some(peer_sock) = self.peer_sock else {
            return;
        };
        let hello = ServerHello {
            addr: self.my_addr,
            peer_addr_for_me: EntityAddr::new(Some(peer_sock), 0),
        };
        self.tx.push_raw(Bytes::copy_from_slice(&hello.encode()));
        self.state = Inner::Handshake(Phase::ReadClientHello);
    }

    pub(super) fn handshake_step(&mut self, now: Instant, phase: Phase) -> Result<bool, Error> {
        match phase {
            Phase::ReadServerHello => {
                // Judge the banner as soon as it is in: a msgr2-only peer sends its 26-byte
                // banner and then waits for ours, so the full hello would never come.
                let head = self.rx.peek();
                if head.len() >= handshake::BANNER_LEN || head.starts_with(handshake::MSGR2_BANNER)
                {
                    handshake::check_banner(head).map_err(Error::Handshake)?;
                }
                let Some(b) = self.rx.take(SERVER_HELLO_LEN) else {
                    return Ok(false);
                };
                let hello = ServerHello::decode(&b).map_err(Error::Handshake)?;
                self.peer_addr = EntityAddr {
                    addr: self.peer_addr.addr.or(hello.addr.addr),
                    ..hello.addr
                };
                if self.my_addr.is_blank_ip() {
                    if let Some(ip) = hello.peer_addr_for_me.ip() {
                        let port = self.my_addr.addr.map_or(0, |a| a.port());
                        self.my_addr.addr = Some(SocketAddr::new(ip, port));
                    }
                }
                self.send_connect();
                self.state = Inner::Handshake(Phase::ReadConnectReply);
                Ok(true)
            }
            Phase::ReadConnectReply => {
                let Some(head) = self.rx.peek().get(..CONNECT_REPLY_LEN) else {
                    return Ok(false);
                };
                let reply = ConnectReply::decode(head).map_err(Error::Handshake)?;
                if reply.authorizer_len > MAX_AUTHORIZER_LEN {
                    return Err(Error::AuthorizerTooLong(reply.authorizer_len));
                }
                let total = CONNECT_REPLY_LEN + reply.trailer_len() as usize;
                let Some(b) = self.rx.take(total) else {
                    return Ok(false);
                };
                let auth_reply =
                    b.slice(CONNECT_REPLY_LEN..CONNECT_REPLY_LEN + reply.authorizer_len as usize);
                self.handle_connect_reply(
                    now,
                    &reply,
                    &auth_reply,
                    &b[b.len() - SEQ_LEN.min(b.len())..],
                )?;
                Ok(true)
            }
            Phase::ReadClientHello => {
                let Some(b) = self.rx.take(CLIENT_HELLO_LEN) else {
                    return Ok(false);
                };
                let hello = ClientHello::decode(&b).map_err(Error::Handshake)?;
                let mut addr = hello.addr;
                if addr.is_blank_ip() {
                    if let Some(sock) = self.peer_sock {
                        let port = addr.addr.map_or(0, |a| a.port());
                        addr.addr = Some(SocketAddr::new(sock.ip(), port));
                    }
                }
                self.peer_addr = addr;
                self.state = Inner::Handshake(Phase::ReadConnect);
                Ok(true)
            }
            Phase::ReadConnect => {
                let Some(head) = self.rx.peek().get(..CONNECT_LEN) else {
                    return Ok(false);
                };
                let c = ConnectMsg::decode(head).map_err(Error::Handshake)?;
                if c.authorizer_len > MAX_AUTHORIZER_LEN {
                    return Err(Error::AuthorizerTooLong(c.authorizer_len));
                }
                let Some(b) = self.rx.take(CONNECT_LEN + c.authorizer_len as usize) else {
                    return Ok(false);
                };
                self.handle_connect(now, c, &b[CONNECT_LEN..])?;
                Ok(true)
            }
            Phase::ReadSeq => {
                let Some(b) = self.rx.take(SEQ_LEN) else {
                    return Ok(false);
                };
                let peer_in_seq = handshake::decode_seq(&b).map_err(Error::Handshake)?;
                self.peer_acked(peer_in_seq);
                self.open(now, tag::SEQ);
                Ok(true)
            }
            Phase::AwaitSession(_) => Ok(false),
            // msgr2 phases run in v2.rs.
            _ => Ok(false),
        }
    }

    pub(super) fn send_connect(&mut self) {
        self.global_seq = self.global_seq.wrapping_add(1);
        let (proto, authorizer) = self.auth.build(self.peer_type, self.challenge.as_deref());
        let c = ConnectMsg {
            features: self.cfg.features,
            host_type: u32::from(self.cfg.name.ty.to_u8()),
            global_seq: self.global_seq,
            connect_seq: self.connect_seq,
            protocol_version: proto_for(self.peer_type),
            authorizer_protocol: proto,
            authorizer_len: authorizer.len() as u32,
            flags: if self.cfg.lossy { CONNECT_LOSSY } else { 0 },
        };
        let mut b = BytesMut::with_capacity(CONNECT_LEN + authorizer.len());
        b.put_slice(&c.encode());
        b.put_slice(&authorizer);
        self.tx.push_raw(b.freeze());
    }

    pub(super) fn handle_connect_reply(
        &mut self,
        now: Instant,
        r: &ConnectReply,
        auth_reply: &[u8],
        seq_bytes: &[u8],
    ) -> Result<(), Error> {
        if r.tag == tag::CHALLENGE_AUTHORIZER {
            self.challenge = Some(Bytes::copy_from_slice(auth_reply));
            self.send_connect();
            return Ok(());
        }
        if !auth_reply.is_empty() && !self.auth.verify_reply(auth_reply) {
            return Err(Error::AuthFailed);
        }
        match r.tag {
            tag::FEATURES => Err(Error::MissingFeatures {
                missing: r.features & !self.cfg.features,
            }),
            tag::BADPROTOVER => Err(Error::BadProtocolVersion {
                ours: proto_for(self.peer_type),
                theirs: r.protocol_version,
            }),
            tag::BADAUTHORIZER => {
                self.auth_retries += 1;
                if self.auth_retries >= 2 {
                    return Err(Error::AuthFailed);
                }
                self.send_connect();
                Ok(())
            }
            tag::RESETSESSION => {
                self.reset_session();
                self.send_connect();
                Ok(())
            }
            tag::RETRY_SESSION => {
                self.connect_seq = r.connect_seq;
                self.send_connect();
                Ok(())
            }
            tag::RETRY_GLOBAL => {
                self.global_seq = self.global_seq.max(r.global_seq);
                self.send_connect();
                Ok(())
            }
            tag::WAIT => Err(Error::UnexpectedWait),
            tag::READY | tag::SEQ => {
                let missing = self.cfg.required_features & !r.features;
                if missing != 0 {
                    return Err(Error::MissingFeatures { missing });
                }
                self.features = self.cfg.features & r.features;
                self.peer_global_seq = r.global_seq;
                self.connect_seq = self.connect_seq.wrapping_add(1);
                self.peer_lossy = r.is_lossy();
                self.auth_retries = 0;
                self.challenge = None;
                if r.tag == tag::SEQ {
                    let peer_in_seq = handshake::decode_seq(seq_bytes).map_err(Error::Handshake)?;
                    self.peer_acked(peer_in_seq);
                    self.tx
                        .push_raw(Bytes::copy_from_slice(&handshake::encode_seq(self.in_seq)));
                }
                self.open(now, r.tag);
                Ok(())
            }
            other => Err(Error::Handshake(DecodeError::UnknownTag(other))),
        }
    }

    pub(super) fn handle_connect(
        &mut self,
        now: Instant,
        c: ConnectMsg,
        authorizer: &[u8],
    ) -> Result<(), Error> {
        let ty = u8::try_from(c.host_type)
            .ok()
            .and_then(|t| EntityType::from_u8(t).ok())
            .ok_or(Error::BadPeerType(c.host_type))?;
        self.peer_type = ty;
        // The client protocol number of our own type (types without one check nothing).
        let ours = handshake::protocol::for_peer(self.cfg.name.ty);
        if let (true, Some(ours)) = (self.cfg.check_protocol_version, ours) {
            if c.protocol_version != ours {
                self.refuse(
                    tag::BADPROTOVER,
                    &c,
                    format!(
                        "{} speaks protocol {}; connections to {} use {ours}",
                        ty.name(),
                        c.protocol_version,
                        self.cfg.name.ty.name()
                    ),
                );
                return Ok(());
            }
        }
        let missing = self.cfg.required_features & !c.features;
        if missing != 0 {
            self.refuse(
                tag::FEATURES,
                &c,
                format!("missing required features {missing:#x}"),
            );
            return Ok(());
        }
        match self.auth.verify(ty, c.authorizer_protocol, authorizer) {
            Verdict::Reject => {
                self.refuse(
                    tag::BADAUTHORIZER,
                    &c,
                    format!(
                        "authorizer rejected (protocol {}, {} bytes)",
                        c.authorizer_protocol,
                        authorizer.len()
                    ),
                );
                return Ok(());
            }
            Verdict::Challenge(ch) => {
                self.reply(tag::CHALLENGE_AUTHORIZER, &c, &ch);
                return Ok(());
            }
            Verdict::Accept(_) => {}
        }
        if self.cfg.sessions && !self.cfg.lossy && !self.has_session {
            self.state = Inner::Handshake(Phase::AwaitSession(c));
            self.events.push_back(Event::PeerIdentified(PeerInfo {
                addr: self.peer_addr,
                ty,
                connect: c,
            }));
            return Ok(());
        }
        self.decide(now, c);
        Ok(())
    }

    /// Server: answers a verified connect against this session's state.
    pub(super) fn decide(&mut self, now: Instant, c: ConnectMsg) {
        if self.cfg.lossy || !self.has_session {
            if c.connect_seq > 0 {
                // The peer thinks we share a session; we have none (a lossy server keeps
                // none across transports). Ceph answers the same, lossy or not
                // (`ProtocolV1::handle_connect_message_2`, "accept we reset").
                self.reply(tag::RESETSESSION, &c, &[]);
                return;
            }
            self.accept(now, c);
            return;
        }
        if c.global_seq < self.peer_global_seq {
            let mut r = self.reply_base(tag::RETRY_GLOBAL, &c);
            r.global_seq = self.peer_global_seq;
            self.send_reply(&r, &[]);
        } else if c.connect_seq == 0 && self.connect_seq > 0 {
            // The peer restarted: its old session is gone, so is ours.
            self.reset_session();
            self.reset_from_peer = true;
            self.accept(now, c);
        } else if c.connect_seq <= self.connect_seq {
            let mut r = self.reply_base(tag::RETRY_SESSION, &c);
            r.connect_seq = self.connect_seq.wrapping_add(1);
            self.send_reply(&r, &[]);
        } else {
            self.accept(now, c);
        }
    }

    pub(super) fn reply_base(&self, t: u8, c: &ConnectMsg) -> ConnectReply {
        ConnectReply {
            tag: t,
            features: (c.features & self.cfg.features) | self.cfg.required_features,
            global_seq: self.global_seq,
            connect_seq: 0,
            protocol_version: proto_for(self.cfg.name.ty),
            authorizer_len: 0,
            flags: 0,
        }
    }

    /// Server: refuses a connect with `t` and reports why.
    fn refuse(&mut self, t: u8, c: &ConnectMsg, reason: String) {
        self.reply(t, c, &[]);
        self.events.push_back(Event::ConnectRefused {
            reply_tag: t,
            reason,
        });
    }

    pub(super) fn reply(&mut self, t: u8, c: &ConnectMsg, auth_reply: &[u8]) {
        let r = self.reply_base(t, c);
        self.send_reply(&r, auth_reply);
    }

    pub(super) fn send_reply(&mut self, r: &ConnectReply, auth_reply: &[u8]) {
        let r = ConnectReply {
            authorizer_len: auth_reply.len() as u32,
            ..*r
        };
        let mut b = BytesMut::with_capacity(CONNECT_REPLY_LEN + auth_reply.len() + SEQ_LEN);
        b.put_slice(&r.encode());
        b.put_slice(auth_reply);
        if r.tag == tag::SEQ {
            b.put_slice(&handshake::encode_seq(self.in_seq));
        }
        self.tx.push_raw(b.freeze());
        self.state = Inner::Handshake(Phase::ReadConnect);
    }

    /// Server: opens the session on this transport (READY, or SEQ and wait for the
    /// peer's in_seq).
    pub(super) fn accept(&mut self, now: Instant, c: ConnectMsg) {
        self.connect_seq = c.connect_seq.wrapping_add(1);
        self.peer_global_seq = c.global_seq;
        self.global_seq = self.global_seq.wrapping_add(1);
        let seq = c.features & feat::RECONNECT_SEQ != 0 && !self.reset_from_peer;
        if !seq {
            self.in_seq = 0;
            self.in_seq_acked = 0;
        }
        self.reset_from_peer = false;
        let r = ConnectReply {
            tag: if seq { tag::SEQ } else { tag::READY },
            features: self.cfg.features,
            global_seq: self.global_seq,
            connect_seq: self.connect_seq,
            protocol_version: proto_for(self.cfg.name.ty),
            authorizer_len: 0,
            flags: if self.cfg.lossy { CONNECT_LOSSY } else { 0 },
        };
        self.features = self.cfg.features & c.features;
        self.send_reply(&r, &[]);
        self.has_session = true;
        if seq {
            self.state = Inner::Handshake(Phase::ReadSeq);
        } else {
            self.open(now, tag::READY);
        }
    }
}

/// The protocol version a connect to (or a reply from) an entity of type `t` carries; 0
/// for types without one.
fn proto_for(t: EntityType) -> u32 {
    handshake::protocol::for_peer(t).unwrap_or(0)
}
