//! `ceph-msgr send` against `ceph-msgr serve`, two processes over loopback, over msgr v1
//! and msgr2 to the one port: every message acknowledged, figures reported, and serve's
//! totals agree.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ceph-msgr"))
}

/// A running `ceph-msgr serve` on a free loopback port.
struct Serve {
    child: Child,
    out: BufReader<ChildStdout>,
    addr: String,
}

impl Serve {
    fn start(extra: &[&str]) -> Self {
        let mut child = bin()
            .args(["serve", "--listen", "127.0.0.1:0", "--quiet"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut addr = String::new();
        out.read_line(&mut addr).unwrap();
        Self {
            child,
            out,
            addr: addr.trim().to_owned(),
        }
    }

    /// SIGTERM, wait for a clean exit, and return the `total …` line.
    fn stop(mut self) -> String {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let rest: Vec<String> = self.out.lines().map_while(Result::ok).collect();
        assert!(self.child.wait().unwrap().success());
        rest.into_iter()
            .find(|l| l.starts_with("total"))
            .expect("totals line")
    }
}

/// Runs `send --protocol PROTO` against `addr` and checks its JSON line; returns the
/// count sent.
fn send(proto: &str, addr: &str, size: &str, count: u64, in_flight: &str, conns: &str) -> u64 {
    let count_s = count.to_string();
    let o = bin()
        .args([
            "send",
            addr,
            "--protocol",
            proto,
            "--size",
            size,
            "--count",
            &count_s,
            "--in-flight",
            in_flight,
            "--connections",
            conns,
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line = String::from_utf8(o.stdout).unwrap();
    assert!(
        line.contains(&format!("\"protocol\":\"{proto}\",")),
        "{line}"
    );
    assert!(line.contains(&format!("\"count\":{count},")), "{line}");
    assert!(line.contains("\"msgs_per_s\":"), "{line}");
    count
}

#[test]
fn send_to_serve_counts_every_message() {
    let serve = Serve::start(&[]);
    let mut total = 0;
    for proto in ["v1", "v2"] {
        total += [
            ("64", 2000, "1", "1"),
            ("4096", 3000, "16", "4"),
            ("1000000", 20, "4", "1"),
        ]
        .into_iter()
        .map(|(size, count, k, conns)| send(proto, &serve.addr, size, count, k, conns))
        .sum::<u64>();
    }
    let totals = serve.stop();
    assert!(totals.contains(&format!("messages={total} ")), "{totals}");
    // 1 + 4 + 1 connections per protocol, each counted under the protocol it spoke.
    assert!(totals.contains(" v1=6 v2=6"), "{totals}");
}

/// Without `--protocol`, `send` speaks msgr2; a `v1:` / `v2:` address prefix picks the
/// protocol too, and contradicting it is an error.
#[test]
fn send_defaults_to_v2_and_reads_address_prefixes() {
    let serve = Serve::start(&[]);
    let run = |args: &[&str]| bin().arg("send").args(args).output().unwrap();
    let o = run(&[&serve.addr, "--count", "50", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"protocol\":\"v2\""));
    let v1 = format!("v1:{}", serve.addr);
    let o = run(&[&v1, "--count", "50"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("to {v1} ")),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = run(&[&v1, "--count", "5", "--protocol", "v2"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("contradicts"));
    // msgr2 has no protocol version: a v2 client checks the type in the server's HELLO.
    let o = run(&[&serve.addr, "--count", "5", "--peer", "osd"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("says it is mon, not osd"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let totals = serve.stop();
    assert!(totals.contains("messages=100 "), "{totals}");
}

/// `serve --v1-only` is the server before msgr2: v1 clients only.
#[test]
fn v1_only_serve_refuses_a_v2_client() {
    let serve = Serve::start(&["--v1-only"]);
    send("v1", &serve.addr, "64", 100, "4", "1");
    let o = bin()
        .args(["send", &serve.addr, "--count", "5", "--protocol", "v2"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let totals = serve.stop();
    assert!(totals.contains("messages=100 "), "{totals}");
    assert!(totals.contains(" v1=1 v2=0"), "{totals}");
}

/// The default `serve` (an implicit mon.0) accepts a client of any protocol version, so
/// that any independent v1 client can talk to it; `--strict` refuses a wrong one.
#[test]
fn default_serve_accepts_any_protocol_version_strict_refuses() {
    for (strict, want_ok) in [(false, true), (true, false)] {
        let extra: &[&str] = if strict { &["--strict"] } else { &[] };
        let serve = Serve::start(extra);
        let o = Command::new("python3")
            .args([
                "tests/interop/v1client.py",
                &serve.addr,
                "--messages",
                "3",
                "--protocol-version",
                "24",
            ])
            .output()
            .unwrap();
        serve.stop();
        assert_eq!(
            o.status.success(),
            want_ok,
            "strict={strict}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

/// `serve --busy-poll-us` (the mio reactor's busy-poll option) serves the same traffic.
#[test]
fn busy_polling_serve_counts_every_message() {
    let serve = Serve::start(&["--busy-poll-us", "30"]);
    send("v2", &serve.addr, "4096", 3000, "8", "1");
    let totals = serve.stop();
    assert!(totals.contains("messages=3000 "), "{totals}");
}
