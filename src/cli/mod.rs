//! Subcommands of the `ceph-msgr` binary.

use std::fmt;

#[cfg(feature = "tokio")]
pub mod demo;
pub mod mon_status;
pub mod replay;
#[cfg(feature = "tokio")]
pub mod send;
#[cfg(feature = "mio")]
pub mod serve;

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
