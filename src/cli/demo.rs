//! `ceph-msgr demo`: a lossless client and an embedded server over loopback TCP, through
//! the Tokio shim, with revokes and injected connection failures; the outcome is checked.
//!
//! The client speaks msgr2.1 crc mode (`--protocol v2`, the default) or msgr v1; the
//! server accepts both on its one listener. The client sends a stream of messages of
//! mixed sizes (64 B to 1 MiB). Every K-th message is revoked: right after queueing, a
//! little later (so some are cut mid-frame: v1 sends the rest as zeros with an aborted
//! footer, msgr2 as an ABORTED frame; the server drops both), or a few messages later.
//! Every F messages the client's transport is broken and the session reconnects.
//!
//! What is checked depends on what the protocol guarantees here:
//!
//! * **v1**: the server keeps the lossless session across transports (the SEQ exchange
//!   tells the client what it already has), so every message that was not revoked must
//!   have been delivered exactly once, in order, byte-identical, by one server session; a
//!   revoked one at most once, and never if none of its bytes had been written.
//! * **v2**: this crate's server keeps no msgr2 session across transports: a reconnecting
//!   client gets a new server session. The client is lossless and its peer is not lossy,
//!   so on a fault ([`Connection::fault`](ceph_msgr::Connection)) it keeps every message
//!   not yet acknowledged and sends it again, with its seq, on the next transport. So a
//!   message whose ACK had not reached the client when its transport broke is delivered
//!   again by the next session. Checked: every message not revoked is delivered at least
//!   once, byte-identical; each server session delivers in order with no duplicate; the
//!   first deliveries are in order across sessions; a repeat only comes at the start of
//!   a session (the resent, unacknowledged tail of the transport before); no session
//!   without a client transport; never a message none of whose bytes had been written.
//!   With `--fail-every 0` there is one transport and it is exactly once, as for v1.

use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::conn::{Config, Event};
use ceph_msgr::shim::tokio::{serve_with, spawn_client, Handle, Options, ServerEvent};
use ceph_msgr::{Connection, EntityName, EntityType, Message, MsgId, Protocol, Revoked};
use tokio::sync::{mpsc, oneshot, Notify};

const USAGE: &str = "demo [--messages N] [--revoke-every K] [--fail-every F] [--seed S] \
                     [--protocol v1|v2] [--timeout SECS] [--quiet] [--sabotage]";

/// Largest message payload.
const MAX_SIZE: usize = 1 << 20;
/// Slack in the payload pool, so messages start at different offsets.
const POOL_SLACK: usize = 64 * 1024;

struct Args {
    messages: u64,
    revoke_every: u64,
    fail_every: u64,
    seed: u64,
    timeout: Duration,
    quiet: bool,
    /// Record wrong bytes for message 1, to show that the checks bite.
    sabotage: bool,
    /// What the client speaks.
    protocol: Protocol,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        messages: 12_000,
        revoke_every: 10,
        fail_every: 500,
        seed: 1,
        timeout: Duration::from_secs(120),
        quiet: false,
        sabotage: false,
        protocol: Protocol::V2,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            let v = it.next().ok_or_else(|| format!("{name} needs a number"))?;
            v.parse()
                .map_err(|_| format!("{name}: `{v}` is not a number"))
        };
        match arg.as_str() {
            "--messages" | "-n" => a.messages = num("--messages")?,
            "--revoke-every" => a.revoke_every = num("--revoke-every")?,
            "--fail-every" => a.fail_every = num("--fail-every")?,
            "--seed" => a.seed = num("--seed")?,
            "--timeout" => a.timeout = Duration::from_secs(num("--timeout")?),
            "--quiet" | "-q" => a.quiet = true,
            "--sabotage" => a.sabotage = true,
            "--protocol" => {
                let v = it.next().ok_or("--protocol needs v1 or v2")?;
                a.protocol = v.parse().map_err(|e| format!("--protocol: {e}"))?;
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`\nusage: ceph-msgr {USAGE}"
                ))
            }
        }
    }
    Ok(a)
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What was sent as message `tid`: its payload is `pool[off..off + len]`, the first
/// `front` bytes as the front section, the rest as data.
#[derive(Clone, Copy)]
struct Sent {
    off: usize,
    front: usize,
    len: usize,
}

/// Live counters, for the progress line.
#[derive(Default)]
struct Live {
    sent: AtomicU64,
    delivered: AtomicU64,
    bytes: AtomicU64,
    revoked: AtomicU64,
    opens: AtomicU64,
    faults: AtomicU64,
}

/// What the server saw.
#[derive(Default)]
struct Received {
    /// Tids in delivery order.
    tids: Vec<u64>,
    /// (server session, tid) in delivery order.
    deliveries: Vec<(u64, u64)>,
    /// Delivered messages whose bytes differ from what was sent.
    corrupt: Vec<u64>,
    /// Delivered messages nobody sent.
    unknown: Vec<u64>,
    aborted_frames: u64,
    bytes: u64,
    /// Errors other than transport failures.
    errors: Vec<String>,
    /// Server sessions that delivered messages.
    sessions: Vec<u64>,
    /// The session ended with the client's CLOSE (if the client closed while its
    /// transport was down, the server only saw the transport fail).
    closed: bool,
}

/// What the client saw.
#[derive(Default)]
struct ClientSide {
    opens: u64,
    faults: u64,
    errors: Vec<String>,
    unsent: usize,
    keepalive_acks: u64,
}

/// Runs the subcommand.
pub fn run(args: &[String]) -> Result<(), String> {
    let a = parse(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the Tokio runtime: {e}"))?;
    let limit = a.timeout;
    rt.block_on(async move {
        match tokio::time::timeout(limit, demo(a)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "demo did not finish within {} s (raise --timeout?)",
                limit.as_secs()
            )),
        }
    })
}

fn pool(seed: u64) -> Bytes {
    let mut rng = Rng(seed ^ 0xC0FF_EE00);
    let mut v = Vec::with_capacity(MAX_SIZE + POOL_SLACK);
    while v.len() < MAX_SIZE + POOL_SLACK {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    Bytes::from(v)
}

fn make(pool: &Bytes, rng: &mut Rng, tid: u64) -> (Message, Sent) {
    // Log-uniform sizes: 64 B .. 1 MiB.
    let lo = 64usize << rng.below(15);
    let len = (lo + rng.below(lo as u64) as usize).min(MAX_SIZE);
    let off = rng.below(POOL_SLACK as u64) as usize;
    let front = len.min(rng.below(4096) as usize);
    let mut msg = Message::new(42)
        .with_tid(tid)
        .with_front(pool.slice(off..off + front));
    // Data in one to three chunks.
    let mut at = off + front;
    let end = off + len;
    let chunks = 1 + rng.below(3);
    for c in 0..chunks {
        if at >= end {
            break;
        }
        let n = if c + 1 == chunks {
            end - at
        } else {
            1 + rng.below((end - at) as u64) as usize
        };
        msg = msg.with_data_chunk(pool.slice(at..at + n));
        at += n;
    }
    (msg, Sent { off, front, len })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Removed,
    Aborted,
    /// msgr2: too far into its frame to abort; the rest went out and the peer delivers it.
    Completing,
    Dropped,
    /// Revoked too late: already acknowledged (Unknown to the core).
    Acked,
}

fn fate(r: Revoked) -> Fate {
    match r {
        Revoked::Removed { .. } => Fate::Removed,
        Revoked::Aborted { .. } => Fate::Aborted,
        Revoked::Completing { .. } => Fate::Completing,
        Revoked::Dropped { .. } => Fate::Dropped,
        _ => Fate::Acked,
    }
}

async fn demo(a: Args) -> Result<(), String> {
    let pool = pool(a.seed);
    let live = Arc::new(Live::default());

    // The embedded server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let server_addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?;
    let mut scfg = Config::server(EntityName {
        ty: EntityType::Osd,
        num: 0,
    });
    scfg.lossy = false;
    scfg.nonce = 0x5e4e;
    // One listener for both protocols: the server speaks whichever the client's banner shows.
    scfg.protocol = Protocol::V2;
    let (stx, srx) = mpsc::channel::<ServerEvent>(1024);
    let server = tokio::spawn(serve_with(listener, scfg, Options::default(), stx));
    let sent_map: Arc<std::sync::Mutex<HashMap<u64, Sent>>> = Arc::default();
    let (done_tx, done_rx) = oneshot::channel();
    let receiver = tokio::spawn(receive(
        a.messages,
        srx,
        done_rx,
        pool.clone(),
        sent_map.clone(),
        live.clone(),
    ));

    // The client.
    let mut ccfg = Config::client(EntityName::client(4242));
    ccfg.lossy = false;
    ccfg.nonce = 0x00c1_1e47 ^ (a.seed as u32);
    ccfg.backoff_initial = Duration::from_millis(2);
    ccfg.backoff_max = Duration::from_millis(50);
    ccfg.protocol = a.protocol;
    let opts = Options {
        max_queued_bytes: 8 << 20,
        ..Options::default()
    };
    let conn = Connection::client(ccfg, server_addr, EntityType::Osd);
    let (h, cev) = spawn_client(conn, server_addr, opts);
    let client_events = tokio::spawn(client_side(cev, live.clone()));

    let done = Arc::new(Notify::new());
    let progress = (!a.quiet).then(|| {
        tokio::spawn(show_progress(
            live.clone(),
            done.clone(),
            a.messages,
            Instant::now(),
        ))
    });

    if !a.quiet {
        errln!(
            "ceph-msgr demo: {} messages (64 B .. 1 MiB) to 127.0.0.1:{} over {} via the tokio shim; revoke every {}, break the connection every {}",
            a.messages,
            server_addr.port(),
            protocol_name(a.protocol),
            a.revoke_every,
            a.fail_every
        );
    }

    // Send.
    let start = Instant::now();
    let mut rng = Rng(a.seed);
    let mut sent_bytes = 0u64;
    let mut fates: HashMap<u64, Revoked> = HashMap::new();
    let mut later: Vec<tokio::task::JoinHandle<(u64, Revoked)>> = Vec::new();
    let mut deferred: VecDeque<(u64, MsgId, u64)> = VecDeque::new();
    let mut injected = 0u64;
    let mut keepalives = 0u64;
    for i in 0..a.messages {
        let tid = i + 1;
        let (msg, mut s) = make(&pool, &mut rng, tid);
        sent_bytes += s.len as u64;
        if a.sabotage && tid == 1 {
            // The checker will expect bytes one off from what was sent.
            s.off += 1;
        }
        sent_map.lock().map_err(|_| "lock poisoned")?.insert(tid, s);
        let id = h
            .send(msg)
            .await
            .map_err(|e| format!("send of message {tid} failed: {e}"))?;
        live.sent.fetch_add(1, Ordering::Relaxed);
        // Deferred revokes: a few messages after queueing.
        while deferred.front().is_some_and(|&(_, _, at)| at <= tid) {
            let (t, id, _) = deferred.pop_front().expect("front exists");
            fates.insert(t, h.revoke(id).await);
            live.revoked.fetch_add(1, Ordering::Relaxed);
        }
        // The last message is never revoked: its delivery marks the end of the stream.
        if a.revoke_every > 0 && tid % a.revoke_every == 0 && tid != a.messages {
            match (tid / a.revoke_every) % 3 {
                0 => {
                    fates.insert(tid, h.revoke(id).await);
                    live.revoked.fetch_add(1, Ordering::Relaxed);
                }
                1 => {
                    let h2: Handle = h.clone();
                    let delay = Duration::from_micros(100 + rng.below(3000));
                    let live = live.clone();
                    later.push(tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let r = h2.revoke(id).await;
                        live.revoked.fetch_add(1, Ordering::Relaxed);
                        (tid, r)
                    }));
                }
                _ => deferred.push_back((tid, id, tid + 1 + rng.below(4))),
            }
        }
        if a.fail_every > 0
            && tid % a.fail_every == 0
            && tid != a.messages
            && h.inject_fault().await
        {
            injected += 1;
        }
        if tid % 1000 == 250 {
            h.keepalive().await;
            keepalives += 1;
        }
    }
    for (t, id, _) in deferred.drain(..) {
        fates.insert(t, h.revoke(id).await);
        live.revoked.fetch_add(1, Ordering::Relaxed);
    }
    for j in later {
        let (t, r) = j.await.map_err(|e| format!("revoke task: {e}"))?;
        fates.insert(t, r);
    }
    h.flush()
        .await
        .map_err(|e| format!("the session ended before every message was acknowledged: {e}"))?;
    let elapsed = start.elapsed();
    h.close().await;
    let client = client_events
        .await
        .map_err(|e| format!("client event task: {e}"))?;
    let _ = done_tx.send(());
    let rx = receiver
        .await
        .map_err(|e| format!("server event task: {e}"))?;
    done.notify_one();
    if let Some(p) = progress {
        let _ = p.await;
    }
    // The receiver dropped the server's event channel: the server stops.
    server
        .await
        .map_err(|e| format!("server task: {e}"))?
        .map_err(|e| format!("server: {e}"))?;

    // Check.
    let v2 = a.protocol == Protocol::V2;
    let mut problems: Vec<String> = Vec::new();
    problems.extend(client.errors.iter().map(|e| format!("client: {e}")));
    problems.extend(rx.errors.iter().map(|e| format!("server: {e}")));
    if v2 {
        // A server session per client transport at most (one that broke before it
        // delivered anything is not counted).
        if (rx.sessions.is_empty() && a.messages > 0) || rx.sessions.len() as u64 > client.opens {
            problems.push(format!(
                "{} server sessions delivered messages over {} client transports",
                rx.sessions.len(),
                client.opens
            ));
        }
    } else if rx.sessions.len() != 1 {
        problems.push(format!(
            "expected one server session to deliver everything, saw {}",
            rx.sessions.len()
        ));
    }
    if client.unsent != 0 {
        problems.push(format!(
            "{} messages handed back at close after flush",
            client.unsent
        ));
    }
    for t in &rx.corrupt {
        problems.push(format!("message {t} delivered with different bytes"));
    }
    for t in &rx.unknown {
        problems.push(format!("message {t} delivered but never sent"));
    }
    problems.extend(check_order(&rx.deliveries, v2));
    let mut count: HashMap<u64, u32> = HashMap::new();
    for &t in &rx.tids {
        *count.entry(t).or_default() += 1;
    }
    let mut revoked_delivered = 0u64;
    for tid in 1..=a.messages {
        let n = count.get(&tid).copied().unwrap_or(0);
        match fates.get(&tid) {
            None if n == 0 => problems.push(format!("message {tid} never delivered")),
            // v2: the repeats were checked above (only at the start of a session).
            None if n != 1 && !v2 => problems.push(format!("message {tid} delivered {n} times")),
            None => {}
            Some(r) => {
                if n > 1 && !v2 {
                    problems.push(format!("revoked message {tid} delivered {n} times"));
                }
                if matches!(r, Revoked::Removed { seq: None }) && n > 0 {
                    problems.push(format!(
                        "message {tid} was removed before any byte went out, yet delivered"
                    ));
                }
                if fate(*r) == Fate::Acked && (n == 0 || n > 1 && !v2) {
                    problems.push(format!(
                        "message {tid} was acknowledged before its revoke, yet delivered {n} times"
                    ));
                }
                revoked_delivered += u64::from(n.min(1));
            }
        }
    }
    let by = |f: Fate| fates.values().filter(|&&r| fate(r) == f).count();
    let (removed, aborted, completing, dropped, acked) = (
        by(Fate::Removed),
        by(Fate::Aborted),
        by(Fate::Completing),
        by(Fate::Dropped),
        by(Fate::Acked),
    );
    // Distinct messages delivered; `repeats` more copies came from resends (v2).
    let delivered = count.len() as u64;
    let repeats = rx.tids.len() as u64 - delivered;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mbps = rx.bytes as f64 / 1e6 / secs;
    let mps = delivered as f64 / secs;
    let reconnects = client.opens.saturating_sub(1);

    let proto = protocol_name(a.protocol);
    outln!(
        "sent        {} messages, {:.1} MB (64 B .. 1 MiB each) over {proto}",
        a.messages,
        sent_bytes as f64 / 1e6
    );
    outln!(
        "delivered   {delivered} messages, {:.1} MB ({revoked_delivered} of them revoked too late to stop){}",
        rx.bytes as f64 / 1e6,
        if v2 {
            format!(
                "; {repeats} delivered again by a new server session after a reconnect ({} sessions)",
                rx.sessions.len()
            )
        } else {
            String::new()
        }
    );
    outln!(
        "revoked     {}: {removed} removed before any byte went out, {aborted} aborted mid-frame, {completing} too far into the frame to abort, {dropped} dropped after write, {acked} already acknowledged",
        fates.len()
    );
    outln!(
        "            the server dropped {} aborted {}",
        rx.aborted_frames,
        if v2 {
            "frames (ABORTED epilogue)"
        } else {
            "frames (aborted footer)"
        }
    );
    outln!(
        "reconnects  {reconnects} ({injected} injected failures, {} client faults); {keepalives} keepalives, {} answered",
        client.faults, client.keepalive_acks
    );
    outln!("throughput  {mbps:.1} MB/s, {mps:.0} msgs/s");
    outln!(
        "elapsed     {:.2} s; the {}server session {}",
        secs,
        if v2 { "last " } else { "" },
        if rx.closed {
            "ended with the client's CLOSE"
        } else if v2 {
            "saw the client's transport end (msgr2 has no CLOSE frame)"
        } else {
            "saw the transport end (the client closed while reconnecting)"
        }
    );
    outln!(
        "summary: protocol={} sent={} delivered={delivered} repeats={repeats} revoked={} removed={removed} aborted={aborted} completing={completing} dropped={dropped} acked={acked} aborted_frames={} reconnects={reconnects} sessions={} bytes={} mb_per_s={mbps:.1} msgs_per_s={mps:.0} elapsed_s={secs:.2} check={}",
        a.protocol,
        a.messages,
        fates.len(),
        rx.aborted_frames,
        rx.sessions.len(),
        rx.bytes,
        if problems.is_empty() { "ok" } else { "FAILED" }
    );
    if problems.is_empty() {
        if v2 && repeats > 0 {
            outln!("check: ok: every non-revoked message delivered, byte-identical, in order; repeats only where a new server session took the resent, unacknowledged tail of a broken transport (msgr2: no session resume here); revoked ones not resent after their revoke");
        } else {
            outln!("check: ok: every non-revoked message delivered exactly once, in order, byte-identical; revoked ones at most once");
        }
        Ok(())
    } else {
        let n = problems.len();
        problems.truncate(10);
        Err(format!(
            "demo check FAILED ({n} problems):\n  {}",
            problems.join("\n  ")
        ))
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::V1 => "msgr v1",
        _ => "msgr2.1 crc",
    }
}

/// The order problems of `deliveries` ((server session, tid), in the order the server
/// reported them). Without `resends` (v1: one session resumed across transports) the
/// tids must strictly increase. With them (v2: a new server session per transport, the
/// client resending what was not acknowledged): each session's tids strictly increase; a
/// tid an earlier session delivered may come again only in the run at the start of a
/// session (before its first new tid); and the first deliveries strictly increase.
/// Sessions are taken in the order of their numbers, which is the order the server
/// accepted their transports (the client has one at a time); their events may interleave.
fn check_order(deliveries: &[(u64, u64)], resends: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if !resends {
        let mut last = 0;
        for &(_, t) in deliveries {
            if t <= last {
                problems.push(format!("message {t} delivered after message {last}"));
            }
            last = last.max(t);
        }
        return problems;
    }
    let mut by_session: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
    for &(s, t) in deliveries {
        by_session.entry(s).or_default().push(t);
    }
    let mut seen = std::collections::HashSet::new();
    let mut last_first = 0;
    for (s, run) in by_session {
        let mut last = 0;
        let mut fresh = false;
        for t in run {
            if t <= last {
                problems.push(format!(
                    "session {s}: message {t} delivered after message {last}"
                ));
            }
            last = last.max(t);
            if seen.insert(t) {
                fresh = true;
                if t <= last_first {
                    problems.push(format!(
                        "message {t} first delivered after message {last_first}"
                    ));
                }
                last_first = last_first.max(t);
            } else if fresh {
                problems.push(format!(
                    "session {s}: message {t} delivered again after new messages"
                ));
            }
        }
    }
    problems
}

/// Consumes the server's events and checks each message's bytes. Once the client is
/// done (`client_done`: every message acknowledged or revoked, session closed), it stops
/// when the transport that delivered message `last` (the final one, never revoked) has
/// ended: nothing can arrive after that.
async fn receive(
    last: u64,
    mut srx: mpsc::Receiver<ServerEvent>,
    mut client_done: oneshot::Receiver<()>,
    pool: Bytes,
    sent: Arc<std::sync::Mutex<HashMap<u64, Sent>>>,
    live: Arc<Live>,
) -> Received {
    let mut r = Received::default();
    let mut seen_last = last == 0;
    // A transport ended after `last` was delivered.
    let mut ended_after_last = last == 0;
    let mut done = false;
    loop {
        if done && seen_last && ended_after_last {
            break;
        }
        let ev = tokio::select! {
            ev = srx.recv() => ev,
            _ = &mut client_done, if !done => {
                done = true;
                continue;
            }
        };
        let Some(ServerEvent { session, event, .. }) = ev else {
            break;
        };
        match event {
            Event::Message(m) => {
                if !r.sessions.contains(&session) {
                    r.sessions.push(session);
                }
                let tid = m.header.tid;
                let s = sent.lock().ok().and_then(|g| g.get(&tid).copied());
                match s {
                    None => r.unknown.push(tid),
                    Some(s) => {
                        let body = &pool[s.off..s.off + s.len];
                        if m.front[..] != body[..s.front]
                            || m.data[..] != body[s.front..]
                            || !m.middle.is_empty()
                        {
                            r.corrupt.push(tid);
                        }
                    }
                }
                let n = (m.front.len() + m.middle.len() + m.data.len()) as u64;
                r.bytes += n;
                r.tids.push(tid);
                r.deliveries.push((session, tid));
                seen_last |= tid == last;
                live.delivered.fetch_add(1, Ordering::Relaxed);
                live.bytes.fetch_add(n, Ordering::Relaxed);
            }
            Event::AbortedMessage(_) => r.aborted_frames += 1,
            Event::Fault { error } => {
                if !matches!(error, ceph_msgr::conn::Error::Transport(_)) {
                    r.errors.push(format!("fault: {error}"));
                }
                ended_after_last |= seen_last;
            }
            Event::Closed { error, .. } => {
                if !matches!(error, None | Some(ceph_msgr::conn::Error::PeerClosed)) {
                    r.errors.push(format!("closed: {error:?}"));
                }
                r.closed = true;
                ended_after_last |= seen_last;
            }
            Event::SessionReset { unsent } => {
                r.errors.push(format!(
                    "session reset ({} messages handed back)",
                    unsent.len()
                ));
            }
            _ => {}
        }
    }
    r
}

/// Consumes the client's events until the session is closed.
async fn client_side(mut cev: mpsc::Receiver<Event>, live: Arc<Live>) -> ClientSide {
    let mut c = ClientSide::default();
    while let Some(ev) = cev.recv().await {
        match ev {
            Event::Opened { .. } => {
                c.opens += 1;
                live.opens.fetch_add(1, Ordering::Relaxed);
            }
            Event::Fault { error } => {
                c.faults += 1;
                live.faults.fetch_add(1, Ordering::Relaxed);
                if !matches!(error, ceph_msgr::conn::Error::Transport(_)) {
                    c.errors.push(format!("fault: {error}"));
                }
            }
            Event::KeepaliveAck { .. } => c.keepalive_acks += 1,
            Event::SessionReset { unsent } => c.errors.push(format!(
                "session reset ({} messages handed back)",
                unsent.len()
            )),
            Event::Closed { error, unsent } => {
                if let Some(e) = error {
                    c.errors.push(format!("closed: {e}"));
                }
                c.unsent = unsent.len();
            }
            _ => {}
        }
    }
    c
}

async fn show_progress(live: Arc<Live>, done: Arc<Notify>, total: u64, start: Instant) {
    let tty = std::io::stderr().is_terminal();
    let period = if tty {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(1)
    };
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        let finished = tokio::select! {
            _ = tick.tick() => false,
            () = done.notified() => true,
        };
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        let bytes = live.bytes.load(Ordering::Relaxed);
        let line = format!(
            "sent {}/{total}  delivered {}  revoked {}  reconnects {}  {:.1} MB  {:.0} MB/s  {:.1} s",
            live.sent.load(Ordering::Relaxed),
            live.delivered.load(Ordering::Relaxed),
            live.revoked.load(Ordering::Relaxed),
            live.opens.load(Ordering::Relaxed).saturating_sub(1),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs,
            secs
        );
        let mut err = std::io::stderr().lock();
        if tty {
            let _ = write!(err, "\r\x1b[K{line}");
            if finished {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{line}");
        }
        if finished {
            return;
        }
    }
}
