//! RFC 8009 `aes256-cts-hmac-sha384-192` (Kerberos enctype 20): the cipher behind
//! Ceph's `CEPH_CRYPTO_AES256KRB5` keys.
//!
//! Upstream: ceph/ceph `src/auth/Crypto.cc` `CryptoAES256KRB5KeyHandler` (OpenSSL
//! `AES-256-CBC-CTS` with `CS3`, HMAC-SHA384), torvalds/linux `net/ceph/crypto.c`
//! `ceph_krb5_encrypt`/`ceph_krb5_decrypt` (the kernel's `crypto_krb5` library).
//!
//! - Key derivation (RFC 8009 §3, `KDF-HMAC-SHA2`):
//!   `K = HMAC-SHA384(base, 00000001 | label | 00 | BE32(bits))[..bits/8]`, with
//!   label = `BE32(usage) | kind`: kind `0xAA` gives Ke (32 bytes, encryption), `0x55`
//!   Ki (24 bytes, integrity), `0x99` Kc (24 bytes, checksums).
//! - Encryption (RFC 8009 §5): `C = AES-256-CTS(Ke, IV = 0, confounder | P)`,
//!   `H = HMAC-SHA384(Ki, IV | C)[..24]`, output `C | H` — 16 + len(P) + 24 bytes.
//! - Decryption checks `H` (in constant time) before it decrypts, then drops the
//!   16-byte confounder.
//!
//! CTS is CBC with ciphertext stealing, "CS3" in NIST's naming: the last two blocks
//! are always swapped (also when the input is a whole number of blocks), the final
//! one truncated. It is written here over the `aes` block cipher; one block of input is
//! a single CBC block.
//!
//! Everything here works on base-key bytes so the RFC's vectors can be run directly;
//! [`CryptoKey`](super::CryptoKey) wraps it for Ceph keys.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes256;
use hmac::{Hmac, Mac};
use sha2::Sha384;
use zeroize::{Zeroize, Zeroizing};

use super::error::{AuthError, Result};
use super::key::KeyType;

/// AES block size and confounder length.
pub const BLOCK_LEN: usize = 16;
/// Length of the truncated HMAC-SHA384 that ends every ciphertext (192 bits).
pub const MAC_LEN: usize = 24;
/// Length of the derived encryption key Ke.
pub const KE_LEN: usize = 32;
/// Length of the derived integrity key Ki (and of the checksum key Kc).
pub const KI_LEN: usize = 24;
/// KDF label byte for the encryption key Ke.
pub const KIND_KE: u8 = 0xAA;
/// KDF label byte for the integrity key Ki.
pub const KIND_KI: u8 = 0x55;
/// KDF label byte for the checksum key Kc.
pub const KIND_KC: u8 = 0x99;

type HmacSha384 = Hmac<Sha384>;

fn hmac384(key: &[u8]) -> HmacSha384 {
    // HMAC accepts keys of any length.
    <HmacSha384 as Mac>::new_from_slice(key).expect("HMAC takes any key length")
}

/// RFC 8009 §3 `KDF-HMAC-SHA2(key, label, k)` with SHA-384, for `len` ≤ 48 bytes
/// (`k` = `len` × 8 bits): the first `len` bytes of
/// `HMAC-SHA384(key, 00 00 00 01 | label | 00 | BE32(k))`.
///
/// # Panics
/// If `len` > 48 (one HMAC-SHA384 output; RFC 8009 never asks for more).
pub fn kdf_hmac_sha384(key: &[u8], label: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    assert!(
        len <= 48,
        "KDF-HMAC-SHA2 with SHA-384 yields at most 48 bytes here"
    );
    let mut mac = hmac384(key);
    mac.update(&1u32.to_be_bytes());
    mac.update(label);
    mac.update(&[0]);
    mac.update(&((len as u32) * 8).to_be_bytes());
    let mut full = mac.finalize().into_bytes();
    let out = Zeroizing::new(full[..len].to_vec());
    full.as_mut_slice().zeroize();
    out
}

/// The key derived from `base` for `usage` and `kind` ([`KIND_KE`], [`KIND_KI`],
/// [`KIND_KC`]): label = `BE32(usage) | kind`.
pub fn derive(base: &[u8], usage: u32, kind: u8, len: usize) -> Zeroizing<Vec<u8>> {
    let mut label = [0u8; 5];
    label[..4].copy_from_slice(&usage.to_be_bytes());
    label[4] = kind;
    kdf_hmac_sha384(base, &label, len)
}

/// HMAC-SHA384(Ki, IV(16 zero bytes) | data), truncated to 24 bytes.
fn integrity(ki: &[u8], data: &[u8]) -> HmacSha384 {
    let mut mac = hmac384(ki);
    mac.update(&[0u8; BLOCK_LEN]);
    mac.update(data);
    mac
}

fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

/// AES-256-CBC-CTS (CS3) encryption in place; `data.len()` ≥ 16.
fn cts_encrypt(cipher: &Aes256, iv: &[u8; BLOCK_LEN], data: &mut Vec<u8>) {
    let n = data.len();
    debug_assert!(n >= BLOCK_LEN);
    let m = n.div_ceil(BLOCK_LEN);
    let r = n - BLOCK_LEN * (m - 1);
    data.resize(m * BLOCK_LEN, 0);
    let mut prev = *iv;
    for block in data.chunks_exact_mut(BLOCK_LEN) {
        xor_into(block, &prev);
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
        prev.copy_from_slice(block);
    }
    if m > 1 {
        let (head, last) = data.split_at_mut((m - 1) * BLOCK_LEN);
        head[(m - 2) * BLOCK_LEN..].swap_with_slice(last);
        data.truncate((m - 1) * BLOCK_LEN + r);
    }
    prev.zeroize();
}

/// AES-256-CBC-CTS (CS3) decryption in place; `data.len()` ≥ 16.
fn cts_decrypt(cipher: &Aes256, iv: &[u8; BLOCK_LEN], data: &mut [u8]) {
    let n = data.len();
    debug_assert!(n >= BLOCK_LEN);
    let m = n.div_ceil(BLOCK_LEN);
    let r = n - BLOCK_LEN * (m - 1);
    let mut prev = *iv;
    // Every block but the last two is plain CBC.
    let plain_cbc = if m == 1 { 1 } else { m - 2 };
    let mut saved = [0u8; BLOCK_LEN];
    for block in data[..plain_cbc * BLOCK_LEN].chunks_exact_mut(BLOCK_LEN) {
        saved.copy_from_slice(block);
        cipher.decrypt_block(GenericArray::from_mut_slice(block));
        xor_into(block, &prev);
        prev = saved;
    }
    if m > 1 {
        let (body, tail) = data.split_at_mut((m - 1) * BLOCK_LEN);
        let stolen = &mut body[(m - 2) * BLOCK_LEN..];
        // `stolen` is the encrypted last (zero-padded) block; `tail` the first r bytes
        // of the encrypted second-to-last block.
        let mut d = [0u8; BLOCK_LEN];
        d.copy_from_slice(stolen);
        cipher.decrypt_block(GenericArray::from_mut_slice(&mut d));
        // The second-to-last ciphertext block as CBC produced it.
        let mut c_prev = [0u8; BLOCK_LEN];
        c_prev[..r].copy_from_slice(tail);
        c_prev[r..].copy_from_slice(&d[r..]);
        // Last plaintext block: D(stolen) ^ that block, first r bytes.
        for i in 0..r {
            tail[i] ^= d[i];
        }
        // tail held c_prev[..r]; now holds d[..r] ^ c_prev[..r] = the plaintext.
        stolen.copy_from_slice(&c_prev);
        cipher.decrypt_block(GenericArray::from_mut_slice(stolen));
        xor_into(stolen, &prev);
        d.zeroize();
    }
    prev.zeroize();
    saved.zeroize();
}

/// RFC 8009 encryption with a given confounder: `CTS(Ke, confounder | plaintext) | H`.
///
/// Deterministic; used by [`CryptoKey::encrypt`](super::CryptoKey::encrypt) with 16
/// random bytes, and by the known-answer tests with the RFC's confounders.
pub fn encrypt_with_confounder(
    base: &[u8],
    usage: u32,
    confounder: &[u8; BLOCK_LEN],
    plaintext: &[u8],
) -> Vec<u8> {
    let ke = derive(base, usage, KIND_KE, KE_LEN);
    let ki = derive(base, usage, KIND_KI, KI_LEN);
    let cipher = Aes256::new(GenericArray::from_slice(&ke));
    let mut out = Vec::with_capacity(BLOCK_LEN + plaintext.len() + MAC_LEN);
    out.extend_from_slice(confounder);
    out.extend_from_slice(plaintext);
    cts_encrypt(&cipher, &[0; BLOCK_LEN], &mut out);
    let tag = integrity(&ki, &out).finalize().into_bytes();
    out.extend_from_slice(&tag[..MAC_LEN]);
    out
}

/// RFC 8009 decryption: verify the 24-byte HMAC, decrypt, drop the confounder.
pub fn decrypt(base: &[u8], usage: u32, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if ciphertext.len() < BLOCK_LEN + MAC_LEN {
        return Err(AuthError::CiphertextLength {
            key_type: KeyType::Aes256Krb5,
            len: ciphertext.len(),
        });
    }
    let (body, tag) = ciphertext.split_at(ciphertext.len() - MAC_LEN);
    let ki = derive(base, usage, KIND_KI, KI_LEN);
    integrity(&ki, body)
        .verify_truncated_left(tag)
        .map_err(|_| AuthError::BadMac)?;
    let ke = derive(base, usage, KIND_KE, KE_LEN);
    let cipher = Aes256::new(GenericArray::from_slice(&ke));
    let mut plain = Zeroizing::new(body.to_vec());
    cts_decrypt(&cipher, &[0; BLOCK_LEN], &mut plain);
    plain.drain(..BLOCK_LEN);
    Ok(plain)
}

/// RFC 8009 §6 checksum (`hmac-sha384-192-aes256`): `HMAC-SHA384(Kc, data)[..24]`.
/// Ceph does not use it; it is here for the RFC's checksum vector, which checks the
/// KDF with a third kind byte.
pub fn checksum(base: &[u8], usage: u32, data: &[u8]) -> [u8; MAC_LEN] {
    let kc = derive(base, usage, KIND_KC, KI_LEN);
    let mut mac = hmac384(&kc);
    mac.update(data);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CTS round trip at every length from 1 to 5 blocks, against the definition:
    /// whole-block inputs equal CBC with the last two blocks swapped.
    #[test]
    fn cts_round_trip_every_length() {
        let cipher = Aes256::new(GenericArray::from_slice(&[7u8; 32]));
        let iv = [3u8; 16];
        for n in 16..=80 {
            let plain: Vec<u8> = (0..n as u8).collect();
            let mut ct = plain.clone();
            cts_encrypt(&cipher, &iv, &mut ct);
            assert_eq!(ct.len(), n);
            let mut back = ct.clone();
            cts_decrypt(&cipher, &iv, &mut back);
            assert_eq!(back, plain, "length {n}");
        }
    }
}
