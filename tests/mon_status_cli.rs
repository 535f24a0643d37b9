//! `ceph-msgr mon-status` failure modes over loopback, without a real monitor: each gets
//! a one-line error and its own exit code. (`tests/real_mon.rs` runs it against a real
//! ceph-mon.)

use std::io::{IoSlice, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use ceph_msgr::conn::{Config, Connection, Event};
use ceph_msgr::wire::handshake::EntityAddr;
use ceph_msgr::wire::{EntityName, EntityType};
use ceph_msgr::Message;

fn mon_status(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ceph-msgr"))
        .arg("mon-status")
        .args(args)
        .output()
        .expect("run ceph-msgr")
}

/// Exit code and the one stderr line.
fn outcome(o: &Output) -> (i32, String) {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {err:?}");
    assert!(o.stdout.is_empty(), "nothing on stdout on failure");
    (o.status.code().expect("exit code"), lines[0].to_owned())
}

#[test]
fn refused() {
    let port = {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let (code, line) = outcome(&mon_status(&[&format!("v1:127.0.0.1:{port}")]));
    assert_eq!(code, 2, "{line}");
    assert!(
        line.starts_with(&format!(
            "ceph-msgr: v1:127.0.0.1:{port}: connection refused"
        )),
        "{line}"
    );
    // An address vector as ceph.conf writes it: its v2 entry first, then its v1 entry;
    // the last refusal is the one reported.
    let (code, line) = outcome(&mon_status(&[&format!(
        "[v2:127.0.0.1:{port}/0,v1:127.0.0.1:{port}/0]"
    )]));
    assert_eq!(code, 2, "{line}");
    assert!(
        line.contains(&format!("127.0.0.1:{port}: connection refused")),
        "{line}"
    );
}

#[test]
fn timeout() {
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let t = Instant::now();
    let (code, line) = outcome(&mon_status(&[&addr, "--timeout", "0.5"]));
    assert_eq!(code, 4, "{line}");
    // A bare address tries msgr2 first; a peer that never answers is the answer.
    assert_eq!(line, format!("ceph-msgr: v2:{addr}: timed out"));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn closed_during_the_handshake() {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut b = [0u8; 64];
        let _ = s.read(&mut b);
    });
    let (code, line) = outcome(&mon_status(&[&addr]));
    h.join().unwrap();
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("closed the connection"), "{line}");
}

#[test]
fn a_msgr2_peer_without_revision_1_is_a_protocol_error() {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        // A msgr2 banner that supports nothing: not msgr2.1.
        let mut banner = b"ceph v2\n\x10\x00".to_vec();
        banner.extend_from_slice(&[0u8; 16]);
        s.write_all(&banner).unwrap();
        let mut b = [0u8; 512];
        let _ = s.read(&mut b);
    });
    let (code, line) = outcome(&mon_status(&[&format!("v2:{addr}")]));
    h.join().unwrap();
    assert_eq!(code, 6, "{line}");
    assert!(line.contains("msgr2"), "{line}");
}

#[test]
fn a_bare_address_falls_back_to_v1_when_the_peer_speaks_v1() {
    // A v1-only monitor that refuses the MAuth: the msgr2 attempt sees its `ceph v027`
    // banner, the second connection speaks v1 and gets as far as v1 authentication (msgr2
    // has no MAuth), which the fake refuses.
    let (addr, h) = fake_mon_times(2, refuse_auth);
    let (code, line) = outcome(&mon_status(&[&addr, "--timeout", "5"]));
    h.join().unwrap();
    assert_eq!(code, 5, "{line}");
    assert!(line.contains("client.admin may not log in"), "{line}");
}

#[test]
fn usage_errors_exit_1() {
    let (code, line) = outcome(&mon_status(&["--bogus"]));
    assert_eq!(code, 1, "{line}");
    let o = mon_status(&[]);
    assert_eq!(o.status.code(), Some(1));
    let o = mon_status(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ceph-msgr mon-status ADDR"));
}

/// Output that cannot be written ends the process with an exit code, never a panic.
#[test]
fn unwritable_stdout_is_an_exit_code_not_a_panic() {
    let bin = env!("CARGO_BIN_EXE_ceph-msgr");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("'{bin}' help >/dev/full"))
        .output()
        .expect("sh");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write to stdout"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // A reader that has already exited: the writer gets EPIPE and ends as SIGPIPE would.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{{ sleep 0.3; '{bin}' help; echo \"status $?\" >&2; }} | true"
        ))
        .output()
        .expect("sh");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("status 141"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// What a fake monitor does with the client's MAuth.
type OnAuth = fn(&mut Connection, &mut TcpStream);

/// A fake monitor built on the core that refuses every MAuth with -EACCES.
fn refusing_mon() -> (String, JoinHandle<()>) {
    fake_mon(refuse_auth)
}

fn refuse_auth(c: &mut Connection, _: &mut TcpStream) {
    {
        // MAuthReply: protocol 1, result -13, global_id 0, no blob, message.
        let mut f = BytesMut::new();
        f.put_u32_le(1);
        f.put_i32_le(-13);
        f.put_u64_le(0);
        f.put_u32_le(0);
        let msg = b"client.admin may not log in";
        f.put_u32_le(msg.len() as u32);
        f.put_slice(msg);
        c.send(Message::new(18).with_front(f.freeze())).unwrap();
    }
}

/// A fake monitor: the real handshake, then `on_auth` when the MAuth arrives.
fn fake_mon(on_auth: OnAuth) -> (String, JoinHandle<()>) {
    fake_mon_times(1, on_auth)
}

/// A fake v1 monitor that serves `times` connections, one after the other.
fn fake_mon_times(times: usize, on_auth: OnAuth) -> (String, JoinHandle<()>) {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        for _ in 0..times {
            serve_one(&l, addr, on_auth);
        }
    });
    (addr.to_string(), h)
}

fn serve_one(l: &TcpListener, addr: std::net::SocketAddr, on_auth: OnAuth) {
    {
        let (mut s, peer) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = Connection::server(
            Config::server(EntityName {
                ty: EntityType::Mon,
                num: 0,
            }),
            EntityAddr::new(Some(addr), 0),
            peer,
        );
        let mut buf = [0u8; 4096];
        loop {
            flush(&mut c, &mut s);
            while let Some(ev) = c.poll_event() {
                if let Event::Message(m) = ev {
                    if m.header.ty == 17 {
                        on_auth(&mut c, &mut s);
                    }
                }
            }
            flush(&mut c, &mut s);
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => c.handle_input(Instant::now(), &buf[..n]),
            }
        }
    }
}

fn flush(c: &mut Connection, s: &mut TcpStream) {
    loop {
        let n = {
            let t = c.poll_transmit();
            let mut sl = [IoSlice::new(&[]); 16];
            let k = t.fill(&mut sl);
            if k == 0 {
                return;
            }
            match s.write_vectored(&sl[..k]) {
                Ok(n) => n,
                Err(_) => return,
            }
        };
        c.advance(n).unwrap();
    }
}

#[test]
fn auth_rejected() {
    let (addr, h) = refusing_mon();
    let (code, line) = outcome(&mon_status(&[&format!("v1:{addr}")]));
    h.join().unwrap();
    assert_eq!(code, 5, "{line}");
    assert_eq!(
        line,
        "ceph-msgr: authentication rejected (result -13: client.admin may not log in)"
    );
}

/// Bytes that break the protocol after the handshake are a protocol error (6), not a
/// monitor that closed the connection (3).
#[test]
fn garbage_after_the_handshake_is_a_protocol_error() {
    let (addr, h) = fake_mon(|c, s| {
        flush(c, s);
        s.write_all(&[0xee]).unwrap(); // no such tag
    });
    let (code, line) = outcome(&mon_status(&[&format!("v1:{addr}"), "--timeout", "5"]));
    h.join().unwrap();
    assert_eq!(code, 6, "{line}");
    assert!(line.contains("tag"), "{line}");
}
