//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`) and the crash
//! regressions (`fuzz/regressions/<target>/`) through the same checks the fuzz targets
//! run, on stable Rust, so a crash once found never returns.

mod common;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let mut n = 0;
    for dir in ["fuzz/corpus", "fuzz/regressions"] {
        let d = Path::new(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "{target}: {} fails", f.display());
            n += 1;
        }
    }
    println!("{target}: {n} inputs replayed");
    assert!(n > 0, "{target}: no corpus found");
}

#[test]
fn events_corpus() {
    replay("events", common::fuzzing::events);
}

#[test]
fn decode_corpus() {
    replay("decode", common::fuzzing::decode);
}

#[test]
fn handshake_corpus() {
    replay("handshake", common::fuzzing::handshake);
}

#[test]
fn session_corpus() {
    replay("session", common::fuzzing::session);
}

#[test]
fn events_v2_corpus() {
    replay("events_v2", common::fuzzing::events_v2);
}

#[test]
fn decode_v2_corpus() {
    replay("decode_v2", common::fuzzing::decode_v2);
}

#[test]
fn handshake_v2_corpus() {
    replay("handshake_v2", common::fuzzing::handshake_v2);
}

/// The bytes each side of a msgr2 pair writes (client, server): the handshake, then
/// messages both ways with acks, and a keepalive round trip.
fn v2_pair_bytes(server_ty: ceph_msgr::EntityType, lossy: bool) -> (Vec<u8>, Vec<u8>) {
    use bytes::Bytes;
    use ceph_msgr::{Config, EntityName, Message, Protocol};
    use common::pair::{drain, Pair};
    let mut c = Config::client(EntityName::client(1));
    c.protocol = Protocol::V2;
    c.lossy = lossy;
    let mut s = Config::server(EntityName {
        ty: server_ty,
        num: 0,
    });
    s.protocol = Protocol::V2;
    s.lossy = lossy;
    let mut p = Pair::new(c, s);
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    let mut pump = |p: &mut Pair| {
        for _ in 0..100 {
            let a = drain(&mut p.client);
            let b = drain(&mut p.server);
            if a.is_empty() && b.is_empty() {
                break;
            }
            p.server.handle_input(p.now, &a);
            p.client.handle_input(p.now, &b);
            to_server.extend_from_slice(&a);
            to_client.extend_from_slice(&b);
            p.collect();
            if p.server.state() == ceph_msgr::conn::State::AwaitingSession {
                p.server.accept_new_session(p.now);
            }
        }
    };
    pump(&mut p);
    for i in 0..3u8 {
        p.client
            .send(Message::new(42).with_front(Bytes::from(vec![i; 20])))
            .unwrap();
        p.server
            .send(
                Message::new(43)
                    .with_front(Bytes::from(vec![i; 5]))
                    .with_data_chunk(Bytes::from(vec![i; 300])),
            )
            .unwrap();
    }
    p.client.send_keepalive(p.now);
    pump(&mut p);
    assert_eq!(p.client.state(), ceph_msgr::conn::State::Open);
    (to_server, to_client)
}

/// The seeds of `handshake_v2` and `decode_v2` (name, input), from the captured Ceph bytes
/// (`tests/data/`) and from a real in-memory pair.
#[allow(clippy::type_complexity)]
fn v2_seeds() -> (Vec<(String, Vec<u8>)>, Vec<(String, Vec<u8>)>) {
    use ceph_msgr::v2::frame::{Banner, BANNER_LEN};
    use ceph_msgr::EntityType;
    let frames = |dir: &str, dirn: &str| -> Vec<u8> {
        let mut names: Vec<_> = std::fs::read_dir(Path::new("tests/data/v2").join(dir))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains(dirn))
            .collect();
        names.sort();
        let mut out = Banner::OURS.encode().to_vec();
        for n in names {
            out.extend(std::fs::read(n).unwrap());
        }
        out
    };
    // (name, client-side mode bits, server bytes, client bytes)
    let mut streams: Vec<(String, u8, Vec<u8>, Vec<u8>)> = vec![
        (
            "cli-v2-mon".into(),
            0,
            frames("cli-v2-mon", "s2c"),
            frames("cli-v2-mon", "c2s"),
        ),
        (
            "rados-v2-osd-frames".into(),
            4,
            frames("rados-v2-osd", "s2c"),
            frames("rados-v2-osd", "c2s"),
        ),
        (
            "rados-v2-osd".into(),
            4,
            std::fs::read("tests/data/rados-v2-osd.server.bin").unwrap(),
            std::fs::read("tests/data/rados-v2-osd.client.bin").unwrap(),
        ),
    ];
    for (ty, bits, name) in [(EntityType::Mon, 0, "mon"), (EntityType::Osd, 4, "osd")] {
        for lossy in [true, false] {
            let (c2s, s2c) = v2_pair_bytes(ty, lossy);
            let l = if lossy { "lossy" } else { "lossless" };
            streams.push((format!("pair-{name}-{l}"), bits, s2c, c2s));
        }
    }
    let splits: [(&str, [u8; 4]); 3] = [
        ("whole", [255; 4]),
        ("bytes", [0; 4]),
        ("mixed", [7, 31, 3, 100]),
    ];
    let (mut hs, mut de) = (Vec::new(), Vec::new());
    for (name, bits, s2c, c2s) in &streams {
        for (sname, sp) in &splits {
            for lossless in [0u8, 2] {
                for (role, bytes) in [(0u8, s2c), (1, c2s)] {
                    let mode = bits | lossless | role;
                    let mut f = vec![mode];
                    f.extend_from_slice(sp);
                    f.extend_from_slice(bytes);
                    let side = if role == 0 { "client" } else { "server" };
                    let l = if lossless == 0 { "lossy" } else { "lossless" };
                    hs.push((format!("{name}-{side}-{l}-{sname}"), f));
                }
            }
        }
        for (side, bytes) in [("s2c", s2c), ("c2s", c2s)] {
            for mode in [0u8, 2, 4, 6] {
                let mut f = vec![mode];
                f.extend_from_slice(&[3, 17, 96, 1, 200, 5, 64, 131]);
                f.extend_from_slice(&bytes[BANNER_LEN.min(bytes.len())..]);
                de.push((format!("{name}-{side}-limits{mode}"), f));
            }
        }
    }
    (hs, de)
}

/// Writes the seeds into the corpora:
/// `cargo test --test fuzz_corpus -- --ignored write_v2_seeds`.
#[test]
#[ignore]
fn write_v2_seeds() {
    let (hs, de) = v2_seeds();
    for (dir, seeds) in [("handshake_v2", hs), ("decode_v2", de)] {
        let d = Path::new("fuzz/corpus").join(dir);
        std::fs::create_dir_all(&d).unwrap();
        for (name, f) in seeds {
            std::fs::write(d.join(name), f).unwrap();
        }
    }
}

/// The `handshake_v2` seeds reach deep: the pair's bytes open the session in both roles
/// and deliver the messages however they are split, and so do the real Ceph bytes (the
/// captured control frames, and the whole librados-OSD streams with their MESSAGE).
#[test]
fn handshake_v2_seeds_open_sessions() {
    for (name, f) in v2_seeds().0 {
        let got = common::fuzzing::handshake_v2_outcome(&f);
        assert!(got.opened, "{name}: {got:?}");
        if name.starts_with("pair-") {
            assert_eq!(got.messages, 3, "{name}: {got:?}");
        } else if name.starts_with("rados-v2-osd-client") || name.starts_with("rados-v2-osd-server")
        {
            assert_eq!(got.messages, 1, "{name}: {got:?}");
        }
    }
}
