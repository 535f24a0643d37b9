//! `ceph-msgr`: command-line front end of the ceph-msgr crate.

use std::process::ExitCode;

mod cli;

const USAGE: &str = "\
usage:
  ceph-msgr replay SCRIPT --out DIR [--quiet]
      Run an event script through the Messenger and write DIR/conn-N.bin, the bytes
      each connection carried (message stream only). Prints a per-message summary.
  ceph-msgr demo [--messages N] [--revoke-every K] [--fail-every F] [--seed S]
                 [--timeout SECS] [--quiet] [--sabotage]
      Start an embedded server on 127.0.0.1 and a lossless client (tokio shim), send N
      messages of mixed sizes (64 B .. 1 MiB; default 12000), revoke every K-th one
      (default 10; 0: none) right after queueing, a moment later or a few messages
      later, break the connection every F messages (default 500; 0: never). Shows
      progress on stderr and a summary on stdout; exits non-zero unless every message
      not revoked was delivered exactly once, in order, byte-identical (revoked ones
      at most once). --sabotage makes the checker expect wrong bytes for message 1,
      to show that a failed check fails the run.
  ceph-msgr help
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("replay") => cli::replay::run(&args[1..]),
        #[cfg(feature = "tokio")]
        Some("demo") => cli::demo::run(&args[1..]),
        #[cfg(not(feature = "tokio"))]
        Some("demo") => Err("this build lacks the `tokio` feature, which `demo` needs".to_owned()),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}")),
        None => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ceph-msgr: {e}");
            ExitCode::FAILURE
        }
    }
}
