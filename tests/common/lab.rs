//! The real-monitor lab for interop tests: `scripts/ceph-lab.sh start` on loopback, stopped
//! when the guard drops, and the skip rule (skip without `ceph-mon`, fail under `CI`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ceph-lab.sh")
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `true` if the test may go on; prints a skip notice (or panics under CI) otherwise.
pub fn need(tool: &str, test: &str) -> bool {
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
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A running lab monitor; stopped (and its directory removed) on drop.
pub struct Lab {
    pub dir: String,
    pub conf: String,
    /// The v1 port (unused with `--v2-only`).
    pub port: u16,
    /// The msgr2 address (`v2:127.0.0.1:PORT`) when started with `--v2` or `--v2-only`.
    pub mon_v2: Option<String>,
    pub fsid: String,
}

impl Lab {
    pub fn start(test: &str) -> Self {
        Self::start_with(test, &[])
    }

    /// `ceph-lab.sh start ARGS` (`--v2`, `--v2-only`).
    pub fn start_with(test: &str, args: &[&str]) -> Self {
        let t = Instant::now();
        let out = Command::new(script())
            .arg("start")
            .args(args)
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
            mon_v2: get("CEPH_LAB_MON_V2"),
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
            "{test}: mon started in {:.3} s (ceph-lab.sh start, wall) on 127.0.0.1:{}{}",
            t.elapsed().as_secs_f64(),
            lab.port,
            lab.mon_v2
                .as_deref()
                .map(|a| format!(" and {a}"))
                .unwrap_or_default()
        ));
        lab
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log(&self) -> String {
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
pub struct Timer(pub &'static str, pub Instant);
impl Drop for Timer {
    fn drop(&mut self) {
        note(&format!(
            "{}: took {:.3} s",
            self.0,
            self.1.elapsed().as_secs_f64()
        ));
    }
}

impl Lab {
    /// The msgr2 socket address.
    pub fn addr_v2(&self) -> std::net::SocketAddr {
        let a = self.mon_v2.as_deref().expect("started with --v2");
        a.trim_start_matches("v2:").parse().expect("v2:IP:PORT")
    }
}

// ----- a small JSON reader (test-only) ------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    pub fn parse(s: &str) -> Json {
        let mut p = JsonParser {
            b: s.as_bytes(),
            i: 0,
        };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.b.len(), "trailing bytes in JSON: {s}");
        v
    }
    pub fn get(&self, k: &str) -> &Json {
        match self {
            Json::Obj(m) => m.get(k).unwrap_or_else(|| panic!("no key {k} in {self:?}")),
            _ => panic!("not an object: {self:?}"),
        }
    }
    pub fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("not a string: {self:?}"),
        }
    }
    pub fn num(&self) -> f64 {
        match self {
            Json::Num(n) => *n,
            _ => panic!("not a number: {self:?}"),
        }
    }
    pub fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => panic!("not an array: {self:?}"),
        }
    }
}

pub struct JsonParser<'a> {
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
pub fn mon_dump(lab: &Lab) -> Json {
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
pub fn dump_mons(d: &Json) -> Vec<(u64, String, Vec<String>)> {
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
pub fn status_mons(s: &Json) -> Vec<(u64, String, Vec<String>)> {
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
