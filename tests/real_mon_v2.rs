//! Interop with a real `ceph-mon` 16.2.15 over msgr2.1 (crc mode, auth none), started on
//! loopback by `scripts/ceph-lab.sh` (`--v2`: both protocols bound; `--v2-only`:
//! `ms_bind_msgr1 = false`). Skipped without `ceph-mon` unless `CI` is set, as in
//! `tests/real_mon.rs`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::mon::{msg_type, MonClient, MonClientConfig, Subscription};
use ceph_msgr::send::{MsgStatus, Revoked};
use ceph_msgr::{Message, Protocol};
use common::lab::{dump_mons, mon_dump, need, note, status_mons, Json, Lab, Timer};

fn mon_status(addr: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["mon-status", addr, "--timeout", "10"];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_ceph-msgr"))
        .args(&args)
        .output()
        .expect("run ceph-msgr")
}

fn status_json(addr: &str) -> Json {
    let out = mon_status(addr, &["--json"]);
    assert!(
        out.status.success(),
        "mon-status {addr}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Json::parse(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn a_v2_mon_status_agrees_with_ceph_mon_dump() {
    const T: &str = "a_v2_mon_status_agrees_with_ceph_mon_dump";
    if !need("ceph-mon", T) {
        return;
    }
    let _t = Timer(T, Instant::now());
    let lab = Lab::start_with(T, &["--v2"]);
    let v2 = lab.mon_v2.clone().expect("a v2 address");
    let dump = mon_dump(&lab);
    // The v2 address, a bare IP:PORT (v2 tried first) and the addrvec all pick msgr2.
    let bare = v2.trim_start_matches("v2:").to_owned();
    let vec = format!("[v1:127.0.0.1:{},{v2}]", lab.port);
    for addr in [v2.as_str(), bare.as_str(), vec.as_str()] {
        let s = status_json(addr);
        note(&format!(
            "{T}: mon-status {addr}: monitor {}",
            s.get("monitor").str()
        ));
        assert_eq!(s.get("monitor").str(), v2, "{addr} speaks msgr2");
        assert_eq!(s.get("fsid").str(), lab.fsid);
        assert_eq!(s.get("fsid").str(), dump.get("fsid").str());
        assert_eq!(s.get("epoch").num(), dump.get("epoch").num());
        assert_eq!(status_mons(&s), dump_mons(&dump), "each mon's addrvec");
        assert!(s.get("global_id").num() > 0.0, "AUTH_DONE gave a global id");
        assert!(s.get("keepalive_rtt_ms").num() > 0.0);
    }
    // v1 still answers on its own port.
    let s = status_json(&format!("v1:127.0.0.1:{}", lab.port));
    assert_eq!(s.get("fsid").str(), lab.fsid);
}

#[test]
fn b_a_v2_only_mon() {
    const T: &str = "b_a_v2_only_mon";
    if !need("ceph-mon", T) {
        return;
    }
    let _t = Timer(T, Instant::now());
    let lab = Lab::start_with(T, &["--v2-only"]);
    let v2 = lab.mon_v2.clone().expect("a v2 address");
    let dump = mon_dump(&lab);
    let s = status_json(&v2);
    assert_eq!(s.get("fsid").str(), lab.fsid);
    assert_eq!(status_mons(&s), dump_mons(&dump));
    let mons = status_mons(&s);
    assert!(
        mons.iter()
            .all(|(_, _, a)| a.iter().all(|x| x.starts_with("v2:"))),
        "{mons:?}"
    );
    // Nothing listens on v1: a clear refusal, not a hang.
    let t = Instant::now();
    let out = mon_status(&format!("v1:127.0.0.1:{}", lab.port), &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn c_revoke_mid_frame_over_v2_is_dropped_and_the_session_stays_up() {
    const T: &str = "c_revoke_mid_frame_over_v2_is_dropped_and_the_session_stays_up";
    if !need("ceph-mon", T) {
        return;
    }
    let _t = Timer(T, Instant::now());
    let lab = Lab::start_with(T, &["--v2"]);
    let cfg = MonClientConfig {
        protocol: Protocol::V2,
        lossy: false,
        ..MonClientConfig::default()
    };
    let mut c = MonClient::connect(lab.addr_v2(), cfg).expect("connect over msgr2");
    c.authenticate(Duration::from_secs(5)).expect("auth none");
    assert!(c.global_id() > 0);

    // 8 MiB of data in a PING, then requests queued behind it.
    let big = Message::new(msg_type::PING).with_data_chunk(Bytes::from(vec![0xA5u8; 8 << 20]));
    let id = c.connection().send(big).expect("queue the big message");
    let handles: Vec<u64> = ["osdmap", "monmap", "osdmap"]
        .iter()
        .map(|w| c.send_get_version(w).expect("queue MMonGetVersion"))
        .collect();
    c.subscribe(&[Subscription::persistent("monmap", 0)])
        .expect("queue MMonSubscribe");

    let wrote = c.connection().write_some(1 << 20, Duration::from_secs(5));
    assert_eq!(wrote, 1 << 20);
    let st = c.connection().connection().messenger().status(id);
    let MsgStatus::Sending { written, len, .. } = st else {
        panic!("the big message should be mid-write: {st:?}")
    };
    let r = c.connection().revoke(id);
    let Revoked::Aborted { seq, zeros, .. } = r else {
        panic!("revoke mid-data must abort: {r:?}")
    };
    assert_eq!(
        zeros,
        len - written,
        "the rest of the data and the epilogue"
    );
    note(&format!(
        "{T}: revoked seq {seq} after {written} of {len} bytes; {zeros} bytes of zeros and an ABORTED epilogue follow"
    ));

    // Every request behind it is answered on the same connection: the mon drops an
    // aborted msgr2 frame and keeps the session.
    for h in &handles {
        let v = c
            .wait_version(*h, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("version request {h} lost: {e}"));
        assert_eq!(v.handle, *h);
    }
    let m = c
        .wait_monmap(Duration::from_secs(10))
        .expect("subscription answered");
    assert_eq!(m.fsid.to_string(), lab.fsid);
    let shim = c.connection().stats();
    let core = c.connection().connection().stats();
    note(&format!("{T}: shim {shim:?}\n{T}: core {core:?}"));
    assert_eq!(c.faults(), 0, "no fault");
    assert_eq!(shim.transports, 1, "no reconnect");
    assert_eq!(core.opens, 1, "one session");
    assert_eq!(core.faults, 0);
    assert_eq!(c.sessions(), 1);
    assert!(shim.bytes_out >= len, "the whole frame went out");
    assert!(c
        .keepalive(Duration::from_secs(5))
        .expect("keepalive")
        .is_some());
    c.close(Duration::from_secs(2));
}
