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
use ceph_msgr::v2::FrameError;
use ceph_msgr::wire::handshake::features;
use ceph_msgr::Protocol;

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
    o.addr =
        addr.ok_or("mon-status needs ADDR (v2:IP:PORT, v1:IP:PORT, IP[:PORT] or [v2:…,v1:…])")?;
    Ok(o)
}

/// Where to try to reach the monitor, in order: `(protocol, address)`.
///
/// * `v2:IP:PORT` / `v1:IP:PORT` (a `/nonce` suffix is ignored): that protocol only;
/// * an address vector as `ceph.conf` and `ceph mon dump` write it
///   (`[v2:IP:3300/0,v1:IP:6789/0]`): its msgr2 entries first, then its v1 ones;
/// * a bare `IP:PORT` or `HOST:PORT`: msgr2 there, then v1 there;
/// * a bare `IP`: msgr2 on 3300, then v1 on 6789 (Ceph's default ports).
fn parse_targets(s: &str) -> Result<Vec<(Protocol, SocketAddr)>, Failure> {
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        if inner.contains("v1:") || inner.contains("v2:") {
            let mut out = Vec::new();
            for want in ["v2:", "v1:"] {
                for e in inner
                    .split(',')
                    .map(str::trim)
                    .filter(|e| e.starts_with(want))
                {
                    out.extend(parse_targets(e)?);
                }
            }
            return Ok(out);
        }
    }
    let (only, rest) = if let Some(r) = s.strip_prefix("v2:") {
        (Some(Protocol::V2), r)
    } else if let Some(r) = s.strip_prefix("v1:") {
        (Some(Protocol::V1), r)
    } else {
        (None, s)
    };
    let rest = rest.split('/').next().unwrap_or(rest); // drop a `/nonce`
    let default_port = |p: Protocol| if p == Protocol::V2 { 3300 } else { 6789 };
    let resolve = |text: &str| -> Option<SocketAddr> {
        text.parse::<SocketAddr>()
            .ok()
            .or_else(|| text.to_socket_addrs().ok().and_then(|mut a| a.next()))
    };
    let bad = || -> Failure {
        format!("bad address `{s}`: expected v2:IP:PORT, v1:IP:PORT, IP[:PORT] or [v2:…,v1:…]")
            .into()
    };
    let protos = match only {
        Some(p) => vec![p],
        None => vec![Protocol::V2, Protocol::V1],
    };
    if let Ok(ip) = rest.parse::<std::net::IpAddr>() {
        return Ok(protos
            .into_iter()
            .map(|p| (p, SocketAddr::new(ip, default_port(p))))
            .collect());
    }
    let a = resolve(rest).ok_or_else(bad)?;
    Ok(protos.into_iter().map(|p| (p, a)).collect())
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
    let code = match &e {
        MonError::Connect(ConnectError::Protocol(conn::Error::AuthMethodRefused { .. })) => {
            EXIT_AUTH
        }
        _ => code,
    };
    let hint = match &e {
        MonError::Connect(ConnectError::Protocol(conn::Error::AuthMethodRefused {
            allowed,
            ..
        })) if !allowed.contains(&1) => {
            "; the monitor does not allow auth none (cephx is not supported yet)"
        }
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
    protocol: Protocol,
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
    let targets = parse_targets(&o.addr)?;
    let started = Instant::now();
    let deadline = started + o.timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let mut last = None;
    let mut found = None;
    for (protocol, addr) in targets {
        let cfg = MonClientConfig {
            entity: o.entity.clone(),
            features: if o.legacy {
                features::KERNEL_LIKE
            } else {
                MON_CLIENT_FEATURES
            },
            connect_timeout: left().max(Duration::from_millis(1)),
            protocol,
            ..MonClientConfig::default()
        };
        match MonClient::connect(addr, cfg) {
            Ok(c) => {
                found = Some((c, protocol, addr));
                break;
            }
            // Nothing listens there, or the peer speaks v1 (its banner is `ceph v027`):
            // the next target may do better. Anything else is the answer.
            Err(
                e @ MonError::Connect(
                    ConnectError::Refused(_)
                    | ConnectError::Protocol(conn::Error::Banner(FrameError::BadBanner)),
                ),
            ) => last = Some((e, protocol, addr)),
            Err(e) => {
                last = Some((e, protocol, addr));
                break;
            }
        }
    }
    let Some((mut c, protocol, addr)) = found else {
        let Some((e, protocol, addr)) = last else {
            return Err(format!("`{}` names no address", o.addr).into());
        };
        let f = fail(e);
        return Err(Failure::new(f.code, format!("{protocol}:{addr}: {f}")));
    };
    c.authenticate(left()).map_err(fail)?;
    c.subscribe(&[Subscription::persistent("monmap", 0)])
        .map_err(fail)?;
    let monmap = c.wait_monmap(left()).map_err(fail)?;
    let v = c.get_version("osdmap", left()).map_err(fail)?;
    let keepalive_rtt = c.keepalive(left()).map_err(fail)?;
    let conn = c.connection();
    let s = Status {
        mon: addr,
        protocol,
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
    let _ = writeln!(t, "monitor        {}:{}", s.protocol, s.mon);
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
        "handshake      {} (TCP up to session open)",
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
        js(&format!("{}:{}", s.protocol, s.mon)),
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
        use Protocol::{V1, V2};
        let a: SocketAddr = "127.0.0.1:6789".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:3300".parse().unwrap();
        assert_eq!(parse_targets("v1:127.0.0.1:6789").unwrap(), [(V1, a)]);
        assert_eq!(parse_targets("v1:127.0.0.1:6789/0").unwrap(), [(V1, a)]);
        assert_eq!(parse_targets("v2:127.0.0.1:3300/0").unwrap(), [(V2, b)]);
        assert_eq!(parse_targets("127.0.0.1:6789").unwrap(), [(V2, a), (V1, a)]);
        assert_eq!(parse_targets("127.0.0.1").unwrap(), [(V2, b), (V1, a)]);
        assert_eq!(
            parse_targets("[v1:127.0.0.1:6789/0,v2:127.0.0.1:3300/0]").unwrap(),
            [(V2, b), (V1, a)]
        );
        assert_eq!(parse_targets("[::1]:6789").unwrap()[0].1.port(), 6789);
        assert!(parse_targets("not an address").is_err());
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(js("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
