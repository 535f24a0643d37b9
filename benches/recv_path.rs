//! Receive path without sockets: parse + CRC-verify whole message records (64 B, 4 KiB,
//! 64 KiB, 4 MiB data), next to bare crc32c over the same bytes (each record's data where
//! it lies in the stream). `receiver` copies the stream in 64 KiB pieces (`push`, what
//! `handle_input` does); `in_place` parses bytes already in the receive buffer (what
//! `read_with` gives: the socket's copy is the only one).

use std::hint::black_box;

use bytes::Bytes;
use ceph_msgr::recv::{Limits, Receiver, Record};
use ceph_msgr::wire::feature::MSG_AUTH;
use ceph_msgr::wire::{ceph_crc32c, FooterKind};
use ceph_msgr::{EntityName, Message, Messenger};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// `count` encoded messages with `size` bytes of data each.
fn stream(size: usize, count: usize) -> Vec<u8> {
    let payload = Bytes::from((0..size).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>());
    let mut m = Messenger::new(EntityName::client(1), MSG_AUTH);
    let mut out = Vec::new();
    for _ in 0..count {
        let _ = m.queue(Message::new(42).with_data_chunk(payload.clone()));
    }
    while m.write_to(&mut out).unwrap() > 0 {}
    out
}

fn bench(c: &mut Criterion) {
    for (name, size, count) in [
        ("64B", 64usize, 4096usize),
        ("4KiB", 4096, 1024),
        ("64KiB", 64 << 10, 64),
        ("4MiB", 4 << 20, 4),
    ] {
        let bytes = stream(size, count);
        let mut g = c.benchmark_group(format!("recv_path/{name}"));
        g.throughput(Throughput::Bytes((size * count) as u64));
        if size >= 4 << 20 {
            g.sample_size(20);
        }
        let mut rx = Receiver::new(FooterKind::New, Limits::default());
        g.bench_function("receiver", |b| {
            b.iter(|| {
                let mut n = 0;
                for chunk in bytes.chunks(64 << 10) {
                    rx.push(chunk);
                    while let Some(r) = rx.next_record().unwrap() {
                        if let Record::Message(m) = r {
                            n += black_box(m.data.len());
                        }
                    }
                }
                assert_eq!(n, size * count);
            });
        });
        g.bench_function("in_place", |b| {
            b.iter_batched_ref(
                || {
                    let mut rx = Receiver::new(FooterKind::New, Limits::default());
                    rx.read_buffer(bytes.len()).extend_from_slice(&bytes);
                    rx
                },
                |rx| {
                    let mut n = 0;
                    while let Some(r) = rx.next_record().unwrap() {
                        if let Record::Message(m) = r {
                            n += black_box(m.data.len());
                        }
                    }
                    assert_eq!(n, size * count);
                },
                BatchSize::PerIteration,
            );
        });
        // The same bytes: each record's data section where it lies in the stream (so a
        // 4 MiB run reads 16 MiB, as the parser does, not one buffer that stays in cache).
        let record = 54 + size + 21; // tag + header, data, new footer
        assert_eq!(bytes.len(), count * record);
        g.bench_function("bare_crc32c", |b| {
            b.iter(|| {
                let mut c = 0;
                for i in 0..count {
                    let at = i * record + 54;
                    c ^= ceph_crc32c(0, black_box(&bytes[at..at + size]));
                }
                c
            });
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
