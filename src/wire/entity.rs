//! Entity names (`ceph_entity_name`): a type byte and a 64-bit number, e.g. `client.4242`.

use std::fmt;
use std::str::FromStr;

use super::DecodeError;

/// The kind of daemon or client an entity is (`CEPH_ENTITY_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntityType {
    /// A monitor (1).
    Mon,
    /// A metadata server (2).
    Mds,
    /// An object storage daemon (4).
    Osd,
    /// A client (8).
    Client,
    /// The auth service (0x20).
    Auth,
    /// A manager (0x80).
    Mgr,
}

impl EntityType {
    /// The wire value of this type.
    #[must_use]
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Mon => 1,
            Self::Mds => 2,
            Self::Osd => 4,
            Self::Client => 8,
            Self::Auth => 0x20,
            Self::Mgr => 0x80,
        }
    }

    /// Parses a wire value.
    pub const fn from_u8(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            1 => Self::Mon,
            2 => Self::Mds,
            4 => Self::Osd,
            8 => Self::Client,
            0x20 => Self::Auth,
            0x80 => Self::Mgr,
            other => return Err(DecodeError::UnknownEntityType(other)),
        })
    }

    /// The lower-case name Ceph prints (`mon`, `osd`, …).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Mon => "mon",
            Self::Mds => "mds",
            Self::Osd => "osd",
            Self::Client => "client",
            Self::Auth => "auth",
            Self::Mgr => "mgr",
        }
    }

    /// The type a name stands for, of those an [`EntityName`] is parsed from: `mon`,
    /// `mds`, `osd`, `client`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "mon" => Some(Self::Mon),
            "mds" => Some(Self::Mds),
            "osd" => Some(Self::Osd),
            "client" => Some(Self::Client),
            _ => None,
        }
    }
}

/// A source or destination entity: type plus number (`client.4242`, `osd.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntityName {
    /// What kind of entity.
    pub ty: EntityType,
    /// Its number (a client's global id, an OSD's id).
    pub num: u64,
}

impl EntityName {
    /// A client with the given number.
    #[must_use]
    pub const fn client(num: u64) -> Self {
        Self {
            ty: EntityType::Client,
            num,
        }
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.ty.name(), self.num)
    }
}

/// Error from parsing an [`EntityName`] written as `TYPE.NUM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEntityError(String);

impl fmt::Display for ParseEntityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad entity name {:?}: expected TYPE.NUM with TYPE one of mon, mds, osd, client",
            self.0
        )
    }
}

impl std::error::Error for ParseEntityError {}

impl FromStr for EntityName {
    type Err = ParseEntityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseEntityError(s.to_owned());
        let (ty, num) = s.split_once('.').ok_or_else(err)?;
        let ty = EntityType::from_name(ty).ok_or_else(err)?;
        let num = num.parse().map_err(|_| err())?;
        Ok(Self { ty, num })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let e: EntityName = "osd.12".parse().unwrap();
        assert_eq!(e.ty, EntityType::Osd);
        assert_eq!(e.num, 12);
        assert_eq!(e.to_string(), "osd.12");
        assert!("osd".parse::<EntityName>().is_err());
        assert!("disk.1".parse::<EntityName>().is_err());
        assert!("mon.-1".parse::<EntityName>().is_err());
    }

    #[test]
    fn type_round_trip() {
        for t in [
            EntityType::Mon,
            EntityType::Mds,
            EntityType::Osd,
            EntityType::Client,
            EntityType::Auth,
            EntityType::Mgr,
        ] {
            assert_eq!(EntityType::from_u8(t.to_u8()), Ok(t));
        }
        assert_eq!(
            EntityType::from_u8(3),
            Err(DecodeError::UnknownEntityType(3))
        );
    }
}
