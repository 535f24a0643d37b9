//! Property tests for `replay --protocol v2`: the library against the independent v2 model
//! (`tests/common/v2oracle.rs`) and the strict msgr2 MESSAGE-frame parser
//! (`tests/common/v2parse.rs`), and the CLI binary against the model.
//!
//! Case count defaults to 10,000 for the script property; set `PROPTEST_CASES` to change.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ceph_msgr::replay::{self, Protocol};
use common::v2oracle::{self, Ev};
use common::{gen, v2parse};
use proptest::prelude::*;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every connection parses strictly (the last frame may be cut by a reset or the end of the
/// script); resent frames keep their seq, so seqs only grow within a connection.
fn check_framing(conns: &[Vec<u8>]) -> Result<(), String> {
    for (i, c) in conns.iter().enumerate() {
        v2parse::parse_cut(c).map_err(|e| format!("connection {i} does not parse: {e}"))?;
    }
    Ok(())
}

fn first_difference(g: &[u8], e: &[u8]) -> usize {
    g.iter()
        .zip(e)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(e.len()))
}

/// Library == model, byte for byte; also the per-message seq and frame length of the report.
fn compare(evs: &[Ev]) -> Result<(), String> {
    let text = v2oracle::render_script(evs);
    let expected = v2oracle::run_full(evs);
    let parsed = replay::parse(&text).map_err(|e| format!("rendered script rejected: {e}"))?;
    let got = replay::run_protocol(&parsed, Protocol::V2);
    if got.connections.len() != expected.conns.len() {
        return Err(format!(
            "{} connections, oracle {}\n{text}",
            got.connections.len(),
            expected.conns.len()
        ));
    }
    for (i, (g, e)) in got.connections.iter().zip(&expected.conns).enumerate() {
        if g != e {
            let at = first_difference(g, e);
            return Err(format!(
                "connection {i} differs at byte {at} (got {} bytes, oracle {}): got {:02x?}, \
                 oracle {:02x?}\n{text}",
                g.len(),
                e.len(),
                &g[at..g.len().min(at + 16)],
                &e[at..e.len().min(at + 16)],
            ));
        }
    }
    check_framing(&got.connections).map_err(|e| format!("{e}\n{text}"))?;
    let reported: Vec<(u64, Option<u64>, u64)> = got
        .messages
        .iter()
        .map(|m| (m.id, m.seq, m.frame_len))
        .collect();
    if reported != expected.msgs {
        return Err(format!(
            "message reports (id, seq, frame_len) {reported:?}, oracle {:?}\n{text}",
            expected.msgs
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(10_000)))]

    #[test]
    fn replay_v2_matches_oracle(evs in gen::script(60)) {
        // The model's own output must be strictly framed, whatever the library does.
        let model = v2oracle::run(&evs);
        if let Err(e) = check_framing(&model) {
            prop_assert!(false, "oracle output: {}\n{}", e, v2oracle::render_script(&evs));
        }
        if let Err(e) = compare(&evs) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// Small frames and small writes, so revokes land in the head, at the epilogue and inside
/// it much more often than with `gen::script` (where the 13-byte epilogue is a small target).
fn fine_script() -> impl Strategy<Value = Vec<Ev>> {
    #[derive(Debug, Clone)]
    enum R {
        Queue(u32, u32, u32),
        Write(u64),
        Revoke(usize),
        Ack(u64),
        Reset,
    }
    let small = || prop_oneof![2 => Just(0u32), 3 => 1u32..30];
    let raw = prop_oneof![
        4 => (small(), prop_oneof![3 => Just(0u32), 1 => 1u32..10], small())
            .prop_map(|(f, m, d)| R::Queue(f, m, d)),
        6 => prop_oneof![1 => Just(0u64), 3 => 1u64..20, 1 => 20u64..120].prop_map(R::Write),
        4 => any::<usize>().prop_map(R::Revoke),
        1 => (0u64..8).prop_map(R::Ack),
        1 => Just(R::Reset),
    ];
    prop::collection::vec(raw, 1..50).prop_map(|raw| {
        let mut ids = Vec::new();
        let mut evs = Vec::new();
        for r in raw {
            evs.push(match r {
                R::Queue(front, middle, data) => {
                    let id = 1 + ids.len() as u64;
                    ids.push(id);
                    Ev::Queue {
                        id,
                        ty: 3,
                        tid: id,
                        prio: 127,
                        version: 1,
                        compat: 1,
                        front,
                        middle,
                        data,
                    }
                }
                R::Write(n) => Ev::Write(Some(n)),
                R::Revoke(k) if ids.is_empty() => Ev::Revoke(k as u64 % 4),
                R::Revoke(k) => Ev::Revoke(ids[k % ids.len()]),
                R::Ack(n) => Ev::Ack(n),
                R::Reset => Ev::Reset,
            });
        }
        evs.push(Ev::Write(None));
        evs
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(10_000) / 2))]

    #[test]
    fn replay_v2_matches_oracle_fine_grained(evs in fine_script()) {
        if let Err(e) = compare(&evs) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// Revokes aimed at frame boundaries of interest: a script that writes a message up to an
/// exact offset inside its head, segments, at its epilogue, inside its epilogue.
#[test]
fn targeted_offsets_match_oracle() {
    let shapes = [
        (0u32, 0u32, 0u32),
        (9, 0, 0),
        (0, 0, 6),
        (3, 0, 4),
        (2, 5, 0),
        (4, 3, 2),
    ];
    for (i, &(front, middle, data)) in shapes.iter().enumerate() {
        let id = 10 + i as u64;
        let spec = common::oracle::MsgSpec {
            id,
            ty: 1,
            tid: id,
            prio: 127,
            version: 1,
            compat: 1,
            front,
            middle,
            data,
        };
        let len = v2oracle::frame_len(&spec) as u64;
        let epi = v2oracle::epilogue_offset(&spec) as u64;
        for k in [
            0,
            1,
            31,
            32,
            76,
            77,
            78,
            epi - 1,
            epi,
            epi + 1,
            len - 1,
            len,
        ] {
            let k = k.min(len);
            let q = Ev::Queue {
                id,
                ty: 1,
                tid: id,
                prio: 127,
                version: 1,
                compat: 1,
                front,
                middle,
                data,
            };
            let q2 = Ev::Queue {
                id: id + 100,
                ty: 2,
                tid: 5,
                prio: 127,
                version: 1,
                compat: 1,
                front: 1,
                middle: 0,
                data: 1,
            };
            let scripts = [
                vec![q, q2, Ev::Write(Some(k)), Ev::Revoke(id), Ev::Write(None)],
                vec![
                    q,
                    q2,
                    Ev::Write(Some(k)),
                    Ev::Revoke(id),
                    Ev::Write(Some(3)),
                    Ev::Reset,
                    Ev::Write(None),
                ],
                vec![
                    q,
                    q2,
                    Ev::Write(Some(k)),
                    Ev::Ack(1),
                    Ev::Revoke(id),
                    Ev::Reset,
                    Ev::Write(None),
                ],
                vec![
                    q,
                    q2,
                    Ev::Write(Some(k)),
                    Ev::Reset,
                    Ev::Revoke(id),
                    Ev::Write(None),
                    Ev::Revoke(id + 100),
                ],
                vec![
                    q,
                    Ev::Write(Some(k)),
                    Ev::Reset,
                    Ev::Write(Some(k)),
                    Ev::Revoke(id),
                    Ev::Write(None),
                    Ev::Reset,
                    Ev::Write(None),
                ],
            ];
            for evs in scripts {
                if let Err(e) = compare(&evs) {
                    panic!("{e}");
                }
            }
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ceph-msgr-v2-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `ceph-msgr replay --protocol v2 SCRIPT --out DIR` and returns its connection files.
fn replay_files(dir: &Path, script: &str) -> Vec<Vec<u8>> {
    let path = dir.join("s.script");
    std::fs::write(&path, script).unwrap();
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let st = Command::new(env!("CARGO_BIN_EXE_ceph-msgr"))
        .args([
            "replay",
            "--protocol",
            "v2",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "replay --protocol v2 failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut conns = Vec::new();
    while let Ok(b) = std::fs::read(out.join(format!("conn-{}.bin", conns.len()))) {
        conns.push(b);
    }
    conns
}

#[test]
fn binary_matches_oracle() {
    let dir = scratch("cli");
    let scripts = [
        include_str!("../examples/scripts/revoke-tour.script").to_string(),
        "queue 1\nwrite all\n".to_string(),
        // One of each revoke case, a reset after a case-3 revoke, features/entity lines.
        "features 0\nentity osd.3\n\
         queue 1 front=10 data=4\nqueue 2\nqueue 3 front=10\nqueue 4 middle=3\nqueue 5 front=1\n\
         revoke 5\nwrite 50\nrevoke 1\nwrite 150\nrevoke 2\nwrite 90\nrevoke 3\nwrite 2\n\
         reset\nwrite all\nrevoke 4\nack 2\nwrite all\n"
            .to_string(),
        "queue 1 front=100 middle=7 data=5000\nwrite 4000\nack 1\nrevoke 1\nqueue 2 data=1\n\
         write 10\nreset\nwrite all\n"
            .to_string(),
    ];
    for script in &scripts {
        let expected = v2oracle::run(&v2oracle::parse_script(script).unwrap());
        let got = replay_files(&dir, script);
        assert_eq!(got.len(), expected.len(), "{script}");
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!(
                g == e,
                "conn-{i}.bin differs at byte {} (got {}, oracle {})\n{script}",
                first_difference(g, e),
                g.len(),
                e.len()
            );
        }
        check_framing(&got).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(10_000).min(100)))]

    #[test]
    fn binary_matches_oracle_on_generated_scripts(evs in gen::script(30)) {
        let dir = scratch("prop");
        let script = v2oracle::render_script(&evs);
        prop_assert_eq!(replay_files(&dir, &script), v2oracle::run(&evs), "{}", script);
    }
}

/// The generator reaches every revoke case of the spec (so the 10,000-case property above
/// is not only testing framing).
#[test]
fn generated_scripts_reach_every_revoke_case() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use v2oracle::RevokeCase;
    let mut runner = TestRunner::deterministic();
    let mut counts = [0usize; 5];
    for i in 0..4000 {
        let evs = if i % 2 == 0 {
            gen::script(60).new_tree(&mut runner).unwrap().current()
        } else {
            fine_script().new_tree(&mut runner).unwrap().current()
        };
        for (_, c) in v2oracle::run_full(&evs).revokes {
            counts[match c {
                None => 0,
                Some(RevokeCase::Removed) => 1,
                Some(RevokeCase::Aborted) => 2,
                Some(RevokeCase::Completes) => 3,
                Some(RevokeCase::Dropped) => 4,
            }] += 1;
        }
    }
    eprintln!("revokes over 2000 + 2000 scripts: no-op {}, removed {}, aborted {}, completes {}, dropped {}",
        counts[0], counts[1], counts[2], counts[3], counts[4]);
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
}
