//! Keyring and `ceph.conf` parsing (`ceph_msgr::auth::{Keyring, CephConf}`).

use std::net::SocketAddr;

use ceph_msgr::auth::{
    parse_mon_host, AddrProto, AuthError, AuthMethod, CephConf, ConMode, CryptoKey, KeyType,
    Keyring, MonAddr, MonEndpoint, MonHost,
};

/// Written by `ceph-authtool` 16.2.15 (`--create-keyring --gen-key -n client.admin --cap …`,
/// then `--gen-key -n osd.0`, `-n mon.`), verbatim (tabs included).
const AUTHTOOL_KEYRING: &str = "[mon.]
\tkey = AQD1PxNrvl+eIhAAZbPFhotE/Phz25Bq6E0M7A==
\tcaps mon = \"allow *\"
[osd.0]
\tkey = AQD1PxNrHb/FIRAADw8qq4cqmKyY13iBSFN4hw==
\tcaps osd = \"allow *\"
[client.admin]
\tkey = AQD1PxNrSqLuIBAArII+CWfFxLpv12IOH+WaLQ==
\tcaps mon = \"allow *\"
\tcaps osd = \"allow *\"
";

#[test]
fn keyring_from_ceph_authtool() {
    let ring = Keyring::parse(AUTHTOOL_KEYRING).unwrap();
    assert_eq!(
        ring.entities().collect::<Vec<_>>(),
        ["mon.", "osd.0", "client.admin"]
    );
    let admin = ring.get("client.admin").unwrap();
    assert_eq!(admin.key_type(), KeyType::Aes);
    assert_eq!(
        &admin.to_base64()[..],
        "AQD1PxNrSqLuIBAArII+CWfFxLpv12IOH+WaLQ=="
    );
    assert_eq!(
        ring.get("osd.0").unwrap(),
        &CryptoKey::from_base64("AQD1PxNrHb/FIRAADw8qq4cqmKyY13iBSFN4hw==").unwrap()
    );
    assert!(ring.get("client.nobody").is_none());
    assert_eq!(ring.len(), 3);
    // Debug shows names and types only
    let dbg = format!("{ring:?}");
    assert!(
        dbg.contains("client.admin") && !dbg.contains("AQD1"),
        "{dbg}"
    );
}

#[test]
fn keyring_comments_whitespace_and_oddities() {
    let aes256k = {
        let mut raw = vec![2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0];
        raw.extend([0x11; 32]);
        CryptoKey::from_bytes(&raw).unwrap()
    };
    let text = format!(
        "\u{feff}# a comment\n\
         ; another\n\
         \n\
         [client.admin]   # trailing comment\n\
         \x20   key=AQD1PxNrSqLuIBAArII+CWfFxLpv12IOH+WaLQ==   ; inline comment\n\
         \tcaps mds = \"allow rw path=/x; y\"\n\
         \tauid = 0\n\
         [client.nokey]\n\
         \tcaps mon = \"allow r\"\n\
         [ client.rgw ]\n\
         key = \"{}\"\n\
         [client.admin]\n\
         key = AQD1PxNrHb/FIRAADw8qq4cqmKyY13iBSFN4hw==\n",
        &*aes256k.to_base64()
    );
    let ring = Keyring::parse(&text).unwrap();
    assert_eq!(
        ring.entities().collect::<Vec<_>>(),
        ["client.admin", "client.rgw"]
    );
    // the later [client.admin] wins
    assert_eq!(
        ring.get("client.admin").unwrap(),
        &CryptoKey::from_base64("AQD1PxNrHb/FIRAADw8qq4cqmKyY13iBSFN4hw==").unwrap()
    );
    assert_eq!(ring.get("client.rgw").unwrap(), &aes256k);
    assert!(Keyring::parse("").unwrap().is_empty());
}

#[test]
fn keyring_errors_name_the_line_only() {
    assert_eq!(
        Keyring::parse("key = AQD1PxNrSqLuIBAArII+CWfFxLpv12IOH+WaLQ==\n"),
        Err(AuthError::Keyring {
            line: 1,
            reason: "option before any [section]"
        })
    );
    assert!(matches!(
        Keyring::parse("[client.admin\nkey = x\n"),
        Err(AuthError::Keyring { line: 1, .. })
    ));
    assert!(matches!(
        Keyring::parse("[a]\njust words\n"),
        Err(AuthError::Keyring { line: 2, .. })
    ));
    let e = Keyring::parse("[a]\n\n  key = AQD1PxNr\n").unwrap_err();
    assert!(matches!(&e, AuthError::KeyringKey { line: 3, .. }), "{e:?}");
    assert!(std::error::Error::source(&e).is_some());
    let e = Keyring::parse("[a]\nkey = AAAA\n").unwrap_err(); // 3 bytes: truncated
    assert!(
        matches!(&e, AuthError::KeyringKey { line: 2, source } if matches!(**source, AuthError::Truncated { .. }))
    );
}

// ---------------------------------------------------------------- mon_host

fn v1(s: &str) -> MonAddr {
    MonAddr {
        proto: AddrProto::V1,
        host: MonHost::Addr(s.parse::<SocketAddr>().unwrap()),
        nonce: 0,
    }
}

fn v2(s: &str) -> MonAddr {
    MonAddr {
        proto: AddrProto::V2,
        host: MonHost::Addr(s.parse::<SocketAddr>().unwrap()),
        nonce: 0,
    }
}

fn ep(addrs: Vec<MonAddr>) -> MonEndpoint {
    MonEndpoint { addrs }
}

#[test]
fn mon_host_every_form() {
    let cases: Vec<(&str, Vec<MonEndpoint>)> = vec![
        // bare IP: both protocols on their default ports, v2 first
        (
            "1.2.3.4",
            vec![ep(vec![v2("1.2.3.4:3300"), v1("1.2.3.4:6789")])],
        ),
        // the port says the protocol
        ("1.2.3.4:6789", vec![ep(vec![v1("1.2.3.4:6789")])]),
        ("1.2.3.4:3300", vec![ep(vec![v2("1.2.3.4:3300")])]),
        // any other port: v2 then v1 on it
        (
            "1.2.3.4:7000",
            vec![ep(vec![v2("1.2.3.4:7000"), v1("1.2.3.4:7000")])],
        ),
        // explicit protocol, with and without port and nonce
        ("v2:1.2.3.4:3300/0", vec![ep(vec![v2("1.2.3.4:3300")])]),
        ("v1:1.2.3.4", vec![ep(vec![v1("1.2.3.4:6789")])]),
        ("v2:1.2.3.4", vec![ep(vec![v2("1.2.3.4:3300")])]),
        ("v1:1.2.3.4:7000", vec![ep(vec![v1("1.2.3.4:7000")])]),
        // an address vector
        (
            "[v2:1.2.3.4:3300,v1:1.2.3.4:6789]",
            vec![ep(vec![v2("1.2.3.4:3300"), v1("1.2.3.4:6789")])],
        ),
        (
            "[v2:1.2.3.4:3300/0,v1:1.2.3.4:6789/0]",
            vec![ep(vec![v2("1.2.3.4:3300"), v1("1.2.3.4:6789")])],
        ),
        // a one-element vector is a single address
        ("[v1:1.2.3.4]", vec![ep(vec![v1("1.2.3.4:6789")])]),
        // IPv6
        ("[::1]:3300", vec![ep(vec![v2("[::1]:3300")])]),
        ("::1", vec![ep(vec![v2("[::1]:3300"), v1("[::1]:6789")])]),
        ("v1:[fe80::1]:6789/0", vec![ep(vec![v1("[fe80::1]:6789")])]),
        (
            "[v2:[::1]:3300,v1:[::1]:6789]",
            vec![ep(vec![v2("[::1]:3300"), v1("[::1]:6789")])],
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse_mon_host(text).unwrap(), want, "{text}");
    }
}

#[test]
fn mon_host_several_mons_and_separators() {
    let want = vec![
        ep(vec![v1("10.0.0.1:6789")]),
        ep(vec![v2("10.0.0.2:3300"), v1("10.0.0.2:6789")]),
        ep(vec![v2("10.0.0.3:3300"), v1("10.0.0.3:6789")]),
        ep(vec![v2("10.0.0.4:3300")]),
    ];
    for text in [
        "10.0.0.1:6789,10.0.0.2,[v2:10.0.0.3:3300,v1:10.0.0.3:6789],v2:10.0.0.4",
        "10.0.0.1:6789, 10.0.0.2 ; [v2:10.0.0.3:3300,v1:10.0.0.3:6789]\tv2:10.0.0.4",
        "  10.0.0.1:6789 10.0.0.2;;[v2:10.0.0.3:3300,v1:10.0.0.3:6789] ,, v2:10.0.0.4 ",
    ] {
        assert_eq!(parse_mon_host(text).unwrap(), want, "{text}");
    }
    assert_eq!(parse_mon_host("").unwrap(), vec![]);
}

#[test]
fn mon_host_hostnames() {
    let got = parse_mon_host("mon1.example.com, Mon-2:6789 v2:mon3:3301/7").unwrap();
    let name = |proto, host: &str, port, nonce| MonAddr {
        proto,
        host: MonHost::Name {
            host: host.to_string(),
            port,
        },
        nonce,
    };
    assert_eq!(
        got,
        vec![
            ep(vec![
                name(AddrProto::V2, "mon1.example.com", 3300, 0),
                name(AddrProto::V1, "mon1.example.com", 6789, 0),
            ]),
            ep(vec![name(AddrProto::V1, "mon-2", 6789, 0)]),
            ep(vec![name(AddrProto::V2, "mon3", 3301, 7)]),
        ]
    );
    assert_eq!(got[2].addrs[0].to_string(), "v2:mon3:3301/7");
    assert_eq!(got[2].addrs[0].socket_addr(), None);
    assert_eq!(got[2].addrs[0].port(), 3301);
    assert_eq!(v2("[::1]:3300").to_string(), "v2:[::1]:3300/0");
}

#[test]
fn mon_host_errors() {
    for bad in [
        "1.2.3.4:99999",
        "1.2.3.4:x",
        "v2:1.2.3.4:3300/x",
        "[v2:1.2.3.4:3300",
        "[::1",
        "[::g]:3300",
        "999.1.1.1",
        "bad host!",
        "[v2:]",
    ] {
        let e = parse_mon_host(bad).unwrap_err();
        assert!(
            matches!(
                e,
                AuthError::ConfValue {
                    option: "mon_host",
                    ..
                }
            ),
            "{bad}: {e:?}"
        );
    }
}

// ---------------------------------------------------------------- ceph.conf

const CONF: &str = r#"
# cluster config
[global]
    fsid = df0b3cea-17ef-4230-9d68-b11cc60cf1c1
    mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
    auth-client-required = cephx
    ms_mon_client_mode = crc
    keyring = /etc/ceph/$cluster.$name.keyring
[client]
    ms client mode = secure
    keyring = "/etc/ceph/client.keyring, /etc/ceph/${cluster}.keyring" ; two
    admin_socket =
[client.admin]
    keyring = /root/$type.$id.keyring
    ms_mon_client_mode = secure crc
[client.rgw]
    mon_host = 10.0.0.9
[osd]
    osd_objectstore = memstore
"#;

#[test]
fn conf_precedence_and_normalisation() {
    let conf = CephConf::parse(CONF).unwrap();
    assert_eq!(
        conf.sections().collect::<Vec<_>>(),
        ["client", "client.admin", "client.rgw", "global", "osd"]
    );
    // dashes, spaces and underscores are one
    for name in [
        "mon_host",
        "mon host",
        "mon-host",
        "  mon__host ",
        "mon - host",
    ] {
        assert_eq!(
            conf.get_in("global", name),
            Some("[v2:127.0.0.1:3300,v1:127.0.0.1:6789]"),
            "{name}"
        );
    }
    // most specific section wins
    assert_eq!(
        conf.get("client.admin", "keyring"),
        Some("/root/$type.$id.keyring")
    );
    assert_eq!(
        conf.get("client.foo", "keyring"),
        Some("/etc/ceph/client.keyring, /etc/ceph/${cluster}.keyring")
    );
    assert_eq!(
        conf.get("osd.0", "keyring"),
        Some("/etc/ceph/$cluster.$name.keyring")
    );
    assert_eq!(conf.get("client.admin", "admin socket"), Some(""));
    assert_eq!(conf.get("client.admin", "osd objectstore"), None);
    assert_eq!(conf.get("osd.3", "osd objectstore"), Some("memstore"));
    assert_eq!(
        CephConf::sections_for("client.admin"),
        ["client.admin", "client", "global"]
    );
}

#[test]
fn conf_client_config_typed() {
    let conf = CephConf::parse(CONF).unwrap();
    let admin = conf.client_config("client.admin").unwrap();
    assert_eq!(
        admin.mon_host,
        vec![ep(vec![v2("127.0.0.1:3300"), v1("127.0.0.1:6789")])]
    );
    assert_eq!(admin.keyring, ["/root/$type.$id.keyring"]);
    assert_eq!(
        admin.keyring_paths("ceph", "client.admin"),
        ["/root/client.admin.keyring"]
    );
    assert_eq!(admin.auth_client_required, [AuthMethod::Cephx]);
    assert_eq!(admin.ms_client_mode, [ConMode::Secure]);
    assert_eq!(admin.ms_mon_client_mode, [ConMode::Secure, ConMode::Crc]);

    let foo = conf.client_config("client.foo").unwrap();
    assert_eq!(
        foo.keyring_paths("lab", "client.foo"),
        ["/etc/ceph/client.keyring", "/etc/ceph/lab.keyring"]
    );
    assert_eq!(foo.ms_mon_client_mode, [ConMode::Crc]);

    let rgw = conf.client_config("client.rgw").unwrap();
    assert_eq!(
        rgw.mon_host,
        vec![ep(vec![v2("10.0.0.9:3300"), v1("10.0.0.9:6789")])]
    );

    // Defaults
    let empty = CephConf::parse("[global]\nmon_host = 1.2.3.4:6789\n")
        .unwrap()
        .client_config("client.admin")
        .unwrap();
    assert_eq!(
        empty.auth_client_required,
        [AuthMethod::Cephx, AuthMethod::None]
    );
    assert_eq!(empty.ms_client_mode, [ConMode::Crc, ConMode::Secure]);
    assert_eq!(empty.ms_mon_client_mode, [ConMode::Secure, ConMode::Crc]);
    assert_eq!(
        empty.keyring_paths("ceph", "client.admin"),
        [
            "/etc/ceph/ceph.client.admin.keyring",
            "/etc/ceph/ceph.keyring",
            "/etc/ceph/keyring",
            "/etc/ceph/keyring.bin"
        ]
    );
    assert_eq!(AuthMethod::Cephx.wire(), 2);
    assert_eq!(ConMode::Secure.wire(), 2);
}

#[test]
fn conf_auth_supported_and_legacy_mon_addr() {
    let conf = CephConf::parse(
        "[global]\nauth supported = none\nauth_client_required = cephx\n\
         [mon.a]\nmon addr = 10.1.1.1\n[mon.b]\nmon addr = v2:10.1.1.2\n",
    )
    .unwrap();
    let c = conf.client_config("client.admin").unwrap();
    assert_eq!(c.auth_client_required, [AuthMethod::None]);
    assert_eq!(
        c.mon_host,
        vec![ep(vec![v1("10.1.1.1:6789")]), ep(vec![v2("10.1.1.2:3300")])]
    );
}

#[test]
fn conf_errors() {
    assert!(matches!(
        CephConf::parse("[global]\nms_client_mode = crc fast\n")
            .unwrap()
            .client_config("client.admin"),
        Err(AuthError::ConfValue {
            option: "ms_client_mode",
            ..
        })
    ));
    assert!(matches!(
        CephConf::parse("[global]\nauth_client_required = kerberos\n")
            .unwrap()
            .client_config("client.admin"),
        Err(AuthError::ConfValue {
            option: "auth_client_required",
            ..
        })
    ));
    assert!(matches!(
        CephConf::parse("[global]\nmon_host = 1.2.3.4:x\n")
            .unwrap()
            .client_config("client.admin"),
        Err(AuthError::ConfValue {
            option: "mon_host",
            ..
        })
    ));
    assert_eq!(
        CephConf::parse("[global]\nkey = \"unterminated\n"),
        Err(AuthError::Conf {
            line: 2,
            reason: "unterminated quoted value"
        })
    );
    assert!(matches!(
        CephConf::parse("[]\n"),
        Err(AuthError::Conf { line: 1, .. })
    ));
}

#[test]
fn conf_values_quotes_escapes_continuations() {
    let conf = CephConf::parse(
        "[global]\n\
         a = \"x # not a comment ; either\"  # comment\n\
         b = one \\# two \\; three ; comment\n\
         c = first \\\n  second\n\
         d = \"say \\\"hi\\\"\"\n",
    )
    .unwrap();
    assert_eq!(
        conf.get_in("global", "a"),
        Some("x # not a comment ; either")
    );
    assert_eq!(conf.get_in("global", "b"), Some("one # two ; three"));
    assert_eq!(conf.get_in("global", "c"), Some("first   second"));
    assert_eq!(conf.get_in("global", "d"), Some("say \"hi\""));
}
