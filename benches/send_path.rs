//! Send path without sockets: queue → poll_transmit → fill → advance → ack, CRCs included,
//! next to bare crc32c over the same bytes.
//!
//! `cargo bench --bench send_path` prints messages/s (elements) and bytes/s for each size,
//! for msgr v1 (`messenger`) and msgr2.1 crc mode (`messenger_v2`) framing.

use std::hint::black_box;
use std::io::IoSlice;

use bytes::Bytes;
use ceph_msgr::wire::{ceph_crc32c, feature::MSG_AUTH};
use ceph_msgr::{EntityName, Message, Messenger, Protocol};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// Sends `count` messages carrying `payload` as data, draining the messenger with a
/// 64-slice vectored "socket" that accepts everything, acking every 64 messages.
fn send_all(m: &mut Messenger, payload: &Bytes, count: usize) -> u64 {
    let mut total = 0u64;
    for _ in 0..count {
        let _ = m
            .queue(Message::new(42).with_data_chunk(payload.clone()))
            .unwrap();
        if m.len() >= 64 {
            total += drain(m);
            let seq = m.out_seq();
            m.on_ack(seq);
        }
    }
    total += drain(m);
    let seq = m.out_seq();
    m.on_ack(seq);
    total
}

fn drain(m: &mut Messenger) -> u64 {
    let mut total = 0;
    loop {
        let t = m.poll_transmit();
        let mut slices = [IoSlice::new(&[]); 64];
        let k = t.fill(&mut slices);
        if k == 0 {
            return total;
        }
        let n: usize = slices[..k].iter().map(|s| black_box(s.len())).sum();
        m.advance(n).unwrap();
        total += n as u64;
    }
}

fn bench(c: &mut Criterion) {
    for (name, size, batch) in [
        ("64B", 64usize, 1024usize),
        ("4KiB", 4096, 1024),
        ("64KiB", 64 << 10, 128),
        ("4MiB", 4 << 20, 4),
    ] {
        let payload = Bytes::from((0..size).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>());
        let mut g = c.benchmark_group(format!("send_path/{name}"));
        g.throughput(Throughput::Bytes((size * batch) as u64));
        if size >= 4 << 20 {
            g.sample_size(20);
        }
        g.bench_function("messenger", |b| {
            b.iter_batched_ref(
                || Messenger::new(EntityName::client(1), MSG_AUTH),
                |m| send_all(m, &payload, batch),
                BatchSize::LargeInput,
            );
        });
        g.bench_function("messenger_v2", |b| {
            b.iter_batched_ref(
                || Messenger::with_protocol(Protocol::V2, EntityName::client(1), MSG_AUTH),
                |m| send_all(m, &payload, batch),
                BatchSize::LargeInput,
            );
        });
        g.bench_function("bare_crc32c", |b| {
            b.iter(|| {
                let mut c = 0;
                for _ in 0..batch {
                    c ^= ceph_crc32c(0, black_box(&payload));
                }
                c
            });
        });
        g.finish();
        let mut g = c.benchmark_group(format!("send_path_msgs/{name}"));
        g.throughput(Throughput::Elements(batch as u64));
        if size >= 4 << 20 {
            g.sample_size(20);
        }
        g.bench_function("messenger", |b| {
            b.iter_batched_ref(
                || Messenger::new(EntityName::client(1), MSG_AUTH),
                |m| send_all(m, &payload, batch),
                BatchSize::LargeInput,
            );
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
