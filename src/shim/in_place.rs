//! Reading from a socket straight into a receive buffer's spare capacity.
//!
//! This is the crate's one reviewed exception to `#![forbid(unsafe_code)]`, and the only
//! module allowed `unsafe`. Safe Rust cannot hand a reader uninitialized memory, so a safe
//! shim either reads into a scratch buffer and copies (what the mio shim did: `memmove`
//! was 30% of `ceph-msgr serve`'s CPU time receiving 4 MiB messages) or zeroes the spare
//! capacity first (which cost what the copy saved). tokio's `try_read_buf` reads in place
//! with `unsafe` of its own; this does the same for the mio shim.
//!
//! The exception is one `set_len` on a `BytesMut`, after `socket2`'s `recv`, a safe
//! function that takes `&mut [MaybeUninit<u8>]`, never writes uninitialized bytes to it,
//! and returns how many bytes the kernel wrote at its start.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::os::fd::AsFd;

use bytes::BytesMut;
use socket2::SockRef;

/// Receives once from `sock` into `buf`'s spare capacity and appends what arrived (no
/// copy, no zeroing). Returns the byte count, 0 at end of stream (or when `buf` has no
/// spare capacity: callers reserve room first).
pub(crate) fn recv_into(sock: &impl AsFd, buf: &mut BytesMut) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let room = spare.len();
    if room == 0 {
        return Ok(0);
    }
    let n = SockRef::from(sock).recv(spare)?;
    // A kernel that reports more than it was offered would make `set_len` expose memory
    // it never wrote: refuse it (it cannot happen with recv(2)).
    if n > room {
        return Err(io::Error::other(format!(
            "recv reported {n} bytes into a {room}-byte buffer"
        )));
    }
    // SAFETY: `recv` passed `spare` (the `room` bytes right after `buf`'s `len` bytes,
    // inside its capacity) to recv(2), which wrote the first `n` of them; `n <= room` was
    // checked above. So the `len + n` bytes from the start of `buf` are initialized and
    // within its capacity, which is what `set_len` requires.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn appends_after_what_is_buffered_and_reports_end_of_stream() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut w = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (r, _) = l.accept().unwrap();
        w.write_all(b"hello, world").unwrap();
        drop(w);
        let mut buf = BytesMut::from(&b"abc"[..]);
        // No room: nothing is read (and nothing is touched).
        let mut full = BytesMut::with_capacity(0);
        assert_eq!(recv_into(&r, &mut full).unwrap(), 0);
        let mut got = 0;
        while got < 12 {
            buf.reserve(5);
            let n = recv_into(&r, &mut buf).unwrap();
            assert!(n > 0);
            got += n;
        }
        assert_eq!(&buf[..], b"abchello, world");
        buf.reserve(16);
        assert_eq!(recv_into(&r, &mut buf).unwrap(), 0, "end of stream");
        assert_eq!(&buf[..], b"abchello, world");
    }
}
