//! Interop with a real `ceph-mon` (msgr v1, auth none) started on loopback by
//! `scripts/ceph-lab.sh`. Each test starts its own monitor and stops it when it ends,
//! whether it passes or fails (a guard with `Drop`).
//!
//! Without `ceph-mon` installed these tests print a skip notice and pass, unless the `CI`
//! environment variable is set: then they fail (CI installs the lab:
//! `scripts/ceph-lab.sh install --tshark`). The capture test needs `tshark` likewise.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::mon::{msg_type, MonClient, MonClientConfig, Subscription};
use ceph_msgr::send::{MsgStatus, Revoked};
use ceph_msgr::Message;

// ----- the lab ------------------------------------------------------------------------------

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ceph-lab.sh")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `true` if the test may go on; prints a skip notice (or panics under CI) otherwise.
fn need(tool: &str, test: &str) -> bool {
    if have(tool) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: `{tool}` is not installed but CI is set; run `scripts/ceph-lab.sh install --tshark`");
    }
    // Straight to the stderr handle: the test harness captures `eprintln!` of passing
    // tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: `{tool}` is not installed (scripts/ceph-lab.sh install --tshark)"
    );
    false
}

/// A line for the log even when the harness captures output (timings, skips).
fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A running lab monitor; stopped (and its directory removed) on drop.
struct Lab {
    dir: String,
    conf: String,
    port: u16,
    fsid: String,
}

impl Lab {
    fn start(test: &str) -> Self {
        let t = Instant::now();
        let out = Command::new(script())
            .arg("start")
            .stderr(Stdio::piped())
            .output()
            .expect("run scripts/ceph-lab.sh start");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let get = |k: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(|v| v.trim_matches('\'').to_owned())
        };
        // Build the guard first so a half-started lab is stopped too.
        let lab = get("CEPH_LAB_DIR").map(|dir| Self {
            dir,
            conf: get("CEPH_LAB_CONF").unwrap_or_default(),
            port: get("CEPH_LAB_PORT")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            fsid: get("CEPH_LAB_FSID").unwrap_or_default(),
        });
        assert!(
            out.status.success() && lab.as_ref().is_some_and(|l| l.port != 0),
            "{test}: ceph-lab.sh start failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let lab = lab.expect("checked");
        note(&format!(
            "{test}: mon started in {:.3} s (ceph-lab.sh start, wall) on 127.0.0.1:{}",
            t.elapsed().as_secs_f64(),
            lab.port
        ));
        lab
    }

    fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(Path::new(&self.dir).join("mon.a.log")).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let t = Instant::now();
        let st = Command::new(script())
            .args(["stop", &self.dir])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if st.is_ok_and(|s| s.success()) {
            note(&format!(
                "mon on port {} stopped in {:.3} s",
                self.port,
                t.elapsed().as_secs_f64()
            ));
        } else {
            note(&format!("warning: ceph-lab.sh stop {} failed", self.dir));
        }
    }
}

/// Prints how long a test took when it ends.
struct Timer(&'static str, Instant);
impl Drop for Timer {
    fn drop(&mut self) {
        note(&format!(
            "{}: took {:.3} s",
            self.0,
            self.1.elapsed().as_secs_f64()
        ));
    }
}

fn mon_status(lab: &Lab, extra: &[&str]) -> std::process::Output {
    let addr = format!("v1:127.0.0.1:{}", lab.port);
    let mut args = vec!["mon-status", addr.as_str(), "--timeout", "10"];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_ceph-msgr"))
        .args(&args)
        .output()
        .expect("run ceph-msgr")
}

// ----- a small JSON reader (test-only) ------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn parse(s: &str) -> Json {
        let mut p = JsonParser {
            b: s.as_bytes(),
            i: 0,
        };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.b.len(), "trailing bytes in JSON: {s}");
        v
    }
    fn get(&self, k: &str) -> &Json {
        match self {
            Json::Obj(m) => m.get(k).unwrap_or_else(|| panic!("no key {k} in {self:?}")),
            _ => panic!("not an object: {self:?}"),
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("not a string: {self:?}"),
        }
    }
    fn num(&self) -> f64 {
        match self {
            Json::Num(n) => *n,
            _ => panic!("not a number: {self:?}"),
        }
    }
    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => panic!("not an array: {self:?}"),
        }
    }
}

struct JsonParser<'a> {
    b: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(self.b.get(self.i), Some(&c), "JSON: expected {}", c as char);
        self.i += 1;
    }
    fn value(&mut self) -> Json {
        self.ws();
        match self.b[self.i] {
            b'{' => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.b[self.i] == b'}' {
                    self.i += 1;
                    return Json::Obj(m);
                }
                loop {
                    self.ws();
                    let Json::Str(k) = self.value() else {
                        panic!("JSON key")
                    };
                    self.eat(b':');
                    let v = self.value();
                    m.insert(k, v);
                    self.ws();
                    self.i += 1;
                    if self.b[self.i - 1] == b'}' {
                        return Json::Obj(m);
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.b[self.i] == b']' {
                    self.i += 1;
                    return Json::Arr(a);
                }
                loop {
                    a.push(self.value());
                    self.ws();
                    self.i += 1;
                    if self.b[self.i - 1] == b']' {
                        return Json::Arr(a);
                    }
                }
            }
            b'"' => {
                self.i += 1;
                let mut s = String::new();
                loop {
                    let c = self.b[self.i];
                    self.i += 1;
                    match c {
                        b'"' => return Json::Str(s),
                        b'\\' => {
                            let e = self.b[self.i];
                            self.i += 1;
                            match e {
                                b'n' => s.push('\n'),
                                b't' => s.push('\t'),
                                b'u' => {
                                    let h =
                                        std::str::from_utf8(&self.b[self.i..self.i + 4]).unwrap();
                                    s.push(
                                        char::from_u32(u32::from_str_radix(h, 16).unwrap())
                                            .unwrap_or('?'),
                                    );
                                    self.i += 4;
                                }
                                other => s.push(other as char),
                            }
                        }
                        _ => {
                            // Copy a whole UTF-8 sequence.
                            let start = self.i - 1;
                            let mut end = self.i;
                            while end < self.b.len() && (self.b[end] & 0xC0) == 0x80 {
                                end += 1;
                            }
                            s.push_str(std::str::from_utf8(&self.b[start..end]).unwrap());
                            self.i = end;
                        }
                    }
                }
            }
            b't' => {
                self.i += 4;
                Json::Bool(true)
            }
            b'f' => {
                self.i += 5;
                Json::Bool(false)
            }
            b'n' => {
                self.i += 4;
                Json::Null
            }
            _ => {
                let start = self.i;
                while self.i < self.b.len()
                    && matches!(
                        self.b[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                Json::Num(
                    std::str::from_utf8(&self.b[start..self.i])
                        .unwrap()
                        .parse()
                        .unwrap(),
                )
            }
        }
    }
}

/// `ceph mon dump -f json`, parsed.
fn mon_dump(lab: &Lab) -> Json {
    let out = Command::new("timeout")
        .args(["10", "ceph", "-c", &lab.conf, "mon", "dump", "-f", "json"])
        .output()
        .expect("run ceph mon dump");
    assert!(
        out.status.success(),
        "ceph mon dump: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    Json::parse(text.trim())
}

/// (rank, name, ["v1:IP:PORT/NONCE", …]) of every monitor in a `ceph mon dump` document.
fn dump_mons(d: &Json) -> Vec<(u64, String, Vec<String>)> {
    d.get("mons")
        .arr()
        .iter()
        .map(|m| {
            let addrs = m
                .get("public_addrs")
                .get("addrvec")
                .arr()
                .iter()
                .map(|a| {
                    format!(
                        "{}:{}/{}",
                        a.get("type").str(),
                        a.get("addr").str(),
                        a.get("nonce").num()
                    )
                })
                .collect();
            (
                m.get("rank").num() as u64,
                m.get("name").str().to_owned(),
                addrs,
            )
        })
        .collect()
}

/// The same from `ceph-msgr mon-status --json`.
fn status_mons(s: &Json) -> Vec<(u64, String, Vec<String>)> {
    s.get("mons")
        .arr()
        .iter()
        .map(|m| {
            (
                m.get("rank").num() as u64,
                m.get("name").str().to_owned(),
                m.get("addrs")
                    .arr()
                    .iter()
                    .map(|a| a.str().to_owned())
                    .collect(),
            )
        })
        .collect()
}

// ----- the tests ----------------------------------------------------------------------------

#[test]
fn a_mon_status_agrees_with_ceph_mon_dump() {
    const T: &str = "a_mon_status_agrees_with_ceph_mon_dump";
    if !need("ceph-mon", T) {
        return;
    }
    let _t = Timer(T, Instant::now());
    let lab = Lab::start(T);
    let dump = mon_dump(&lab);
    eprintln!("{T}: ceph mon dump -f json: {dump:?}");

    // Default features: the current monmap encoding, with names.
    let out = mon_status(&lab, &["--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mon-status: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{T}: mon-status --json: {text}");
    let s = Json::parse(text.trim());
    assert_eq!(s.get("fsid").str(), dump.get("fsid").str());
    assert_eq!(s.get("fsid").str(), lab.fsid);
    assert_eq!(s.get("epoch").num(), dump.get("epoch").num());
    assert_eq!(status_mons(&s), dump_mons(&dump));
    assert!(s.get("monmap_encoding").num() >= 6.0);
    assert!(s.get("osdmap_version").num() >= 1.0);
    let names: Vec<&str> = s.get("feature_names").arr().iter().map(Json::str).collect();
    for must in ["MSG_AUTH", "MSGR_KEEPALIVE2", "RECONNECT_SEQ", "MONENC"] {
        assert!(
            names.contains(&must),
            "negotiated features lack {must}: {names:?}"
        );
    }
    assert!(s.get("handshake_ms").num() > 0.0);
    assert!(s.get("keepalive_rtt_ms").num() > 0.0);

    // The text form says the same.
    let out = mon_status(&lab, &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{T}: mon-status:\n{text}");
    assert!(
        text.contains(&format!("fsid           {}", lab.fsid)),
        "{text}"
    );
    for (_, name, addrs) in dump_mons(&dump) {
        assert!(
            text.contains(&format!("mon.{name} [{}]", addrs.join(","))),
            "{text}"
        );
    }

    // Legacy features (no MONNAMES/MONENC): the version-1 encoding, ranks for names.
    let out = mon_status(&lab, &["--json", "--legacy-monmap"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{T}: mon-status --json --legacy-monmap: {text}");
    let s = Json::parse(text.trim());
    assert_eq!(s.get("fsid").str(), dump.get("fsid").str());
    assert_eq!(s.get("epoch").num(), dump.get("epoch").num());
    assert_eq!(s.get("monmap_encoding").num(), 1.0);
    let legacy: Vec<_> = dump_mons(&dump)
        .into_iter()
        .map(|(r, _, a)| (r, r.to_string(), a))
        .collect();
    assert_eq!(status_mons(&s), legacy);
}

#[test]
fn b_keepalive2_round_trip_with_the_real_mon() {
    const T: &str = "b_keepalive2_round_trip_with_the_real_mon";
    if !need("ceph-mon", T) {
        return;
    }
    let _t = Timer(T, Instant::now());
    let lab = Lab::start(T);
    let mut c = MonClient::connect(lab.addr(), MonClientConfig::default()).expect("connect");
    c.authenticate(Duration::from_secs(5)).expect("auth none");
    let mut rtts = Vec::new();
    for _ in 0..20 {
        let rtt = c
            .keepalive(Duration::from_secs(5))
            .expect("KEEPALIVE2_ACK")
            .expect("the mon echoes our stamp");
        rtts.push(rtt);
    }
    rtts.sort();
    assert!(rtts[rtts.len() - 1] < Duration::from_secs(1));
    let handshake = c.connection().handshake_time().expect("handshake timed");
    eprintln!(
        "{T}: keepalive2 rtt over 20 round trips: min {:?}, median {:?}, max {:?}; handshake {:?}",
        rtts[0],
        rtts[rtts.len() / 2],
        rtts[rtts.len() - 1],
        handshake
    );
    c.close(Duration::from_secs(2));
}

#[test]
fn c_revoke_mid_data_against_the_real_mon_and_recover() {
    const T: &str = "c_revoke_mid_data_against_the_real_mon_and_recover";
    if !need("ceph-mon", T) {
        return;
    }
    let _t = Timer(T, Instant::now());
    let lab = Lab::start(T);
    // Lossless: after a fault, reconnect and resend what is held.
    let cfg = MonClientConfig {
        lossy: false,
        ..MonClientConfig::default()
    };
    let mut c = MonClient::connect(lab.addr(), cfg).expect("connect");
    c.authenticate(Duration::from_secs(5)).expect("auth none");
    let gid1 = c.global_id();
    // The mon marks client sessions LOSSY in its connect reply. With `cfg.lossy = false`
    // the core takes that as "the server forgets the session on a fault": it reconnects
    // with a fresh session and resends every held message.
    assert!(c.connection().connection().is_lossy());

    // 8 MiB of data in a PING (the mon decodes a PING and ignores the data), then requests
    // queued behind it.
    let big = Message::new(msg_type::PING).with_data_chunk(Bytes::from(vec![0xA5u8; 8 << 20]));
    let id = c.connection().send(big).expect("queue the big message");
    let handles: Vec<u64> = ["osdmap", "monmap", "osdmap"]
        .iter()
        .map(|w| c.send_get_version(w).expect("queue MMonGetVersion"))
        .collect();
    c.subscribe(&[Subscription::persistent("monmap", 0)])
        .expect("queue MMonSubscribe");

    // Write 1 MiB: the header and the start of the data.
    let wrote = c.connection().write_some(1 << 20, Duration::from_secs(5));
    assert_eq!(wrote, 1 << 20);
    let st = c.connection().connection().messenger().status(id);
    let MsgStatus::Sending { written, len, .. } = st else {
        panic!("the big message should be mid-write: {st:?}")
    };
    assert!(
        written > 54 && written < len - 21,
        "mid-data: {written}/{len}"
    );
    let r = c.connection().revoke(id);
    let Revoked::Aborted {
        seq,
        head_left,
        zeros,
    } = r
    else {
        panic!("revoke mid-data must abort: {r:?}")
    };
    assert_eq!(head_left, 0);
    assert_eq!(zeros, len - written);
    eprintln!(
        "{T}: revoked seq {seq} after {written} of {len} bytes: {zeros} zeros and a footer without COMPLETE go out"
    );

    // Every request queued behind gets its answer: the mon faults the connection on the
    // aborted message, the client reconnects (new mon session), authenticates again and
    // resends.
    let t = Instant::now();
    for h in &handles {
        let v = c
            .wait_version(*h, Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("version request {h} lost: {e}"));
        assert_eq!(v.handle, *h);
        assert!(v.version >= 1);
    }
    let recovered = t.elapsed();
    let m = c
        .wait_monmap(Duration::from_secs(10))
        .expect("subscription renewed");
    assert_eq!(m.fsid.to_string(), lab.fsid);
    let stats = c.connection().stats();
    let core = c.connection().connection().stats();
    eprintln!(
        "{T}: recovered in {recovered:?}: faults {}, mon sessions {}, transports {}, global_id {gid1} -> {}, core {core:?}",
        c.faults(),
        c.sessions(),
        stats.transports,
        c.global_id()
    );
    assert_eq!(
        c.faults(),
        1,
        "exactly one fault: the mon's reaction to the abort"
    );
    assert_eq!(c.sessions(), 2, "authenticated again on the new connection");
    assert_eq!(stats.transports, 2);
    assert!(
        stats.bytes_out >= len,
        "the whole frame went out: {stats:?}"
    );
    // Still usable.
    assert!(c
        .keepalive(Duration::from_secs(5))
        .expect("keepalive")
        .is_some());
    c.close(Duration::from_secs(2));

    // What the monitor logged about it.
    let log = lab.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("ABORTED")).collect();
    for l in &lines {
        eprintln!("{T}: mon log: {l}");
    }
    assert!(
        !lines.is_empty(),
        "the mon log has no ABORTED line; tail:\n{}",
        log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    assert!(
        lines[0].contains(&format!("{} byte message", 8 << 20)),
        "{}",
        lines[0]
    );
}

/// A tshark capture, stopped (SIGINT, then kill) on drop.
struct Capture {
    child: Option<Child>,
    file: PathBuf,
}

impl Capture {
    fn start(port: u16, file: PathBuf) -> Self {
        let log = file.with_extension("log");
        let mut child = Command::new("tshark")
            .args(["-q", "-i", "lo", "-f", &format!("tcp port {port}"), "-w"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("tshark log"))
            .spawn()
            .expect("start tshark");
        // tshark logs "Capture started." once dumpcap reports the capture running
        // ("Capturing on" comes earlier, before packets are seen).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Capture started") {
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("tshark exited early ({st}): {text}");
            }
            assert!(Instant::now() < deadline, "tshark did not start: {text}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child: Some(child),
            file,
        }
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("KEEP_CAPTURE").is_none() {
            let _ = std::fs::remove_file(&self.file);
        }
        let _ = std::fs::remove_file(self.file.with_extension("log"));
    }
}

#[test]
fn d_tshark_decodes_our_frames() {
    const T: &str = "d_tshark_decodes_our_frames";
    if !need("ceph-mon", T) || !need("tshark", T) {
        return;
    }
    let _t = Timer(T, Instant::now());
    let lab = Lab::start(T);
    let file = std::env::temp_dir().join(format!(
        "ceph-msgr-cap-{}-{}.pcapng",
        std::process::id(),
        lab.port
    ));
    let mut cap = Capture::start(lab.port, file.clone());
    let out = mon_status(&lab, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The CLOSE and FIN are on the wire once mon-status exited; give the capture a moment
    // to write them (tshark has no "flushed" signal).
    std::thread::sleep(Duration::from_millis(300));
    cap.stop();

    // tshark 4.0's Ceph dissector is a TCP heuristic (`-d tcp.port==N,ceph` is refused
    // there). Our frames: the ones sent to the mon's port.
    let decode = |filter: &str| {
        let o = Command::new("tshark")
            .args(["-r"])
            .arg(&file)
            .args(["-Y", filter, "-V"])
            .output()
            .expect("run tshark -r");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let ours = decode(&format!("tcp.dstport=={}", lab.port));
    let bad: Vec<&str> = ours
        .lines()
        .filter(|l| l.contains("[Malformed Packet") || l.contains("Expert Info (Error"))
        .collect();
    assert!(bad.is_empty(), "tshark flags our frames: {bad:?}\n{ours}");
    for want in [
        "Version: ceph v027",
        "Ceph Connect",
        "Connection Negotiation",
        "Ceph Sequence Number",
        "Message Header, Type: C_CEPH_MSG_AUTH,",
        "Message Header, Type: C_CEPH_MSG_MON_SUBSCRIBE,",
        "Message Header, Type: C_CEPH_MSG_MON_GET_VERSION,",
        "Ceph ACK",
        "Ceph KEEPALIVE2",
        "Ceph CLOSE",
    ] {
        assert!(
            ours.contains(want),
            "tshark did not decode `{want}` in our frames:\n{ours}"
        );
    }
    let summary: Vec<&str> = ours
        .lines()
        .filter(|l| l.starts_with("Ceph ") || l.contains("Message Header,"))
        .collect();
    eprintln!(
        "{T}: our frames as tshark decodes them:\n  {}",
        summary.join("\n  ")
    );
    // The mon's frames, for the record: tshark cannot decode the MonMap payloads.
    let theirs = decode(&format!("tcp.srcport=={}", lab.port));
    let malformed = theirs
        .lines()
        .filter(|l| l.starts_with("[Malformed Packet"))
        .count();
    eprintln!("{T}: the mon's frames: {malformed} flagged malformed by tshark (its MonMap decoder knows encoding version 3 only)");
}
