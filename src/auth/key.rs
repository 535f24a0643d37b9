//! [`CryptoKey`]: a Ceph secret with its type, as stored in keyrings and tickets.

use std::fmt;

use base64::Engine as _;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::{AuthError, Result};
use super::rfc8009;

/// `CEPH_CRYPTO_AES`: CryptoAES, AES-128-CBC with a fixed IV.
pub const CEPH_CRYPTO_AES: u16 = 1;
/// `CEPH_CRYPTO_AES256KRB5`: RFC 8009 aes256-cts-hmac-sha384-192 (Ceph 19.2.6 / 20.2.4+).
pub const CEPH_CRYPTO_AES256KRB5: u16 = 2;
/// `CEPH_AES_IV`: the fixed IV of CryptoAES.
pub const CEPH_AES_IV: &[u8; 16] = b"cephsageyudagreg";

const AES_BLOCK: usize = 16;

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;
type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

/// The type of a [`CryptoKey`] (the first le16 of its encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `CEPH_CRYPTO_AES` (1): CryptoAES — AES-128-CBC, IV `cephsageyudagreg`, PKCS#7.
    /// 16-byte secrets (keyring keys are 40 base64 characters starting `AQ`).
    Aes,
    /// `CEPH_CRYPTO_AES256KRB5` (2, `aes256k`): RFC 8009 enctype 20 with per-usage
    /// derived keys. 32-byte secrets (60 base64 characters starting `Ag`).
    Aes256Krb5,
}

impl KeyType {
    /// The wire number (`CEPH_CRYPTO_*`).
    pub const fn wire(self) -> u16 {
        match self {
            KeyType::Aes => CEPH_CRYPTO_AES,
            KeyType::Aes256Krb5 => CEPH_CRYPTO_AES256KRB5,
        }
    }

    /// The type for a wire number; 0 (`CEPH_CRYPTO_NONE`) and unknown numbers are
    /// [`AuthError::UnsupportedKeyType`].
    pub fn from_wire(t: u16) -> Result<Self> {
        match t {
            CEPH_CRYPTO_AES => Ok(KeyType::Aes),
            CEPH_CRYPTO_AES256KRB5 => Ok(KeyType::Aes256Krb5),
            other => Err(AuthError::UnsupportedKeyType(other)),
        }
    }

    /// The shortest secret upstream's `validate_secret` accepts: 16 for AES, 32 for
    /// AES256KRB5. (New keys are exactly that long.)
    pub const fn min_secret_len(self) -> usize {
        match self {
            KeyType::Aes => 16,
            KeyType::Aes256Krb5 => 32,
        }
    }

    /// Upstream's name (`CryptoManager::get_key_type`, `--key-type`): `aes`, `aes256k`.
    pub const fn name(self) -> &'static str {
        match self {
            KeyType::Aes => "aes",
            KeyType::Aes256Krb5 => "aes256k",
        }
    }

    /// Ciphertext length for `plaintext_len` bytes (kernel `ceph_crypt_buflen`):
    /// AES `(n & !15) + 16` (always 1..=16 bytes of padding), AES256KRB5 `16 + n + 24`.
    pub const fn encrypted_len(self, plaintext_len: usize) -> usize {
        match self {
            KeyType::Aes => (plaintext_len & !(AES_BLOCK - 1)) + AES_BLOCK,
            KeyType::Aes256Krb5 => rfc8009::BLOCK_LEN + plaintext_len + rfc8009::MAC_LEN,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Ceph's `utime_t` as encoded: le32 seconds, le32 nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UTime {
    /// Seconds since the Unix epoch.
    pub sec: u32,
    /// Nanoseconds.
    pub nsec: u32,
}

/// A Ceph secret key (`CryptoKey` in ceph/ceph `src/auth/Crypto.{h,cc}`,
/// `ceph_crypto_key` in linux `net/ceph/crypto.h`).
///
/// Encoding (`CryptoKey::encode`): le16 type, [`UTime`] created, le16 length, secret.
/// A keyring's `key = …` is that encoding in standard base64.
///
/// The secret is zeroized when the key is dropped, and never printed: `Debug` shows the
/// type and the secret's length only. [`secret`](Self::secret) hands out the bytes for
/// the places that need them raw (the msgr2 AUTH_SIGNATURE HMAC key).
#[derive(Clone)]
pub struct CryptoKey {
    key_type: KeyType,
    created: UTime,
    secret: Zeroizing<Vec<u8>>,
}

impl ZeroizeOnDrop for CryptoKey {}

impl fmt::Debug for CryptoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoKey")
            .field("type", &self.key_type)
            .field("len", &self.secret.len())
            .finish()
    }
}

/// Constant-time in the secret's bytes (lengths and types are not secret).
impl PartialEq for CryptoKey {
    fn eq(&self, other: &Self) -> bool {
        if self.key_type != other.key_type
            || self.created != other.created
            || self.secret.len() != other.secret.len()
        {
            return false;
        }
        let diff = self
            .secret
            .iter()
            .zip(other.secret.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

impl Eq for CryptoKey {}

impl CryptoKey {
    /// A key from its parts; the secret must be at least
    /// [`KeyType::min_secret_len`] bytes (and at most 65535, the le16 length field).
    pub fn new(key_type: KeyType, created: UTime, secret: &[u8]) -> Result<Self> {
        let min = key_type.min_secret_len();
        if secret.len() < min {
            return Err(AuthError::SecretTooShort {
                key_type,
                len: secret.len(),
                min,
            });
        }
        if secret.len() > u16::MAX as usize {
            return Err(AuthError::SecretTooLong { len: secret.len() });
        }
        Ok(CryptoKey {
            key_type,
            created,
            secret: Zeroizing::new(secret.to_vec()),
        })
    }

    /// Decode one key from the front of `input` (`CryptoKey::decode`), advancing it
    /// past the key. Used for keyrings and for the session keys inside tickets.
    pub fn decode(input: &mut &[u8]) -> Result<Self> {
        const HEAD: usize = 2 + 8 + 2;
        if input.len() < HEAD {
            return Err(AuthError::Truncated {
                what: "CryptoKey header",
                needed: HEAD,
                available: input.len(),
            });
        }
        let b = *input;
        let t = u16::from_le_bytes([b[0], b[1]]);
        let sec = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        let nsec = u32::from_le_bytes([b[6], b[7], b[8], b[9]]);
        let len = u16::from_le_bytes([b[10], b[11]]) as usize;
        if b.len() < HEAD + len {
            return Err(AuthError::Truncated {
                what: "CryptoKey secret",
                needed: len,
                available: b.len() - HEAD,
            });
        }
        let key_type = KeyType::from_wire(t)?;
        let key = CryptoKey::new(key_type, UTime { sec, nsec }, &b[HEAD..HEAD + len])?;
        *input = &b[HEAD + len..];
        Ok(key)
    }

    /// Decode a key that is exactly `bytes`, nothing after it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut rest = bytes;
        let key = CryptoKey::decode(&mut rest)?;
        if !rest.is_empty() {
            return Err(AuthError::TrailingBytes { extra: rest.len() });
        }
        Ok(key)
    }

    /// Append the encoding (`CryptoKey::encode`) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key_type.wire().to_le_bytes());
        out.extend_from_slice(&self.created.sec.to_le_bytes());
        out.extend_from_slice(&self.created.nsec.to_le_bytes());
        out.extend_from_slice(&(self.secret.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.secret);
    }

    /// The encoding as a fresh buffer, zeroized when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(12 + self.secret.len()));
        self.encode(&mut out);
        out
    }

    /// Decode a keyring `key = …` value: standard base64 (with padding) of the
    /// encoding. Surrounding whitespace is ignored.
    pub fn from_base64(text: &str) -> Result<Self> {
        let text = text.trim();
        // Reserve enough up front so the decoder never reallocates (which would leave
        // an unzeroized copy behind).
        let mut raw = Zeroizing::new(Vec::with_capacity(text.len() / 4 * 3 + 3));
        base64::engine::general_purpose::STANDARD
            .decode_vec(text, &mut raw)
            .map_err(|_| AuthError::Base64)?;
        CryptoKey::from_bytes(&raw)
    }

    /// The keyring form (`CryptoKey::encode_base64`), zeroized when dropped.
    pub fn to_base64(&self) -> Zeroizing<String> {
        let raw = self.to_bytes();
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&raw[..]))
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// When the key was created.
    pub fn created(&self) -> UTime {
        self.created
    }

    /// The raw secret. Needed as the HMAC key of msgr2 AUTH_SIGNATURE; do not log it.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// Ciphertext length for `plaintext_len` bytes ([`KeyType::encrypted_len`]).
    pub fn encrypted_len(&self, plaintext_len: usize) -> usize {
        self.key_type.encrypted_len(plaintext_len)
    }

    /// Encrypt `plaintext` (`CryptoKey::encrypt_ext(cct, usage, …)` upstream).
    ///
    /// AES: AES-128-CBC with key `secret[0..16]`, IV `cephsageyudagreg`, PKCS#7;
    /// deterministic, `usage` ignored (as upstream). AES256KRB5: RFC 8009 with keys
    /// derived for `usage` (see [`crate::auth`] for which usage goes where) and 16 fresh
    /// random bytes of confounder.
    pub fn encrypt(&self, usage: u32, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut confounder = [0u8; rfc8009::BLOCK_LEN];
        if self.key_type == KeyType::Aes256Krb5 {
            getrandom::fill(&mut confounder).map_err(|_| AuthError::Random)?;
        }
        let out = self.encrypt_with_confounder(usage, plaintext, &confounder);
        confounder.zeroize();
        Ok(out)
    }

    /// [`encrypt`](Self::encrypt) with a chosen confounder (upstream `encrypt_ext`'s
    /// `confounder` argument; AES ignores it). Deterministic: for tests and replay.
    pub fn encrypt_with_confounder(
        &self,
        usage: u32,
        plaintext: &[u8],
        confounder: &[u8; 16],
    ) -> Vec<u8> {
        match self.key_type {
            KeyType::Aes => aes_cbc_encrypt(&self.secret[..16], plaintext),
            KeyType::Aes256Krb5 => {
                rfc8009::encrypt_with_confounder(&self.secret, usage, confounder, plaintext)
            }
        }
    }

    /// Decrypt `ciphertext` (`CryptoKey::decrypt_ext(cct, usage, …)`).
    ///
    /// AES: the length must be a positive multiple of 16 and the PKCS#7 padding valid
    /// (pad byte 1..=16, every pad byte equal), else [`AuthError::BadPadding`] — the
    /// kernel's strictness (`ceph_aes_crypt`); userspace Ceph silently strips
    /// `min(last byte, 16)` bytes instead, which accepts a superset. AES256KRB5: the MAC
    /// must verify for `usage`, else [`AuthError::BadMac`].
    pub fn decrypt(&self, usage: u32, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match self.key_type {
            KeyType::Aes => aes_cbc_decrypt(&self.secret[..16], ciphertext),
            KeyType::Aes256Krb5 => rfc8009::decrypt(&self.secret, usage, ciphertext),
        }
    }

    /// HMAC-SHA256 keyed with the whole secret (`CryptoKeyHandler::hmac_sha256`): the
    /// msgr2 AUTH_SIGNATURE over the pre-auth bytes, with the session key.
    pub fn hmac_sha256(&self, data: &[u8]) -> [u8; 32] {
        super::hmac_sha256(&self.secret, data)
    }
}

/// CryptoAES encryption: AES-128-CBC, IV `cephsageyudagreg`, PKCS#7 (always 1..=16
/// bytes of padding).
fn aes_cbc_encrypt(key: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let n = plaintext.len();
    let mut buf = vec![0u8; KeyType::Aes.encrypted_len(n)];
    buf[..n].copy_from_slice(plaintext);
    let enc = Aes128CbcEnc::new_from_slices(key, CEPH_AES_IV).expect("16-byte key and IV");
    let len = enc
        .encrypt_padded_mut::<Pkcs7>(&mut buf, n)
        .expect("buffer sized for the padding")
        .len();
    debug_assert_eq!(len, buf.len());
    buf
}

/// CryptoAES decryption with a strict PKCS#7 check.
fn aes_cbc_decrypt(key: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if ciphertext.is_empty() || ciphertext.len() % AES_BLOCK != 0 {
        return Err(AuthError::CiphertextLength {
            key_type: KeyType::Aes,
            len: ciphertext.len(),
        });
    }
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let dec = Aes128CbcDec::new_from_slices(key, CEPH_AES_IV).expect("16-byte key and IV");
    let len = dec
        .decrypt_padded_mut::<Pkcs7>(&mut buf)
        .map_err(|_| AuthError::BadPadding)?
        .len();
    // Wipe the padding bytes before they go out of view.
    buf[len..].zeroize();
    buf.truncate(len);
    Ok(buf)
}

/// HMAC-SHA256 of `data` with `key`.
pub(super) fn hmac_sha256_raw(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}
