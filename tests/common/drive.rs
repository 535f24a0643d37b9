//! Drives a [`Messenger`] through an oracle event list via the public API, with data split
//! into chunks and `fill` given few slices: shared by the property tests and the fuzzer.

use std::io::IoSlice;

use bytes::Bytes;
use ceph_msgr::wire::{EntityName, EntityType};
use ceph_msgr::{Message, Messenger, MsgId, Protocol};

use super::oracle::{self, Ev};

/// Drives the Messenger API directly: data split into random chunks, and `fill` given only
/// a few slices at a time, so frames are cut at every kind of slice boundary.
pub fn run_api(evs: &[Ev], chunk_cuts: &[usize], slots: usize) -> Vec<Vec<u8>> {
    run_api_protocol(evs, chunk_cuts, slots, Protocol::V1)
}

/// [`run_api`] with the Messenger framing for `protocol` (msgr2: MESSAGE frames only).
pub fn run_api_protocol(
    evs: &[Ev],
    chunk_cuts: &[usize],
    slots: usize,
    protocol: Protocol,
) -> Vec<Vec<u8>> {
    let mut m =
        Messenger::with_protocol(protocol, EntityName::client(4242), oracle::DEFAULT_FEATURES);
    let mut ids: Vec<(u64, MsgId)> = Vec::new();
    let mut conns = vec![Vec::new()];
    let mut cut = chunk_cuts.iter().cycle();
    for ev in evs {
        match *ev {
            Ev::Features(f) => m.set_peer_features(f),
            Ev::Entity { ty, num } => {
                m.set_src(EntityName {
                    ty: EntityType::from_u8(ty).unwrap(),
                    num,
                });
            }
            Ev::Queue {
                id,
                ty,
                tid,
                prio,
                version,
                compat,
                front,
                middle,
                data,
            } => {
                let d = oracle::section_bytes(id, 2, data);
                let mut msg = Message::new(ty)
                    .with_tid(tid)
                    .with_priority(prio)
                    .with_version(version, compat)
                    .with_front(Bytes::from(oracle::section_bytes(id, 0, front)))
                    .with_middle(Bytes::from(oracle::section_bytes(id, 1, middle)));
                // Split data into chunks, empty chunks included.
                let d = Bytes::from(d);
                let mut at = 0;
                let mut empties = 0;
                while at < d.len() {
                    // A cut of 0 adds an empty chunk (at most two in a row).
                    let c = *cut.next().unwrap();
                    let n = if c == 0 && empties < 2 {
                        empties += 1;
                        0
                    } else {
                        empties = 0;
                        c.max(1).min(d.len() - at)
                    };
                    msg = msg.with_data_chunk(d.slice(at..at + n));
                    at += n;
                }
                msg = msg.with_data_chunk(Bytes::new());
                ids.push((id, m.queue(msg).unwrap()));
            }
            Ev::Write(limit) => {
                let mut left = limit.unwrap_or(u64::MAX);
                while left > 0 {
                    let t = m.poll_transmit();
                    let mut out = vec![IoSlice::new(&[]); slots];
                    let k = t.fill(&mut out);
                    if k == 0 {
                        assert!(t.is_empty(), "fill gave nothing while bytes were offered");
                        break;
                    }
                    let mut took = 0u64;
                    for s in &out[..k] {
                        let n = (s.len() as u64).min(left - took) as usize;
                        conns.last_mut().unwrap().extend_from_slice(&s[..n]);
                        took += n as u64;
                    }
                    m.advance(took as usize).unwrap();
                    left -= took;
                }
            }
            Ev::Revoke(id) => {
                if let Some((_, mid)) = ids.iter().find(|(i, _)| *i == id) {
                    let _ = m.revoke(*mid);
                }
            }
            Ev::Ack(s) => m.on_ack(s),
            Ev::Reset => {
                m.reset();
                conns.push(Vec::new());
            }
        }
    }
    conns
}
