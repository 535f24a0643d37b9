//! A minimal in-memory pair: pumps every byte between a client and a server connection
//! until both are quiet. For scripted cases; `sim.rs` does the randomized ones.

use std::io::IoSlice;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use ceph_msgr::conn::{Config, Connection, Event};
use ceph_msgr::wire::handshake::EntityAddr;
use ceph_msgr::wire::{EntityName, EntityType};

pub fn server_sock() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 6789))
}

pub fn client_sock() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 40000))
}

/// Everything `c` wants to write.
pub fn drain(c: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let t = c.poll_transmit();
        let mut s = [IoSlice::new(&[]); 32];
        let k = t.fill(&mut s);
        let n: usize = s[..k].iter().map(|x| x.len()).sum();
        for x in &s[..k] {
            out.extend_from_slice(x);
        }
        if n == 0 {
            return out;
        }
        c.advance(n).expect("advance what was offered");
    }
}

pub struct Pair {
    pub now: Instant,
    pub client: Connection,
    pub server: Connection,
    pub client_events: Vec<Event>,
    pub server_events: Vec<Event>,
}

impl Pair {
    /// A client and a server, the transport connected (nothing exchanged yet).
    pub fn new(ccfg: Config, scfg: Config) -> Self {
        let now = Instant::now();
        let mut client = Connection::client(ccfg, server_sock(), scfg.name.ty);
        assert!(matches!(client.poll_event(), Some(Event::OpenTransport)));
        client.transport_connected(now);
        let server =
            Connection::server(scfg, EntityAddr::new(Some(server_sock()), 1), client_sock());
        Self {
            now,
            client,
            server,
            client_events: Vec::new(),
            server_events: Vec::new(),
        }
    }

    pub fn default_configs() -> (Config, Config) {
        let c = Config::client(EntityName::client(1));
        let s = Config::server(EntityName {
            ty: EntityType::Osd,
            num: 0,
        });
        (c, s)
    }

    /// Moves bytes both ways until neither side has anything to write.
    pub fn pump(&mut self) {
        for _ in 0..1000 {
            let a = drain(&mut self.client);
            let b = drain(&mut self.server);
            if a.is_empty() && b.is_empty() {
                break;
            }
            self.server.handle_input(self.now, &a);
            self.client.handle_input(self.now, &b);
            self.collect();
        }
        self.collect();
    }

    pub fn collect(&mut self) {
        while let Some(e) = self.client.poll_event() {
            self.client_events.push(e);
        }
        while let Some(e) = self.server.poll_event() {
            self.server_events.push(e);
        }
    }
}
