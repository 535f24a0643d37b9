//! proptest strategies for event scripts, shared by the property tests.

use proptest::prelude::*;

use super::oracle::Ev;

/// Feature sets: the default (new footer), the default without MSG_AUTH (old footer), or
/// anything.
pub fn features() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        3 => Just(None),
        2 => Just(Some(0x3f01_cfbd_fffd_ffff & !(1u64 << 23))),
        1 => any::<u64>().prop_map(Some),
    ]
}

/// A section length: mostly small (including 0), sometimes past the 64 KiB zero buffer.
pub fn section_len() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => Just(0u32),
        8 => 1u32..200,
        2 => 200u32..5000,
        1 => 65_000u32..140_000,
    ]
}

/// A write size, including 0 and 1, or `write all`.
pub fn write() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        1 => Just(Some(0)),
        2 => Just(Some(1)),
        4 => (2u64..100).prop_map(Some),
        3 => (100u64..10_000).prop_map(Some),
        1 => (10_000u64..300_000).prop_map(Some),
        2 => Just(None),
    ]
}

/// Raw material for one event; ids and seqs are resolved against the script so far.
#[derive(Debug, Clone)]
pub enum RawEv {
    Queue([u32; 3], u16, u16),
    Write(Option<u64>),
    Revoke(usize),
    Ack(u64),
    Reset,
}

pub fn raw_event() -> impl Strategy<Value = RawEv> {
    prop_oneof![
        6 => (section_len(), (0u32..4, section_len()), section_len(),
              any::<u16>(), prop_oneof![Just(127u16), any::<u16>()])
            .prop_map(|(front, (coin, middle), data, ty, prio)| {
                // Most messages have no middle section.
                let middle = if coin == 0 { middle } else { 0 };
                RawEv::Queue([front, middle, data], ty, prio)
            }),
        8 => write().prop_map(RawEv::Write),
        3 => any::<usize>().prop_map(RawEv::Revoke),
        2 => (0u64..12).prop_map(RawEv::Ack),
        1 => Just(RawEv::Reset),
    ]
}

/// A whole script: optional features/entity, then events; ids are unique and revokes pick
/// a queued id most of the time.
pub fn script(max_events: usize) -> impl Strategy<Value = Vec<Ev>> {
    (
        features(),
        prop_oneof![
            Just(None),
            (
                prop_oneof![Just(1u8), Just(2), Just(4), Just(8)],
                any::<u64>()
            )
                .prop_map(Some)
        ],
        prop::collection::vec(raw_event(), 1..max_events),
        1u64..1000,
    )
        .prop_map(|(features, entity, raw, id_base)| {
            let mut evs = Vec::new();
            if let Some(f) = features {
                evs.push(Ev::Features(f));
            }
            if let Some((ty, num)) = entity {
                evs.push(Ev::Entity { ty, num });
            }
            let mut ids: Vec<u64> = Vec::new();
            for r in raw {
                evs.push(match r {
                    RawEv::Queue([front, middle, data], ty, prio) => {
                        let id = id_base + ids.len() as u64 * 3;
                        ids.push(id);
                        Ev::Queue {
                            id,
                            ty,
                            tid: id ^ 0x5555,
                            prio,
                            version: (id % 7) as u16,
                            compat: 1,
                            front,
                            middle,
                            data,
                        }
                    }
                    RawEv::Write(w) => Ev::Write(w),
                    RawEv::Revoke(k) => {
                        // One in eight revokes names an id that was never queued.
                        if ids.is_empty() || k % 8 == 0 {
                            Ev::Revoke(id_base + 1 + (k as u64 % 50) * 3)
                        } else {
                            Ev::Revoke(ids[k % ids.len()])
                        }
                    }
                    RawEv::Ack(s) => Ev::Ack(s),
                    RawEv::Reset => Ev::Reset,
                });
            }
            evs
        })
}
