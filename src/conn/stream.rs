//! The open session: incoming records (messages, acks, keepalives, CLOSE) with the seq
//! rules, opening on a transport, faults (lossy close, lossless backoff or standby) and
//! session resets.

use std::time::Instant;

use super::{later, Connection, Error, Event, Inner, OnAborted, Phase, Role};
use crate::recv::{Received, Record};
use crate::send::Protocol;
use crate::wire::{Control, FooterKind};

impl Connection {
    /// Continues after a handshake step that may have left input buffered.
    pub(super) fn after_handshake_step(&mut self, now: Instant) {
        if let Err(e) = self.process(now) {
            self.fault(now, e);
        }
    }

    /// Parses as much buffered input as the state allows.
    pub(super) fn process(&mut self, now: Instant) -> Result<(), Error> {
        loop {
            let progressed = match &self.state {
                Inner::Handshake(Phase::AwaitSession(_)) => false,
                Inner::Handshake(p) => {
                    let p = p.clone();
                    if p.is_v2() {
                        self.v2_handshake_step(now, p)?
                    } else {
                        self.handshake_step(now, p)?
                    }
                }
                Inner::Open if self.proto == Protocol::V2 => self.v2_open_step(now)?,
                Inner::Open => self.open_step(now)?,
                _ => false,
            };
            if !progressed {
                return Ok(());
            }
        }
    }

    pub(super) fn open(&mut self, now: Instant, reply_tag: u8) {
        let footer = FooterKind::for_features(self.features);
        self.tx.set_peer_features(self.features);
        self.rx.set_footer(footer);
        self.tx.set_hold(false);
        self.in_seq_acked = self.in_seq;
        self.backoff = self.cfg.backoff_initial;
        self.stats.opens += 1;
        self.state = Inner::Open;
        self.handshake_deadline = None;
        self.last_heard = Some(now);
        self.next_keepalive = self.cfg.keepalive_interval.map(|i| later(now, i));
        self.events.push_back(Event::Opened {
            features: self.features,
            peer_addr: self.peer_addr,
            my_addr: self.my_addr,
            peer_type: self.peer_type,
            reply_tag,
            lossy: self.is_lossy(),
        });
    }

    /// The peer acknowledged every seq up to `seq` (an ack record, or the in_seq it sent
    /// when the session resumed): releases those messages and reports it once.
    ///
    /// An ack beyond the last seq we numbered acknowledges what we sent and no more: the
    /// messages we number later are not covered by it.
    pub(super) fn peer_acked(&mut self, seq: u64) {
        let before = self.tx.acked();
        self.tx.on_ack(seq.min(self.tx.out_seq()));
        if self.tx.acked() > before {
            self.events.push_back(Event::Acked(self.tx.acked()));
        }
    }

    pub(super) fn reset_session(&mut self) {
        let unsent = self.tx.drain(true);
        self.in_seq = 0;
        self.in_seq_acked = 0;
        self.connect_seq = 0;
        self.peer_global_seq = 0;
        self.events.push_back(Event::SessionReset { unsent });
    }

    pub(super) fn open_step(&mut self, now: Instant) -> Result<bool, Error> {
        let Some(rec) = self.rx.next_record().map_err(Error::Recv)? else {
            return Ok(false);
        };
        match rec {
            Record::Message(m) => self.deliver(m)?,
            Record::Aborted(h) => {
                self.stats.aborted_in += 1;
                if self.cfg.on_aborted == OnAborted::Fault {
                    return Err(Error::AbortedMessage { seq: h.seq });
                }
                if h.seq > self.in_seq {
                    self.in_seq = h.seq;
                }
                self.events.push_back(Event::AbortedMessage(h));
            }
            Record::Control(Control::Ack(seq)) => self.peer_acked(seq),
            Record::Control(Control::Keepalive) => {}
            Record::Control(Control::Keepalive2(ts)) => {
                self.stats.keepalives_answered += 1;
                self.tx.push_control(Control::Keepalive2Ack(ts));
            }
            Record::Control(Control::Keepalive2Ack(ts)) => {
                let rtt = match self.keepalive_sent {
                    Some((stamp, at)) if stamp == ts => Some(now.saturating_duration_since(at)),
                    _ => None,
                };
                self.events.push_back(Event::KeepaliveAck { rtt });
            }
            Record::Control(Control::Close) => {
                self.finish_closed(Some(Error::PeerClosed));
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Applies the seq rules to an incoming message (both protocols): a duplicate is
    /// dropped, a gap is accepted unless `strict_seq`, and the message is delivered.
    pub(super) fn deliver(&mut self, m: Received) -> Result<(), Error> {
        let seq = m.header.seq;
        let expected = self.in_seq.saturating_add(1);
        if seq < expected {
            self.stats.dups_in += 1;
            self.events.push_back(Event::OutOfSequence {
                seq,
                expected,
                duplicate: true,
            });
            return Ok(());
        }
        if seq > expected {
            if self.cfg.strict_seq {
                return Err(Error::SeqGap { got: seq, expected });
            }
            self.stats.gaps_in += 1;
            self.events.push_back(Event::OutOfSequence {
                seq,
                expected,
                duplicate: false,
            });
        }
        self.in_seq = seq;
        self.stats.msgs_in += 1;
        self.stats.bytes_in += m.header.payload_len();
        self.events.push_back(Event::Message(m));
        Ok(())
    }

    pub(super) fn fault(&mut self, now: Instant, error: Error) {
        self.stats.faults += 1;
        self.handshake_deadline = None;
        self.rx.clear();
        self.tx.reset();
        self.tx.set_hold(true);
        self.next_keepalive = None;
        let fatal = matches!(
            error,
            Error::MissingFeatures { .. }
                | Error::BadProtocolVersion { .. }
                | Error::AuthFailed
                | Error::PeerClosed
        );
        if fatal || self.cfg.lossy || (self.role == Role::Server && self.peer_lossy) {
            self.finish_closed(Some(error));
            return;
        }
        if self.peer_lossy {
            // We are a lossless client of a lossy server (a mon, an OSD): the server drops
            // the session on a fault, so the next connection is a new session. Keep every
            // message and send it again with a fresh seq.
            self.tx.restart_session();
            self.in_seq = 0;
            self.in_seq_acked = 0;
            self.connect_seq = 0;
            self.peer_global_seq = 0;
        }
        self.events.push_back(Event::Fault { error });
        match self.role {
            Role::Client => {
                self.state = Inner::Backoff(later(now, self.backoff));
                self.backoff = self.backoff.saturating_mul(2).min(self.cfg.backoff_max);
            }
            Role::Server => self.state = Inner::Standby,
        }
    }

    pub(super) fn finish_closed(&mut self, error: Option<Error>) {
        let unsent = self.tx.drain(false);
        self.rx.clear();
        self.state = Inner::Closed;
        self.next_keepalive = None;
        self.events.push_back(Event::Closed { error, unsent });
    }
}
