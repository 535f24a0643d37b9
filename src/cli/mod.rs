//! Subcommands of the `ceph-msgr` binary.

pub mod replay;
#[cfg(feature = "mio")]
pub mod serve;
