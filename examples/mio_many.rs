//! One thread, one [`Reactor`], N client and N server connections over loopback, all open
//! at the same time: every client does the msgr v1 handshake, sends a few messages and
//! waits for their acknowledgement; only when every client is acknowledged (so 2·N
//! connections are held at once) do they close.
//!
//! ```text
//! cargo run --release --example mio_many -- [CONNECTIONS] [MESSAGES]   # default 1000 3
//! ```
//!
//! Each connection needs a file descriptor on each side: 1,000 connections need about
//! 2,010 descriptors, more than the common soft limit of 1,024 (`ulimit -n 4096` first).
//!
//! `tests/mio_many.rs` runs this same code in `cargo test`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::shim::mio::{ConnId, Notice, Reactor};
use ceph_msgr::wire::{EntityName, EntityType};
use ceph_msgr::{Config, Event, Message};

/// Clients connected per turn: the same thread accepts, and the listen backlog
/// (`Options::listen_backlog`, 1,024) holds what it has not accepted yet.
const WAVE: usize = 1000;

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Client connections (there are as many server connections).
    pub clients: usize,
    /// Messages each client sent.
    pub messages: u64,
    /// Most connections held by the reactor at once.
    pub peak: usize,
    /// From the first connect until every client was open and acknowledged.
    pub open_and_acked: Duration,
    /// From then until every connection (both sides) was closed and gone.
    pub closed: Duration,
    /// Messages the server side received.
    pub delivered: u64,
    /// Turns of the reactor.
    pub turns: u64,
}

/// Runs the scenario with `clients` clients sending `messages` messages each.
pub fn run(clients: usize, messages: u64) -> Result<Report, String> {
    let mut r = Reactor::new().map_err(|e| e.to_string())?;
    let server = EntityName {
        ty: EntityType::Osd,
        num: 0,
    };
    let l = r
        .listen(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Config::server(server),
        )
        .map_err(|e| e.to_string())?;
    let addr = r.local_addr(l).expect("listener");

    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let mut client_ids: HashSet<ConnId> = HashSet::new();
    let mut acked: HashSet<ConnId> = HashSet::new();
    let mut delivered = 0u64;
    let mut errors: Vec<String> = Vec::new();
    let mut peak = 0;
    let mut turns = 0u64;
    let mut created = 0;

    // Phase 1: connect everyone, handshake, send, wait for acknowledgements.
    while acked.len() < clients {
        if Instant::now() > deadline {
            return Err(format!(
                "timeout: {} of {clients} clients acknowledged, {} connections held",
                acked.len(),
                r.len()
            ));
        }
        for _ in 0..WAVE.min(clients - created) {
            created += 1;
            let cfg = Config::client(EntityName::client(created as u64));
            let id = r.connect(cfg, addr, EntityType::Osd);
            for n in 0..messages {
                let front = Bytes::from(format!("client {created} message {n}"));
                r.send(id, Message::new(42).with_tid(n + 1).with_front(front))
                    .map_err(|e| e.to_string())?;
            }
            client_ids.insert(id);
        }
        r.run_once(Some(Duration::from_millis(100)), |_, id, n| match n {
            Notice::Event(Event::Acked(seq)) if seq == messages => {
                acked.insert(id);
            }
            Notice::Event(Event::Message(_)) => delivered += 1,
            Notice::Event(Event::Closed { error, .. }) => {
                errors.push(format!("{id} closed early: {error:?}"));
            }
            _ => {}
        })
        .map_err(|e| e.to_string())?;
        turns += 1;
        peak = peak.max(r.len());
        if let Some(e) = errors.first() {
            return Err(e.clone());
        }
    }
    let open_and_acked = start.elapsed();

    // Phase 2: close every client; the servers see CLOSE and end too.
    let t = Instant::now();
    for id in &client_ids {
        r.close(*id);
    }
    while !r.is_empty() {
        if Instant::now() > deadline {
            return Err(format!("timeout closing: {} connections left", r.len()));
        }
        r.run_once(Some(Duration::from_millis(100)), |_, _, _| {})
            .map_err(|e| e.to_string())?;
        turns += 1;
    }
    Ok(Report {
        clients,
        messages,
        peak,
        open_and_acked,
        closed: t.elapsed(),
        delivered,
        turns,
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let clients = args
        .next()
        .map_or(1000, |a| a.parse().expect("CONNECTIONS"));
    let messages = args.next().map_or(3, |a| a.parse().expect("MESSAGES"));
    match run(clients, messages) {
        Ok(r) => {
            println!(
                "{} clients + {} server connections on one thread (peak {} held at once)",
                r.clients, r.clients, r.peak
            );
            println!(
                "handshake + {} messages each, all acknowledged: {:.1} ms ({} messages delivered)",
                r.messages,
                r.open_and_acked.as_secs_f64() * 1e3,
                r.delivered
            );
            println!(
                "graceful close of all {} connections: {:.1} ms; {} reactor turns",
                2 * r.clients,
                r.closed.as_secs_f64() * 1e3,
                r.turns
            );
        }
        Err(e) => {
            eprintln!("mio_many: {e}");
            std::process::exit(1);
        }
    }
}
