//! A msgr v1 client on smol, through the `futures-io` shim: connects to a server (such as
//! `ceph-msgr serve`), sends messages, waits until the server has acknowledged every one,
//! measures a keepalive round trip and closes the session.
//!
//! ```text
//! cargo run --example smol_client -- 127.0.0.1:PORT [--count N] [--size BYTES]
//!     [--type N] [--peer mon|mds|osd|client] [--lossless] [--keepalive-ms MS]
//! ```
//!
//! `--peer` is the server's entity type (it sets the protocol version of the connect
//! message; default `osd`). `--lossless` runs the session lossless: the client then
//! reconnects and resends on its own when the transport breaks.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ceph_msgr::shim::futures_io::AsyncConnection;
use ceph_msgr::{Config, EntityName, EntityType, Event, Message};
use smol::net::TcpStream;

/// Most messages held (queued or unacknowledged) at once.
const WINDOW: usize = 256;

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server.
    pub addr: SocketAddr,
    /// Messages to send.
    pub count: u64,
    /// Front section size of each message.
    pub size: usize,
    /// Message type (default 2, `CEPH_MSG_PING`).
    pub msg_type: u16,
    /// The server's entity type.
    pub peer: EntityType,
    /// Run the session lossless.
    pub lossless: bool,
    /// Keepalive interval.
    pub keepalive: Duration,
}

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut args = args.into_iter();
        let mut addr = None;
        let mut o = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            count: 1000,
            size: 64,
            msg_type: 2,
            peer: EntityType::Osd,
            lossless: false,
            keepalive: Duration::from_millis(200),
        };
        while let Some(a) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match a.as_str() {
                "--count" => o.count = num(&value("--count")?)?,
                "--size" => o.size = num(&value("--size")?)?,
                "--type" => o.msg_type = num(&value("--type")?)?,
                "--keepalive-ms" => {
                    o.keepalive = Duration::from_millis(num(&value("--keepalive-ms")?)?);
                }
                "--peer" => {
                    let v = value("--peer")?;
                    o.peer = format!("{v}.0")
                        .parse::<EntityName>()
                        .map_err(|e| e.to_string())?
                        .ty;
                }
                "--lossless" => o.lossless = true,
                "-h" | "--help" => return Err(usage()),
                s if !s.starts_with('-') && addr.is_none() => {
                    addr = Some(s.parse().map_err(|e| format!("bad address {s:?}: {e}"))?);
                }
                other => return Err(format!("unknown argument {other:?}\n{}", usage())),
            }
        }
        o.addr = addr.ok_or_else(usage)?;
        Ok(o)
    }
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad number {s:?}"))
}

fn usage() -> String {
    "usage: smol_client ADDR [--count N] [--size BYTES] [--type N] \
     [--peer mon|mds|osd|client] [--lossless] [--keepalive-ms MS]"
        .to_owned()
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Messages the server acknowledged.
    pub acked: u64,
    /// From the session opening to the last acknowledgement.
    pub elapsed: Duration,
    /// A keepalive round trip.
    pub rtt: Option<Duration>,
    /// Messages the server sent us.
    pub received: u64,
    /// Times the session opened (1 + reconnects).
    pub opens: u64,
    /// Negotiated features.
    pub features: u64,
}

/// Runs the client.
pub async fn run(o: &Options) -> io::Result<Summary> {
    let mut cfg = Config::client(EntityName::client(u64::from(std::process::id())));
    cfg.nonce = std::process::id();
    cfg.lossy = !o.lossless;
    cfg.keepalive_interval = Some(o.keepalive);
    let sock = connect(o.addr).await?;
    let mut conn = AsyncConnection::client(cfg, o.addr, o.peer, sock).with_timer(smol::Timer::at);

    let mut s = Summary::default();
    let mut queued = 0;
    let mut started = None;
    let mut rtt_wanted = false;
    loop {
        while queued < o.count && conn.connection().messenger().len() < WINDOW {
            queued += 1;
            let front = Bytes::from(vec![(queued % 251) as u8; o.size]);
            conn.send(Message::new(o.msg_type).with_tid(queued).with_front(front))
                .map_err(io::Error::other)?;
        }
        if queued == o.count && conn.connection().messenger().is_empty() {
            if started.is_some() {
                s.elapsed = started.map_or(Duration::ZERO, |t: Instant| t.elapsed());
                started = None;
            }
            if s.rtt.is_some() {
                break;
            }
            if !rtt_wanted {
                conn.send_keepalive(Instant::now());
                rtt_wanted = true;
            }
        }
        match conn.next_event().await? {
            Event::Opened { features, .. } => {
                s.opens += 1;
                s.features = features;
                started.get_or_insert_with(Instant::now);
            }
            Event::Acked(seq) => s.acked = s.acked.max(seq),
            Event::KeepaliveAck { rtt } => s.rtt = s.rtt.or(rtt),
            Event::Message(_) => s.received += 1,
            Event::OpenTransport => conn.reconnect(connect(o.addr).await?)?,
            Event::Fault { error } => eprintln!("transport fault: {error}; reconnecting"),
            Event::Closed { error, unsent } => {
                return Err(io::Error::other(format!(
                    "session ended: {}; {} messages not acknowledged",
                    error.map_or("closed".to_owned(), |e| e.to_string()),
                    unsent.len()
                )));
            }
            Event::SessionReset { unsent } => {
                return Err(io::Error::other(format!(
                    "the server reset the session; {} messages lost",
                    unsent.len()
                )));
            }
            _ => {}
        }
    }
    conn.close().await?;
    // Whatever arrived before our CLOSE went out.
    while let Ok(ev) = conn.next_event().await {
        if let Event::Message(_) = ev {
            s.received += 1;
        }
    }
    s.acked = conn.connection().messenger().acked();
    Ok(s)
}

async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn main() {
    let o = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    match smol::block_on(run(&o)) {
        Ok(s) => {
            let secs = s.elapsed.as_secs_f64().max(1e-9);
            println!(
                "{} messages of {} bytes acknowledged by {} in {:.3} s ({:.0} msgs/s, {:.1} MB/s)",
                s.acked,
                o.size,
                o.addr,
                secs,
                s.acked as f64 / secs,
                (s.acked as f64 * o.size as f64) / secs / 1e6
            );
            println!(
                "features {:#x}; opens {}; keepalive rtt {:?}; {} messages received",
                s.features, s.opens, s.rtt, s.received
            );
        }
        Err(e) => {
            eprintln!("smol_client: {e}");
            std::process::exit(1);
        }
    }
}
