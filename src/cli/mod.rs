//! Subcommands of the `ceph-msgr` binary.

pub mod replay;
