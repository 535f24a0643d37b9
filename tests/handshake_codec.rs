//! The handshake codec against bytes recorded from a real Ceph 16.2 monitor and OSD
//! (`tests/data/*.bin`, described in `tests/data/README.md`): every handshake record is
//! decoded, re-encoded byte for byte, and the message frames that follow are walked with
//! their header, front, middle and data CRCs checked.

use std::net::{IpAddr, Ipv4Addr};

use ceph_msgr::wire::handshake::{
    self, auth, features, protocol, ClientHello, ConnectMsg, ConnectReply, ServerHello,
    CLIENT_HELLO_LEN, CONNECT_LEN, CONNECT_REPLY_LEN, SEQ_LEN, SERVER_HELLO_LEN,
};
use ceph_msgr::wire::{
    ceph_crc32c, tag, Control, EntityName, EntityType, Footer, FooterKind, MsgHeader,
    FOOTER_COMPLETE,
};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

// Message types seen in the captures (`CEPH_MSG_*` / `MSG_*`).
const MSG_MON_MAP: u16 = 4;
const MSG_MON_SUBSCRIBE: u16 = 15;
const MSG_AUTH: u16 = 17;
const MSG_AUTH_REPLY: u16 = 18;
const MSG_OSD_MAP: u16 = 41;
const MSG_OSD_OP: u16 = 42;
const MSG_OSD_OPREPLY: u16 = 43;
const MSG_CONFIG: u16 = 62;
const MSG_MGR_MAP: u16 = 0x704;

/// The mon's full feature set (Ceph 16.2.15 `CEPH_FEATURES_ALL`), sent in its READY/SEQ reply.
const PACIFIC_FEATURES: u64 = 0x3f01_cfbd_fffd_ffff;

/// One record of an open stream.
#[derive(Debug)]
enum Rec<'a> {
    Msg {
        /// Offset of the tag byte in the direction's byte stream.
        at: usize,
        header: MsgHeader,
        front: &'a [u8],
        middle: &'a [u8],
        data: &'a [u8],
        footer: Footer,
    },
    Ctl {
        at: usize,
        ctl: Control,
    },
}

impl Rec<'_> {
    fn msg_type(&self) -> Option<u16> {
        match self {
            Rec::Msg { header, .. } => Some(header.ty),
            Rec::Ctl { .. } => None,
        }
    }
}

/// Walks tag-prefixed records from `at` to the end of `buf`, checking every CRC.
fn walk(buf: &[u8], mut at: usize, kind: FooterKind) -> Vec<Rec<'_>> {
    let mut out = Vec::new();
    while at < buf.len() {
        let start = at;
        let t = buf[at];
        at += 1;
        if t == tag::MSG {
            let header = MsgHeader::decode(&buf[at..])
                .unwrap_or_else(|e| panic!("header of message at {start}: {e}"));
            at += 53;
            let mut section = |len: u32| {
                let s = &buf[at..at + len as usize];
                at += len as usize;
                s
            };
            let front = section(header.front_len);
            let middle = section(header.middle_len);
            let data = section(header.data_len);
            let footer = Footer::decode(kind, &buf[at..]).unwrap();
            at += kind.encoded_len();
            assert_eq!(
                footer.front_crc,
                ceph_crc32c(0, front),
                "front crc @{start}"
            );
            assert_eq!(
                footer.middle_crc,
                ceph_crc32c(0, middle),
                "middle crc @{start}"
            );
            assert_eq!(footer.data_crc, ceph_crc32c(0, data), "data crc @{start}");
            assert_eq!(footer.flags, FOOTER_COMPLETE, "footer flags @{start}");
            assert_eq!(footer.sig, 0, "no signing with auth none");
            out.push(Rec::Msg {
                at: start,
                header,
                front,
                middle,
                data,
                footer,
            });
        } else {
            let len =
                Control::payload_len(t).unwrap_or_else(|| panic!("unexpected tag {t} at {start}"));
            let ctl = Control::decode(t, &buf[at..at + len]).unwrap();
            at += len;
            out.push(Rec::Ctl { at: start, ctl });
        }
    }
    assert_eq!(
        at,
        buf.len(),
        "records end exactly at the end of the stream"
    );
    out
}

/// Both directions of one session, decoded.
struct Session<'a> {
    server_hello: ServerHello,
    client_hello: ClientHello,
    connect: ConnectMsg,
    authorizer: &'a [u8],
    reply: ConnectReply,
    server_in_seq: Option<u64>,
    client_in_seq: Option<u64>,
    /// Offset of the first record after the handshake, server → client.
    server_open_at: usize,
    /// Offset of the first record after the handshake, client → server.
    client_open_at: usize,
    footer: FooterKind,
    from_server: Vec<Rec<'a>>,
    from_client: Vec<Rec<'a>>,
}

fn session<'a>(client: &'a [u8], server: &'a [u8]) -> Session<'a> {
    // server → client: banner + 2 addrs, reply (+ authorizer reply) (+ in_seq)
    let server_hello = ServerHello::decode(server).unwrap();
    assert_eq!(server_hello.encode(), server[..SERVER_HELLO_LEN]);
    let mut s = SERVER_HELLO_LEN;
    let reply = ConnectReply::decode(&server[s..]).unwrap();
    assert_eq!(reply.encode(), server[s..s + CONNECT_REPLY_LEN]);
    s += CONNECT_REPLY_LEN + reply.authorizer_len as usize;
    let server_in_seq = (reply.tag == tag::SEQ).then(|| {
        let v = handshake::decode_seq(&server[s..]).unwrap();
        s += SEQ_LEN;
        v
    });
    assert_eq!(
        s as u64,
        (SERVER_HELLO_LEN + CONNECT_REPLY_LEN) as u64 + reply.trailer_len()
    );

    // client → server: banner + addr, connect + authorizer (+ in_seq)
    let client_hello = ClientHello::decode(client).unwrap();
    assert_eq!(client_hello.encode(), client[..CLIENT_HELLO_LEN]);
    let mut c = CLIENT_HELLO_LEN;
    let connect = ConnectMsg::decode(&client[c..]).unwrap();
    assert_eq!(connect.encode(), client[c..c + CONNECT_LEN]);
    c += CONNECT_LEN;
    let authorizer = &client[c..c + connect.authorizer_len as usize];
    c += authorizer.len();
    let client_in_seq = (reply.tag == tag::SEQ).then(|| {
        let v = handshake::decode_seq(&client[c..]).unwrap();
        c += SEQ_LEN;
        v
    });

    let footer = FooterKind::for_features(connect.features & reply.features);
    let from_server = walk(server, s, footer);
    let from_client = walk(client, c, footer);
    for r in from_server.iter().chain(&from_client) {
        if let Rec::Msg { middle, footer, .. } = r {
            assert!(middle.is_empty(), "no middle section in these sessions");
            assert_eq!(footer.middle_crc, 0, "the CRC of an empty middle is 0");
        }
    }
    Session {
        server_hello,
        client_hello,
        connect,
        authorizer,
        reply,
        server_in_seq,
        client_in_seq,
        server_open_at: s,
        client_open_at: c,
        footer,
        from_server,
        from_client,
    }
}

fn types(recs: &[Rec<'_>]) -> Vec<u16> {
    recs.iter().filter_map(Rec::msg_type).collect()
}

fn msg<'r, 'a>(recs: &'r [Rec<'a>], ty: u16) -> (&'r MsgHeader, &'a [u8], &'a [u8]) {
    recs.iter()
        .find_map(|r| match r {
            Rec::Msg {
                header,
                front,
                data,
                ..
            } if header.ty == ty => Some((header, *front, *data)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no message of type {ty}"))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// MAuthReply front: le32 protocol, s32 result, le64 global_id, le32-len result_bl,
/// le32-len result_msg. Returns (protocol, result, global_id).
fn auth_reply(front: &[u8]) -> (u32, i32, u64) {
    assert_eq!(front.len(), 24, "auth none: empty result_bl and result_msg");
    assert_eq!(le32(front, 16), 0);
    assert_eq!(le32(front, 20), 0);
    (le32(front, 0), le32(front, 4) as i32, le64(front, 8))
}

/// The checks shared by the two kernel-like sessions (`v1-auth`, `v1-final`).
fn check_kernel_like_mon_session(s: &Session<'_>, client_port: u16) {
    let mon = s.server_hello.addr;
    assert_eq!(mon.ty, handshake::ADDR_TYPE_NONE);
    assert_eq!(mon.nonce, 0);
    assert_eq!(mon.ip(), Some(LOCALHOST));
    assert_eq!(mon.addr.unwrap().port(), 6789);
    assert!(!mon.is_blank_ip());
    let seen = s.server_hello.peer_addr_for_me;
    assert_eq!(seen.ty, 0);
    assert_eq!(seen.nonce, 0, "the mon does not know the client's nonce");
    assert_eq!(seen.ip(), Some(LOCALHOST));
    assert_eq!(seen.addr.unwrap().port(), client_port);

    let me = s.client_hello.addr;
    assert_eq!(me.ty, 0);
    assert_ne!(me.nonce, 0);
    assert_eq!(me.ip(), Some(LOCALHOST));
    assert_eq!(me.addr.unwrap().port(), 0);

    assert_eq!(
        s.connect,
        ConnectMsg {
            features: features::KERNEL_LIKE,
            host_type: u32::from(EntityType::Client.to_u8()),
            global_seq: 1,
            connect_seq: 0,
            protocol_version: protocol::MON,
            authorizer_protocol: auth::UNKNOWN,
            authorizer_len: 0,
            flags: 0,
        }
    );
    assert!(s.authorizer.is_empty());

    let r = s.reply;
    assert_eq!(
        r.tag,
        tag::SEQ,
        "RECONNECT_SEQ advertised → SEQ even for a new session"
    );
    assert_eq!(r.features, PACIFIC_FEATURES);
    assert_eq!(r.connect_seq, 1);
    assert_eq!(r.protocol_version, protocol::MON);
    assert_eq!(r.authorizer_len, 0);
    assert!(r.is_lossy());
    assert_eq!(s.server_in_seq, Some(0));
    assert_eq!(s.client_in_seq, Some(0));
    assert_eq!(s.server_open_at, 315);
    assert_eq!(s.client_open_at, 186);

    let negotiated = s.connect.features & r.features;
    assert_eq!(
        negotiated,
        features::KERNEL_LIKE,
        "the mon has every bit we offer"
    );
    assert_eq!(negotiated & features::MON_REQUIRED, features::MON_REQUIRED);
    assert_eq!(s.footer, FooterKind::New);
    let names: Vec<_> = features::names(negotiated).collect();
    for n in ["RECONNECT_SEQ", "MSG_AUTH", "MSGR_KEEPALIVE2", "CRUSH_V4"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert!(!names.contains(&"MONENC"));

    // mon → client: MAuthReply, then the (legacy-encoded) MonMap.
    assert_eq!(types(&s.from_server), [MSG_AUTH_REPLY, MSG_MON_MAP]);
    let Rec::Msg { at, header, .. } = &s.from_server[0] else {
        unreachable!()
    };
    assert_eq!(*at, 315);
    assert_eq!(header.seq, 1);
    assert_eq!(
        header.src,
        EntityName {
            ty: EntityType::Mon,
            num: 0
        }
    );
    assert_eq!(
        (header.front_len, header.middle_len, header.data_len),
        (24, 0, 0)
    );
    let (_, front, _) = msg(&s.from_server, MSG_AUTH_REPLY);
    let (proto, result, global_id) = auth_reply(front);
    assert_eq!((proto, result), (auth::NONE, 0));
    assert_ne!(global_id, 0);
    let (map, front, _) = msg(&s.from_server, MSG_MON_MAP);
    assert_eq!(map.seq, 2);
    assert_eq!(front.len(), 90);

    // client → mon: MAuth from client.-1 (no global id yet), then ACK of seq 1.
    assert_eq!(s.from_client.len(), 2);
    let (hello, front, _) = msg(&s.from_client, MSG_AUTH);
    assert_eq!(hello.seq, 1);
    assert_eq!(hello.src, EntityName::client(u64::MAX));
    assert_eq!(front.len(), 60);
    assert!(front.windows(5).any(|w| w == b"admin"));
    assert!(matches!(
        s.from_client[1],
        Rec::Ctl {
            at: 321,
            ctl: Control::Ack(1)
        }
    ));
}

#[test]
fn v1_auth_kernel_like_client_and_mon() {
    let s = session(
        include_bytes!("data/v1-auth.client.bin"),
        include_bytes!("data/v1-auth.server.bin"),
    );
    check_kernel_like_mon_session(&s, 45814);
    assert_eq!(s.client_hello.addr.nonce, 0x2176);
    assert_eq!(s.reply.global_seq, 23);
    let (_, front, _) = msg(&s.from_server, MSG_AUTH_REPLY);
    assert_eq!(auth_reply(front).2, 4113);
}

#[test]
fn v1_final_kernel_like_client_and_mon() {
    let s = session(
        include_bytes!("data/v1-final.client.bin"),
        include_bytes!("data/v1-final.server.bin"),
    );
    check_kernel_like_mon_session(&s, 50580);
    assert_eq!(s.client_hello.addr.nonce, 0x3c5c);
    assert_eq!(s.reply.global_seq, 27);
}

#[test]
fn rados_v1_librados_and_mon() {
    let s = session(
        include_bytes!("data/rados-v1-mon.client.bin"),
        include_bytes!("data/rados-v1-mon.server.bin"),
    );
    assert_eq!(s.server_hello.addr.addr.unwrap().port(), 6789);
    assert_eq!(s.server_hello.peer_addr_for_me.addr.unwrap().port(), 46482);
    // librados offers everything the mon has, and asks for a lossy session itself.
    assert_eq!(s.connect.features, PACIFIC_FEATURES);
    assert_eq!(s.connect.host_type, 8);
    assert_eq!(s.connect.protocol_version, protocol::MON);
    assert_eq!(s.connect.authorizer_protocol, auth::UNKNOWN);
    assert!(s.connect.is_lossy());
    assert_eq!(s.reply.tag, tag::SEQ);
    assert_eq!(s.reply.features, PACIFIC_FEATURES);
    assert!(s.reply.is_lossy());
    assert_eq!((s.server_in_seq, s.client_in_seq), (Some(0), Some(0)));
    assert_eq!(s.footer, FooterKind::New);

    // The client opens with KEEPALIVE2; the mon's first record is the matching ACK.
    let Rec::Ctl {
        ctl: Control::Keepalive2(stamp),
        at: 186,
    } = s.from_client[0]
    else {
        panic!("first client record: {:?}", s.from_client[0]);
    };
    assert!(matches!(
        s.from_server[0],
        Rec::Ctl { ctl: Control::Keepalive2Ack(echo), at: 315 } if echo == stamp
    ));

    assert_eq!(
        types(&s.from_server),
        [
            MSG_AUTH_REPLY,
            MSG_MON_MAP,
            MSG_CONFIG,
            MSG_MON_MAP,
            MSG_MGR_MAP,
            MSG_OSD_MAP
        ]
    );
    assert_eq!(
        types(&s.from_client),
        [
            MSG_AUTH,
            MSG_MON_SUBSCRIBE,
            MSG_MON_SUBSCRIBE,
            MSG_MON_SUBSCRIBE
        ]
    );
    let seqs: Vec<u64> = s
        .from_server
        .iter()
        .filter_map(|r| match r {
            Rec::Msg { header, .. } => Some(header.seq),
            Rec::Ctl { .. } => None,
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);

    // After MAuthReply the client sends as client.<global_id>.
    let (_, front, _) = msg(&s.from_server, MSG_AUTH_REPLY);
    let (proto, result, global_id) = auth_reply(front);
    assert_eq!((proto, result, global_id), (auth::NONE, 0, 4124));
    let srcs: Vec<EntityName> = s
        .from_client
        .iter()
        .filter_map(|r| match r {
            Rec::Msg { header, .. } => Some(header.src),
            Rec::Ctl { .. } => None,
        })
        .collect();
    assert_eq!(srcs[0], EntityName::client(u64::MAX));
    assert_eq!(srcs[2], EntityName::client(global_id));
    let (map, front, _) = msg(&s.from_server, MSG_OSD_MAP);
    assert_eq!((map.version, map.compat_version, front.len()), (4, 3, 1492));
}

/// Auth-none OSD authorizer: u8 1, EntityName (le32 type, le32 len, name), le64 global_id.
fn check_none_authorizer(a: &[u8], global_id: u64) {
    assert_eq!(a.len(), 22);
    assert_eq!(a[0], 1);
    assert_eq!(le32(a, 1), 8, "client");
    assert_eq!(le32(a, 5), 5);
    assert_eq!(&a[9..14], b"admin");
    assert_eq!(le64(a, 14), global_id);
}

fn check_osd_session(s: &Session<'_>, client_port: u16, global_id: u64) {
    let osd = s.server_hello.addr;
    assert_eq!(osd.ip(), Some(LOCALHOST));
    assert_eq!(osd.addr.unwrap().port(), 6800);
    assert_eq!(osd.nonce, 0x2fed, "an OSD has a nonzero nonce");
    assert_eq!(
        s.server_hello.peer_addr_for_me.addr.unwrap().port(),
        client_port
    );
    assert_eq!(s.connect.protocol_version, protocol::OSD);
    assert_eq!(s.connect.authorizer_protocol, auth::NONE);
    assert_eq!(s.connect.global_seq, 2);
    assert!(s.connect.is_lossy());
    check_none_authorizer(s.authorizer, global_id);
    assert_eq!(s.reply.tag, tag::SEQ);
    assert_eq!(s.reply.protocol_version, protocol::OSD);
    assert_eq!(
        s.reply.authorizer_len, 0,
        "auth none: empty authorizer reply"
    );
    assert_eq!(s.reply.connect_seq, 1);
    assert!(s.reply.is_lossy());
    assert_eq!(s.server_open_at, 315);
    assert_eq!(s.client_open_at, 208);
    assert_eq!(s.footer, FooterKind::New);
    assert_eq!(types(&s.from_client), [MSG_OSD_OP]);
    assert_eq!(types(&s.from_server), [MSG_OSD_OPREPLY]);
    let (op, _, _) = msg(&s.from_client, MSG_OSD_OP);
    assert_eq!(op.src, EntityName::client(global_id));
    assert_eq!(op.tid, 1);
    let (reply, _, _) = msg(&s.from_server, MSG_OSD_OPREPLY);
    assert_eq!(
        reply.src,
        EntityName {
            ty: EntityType::Osd,
            num: 0
        }
    );
}

#[test]
fn rados_v1_osd_write() {
    let s = session(
        include_bytes!("data/rados-v1-osd-write.client.bin"),
        include_bytes!("data/rados-v1-osd-write.server.bin"),
    );
    check_osd_session(&s, 54126, 4124);
    let (op, _, data) = msg(&s.from_client, MSG_OSD_OP);
    assert_eq!(data, b"hello v1 world\n");
    assert_eq!(op.data_len, 15);
    let (_, _, data) = msg(&s.from_server, MSG_OSD_OPREPLY);
    assert!(data.is_empty());
}

#[test]
fn rados_v1_osd_read() {
    let s = session(
        include_bytes!("data/rados-v1-osd-read.client.bin"),
        include_bytes!("data/rados-v1-osd-read.server.bin"),
    );
    check_osd_session(&s, 54136, 4127);
    let (_, _, data) = msg(&s.from_client, MSG_OSD_OP);
    assert!(data.is_empty());
    let (_, _, data) = msg(&s.from_server, MSG_OSD_OPREPLY);
    assert_eq!(data, b"hello v1 world\n");
}

#[test]
fn corrupted_fixture_bytes_are_rejected() {
    let server = include_bytes!("data/v1-auth.server.bin");
    let mut b = server.to_vec();
    b[..8].copy_from_slice(handshake::MSGR2_BANNER);
    assert!(ServerHello::decode(&b).is_err());
    let mut b = server.to_vec();
    b[9 + 8] = 0x02; // family written little-endian
    b[9 + 9] = 0x00;
    assert_eq!(
        ServerHello::decode(&b),
        Err(ceph_msgr::wire::DecodeError::UnknownAddrFamily(0x0200))
    );
    let mut b = server.to_vec();
    b[SERVER_HELLO_LEN] = tag::MSG;
    assert!(ConnectReply::decode(&b[SERVER_HELLO_LEN..]).is_err());
    let mut b = server.to_vec();
    b[315 + 1] ^= 0x40; // flip a bit in the first message header's seq
    assert!(MsgHeader::decode(&b[316..]).is_err());
}
