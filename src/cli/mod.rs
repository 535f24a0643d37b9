//! Subcommands of the `ceph-msgr` binary.

#[cfg(feature = "tokio")]
pub mod demo;
pub mod replay;
