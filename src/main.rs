//! `ceph-msgr`: command-line front end of the ceph-msgr crate.

use std::process::ExitCode;

mod cli;

const USAGE: &str = "\
usage:
  ceph-msgr replay SCRIPT --out DIR [--quiet]
      Run an event script through the Messenger and write DIR/conn-N.bin, the bytes
      each connection carried (message stream only). Prints a per-message summary.
  ceph-msgr help
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("replay") => cli::replay::run(&args[1..]),
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
