//! Keyring files (`KeyRing::decode_plaintext` upstream).

use super::conf::parse_ini;
use super::error::{AuthError, Result};
use super::key::CryptoKey;

/// The keys of a keyring file, by entity name.
///
/// ```text
/// [client.admin]
///     key = AQ…==
///     caps mon = "allow *"
/// ```
///
/// Several entities per file; `#`/`;` comments; any whitespace; `caps …` and every
/// other option but `key` ignored; an entity without a `key` is skipped; the same
/// entity twice: the later one wins (as upstream's map insert). Errors name the line
/// only, never its text.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    entries: Vec<(String, CryptoKey)>,
}

/// Entity names and key types only.
impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(n, k)| (n, k.key_type())))
            .finish()
    }
}

impl Keyring {
    /// Parse the text of a keyring file.
    pub fn parse(text: &str) -> Result<Self> {
        let sections = parse_ini(text).map_err(|e| match e {
            AuthError::Conf { line, reason } => AuthError::Keyring { line, reason },
            other => other,
        })?;
        let mut ring = Keyring::default();
        for s in sections {
            let Some(entry) = s.entries.iter().rev().find(|e| e.key == "key") else {
                continue;
            };
            let key = CryptoKey::from_base64(&entry.value).map_err(|e| AuthError::KeyringKey {
                line: entry.line,
                source: Box::new(e),
            })?;
            ring.insert(s.name, key);
        }
        Ok(ring)
    }

    /// Add or replace the key of `entity`.
    pub fn insert(&mut self, entity: String, key: CryptoKey) {
        match self.entries.iter_mut().find(|(n, _)| *n == entity) {
            Some(slot) => slot.1 = key,
            None => self.entries.push((entity, key)),
        }
    }

    /// The key of `entity` (`client.admin`, `osd.0`, `mon.`).
    pub fn get(&self, entity: &str) -> Option<&CryptoKey> {
        self.entries
            .iter()
            .find(|(n, _)| n == entity)
            .map(|(_, k)| k)
    }

    /// Entity names in file order.
    pub fn entities(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// Number of entities with a key.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
