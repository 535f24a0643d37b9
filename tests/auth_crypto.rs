//! Known-answer tests for `ceph_msgr::auth`: RFC 8009, CryptoAES, the cephx envelope,
//! the challenge, HMAC-SHA256, key encoding and Debug redaction.
//!
//! Vector sources:
//! - RFC 8009 Appendix A (aes256-cts-hmac-sha384-192, base key 6D404D37…, usage 2):
//!   the key-derivation, encryption and checksum samples, as reproduced byte-identically
//!   by several independent implementations' test suites (Go, Python, C#, Rust ports of
//!   Kerberos and Ceph's own `src/test/crypto.cc`); the RFC text itself was not readable
//!   here.
//! - CryptoAES: a real key made by `ceph-authtool` 16.2.15 (`--gen-key -n client.admin`);
//!   ciphertexts computed with Python `cryptography` 48 (AES-128-CBC, PKCS#7) and two of
//!   them re-checked with `openssl enc -aes-128-cbc -K … -iv 63657068…`.
//! - Envelope and challenge: the same key, computed in Python from the layout (u8 1,
//!   le64 0xff009cad8826aa55, payload; le32 length prefix; XOR of the le64 words at
//!   0/8/16/24).
//! - HMAC-SHA256: RFC 4231 test case 1, and Python `hmac`.

use ceph_msgr::auth::{
    self, cephx_calc_client_server_challenge, decode_decrypt, decode_decrypt_enc_bl,
    encode_encrypt, encode_encrypt_enc_bl, encode_encrypt_with_confounder, rfc8009, xor_fold_le64,
    AuthError, CryptoKey, KeyType, UTime, AUTH_ENC_MAGIC,
};

fn hx(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ---------------------------------------------------------------- RFC 8009

const RFC_BASE: &str = "6D404D37FAF79F9DF0D33568D320669800EB4836472EA8A026D16B7182460C52";

#[test]
fn rfc8009_key_derivation() {
    let base = hx(RFC_BASE);
    // Kc = KDF(base, 00000002 99, 192)
    assert_eq!(
        &rfc8009::derive(&base, 2, rfc8009::KIND_KC, 24)[..],
        &hx("EF5718BE86CC84963D8BBB5031E9F5C4BA41F28FAF69E73D")[..]
    );
    // Ke = KDF(base, 00000002 AA, 256)
    assert_eq!(
        &rfc8009::derive(&base, 2, rfc8009::KIND_KE, 32)[..],
        &hx("56AB22BEE63D82D7BC5227F6773F8EA7A5EB1C825160C38312980C442E5C7E49")[..]
    );
    // Ki = KDF(base, 00000002 55, 192)
    assert_eq!(
        &rfc8009::derive(&base, 2, rfc8009::KIND_KI, 24)[..],
        &hx("69B16514E3CD8E56B82010D5C73012B622C4D00FFC23ED1F")[..]
    );
    // The same through the raw KDF with an explicit label.
    assert_eq!(
        &rfc8009::kdf_hmac_sha384(&base, &[0, 0, 0, 2, 0x55], 24)[..],
        &hx("69B16514E3CD8E56B82010D5C73012B622C4D00FFC23ED1F")[..]
    );
}

/// (confounder, plaintext length (bytes 00 01 02 …), ciphertext = AES output | HMAC).
const RFC_ENCRYPTIONS: [(&str, usize, &str); 4] = [
    (
        "F764E9FA15C276478B2C7D0C4E5F58E4",
        0,
        "41F53FA5BFE7026D91FAF9BE959195A0 58707273A96A40F0A01960621AC612748B9BBFBE7EB4CE3C",
    ),
    (
        "B80D3251C1F6471494256FFE712D0B9A",
        6,
        "4ED7B37C2BCAC8F74F23C1CF07E62BC7B75FB3F637B9 F559C7F664F69EAB7B6092237526EA0D1F61CB20D69D10F2",
    ),
    (
        "53BF8A0D105265D4E276428624CE5E63",
        16,
        "BC47FFEC7998EB91E8115CF8D19DAC4BBBE2E163E87DD37F49BECA92027764F6 \
         8CF51F14D798C2273F35DF574D1F932E40C4FF255B36A266",
    ),
    (
        "763E65367E864F02F55153C7E3B58AF1",
        21,
        "40013E2DF58E8751957D2878BCD2D6FE101CCFD556CB1EAE79DB3C3EE86429F2B2A602AC86FEF6ECB647D6295FAE077A \
         1FEB517508D2C16B4192E01F62",
    ),
];

#[test]
fn rfc8009_encryption_vectors() {
    let base = hx(RFC_BASE);
    for (conf, n, expected) in RFC_ENCRYPTIONS {
        let plain: Vec<u8> = (0..n as u8).collect();
        let conf: [u8; 16] = hx(conf).try_into().unwrap();
        let ct = rfc8009::encrypt_with_confounder(&base, 2, &conf, &plain);
        assert_eq!(ct, hx(expected), "encrypt, plaintext length {n}");
        assert_eq!(&rfc8009::decrypt(&base, 2, &ct).unwrap()[..], &plain[..]);
    }
}

#[test]
fn rfc8009_vectors_through_cryptokey() {
    let key = CryptoKey::new(KeyType::Aes256Krb5, UTime::default(), &hx(RFC_BASE)).unwrap();
    for (conf, n, expected) in RFC_ENCRYPTIONS {
        let plain: Vec<u8> = (0..n as u8).collect();
        let conf: [u8; 16] = hx(conf).try_into().unwrap();
        assert_eq!(key.encrypt_with_confounder(2, &plain, &conf), hx(expected));
        assert_eq!(&key.decrypt(2, &hx(expected)).unwrap()[..], &plain[..]);
        assert_eq!(key.encrypted_len(n), hx(expected).len());
    }
}

#[test]
fn rfc8009_checksum_vector() {
    let data: Vec<u8> = (0..21u8).collect();
    assert_eq!(
        rfc8009::checksum(&hx(RFC_BASE), 2, &data).to_vec(),
        hx("45EE791567EEFCA37F4AC1E0222DE80D43C3BFA06699672A")
    );
}

#[test]
fn rfc8009_rejects_tampering_wrong_usage_and_short_input() {
    let base = hx(RFC_BASE);
    let (_, _, good) = RFC_ENCRYPTIONS[3];
    let good = hx(good);
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        assert_eq!(
            rfc8009::decrypt(&base, 2, &bad),
            Err(AuthError::BadMac),
            "byte {i}"
        );
    }
    assert_eq!(rfc8009::decrypt(&base, 3, &good), Err(AuthError::BadMac));
    assert!(matches!(
        rfc8009::decrypt(&base, 2, &good[..39]),
        Err(AuthError::CiphertextLength { len: 39, .. })
    ));
}

#[test]
fn aes256k_random_confounder_round_trip() {
    let key = CryptoKey::new(KeyType::Aes256Krb5, UTime::default(), &[0x42; 32]).unwrap();
    for n in [0usize, 1, 15, 16, 17, 31, 32, 33, 100] {
        let plain = vec![0xA5u8; n];
        let a = key.encrypt(auth::KEY_USAGE_AUTHORIZE, &plain).unwrap();
        let b = key.encrypt(auth::KEY_USAGE_AUTHORIZE, &plain).unwrap();
        assert_ne!(a, b, "fresh confounder each time");
        assert_eq!(a.len(), 16 + n + 24);
        assert_eq!(
            &key.decrypt(auth::KEY_USAGE_AUTHORIZE, &a).unwrap()[..],
            &plain[..]
        );
        assert_eq!(
            key.decrypt(auth::KEY_USAGE_AUTHORIZE_REPLY, &a),
            Err(AuthError::BadMac)
        );
    }
}

// ---------------------------------------------------------------- CryptoAES

/// client.admin from `ceph-authtool --create-keyring … --gen-key -n client.admin` (16.2.15).
const ADMIN_KEY: &str = "AQD1PxNrSqLuIBAArII+CWfFxLpv12IOH+WaLQ==";
const ADMIN_SECRET: &str = "ac823e0967c5c4ba6fd7620e1fe59a2d";

fn admin() -> CryptoKey {
    CryptoKey::from_base64(ADMIN_KEY).unwrap()
}

#[test]
fn keyring_key_decodes_and_reencodes() {
    let key = admin();
    assert_eq!(key.key_type(), KeyType::Aes);
    assert_eq!(
        key.created(),
        UTime {
            sec: 1796423669,
            nsec: 552510026
        }
    );
    assert_eq!(key.secret(), &hx(ADMIN_SECRET)[..]);
    assert_eq!(key.to_bytes().len(), 28);
    assert_eq!(&key.to_base64()[..], ADMIN_KEY);
    assert_eq!(CryptoKey::from_bytes(&key.to_bytes()).unwrap(), key);
    // decode advances past exactly one key
    let mut two = key.to_bytes().to_vec();
    two.extend_from_slice(&[9, 9]);
    let mut rest = &two[..];
    assert_eq!(CryptoKey::decode(&mut rest).unwrap(), key);
    assert_eq!(rest, &[9, 9]);
}

#[test]
fn aes256k_key_encoding() {
    // No tool here makes aes256k keys (16.2.15 predates them); this one is built by hand
    // from the layout: le16 2, utime, le16 32, secret.
    let mut raw = vec![2, 0, 1, 0, 0, 0, 2, 0, 0, 0, 32, 0];
    raw.extend(0..32u8);
    let key = CryptoKey::from_bytes(&raw).unwrap();
    assert_eq!(key.key_type(), KeyType::Aes256Krb5);
    assert_eq!(key.created(), UTime { sec: 1, nsec: 2 });
    let b64 = key.to_base64();
    assert_eq!(b64.len(), 60);
    assert!(b64.starts_with("Ag"));
    assert_eq!(CryptoKey::from_base64(&b64).unwrap(), key);
}

#[test]
fn key_decode_errors() {
    assert_eq!(
        CryptoKey::from_base64("not base64!"),
        Err(AuthError::Base64)
    );
    let raw = admin().to_bytes();
    assert!(matches!(
        CryptoKey::from_bytes(&raw[..20]),
        Err(AuthError::Truncated { .. })
    ));
    assert!(matches!(
        CryptoKey::from_bytes(&raw[..5]),
        Err(AuthError::Truncated { .. })
    ));
    let mut extra = raw.to_vec();
    extra.push(0);
    assert_eq!(
        CryptoKey::from_bytes(&extra),
        Err(AuthError::TrailingBytes { extra: 1 })
    );
    let mut none = raw.to_vec();
    none[0] = 0;
    assert_eq!(
        CryptoKey::from_bytes(&none),
        Err(AuthError::UnsupportedKeyType(0))
    );
    let mut short = vec![2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0];
    short.extend([0u8; 16]);
    assert!(matches!(
        CryptoKey::from_bytes(&short),
        Err(AuthError::SecretTooShort {
            key_type: KeyType::Aes256Krb5,
            len: 16,
            min: 32
        })
    ));
}

#[test]
fn crypto_aes_vectors() {
    let key = admin();
    let cases: [(&[u8], &str); 4] = [
        (b"", "c00e82383811805a3b8b1a9221389ab5"),
        (b"hello", "d16d61d1994cc6d1b4ca8b3c9d57c08c"),
        (
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
            "9dca302ef31892474d6ad8e3ac4ddcc3d4f3b2889b73ca03267bbb5e07032ea5",
        ),
        (
            &[
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
            ],
            "9dca302ef31892474d6ad8e3ac4ddcc372eb5a7e56de18935ed63d564a65705e\
             0367652308c2d3f55c810cf8ade769ec",
        ),
    ];
    for (plain, ct) in cases {
        assert_eq!(key.encrypt(0, plain).unwrap(), hx(ct));
        // usage is ignored by CryptoAES
        assert_eq!(key.encrypt(0x10, plain).unwrap(), hx(ct));
        assert_eq!(&key.decrypt(0, &hx(ct)).unwrap()[..], plain);
        assert_eq!(key.encrypted_len(plain.len()), hx(ct).len());
    }
}

#[test]
fn crypto_aes_strict_padding_and_lengths() {
    let key = admin();
    // 20 bytes + 12 pad bytes of 0x0c, two blocks. A bit flipped in the first
    // ciphertext block flips the same bit of the second plaintext block: the pad.
    let ct = key.encrypt(0, &[0u8; 20]).unwrap();
    // 0x0c ^ delta: 0 (too small), 17 (too large), 11 (in range, bytes unequal)
    for (delta, what) in [(12u8, "pad 0"), (29, "pad 17"), (7, "pad 11, unequal")] {
        let mut bad = ct.clone();
        bad[15] ^= delta;
        assert_eq!(key.decrypt(0, &bad), Err(AuthError::BadPadding), "{what}");
    }
    // one earlier pad byte wrong, last byte right: strict check still rejects
    let mut bad = ct.clone();
    bad[14] ^= 1;
    assert_eq!(key.decrypt(0, &bad), Err(AuthError::BadPadding));
    for len in [0usize, 15, 17] {
        assert!(matches!(
            key.decrypt(0, &vec![0; len]),
            Err(AuthError::CiphertextLength { .. })
        ));
    }
}

// ---------------------------------------------------------------- envelope

#[test]
fn envelope_vectors() {
    let key = admin();
    let payload = hx("0102030405");
    assert_eq!(
        encode_encrypt_enc_bl(&key, 0, &payload).unwrap(),
        hx("04e2164cf7efb00326ddaf0d362d6dba")
    );
    let blob = encode_encrypt(&key, 0, &payload).unwrap();
    assert_eq!(blob, hx("1000000004e2164cf7efb00326ddaf0d362d6dba"));
    assert_eq!(
        &decode_decrypt_enc_bl(&key, 0, &blob[4..]).unwrap()[..],
        &payload[..]
    );
    let mut input = &blob[..];
    assert_eq!(
        &decode_decrypt(&key, 0, &mut input).unwrap()[..],
        &payload[..]
    );
    assert!(input.is_empty());
}

#[test]
fn envelope_round_trip_both_types_and_magic_check() {
    let aes = admin();
    let k2 = CryptoKey::new(KeyType::Aes256Krb5, UTime::default(), &[7; 32]).unwrap();
    for key in [&aes, &k2] {
        for n in [0usize, 1, 7, 8, 23, 100] {
            let payload: Vec<u8> = (0..n as u8).collect();
            let usage = auth::KEY_USAGE_TICKET_SESSION_KEY;
            let mut blob = encode_encrypt(key, usage, &payload).unwrap();
            blob.extend_from_slice(b"next");
            let mut input = &blob[..];
            assert_eq!(
                &decode_decrypt(key, usage, &mut input).unwrap()[..],
                &payload[..]
            );
            assert_eq!(input, b"next");
        }
    }
    // Deterministic form for AES256KRB5
    let a = encode_encrypt_with_confounder(&k2, 4, b"x", &[1; 16]);
    let b = encode_encrypt_with_confounder(&k2, 4, b"x", &[1; 16]);
    assert_eq!(a, b);
    assert_eq!(a.len(), 4 + 16 + 9 + 1 + 24);

    // Encrypt a plaintext that is not an envelope: the magic check fires.
    let not_env = aes.encrypt(0, &[1, 0, 0, 0, 0, 0, 0, 0, 0, 5]).unwrap();
    assert_eq!(
        decode_decrypt_enc_bl(&aes, 0, &not_env),
        Err(AuthError::BadMagic(0))
    );
    // struct_v is read but not checked
    let mut v7 = vec![7u8];
    v7.extend_from_slice(&AUTH_ENC_MAGIC.to_le_bytes());
    v7.push(0xEE);
    let ct = aes.encrypt(0, &v7).unwrap();
    assert_eq!(&decode_decrypt_enc_bl(&aes, 0, &ct).unwrap()[..], &[0xEE]);
    // too short for an envelope
    let ct = aes.encrypt(0, &[1, 2, 3]).unwrap();
    assert!(matches!(
        decode_decrypt_enc_bl(&aes, 0, &ct),
        Err(AuthError::Truncated { .. })
    ));
    // blob length beyond the input
    let mut input: &[u8] = &[32, 0, 0, 0, 1, 2];
    assert!(matches!(
        decode_decrypt(&aes, 0, &mut input),
        Err(AuthError::Truncated { .. })
    ));
}

// ---------------------------------------------------------------- challenge

#[test]
fn xor_fold_by_hand() {
    // words: 0xff, 0xff00, 1, 1 → 0xffff; the 4-byte tail is ignored
    let mut b = Vec::new();
    b.extend_from_slice(&0xffu64.to_le_bytes());
    b.extend_from_slice(&0xff00u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&[0xAA; 4]);
    assert_eq!(xor_fold_le64(&b), 0xffff);
    assert_eq!(xor_fold_le64(&[0xAA; 7]), 0);
    assert_eq!(
        xor_fold_le64(&[1, 2, 3, 4, 5, 6, 7, 8, 0x10, 0, 0, 0, 0, 0, 0, 0]),
        0x0807060504030211
    );
}

#[test]
fn challenge_aes_vector() {
    // enc = 20000000 | 628779e6f0057f96162e03036343b954f171d179c6ba7a403870e3fdaac2f958
    // words: 20000000628779e6 ^ f0057f96162e0303 ^ 6343b954f171d179 ^ c6ba7a403870e3fd
    // (little-endian) = 0x6148a8bd82bcfc75; tail aac2f958 not folded.
    let key = admin();
    let sc = 0x0123_4567_89ab_cdef;
    let cc = 0xfedc_ba98_7654_3210;
    let enc = encode_encrypt(&key, 0, &auth::challenge_blob(sc, cc)).unwrap();
    assert_eq!(
        enc,
        hx("20000000628779e6f0057f96162e03036343b954f171d179c6ba7a403870e3fdaac2f958")
    );
    let words = [
        0xe679_8762_0000_0020u64,
        0x0303_2e16_967f_05f0,
        0x79d1_71f1_54b9_4363,
        0xfde3_7038_407a_bac6,
    ];
    let by_hand = words.iter().fold(0, |a, w| a ^ w);
    assert_eq!(by_hand, 0x6148_a8bd_82bc_fc75);
    assert_eq!(
        cephx_calc_client_server_challenge(&key, sc, cc).unwrap(),
        by_hand
    );
}

#[test]
fn challenge_aes256k_is_hmac_fold() {
    // HMAC-SHA256(00..1f, le64 0x1122334455667788 | le64 0x0102030405060708), folded;
    // computed with Python hmac/hashlib.
    let key = CryptoKey::new(
        KeyType::Aes256Krb5,
        UTime::default(),
        &(0..32).collect::<Vec<u8>>(),
    )
    .unwrap();
    assert_eq!(
        cephx_calc_client_server_challenge(&key, 0x1122334455667788, 0x0102030405060708).unwrap(),
        0xff60_3040_e5eb_4b04
    );
}

// ---------------------------------------------------------------- HMAC

#[test]
fn hmac_sha256_vectors() {
    // RFC 4231 test case 1
    let tag = auth::hmac_sha256(&[0x0b; 20], b"Hi There");
    assert_eq!(
        tag.to_vec(),
        hx("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    );
    assert!(auth::verify_hmac_sha256(&[0x0b; 20], b"Hi There", &tag));
    let mut bad = tag;
    bad[31] ^= 1;
    assert!(!auth::verify_hmac_sha256(&[0x0b; 20], b"Hi There", &bad));
    assert!(!auth::verify_hmac_sha256(
        &[0x0b; 20],
        b"Hi There",
        &tag[..31]
    ));
    // Session-key form (whole secret), Python hmac
    assert_eq!(
        admin().hmac_sha256(b"pre-auth bytes").to_vec(),
        hx("404b38c2c2fa2fc544d5b8db7134875413e1d650df60ddacfb16d669aa9084ed")
    );
    assert_eq!(
        auth::hmac_sha256_chunks(admin().secret(), [&b"pre-"[..], b"auth", b" bytes"]),
        admin().hmac_sha256(b"pre-auth bytes")
    );
}

// ---------------------------------------------------------------- redaction

fn contains_seq(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn debug_never_shows_key_material() {
    let keys = [
        admin(),
        CryptoKey::new(KeyType::Aes256Krb5, UTime { sec: 5, nsec: 6 }, &[0x61; 32]).unwrap(),
    ];
    for key in &keys {
        let dbg = format!("{key:?}");
        let alt = format!("{key:#?}");
        for text in [&dbg, &alt] {
            assert!(text.contains("len"), "{text}");
            let b64 = key.to_base64();
            assert!(!text.contains(&b64[..]));
            assert!(!text.contains(&b64[..20]));
            // the raw bytes, as bytes, as lowercase/uppercase hex, as a decimal list
            assert!(!contains_seq(text.as_bytes(), &key.secret()[..8]));
            let hex: String = key.secret().iter().map(|b| format!("{b:02x}")).collect();
            assert!(!text.to_lowercase().contains(&hex[..8]));
            let list = format!("{:?}", &key.secret()[..4]);
            assert!(!text.contains(list.trim_matches(['[', ']'])));
        }
    }
    assert_eq!(format!("{:?}", keys[0]), "CryptoKey { type: Aes, len: 16 }");
    // Errors of a bad keyring line do not echo it either.
    let err = ceph_msgr::auth::Keyring::parse("[client.x]\n key = AQD1PxNrSqLuIBAArII+CWfF!!\n")
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("AQD1PxNr"), "{shown}");
}
