//! The `ceph-msgr replay` binary, end to end: files on disk, exit codes, error messages.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{gen, oracle};
use proptest::prelude::*;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ceph-msgr"))
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ceph-msgr-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `replay` on `script` and returns the connection files it wrote.
fn replay_files(dir: &Path, script: &str) -> Vec<Vec<u8>> {
    let path = dir.join("s.script");
    std::fs::write(&path, script).unwrap();
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let st = bin()
        .args([
            "replay",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut conns = Vec::new();
    while let Ok(b) = std::fs::read(out.join(format!("conn-{}.bin", conns.len()))) {
        conns.push(b);
    }
    conns
}

#[test]
fn bundled_example_matches_oracle_and_summarises() {
    let script = include_str!("../examples/scripts/revoke-tour.script");
    let dir = scratch("example");
    let expected = oracle::run(&oracle::parse_script(script).unwrap());
    assert_eq!(replay_files(&dir, script), expected);

    let path = dir.join("s.script");
    let out = bin()
        .args([
            "replay",
            path.to_str().unwrap(),
            "--out",
            dir.join("o2").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in ["aborted", "removed", "dropped", "acked", "conn-1.bin"] {
        assert!(text.contains(needle), "summary lacks {needle:?}:\n{text}");
    }
}

#[test]
fn bad_scripts_name_the_line() {
    let dir = scratch("bad");
    for (script, line, needle) in [
        ("queue 1\nbogus 3\n", 2, "unknown event"),
        ("# c\n\nqueue 1 front=x\n", 3, "not a number"),
        ("queue 1\nfeatures 0\n", 2, "before the first `queue`"),
        ("queue 1\nqueue 1\n", 2, "already queued"),
        ("queue 1 prio=70000\n", 1, "out of range"),
        ("queue 1 colour=3\n", 1, "unknown key"),
        ("write\n", 1, "exactly one"),
        ("entity disk.3\n", 1, "bad entity"),
    ] {
        let p = dir.join("bad.script");
        std::fs::write(&p, script).unwrap();
        let out = bin()
            .args([
                "replay",
                p.to_str().unwrap(),
                "--out",
                dir.join("o").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{script:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("line {line}:")), "{script:?}: {err}");
        assert!(err.contains(needle), "{script:?}: {err}");
    }
    let out = bin()
        .args(["replay", "/nonexistent/x.script", "--out", "/tmp/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The binary's files equal the oracle's bytes on generated scripts.
    #[test]
    fn binary_matches_oracle(evs in gen::script(30)) {
        let dir = scratch("prop");
        let script = oracle::render_script(&evs);
        prop_assert_eq!(replay_files(&dir, &script), oracle::run(&evs), "{}", script);
    }
}

#[test]
fn stale_connection_files_are_removed() {
    let dir = scratch("stale");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("conn-7.bin"), b"old").unwrap();
    std::fs::write(out.join("notes.txt"), b"keep").unwrap();
    let conns = replay_files(&dir, "queue 1\nwrite all\n");
    assert_eq!(conns.len(), 1);
    // replay_files removes `out` first; write into it again by hand and rerun.
    std::fs::write(out.join("conn-7.bin"), b"old").unwrap();
    std::fs::write(out.join("notes.txt"), b"keep").unwrap();
    let path = dir.join("s.script");
    let st = bin()
        .args([
            "replay",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(!out.join("conn-7.bin").exists());
    assert!(out.join("notes.txt").exists());
    assert!(out.join("conn-0.bin").exists());
}
