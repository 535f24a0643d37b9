//! Runtime shims: thin drivers that put a [`Connection`](crate::Connection) on a real
//! socket. Each one only moves bytes, time and commands between the runtime and the core;
//! every protocol decision stays in the core.
//!
//! | shim | feature | for |
//! |---|---|---|
//! | [`blocking`] | always | simple programs on `std::net` |
//! | `tokio` | `tokio` | a connection task with a cloneable handle |
//! | `futures_io` | `smol` | any `futures-io` `AsyncRead + AsyncWrite` (smol, async-std users) |
//! | `mio` | `mio` | many connections on one thread |

pub mod blocking;
#[cfg(feature = "smol")]
pub mod futures_io;
#[cfg(all(feature = "mio", unix))]
mod in_place;
#[cfg(feature = "mio")]
pub mod mio;
#[cfg(feature = "tokio")]
pub mod tokio;
