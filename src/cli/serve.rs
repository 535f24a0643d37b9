//! `ceph-msgr serve`: a Ceph messenger server on the mio reactor that accepts any number
//! of clients on one port, msgr v1 and msgr2.1 (crc mode) alike (each transport speaks
//! whichever protocol its client's banner shows), logs what they send, and prints
//! per-connection totals when stopped.
//!
//! Output contract (tests rely on it):
//!
//! * the first stdout line is the bound address, exactly `IP:PORT`;
//! * on SIGINT/SIGTERM, stdout gets one `conn id=… peer=… messages=… payload_bytes=…
//!   keepalives_answered=… duration_s=… state=… duplicates_dropped=… seq_gaps=…
//!   aborted_dropped=… protocol=…` line per connection (`protocol=v1`, `v2`, or `-` for a transport that
//!   never finished its handshake) and one `total connections=… messages=…
//!   payload_bytes=… keepalives_answered=… duration_s=… duplicates_dropped=… seq_gaps=…
//!   aborted_dropped=… v1=… v2=…` line, and the process exits 0;
//! * everything else (opens, messages, closes) is logged on stderr.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ceph_msgr::conn::Stats;
use ceph_msgr::shim::mio::{ConnId, Control, Notice, Options, Reactor};
use ceph_msgr::wire::handshake::{features, protocol};
use ceph_msgr::wire::{tag, EntityName, EntityType};
use ceph_msgr::{Config, Event, Protocol};
use signal_hook::consts::{SIGINT, SIGTERM};

/// Parsed command line.
struct Opts {
    listen: SocketAddr,
    lossless: bool,
    name: EntityName,
    features: u64,
    quiet: bool,
    /// Busy-poll this long after activity before sleeping (`--busy-poll-us`).
    busy_poll: Option<std::time::Duration>,
    /// Refuse v1 clients that speak another protocol version than our entity type serves
    /// (BADPROTOVER), as Ceph does; on with `--as` or `--strict`. msgr2 has no protocol
    /// version: a v2 client checks our entity type (in HELLO) itself.
    strict: bool,
    /// `--v1-only`: send the v1 banner at once and speak v1 only (the server before
    /// msgr2), instead of waiting for the client's banner to pick the protocol.
    v1_only: bool,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut listen = None;
    let mut lossless = false;
    let mut name = EntityName {
        ty: EntityType::Mon,
        num: 0,
    };
    let mut feats = features::KERNEL_LIKE;
    let mut quiet = false;
    let mut strict = false;
    let mut busy_poll = None;
    let mut v1_only = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--listen" => {
                let v = it.next().ok_or("--listen needs IP:PORT")?;
                listen = Some(
                    v.parse::<SocketAddr>()
                        .map_err(|e| format!("--listen {v}: {e}"))?,
                );
            }
            "--lossless" => lossless = true,
            "--as" => {
                strict = true;
                let v = it.next().ok_or("--as needs mon, osd, mds or TYPE.NUM")?;
                name = match v.as_str() {
                    "mon" | "osd" | "mds" => format!("{v}.0").parse(),
                    other => other.parse(),
                }
                .map_err(|e| format!("--as: {e}"))?;
            }
            "--features" => {
                let v = it.next().ok_or("--features needs a hex number")?;
                feats = u64::from_str_radix(v.trim_start_matches("0x"), 16)
                    .map_err(|e| format!("--features {v}: {e}"))?;
            }
            "--quiet" | "-q" => quiet = true,
            "--strict" => strict = true,
            "--v1-only" => v1_only = true,
            "--busy-poll-us" => {
                let v = it.next().ok_or("--busy-poll-us needs a number")?;
                let us: u64 = v
                    .parse()
                    .map_err(|_| format!("--busy-poll-us {v}: not a number"))?;
                busy_poll = (us > 0).then(|| std::time::Duration::from_micros(us));
            }
            s => return Err(format!("unexpected argument `{s}`")),
        }
    }
    Ok(Opts {
        listen: listen.ok_or("serve needs --listen IP:PORT")?,
        lossless,
        name,
        features: feats,
        quiet,
        busy_poll,
        strict,
        v1_only,
    })
}

/// What we know about one connection (a session, for lossless servers).
struct Record {
    peer: String,
    since: Instant,
    until: Option<Instant>,
    messages: u64,
    payload: u64,
    keepalives: u64,
    /// Messages dropped as duplicates, and delivered after a seq gap.
    duplicates: u64,
    gaps: u64,
    /// Aborted frames dropped, and those since the last message delivered (msgr2 keeps
    /// in_seq at an aborted frame, so the next message arrives after a gap of that many).
    aborted: u64,
    aborted_run: u64,
    state: &'static str,
    /// The protocol the client spoke (known once the session opened).
    protocol: Option<Protocol>,
}

impl Record {
    fn absorb(&mut self, s: Stats) {
        self.keepalives = s.keepalives_answered;
    }
}

/// A reply tag's name: a v1 tag, or for msgr2 the frame tag (SERVER_IDENT, AUTH_BAD_METHOD…).
fn tag_name(t: u8, proto: Option<Protocol>) -> String {
    let name = match proto {
        Some(Protocol::V2) => ceph_msgr::v2::frame::Tag::from_u8(t).map(|t| t.name()),
        _ => tag::name(t),
    };
    name.map_or_else(|| format!("tag{t}"), str::to_owned)
}

/// Runs the subcommand.
pub fn run(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let mut cfg = Config::server(o.name);
    cfg.features = o.features;
    cfg.lossy = !o.lossless;
    cfg.sessions = o.lossless;
    cfg.check_protocol_version = o.strict;
    // V2 on a server: wait for the client's banner and speak whichever protocol it shows.
    cfg.protocol = if o.v1_only {
        Protocol::V1
    } else {
        Protocol::V2
    };
    // A real monitor announces nonce 0; other daemons tell restarts apart by it.
    cfg.nonce = if o.name.ty == EntityType::Mon {
        0
    } else {
        std::process::id()
    };

    // Signals: a flag, and a self-pipe that wakes the reactor.
    let stop = Arc::new(AtomicBool::new(false));
    let (wake_rx, wake_tx) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    wake_rx
        .set_nonblocking(true)
        .map_err(|e| format!("socketpair: {e}"))?;
    for sig in [SIGINT, SIGTERM] {
        // A second signal, while the first is being handled, ends the process at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))
            .map_err(|e| format!("signal handler: {e}"))?;
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("signal handler: {e}"))?;
        let tx = wake_tx
            .try_clone()
            .map_err(|e| format!("socketpair: {e}"))?;
        signal_hook::low_level::pipe::register(sig, tx)
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    drop(wake_tx);

    let mut reactor = Reactor::with_options(Options {
        busy_poll: o.busy_poll,
        ..Options::default()
    })
    .map_err(|e| format!("poll: {e}"))?;
    let mut rx = mio::net::UnixStream::from_std(wake_rx);
    reactor
        .add_wakeup_source(&mut rx)
        .map_err(|e| format!("poll: {e}"))?;
    let listener = reactor
        .listen(o.listen, cfg)
        .map_err(|e| format!("cannot listen on {}: {e}", o.listen))?;
    let bound = reactor.local_addr(listener).expect("listener just added");
    {
        let mut out = io::stdout().lock();
        writeln!(out, "{bound}").map_err(|e| format!("stdout: {e}"))?;
        out.flush().map_err(|e| format!("stdout: {e}"))?;
    }
    let version = match (o.strict, o.name.ty) {
        (false, _) | (_, EntityType::Client) => "any protocol version".to_owned(),
        (true, t) => format!(
            "protocol version {}",
            protocol::for_peer(t).map_or_else(|| "0".to_owned(), |p| p.to_string())
        ),
    };
    errln!(
        "serve: listening on {bound} as {} ({}; {}, v1 clients with {version})",
        o.name,
        if o.lossless { "lossless" } else { "lossy" },
        if o.v1_only {
            "msgr v1 only"
        } else {
            "msgr v1 and msgr2.1 crc clients"
        }
    );

    let started = Instant::now();
    let mut records: BTreeMap<ConnId, Record> = BTreeMap::new();
    let quiet = o.quiet;
    while !stop.load(Ordering::SeqCst) {
        reactor
            .run_once(None, |ctl: &mut Control, id: ConnId, n: Notice| {
                handle(ctl, id, n, &mut records, quiet);
            })
            .map_err(|e| format!("poll: {e}"))?;
    }
    drop(rx);

    // Connections still open: take their final counters.
    let now = Instant::now();
    for (id, r) in &mut records {
        if r.until.is_none() {
            if let Some(c) = reactor.conn(*id) {
                r.absorb(c.stats());
            }
            r.until = Some(now);
        }
    }
    print_totals(&records, now.duration_since(started)).map_err(|e| format!("stdout: {e}"))?;
    errln!("serve: stopped");
    Ok(())
}

fn handle(
    ctl: &mut Control,
    id: ConnId,
    n: Notice,
    records: &mut BTreeMap<ConnId, Record>,
    quiet: bool,
) {
    let now = ctl.now();
    match n {
        Notice::Accepted { peer, .. } => {
            errln!("{id} accepted {peer}");
            records.insert(
                id,
                Record {
                    peer: peer.to_string(),
                    since: now,
                    until: None,
                    messages: 0,
                    payload: 0,
                    keepalives: 0,
                    duplicates: 0,
                    gaps: 0,
                    aborted: 0,
                    aborted_run: 0,
                    state: "handshake",
                    protocol: None,
                },
            );
        }
        Notice::Resumed { from } => {
            records.remove(&from);
            errln!("{id} resumed by the transport accepted as {from}");
        }
        Notice::Event(ev) => {
            let Some(r) = records.get_mut(&id) else {
                return;
            };
            match ev {
                Event::Opened {
                    features,
                    peer_addr,
                    peer_type,
                    reply_tag,
                    lossy,
                    ..
                } => {
                    r.peer = peer_addr.to_string();
                    r.state = "open";
                    let proto = ctl.conn(id).map(ceph_msgr::Connection::protocol);
                    r.protocol = proto;
                    errln!(
                        "{id} open peer={peer_addr} type={} features={features:#x} reply={} lossy={lossy} protocol={}",
                        peer_type.name(),
                        tag_name(reply_tag, proto),
                        proto.map_or("?", Protocol::name),
                    );
                }
                Event::Message(m) => {
                    let h = &m.header;
                    r.messages += 1;
                    r.aborted_run = 0;
                    r.payload += h.payload_len();
                    if !quiet {
                        errln!(
                            "{id} msg seq={} type={} tid={} src={} front={} middle={} data={}",
                            h.seq,
                            h.ty,
                            h.tid,
                            h.src,
                            h.front_len,
                            h.middle_len,
                            h.data_len
                        );
                    }
                }
                Event::AbortedMessage(h) => {
                    r.aborted += 1;
                    r.aborted_run += 1;
                    errln!("{id} aborted message seq={} (dropped)", h.seq);
                }
                Event::Fault { error } => {
                    r.state = "standby";
                    errln!("{id} fault: {error}");
                }
                Event::Closed { error, unsent } => {
                    if let Some(c) = ctl.conn(id) {
                        r.absorb(c.stats());
                    }
                    r.until = Some(now);
                    r.state = "closed";
                    let why = error.map_or_else(|| "closed".to_owned(), |e| e.to_string());
                    errln!(
                        "{id} closed ({why}): {} messages, {} payload bytes, {} keepalives answered, {:.3} s{}",
                        r.messages,
                        r.payload,
                        r.keepalives,
                        now.duration_since(r.since).as_secs_f64(),
                        if unsent.is_empty() {
                            String::new()
                        } else {
                            format!(", {} unsent", unsent.len())
                        }
                    );
                }
                Event::SessionReset { .. } => errln!("{id} session reset by peer"),
                Event::ConnectRefused { reply_tag, reason } => {
                    let proto = ctl.conn(id).map(ceph_msgr::Connection::protocol);
                    errln!(
                        "{id} refused connect: {} ({reason})",
                        tag_name(reply_tag, proto)
                    );
                }
                Event::OutOfSequence {
                    seq,
                    expected,
                    duplicate,
                } => {
                    if duplicate {
                        r.duplicates += 1;
                        errln!("{id} dropped duplicate message seq={seq} (expected {expected})");
                    } else if seq - expected == r.aborted_run {
                        // msgr2: the seqs of the aborted frames just dropped.
                        errln!(
                            "{id} seq {seq} follows {} aborted frame(s) (delivered)",
                            r.aborted_run
                        );
                    } else {
                        r.gaps += 1;
                        errln!("{id} seq gap: got {seq}, expected {expected} (delivered)");
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
}

fn print_totals(records: &BTreeMap<ConnId, Record>, ran: Duration) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let (mut msgs, mut bytes, mut kas, mut dups, mut gaps) = (0, 0, 0, 0, 0);
    let (mut v1, mut v2, mut aborted) = (0, 0, 0);
    for (id, r) in records {
        let dur = r.until.unwrap_or(r.since).duration_since(r.since);
        writeln!(
            out,
            "conn id={id} peer={} messages={} payload_bytes={} keepalives_answered={} duration_s={:.3} state={} duplicates_dropped={} seq_gaps={} aborted_dropped={} protocol={}",
            r.peer,
            r.messages,
            r.payload,
            r.keepalives,
            dur.as_secs_f64(),
            r.state,
            r.duplicates,
            r.gaps,
            r.aborted,
            r.protocol.map_or("-", Protocol::name)
        )?;
        match r.protocol {
            Some(Protocol::V1) => v1 += 1,
            Some(Protocol::V2) => v2 += 1,
            _ => {}
        }
        msgs += r.messages;
        bytes += r.payload;
        kas += r.keepalives;
        dups += r.duplicates;
        gaps += r.gaps;
        aborted += r.aborted;
    }
    writeln!(
        out,
        "total connections={} messages={msgs} payload_bytes={bytes} keepalives_answered={kas} duration_s={:.3} duplicates_dropped={dups} seq_gaps={gaps} aborted_dropped={aborted} v1={v1} v2={v2}",
        records.len(),
        ran.as_secs_f64()
    )?;
    out.flush()
}
