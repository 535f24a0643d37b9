//! Memory held by an idle connection: open sessions (handshake done, a message exchanged
//! each way and acknowledged), measured with a counting allocator. Prints bytes per
//! connection (heap + the `Connection` value itself).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

#[path = "../tests/common/pair.rs"]
mod pair;

use bytes::Bytes;
use ceph_msgr::conn::Connection;
use ceph_msgr::Message;
use pair::Pair;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
}

#[global_allocator]
static A: Counting = Counting;

fn main() {
    const N: usize = 1000;
    let before = LIVE.load(Ordering::Relaxed);
    let mut pairs = Vec::with_capacity(N);
    let vec_bytes = N * std::mem::size_of::<Pair>();
    for i in 0..N {
        let (c, s) = Pair::default_configs();
        let mut p = Pair::new(c, s);
        p.pump();
        p.client
            .send(
                Message::new(42)
                    .with_tid(i as u64)
                    .with_front(Bytes::from_static(b"hello")),
            )
            .unwrap();
        p.server
            .send(Message::new(43).with_front(Bytes::from_static(b"world")))
            .unwrap();
        p.pump();
        p.client_events.clear();
        p.client_events.shrink_to_fit();
        p.server_events.clear();
        p.server_events.shrink_to_fit();
        pairs.push(p);
    }
    let inline = std::mem::size_of::<Connection>();
    let per_conn = |live: isize| ((live - before) as usize - vec_bytes) / (2 * N);
    let busy_heap = per_conn(LIVE.load(Ordering::Relaxed));
    for p in &mut pairs {
        p.client.shrink_to_fit();
        p.server.shrink_to_fit();
    }
    let idle_heap = per_conn(LIVE.load(Ordering::Relaxed));
    println!("open connections measured: {}", 2 * N);
    println!("Connection value (inline): {inline} bytes");
    println!(
        "heap per connection after traffic: {busy_heap} bytes (total {} bytes)",
        busy_heap + inline
    );
    println!(
        "heap per idle connection after shrink_to_fit: {idle_heap} bytes (total {} bytes)",
        idle_heap + inline
    );
    assert!(pairs.iter().all(|p| p.client.messenger().is_empty()));
}
