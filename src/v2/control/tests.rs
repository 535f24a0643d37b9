//! Control payloads against frames of real 16.2.15 sessions (`tests/data/v2/README.md`),
//! round trips of every frame type, and hostile input.

use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../../tests/data/v2/", $name)).as_slice()
    };
}

const MON_FEATURES: u64 = 0x3f01_cfbd_fffd_ffff;

fn sa(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

fn v2(s: &str, nonce: u32) -> Addr {
    Addr {
        kind: AddrKind::Msgr2,
        nonce,
        addr: sa(s),
    }
}

/// Decodes a whole captured frame, checks it was consumed exactly and that re-encoding
/// gives the same bytes, and returns it.
fn kat(raw: &[u8]) -> ControlFrame {
    let (f, n) = decode_control_frame(raw).unwrap();
    assert_eq!(n, raw.len(), "{:?} consumed", f.tag());
    assert_eq!(
        f.encode_frame(),
        raw,
        "{:?} re-encodes byte-identically",
        f.tag()
    );
    f
}

#[test]
fn mon_session_hello_both_ways() {
    let ControlFrame::Hello(c) = kat(fixture!("cli-v2-mon/00-c2s-hello.bin")) else {
        panic!("not HELLO")
    };
    assert_eq!(
        c,
        Hello {
            entity_type: 8,
            peer_addr: v2("127.0.0.1:3300", 0),
        }
    );
    assert_eq!(c.peer_addr.encoded_len(), 35);
    let ControlFrame::Hello(s) = kat(fixture!("cli-v2-mon/04-s2c-hello.bin")) else {
        panic!("not HELLO")
    };
    assert_eq!(s.entity_type, 1);
    assert_eq!(s.peer_addr, v2("127.0.0.1:36354", 0));
    assert_eq!(s.peer_addr.to_string(), "v2:127.0.0.1:36354/0");
}

#[test]
fn mon_session_auth_request_auth_done_and_signatures() {
    let ControlFrame::AuthRequest(a) = kat(fixture!("cli-v2-mon/01-c2s-auth_request.bin")) else {
        panic!("not AUTH_REQUEST")
    };
    assert_eq!(a.method, AUTH_METHOD_NONE);
    assert_eq!(a.preferred_modes, [CON_MODE_CRC]);
    let mut want = vec![AUTH_MODE_MON, 8, 0, 0, 0, 5, 0, 0, 0];
    want.extend_from_slice(b"admin");
    want.extend_from_slice(&0u64.to_le_bytes());
    assert_eq!(a.auth_payload, want);

    let ControlFrame::AuthDone(d) = kat(fixture!("cli-v2-mon/05-s2c-auth_done.bin")) else {
        panic!("not AUTH_DONE")
    };
    assert_eq!(
        d,
        AuthDone {
            global_id: 4116,
            con_mode: CON_MODE_CRC,
            auth_payload: vec![],
        }
    );

    for raw in [
        fixture!("cli-v2-mon/02-c2s-auth_signature.bin"),
        fixture!("cli-v2-mon/06-s2c-auth_signature.bin"),
    ] {
        assert_eq!(
            kat(raw),
            ControlFrame::AuthSignature(AuthSignature::default()),
            "auth none: the signature is 32 zero bytes"
        );
    }
}

#[test]
fn mon_session_client_and_server_ident() {
    let ControlFrame::ClientIdent(c) = kat(fixture!("cli-v2-mon/03-c2s-client_ident.bin")) else {
        panic!("not CLIENT_IDENT")
    };
    assert_eq!(
        c,
        ClientIdent {
            addrs: vec![Addr {
                kind: AddrKind::Any,
                nonce: 0xf93c_d445,
                addr: sa("127.0.0.1:0"),
            }],
            target_addr: v2("127.0.0.1:3300", 0),
            gid: -1,
            global_seq: 1,
            supported_features: MON_FEATURES,
            required_features: 0x0800_0000_0000_1000,
            flags: CLIENT_IDENT_FLAG_LOSSY,
            client_cookie: 0,
        }
    );

    let ControlFrame::ServerIdent(s) = kat(fixture!("cli-v2-mon/07-s2c-server_ident.bin")) else {
        panic!("not SERVER_IDENT")
    };
    assert_eq!(
        s,
        ServerIdent {
            addrs: vec![
                v2("127.0.0.1:3300", 0),
                Addr {
                    kind: AddrKind::Legacy,
                    nonce: 0,
                    addr: sa("127.0.0.1:6789"),
                },
            ],
            gid: 0,
            global_seq: 0x1b,
            supported_features: MON_FEATURES,
            required_features: 0x0c01_0200_0204_0000,
            flags: CLIENT_IDENT_FLAG_LOSSY,
            server_cookie: 0,
        }
    );

    // The first, short-lived connection asked for a lossless session.
    let ControlFrame::ClientIdent(c0) = kat(fixture!("cli-v2-mon0-client_ident.bin")) else {
        panic!("not CLIENT_IDENT")
    };
    assert_eq!(c0.flags, 0);
    assert_ne!(c0.client_cookie, 0);
    assert_eq!(c0.addrs[0].nonce, 0x6b0e_fa16);
}

#[test]
fn osd_session_frames() {
    let osd = v2("127.0.0.1:6800", 7310);
    let ControlFrame::Hello(h) = kat(fixture!("rados-v2-osd/00-c2s-hello.bin")) else {
        panic!("not HELLO")
    };
    assert_eq!((h.entity_type, h.peer_addr), (8, osd));
    let ControlFrame::Hello(h) = kat(fixture!("rados-v2-osd/04-s2c-hello.bin")) else {
        panic!("not HELLO")
    };
    assert_eq!((h.entity_type, h.peer_addr), (4, v2("127.0.0.1:56108", 0)));

    let ControlFrame::AuthRequest(a) = kat(fixture!("rados-v2-osd/01-c2s-auth_request.bin")) else {
        panic!("not AUTH_REQUEST")
    };
    assert_eq!(a.auth_payload[0], AUTH_MODE_AUTHORIZER);
    assert_eq!(a.auth_payload[14..], 0x101eu64.to_le_bytes());
    let ControlFrame::AuthDone(d) = kat(fixture!("rados-v2-osd/05-s2c-auth_done.bin")) else {
        panic!("not AUTH_DONE")
    };
    assert_eq!(d.global_id, 0x101e);
    kat(fixture!("rados-v2-osd/02-c2s-auth_signature.bin"));
    kat(fixture!("rados-v2-osd/06-s2c-auth_signature.bin"));

    let ControlFrame::ClientIdent(c) = kat(fixture!("rados-v2-osd/03-c2s-client_ident.bin")) else {
        panic!("not CLIENT_IDENT")
    };
    assert_eq!(c.target_addr, osd, "the target carries the OSD's nonce");
    assert_eq!((c.gid, c.global_seq), (0x101e, 2));
    let ControlFrame::ServerIdent(s) = kat(fixture!("rados-v2-osd/07-s2c-server_ident.bin")) else {
        panic!("not SERVER_IDENT")
    };
    assert_eq!(s.addrs, [osd]);
    assert_eq!(s.required_features, 0x0c01_0200_4204_0000);
    assert_eq!((s.flags, s.server_cookie), (CLIENT_IDENT_FLAG_LOSSY, 0));
}

/// A tiny deterministic generator, so the round trips cover many values without a seed
/// file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn u32(&mut self) -> u32 {
        self.next() as u32
    }

    fn bytes(&mut self) -> Vec<u8> {
        let n = (self.next() % 40) as usize;
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn u32s(&mut self) -> Vec<u32> {
        let n = (self.next() % 4) as usize;
        (0..n).map(|_| self.u32()).collect()
    }

    fn addr(&mut self) -> Addr {
        let kind = AddrKind::from_u32(self.u32() % 5);
        let addr = match self.next() % 3 {
            0 => None,
            1 => Some(SocketAddr::new(
                std::net::Ipv4Addr::from(self.u32()).into(),
                self.next() as u16,
            )),
            _ => Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                std::net::Ipv6Addr::from(u128::from(self.next()) << 64 | u128::from(self.next())),
                self.next() as u16,
                self.u32(),
                self.u32(),
            ))),
        };
        Addr {
            kind,
            nonce: self.u32(),
            addr,
        }
    }

    fn addrs(&mut self) -> Vec<Addr> {
        let n = (self.next() % 3) as usize;
        (0..n).map(|_| self.addr()).collect()
    }

    fn stamp(&mut self) -> Timespec {
        Timespec {
            sec: self.u32(),
            nsec: self.u32(),
        }
    }

    /// One frame of every control type.
    fn frames(&mut self) -> Vec<ControlFrame> {
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.iter_mut().for_each(|b| *b = self.next() as u8);
        vec![
            Hello {
                entity_type: self.next() as u8,
                peer_addr: self.addr(),
            }
            .into(),
            AuthRequest {
                method: self.u32(),
                preferred_modes: self.u32s(),
                auth_payload: self.bytes(),
            }
            .into(),
            AuthBadMethod {
                method: self.u32(),
                result: self.u32() as i32,
                allowed_methods: self.u32s(),
                allowed_modes: self.u32s(),
            }
            .into(),
            AuthReplyMore {
                auth_payload: self.bytes(),
            }
            .into(),
            AuthRequestMore {
                auth_payload: self.bytes(),
            }
            .into(),
            AuthDone {
                global_id: self.next(),
                con_mode: self.u32(),
                auth_payload: self.bytes(),
            }
            .into(),
            AuthSignature { sha256: sig }.into(),
            ClientIdent {
                addrs: self.addrs(),
                target_addr: self.addr(),
                gid: self.next() as i64,
                global_seq: self.next(),
                supported_features: self.next(),
                required_features: self.next(),
                flags: self.next(),
                client_cookie: self.next(),
            }
            .into(),
            ServerIdent {
                addrs: self.addrs(),
                gid: self.next() as i64,
                global_seq: self.next(),
                supported_features: self.next(),
                required_features: self.next(),
                flags: self.next(),
                server_cookie: self.next(),
            }
            .into(),
            IdentMissingFeatures {
                features: self.next(),
            }
            .into(),
            SessionReconnect {
                addrs: self.addrs(),
                client_cookie: self.next(),
                server_cookie: self.next(),
                global_seq: self.next(),
                connect_seq: self.next(),
                msg_seq: self.next(),
            }
            .into(),
            SessionReset {
                full: self.next() % 2 == 0,
            }
            .into(),
            SessionRetry {
                connect_seq: self.next(),
            }
            .into(),
            SessionRetryGlobal {
                global_seq: self.next(),
            }
            .into(),
            SessionReconnectOk {
                msg_seq: self.next(),
            }
            .into(),
            Wait.into(),
            Keepalive2 {
                timestamp: self.stamp(),
            }
            .into(),
            Keepalive2Ack {
                timestamp: self.stamp(),
            }
            .into(),
            Ack { seq: self.next() }.into(),
        ]
    }
}

#[test]
fn every_frame_round_trips_and_every_strict_prefix_is_refused() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut tags = std::collections::BTreeSet::new();
    for _ in 0..200 {
        for f in rng.frames() {
            let tag = f.tag();
            tags.insert(tag as u8);
            let payload = f.encode();
            assert_eq!(ControlFrame::decode(tag, &payload).as_ref(), Ok(&f));
            let whole = f.encode_frame();
            assert_eq!(decode_control_frame(&whole), Ok((f.clone(), whole.len())));
            // Trailing bytes are ignored, as Ceph does.
            let mut longer = payload.clone();
            longer.extend_from_slice(&[0xAB; 5]);
            assert_eq!(ControlFrame::decode(tag, &longer).as_ref(), Ok(&f));
            for n in 0..payload.len() {
                let e = ControlFrame::decode(tag, &payload[..n]).unwrap_err();
                assert!(
                    matches!(e, ControlError::Payload { tag: t, .. } if t == tag),
                    "{tag:?} cut at {n}: {e}"
                );
            }
        }
    }
    assert_eq!(tags.len(), 19, "every control tag covered");
}

#[test]
fn the_trait_and_the_enum_agree() {
    let h = Hello {
        entity_type: 8,
        peer_addr: v2("10.0.0.1:3300", 0),
    };
    assert_eq!(<Hello as ControlPayload>::TAG, Tag::Hello);
    assert_eq!(h.encode(), ControlFrame::from(h.clone()).encode());
    assert_eq!(
        h.encode_frame(),
        ControlFrame::Hello(h.clone()).encode_frame()
    );
    assert_eq!(Hello::decode(&h.encode()), Ok(h));
    assert_eq!(Wait.encode_frame().len(), frame::PREAMBLE_LEN);
    assert_eq!(Ack { seq: 7 }.encode(), 7u64.to_le_bytes());
    assert_eq!(
        Keepalive2 {
            timestamp: Timespec { sec: 1, nsec: 2 }
        }
        .encode(),
        [1, 0, 0, 0, 2, 0, 0, 0]
    );
}

#[test]
fn blank_and_ipv6_addresses_use_cephs_sockaddr_lengths() {
    let mut b = Vec::new();
    Addr::BLANK.encode(&mut b);
    assert_eq!(b.len(), 47);
    assert_eq!(
        &b[..19],
        &[1, 1, 1, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0]
    );
    assert!(b[19..].iter().all(|&x| x == 0));
    assert_eq!(Addr::decode(&b), Ok((Addr::BLANK, 47)));

    let a = Addr::new(AddrKind::Msgr2, "[::1]:3300".parse().unwrap(), 9);
    let mut b = Vec::new();
    a.encode(&mut b);
    assert_eq!(b.len(), a.encoded_len());
    assert_eq!(
        &b[19..23],
        &[10, 0, 0x0c, 0xe4],
        "family le16 10, port big-endian"
    );
    assert_eq!(Addr::decode(&b), Ok((a, 47)));
}

#[test]
fn hostile_payloads_are_typed_errors() {
    let bad = |tag, p: &[u8]| match ControlFrame::decode(tag, p) {
        Err(ControlError::Payload { error, .. }) => error,
        other => panic!("{tag:?}: {other:?}"),
    };
    // A vector<u32> count far past the payload: refused before allocating.
    let mut p = 1u32.to_le_bytes().to_vec();
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        bad(Tag::AuthRequest, &p),
        DecodeError::BadLength { .. }
    ));
    // A bufferlist longer than the payload.
    assert!(matches!(
        bad(Tag::AuthReplyMore, &u32::MAX.to_le_bytes()),
        DecodeError::Truncated { .. }
    ));
    // An addrvec with a huge count, and unknown markers.
    assert!(matches!(
        bad(Tag::ServerIdent, &[2, 0xff, 0xff, 0xff, 0xff, 1]),
        DecodeError::BadLength { .. }
    ));
    assert_eq!(bad(Tag::Hello, &[8, 7]), DecodeError::BadAddrMarker(7));
    assert_eq!(bad(Tag::ClientIdent, &[3]), DecodeError::BadAddrMarker(3));
    // An entity_addr_t whose block length runs past the payload.
    assert!(matches!(
        bad(Tag::Hello, &[8, 1, 1, 1, 0xff, 0xff, 0, 0]),
        DecodeError::BadLength { .. }
    ));
    // An unknown address family.
    let mut h = Hello {
        entity_type: 8,
        peer_addr: v2("127.0.0.1:1", 0),
    }
    .encode();
    h[20] = 0x77;
    assert_eq!(bad(Tag::Hello, &h), DecodeError::BadAddrFamily(0x77));
    assert_eq!(
        ControlFrame::decode(Tag::Message, &[]),
        Err(ControlError::NotControl(Tag::Message))
    );
    // Every error displays.
    assert!(!ControlError::Segments(2).to_string().is_empty());
}

#[test]
fn whole_frame_decoding_checks_crcs_and_segments() {
    let raw = fixture!("cli-v2-mon/05-s2c-auth_done.bin");
    let mut bad = raw.to_vec();
    bad[40] ^= 1;
    assert!(matches!(
        decode_control_frame(&bad),
        Err(ControlError::Frame(FrameError::SegmentCrc {
            segment: 0,
            ..
        }))
    ));
    assert!(matches!(
        decode_control_frame(&raw[..raw.len() - 1]),
        Err(ControlError::Frame(FrameError::Truncated { .. }))
    ));
    let two = Preamble::for_segments(Tag::AuthDone, [16, 1, 0, 0], [8; 4]).encode();
    assert_eq!(decode_control_frame(&two), Err(ControlError::Segments(2)));
    let msg = Preamble::for_segments(Tag::Message, [41, 0, 0, 0], [8; 4]).encode();
    assert_eq!(
        decode_control_frame(&msg),
        Err(ControlError::NotControl(Tag::Message))
    );
    let mut unknown = Preamble::for_segments(Tag::Ack, [8, 0, 0, 0], [8; 4]).encode();
    unknown[0] = 99;
    let crc = crate::wire::ceph_crc32c(0, &unknown[..28]);
    unknown[28..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        decode_control_frame(&unknown),
        Err(ControlError::Frame(FrameError::UnknownTag(99)))
    );
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(tag in 1u8..=20, p in proptest::collection::vec(any::<u8>(), 0..200)) {
        let tag = Tag::from_u8(tag).unwrap();
        if let Ok(f) = ControlFrame::decode(tag, &p) {
            // Whatever decodes re-decodes to itself from its own encoding.
            prop_assert_eq!(ControlFrame::decode(tag, &f.encode()), Ok(f));
        }
    }

    #[test]
    fn decoding_arbitrary_frames_never_panics(p in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_control_frame(&p);
    }

    #[test]
    fn mutated_captured_payloads_never_panic(i in 0usize..8, at in 0usize..200, x in any::<u8>()) {
        let raw = [
            fixture!("cli-v2-mon/00-c2s-hello.bin"),
            fixture!("cli-v2-mon/01-c2s-auth_request.bin"),
            fixture!("cli-v2-mon/03-c2s-client_ident.bin"),
            fixture!("cli-v2-mon/07-s2c-server_ident.bin"),
            fixture!("rados-v2-osd/03-c2s-client_ident.bin"),
            fixture!("rados-v2-osd/07-s2c-server_ident.bin"),
            fixture!("cli-v2-mon/05-s2c-auth_done.bin"),
            fixture!("rados-v2-osd/01-c2s-auth_request.bin"),
        ][i];
        let tag = Tag::from_u8(raw[0]).unwrap();
        let mut p = raw[32..raw.len() - 4].to_vec();
        let at = at % p.len();
        p[at] = x;
        let _ = ControlFrame::decode(tag, &p);
    }
}
