//! DashTable vs hashbrown: insert / lookup throughput at 1M entries (10M
//! too with `DASH_BENCH_10M=1`), plus a printed report of the maximum
//! single-insert latency while growing from empty to 10M entries
//! (`DASH_LATENCY_N` to change the size, `DASH_SKIP_LATENCY=1` to skip).
//!
//! Run: `cargo bench --bench dash` (criterion filters work as usual; the
//! latency report runs first unless skipped or in `--test`/`--list` mode).

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use darter::dash::{DashTable, hash_bytes, hash_u64};

type HbMap<K, V> = hashbrown::HashMap<K, V>;
type HbDash<K, V> = hashbrown::HashMap<K, V, DashBuild>;

/// hashbrown driven by the Dash hash functions, to compare table
/// structures with the same hash.
#[derive(Clone, Copy, Default)]
struct DashBuild;
struct DashHasher(u64);
impl BuildHasher for DashBuild {
    type Hasher = DashHasher;
    fn build_hasher(&self) -> DashHasher {
        DashHasher(0)
    }
}
impl Hasher for DashHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash_bytes(bytes, self.0);
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = hash_u64(x, self.0);
    }
    fn write_usize(&mut self, x: usize) {
        // slice length prefix: fold it in cheaply
        self.0 ^= x as u64;
    }
}

/// Distinct pseudo-random u64 keys (splitmix64 is a bijection).
fn keys_u64(n: usize) -> Vec<u64> {
    (0..n as u64)
        .map(|i| {
            let mut z = i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .collect()
}

/// Redis-like keys "key:0000000042".
fn keys_bytes(n: usize) -> Vec<Box<[u8]>> {
    (0..n)
        .map(|i| format!("key:{i:010}").into_bytes().into_boxed_slice())
        .collect()
}

/// Same keys in a scrambled order (lookups should not follow insert order).
fn shuffled<T: Clone>(v: &[T]) -> Vec<T> {
    let n = v.len();
    let mut out = v.to_vec();
    let mut x = 0x1234_5678_9abc_def0u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.swap(i, (x % (i as u64 + 1)) as usize);
    }
    out
}

fn sizes() -> Vec<usize> {
    let mut v = vec![1_000_000];
    if std::env::var_os("DASH_BENCH_10M").is_some() {
        v.push(10_000_000);
    }
    v
}

fn bench_insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("insert_u64");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for n in sizes() {
        let keys = keys_u64(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("dash", n), &keys, |b, keys| {
            b.iter_with_large_drop(|| {
                let mut t = DashTable::with_seed(1);
                for &k in keys {
                    t.insert(k, k);
                }
                t
            })
        });
        g.bench_with_input(BenchmarkId::new("hashbrown", n), &keys, |b, keys| {
            b.iter_with_large_drop(|| {
                let mut t = HbMap::new();
                for &k in keys {
                    t.insert(k, k);
                }
                t
            })
        });
        g.bench_with_input(
            BenchmarkId::new("hashbrown_dashhash", n),
            &keys,
            |b, keys| {
                b.iter_with_large_drop(|| {
                    let mut t = HbDash::default();
                    for &k in keys {
                        t.insert(k, k);
                    }
                    t
                })
            },
        );
    }
    g.finish();

    let mut g = c.benchmark_group("insert_bytes");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for n in sizes() {
        let keys = keys_bytes(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("dash", n), &keys, |b, keys| {
            b.iter_batched(
                || keys.clone(),
                |keys| {
                    let mut t = DashTable::with_seed(1);
                    for (i, k) in keys.into_iter().enumerate() {
                        t.insert(k, i as u64);
                    }
                    t
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_with_input(BenchmarkId::new("hashbrown", n), &keys, |b, keys| {
            b.iter_batched(
                || keys.clone(),
                |keys| {
                    let mut t = HbMap::new();
                    for (i, k) in keys.into_iter().enumerate() {
                        t.insert(k, i as u64);
                    }
                    t
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn bench_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup_u64_hit");
    g.sample_size(20);
    for n in sizes() {
        let keys = keys_u64(n);
        let probe = shuffled(&keys);
        let mut dash = DashTable::with_seed(1);
        let mut hb = HbMap::new();
        let mut hbd = HbDash::default();
        for &k in &keys {
            dash.insert(k, k);
            hb.insert(k, k);
            hbd.insert(k, k);
        }
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("dash", n), |b| {
            b.iter(|| {
                probe
                    .iter()
                    .fold(0u64, |a, k| a.wrapping_add(*dash.get(k).unwrap()))
            })
        });
        g.bench_function(BenchmarkId::new("hashbrown", n), |b| {
            b.iter(|| {
                probe
                    .iter()
                    .fold(0u64, |a, k| a.wrapping_add(*hb.get(k).unwrap()))
            })
        });
        g.bench_function(BenchmarkId::new("hashbrown_dashhash", n), |b| {
            b.iter(|| {
                probe
                    .iter()
                    .fold(0u64, |a, k| a.wrapping_add(*hbd.get(k).unwrap()))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("lookup_u64_miss");
    g.sample_size(20);
    for n in sizes() {
        let keys = keys_u64(2 * n);
        let (present, absent) = keys.split_at(n);
        let mut dash = DashTable::with_seed(1);
        let mut hb = HbMap::new();
        for &k in present {
            dash.insert(k, k);
            hb.insert(k, k);
        }
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("dash", n), |b| {
            b.iter(|| absent.iter().filter(|k| dash.get(*k).is_some()).count())
        });
        g.bench_function(BenchmarkId::new("hashbrown", n), |b| {
            b.iter(|| absent.iter().filter(|k| hb.get(*k).is_some()).count())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("lookup_bytes_hit");
    g.sample_size(20);
    for n in sizes() {
        let keys = keys_bytes(n);
        let probe: Vec<Vec<u8>> = shuffled(&keys).into_iter().map(|k| k.into_vec()).collect();
        let mut dash: DashTable<Box<[u8]>, u64> = DashTable::with_seed(1);
        let mut hb: HbMap<Box<[u8]>, u64> = HbMap::new();
        for (i, k) in keys.iter().enumerate() {
            dash.insert(k.clone(), i as u64);
            hb.insert(k.clone(), i as u64);
        }
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("dash", n), |b| {
            b.iter(|| {
                probe
                    .iter()
                    .fold(0u64, |a, k| a.wrapping_add(*dash.get(&k[..]).unwrap()))
            })
        });
        g.bench_function(BenchmarkId::new("hashbrown", n), |b| {
            b.iter(|| {
                probe
                    .iter()
                    .fold(0u64, |a, k| a.wrapping_add(*hb.get(&k[..]).unwrap()))
            })
        });
    }
    g.finish();
}

struct LatencyStats {
    total: Duration,
    max: Duration,
    max_at: usize,
    p999: Duration,
    p99999: Duration,
    over_100us: usize,
    /// Inserts that grew the table (a segment split / a rehash).
    growth_events: usize,
    growth_max: Duration,
    growth_mean: Duration,
}

/// Insert `keys` one by one, timing each insert. `size` reports a number
/// that changes exactly when the table grows (segments / capacity).
fn measure_latency(
    keys: &[u64],
    mut insert: impl FnMut(u64),
    mut size: impl FnMut() -> usize,
) -> LatencyStats {
    let mut lat: Vec<u32> = Vec::with_capacity(keys.len());
    let mut growth: Vec<u32> = Vec::new();
    let mut last = size();
    let start = Instant::now();
    for &k in keys {
        let t0 = Instant::now();
        insert(k);
        let d = t0.elapsed().as_nanos().min(u32::MAX as u128) as u32;
        lat.push(d);
        let now = size();
        if now != last {
            growth.push(d);
            last = now;
        }
    }
    let total = start.elapsed();
    let (max_at, &max) = lat.iter().enumerate().max_by_key(|(_, d)| **d).unwrap();
    let over_100us = lat.iter().filter(|&&d| d > 100_000).count();
    let n = lat.len();
    let p999 = *lat.select_nth_unstable(n * 999 / 1000).1;
    let p99999 = *lat.select_nth_unstable(n * 99_999 / 100_000).1;
    let ns = |x: u32| Duration::from_nanos(x as u64);
    let growth_max = growth.iter().copied().max().unwrap_or(0);
    let growth_mean = growth.iter().map(|&x| x as u64).sum::<u64>() / (growth.len() as u64).max(1);
    LatencyStats {
        total,
        max: ns(max),
        max_at,
        p999: ns(p999),
        p99999: ns(p99999),
        over_100us,
        growth_events: growth.len(),
        growth_max: ns(growth_max),
        growth_mean: Duration::from_nanos(growth_mean),
    }
}

fn latency_report() {
    let n: usize = std::env::var("DASH_LATENCY_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let keys = keys_u64(n);
    println!("== single-insert latency, growing u64->u64 from empty to {n} entries ==");
    println!(
        "(max/p99.999 include scheduler noise on a shared machine; the growth columns time only"
    );
    println!(" the inserts that split a segment (dash) or rehashed the table (hashbrown))");
    let print = |name: &str, s: &LatencyStats, mem: usize| {
        println!(
            "{name:<10} total {:>7.2?}  p99.9 {:>8.1?}  p99.999 {:>8.1?}  max {:>9.1?} (insert #{}) >100us: {}",
            s.total, s.p999, s.p99999, s.max, s.max_at, s.over_100us,
        );
        println!(
            "{:<10} growth inserts: {}  mean {:>8.1?}  max {:>9.1?}   table bytes {} ({:.1} B/entry)",
            "",
            s.growth_events,
            s.growth_mean,
            s.growth_max,
            mem,
            mem as f64 / n as f64
        );
    };
    {
        let mut t: DashTable<u64, u64> = DashTable::with_seed(1);
        let segs = Cell::new(1);
        let s = measure_latency(
            &keys,
            |k| {
                t.insert(k, k);
                segs.set(t.segment_count());
            },
            || segs.get(),
        );
        print("dash", &s, t.mem_usage_bytes());
        println!(
            "{:<10} segments {}  global depth {}  load factor {:.3}",
            "",
            t.segment_count(),
            t.global_depth(),
            t.len() as f64 / t.capacity() as f64
        );
    }
    {
        let mut t: HbMap<u64, u64> = HbMap::new();
        let cap = Cell::new(0);
        let s = measure_latency(
            &keys,
            |k| {
                t.insert(k, k);
                cap.set(t.capacity());
            },
            || cap.get(),
        );
        print("hashbrown", &s, t.allocation_size());
    }
}

criterion_group!(benches, bench_insert, bench_lookup);

fn main() {
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    if !quick && std::env::var_os("DASH_SKIP_LATENCY").is_none() {
        latency_report();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
