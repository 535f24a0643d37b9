//! `ceph-msgr mon-status ADDR`: connect to a monitor over msgr v1 with the blocking shim,
//! authenticate (auth none), subscribe to the monitor map and print what the cluster says.

use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use ceph_msgr::conn;
use ceph_msgr::mon::{
    MonClient, MonClientConfig, MonError, MonMap, Subscription, MON_CLIENT_FEATURES,
};
use ceph_msgr::shim::blocking::ConnectError;
use ceph_msgr::wire::handshake::features;

use super::Failure;

/// Exit code: connection refused.
pub const EXIT_REFUSED: u8 = 2;
/// Exit code: the monitor closed the connection.
pub const EXIT_CLOSED: u8 = 3;
/// Exit code: timed out.
pub const EXIT_TIMEOUT: u8 = 4;
/// Exit code: authentication failed.
pub const EXIT_AUTH: u8 = 5;
/// Exit code: protocol error (bad banner, msgr2-only port, features, bad payload).
pub const EXIT_PROTOCOL: u8 = 6;
/// Exit code: another socket error.
pub const EXIT_IO: u8 = 7;

struct Opts {
    addr: String,
    json: bool,
    timeout: Duration,
    legacy: bool,
    entity: String,
}

fn parse(args: &[String]) -> Result<Opts, Failure> {
    let mut o = Opts {
        addr: String::new(),
        json: false,
        timeout: Duration::from_secs(10),
        legacy: false,
        entity: "admin".to_owned(),
    };
    let mut addr = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => o.json = true,
            "--legacy-monmap" => o.legacy = true,
            "--timeout" => {
                let v = it.next().ok_or("--timeout needs seconds")?;
                let s: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("bad --timeout `{v}`"))?;
                o.timeout = Duration::from_secs_f64(s);
            }
            "--name" => o.entity = it.next().ok_or("--name needs a name")?.clone(),
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`").into()),
            s if addr.is_none() => addr = Some(s.to_owned()),
            s => return Err(format!("unexpected argument `{s}`").into()),
        }
    }
    o.addr = addr.ok_or("mon-status needs ADDR (v1:IP:PORT or IP:PORT)")?;
    Ok(o)
}

/// Parses `v1:IP:PORT`, `IP:PORT`, `IP` (port 6789), `[v6]:PORT` or `HOST:PORT`, or an
/// address vector as `ceph.conf` and `ceph mon dump` write it
/// (`[v2:IP:PORT/0,v1:IP:PORT/0]`), whose v1 entry is taken.
fn parse_addr(s: &str) -> Result<SocketAddr, Failure> {
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        if inner.contains("v1:") || inner.contains("v2:") {
            let entries: Vec<&str> = inner.split(',').map(str::trim).collect();
            return match entries.iter().find(|e| e.starts_with("v1:")) {
                Some(v1) => parse_addr(v1),
                None => parse_addr(entries[0]),
            };
        }
    }
    if let Some(rest) = s.strip_prefix("v2:") {
        return Err(Failure::new(
            EXIT_PROTOCOL,
            format!(
                "{rest}: msgr2 (v2:) addresses are not supported; give the monitor's v1 address"
            ),
        ));
    }
    let s = s.strip_prefix("v1:").unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s); // drop a `/nonce`
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 6789));
    }
    s.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("bad address `{s}`: expected v1:IP:PORT or IP:PORT").into())
}

fn fail(e: MonError) -> Failure {
    let code = match &e {
        MonError::Connect(c) => match c {
            ConnectError::Refused(_) => EXIT_REFUSED,
            ConnectError::Closed(_) => EXIT_CLOSED,
            ConnectError::Timeout => EXIT_TIMEOUT,
            ConnectError::AuthFailed => EXIT_AUTH,
            ConnectError::MissingFeatures { .. } | ConnectError::Protocol(_) => EXIT_PROTOCOL,
            _ => EXIT_IO,
        },
        MonError::Timeout(_) => EXIT_TIMEOUT,
        // The monitor went away; anything else that ended the session is bytes that
        // broke the protocol (a bad CRC, an unknown tag, a length over the limits).
        MonError::Closed(None | Some(conn::Error::Transport(_) | conn::Error::PeerClosed)) => {
            EXIT_CLOSED
        }
        MonError::Closed(Some(_)) => EXIT_PROTOCOL,
        MonError::AuthRejected { .. } | MonError::AuthUnsupported { .. } => EXIT_AUTH,
        MonError::Decode(_) | MonError::Queue(_) => EXIT_PROTOCOL,
        _ => EXIT_IO,
    };
    let hint = match &e {
        // EOPNOTSUPP: the monitor allows no protocol we offered (auth none).
        MonError::AuthRejected { result: -95, .. } => {
            "; the monitor does not allow auth none (cephx is not supported yet)"
        }
        _ => "",
    };
    Failure::new(code, format!("{e}{hint}"))
}

/// What `mon-status` learned.
struct Status {
    mon: SocketAddr,
    global_id: u64,
    monmap: MonMap,
    osdmap: u64,
    osdmap_oldest: Option<u64>,
    features: u64,
    tcp_connect: Option<Duration>,
    handshake: Option<Duration>,
    keepalive_rtt: Option<Duration>,
    total: Duration,
}

/// Runs the subcommand.
pub fn run(args: &[String]) -> Result<(), Failure> {
    let o = parse(args)?;
    let addr = parse_addr(&o.addr)?;
    let started = Instant::now();
    let deadline = started + o.timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let cfg = MonClientConfig {
        entity: o.entity.clone(),
        features: if o.legacy {
            features::KERNEL_LIKE
        } else {
            MON_CLIENT_FEATURES
        },
        connect_timeout: o.timeout,
        ..MonClientConfig::default()
    };
    let mut c = MonClient::connect(addr, cfg).map_err(|e| {
        let f = fail(e);
        Failure::new(f.code, format!("{addr}: {f}"))
    })?;
    c.authenticate(left()).map_err(fail)?;
    c.subscribe(&[Subscription::persistent("monmap", 0)])
        .map_err(fail)?;
    let monmap = c.wait_monmap(left()).map_err(fail)?;
    let v = c.get_version("osdmap", left()).map_err(fail)?;
    let keepalive_rtt = c.keepalive(left()).map_err(fail)?;
    let conn = c.connection();
    let s = Status {
        mon: addr,
        global_id: 0,
        monmap,
        osdmap: v.version,
        osdmap_oldest: v.oldest_version,
        features: conn.connection().features(),
        tcp_connect: conn.tcp_connect_time(),
        handshake: conn.handshake_time(),
        keepalive_rtt,
        total: Duration::ZERO,
    };
    let s = Status {
        global_id: c.global_id(),
        total: started.elapsed(),
        ..s
    };
    c.close(Duration::from_secs(1));
    if o.json {
        outln!("{}", json(&s));
    } else {
        out!("{}", text(&s));
    }
    Ok(())
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.3} ms", d.as_secs_f64() * 1e3),
    )
}

fn text(s: &Status) -> String {
    let mut t = String::new();
    let m = &s.monmap;
    let _ = writeln!(t, "monitor        v1:{}", s.mon);
    let _ = writeln!(t, "fsid           {}", m.fsid);
    let _ = write!(t, "monmap epoch   {} (encoding v{}", m.epoch, m.encoding);
    if let Some(r) = m.min_mon_release {
        let _ = write!(t, ", min_mon_release {r}");
    }
    let _ = writeln!(t, ")");
    for (i, mon) in m.mons.iter().enumerate() {
        let label = if i == 0 { "mons" } else { "" };
        let addrs: Vec<String> = mon.addrs.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            t,
            "{label:<14} {}: mon.{} [{}]",
            mon.rank,
            mon.name,
            addrs.join(",")
        );
    }
    let _ = write!(t, "osdmap version {}", s.osdmap);
    if let Some(o) = s.osdmap_oldest {
        let _ = write!(t, " (oldest {o})");
    }
    let _ = writeln!(t);
    let _ = writeln!(t, "global_id      {}", s.global_id);
    let names: Vec<&str> = features::names(s.features).collect();
    let _ = writeln!(
        t,
        "features       {:#018x} ({} bits)",
        s.features,
        names.len()
    );
    for chunk in names.chunks(6) {
        let _ = writeln!(t, "               {}", chunk.join(" "));
    }
    let _ = writeln!(t, "tcp connect    {}", ms(s.tcp_connect));
    let _ = writeln!(
        t,
        "handshake      {} (TCP up to session open: 2 round trips)",
        ms(s.handshake)
    );
    let _ = writeln!(t, "keepalive rtt  {}", ms(s.keepalive_rtt));
    let _ = writeln!(t, "total          {}", ms(Some(s.total)));
    t
}

/// A JSON string literal.
fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "null".to_owned(),
        |d| format!("{:.3}", d.as_secs_f64() * 1e3),
    )
}

fn json(s: &Status) -> String {
    let m = &s.monmap;
    let mons: Vec<String> = m
        .mons
        .iter()
        .map(|mon| {
            let addrs: Vec<String> = mon.addrs.iter().map(|a| js(&a.to_string())).collect();
            format!(
                "{{\"rank\":{},\"name\":{},\"addrs\":[{}]}}",
                mon.rank,
                js(&mon.name),
                addrs.join(",")
            )
        })
        .collect();
    let names: Vec<String> = features::names(s.features).map(js).collect();
    format!(
        "{{\"monitor\":{},\"fsid\":{},\"epoch\":{},\"monmap_encoding\":{},\"min_mon_release\":{},\
         \"mons\":[{}],\"osdmap_version\":{},\"osdmap_oldest\":{},\"global_id\":{},\
         \"features\":{},\"feature_names\":[{}],\"tcp_connect_ms\":{},\"handshake_ms\":{},\
         \"keepalive_rtt_ms\":{},\"total_ms\":{}}}",
        js(&format!("v1:{}", s.mon)),
        js(&m.fsid.to_string()),
        m.epoch,
        m.encoding,
        m.min_mon_release
            .map_or_else(|| "null".to_owned(), |r| r.to_string()),
        mons.join(","),
        s.osdmap,
        s.osdmap_oldest
            .map_or_else(|| "null".to_owned(), |r| r.to_string()),
        s.global_id,
        js(&format!("{:#018x}", s.features)),
        names.join(","),
        json_ms(s.tcp_connect),
        json_ms(s.handshake),
        json_ms(s.keepalive_rtt),
        json_ms(Some(s.total)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let a: SocketAddr = "127.0.0.1:6789".parse().unwrap();
        assert_eq!(parse_addr("v1:127.0.0.1:6789").unwrap(), a);
        assert_eq!(parse_addr("127.0.0.1:6789").unwrap(), a);
        assert_eq!(parse_addr("127.0.0.1").unwrap(), a);
        assert_eq!(parse_addr("v1:127.0.0.1:6789/0").unwrap(), a);
        assert_eq!(parse_addr("[::1]:6789").unwrap().port(), 6789);
        assert_eq!(
            parse_addr("v2:127.0.0.1:3300").unwrap_err().code,
            EXIT_PROTOCOL
        );
        assert!(parse_addr("not an address").is_err());
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(js("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
