//! msgr2.1 sessions in crc mode, both roles: banner exchange, HELLO, authentication
//! (method none through the [`Authorizer`](super::Authorizer) hook, with AUTH_REPLY_MORE
//! rounds), AUTH_SIGNATURE, CLIENT_IDENT / SERVER_IDENT, and the open stream (MESSAGE with
//! header2 and its piggybacked ack, ACK, KEEPALIVE2 / KEEPALIVE2_ACK, aborted frames).
//!
//! ```text
//!  client                                            server
//!  banner ------------------------------------------> (detects v2 from the banner)
//!         <------------------------------------------ banner, HELLO
//!  HELLO, AUTH_REQUEST ------------------------------>
//!         <------------------------------------------ AUTH_REPLY_MORE   (0..n rounds)
//!  AUTH_REQUEST_MORE -------------------------------->
//!         <------------------------------------------ AUTH_DONE, AUTH_SIGNATURE
//!  AUTH_SIGNATURE, CLIENT_IDENT --------------------->
//!         <------------------------------------------ SERVER_IDENT       -> Open
//! ```
//!
//! The session layer around it (seqs, acks, faults, lossy close, the lossless client's
//! restart against a lossy server) is the same one msgr v1 uses.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::{Connection, Error, Event, Inner, OnAborted, Phase, Role, Verdict};
use crate::recv::v2::{Deframed, Frame};
use crate::recv::Received;
use crate::send::Protocol;
use crate::v2::control::{
    Addr, AddrKind, AuthBadMethod, AuthDone, AuthRequest, AuthRequestMore, AuthSignature,
    ClientIdent, ControlFrame, ControlPayload, Hello, IdentMissingFeatures, Keepalive2Ack,
    ServerIdent, SessionReset, AUTH_METHOD_NONE, CLIENT_IDENT_FLAG_LOSSY, CON_MODE_CRC,
};
use crate::v2::frame::{Banner, MsgHeader2, Tag, BANNER_LEN};
use crate::wire::handshake::{features as feat, EntityAddr};
use crate::wire::{Control, EntityName, EntityType, MsgHeader};

/// Bytes that tell a v1 banner (`ceph v027`) from a msgr2 one (`ceph v2\n`).
const V1_V2_TELL: usize = 7;
/// `-EOPNOTSUPP`, the result AUTH_BAD_METHOD carries for a method we do not serve.
const EOPNOTSUPP: i32 = -95;
/// `-EACCES`, the result AUTH_BAD_METHOD carries for a rejected authorizer.
const EACCES: i32 = -13;

impl Connection {
    /// The protocol of the current transport (a server learns it from the client's banner).
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        self.proto
    }

    /// The global id the peer's auth gave us (msgr2 AUTH_DONE; 0 before).
    #[must_use]
    pub fn global_id(&self) -> u64 {
        self.global_id
    }

    /// msgr2: the header of the MESSAGE frame being received, once its head (preamble and
    /// header2) has arrived and before the rest has; `None` otherwise (and always for
    /// msgr v1). Lets a caller decide to [`skip_incoming`](Self::skip_incoming) it.
    #[must_use]
    pub fn incoming_message(&self) -> Option<MsgHeader2> {
        if self.proto != Protocol::V2 || !matches!(self.state, Inner::Open) {
            return None;
        }
        self.v2rx.pending_message(self.rx.buffer_ref())
    }

    /// msgr2: revokes the message being received — the incoming counterpart of
    /// [`revoke`](Self::revoke). The rest of its frame is discarded as it arrives, never
    /// buffered whole and never delivered; its seq counts as received (so it is
    /// acknowledged and not resent). Returns its seq, or `None` when no message head is
    /// buffered ([`incoming_message`](Self::incoming_message)).
    pub fn skip_incoming(&mut self, now: Instant) -> Option<u64> {
        if self.proto != Protocol::V2 || !matches!(self.state, Inner::Open) {
            return None;
        }
        let h = self.v2rx.skip_message(self.rx.buffer_mut())?;
        self.stats.skipped_in += 1;
        self.peer_acked(h.ack_seq);
        if h.seq > self.in_seq {
            self.in_seq = h.seq;
        }
        // Whatever followed the skipped frame in the buffer is handled now.
        self.after_input(now);
        Some(h.seq)
    }

    /// Client: a new transport is connected; starts the msgr2 banner exchange.
    pub(super) fn v2_start_client(&mut self) {
        self.v2_reset_transport();
        self.tx
            .push_raw(Bytes::copy_from_slice(&Banner::OURS.encode()));
        self.state = Inner::Handshake(Phase::V2ReadBanner);
    }

    /// Server: the client's banner said msgr2; answer with ours.
    pub(super) fn v2_start_server(&mut self) {
        self.proto = Protocol::V2;
        self.tx.set_protocol(Protocol::V2);
        self.v2_reset_transport();
        self.tx
            .push_raw(Bytes::copy_from_slice(&Banner::OURS.encode()));
        self.state = Inner::Handshake(Phase::V2ReadBanner);
    }

    fn v2_reset_transport(&mut self) {
        self.v2rx = crate::recv::v2::Deframer::new(self.cfg.limits);
    }

    fn push_frame<P: ControlPayload>(&mut self, p: &P) {
        self.tx.push_raw(Bytes::from(p.encode_frame()));
    }

    /// One step of the msgr2 handshake; `Ok(false)` when more input is needed.
    pub(super) fn v2_handshake_step(&mut self, now: Instant, phase: Phase) -> Result<bool, Error> {
        if let Phase::DetectProtocol = phase {
            let head = self.rx.peek();
            if head.len() < V1_V2_TELL {
                return Ok(false);
            }
            if head.starts_with(&crate::v2::frame::BANNER_PREFIX[..V1_V2_TELL]) {
                self.v2_start_server();
            } else if head.starts_with(&crate::wire::handshake::BANNER[..V1_V2_TELL]) {
                self.v1_start_server();
            } else {
                return Err(Error::Banner(crate::v2::frame::FrameError::BadBanner));
            }
            return Ok(true);
        }
        if let Phase::V2ReadBanner = phase {
            // A v1 peer's banner is told apart at once (its hello would never end).
            Banner::check_prefix(self.rx.peek()).map_err(Error::Banner)?;
            let Some(b) = self.rx.take(BANNER_LEN) else {
                return Ok(false);
            };
            let peer = Banner::decode(&b).map_err(Error::Banner)?;
            Banner::OURS.check_peer(&peer).map_err(Error::Banner)?;
            let hello = Hello {
                entity_type: self.cfg.name.ty.to_u8(),
                peer_addr: match self.role {
                    // The address we connected to, with its nonce.
                    Role::Client => v2_addr(AddrKind::Msgr2, self.peer_addr),
                    // The client's address as the socket shows it.
                    Role::Server => Addr {
                        kind: AddrKind::Msgr2,
                        nonce: 0,
                        addr: self.peer_sock,
                    },
                },
            };
            self.push_frame(&hello);
            self.state = Inner::Handshake(Phase::V2ReadHello);
            return Ok(true);
        }
        let Some(d) = self
            .v2rx
            .next_frame(self.rx.buffer_mut())
            .map_err(Error::Frame)?
        else {
            return Ok(false);
        };
        let f = match d {
            Deframed::Frame(f) => f,
            Deframed::Message(_) => return Err(Error::UnexpectedFrame(Tag::Message)),
            // An aborted frame carries nothing; the handshake goes on.
            Deframed::Aborted(_) => return Ok(true),
        };
        let c = ControlFrame::decode(f.tag, f.payload()).map_err(Error::Control)?;
        match (phase, c) {
            (Phase::V2ReadHello, ControlFrame::Hello(h)) => self.v2_on_hello(&h)?,
            (Phase::V2ReadAuth, ControlFrame::AuthReplyMore(m)) => {
                let more = self
                    .auth
                    .v2_more(&m.auth_payload)
                    .ok_or(Error::AuthFailed)?;
                self.push_frame(&AuthRequestMore {
                    auth_payload: more.to_vec(),
                });
            }
            (Phase::V2ReadAuth, ControlFrame::AuthBadMethod(b)) => {
                return Err(Error::AuthMethodRefused {
                    method: b.method,
                    result: b.result,
                    allowed: b.allowed_methods,
                })
            }
            (Phase::V2ReadAuth, ControlFrame::AuthDone(d)) => {
                if d.con_mode != CON_MODE_CRC {
                    return Err(Error::UnsupportedConMode(d.con_mode));
                }
                self.global_id = d.global_id;
                self.push_frame(&AuthSignature::default());
                self.state = Inner::Handshake(Phase::V2ReadSignature);
            }
            (Phase::V2ReadAuthRequest, ControlFrame::AuthRequest(r)) => self.v2_on_auth(&r),
            (Phase::V2ReadSignature, ControlFrame::AuthSignature(s)) => {
                // No session key (auth none): both sides sign with zeros.
                if s != AuthSignature::default() {
                    return Err(Error::AuthFailed);
                }
                match self.role {
                    Role::Client => {
                        self.v2_send_client_ident();
                        self.state = Inner::Handshake(Phase::V2ReadServerIdent);
                    }
                    Role::Server => self.state = Inner::Handshake(Phase::V2ReadClientIdent),
                }
            }
            (Phase::V2ReadServerIdent, ControlFrame::ServerIdent(s)) => {
                self.v2_on_server_ident(now, &s)?;
            }
            (Phase::V2ReadServerIdent, ControlFrame::IdentMissingFeatures(m)) => {
                return Err(Error::MissingFeatures {
                    missing: m.features,
                })
            }
            (Phase::V2ReadServerIdent, ControlFrame::Wait(_)) => return Err(Error::UnexpectedWait),
            (Phase::V2ReadClientIdent, ControlFrame::ClientIdent(c)) => {
                self.v2_on_client_ident(now, &c);
            }
            (Phase::V2ReadClientIdent, ControlFrame::SessionReconnect(_)) => {
                // Sessions do not outlive a msgr2 transport here: like a lossy Ceph
                // server, tell the client to start over.
                self.push_frame(&SessionReset { full: true });
            }
            (_, c) => return Err(Error::UnexpectedFrame(c.tag())),
        }
        Ok(true)
    }

    fn v2_on_hello(&mut self, h: &Hello) -> Result<(), Error> {
        let ty = EntityType::from_u8(h.entity_type)
            .map_err(|_| Error::BadPeerType(u32::from(h.entity_type)))?;
        match self.role {
            Role::Client => {
                if ty != self.peer_type {
                    return Err(Error::BadPeerType(u32::from(h.entity_type)));
                }
                if self.my_addr.is_blank_ip() {
                    if let Some(ip) = h.peer_addr.addr.map(|a| a.ip()) {
                        let port = self.my_addr.addr.map_or(0, |a| a.port());
                        self.my_addr.addr = Some(SocketAddr::new(ip, port));
                    }
                }
                let (method, payload) = self.auth.v2_request(self.peer_type);
                self.push_frame(&AuthRequest {
                    method,
                    preferred_modes: vec![CON_MODE_CRC],
                    auth_payload: payload.to_vec(),
                });
                self.state = Inner::Handshake(Phase::V2ReadAuth);
            }
            Role::Server => {
                self.peer_type = ty;
                self.state = Inner::Handshake(Phase::V2ReadAuthRequest);
            }
        }
        Ok(())
    }

    /// Server: judges an AUTH_REQUEST. Refusals are AUTH_BAD_METHOD, after which the
    /// client may try another request on the same transport.
    fn v2_on_auth(&mut self, r: &AuthRequest) {
        let bad = |result| AuthBadMethod {
            method: r.method,
            result,
            allowed_methods: vec![AUTH_METHOD_NONE],
            allowed_modes: vec![CON_MODE_CRC],
        };
        if r.method != AUTH_METHOD_NONE || !r.preferred_modes.contains(&CON_MODE_CRC) {
            self.push_frame(&bad(EOPNOTSUPP));
            self.events.push_back(Event::ConnectRefused {
                reply_tag: Tag::AuthBadMethod as u8,
                reason: format!(
                    "auth method {} with modes {:?}: only none in crc mode is served",
                    r.method, r.preferred_modes
                ),
            });
            return;
        }
        // To a monitor the payload is a mon-mode request; to others an authorizer.
        let verdict = if self.cfg.name.ty == EntityType::Mon {
            Verdict::Accept(Bytes::new())
        } else {
            self.auth.verify(self.peer_type, r.method, &r.auth_payload)
        };
        match verdict {
            Verdict::Accept(_) => {
                self.global_id = claimed_global_id(&r.auth_payload)
                    .filter(|&g| g != 0)
                    .unwrap_or_else(|| self.fresh_cookie());
                self.push_frame(&AuthDone {
                    global_id: self.global_id,
                    con_mode: CON_MODE_CRC,
                    auth_payload: Vec::new(),
                });
                self.push_frame(&AuthSignature::default());
                self.state = Inner::Handshake(Phase::V2ReadSignature);
            }
            Verdict::Reject | Verdict::Challenge(_) => {
                self.push_frame(&bad(EACCES));
                self.events.push_back(Event::ConnectRefused {
                    reply_tag: Tag::AuthBadMethod as u8,
                    reason: format!("authorizer rejected ({} bytes)", r.auth_payload.len()),
                });
            }
        }
    }

    fn v2_send_client_ident(&mut self) {
        self.global_seq = self.global_seq.wrapping_add(1);
        let lossy = self.cfg.lossy;
        if !lossy && self.client_cookie == 0 {
            self.client_cookie = self.fresh_cookie();
        }
        let ident = ClientIdent {
            addrs: vec![v2_addr(AddrKind::Any, self.my_addr)],
            target_addr: v2_addr(AddrKind::Msgr2, self.peer_addr),
            gid: i64::try_from(self.global_id).unwrap_or(-1),
            global_seq: u64::from(self.global_seq),
            supported_features: self.cfg.features,
            required_features: self.cfg.required_features | feat::MSG_ADDR2,
            flags: if lossy { CLIENT_IDENT_FLAG_LOSSY } else { 0 },
            client_cookie: if lossy { 0 } else { self.client_cookie },
        };
        self.push_frame(&ident);
    }

    fn v2_on_server_ident(&mut self, now: Instant, s: &ServerIdent) -> Result<(), Error> {
        let missing = self.cfg.required_features & !s.supported_features;
        if missing != 0 {
            return Err(Error::MissingFeatures { missing });
        }
        self.features = self.cfg.features & s.supported_features;
        self.peer_global_seq = s.global_seq as u32;
        self.peer_gid = s.gid;
        self.peer_lossy = s.flags & CLIENT_IDENT_FLAG_LOSSY != 0;
        self.server_cookie = s.server_cookie;
        if let Some(a) = s.addrs.iter().find(|a| a.kind == AddrKind::Msgr2) {
            self.peer_addr.nonce = a.nonce;
        }
        self.auth_retries = 0;
        self.open(now, Tag::ServerIdent as u8);
        Ok(())
    }

    fn v2_on_client_ident(&mut self, now: Instant, c: &ClientIdent) {
        let missing = (self.cfg.required_features | feat::MSG_ADDR2) & !c.supported_features;
        if missing != 0 {
            self.push_frame(&IdentMissingFeatures { features: missing });
            self.events.push_back(Event::ConnectRefused {
                reply_tag: Tag::IdentMissingFeatures as u8,
                reason: format!("missing required features {missing:#x}"),
            });
            return;
        }
        let mut addr = c.addrs.first().copied().unwrap_or(Addr::BLANK);
        if addr.addr.map_or(true, |a| a.ip().is_unspecified()) {
            if let Some(sock) = self.peer_sock {
                let port = addr.addr.map_or(0, |a| a.port());
                addr.addr = Some(SocketAddr::new(sock.ip(), port));
            }
        }
        self.peer_addr = EntityAddr::new(addr.addr, addr.nonce);
        self.peer_gid = c.gid;
        self.peer_global_seq = c.global_seq as u32;
        self.peer_lossy = c.flags & CLIENT_IDENT_FLAG_LOSSY != 0;
        self.client_cookie = c.client_cookie;
        self.features = self.cfg.features & c.supported_features;
        self.global_seq = self.global_seq.wrapping_add(1);
        if !self.cfg.lossy && self.server_cookie == 0 {
            self.server_cookie = self.fresh_cookie();
        }
        let ident = ServerIdent {
            addrs: vec![v2_addr(AddrKind::Msgr2, self.my_addr)],
            gid: i64::try_from(self.cfg.name.num).unwrap_or(-1),
            global_seq: u64::from(self.global_seq),
            supported_features: self.cfg.features,
            required_features: self.cfg.required_features | feat::MSG_ADDR2,
            flags: if self.cfg.lossy {
                CLIENT_IDENT_FLAG_LOSSY
            } else {
                0
            },
            server_cookie: if self.cfg.lossy {
                0
            } else {
                self.server_cookie
            },
        };
        self.push_frame(&ident);
        self.open(now, Tag::ServerIdent as u8);
    }

    /// One step of an open msgr2 stream.
    pub(super) fn v2_open_step(&mut self, now: Instant) -> Result<bool, Error> {
        let Some(d) = self
            .v2rx
            .next_frame(self.rx.buffer_mut())
            .map_err(Error::Frame)?
        else {
            return Ok(false);
        };
        match d {
            Deframed::Message(m) => {
                self.peer_acked(m.header.ack_seq);
                let header = self.v1_header(&m.header, [&m.front, &m.middle, &m.data]);
                self.deliver(Received {
                    header,
                    front: m.front,
                    middle: m.middle,
                    data: m.data,
                })?;
            }
            Deframed::Aborted(a) => {
                self.stats.aborted_in += 1;
                let seq = a.header.map_or(0, |h| h.seq);
                if self.cfg.on_aborted == OnAborted::Fault {
                    return Err(Error::AbortedMessage { seq });
                }
                // msgr2: an aborted frame is dropped and in_seq stays (Ceph's
                // ProtocolV2 resets its throttle and reads the next frame).
                if let Some(h) = a.header {
                    let header = self.v1_header(&h, [&Bytes::new(), &Bytes::new(), &Bytes::new()]);
                    self.events.push_back(Event::AbortedMessage(header));
                }
            }
            Deframed::Frame(f) => self.v2_open_control(now, &f)?,
        }
        Ok(true)
    }

    fn v2_open_control(&mut self, now: Instant, f: &Frame) -> Result<(), Error> {
        match ControlFrame::decode(f.tag, f.payload()).map_err(Error::Control)? {
            ControlFrame::Ack(a) => self.peer_acked(a.seq),
            ControlFrame::Keepalive2(k) => {
                self.stats.keepalives_answered += 1;
                self.tx.push_control(Control::Keepalive2Ack(k.timestamp));
            }
            ControlFrame::Keepalive2Ack(Keepalive2Ack { timestamp }) => {
                let rtt = match self.keepalive_sent {
                    Some((stamp, at)) if stamp == timestamp => {
                        Some(now.saturating_duration_since(at))
                    }
                    _ => None,
                };
                self.events.push_back(Event::KeepaliveAck { rtt });
            }
            other => return Err(Error::UnexpectedFrame(other.tag())),
        }
        Ok(())
    }

    /// The v1 header a msgr2 message stands for (as Ceph's ProtocolV2 rebuilds it): the
    /// source is the peer's type and gid.
    fn v1_header(&self, h: &MsgHeader2, sections: [&Bytes; 3]) -> MsgHeader {
        let len = |b: &Bytes| u32::try_from(b.len()).unwrap_or(u32::MAX);
        MsgHeader {
            seq: h.seq,
            tid: h.tid,
            ty: h.ty,
            priority: h.priority,
            version: h.version,
            front_len: len(sections[0]),
            middle_len: len(sections[1]),
            data_len: len(sections[2]),
            data_off: h.data_off,
            src: EntityName {
                ty: self.peer_type,
                num: self.peer_gid as u64,
            },
            compat_version: h.compat_version,
        }
    }

    /// A non-zero value for cookies and assigned global ids, different per call and per
    /// connection (mixed from the nonce, the peer's port, the global seq and a counter;
    /// the core reads no clock and no entropy, and cookies need not be secret).
    fn fresh_cookie(&mut self) -> u64 {
        self.cookie_counter = self.cookie_counter.wrapping_add(1);
        let port = self.peer_sock.map_or(0, |s| u64::from(s.port()));
        let mut x = (u64::from(self.cfg.nonce) << 32)
            ^ (port << 16)
            ^ u64::from(self.global_seq)
            ^ self.cookie_counter.rotate_left(40);
        // splitmix64 finaliser: spreads the bits.
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        x.max(1)
    }
}

/// An `entity_addr_t` of `kind` for a v1-style address.
fn v2_addr(kind: AddrKind, a: EntityAddr) -> Addr {
    Addr {
        kind,
        nonce: a.nonce,
        addr: a.addr,
    }
}

/// The global id an auth-none payload claims (its last 8 bytes: after the mode byte and
/// the entity name), if it has that shape.
fn claimed_global_id(payload: &[u8]) -> Option<u64> {
    let name_len = u32::from_le_bytes(payload.get(5..9)?.try_into().ok()?) as usize;
    let at = 9usize.checked_add(name_len)?;
    let g = payload.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(g.try_into().ok()?))
}
