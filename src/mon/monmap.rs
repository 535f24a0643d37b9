//! The monitor map (`MonMap`, carried by `MMonMap`, type 4), decoded far enough for the
//! cluster id, the epoch and each monitor's name and addresses.
//!
//! See [`MonMap`] for the encodings.

use std::fmt;

use super::MonDecodeError;
use crate::denc::{addr_key, decode_addr, decode_addrvec, Addr, Reader};

/// A cluster id (`uuid_d`), printed in the usual 8-4-4-4-12 form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fsid(pub [u8; 16]);

impl fmt::Display for Fsid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// One monitor of the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonInfo {
    /// Its rank (position in the map's rank order).
    pub rank: usize,
    /// Its name (`a` for `mon.a`); the legacy version-1 encoding has none, and this is then
    /// the rank as a string, as Ceph's own decoder does.
    pub name: String,
    /// Its public addresses (one v1 address in the legacy encodings; an address vector,
    /// e.g. v2 and v1, in the newer ones).
    pub addrs: Vec<Addr>,
}

impl MonInfo {
    /// The msgr v1 address, if it has one (a legacy-encoded address counts as v1).
    #[must_use]
    pub fn v1_addr(&self) -> Option<&Addr> {
        self.addrs
            .iter()
            .find(|a| a.kind == crate::denc::AddrKind::Legacy)
    }
}

/// A decoded monitor map.
///
/// What a monitor sends depends on the features negotiated on the connection
/// (`MonMap::encode` in `src/mon/MonMap.cc`):
///
/// | features | encoding | names |
/// |---|---|---|
/// | no MONNAMES (bit 5) | legacy `u16` version 1: `vector<entity_inst_t>` | none: Ceph itself calls them `0`, `1`, … by rank |
/// | MONNAMES, no MONENC (bit 15) | legacy `u16` version 2: `map<string, entity_addr_t>` | yes |
/// | MONENC, no SERVER_NAUTILUS (bit 2) | versioned 5: legacy map + `mon_info` | yes |
/// | MONENC and SERVER_NAUTILUS | versioned 6 and up (9 on Pacific): `mon_info` (address vectors) + `ranks` | yes |
///
/// [`MonMap::decode`] reads all of them; fields past the ones it needs are skipped with
/// the structure lengths, so newer versions decode too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonMap {
    /// The cluster id.
    pub fsid: Fsid,
    /// The map's epoch.
    pub epoch: u32,
    /// The encoding version: 1 or 2 for the legacy encodings, 3 and up for versioned ones.
    pub encoding: u8,
    /// When the map last changed, as (seconds, nanoseconds).
    pub last_changed: (u32, u32),
    /// When the cluster was created, as (seconds, nanoseconds).
    pub created: (u32, u32),
    /// The lowest release every monitor runs (versioned encodings 7 and up).
    pub min_mon_release: Option<u8>,
    /// The monitors, in rank order.
    pub mons: Vec<MonInfo>,
}

impl MonMap {
    /// Decodes the front of an `MMonMap` message: a `u32`-length buffer holding the map.
    pub fn from_message_front(front: &[u8]) -> Result<Self, MonDecodeError> {
        let mut r = Reader::new(front);
        let bl = r.blob("MMonMap monmapbl")?;
        Self::decode(bl)
    }

    /// Decodes an encoded map (any of the encodings above).
    pub fn decode(buf: &[u8]) -> Result<Self, MonDecodeError> {
        let mut r = Reader::new(buf);
        // DECODE_START_LEGACY_COMPAT_LEN_16(…, 3, 3): versions 1 and 2 were a bare le16.
        let first = r.peek_u8("monmap version")?;
        if first < 3 {
            let v = r.u16("monmap version")?;
            let v = u8::try_from(v).map_err(|_| MonDecodeError::UnsupportedVersion {
                what: "monmap",
                version: u8::MAX,
            })?;
            return Self::decode_legacy(v, &mut r);
        }
        let (v, mut s) = r.versioned("monmap")?;
        Self::decode_versioned(v, &mut s)
    }

    fn decode_legacy(v: u8, r: &mut Reader<'_>) -> Result<Self, MonDecodeError> {
        let (fsid, epoch) = fsid_epoch(r)?;
        let mut mons = Vec::new();
        match v {
            1 => {
                // vector<entity_inst_t>: entity_name_t (u8 type, le64 num), entity_addr_t.
                let n = r.count("monmap mon_inst", 9 + 1)?;
                for rank in 0..n {
                    let _ty = r.u8("entity_name_t type")?;
                    let _num = r.u64("entity_name_t num")?;
                    let addr = decode_addr(r)?;
                    mons.push(MonInfo {
                        rank,
                        name: rank.to_string(),
                        addrs: vec![addr],
                    });
                }
            }
            2 => mons = legacy_mon_addr(r)?,
            other => {
                return Err(MonDecodeError::UnsupportedVersion {
                    what: "monmap (legacy)",
                    version: other,
                })
            }
        }
        let last_changed = utime(r, "monmap last_changed")?;
        let created = utime(r, "monmap created")?;
        Ok(Self {
            fsid,
            epoch,
            encoding: v,
            last_changed,
            created,
            min_mon_release: None,
            mons,
        })
    }

    fn decode_versioned(v: u8, r: &mut Reader<'_>) -> Result<Self, MonDecodeError> {
        let (fsid, epoch) = fsid_epoch(r)?;
        let mut legacy = Vec::new();
        if v < 6 {
            legacy = legacy_mon_addr(r)?;
        }
        let last_changed = utime(r, "monmap last_changed")?;
        let created = utime(r, "monmap created")?;
        if v >= 4 {
            // persistent_features, optional_features: versioned mon_feature_t, skipped.
            r.versioned("monmap persistent_features")?;
            r.versioned("monmap optional_features")?;
        }
        let mut mons = if v >= 5 {
            let n = r.count("monmap mon_info", 4 + 6)?;
            let mut mons = Vec::with_capacity(n);
            for _ in 0..n {
                let _key = r.string("monmap mon_info key")?;
                let (_iv, mut s) = r.versioned("mon_info_t")?;
                let name = s.string("mon_info_t name")?;
                let addrs = decode_addrvec(&mut s)?;
                mons.push(MonInfo {
                    rank: 0,
                    name,
                    addrs,
                });
            }
            mons
        } else {
            legacy
        };
        if v >= 6 {
            let n = r.count("monmap ranks", 4)?;
            let mut ranks = Vec::with_capacity(n);
            for _ in 0..n {
                ranks.push(r.string("monmap rank name")?);
            }
            let mut ordered = Vec::with_capacity(mons.len());
            for (rank, name) in ranks.iter().enumerate() {
                if let Some(i) = mons.iter().position(|m| &m.name == name) {
                    let mut m = mons.swap_remove(i);
                    m.rank = rank;
                    ordered.push(m);
                }
            }
            // Monitors the rank list does not name (should not happen) go last.
            for mut m in mons {
                m.rank = ordered.len();
                ordered.push(m);
            }
            mons = ordered;
        } else {
            rank_by_address(&mut mons);
        }
        let min_mon_release = if v >= 7 {
            Some(r.u8("monmap min_mon_release")?)
        } else {
            None
        };
        Ok(Self {
            fsid,
            epoch,
            encoding: v,
            last_changed,
            created,
            min_mon_release,
            mons,
        })
    }
}

fn fsid_epoch(r: &mut Reader<'_>) -> Result<(Fsid, u32), MonDecodeError> {
    let mut fsid = [0u8; 16];
    fsid.copy_from_slice(r.bytes(16, "monmap fsid")?);
    Ok((Fsid(fsid), r.u32("monmap epoch")?))
}

fn utime(r: &mut Reader<'_>, what: &'static str) -> Result<(u32, u32), MonDecodeError> {
    Ok((r.u32(what)?, r.u32(what)?))
}

/// `map<string, entity_addr_t>`, ranked by address as Ceph's `calc_legacy_ranks` does.
fn legacy_mon_addr(r: &mut Reader<'_>) -> Result<Vec<MonInfo>, MonDecodeError> {
    let n = r.count("monmap mon_addr", 4 + 1)?;
    let mut mons = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string("monmap mon_addr name")?;
        let addr = decode_addr(r)?;
        mons.push(MonInfo {
            rank: 0,
            name,
            addrs: vec![addr],
        });
    }
    rank_by_address(&mut mons);
    Ok(mons)
}

/// Encodings without a rank list rank monitors by address, then name.
fn rank_by_address(mons: &mut [MonInfo]) {
    mons.sort_by(|a, b| {
        let ka = a.addrs.first().map(addr_key);
        let kb = b.addrs.first().map(addr_key);
        ka.cmp(&kb).then_with(|| a.name.cmp(&b.name))
    });
    for (i, m) in mons.iter_mut().enumerate() {
        m.rank = i;
    }
}
