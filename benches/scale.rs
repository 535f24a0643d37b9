//! Costs that must not grow with the queue: revoke with 1, 1,000 and 100,000 messages
//! queued; and an ack that trims many messages.

use std::hint::black_box;

use bytes::Bytes;
use ceph_msgr::wire::feature::MSG_AUTH;
use ceph_msgr::{EntityName, Message, Messenger, MsgId};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn filled(n: usize, written: bool) -> (Messenger, Vec<MsgId>) {
    let mut m = Messenger::new(EntityName::client(1), MSG_AUTH);
    let front = Bytes::from_static(b"0123456789abcdef");
    let ids = (0..n)
        .map(|i| {
            m.queue(
                Message::new(42)
                    .with_tid(i as u64)
                    .with_front(front.clone()),
            )
            .unwrap()
        })
        .collect();
    if written {
        let mut sink = std::io::sink();
        while m.write_to(&mut sink).unwrap() > 0 {}
    }
    (m, ids)
}

fn bench(c: &mut Criterion) {
    // Per-revoke cost with N messages queued (unsent) or written (awaiting ack): only the
    // revokes are timed, spread over the whole queue.
    let mut g = c.benchmark_group("revoke");
    for n in [1usize, 1_000, 100_000] {
        for written in [false, true] {
            let name = format!("{}/{n}", if written { "written" } else { "queued" });
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut total = std::time::Duration::ZERO;
                    let mut done = 0u64;
                    while done < iters {
                        let (mut m, ids) = filled(n, written);
                        let k = (iters - done).min(n as u64).min(1000) as usize;
                        let step = (n / k).max(1);
                        let t = std::time::Instant::now();
                        for i in 0..k {
                            let _ = black_box(m.revoke(ids[(i * step + step / 2) % n]));
                        }
                        total += t.elapsed();
                        done += k as u64;
                    }
                    total
                });
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("ack");
    for n in [1usize, 1_000, 100_000] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("trim/{n}"), |b| {
            b.iter_batched_ref(
                || filled(n, true),
                |(m, _)| {
                    let s = m.out_seq();
                    m.on_ack(s);
                    assert!(m.is_empty());
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
