#![cfg(feature = "mio")]
//! `ceph-msgr serve` against the independent Python client (`tests/interop/v1client.py`,
//! written from the protocol notes, not from this crate) and against our own client on the
//! mio reactor; then SIGTERM, and the totals `serve` prints must count every message.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::conn::State;
use ceph_msgr::shim::mio::{Notice, Reactor};
use ceph_msgr::wire::{EntityName, EntityType};
use ceph_msgr::{Config, Event, Message};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/v1client.py");

/// A running `ceph-msgr serve`.
struct Serve {
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: Option<thread::JoinHandle<String>>,
    addr: String,
}

impl Serve {
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ceph-msgr"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ceph-msgr serve");
        let mut err = child.stderr.take().expect("stderr");
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("first line");
        let addr = first.trim_end_matches('\n').to_owned();
        // Exactly IP:PORT.
        let parsed: SocketAddr = addr.parse().unwrap_or_else(|e| panic!("{addr:?}: {e}"));
        assert_eq!(parsed.ip().to_string(), "127.0.0.1");
        assert_ne!(parsed.port(), 0);
        Self {
            child,
            stdout,
            stderr: Some(stderr),
            addr,
        }
    }

    /// Sends SIGTERM, waits (bounded) for exit 0, returns (rest of stdout, stderr).
    fn stop(mut self) -> (String, String) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("serve did not exit after SIGTERM");
            }
            thread::sleep(Duration::from_millis(10));
        };
        let mut out = String::new();
        self.stdout.read_to_string(&mut out).expect("stdout");
        let err = self.stderr.take().expect("once").join().expect("stderr");
        assert!(status.success(), "serve exited {status:?}\n{err}");
        (out, err)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn python(addr: &str, args: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.arg(CLIENT)
        .arg(addr)
        .args(["--timeout", "15"])
        .args(args)
        .stdin(Stdio::null());
    c
}

/// The JSON summary (last stdout line) as key → raw value text.
fn summary(out: &Output) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    assert!(
        out.status.success(),
        "client failed: {:?}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let body = last.trim().trim_start_matches('{').trim_end_matches('}');
    body.split(", \"")
        .filter_map(|kv| {
            let (k, v) = kv.split_once(": ")?;
            Some((
                k.trim_matches('"').to_owned(),
                v.trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

fn num(s: &HashMap<String, String>, k: &str) -> u64 {
    s.get(k)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {k} in {s:?}"))
}

/// `key=value` fields of a totals line.
fn fields(line: &str) -> HashMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect()
}

struct Totals {
    conns: Vec<HashMap<String, String>>,
    total: HashMap<String, String>,
}

fn totals(out: &str) -> Totals {
    let own = |m: HashMap<&str, &str>| -> HashMap<String, String> {
        m.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let conns = out
        .lines()
        .filter(|l| l.starts_with("conn "))
        .map(|l| own(fields(l)))
        .collect();
    let total = out
        .lines()
        .find(|l| l.starts_with("total "))
        .map(|l| own(fields(l)))
        .unwrap_or_else(|| panic!("no total line in {out:?}"));
    Totals { conns, total }
}

fn check(s: &HashMap<String, String>, messages: u64, footer: u64) {
    assert_eq!(num(s, "sent"), messages, "{s:?}");
    assert_eq!(num(s, "acked"), num(s, "sent"), "{s:?}");
    assert_eq!(s.get("reply_tag").map(String::as_str), Some("SEQ"), "{s:?}");
    assert_eq!(num(s, "footer"), footer, "{s:?}");
    assert!(!s.contains_key("error"), "{s:?}");
}

#[test]
fn python_client_modes_and_totals() {
    let serve = Serve::start(&[]);
    let a = serve.addr.clone();
    let mut expect_msgs = 0;

    let s = summary(
        &python(&a, &["--messages", "200", "--keepalive"])
            .output()
            .expect("python3"),
    );
    check(&s, 200, 21);
    assert!(
        s.get("keepalive_rtt_us").is_some_and(|v| v != "null"),
        "{s:?}"
    );
    expect_msgs += 200;

    let s = summary(
        &python(&a, &["--messages", "30", "--size", "2000", "--trickle"])
            .output()
            .expect("python3"),
    );
    check(&s, 30, 21);
    expect_msgs += 30;

    let s = summary(
        &python(&a, &["--messages", "100", "--old-footer"])
            .output()
            .expect("python3"),
    );
    check(&s, 100, 13);
    expect_msgs += 100;

    let s = summary(
        &python(&a, &["--messages", "20", "--size", "100000"])
            .output()
            .expect("python3"),
    );
    check(&s, 20, 21);
    expect_msgs += 20;

    // Two at once.
    let c1 = python(&a, &["--messages", "300", "--seed", "1", "--keepalive"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let c2 = python(&a, &["--messages", "300", "--seed", "2", "--size", "20000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    check(&summary(&c1.wait_with_output().expect("c1")), 300, 21);
    check(&summary(&c2.wait_with_output().expect("c2")), 300, 21);
    expect_msgs += 600;

    let (out, err) = serve.stop();
    let t = totals(&out);
    assert_eq!(t.conns.len(), 6, "{out}");
    assert_eq!(num(&t.total, "connections"), 6, "{out}");
    assert_eq!(num(&t.total, "messages"), expect_msgs, "{out}");
    assert_eq!(num(&t.total, "keepalives_answered"), 2, "{out}");
    let sum: u64 = t.conns.iter().map(|c| num(c, "messages")).sum();
    assert_eq!(sum, expect_msgs);
    let bytes: u64 = t.conns.iter().map(|c| num(c, "payload_bytes")).sum();
    assert_eq!(num(&t.total, "payload_bytes"), bytes);
    // The 100 KB run alone carried 10 × 100,000 data bytes.
    assert!(bytes > 10 * 100_000 + 300 * 10_000, "{out}");
    let mut per_conn: Vec<u64> = t.conns.iter().map(|c| num(c, "messages")).collect();
    per_conn.sort_unstable();
    assert_eq!(per_conn, [20, 30, 100, 200, 300, 300]);
    assert!(t.conns.iter().all(|c| c["state"] == "closed"), "{out}");
    // The log names each open and each message.
    assert_eq!(err.matches(" open peer=").count(), 6, "{err}");
    assert_eq!(err.matches(" msg seq=").count() as u64, expect_msgs);
    assert!(err.contains("reply=SEQ"), "{err}");
}

#[test]
fn python_client_wrong_protocol_is_refused() {
    let serve = Serve::start(&["--as", "osd"]);
    // A client that dials the OSD with the monitor protocol (15) gets BADPROTOVER.
    let out = python(&serve.addr, &["--messages", "1"])
        .output()
        .expect("python3");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BADPROTOVER"), "{text}");
    // With the OSD protocol it is accepted.
    let s = summary(
        &python(
            &serve.addr,
            &["--messages", "5", "--protocol-version", "24"],
        )
        .output()
        .expect("python3"),
    );
    check(&s, 5, 21);
    let (out, err) = serve.stop();
    assert_eq!(num(&totals(&out).total, "messages"), 5, "{out}");
    assert!(
        err.contains(
            "refused connect: BADPROTOVER (client speaks protocol 15; connections to osd use 24)"
        ),
        "{err}"
    );
}

/// A seq gap is delivered and logged; duplicates of acknowledged messages are dropped,
/// logged and counted in the totals.
#[test]
fn python_client_seq_gap_and_duplicates_are_logged() {
    let serve = Serve::start(&[]);
    // Seqs 1–5, then 9–13 (a gap of 3), then 1–4 again, then 14.
    let s = summary(
        &python(
            &serve.addr,
            &["--messages", "10", "--gap", "3", "--duplicates", "4"],
        )
        .output()
        .expect("python3"),
    );
    check(&s, 11, 21);
    assert_eq!(num(&s, "acked_seq"), 14, "{s:?}");
    let (out, err) = serve.stop();
    let t = totals(&out);
    assert_eq!(num(&t.total, "messages"), 11, "{out}");
    assert_eq!(num(&t.total, "duplicates_dropped"), 4, "{out}");
    assert_eq!(num(&t.total, "seq_gaps"), 1, "{out}");
    assert_eq!(num(&t.conns[0], "duplicates_dropped"), 4, "{out}");
    assert!(
        err.contains("seq gap: got 9, expected 6 (delivered)"),
        "{err}"
    );
    for seq in 1..=4 {
        assert!(
            err.contains(&format!(
                "dropped duplicate message seq={seq} (expected 14)"
            )),
            "{err}"
        );
    }
    assert_eq!(err.matches(" msg seq=").count(), 11, "{err}");
}

/// Our own client, on the mio reactor, against `serve`.
#[test]
fn rust_mio_client_against_serve() {
    let serve = Serve::start(&[]);
    let addr: SocketAddr = serve.addr.parse().expect("addr");
    let mut r = Reactor::new().expect("reactor");
    let mut cfg = Config::client(EntityName::client(7));
    cfg.nonce = 31337;
    let id = r.connect(cfg, addr, EntityType::Mon);
    let mut payload = 0u64;
    for i in 0..150u64 {
        let front = Bytes::from(vec![i as u8; (i * 37 % 500) as usize]);
        let data = Bytes::from(vec![!(i as u8); (i * 997 % 9000) as usize]);
        payload += (front.len() + data.len()) as u64;
        r.send(
            id,
            Message::new(42)
                .with_tid(i + 1)
                .with_front(front)
                .with_data_chunk(data),
        )
        .expect("queue");
    }
    let mut acked = 0;
    let mut opened = None;
    let mut keepalive = None;
    let mut closed = None;
    let deadline = Instant::now() + Duration::from_secs(15);
    while closed.is_none() {
        assert!(Instant::now() < deadline, "timeout: acked {acked}");
        r.run_once(Some(Duration::from_millis(100)), |ctl, cid, n| {
            assert_eq!(cid, id);
            match n {
                Notice::Event(Event::Opened {
                    reply_tag,
                    features,
                    ..
                }) => opened = Some((reply_tag, features)),
                Notice::Event(Event::Acked(seq)) => {
                    acked = seq;
                    if seq == 150 {
                        ctl.send_keepalive(cid);
                    }
                }
                Notice::Event(Event::KeepaliveAck { rtt }) => {
                    keepalive = Some(rtt);
                    ctl.close(cid);
                }
                Notice::Event(Event::Closed { error, unsent }) => {
                    assert!(error.is_none(), "{error:?}");
                    assert!(unsent.is_empty());
                    closed = Some(());
                }
                Notice::Event(Event::Fault { error }) => panic!("fault: {error}"),
                _ => {}
            }
        })
        .expect("turn");
    }
    let (tag, features) = opened.expect("opened");
    assert_eq!(tag, ceph_msgr::wire::tag::SEQ);
    assert_ne!(features & ceph_msgr::wire::feature::MSGR_KEEPALIVE2, 0);
    assert!(
        keepalive.expect("keepalive answered").is_some(),
        "rtt measured"
    );
    assert_eq!(acked, 150);
    assert!(r.is_empty(), "closed connection left the reactor");

    let (out, err) = serve.stop();
    let t = totals(&out);
    assert_eq!(t.conns.len(), 1, "{out}");
    let c = &t.conns[0];
    assert_eq!(num(c, "messages"), 150, "{out}");
    assert_eq!(num(c, "payload_bytes"), payload, "{out}");
    assert_eq!(num(c, "keepalives_answered"), 1, "{out}");
    assert!(c["peer"].ends_with("/31337"), "{out}");
    assert!(err.contains("src=client.7"), "{err}");
}

/// A lossless `serve` keeps one session across our client's reconnects: no message is
/// lost or counted twice.
#[test]
fn rust_lossless_client_reconnects_to_lossless_serve() {
    let serve = Serve::start(&["--lossless", "--as", "osd.3", "--quiet"]);
    let addr: SocketAddr = serve.addr.parse().expect("addr");
    let mut r = Reactor::new().expect("reactor");
    let mut cfg = Config::client(EntityName::client(8));
    cfg.lossy = false;
    cfg.nonce = 555;
    cfg.backoff_initial = Duration::from_millis(2);
    let id = r.connect(cfg, addr, EntityType::Osd);
    let total = 400u64;
    let mut queued = 0u64;
    // (acked, opens) as the events report them.
    let seen = std::cell::Cell::new((0u64, 0u32));
    let on_notice = |n: Notice| match n {
        Notice::Event(Event::Acked(seq)) => seen.set((seq, seen.get().1)),
        Notice::Event(Event::Opened { .. }) => seen.set((seen.get().0, seen.get().1 + 1)),
        Notice::Event(Event::Closed { error, .. }) => panic!("closed: {error:?}"),
        Notice::Event(Event::SessionReset { .. }) => panic!("session reset"),
        _ => {}
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut disconnects = 0;
    while r.conn(id).expect("lives").messenger().acked() < total {
        assert!(Instant::now() < deadline, "timeout: {:?}", seen.get());
        let conn = r.conn(id).expect("lives");
        // Queue in bursts, each on an open session; drop the transport right after each
        // of the first three (a fast peer may already have acknowledged the whole burst).
        if queued < total && conn.state() == State::Open && conn.messenger().len() < 20 {
            for _ in 0..100 {
                queued += 1;
                r.send(
                    id,
                    Message::new(9)
                        .with_tid(queued)
                        .with_data_chunk(Bytes::from(vec![queued as u8; 3000])),
                )
                .expect("queue");
            }
            if queued < total {
                r.run_once(Some(Duration::ZERO), |_, _, n| on_notice(n))
                    .expect("turn");
                r.disconnect(id, "test");
                disconnects += 1;
            }
        }
        r.run_once(Some(Duration::from_millis(50)), |_, _, n| on_notice(n))
            .expect("turn");
    }
    let (acked, opens) = seen.get();
    assert_eq!(disconnects, 3);
    assert_eq!(acked, total, "every ack was reported");
    assert_eq!(opens, 4, "one open per transport");
    let (out, err) = serve.stop();
    let t = totals(&out);
    // One session carried everything (a transport dropped before the peer identified
    // itself is listed on its own, with nothing on it).
    let busy: Vec<_> = t.conns.iter().filter(|c| num(c, "messages") > 0).collect();
    assert_eq!(busy.len(), 1, "one session across transports\n{out}\n{err}");
    assert_eq!(num(busy[0], "messages"), total, "{out}");
    assert_eq!(num(busy[0], "payload_bytes"), total * 3000, "{out}");
    assert_eq!(num(&t.total, "messages"), total, "{out}");
    assert!(err.contains("resumed by the transport"), "{err}");
}

/// One port, both protocols at once: a msgr2 client (ours, on the mio reactor) holds its
/// session open while the independent Python v1 client runs start to finish; then the v2
/// client sends, keeps alive and closes. Each connection is logged and totalled under the
/// protocol it spoke.
#[test]
fn v1_and_v2_clients_at_once_on_one_port() {
    let serve = Serve::start(&[]);
    let addr: SocketAddr = serve.addr.parse().expect("addr");
    let mut r = Reactor::new().expect("reactor");
    let mut cfg = Config::client(EntityName::client(9));
    cfg.nonce = 4242;
    cfg.protocol = ceph_msgr::Protocol::V2;
    let id = r.connect(cfg, addr, EntityType::Mon);
    let turn = |r: &mut Reactor, want: &mut dyn FnMut(&Event) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut done = false;
        while !done {
            assert!(Instant::now() < deadline, "timeout");
            r.run_once(Some(Duration::from_millis(50)), |_, _, n| {
                if let Notice::Event(e) = n {
                    assert!(!matches!(e, Event::Fault { .. }), "{e:?}");
                    done |= want(&e);
                }
            })
            .expect("turn");
        }
    };
    // Half the messages before the v1 client, half after.
    for i in 0..50u64 {
        r.send(
            id,
            Message::new(42)
                .with_tid(i + 1)
                .with_data_chunk(Bytes::from(vec![7u8; 1000])),
        )
        .expect("queue");
    }
    turn(&mut r, &mut |e| matches!(e, Event::Acked(50)));
    assert_eq!(
        r.conn(id).expect("open").protocol(),
        ceph_msgr::Protocol::V2
    );

    // The v1 client, while the v2 session stays open.
    let s = summary(
        &python(&serve.addr, &["--messages", "120", "--keepalive"])
            .output()
            .expect("python3"),
    );
    check(&s, 120, 21);
    assert_eq!(r.conn(id).expect("still open").state(), State::Open);

    for i in 50..100u64 {
        r.send(
            id,
            Message::new(42)
                .with_tid(i + 1)
                .with_data_chunk(Bytes::from(vec![7u8; 1000])),
        )
        .expect("queue");
    }
    turn(&mut r, &mut |e| matches!(e, Event::Acked(100)));
    r.send_keepalive(id);
    turn(&mut r, &mut |e| {
        matches!(e, Event::KeepaliveAck { rtt: Some(_) })
    });
    r.close(id);
    turn(&mut r, &mut |e| matches!(e, Event::Closed { .. }));

    let (out, err) = serve.stop();
    let t = totals(&out);
    assert_eq!(t.conns.len(), 2, "{out}");
    assert_eq!(num(&t.total, "v1"), 1, "{out}");
    assert_eq!(num(&t.total, "v2"), 1, "{out}");
    assert_eq!(num(&t.total, "messages"), 220, "{out}");
    assert_eq!(num(&t.total, "keepalives_answered"), 2, "{out}");
    let by = |p: &str| t.conns.iter().find(|c| c["protocol"] == p).expect(p);
    assert_eq!(num(by("v1"), "messages"), 120, "{out}");
    assert_eq!(num(by("v2"), "messages"), 100, "{out}");
    assert_eq!(num(by("v2"), "payload_bytes"), 100_000, "{out}");
    assert!(by("v2")["peer"].ends_with("/4242"), "{out}");
    assert_eq!(err.matches(" protocol=v1\n").count(), 1, "{err}");
    assert_eq!(err.matches(" protocol=v2\n").count(), 1, "{err}");
    // msgr2: the source's number is the global id the server's auth assigned.
    assert!(err.contains(" reply=SERVER_IDENT "), "{err}");
    assert_eq!(err.matches(" src=client.").count(), 220, "{err}");
}
