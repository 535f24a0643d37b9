//! The cephx encryption envelope and the client/server challenge
//! (ceph/ceph `src/auth/cephx/CephxProtocol.{h,cc}`, linux `net/ceph/auth_x.c`).

use zeroize::{Zeroize, Zeroizing};

use super::error::{AuthError, Result};
use super::key::{CryptoKey, KeyType};

/// `AUTH_ENC_MAGIC` (`CEPHX_ENC_MAGIC` in the kernel): the le64 after the envelope's
/// struct_v byte, checked on every decryption.
pub const AUTH_ENC_MAGIC: u64 = 0xff00_9cad_8826_aa55;

/// The envelope's struct_v byte as written (upstream writes 1; readers do not check it).
pub const ENVELOPE_STRUCT_V: u8 = 1;

/// Bytes the envelope adds in front of the payload: u8 struct_v + le64 magic.
pub const ENVELOPE_LEN: usize = 9;

fn envelope(payload: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut plain = Zeroizing::new(Vec::with_capacity(ENVELOPE_LEN + payload.len()));
    plain.push(ENVELOPE_STRUCT_V);
    plain.extend_from_slice(&AUTH_ENC_MAGIC.to_le_bytes());
    plain.extend_from_slice(payload);
    plain
}

/// `encode_encrypt_enc_bl(t, key)`: `E_key(u8 1 | le64 AUTH_ENC_MAGIC | payload)`,
/// the raw ciphertext with no length prefix. `payload` is the already-encoded `t`.
///
/// Used bare where upstream puts it inside another blob: the CephXAuthorizeChallenge
/// (msgr2 AUTH_REPLY_MORE from a service, msgr1 TAG_CHALLENGE_AUTHORIZER) and the
/// legacy msgr1 signature.
pub fn encode_encrypt_enc_bl(key: &CryptoKey, usage: u32, payload: &[u8]) -> Result<Vec<u8>> {
    key.encrypt(usage, &envelope(payload))
}

/// [`encode_encrypt_enc_bl`] with a chosen AES256KRB5 confounder (ignored for AES):
/// deterministic, for tests.
pub fn encode_encrypt_enc_bl_with_confounder(
    key: &CryptoKey,
    usage: u32,
    payload: &[u8],
    confounder: &[u8; 16],
) -> Vec<u8> {
    key.encrypt_with_confounder(usage, &envelope(payload), confounder)
}

/// `encode_encrypt(t, key)`: the [`encode_encrypt_enc_bl`] ciphertext as a blob,
/// `le32 length | ciphertext`.
pub fn encode_encrypt(key: &CryptoKey, usage: u32, payload: &[u8]) -> Result<Vec<u8>> {
    Ok(blob(encode_encrypt_enc_bl(key, usage, payload)?))
}

/// [`encode_encrypt`] with a chosen AES256KRB5 confounder (ignored for AES).
pub fn encode_encrypt_with_confounder(
    key: &CryptoKey,
    usage: u32,
    payload: &[u8],
    confounder: &[u8; 16],
) -> Vec<u8> {
    blob(encode_encrypt_enc_bl_with_confounder(
        key, usage, payload, confounder,
    ))
}

fn blob(ct: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + ct.len());
    out.extend_from_slice(&(ct.len() as u32).to_le_bytes());
    out.extend_from_slice(&ct);
    out
}

/// `decode_decrypt_enc_bl`: decrypt `ciphertext` (no length prefix), read struct_v
/// (any value), check the magic, and return the encoded `t` that follows it.
pub fn decode_decrypt_enc_bl(
    key: &CryptoKey,
    usage: u32,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let mut plain = key.decrypt(usage, ciphertext)?;
    if plain.len() < ENVELOPE_LEN {
        return Err(AuthError::Truncated {
            what: "cephx envelope",
            needed: ENVELOPE_LEN,
            available: plain.len(),
        });
    }
    let mut m = [0u8; 8];
    m.copy_from_slice(&plain[1..ENVELOPE_LEN]);
    let magic = u64::from_le_bytes(m);
    if magic != AUTH_ENC_MAGIC {
        return Err(AuthError::BadMagic(magic));
    }
    plain[..ENVELOPE_LEN].zeroize();
    plain.drain(..ENVELOPE_LEN);
    Ok(plain)
}

/// `decode_decrypt`: read a blob (`le32 length | ciphertext`) from the front of
/// `input`, advance past it, and [`decode_decrypt_enc_bl`] it.
pub fn decode_decrypt(
    key: &CryptoKey,
    usage: u32,
    input: &mut &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let b = *input;
    if b.len() < 4 {
        return Err(AuthError::Truncated {
            what: "encrypted blob length",
            needed: 4,
            available: b.len(),
        });
    }
    let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if b.len() - 4 < len {
        return Err(AuthError::Truncated {
            what: "encrypted blob",
            needed: len,
            available: b.len() - 4,
        });
    }
    let out = decode_decrypt_enc_bl(key, usage, &b[4..4 + len])?;
    *input = &b[4 + len..];
    Ok(out)
}

/// XOR of the little-endian u64 words of `bytes` at offsets 0, 8, 16, … while a whole
/// word fits (`for (pos = 0; pos + 8 <= len; pos += 8) k ^= le64(p + pos)`); a tail
/// shorter than 8 bytes is ignored.
pub fn xor_fold_le64(bytes: &[u8]) -> u64 {
    bytes.chunks_exact(8).fold(0, |k, w| {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        k ^ u64::from_le_bytes(a)
    })
}

/// `encode(CephXChallengeBlob{server_challenge, client_challenge})`: two le64.
pub fn challenge_blob(server_challenge: u64, client_challenge: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&server_challenge.to_le_bytes());
    b[8..].copy_from_slice(&client_challenge.to_le_bytes());
    b
}

/// `cephx_calc_client_server_challenge`: the `key` field of CephXAuthenticate, which
/// proves knowledge of the client secret.
///
/// - AES: `enc = encode_encrypt(CephXChallengeBlob, secret)` — **le32 length (32) +
///   32 bytes of ciphertext**, 36 bytes — and `key` = [`xor_fold_le64`]`(enc)`: the
///   words at 0, 8, 16, 24, so the length prefix is folded in and the last 4 ciphertext
///   bytes are not (userspace and kernel alike; confirmed against a 16.2.15 mon).
/// - AES256KRB5 (ceph commit dc66b29f "modify client + server challenges hashing";
///   linux `ceph_hmac_sha256`): the blob is not encrypted (its random confounder would
///   make the answer unpredictable) but MACed: `key` =
///   [`xor_fold_le64`]`(HMAC-SHA256(secret, blob))`. Read in source only.
pub fn cephx_calc_client_server_challenge(
    secret: &CryptoKey,
    server_challenge: u64,
    client_challenge: u64,
) -> Result<u64> {
    let blob = challenge_blob(server_challenge, client_challenge);
    match secret.key_type() {
        KeyType::Aes => Ok(xor_fold_le64(&encode_encrypt(secret, 0, &blob)?)),
        KeyType::Aes256Krb5 => {
            let mut mac = secret.hmac_sha256(&blob);
            let k = xor_fold_le64(&mac);
            mac.zeroize();
            Ok(k)
        }
    }
}
