//! Subcommands of the `ceph-msgr` binary.

use std::fmt;
use std::io::{self, Write as _};

/// `println!` for the subcommands, without its panic when stdout is gone: see
/// [`write_stdout`].
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` likewise.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// `eprintln!` without its panic: logs on stderr are best effort (a closed stderr must
/// not take a server down). Unused in a build without the runtime features.
#[allow(unused_macros)]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

#[cfg(feature = "tokio")]
pub mod demo;
pub mod mon_status;
pub mod replay;
#[cfg(feature = "tokio")]
pub mod send;
#[cfg(feature = "mio")]
pub mod serve;

/// Writes to stdout. `println!` panics when stdout cannot be written; a command whose
/// output is piped into a program that has already exited (`ceph-msgr mon-status … |
/// head -1`) ends quietly instead, with the exit code a shell reports for a writer killed
/// by SIGPIPE (141), and any other write error (a full disk) ends it with a message and
/// exit code 1.
pub fn write_stdout(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        let _ = writeln!(io::stderr(), "ceph-msgr: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// A failed subcommand: the message for stderr and the process exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code (1: usage or generic failure; subcommands document others).
    pub code: u8,
    /// One line saying what went wrong.
    pub msg: String,
}

impl Failure {
    /// A failure with a specific exit code.
    pub fn new(code: u8, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
        }
    }
}

impl From<String> for Failure {
    fn from(msg: String) -> Self {
        Self { code: 1, msg }
    }
}

impl From<&str> for Failure {
    fn from(msg: &str) -> Self {
        Self::from(msg.to_owned())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}
