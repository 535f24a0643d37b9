//! `ceph-msgr send` against `ceph-msgr serve`, two processes over loopback: every message
//! acknowledged, figures reported, and serve's totals agree.

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

/// Runs `send` against `addr` and checks its JSON line; returns the count sent.
fn send(addr: &str, size: &str, count: u64, in_flight: &str, conns: &str) -> u64 {
    let count_s = count.to_string();
    let o = bin()
        .args([
            "send",
            addr,
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
    assert!(line.contains(&format!("\"count\":{count},")), "{line}");
    assert!(line.contains("\"msgs_per_s\":"), "{line}");
    count
}

#[test]
fn send_to_serve_counts_every_message() {
    let serve = Serve::start(&[]);
    let total: u64 = [
        ("64", 3000, "1", "1"),
        ("4096", 5000, "16", "4"),
        ("1000000", 20, "4", "1"),
    ]
    .into_iter()
    .map(|(size, count, k, conns)| send(&serve.addr, size, count, k, conns))
    .sum();
    let totals = serve.stop();
    assert!(totals.contains(&format!("messages={total} ")), "{totals}");
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
    send(&serve.addr, "4096", 3000, "8", "1");
    let totals = serve.stop();
    assert!(totals.contains("messages=3000 "), "{totals}");
}
