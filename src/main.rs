//! `ceph-msgr`: command-line front end of the ceph-msgr crate.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::process::ExitCode;

mod cli;

const USAGE: &str = "\
usage:
  ceph-msgr replay SCRIPT --out DIR [--protocol v1|v2] [--quiet]
      Run an event script through the Messenger and write DIR/conn-N.bin, the bytes
      each connection carried (message frames only). Prints a per-message summary.
      --protocol picks the framing: v1 (default, `ceph v027`) or v2 (msgr2.1 crc).
  ceph-msgr serve --listen IP:PORT [--lossless] [--as mon|osd|mds|TYPE.NUM]
                  [--features HEX] [--strict] [--v1-only] [--busy-poll-us N] [--quiet]
      Run a Ceph messenger server (mio reactor, one thread) that accepts any number of
      clients, msgr v1 and msgr2.1 crc mode on the same port: it waits for each
      client's banner and speaks the protocol it shows (--v1-only: v1 only, banner
      sent at once, as before msgr2). Prints the bound address (IP:PORT; port 0 picks
      one) as the first stdout line, logs each connection (with protocol=v1|v2) and
      message on stderr, acknowledges messages and answers keepalives. Default: mon.0,
      lossy like a real monitor, accepting any client protocol version; with --as or
      --strict it answers BADPROTOVER to v1 clients that do not speak its type's
      (15 mon, 24 osd, 32 mds). msgr2 has no protocol version: --as names the type v2
      clients see in HELLO (a v2 client dialing another type refuses it itself), and
      --strict changes nothing for them. --lossless keeps v1 sessions across
      reconnects; a v2 client gets a new session per transport (no msgr2 session
      resume). --busy-poll-us N keeps polling for N µs after activity before sleeping
      (lower latency where waking is slow). On SIGINT/SIGTERM prints per-connection
      totals (protocol=…) and a `total` line (v1=N v2=M connections), exits 0.
  ceph-msgr mon-status ADDR [--json] [--timeout SECS] [--legacy-monmap] [--name NAME]
      Connect to a Ceph monitor (ADDR: v2:IP:PORT or v1:IP:PORT for that protocol; a
      bare IP:PORT tries msgr2 then v1 there, a bare IP v2 on 3300 then v1 on 6789; an
      address vector such as [v2:IP:3300,v1:IP:6789] from ceph.conf tries its v2 entry
      first), authenticate with auth none, subscribe to the monitor map and print the fsid, the
      monmap epoch, the monitors' addresses, the osdmap version, the negotiated features
      by name and the handshake and keepalive round-trip times. --legacy-monmap
      advertises the kernel-like feature set without MONNAMES/MONENC (legacy monmap
      encoding).
      Exit codes: 1 bad arguments, 2 refused, 3 closed by the monitor, 4 timeout,
      5 authentication failed, 6 protocol error, 7 other socket error.
  ceph-msgr demo [--messages N] [--revoke-every K] [--fail-every F] [--seed S]
                 [--protocol v1|v2] [--timeout SECS] [--quiet] [--sabotage]
      Start an embedded server on 127.0.0.1 (both protocols on one listener) and a
      lossless client (tokio shim) speaking --protocol (default v2: msgr2.1 crc), send
      N messages of mixed sizes (64 B .. 1 MiB; default 12000), revoke every K-th one
      (default 10; 0: none) right after queueing, a moment later or a few messages
      later (mid-frame: an aborted footer in v1, an ABORTED frame in v2; the server
      drops both), break the connection every F messages (default 500; 0: never).
      Shows progress on stderr and a summary on stdout; exits non-zero unless every
      message not revoked was delivered, in order, byte-identical. v1: exactly once,
      by one server session resumed across transports (revoked ones at most once).
      v2: the server keeps no msgr2 session across transports, and the client resends
      what was not acknowledged, so after a break the new server session may deliver
      that tail again; checked: at least once, each session in order without
      duplicates, first deliveries in order, repeats only at a session's start
      (exactly once with --fail-every 0). --sabotage makes the checker expect wrong
      bytes for message 1, to show that a failed check fails the run.
  ceph-msgr send ADDR [--size BYTES] [--count N] [--in-flight K] [--peer mon|osd|mds]
                 [--protocol v1|v2] [--connections C] [--busy-poll-us N] [--json]
      Load generator (tokio shim): send N messages with BYTES of data (default 10000 x
      4096) to a server such as `ceph-msgr serve`, at most K unacknowledged (default
      16), wait until every one is acknowledged, print the protocol, msgs/s, MB/s and
      the message->ACK latency (p50/p99). --protocol: v2 (msgr2.1 crc, default) or v1;
      an ADDR of v1:IP:PORT or v2:IP:PORT picks it too. --peer is the server's type
      (default mon, as serve is): the v1 protocol version, or the type msgr2 expects in
      the server's HELLO. --connections splits the count over C connections;
      --busy-poll-us as for serve.
  ceph-msgr help   (or: ceph-msgr COMMAND --help)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `ceph-msgr COMMAND --help` prints the usage too.
    let help = args.iter().skip(1).any(|a| a == "--help" || a == "-h");
    let result = match args.first().map(String::as_str) {
        Some(_) if help => {
            cli::write_stdout(format_args!("{USAGE}"));
            Ok(())
        }
        Some("replay") => cli::replay::run(&args[1..]).map_err(cli::Failure::from),
        Some("mon-status") => cli::mon_status::run(&args[1..]),
        #[cfg(feature = "mio")]
        Some("serve") => cli::serve::run(&args[1..]).map_err(cli::Failure::from),
        #[cfg(not(feature = "mio"))]
        Some("serve") => Err("this build lacks the `mio` feature that `serve` needs".into()),
        #[cfg(feature = "tokio")]
        Some("send") => cli::send::run(&args[1..]).map_err(cli::Failure::from),
        #[cfg(feature = "tokio")]
        Some("demo") => cli::demo::run(&args[1..]).map_err(cli::Failure::from),
        #[cfg(not(feature = "tokio"))]
        Some("demo") => Err("this build lacks the `tokio` feature that `demo` needs".into()),
        Some("help" | "-h" | "--help") => {
            cli::write_stdout(format_args!("{USAGE}"));
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}").into()),
        None => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ceph-msgr: {e}");
            ExitCode::from(e.code)
        }
    }
}
