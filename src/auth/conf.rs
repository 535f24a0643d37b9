//! `ceph.conf`: the INI dialect shared with keyrings, Ceph's section precedence, and the
//! client options the handshake needs (`mon_host`, `keyring`, `auth_client_required`,
//! `ms_client_mode`, `ms_mon_client_mode`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::error::{AuthError, Result};

/// `CEPH_MON_PORT_LEGACY`: the msgr1 monitor port.
pub const CEPH_MON_PORT_LEGACY: u16 = 6789;
/// `CEPH_MON_PORT_IANA`: the msgr2 monitor port.
pub const CEPH_MON_PORT_IANA: u16 = 3300;

/// One `key = value` of an INI file, with its 1-based line number.
pub(super) struct Entry {
    pub line: usize,
    pub key: String,
    pub value: String,
}

/// One `[section]` and its entries in file order.
pub(super) struct Section {
    pub name: String,
    pub entries: Vec<Entry>,
}

/// Ceph's option-name normalisation: trimmed, and spaces, dashes and underscores are
/// one character — runs of them become a single `_` (`mon host`, `mon-host`,
/// `mon_host` are the same option).
pub(super) fn normalize_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut sep = false;
    for c in key.trim().chars() {
        if c == ' ' || c == '-' || c == '_' || c == '\t' {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('_');
            }
            sep = false;
            out.push(c);
        }
    }
    out
}

/// Parse a value: a double-quoted string (escapes `\"`, `\\`) or bare text up to an
/// unescaped `#` or `;` (escapes `\#`, `\;`, `\\`), trimmed.
fn parse_value(raw: &str, line: usize) -> Result<String> {
    let raw = raw.trim_start();
    let mut out = String::new();
    let mut chars = raw.chars();
    if raw.starts_with('"') {
        chars.next();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e) => out.push(e),
                    None => break,
                },
                '"' => {
                    closed = true;
                    break;
                }
                c => out.push(c),
            }
        }
        if !closed {
            return Err(AuthError::Conf {
                line,
                reason: "unterminated quoted value",
            });
        }
        let rest = chars.as_str().trim();
        if !(rest.is_empty() || rest.starts_with('#') || rest.starts_with(';')) {
            return Err(AuthError::Conf {
                line,
                reason: "text after a quoted value",
            });
        }
        return Ok(out);
    }
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('#' | ';' | '\\')) => out.push(e),
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            },
            '#' | ';' => break,
            c => out.push(c),
        }
    }
    Ok(out.trim_end().to_string())
}

/// The INI dialect of `ceph.conf` and keyrings (`ConfFile` upstream): `[section]`
/// headers, `key = value` lines, `#`/`;` comments (whole-line and after values),
/// double-quoted values, a trailing `\` joining the next line, blank lines. A UTF-8
/// BOM is skipped. Options before any section, and lines that are none of these, are
/// errors (line number only — keyring lines hold secrets).
pub(super) fn parse_ini(text: &str) -> Result<Vec<Section>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sections: Vec<Section> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, first)) = lines.next() {
        let line_no = i + 1;
        let mut line = first.to_string();
        while line.ends_with('\\') && !line.ends_with("\\\\") {
            line.pop();
            match lines.next() {
                Some((_, next)) => line.push_str(next),
                None => break,
            }
        }
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(rest) = t.strip_prefix('[') {
            let Some((name, after)) = rest.split_once(']') else {
                return Err(AuthError::Conf {
                    line: line_no,
                    reason: "section header without ']'",
                });
            };
            let after = after.trim();
            if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
                return Err(AuthError::Conf {
                    line: line_no,
                    reason: "text after a section header",
                });
            }
            let name = name.trim();
            if name.is_empty() {
                return Err(AuthError::Conf {
                    line: line_no,
                    reason: "empty section name",
                });
            }
            sections.push(Section {
                name: name.to_string(),
                entries: Vec::new(),
            });
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            return Err(AuthError::Conf {
                line: line_no,
                reason: "expected `key = value`",
            });
        };
        let key = normalize_key(k);
        if key.is_empty() {
            return Err(AuthError::Conf {
                line: line_no,
                reason: "empty option name",
            });
        }
        let value = parse_value(v, line_no)?;
        let Some(section) = sections.last_mut() else {
            return Err(AuthError::Conf {
                line: line_no,
                reason: "option before any [section]",
            });
        };
        section.entries.push(Entry {
            line: line_no,
            key,
            value,
        });
    }
    Ok(sections)
}

/// A parsed `ceph.conf`.
///
/// Sections that appear twice are merged; within a section the last value of an
/// option wins. Option names are normalised (spaces, dashes and underscores are
/// equivalent), section names are kept as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CephConf {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl CephConf {
    /// Parse the text of a `ceph.conf`.
    pub fn parse(text: &str) -> Result<Self> {
        let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for s in parse_ini(text)? {
            let map = sections.entry(s.name).or_default();
            for e in s.entries {
                map.insert(e.key, e.value);
            }
        }
        Ok(CephConf { sections })
    }

    /// The section names, sorted.
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }

    /// `option` as set in exactly `section` (name normalised before lookup).
    pub fn get_in(&self, section: &str, option: &str) -> Option<&str> {
        self.sections
            .get(section)?
            .get(&normalize_key(option))
            .map(String::as_str)
    }

    /// The sections consulted for `entity`, most specific first, as Ceph's
    /// `md_config_t` does: `[type.id]`, `[type]`, `[global]` (`client.admin` →
    /// `client.admin`, `client`, `global`).
    pub fn sections_for(entity: &str) -> Vec<&str> {
        let mut v = vec![entity];
        if let Some((ty, _)) = entity.split_once('.') {
            v.push(ty);
        }
        if entity != "global" {
            v.push("global");
        }
        v
    }

    /// `option` for `entity`: the value from the most specific section that sets it
    /// ([`sections_for`](Self::sections_for)).
    pub fn get(&self, entity: &str, option: &str) -> Option<&str> {
        let key = normalize_key(option);
        Self::sections_for(entity)
            .into_iter()
            .find_map(|s| self.sections.get(s)?.get(&key))
            .map(String::as_str)
    }

    /// The typed client options for `entity` (e.g. `client.admin`), with Ceph's
    /// defaults where unset.
    ///
    /// - `mon_host`: [`parse_mon_host`]. If unset or empty, the legacy `mon addr` of
    ///   every `[mon.NAME]` section (msgr1 unless prefixed, port 6789 by default), as
    ///   `MonMap::init_with_config_file`.
    /// - `keyring`: the comma/semicolon separated list, metavariables unexpanded
    ///   ([`ClientConfig::keyring_paths`] expands them). Default
    ///   `/etc/ceph/$cluster.$name.keyring,/etc/ceph/$cluster.keyring,/etc/ceph/keyring,/etc/ceph/keyring.bin`.
    /// - `auth_client_required` (default `cephx, none`); a non-empty `auth_supported`
    ///   overrides it, as in `AuthRegistry`.
    /// - `ms_client_mode` (default `crc secure`), `ms_mon_client_mode` (default
    ///   `secure crc`).
    ///
    /// Unknown auth method or mode names are errors (upstream logs and skips them).
    pub fn client_config(&self, entity: &str) -> Result<ClientConfig> {
        let mut mon_host = match self.get(entity, "mon_host") {
            Some(v) if !v.trim().is_empty() => parse_mon_host(v)?,
            _ => Vec::new(),
        };
        if mon_host.is_empty() {
            for (name, opts) in &self.sections {
                let Some(mon) = name.strip_prefix("mon.") else {
                    continue;
                };
                if mon.is_empty() {
                    continue;
                }
                let value = [name.as_str(), "mon", "global"].into_iter().find_map(|s| {
                    if s == name {
                        opts.get("mon_addr")
                    } else {
                        self.sections.get(s)?.get("mon_addr")
                    }
                });
                if let Some(v) = value {
                    mon_host.push(parse_legacy_mon_addr(v)?);
                }
            }
        }
        let keyring = self
            .get(entity, "keyring")
            .unwrap_or(DEFAULT_KEYRING)
            .split([',', ';'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let auth = match self.get(entity, "auth_supported") {
            Some(v) if !v.trim().is_empty() => ("auth_supported", v),
            _ => (
                "auth_client_required",
                self.get(entity, "auth_client_required")
                    .unwrap_or("cephx, none"),
            ),
        };
        Ok(ClientConfig {
            mon_host,
            keyring,
            auth_client_required: parse_list(auth.0, auth.1, AuthMethod::from_name)?,
            ms_client_mode: parse_list(
                "ms_client_mode",
                self.get(entity, "ms_client_mode").unwrap_or("crc secure"),
                ConMode::from_name,
            )?,
            ms_mon_client_mode: parse_list(
                "ms_mon_client_mode",
                self.get(entity, "ms_mon_client_mode")
                    .unwrap_or("secure crc"),
                ConMode::from_name,
            )?,
        })
    }
}

const DEFAULT_KEYRING: &str =
    "/etc/ceph/$cluster.$name.keyring,/etc/ceph/$cluster.keyring,/etc/ceph/keyring,/etc/ceph/keyring.bin";

fn parse_list<T>(
    option: &'static str,
    value: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Vec<T>> {
    value
        .split([',', ';', ' ', '\t'])
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse(s).ok_or_else(|| AuthError::ConfValue {
                option,
                item: s.to_string(),
                reason: "unknown name",
            })
        })
        .collect()
}

/// An auth method name in `auth_client_required` (`CEPH_AUTH_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// `none` (`CEPH_AUTH_NONE` = 1).
    None,
    /// `cephx` (`CEPH_AUTH_CEPHX` = 2).
    Cephx,
    /// `gss` (`CEPH_AUTH_GSS` = 4; not implemented by this crate).
    Gss,
}

impl AuthMethod {
    /// The wire number (`CEPH_AUTH_*`).
    pub const fn wire(self) -> u32 {
        match self {
            AuthMethod::None => 1,
            AuthMethod::Cephx => 2,
            AuthMethod::Gss => 4,
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        match s {
            "none" => Some(AuthMethod::None),
            "cephx" => Some(AuthMethod::Cephx),
            "gss" => Some(AuthMethod::Gss),
            _ => None,
        }
    }
}

/// A msgr2 connection mode in `ms_client_mode` / `ms_mon_client_mode`
/// (`CEPH_CON_MODE_*`), in preference order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConMode {
    /// `crc` (1): integrity by crc32c only, authenticated by AUTH_SIGNATURE.
    Crc,
    /// `secure` (2): AES-128-GCM on every frame after AUTH_DONE.
    Secure,
}

impl ConMode {
    /// The wire number (`CEPH_CON_MODE_*`).
    pub const fn wire(self) -> u32 {
        match self {
            ConMode::Crc => 1,
            ConMode::Secure => 2,
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        match s {
            "crc" => Some(ConMode::Crc),
            "secure" => Some(ConMode::Secure),
            _ => None,
        }
    }
}

/// The client options of a `ceph.conf`, typed ([`CephConf::client_config`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The monitors to try, in file order.
    pub mon_host: Vec<MonEndpoint>,
    /// Keyring paths to try in order, metavariables (`$cluster`, `$name`, …) unexpanded.
    pub keyring: Vec<String>,
    /// Auth methods the client accepts, in preference order.
    pub auth_client_required: Vec<AuthMethod>,
    /// msgr2 modes to offer to OSDs, MGRs, MDSs, in preference order.
    pub ms_client_mode: Vec<ConMode>,
    /// msgr2 modes to offer to monitors, in preference order.
    pub ms_mon_client_mode: Vec<ConMode>,
}

impl ClientConfig {
    /// [`keyring`](Self::keyring) with `$cluster`, `$name`, `$type` and `$id` (and their
    /// `${…}` forms) expanded for `cluster` (usually `ceph`) and `entity` (`client.admin`).
    pub fn keyring_paths(&self, cluster: &str, entity: &str) -> Vec<String> {
        let (ty, id) = entity.split_once('.').unwrap_or((entity, ""));
        let vars = [
            ("cluster", cluster),
            ("name", entity),
            ("type", ty),
            ("id", id),
        ];
        self.keyring
            .iter()
            .map(|p| {
                let mut s = p.clone();
                for (k, v) in vars {
                    s = s
                        .replace(&format!("${{{k}}}"), v)
                        .replace(&format!("${k}"), v);
                }
                s
            })
            .collect()
    }
}

/// msgr protocol of a monitor address (`entity_addr_t` type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrProto {
    /// `v1:` (TYPE_LEGACY), msgr v1.
    V1,
    /// `v2:` (TYPE_MSGR2), msgr2.
    V2,
}

/// Where a monitor address points: an IP socket address or a name to resolve.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MonHost {
    /// A literal IPv4 or IPv6 address with its port.
    Addr(SocketAddr),
    /// A host name, not resolved here (upstream resolves it to every address it has).
    Name {
        /// The host name.
        host: String,
        /// The port.
        port: u16,
    },
}

/// One monitor address: protocol, host and port, nonce (`/N`, normally 0).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MonAddr {
    /// v1 or v2.
    pub proto: AddrProto,
    /// Address or host name, with the port.
    pub host: MonHost,
    /// The `/nonce` suffix, 0 if absent.
    pub nonce: u32,
}

impl MonAddr {
    /// The socket address, if the host is a literal IP.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match &self.host {
            MonHost::Addr(a) => Some(*a),
            MonHost::Name { .. } => None,
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        match &self.host {
            MonHost::Addr(a) => a.port(),
            MonHost::Name { port, .. } => *port,
        }
    }
}

/// Ceph's form: `v2:1.2.3.4:3300/0`, `v1:[::1]:6789/0`, `v2:mon1:3300/0`.
impl fmt::Display for MonAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.proto {
            AddrProto::V1 => "v1",
            AddrProto::V2 => "v2",
        };
        match &self.host {
            MonHost::Addr(a) => write!(f, "{p}:{a}/{}", self.nonce),
            MonHost::Name { host, port } => write!(f, "{p}:{host}:{port}/{}", self.nonce),
        }
    }
}

/// One monitor: the addresses to try for it, preferred first (an `entity_addrvec_t`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MonEndpoint {
    /// Addresses, preferred first.
    pub addrs: Vec<MonAddr>,
}

/// An address as written, before the port/protocol rules are applied.
struct RawAddr {
    proto: Option<AddrProto>,
    host: HostPart,
    port: Option<u16>,
    nonce: u32,
}

enum HostPart {
    Ip(IpAddr),
    Name(String),
}

fn bad(item: &str, reason: &'static str) -> AuthError {
    AuthError::ConfValue {
        option: "mon_host",
        item: item.to_string(),
        reason,
    }
}

fn parse_raw_addr(text: &str) -> Result<RawAddr> {
    let (proto, rest) = if let Some(r) = text.strip_prefix("v1:") {
        (Some(AddrProto::V1), r)
    } else if let Some(r) = text.strip_prefix("v2:") {
        (Some(AddrProto::V2), r)
    } else if let Some(r) = text.strip_prefix("any:") {
        (None, r)
    } else {
        (None, text)
    };
    let (rest, nonce) = match rest.rsplit_once('/') {
        Some((r, n)) => (r, n.parse().map_err(|_| bad(text, "bad nonce"))?),
        None => (rest, 0),
    };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r.split_once(']').ok_or_else(|| bad(text, "missing ']'"))?;
        let ip: std::net::Ipv6Addr = h.parse().map_err(|_| bad(text, "bad IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad(text, "text after ']'"))?,
            ),
        };
        (HostPart::Ip(IpAddr::V6(ip)), port)
    } else if rest.matches(':').count() > 1 {
        let ip: std::net::Ipv6Addr = rest.parse().map_err(|_| bad(text, "bad IPv6 address"))?;
        (HostPart::Ip(IpAddr::V6(ip)), None)
    } else {
        let (h, p) = match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        let host = match h.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => HostPart::Ip(IpAddr::V4(ip)),
            Err(_) => {
                let ok = !h.is_empty()
                    && h.len() <= 253
                    && h
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
                    && !h.starts_with(['-', '.'])
                    // All-digit-and-dot names are failed IPv4 literals, not hosts.
                    && !h.chars().all(|c| c.is_ascii_digit() || c == '.');
                if !ok {
                    return Err(bad(text, "neither an IP address nor a host name"));
                }
                HostPart::Name(h.to_ascii_lowercase())
            }
        };
        (host, p)
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>().map_err(|_| bad(text, "bad port"))? {
            0 => None,
            n => Some(n),
        },
    };
    Ok(RawAddr {
        proto,
        host,
        port,
        nonce,
    })
}

fn mon_addr(raw: &RawAddr, proto: AddrProto, port: u16) -> MonAddr {
    let host = match &raw.host {
        HostPart::Ip(ip) => MonHost::Addr(SocketAddr::new(*ip, port)),
        HostPart::Name(h) => MonHost::Name {
            host: h.clone(),
            port,
        },
    };
    MonAddr {
        proto,
        host,
        nonce: raw.nonce,
    }
}

const fn default_port(proto: AddrProto) -> u16 {
    match proto {
        AddrProto::V1 => CEPH_MON_PORT_LEGACY,
        AddrProto::V2 => CEPH_MON_PORT_IANA,
    }
}

/// `MonMap::_add_ambiguous_addr` for a client (`for_mkfs` false), with the v2 and v1
/// guesses for one address kept together as one endpoint.
fn resolve_single(raw: &RawAddr) -> MonEndpoint {
    let addrs = match (raw.proto, raw.port) {
        (Some(p), None) => vec![mon_addr(raw, p, default_port(p))],
        (Some(p), Some(port)) => vec![mon_addr(raw, p, port)],
        (None, Some(CEPH_MON_PORT_LEGACY)) => {
            vec![mon_addr(raw, AddrProto::V1, CEPH_MON_PORT_LEGACY)]
        }
        (None, Some(CEPH_MON_PORT_IANA)) => vec![mon_addr(raw, AddrProto::V2, CEPH_MON_PORT_IANA)],
        (None, None) => vec![
            mon_addr(raw, AddrProto::V2, CEPH_MON_PORT_IANA),
            mon_addr(raw, AddrProto::V1, CEPH_MON_PORT_LEGACY),
        ],
        (None, Some(port)) => vec![
            mon_addr(raw, AddrProto::V2, port),
            mon_addr(raw, AddrProto::V1, port),
        ],
    };
    MonEndpoint { addrs }
}

/// An address inside a multi-address `[…]` vector: upstream takes the vector as
/// written; here a missing port becomes its protocol's default and an untyped entry is
/// v1 on 6789, else v2.
fn resolve_in_vec(raw: &RawAddr) -> MonAddr {
    let proto = raw.proto.unwrap_or(match raw.port {
        Some(CEPH_MON_PORT_LEGACY) => AddrProto::V1,
        _ => AddrProto::V2,
    });
    mon_addr(raw, proto, raw.port.unwrap_or(default_port(proto)))
}

fn is_addrvec(token: &str) -> bool {
    token.strip_prefix('[').is_some_and(|r| {
        let r = r.trim_start();
        r.starts_with("v1:") || r.starts_with("v2:") || r.starts_with("any:")
    })
}

/// Parse a `mon_host` value into monitors, in order (`MonMap::init_with_ips`, or
/// `init_with_hosts` for names, minus the DNS lookup).
///
/// Monitors are separated by commas, semicolons, spaces or tabs (outside `[…]`).
/// Each is one of
/// - `1.2.3.4` — no port: both `v2:…:3300` and `v1:…:6789` (v2 first);
/// - `1.2.3.4:6789` — v1; `1.2.3.4:3300` — v2; any other port: v2, then v1, on it;
/// - `v1:1.2.3.4` / `v2:1.2.3.4` — that protocol on its default port; with a port,
///   exactly that; an optional `/nonce` suffix;
/// - `[v2:1.2.3.4:3300,v1:1.2.3.4:6789]` — an address vector, taken as written;
/// - IPv6 as `[::1]:3300` or bare `::1`, and host names (`mon1.example.com:6789`),
///   with the same rules; names are lowercased and not resolved.
///
/// Upstream makes the two guesses for an ambiguous address two monmap entries
/// (`noname-a`, `noname-a-legacy`); here they are one [`MonEndpoint`] with two
/// addresses, which is what a client tries in turn anyway.
pub fn parse_mon_host(value: &str) -> Result<Vec<MonEndpoint>> {
    let mut out = Vec::new();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut start = None;
    for (i, c) in value.char_indices() {
        let sep = matches!(c, ',' | ';' | ' ' | '\t') && depth == 0;
        if sep {
            if let Some(s) = start.take() {
                tokens.push(&value[s..i]);
            }
            continue;
        }
        if start.is_none() {
            start = Some(i);
        }
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if let Some(s) = start {
        tokens.push(&value[s..]);
    }
    for token in tokens {
        if is_addrvec(token) {
            let inner = token
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .ok_or_else(|| bad(token, "address vector without ']'"))?;
            let raws = inner
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(parse_raw_addr)
                .collect::<Result<Vec<_>>>()?;
            match raws.as_slice() {
                [] => return Err(bad(token, "empty address vector")),
                [one] => out.push(resolve_single(one)),
                many => out.push(MonEndpoint {
                    addrs: many.iter().map(resolve_in_vec).collect(),
                }),
            }
        } else {
            out.push(resolve_single(&parse_raw_addr(token)?));
        }
    }
    Ok(out)
}

/// A legacy `mon addr` (`[mon.NAME]` sections): v1 unless prefixed, default port 6789.
fn parse_legacy_mon_addr(value: &str) -> Result<MonEndpoint> {
    let raw = parse_raw_addr(value.trim())?;
    let proto = raw.proto.unwrap_or(AddrProto::V1);
    let port = raw.port.unwrap_or(match proto {
        AddrProto::V1 => CEPH_MON_PORT_LEGACY,
        AddrProto::V2 => CEPH_MON_PORT_IANA,
    });
    Ok(MonEndpoint {
        addrs: vec![mon_addr(&raw, proto, port)],
    })
}
