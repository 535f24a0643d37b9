//! Key material and crypto for cephx, message signing and msgr2 secure mode — pure
//! functions over bytes, no handshake state.
//!
//! | piece | what it is for | upstream |
//! |---|---|---|
//! | [`CryptoKey`], [`KeyType`] | a secret and its type; keyring base64 form; `encrypt`/`decrypt` | `CryptoKey` (ceph `src/auth/Crypto.cc`), `ceph_crypto_key` (linux `net/ceph/crypto.c`) |
//! | CryptoAES ([`KeyType::Aes`]) | AES-128-CBC, IV `cephsageyudagreg`, PKCS#7 | `CryptoAESKeyHandler`, `ceph_aes_crypt` |
//! | [`rfc8009`] ([`KeyType::Aes256Krb5`]) | aes256-cts-hmac-sha384-192 with per-usage keys | `CryptoAES256KRB5KeyHandler`, `ceph_krb5_encrypt` |
//! | [`encode_encrypt_enc_bl`], [`encode_encrypt`], [`decode_decrypt_enc_bl`], [`decode_decrypt`] | the cephx envelope (u8 1, le64 [`AUTH_ENC_MAGIC`], payload), bare or as a blob | same names in `CephxProtocol.h`; `ceph_x_encrypt`/`ceph_x_decrypt` |
//! | [`cephx_calc_client_server_challenge`] | the `key` of CephXAuthenticate | same name in `CephxProtocol.cc`; `ceph_x_build_request` |
//! | [`hmac_sha256`], [`CryptoKey::hmac_sha256`], [`verify_hmac_sha256`] | msgr2 AUTH_SIGNATURE over the pre-auth bytes | `CryptoKeyHandler::hmac_sha256`, ProtocolV2 `pre_auth` |
//! | [`Keyring`] | `[client.admin] key = …` files, lookup by entity | `KeyRing::decode_plaintext` |
//! | [`CephConf`], [`ClientConfig`], [`parse_mon_host`] | `ceph.conf` sections with Ceph's precedence; `mon_host` in all forms; auth and mode options | `ConfFile`, `MonMap::init_with_ips`/`_add_ambiguous_addr`, `AuthRegistry` |
//!
//! # Key usages (AES256KRB5 only)
//!
//! AES256KRB5 derives a separate Ke/Ki pair per *usage*; a ciphertext made for one
//! usage does not decrypt under another ([`AuthError::BadMac`]). CryptoAES ignores the
//! usage. The numbers are upstream's `CEPHX_KEY_USAGE_*` (ceph
//! `src/auth/cephx/CephxProtocol.h`, mirrored in linux
//! `net/ceph/auth_x_protocol.h`); where each is used:
//!
//! | constant | value | key | encrypts |
//! |---|---|---|---|
//! | [`KEY_USAGE_AUTH_CONNECTION_SECRET`] | 0x03 | AUTH ticket session key | the connection secret blob (`cbl`) in the mon's CEPHX_GET_AUTH_SESSION_KEY reply |
//! | [`KEY_USAGE_TICKET_SESSION_KEY`] | 0x04 | client secret (AUTH ticket) / AUTH session key (service tickets) | CephXServiceTicket, the "blob for me" holding a ticket's session key |
//! | [`KEY_USAGE_TICKET_BLOB`] | 0x05 | old AUTH session key | the CephXTicketBlob when `ticket_enc` = 1 (global_id reclaim) |
//! | [`KEY_USAGE_AUTHORIZE`] | 0x10 | service ticket session key | CephXAuthorize in an authorizer |
//! | [`KEY_USAGE_AUTHORIZE_CHALLENGE`] | 0x11 | service ticket session key | CephXAuthorizeChallenge from the service |
//! | [`KEY_USAGE_AUTHORIZE_REPLY`] | 0x12 | service ticket session key | CephXAuthorizeReply (+ connection secret) |
//! | [`KEY_USAGE_ROTATING_SECRET`] | 0x20 | daemon's own key | rotating service secrets (daemons only) |
//! | [`KEY_USAGE_TICKET_INFO`] | 0x30 | rotating service key | CephXServiceTicketInfo, the ticket's opaque part (services only) |
//!
//! Plain `CryptoKey::encrypt`/`decrypt` upstream (no `_ext`) is usage 0; the AES256KRB5
//! challenge uses no usage at all (an HMAC-SHA256, not an encryption).
//!
//! # Not here
//!
//! AES-128-GCM for msgr2 secure frames, msgr1 message signatures and the cephx
//! message structs are the handshake's business; this module gives them keys, the
//! envelope and the MACs.
//!
//! # Secrets
//!
//! Secrets, derived keys and decrypted plaintexts live in [`zeroize::Zeroizing`]
//! buffers (or are wiped by hand) and are wiped when dropped. No `Debug`, `Display` or
//! error of this module shows key bytes or their base64.

#![forbid(unsafe_code)]

mod cephx;
mod conf;
mod error;
mod key;
mod keyring;
pub mod rfc8009;

pub use cephx::{
    cephx_calc_client_server_challenge, challenge_blob, decode_decrypt, decode_decrypt_enc_bl,
    encode_encrypt, encode_encrypt_enc_bl, encode_encrypt_enc_bl_with_confounder,
    encode_encrypt_with_confounder, xor_fold_le64, AUTH_ENC_MAGIC, ENVELOPE_LEN, ENVELOPE_STRUCT_V,
};
pub use conf::{
    parse_mon_host, AddrProto, AuthMethod, CephConf, ClientConfig, ConMode, MonAddr, MonEndpoint,
    MonHost, CEPH_MON_PORT_IANA, CEPH_MON_PORT_LEGACY,
};
pub use error::{AuthError, Result};
pub use key::{CryptoKey, KeyType, UTime, CEPH_AES_IV, CEPH_CRYPTO_AES, CEPH_CRYPTO_AES256KRB5};
pub use keyring::Keyring;

/// `CEPHX_KEY_USAGE_AUTH_CONNECTION_SECRET`: the AUTH session's connection secret.
pub const KEY_USAGE_AUTH_CONNECTION_SECRET: u32 = 0x03;
/// `CEPHX_KEY_USAGE_TICKET_SESSION_KEY`: a ticket's CephXServiceTicket (its session key).
pub const KEY_USAGE_TICKET_SESSION_KEY: u32 = 0x04;
/// `CEPHX_KEY_USAGE_TICKET_BLOB`: an encrypted CephXTicketBlob (`ticket_enc` = 1).
pub const KEY_USAGE_TICKET_BLOB: u32 = 0x05;
/// `CEPHX_KEY_USAGE_AUTHORIZE`: the client's CephXAuthorize.
pub const KEY_USAGE_AUTHORIZE: u32 = 0x10;
/// `CEPHX_KEY_USAGE_AUTHORIZE_CHALLENGE`: the service's CephXAuthorizeChallenge.
pub const KEY_USAGE_AUTHORIZE_CHALLENGE: u32 = 0x11;
/// `CEPHX_KEY_USAGE_AUTHORIZE_REPLY`: the service's CephXAuthorizeReply.
pub const KEY_USAGE_AUTHORIZE_REPLY: u32 = 0x12;
/// `CEPHX_KEY_USAGE_ROTATING_SECRET`: rotating secrets fetched by daemons.
pub const KEY_USAGE_ROTATING_SECRET: u32 = 0x20;
/// `CEPHX_KEY_USAGE_TICKET_INFO`: CephXServiceTicketInfo (the service's part of a ticket).
pub const KEY_USAGE_TICKET_INFO: u32 = 0x30;

/// HMAC-SHA256(`key`, `data`): msgr2 AUTH_SIGNATURE is this with the session key's
/// secret over every byte received (to send) or sent (to check) from the banner
/// through AUTH_DONE.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    key::hmac_sha256_raw(key, data)
}

/// HMAC-SHA256 over several chunks as if concatenated (the pre-auth log is usually
/// kept as a list of buffers).
pub fn hmac_sha256_chunks<'a>(key: &[u8], chunks: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for c in chunks {
        mac.update(c);
    }
    mac.finalize().into_bytes().into()
}

/// Whether `tag` is HMAC-SHA256(`key`, `data`), compared in constant time (checking a
/// peer's AUTH_SIGNATURE).
pub fn verify_hmac_sha256(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.verify_slice(tag).is_ok()
}
