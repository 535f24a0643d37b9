//! The deterministic two-party simulator over thousands of seeded scenarios per
//! protocol (see `common::sim` for the model and [`Sim::check`] for the properties).
//!
//! msgr v1, lossless sessions resumed across transports: every message not revoked is
//! delivered exactly once, in order, byte-identical; a revoked message is delivered at
//! most once and never corrupts another; neither side ever sees a framing or CRC error.
//!
//! msgr2.1 crc mode, the server keeping no session across transports (even seeds: LOSSY,
//! the lossless client restarts the session and resends what it holds with fresh seqs;
//! odd seeds: configured lossless, the client resends with its old seqs): every message
//! not revoked is delivered at least once, byte-identical; within a transport (a session)
//! strictly in order and never twice; a repeat only on a later transport; nothing
//! skipped (a gap in a session's tids is made only of revoked messages or of ones an
//! earlier session delivered); a revoked-while-removed or aborted message is never
//! delivered after its revoke (the peer drops an aborted frame without a fault); no
//! framing or CRC error ever.
//!
//! Faults: transport failures at random points, and cuts after exactly k bytes of one
//! direction (k over every handshake byte and a little beyond), noticed by both sides,
//! the client only (half-open server), the server first, or after the bytes in flight
//! drained; `handshake_cut_at_every_byte` sweeps every k in both directions.
//!
//! `SIM_SCENARIOS` (default 5000 per protocol) sets the count; `SIM_SEED=N` replays one
//! scenario (with `SIM_PROTO=v1|v2`, default both).

mod common;

use std::io::Write as _;
use std::time::Instant;

use ceph_msgr::send::Protocol;
use common::sim::{Cut, Dir, Notice, Options, Rng, Sim, Totals};

fn options(proto: Protocol, seed: u64) -> Options {
    match proto {
        Protocol::V1 => {
            let mut o = Options::v1();
            o.server_detects = seed % 2 == 1;
            o
        }
        _ => {
            let mut o = Options::v2();
            o.v2_server_lossless = seed % 2 == 1;
            o
        }
    }
}

fn run(proto: Protocol, seed: u64) -> Result<Totals, String> {
    let mut sim = Sim::with_options(Rng::new(seed), options(proto, seed));
    let steps = 200 + (seed % 400) as usize;
    for _ in 0..steps {
        sim.step(35);
    }
    finish(sim)
}

fn finish(mut sim: Sim) -> Result<Totals, String> {
    if !sim.settle(20_000) {
        return Err(format!(
            "did not settle: client holds {} messages, state {:?}; errors {:?}",
            sim.client.messenger().len(),
            sim.client.state(),
            sim.errors
        ));
    }
    sim.check()?;
    Ok(sim.totals)
}

fn protocols() -> Vec<Protocol> {
    match std::env::var("SIM_PROTO").as_deref() {
        Ok("v1") => vec![Protocol::V1],
        Ok("v2") => vec![Protocol::V2],
        _ => vec![Protocol::V1, Protocol::V2],
    }
}

fn report(what: &str, t: &Totals, secs: f64) {
    // Straight to the stderr handle, so the counts show in CI logs under capture too.
    let _ = writeln!(
        std::io::stderr(),
        "{what} in {secs:.1}s: {} messages sent, {} delivered ({} repeats across a session restart); \
         {} revoked (removed {}, aborted {}, completing {}, dropped {}, unknown {}); \
         {} aborted frames seen by the server, {} seq gaps; \
         {} injected transport failures (both {}, client only {}, server first {}, drained {}; \
         {} cuts inside a handshake, {} just after); {} session opens; {} keepalive answers",
        t.sent,
        t.delivered,
        t.duplicates,
        t.revoked,
        t.revoked_by[0],
        t.revoked_by[1],
        t.revoked_by[2],
        t.revoked_by[3],
        t.revoked_by[4],
        t.aborted_seen,
        t.seq_gaps,
        t.failures,
        t.failures_by[0],
        t.failures_by[1],
        t.failures_by[2],
        t.failures_by[3],
        t.handshake_cuts,
        t.stream_cuts,
        t.reconnects,
        t.keepalive_acks,
    );
}

#[test]
fn seeded_scenarios_both_protocols() {
    if let Ok(seed) = std::env::var("SIM_SEED") {
        let seed: u64 = seed.parse().expect("SIM_SEED is a number");
        for proto in protocols() {
            match run(proto, seed) {
                Ok(t) => println!("{proto} seed {seed}: {t:?}"),
                Err(e) => panic!("{proto} seed {seed}: {e}"),
            }
        }
        return;
    }
    let n: u64 = std::env::var("SIM_SCENARIOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    for proto in protocols() {
        let start = Instant::now();
        let mut total = Totals::default();
        for seed in 0..n {
            match run(proto, seed) {
                Ok(t) => total.add(&t),
                Err(e) => panic!(
                    "{proto} scenario failed; replay with SIM_PROTO={proto} SIM_SEED={seed} \
                     cargo test --test session_sim -- --nocapture\n{e}"
                ),
            }
        }
        report(
            &format!("{proto}: {n} scenarios"),
            &total,
            start.elapsed().as_secs_f64(),
        );
        if n >= 1000 {
            assert!(
                total.failures >= 100,
                "only {} injected failures",
                total.failures
            );
            for (i, k) in total.failures_by.iter().enumerate() {
                assert!(*k > 0, "no failure of kind {:?}", Notice::ALL[i]);
            }
            assert!(total.handshake_cuts > 100, "{total:?}");
            assert!(total.stream_cuts > 0, "{total:?}");
            assert!(
                total.aborted_seen > 0,
                "no revoke ever hit a message mid-flight"
            );
            assert!(total.keepalive_acks > 0, "{total:?}");
            match proto {
                Protocol::V1 => assert_eq!(total.duplicates, 0),
                _ => assert!(total.duplicates > 0, "no session restart ever resent"),
            }
        }
    }
}

/// A transport that fails after exactly k bytes of one direction, for every k through
/// the handshake (and the first bytes after), each way of noticing, both protocols:
/// the session recovers and the property holds.
#[test]
fn handshake_cut_at_every_byte() {
    let start = Instant::now();
    let mut runs = 0u64;
    let mut total = Totals::default();
    for proto in protocols() {
        let probe = Sim::with_options(Rng::new(0), options(proto, 0));
        let hs = probe.handshake_bytes();
        for dir in [Dir::C2s, Dir::S2c] {
            for at in 0..=hs[dir as usize] + 4 {
                for notice in Notice::ALL {
                    let seed = runs;
                    runs += 1;
                    let mut sim = Sim::with_options(Rng::new(seed), options(proto, seed));
                    sim.force_cut(Cut { dir, at, notice });
                    sim.send_random();
                    for _ in 0..40 {
                        sim.step(0);
                    }
                    let t = finish(sim).unwrap_or_else(|e| {
                        panic!("{proto} cut {dir:?} at {at} ({notice:?}), seed {seed}: {e}")
                    });
                    total.add(&t);
                }
            }
        }
    }
    report(
        &format!("handshake cuts: {runs} scenarios"),
        &total,
        start.elapsed().as_secs_f64(),
    );
    assert!(total.handshake_cuts > runs / 2, "{total:?}");
}
