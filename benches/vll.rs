//! The shard's VLL queue (`darter::vll`) without the server: what scheduling and
//! running queued transactions costs as the queue grows.
//!
//! * `vll/schedule_drain_hot_key/N`: a multi-shard writer holds key `hot`; N
//!   single-shard commands queue behind it (every third a writer, the rest readers,
//!   each also writing a key of its own); the writer leaves and the queue drains
//!   hop by hop, as `pump` does. Throughput is per queued command.
//! * `vll/queue_behind_waiting/N`: as the server does it: a multi-shard writer on `hot`
//!   waits for its hop while N single-shard commands on `hot` arrive one by one, each
//!   followed by a look for runnable hops (`pump`, which finds none); then the writer
//!   leaves and the queue drains. A scan of the queue per look made this O(N²).
//! * `vll/hop_in_long_queue/N`: N multi-shard transactions on distinct keys wait for
//!   their hops; one hop is attached and taken (the cost of a hop as the queue grows).
//! * `vll/local_one_key`: one contended single-shard command on its own key:
//!   schedule, take, remove (the common case; it should not pay for the queue).
//!
//! Run with `cargo bench --bench vll`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use darter::vll::{LockKey, Vll};

fn lock(key: &str, exclusive: bool) -> LockKey {
    LockKey { key: key.as_bytes().into(), exclusive }
}

fn schedule_drain_hot_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("vll");
    group.sample_size(10);
    for n in [100u64, 1_000, 10_000] {
        let sets: Vec<Vec<LockKey>> =
            (0..n).map(|i| vec![lock("hot", i % 3 == 0), lock(&format!("own{i}"), true)]).collect();
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::new("schedule_drain_hot_key", n), &sets, |b, sets| {
            b.iter(|| {
                let mut v: Vll<u64> = Vll::default();
                v.schedule_global(1, vec![lock("hot", true)]);
                for (i, keys) in sets.iter().enumerate() {
                    v.schedule_local(keys.clone(), i as u64);
                }
                v.remove((1, 0));
                black_box(drain(&mut v))
            })
        });
    }
    group.finish();
}

/// Runs and removes every queued entry in order; the sum of their payloads.
fn drain(v: &mut Vll<u64>) -> u64 {
    let mut sum = 0;
    while let Some((id, job)) = v.next_runnable() {
        sum += job;
        v.remove(id);
    }
    sum
}

fn queue_behind_waiting(c: &mut Criterion) {
    let mut group = c.benchmark_group("vll");
    group.sample_size(10);
    for n in [100u64, 1_000, 10_000] {
        let sets: Vec<Vec<LockKey>> = (0..n).map(|i| vec![lock("hot", i % 3 == 0)]).collect();
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::new("queue_behind_waiting", n), &sets, |b, sets| {
            b.iter(|| {
                let mut v: Vll<u64> = Vll::default();
                v.schedule_global(1, vec![lock("hot", true)]);
                for (i, keys) in sets.iter().enumerate() {
                    v.schedule_local(keys.clone(), i as u64);
                    assert!(v.next_runnable().is_none());
                }
                v.remove((1, 0));
                black_box(drain(&mut v))
            })
        });
    }
    group.finish();
}

fn hop_in_long_queue(c: &mut Criterion) {
    let mut group = c.benchmark_group("vll");
    for n in [100u64, 10_000] {
        let mut v: Vll<u64> = Vll::default();
        for t in 1..=n {
            v.schedule_global(t, vec![lock(&format!("k{t}"), true)]);
        }
        // The newest transaction: a scan from the front passes all the others.
        group.bench_function(BenchmarkId::new("hop_in_long_queue", n), |b| {
            b.iter(|| {
                v.set_pending((n, 0), n).expect("scheduled");
                black_box(v.next_runnable())
            })
        });
    }
    group.finish();
}

fn local_one_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("vll");
    let keys = vec![lock("key:000000000001", true)];
    group.bench_function("local_one_key", |b| {
        let mut v: Vll<u64> = Vll::default();
        b.iter(|| {
            v.schedule_local(keys.clone(), 1);
            let (id, job) = v.next_runnable().expect("runnable");
            v.remove(id);
            black_box(job)
        })
    });
    group.finish();
}

criterion_group!(benches, schedule_drain_hot_key, queue_behind_waiting, hop_in_long_queue, local_one_key);
criterion_main!(benches);
