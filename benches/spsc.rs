//! Throughput of the shard-to-shard SPSC ring (`darter::spsc`).
//!
//! * `spsc/two_threads_stream_1m`: one thread pushes 1M `u64`s, another pops
//!   them (spinning when full/empty); reports messages per second.
//! * `spsc/two_threads_ping_pong`: a round trip over two rings per message,
//!   i.e. the cross-thread latency a request/reply between shards pays.
//! * `spsc/single_thread_push_pop`: push then pop on one thread, the
//!   uncontended cost of the two operations.
//!
//! Run with `cargo bench --bench spsc`.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use darter::spsc::channel;

const STREAM: u64 = 1_000_000;
const PING_PONGS: u64 = 10_000;

/// Busy-wait step: spin briefly, then yield so that an oversubscribed machine
/// (2 cores here, often shared with builds) can run the other side.
#[inline]
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 128 {
        std::hint::spin_loop();
    } else {
        *spins = 0;
        thread::yield_now();
    }
}

fn two_threads_stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("spsc");
    group.throughput(Throughput::Elements(STREAM));
    group.sample_size(10);
    for cap in [64usize, 1024] {
        group.bench_function(format!("two_threads_stream_1m/cap{cap}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (mut tx, mut rx) = channel::<u64>(cap);
                    let consumer = thread::spawn(move || {
                        let mut sum = 0u64;
                        let mut got = 0;
                        let mut spins = 0;
                        while got < STREAM {
                            if let Some(v) = rx.pop() {
                                sum = sum.wrapping_add(v);
                                got += 1;
                            } else {
                                backoff(&mut spins);
                            }
                        }
                        sum
                    });
                    let start = Instant::now();
                    let mut spins = 0;
                    for i in 0..STREAM {
                        let mut v = i;
                        while let Err(back) = tx.push(v) {
                            v = back;
                            backoff(&mut spins);
                        }
                    }
                    let sum = consumer.join().unwrap();
                    total += start.elapsed();
                    assert_eq!(sum, STREAM * (STREAM - 1) / 2);
                }
                total
            });
        });
    }
    group.finish();
}

fn two_threads_ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("spsc");
    group.throughput(Throughput::Elements(PING_PONGS));
    group.sample_size(10);
    group.bench_function("two_threads_ping_pong", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (mut ping_tx, mut ping_rx) = channel::<u64>(64);
                let (mut pong_tx, mut pong_rx) = channel::<u64>(64);
                let echo = thread::spawn(move || {
                    let mut n = 0;
                    let mut spins = 0;
                    while n < PING_PONGS {
                        if let Some(v) = ping_rx.pop() {
                            while pong_tx.push(v + 1).is_err() {
                                backoff(&mut spins);
                            }
                            n += 1;
                        } else {
                            backoff(&mut spins);
                        }
                    }
                });
                let start = Instant::now();
                let mut spins = 0;
                for i in 0..PING_PONGS {
                    ping_tx.push(i).unwrap();
                    let reply = loop {
                        if let Some(v) = pong_rx.pop() {
                            break v;
                        }
                        backoff(&mut spins);
                    };
                    assert_eq!(reply, i + 1);
                }
                total += start.elapsed();
                echo.join().unwrap();
            }
            total
        });
    });
    group.finish();
}

fn single_thread_push_pop(c: &mut Criterion) {
    const BATCH: u64 = 1024;
    let mut group = c.benchmark_group("spsc");
    group.throughput(Throughput::Elements(BATCH));
    let (mut tx, mut rx) = channel::<u64>(BATCH as usize);
    group.bench_function("single_thread_push_pop/one_at_a_time", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                tx.push(black_box(i)).unwrap();
                black_box(rx.pop());
            }
        });
    });
    group.bench_function("single_thread_push_pop/batch_1024", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                tx.push(black_box(i)).unwrap();
            }
            for _ in 0..BATCH {
                black_box(rx.pop());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, two_threads_stream, two_threads_ping_pong, single_thread_push_pop);
criterion_main!(benches);
