//! `ceph-msgr send` against `ceph-msgr serve`, two processes over loopback: every message
//! acknowledged, figures reported, and serve's totals agree.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ceph-msgr"))
}

#[test]
fn send_to_serve_counts_every_message() {
    let mut serve = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(serve.stdout.take().unwrap());
    let mut addr = String::new();
    out.read_line(&mut addr).unwrap();
    let addr = addr.trim().to_owned();
    let mut total = 0u64;
    for (size, count, k, conns) in [
        ("64", 3000, "1", "1"),
        ("4096", 5000, "16", "4"),
        ("1000000", 20, "4", "1"),
    ] {
        let o = bin()
            .args([
                "send",
                &addr,
                "--size",
                size,
                "--count",
                &count.to_string(),
                "--in-flight",
                k,
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
        total += count;
    }
    Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = out.lines().map_while(Result::ok).collect();
    assert!(serve.wait().unwrap().success());
    let totals = rest
        .iter()
        .find(|l| l.starts_with("total"))
        .expect("totals line");
    assert!(totals.contains(&format!("messages={total} ")), "{totals}");
}

/// The default `serve` (an implicit mon.0) accepts a client of any protocol version, so
/// that any independent v1 client can talk to it; `--strict` refuses a wrong one.
#[test]
fn default_serve_accepts_any_protocol_version_strict_refuses() {
    for (strict, want_ok) in [(false, true), (true, false)] {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--quiet"];
        if strict {
            args.push("--strict");
        }
        let mut serve = bin()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(serve.stdout.take().unwrap());
        let mut addr = String::new();
        out.read_line(&mut addr).unwrap();
        let o = Command::new("python3")
            .args([
                "tests/interop/v1client.py",
                addr.trim(),
                "--messages",
                "3",
                "--protocol-version",
                "24",
            ])
            .output()
            .unwrap();
        let _ = serve.kill();
        let _ = serve.wait();
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
    let mut serve = bin()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--quiet",
            "--busy-poll-us",
            "30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(serve.stdout.take().unwrap());
    let mut addr = String::new();
    out.read_line(&mut addr).unwrap();
    let o = bin()
        .args([
            "send",
            addr.trim(),
            "--size",
            "4096",
            "--count",
            "3000",
            "--in-flight",
            "8",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = out.lines().map_while(Result::ok).collect();
    assert!(serve.wait().unwrap().success());
    let totals = rest
        .iter()
        .find(|l| l.starts_with("total"))
        .expect("totals line");
    assert!(totals.contains("messages=3000 "), "{totals}");
}
