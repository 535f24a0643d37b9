//! `ceph-msgr send`: a load generator. Sends N messages of a given size to a server (e.g.
//! `ceph-msgr serve`) over msgr2.1 crc mode (the default) or msgr v1 through the tokio
//! shim, keeping at most K unacknowledged, waits until every one is acknowledged, and
//! prints throughput and ack latency.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::conn::{Config, Connection, Event};
use ceph_msgr::shim::tokio::{spawn_client, Handle, Options};
use ceph_msgr::wire::{EntityName, EntityType};
use ceph_msgr::{Message, Protocol};

#[derive(Clone)]
struct Args {
    addr: SocketAddr,
    size: usize,
    count: u64,
    in_flight: u64,
    peer: EntityType,
    json: bool,
    connections: u64,
    busy_poll: Option<Duration>,
    protocol: Protocol,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut it = args.iter();
    let mut addr = None;
    let mut a = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 6789)),
        size: 4096,
        count: 10_000,
        in_flight: 16,
        peer: EntityType::Mon,
        json: false,
        connections: 1,
        busy_poll: None,
        protocol: Protocol::V2,
    };
    // From `--protocol`, and from a `v1:` / `v2:` address prefix.
    let mut chosen: Option<Protocol> = None;
    let mut prefixed: Option<Protocol> = None;
    let num = |v: Option<&String>, what: &str| -> Result<u64, String> {
        v.ok_or(format!("{what} needs a value"))?
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{what}: not a number"))
    };
    while let Some(x) = it.next() {
        match x.as_str() {
            "--size" => a.size = num(it.next(), "--size")? as usize,
            "--count" => a.count = num(it.next(), "--count")?,
            "--in-flight" => a.in_flight = num(it.next(), "--in-flight")?.max(1),
            "--peer" => {
                a.peer = match it.next().map(String::as_str) {
                    Some("mon") => EntityType::Mon,
                    Some("osd") => EntityType::Osd,
                    Some("mds") => EntityType::Mds,
                    _ => return Err("--peer takes mon, osd or mds".into()),
                }
            }
            "--protocol" => {
                let v = it.next().ok_or("--protocol needs v1 or v2")?;
                chosen = Some(v.parse().map_err(|e| format!("--protocol: {e}"))?);
            }
            "--json" => a.json = true,
            "--connections" => a.connections = num(it.next(), "--connections")?.max(1),
            "--busy-poll-us" => {
                let us = num(it.next(), "--busy-poll-us")?;
                a.busy_poll = (us > 0).then(|| Duration::from_micros(us));
            }
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
            s => {
                let bare = if let Some(rest) = s.strip_prefix("v1:") {
                    prefixed = Some(Protocol::V1);
                    rest
                } else if let Some(rest) = s.strip_prefix("v2:") {
                    prefixed = Some(Protocol::V2);
                    rest
                } else {
                    s
                };
                addr = Some(bare.parse().map_err(|_| format!("bad address `{s}`"))?);
            }
        }
    }
    a.addr = addr.ok_or("send needs ADDR (IP:PORT, v1:IP:PORT or v2:IP:PORT)")?;
    a.protocol = match (chosen, prefixed) {
        (Some(c), Some(p)) if c != p => {
            return Err(format!(
                "--protocol {c} contradicts the address's {p}: prefix"
            ))
        }
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => Protocol::V2,
    };
    if a.size > u32::MAX as usize {
        return Err("--size is over the 4 GiB section limit".into());
    }
    Ok(a)
}

/// Runs the subcommand.
pub fn run(args: &[String]) -> Result<(), String> {
    let a = parse(args)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(drive_all(a))
}

/// What one connection measured.
struct Outcome {
    latencies: Vec<Duration>,
}

/// Runs `connections` clients at once, splitting the count between them.
async fn drive_all(a: Args) -> Result<(), String> {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..a.connections {
        let count = a.count / a.connections + u64::from(i < a.count % a.connections);
        tasks.push(tokio::spawn(drive(i, count, a.clone())));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        let o = t.await.map_err(|e| format!("client task: {e}"))??;
        latencies.extend(o.latencies);
    }
    let elapsed = t0.elapsed();
    report(&a, elapsed, latencies);
    Ok(())
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Connection `index`: sends `count` messages as `a` says.
async fn drive(index: u64, count: u64, a: Args) -> Result<Outcome, String> {
    let Args {
        addr,
        peer,
        protocol,
        size,
        in_flight,
        busy_poll,
        ..
    } = a;
    let mut cfg = Config::client(EntityName::client(0));
    cfg.protocol = protocol;
    // Unique per connection of this process (the server keys sessions by address+nonce).
    cfg.nonce = (std::process::id() << 12) ^ (index as u32 + 1);
    let opts = Options {
        busy_poll,
        ..Options::default()
    };
    let (h, mut events): (Handle, _) =
        spawn_client(Connection::client(cfg, addr, peer), addr, opts);
    let payload = Bytes::from((0..size).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>());
    let mut sent_at: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut latencies = Vec::with_capacity(count.min(1 << 22) as usize);
    let (mut sent, mut acked) = (0u64, 0u64);
    loop {
        // Fill the window with one command to the connection task.
        let room = (count - sent).min(in_flight - (sent - acked));
        if room > 0 {
            let batch: Vec<Message> = (0..room)
                .map(|i| {
                    let m = Message::new(0x7f00).with_tid(sent + i + 1);
                    if payload.is_empty() {
                        m
                    } else {
                        m.with_data_chunk(payload.clone())
                    }
                })
                .collect();
            // Stamp before handing them over: the shim may write them and read their
            // ACK before `send_batch` returns.
            let now = Instant::now();
            sent_at.extend((1..=room).map(|i| (sent + i, now)));
            h.send_batch(batch)
                .await
                .map_err(|e| format!("send: {e}"))?;
            sent += room;
        }
        if acked >= count {
            break;
        }
        match events.recv().await {
            Some(Event::Acked(seq)) => {
                let now = Instant::now();
                while sent_at.front().is_some_and(|(s, _)| *s <= seq) {
                    let (_, t) = sent_at.pop_front().expect("front");
                    latencies.push(now - t);
                }
                acked = acked.max(seq);
            }
            Some(Event::Closed { error, .. }) => {
                return Err(match error {
                    // msgr2: the server's HELLO names another entity type than --peer.
                    Some(ceph_msgr::conn::Error::BadPeerType(t)) if protocol == Protocol::V2 => {
                        let theirs = u8::try_from(t)
                            .ok()
                            .and_then(|t| EntityType::from_u8(t).ok())
                            .map_or_else(|| format!("type {t}"), |e| e.name().to_owned());
                        format!(
                            "connection closed: the server's HELLO says it is {theirs}, not {} (see --peer)",
                            peer.name()
                        )
                    }
                    Some(e) => format!("connection closed: {e}"),
                    None => "connection closed".to_owned(),
                });
            }
            Some(Event::Fault { error }) => return Err(format!("connection fault: {error}")),
            Some(_) => {}
            None => return Err("connection task ended".into()),
        }
    }
    h.close().await;
    Ok(Outcome { latencies })
}

fn report(a: &Args, elapsed: Duration, mut latencies: Vec<Duration>) {
    latencies.sort_unstable();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let bytes = a.count as f64 * a.size as f64;
    let (p50, p99) = (pct(&latencies, 0.5), pct(&latencies, 0.99));
    if a.json {
        outln!(
            "{{\"protocol\":\"{}\",\"count\":{},\"size\":{},\"in_flight\":{},\"connections\":{},\"elapsed_s\":{:.6},\"msgs_per_s\":{:.1},\"mb_per_s\":{:.2},\"gbit_per_s\":{:.3},\"ack_p50_us\":{:.1},\"ack_p99_us\":{:.1}}}",
            a.protocol, a.count, a.size, a.in_flight, a.connections, secs, a.count as f64 / secs,
            bytes / secs / 1e6, bytes * 8.0 / secs / 1e9, p50, p99
        );
    } else {
        outln!(
            "sent {} messages of {} bytes to {}:{} ({} connection(s), {} in flight each): {:.3} s, {:.0} msgs/s, {:.1} MB/s ({:.2} Gbit/s); ack latency p50 {:.1} µs, p99 {:.1} µs",
            a.count, a.size, a.protocol, a.addr, a.connections, a.in_flight, secs, a.count as f64 / secs,
            bytes / secs / 1e6, bytes * 8.0 / secs / 1e9, p50, p99
        );
    }
}
