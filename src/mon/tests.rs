//! Monitor payloads against the bytes of real sessions (`tests/data/README.md` gives the
//! offsets).

use std::net::SocketAddr;

use super::*;
use crate::wire::MsgHeader;

const V1_AUTH_SERVER: &[u8] = include_bytes!("../../tests/data/v1-auth.server.bin");
const V1_AUTH_CLIENT: &[u8] = include_bytes!("../../tests/data/v1-auth.client.bin");
const RADOS_MON_SERVER: &[u8] = include_bytes!("../../tests/data/rados-v1-mon.server.bin");
const RADOS_MON_CLIENT: &[u8] = include_bytes!("../../tests/data/rados-v1-mon.client.bin");

/// The header and front of the message whose tag byte is at `at`.
fn msg(stream: &[u8], at: usize) -> (MsgHeader, &[u8]) {
    assert_eq!(stream[at], 7, "MSG tag at {at}");
    let h = MsgHeader::decode(&stream[at + 1..at + 54]).unwrap();
    let front = &stream[at + 54..at + 54 + h.front_len as usize];
    (h, front)
}

fn mon_addr() -> SocketAddr {
    "127.0.0.1:6789".parse().unwrap()
}

#[test]
fn auth_reply_from_a_real_mon() {
    let (h, front) = msg(V1_AUTH_SERVER, 315);
    assert_eq!(h.ty, msg_type::AUTH_REPLY);
    let r = AuthReply::decode(front).unwrap();
    assert_eq!(
        r,
        AuthReply {
            protocol: 1,
            result: 0,
            global_id: 4113,
            result_bl: bytes::Bytes::new(),
            message: String::new(),
        }
    );
    assert!(r.is_done());
    let (_, front) = msg(RADOS_MON_SERVER, 324);
    assert_eq!(AuthReply::decode(front).unwrap().global_id, 4124);
    // Truncations are errors, never panics.
    for n in 0..front.len() {
        assert!(AuthReply::decode(&front[..n]).is_err(), "{n}");
    }
}

#[test]
fn legacy_monmap_v1_from_a_real_mon() {
    // No MONNAMES negotiated (KERNEL_LIKE): the u16 version-1 encoding.
    let (h, front) = msg(V1_AUTH_SERVER, 414);
    assert_eq!(h.ty, msg_type::MON_MAP);
    let m = MonMap::from_message_front(front).unwrap();
    assert_eq!(m.encoding, 1);
    assert_eq!(m.epoch, 1);
    assert_eq!(m.fsid.to_string(), "a0ab0bb0-5c33-46bc-ab54-3dd926f85758");
    assert_eq!(m.mons.len(), 1);
    assert_eq!(m.mons[0].rank, 0);
    assert_eq!(m.mons[0].name, "0", "legacy v1 carries no names");
    let a = m.mons[0].addrs[0];
    assert_eq!(a.kind, AddrKind::Legacy);
    assert_eq!(a.addr, Some(mon_addr()));
    assert_eq!(a.to_string(), "v1:127.0.0.1:6789/0");
    assert_eq!(m.mons[0].v1_addr(), Some(&a));
    assert_eq!(m.last_changed, m.created);
    assert_eq!(m.min_mon_release, None);
    for n in 0..front.len() {
        assert!(MonMap::from_message_front(&front[..n]).is_err(), "{n}");
    }
}

#[test]
fn versioned_monmap_v9_from_a_real_mon() {
    // librados negotiated everything: the Pacific encoding (version 9).
    let (h, front) = msg(RADOS_MON_SERVER, 423);
    assert_eq!(h.ty, msg_type::MON_MAP);
    let m = MonMap::from_message_front(front).unwrap();
    assert_eq!(m.encoding, 9);
    assert_eq!(m.epoch, 1);
    assert_eq!(m.min_mon_release, Some(16), "pacific");
    assert_eq!(m.mons.len(), 1);
    assert_eq!(m.mons[0].name, "a");
    assert_eq!(m.mons[0].addrs.len(), 1);
    assert_eq!(m.mons[0].addrs[0].to_string(), "v1:127.0.0.1:6789/0");
    // The same map as the legacy one of the same cluster? Different runs: just check the
    // fsid is well formed.
    assert_eq!(m.fsid.to_string().len(), 36);
    for n in 0..front.len() {
        assert!(MonMap::from_message_front(&front[..n]).is_err(), "{n}");
    }
    // The second copy the mon sent is identical.
    let (_, again) = msg(RADOS_MON_SERVER, 747);
    assert_eq!(MonMap::from_message_front(again).unwrap(), m);
}

#[test]
fn monmap_v2_names_and_legacy_addresses() {
    // MONNAMES without MONENC: u16 version 2, map<string, entity_addr_t> with legacy
    // (136-byte, marker 0) addresses. Built by hand from the layout.
    let mut b = vec![2u8, 0];
    b.extend_from_slice(&[0x11; 16]);
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&2u32.to_le_bytes());
    for (name, port) in [("b", 6790u16), ("a", 6789)] {
        b.extend_from_slice(&(name.len() as u32).to_le_bytes());
        b.extend_from_slice(name.as_bytes());
        let a = crate::wire::handshake::EntityAddr::new(
            Some(SocketAddr::from(([127, 0, 0, 1], port))),
            0,
        );
        b.extend_from_slice(&a.encode());
    }
    b.extend_from_slice(&[0u8; 16]);
    let m = MonMap::decode(&b).unwrap();
    assert_eq!(m.encoding, 2);
    assert_eq!(m.epoch, 3);
    let names: Vec<_> = m.mons.iter().map(|x| (x.rank, x.name.as_str())).collect();
    assert_eq!(names, [(0, "a"), (1, "b")], "ranked by address");
    assert_eq!(m.mons[1].addrs[0].to_string(), "v1:127.0.0.1:6790/0");
}

#[test]
fn auth_hello_matches_librados_bytes() {
    // librados' MAuth (stream offset 195): same front, header version 1.
    let (h, front) = msg(RADOS_MON_CLIENT, 195);
    let m = auth_hello("admin", 0, 0);
    assert_eq!(m.ty, h.ty);
    assert_eq!(&m.front[..], front);
    assert_eq!(m.version, h.version);
    // The kernel-like test client's MAuth (offset 186) too.
    let (h, front) = msg(V1_AUTH_CLIENT, 186);
    assert_eq!(&m.front[..], front);
    assert_eq!((m.version, m.compat_version), (h.version, h.compat_version));
}

#[test]
fn subscribe_matches_librados_bytes() {
    // Offset 330: {config, monmap} from hostname "vm"; offset 453: {mgrmap}.
    let (h, front) = msg(RADOS_MON_CLIENT, 330);
    let m = subscribe(
        &[
            Subscription::persistent("monmap", 0),
            Subscription::persistent("config", 0),
        ],
        "vm",
    );
    assert_eq!(m.ty, h.ty);
    assert_eq!(m.version, h.version);
    assert_eq!(&m.front[..], front);
    let (_, front) = msg(RADOS_MON_CLIENT, 453);
    let m = subscribe(&[Subscription::persistent("mgrmap", 0)], "vm");
    assert_eq!(&m.front[..], front);
}

#[test]
fn get_version_and_reply_layouts() {
    let m = get_version(7, "osdmap");
    assert_eq!(m.ty, msg_type::MON_GET_VERSION);
    let mut want = 7u64.to_le_bytes().to_vec();
    want.extend_from_slice(&6u32.to_le_bytes());
    want.extend_from_slice(b"osdmap");
    assert_eq!(&m.front[..], &want[..]);

    let mut reply = 7u64.to_le_bytes().to_vec();
    reply.extend_from_slice(&12u64.to_le_bytes());
    reply.extend_from_slice(&1u64.to_le_bytes());
    assert_eq!(
        VersionReply::decode(&reply, 2).unwrap(),
        VersionReply {
            handle: 7,
            version: 12,
            oldest_version: Some(1)
        }
    );
    assert_eq!(
        VersionReply::decode(&reply[..16], 1)
            .unwrap()
            .oldest_version,
        None
    );
    assert!(VersionReply::decode(&reply[..16], 2).is_err());
}

#[test]
fn hostile_counts_are_refused_without_allocating() {
    // A version-1 monmap claiming 2^32-1 monitors in a few bytes.
    let mut b = vec![1u8, 0];
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        MonMap::decode(&b),
        Err(MonDecodeError::BadLength { .. })
    ));
    // A versioned monmap whose length runs past the buffer.
    let mut b = vec![9u8, 6];
    b.extend_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(
        MonMap::decode(&b),
        Err(MonDecodeError::BadLength { .. })
    ));
    // An unknown address marker.
    let mut b = vec![1u8, 0];
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0]);
    b.push(7);
    assert_eq!(MonMap::decode(&b), Err(MonDecodeError::BadAddrMarker(7)));
}
