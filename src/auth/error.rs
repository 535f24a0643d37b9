//! The one error type of [`crate::auth`].

use std::fmt;

use super::key::KeyType;

/// Everything that can go wrong in [`crate::auth`].
///
/// No variant ever carries key material: not the secret, not its base64 form, not a
/// line of a keyring file. Keyring and `ceph.conf` errors name the line number only.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// A `key = …` value is not valid standard base64.
    Base64,
    /// The input ended before `what` was complete.
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes there were.
        available: usize,
    },
    /// Bytes left over after a complete encoded key.
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A key type this crate does not implement (0 = CEPH_CRYPTO_NONE, or unknown).
    UnsupportedKeyType(u16),
    /// The secret is shorter than the key type requires (`validate_secret` upstream).
    SecretTooShort {
        /// The key's type.
        key_type: KeyType,
        /// The secret's length.
        len: usize,
        /// The minimum for that type (16 for AES, 32 for AES256KRB5).
        min: usize,
    },
    /// A secret longer than the le16 length field can say (65535 bytes).
    SecretTooLong {
        /// The secret's length.
        len: usize,
    },
    /// A ciphertext whose length cannot come from this key type: for AES not a positive
    /// multiple of 16, for AES256KRB5 shorter than confounder + MAC (40 bytes).
    CiphertextLength {
        /// The key's type.
        key_type: KeyType,
        /// The ciphertext's length.
        len: usize,
    },
    /// CryptoAES decryption found invalid PKCS#7 padding (wrong key or corrupted data).
    BadPadding,
    /// AES256KRB5 decryption: the HMAC-SHA384-192 over the ciphertext does not match
    /// (wrong key, wrong key usage, or tampered data).
    BadMac,
    /// The cephx envelope's magic is not `AUTH_ENC_MAGIC` (wrong key, most likely).
    BadMagic(u64),
    /// The operating system's random source failed (RFC 8009 confounder).
    Random,
    /// A keyring file line that cannot be parsed.
    Keyring {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A keyring `key = …` line whose key does not decode.
    KeyringKey {
        /// 1-based line number.
        line: usize,
        /// Why the key does not decode (never the key itself).
        source: Box<AuthError>,
    },
    /// A `ceph.conf` line that cannot be parsed.
    Conf {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `ceph.conf` option whose value is not valid for that option.
    ConfValue {
        /// The normalised option name (`mon_host`, `ms_client_mode`, …).
        option: &'static str,
        /// The offending item of the value.
        item: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Base64 => f.write_str("key is not valid base64"),
            AuthError::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "truncated {what}: needs {needed} bytes, {available} available"
            ),
            AuthError::TrailingBytes { extra } => {
                write!(f, "{extra} unexpected bytes after the encoded key")
            }
            AuthError::UnsupportedKeyType(t) => write!(f, "unsupported key type {t}"),
            AuthError::SecretTooShort { key_type, len, min } => write!(
                f,
                "{key_type} secret of {len} bytes is too short (needs at least {min})"
            ),
            AuthError::SecretTooLong { len } => {
                write!(f, "secret of {len} bytes does not fit a le16 length")
            }
            AuthError::CiphertextLength { key_type, len } => {
                write!(
                    f,
                    "{len}-byte ciphertext is impossible for a {key_type} key"
                )
            }
            AuthError::BadPadding => f.write_str("bad padding after decryption"),
            AuthError::BadMac => f.write_str("integrity check (HMAC) failed"),
            AuthError::BadMagic(m) => {
                write!(f, "bad magic in decrypted envelope: {m:#018x}")
            }
            AuthError::Random => f.write_str("the system random source failed"),
            AuthError::Keyring { line, reason } => write!(f, "keyring line {line}: {reason}"),
            AuthError::KeyringKey { line, source } => {
                write!(f, "keyring line {line}: bad key: {source}")
            }
            AuthError::Conf { line, reason } => write!(f, "ceph.conf line {line}: {reason}"),
            AuthError::ConfValue {
                option,
                item,
                reason,
            } => write!(f, "ceph.conf {option}: {item:?}: {reason}"),
        }
    }
}

impl std::error::Error for AuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthError::KeyringKey { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// `Result` with [`AuthError`].
pub type Result<T> = std::result::Result<T, AuthError>;
