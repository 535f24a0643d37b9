//! The deterministic two-party simulator over thousands of seeded scenarios.
//!
//! Property, lossless mode: every message not revoked is delivered exactly once, in
//! order, byte-identical; a revoked message is delivered at most once and never corrupts
//! another; neither side ever sees a framing or CRC error.
//!
//! `SIM_SCENARIOS` (default 5000) sets the count; `SIM_SEED=N` replays one scenario.

mod common;

use std::io::Write as _;

use common::sim::Sim;

fn run(seed: u64) -> Result<common::sim::Totals, String> {
    let mut sim = Sim::new(seed);
    let steps = 200 + (seed % 400) as usize;
    for _ in 0..steps {
        sim.step(35);
    }
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

#[test]
fn lossless_exactly_once_in_order() {
    if let Ok(seed) = std::env::var("SIM_SEED") {
        let seed: u64 = seed.parse().expect("SIM_SEED is a number");
        match run(seed) {
            Ok(t) => println!("seed {seed}: {t:?}"),
            Err(e) => panic!("seed {seed}: {e}"),
        }
        return;
    }
    let n: u64 = std::env::var("SIM_SCENARIOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let mut total = common::sim::Totals::default();
    for seed in 0..n {
        match run(seed) {
            Ok(t) => {
                total.sent += t.sent;
                total.revoked += t.revoked;
                total.delivered += t.delivered;
                total.failures += t.failures;
                total.reconnects += t.reconnects;
                total.aborted_seen += t.aborted_seen;
                total.seq_gaps += t.seq_gaps;
            }
            Err(e) => panic!("scenario failed; replay with SIM_SEED={seed} cargo test --test session_sim -- --nocapture\n{e}"),
        }
    }
    // Straight to the stderr handle, so the counts show in CI logs under capture too.
    let _ = writeln!(
        std::io::stderr(),
        "{n} scenarios: {} messages sent, {} revoked, {} delivered, {} aborted frames seen by the server, {} seq gaps (revoked frames lost with their transport), {} injected transport failures, {} session opens",
        total.sent, total.revoked, total.delivered, total.aborted_seen, total.seq_gaps, total.failures, total.reconnects
    );
    assert!(
        total.failures >= 100,
        "only {} injected failures",
        total.failures
    );
    assert!(
        total.aborted_seen > 0,
        "no revoke ever hit a message mid-flight"
    );
}
