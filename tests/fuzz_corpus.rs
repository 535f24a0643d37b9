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
