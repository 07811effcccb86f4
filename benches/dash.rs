//! DashTable vs hashbrown (issue 3's table targets): insert and lookup
//! (hit and miss) throughput at 1M entries, and at 10M with
//! `DASH_BENCH_10M=1`, plus a printed report of the maximum single-insert
//! latency while growing from empty to 10M entries, Dash vs hashbrown vs
//! `std::collections::HashMap`.
//!
//! ```text
//!  group                    item (K, V)                    size   lookup key
//!  {insert,hit,miss}_u64    (u64, u64)                     16 B   &u64
//!  {insert,hit,miss}_bytes  (Box<[u8]>, u64)               24 B   &[u8] (borrowed)
//!  {insert,hit,miss}_key16  ([u8; 16], u128)               32 B   &[u8; 16]
//!       keys: u64 = splitmix64(i); bytes/key16 = "key:000000012345" (16 bytes)
//!  implementations: dash (`get`), dash_slot (lookups only: the server's
//!  `hash_key` + `find_hashed` + `slot` path), hashbrown (its default
//!  foldhash), and hashbrown_dashhash (hashbrown hashing with Dash's
//!  hash_u64/hash_bytes: same hash, so only the table structure differs)
//! ```
//!
//! `key16` stands for the server's coming 32-byte item (16-byte key object
//! + 16-byte value object): the key bytes sit inline in the slot.
//!
//! Each lookup iteration probes `PROBES` (1M) keys in random order, hits
//! drawn from the present keys, misses from keys never inserted, so 1M
//! and 10M iterations cost the same and throughput is per lookup. Insert
//! iterations build a table from empty (no pre-sizing) from `n` keys.
//! No prefetching anywhere: every table does one independent lookup at a
//! time.
//!
//! Run: `cargo bench --bench dash` (1M, ~4 min on a quiet 2-core box);
//! `DASH_BENCH_10M=1 cargo bench --bench dash` adds 10M (~10 min more).
//! Criterion filters work as usual (e.g. `-- hit_`); the latency report
//! runs first unless `DASH_SKIP_LATENCY=1` (or `--test`/`--list` mode),
//! `DASH_LATENCY_N` changes its size (default 10M). `DASH_PROFILE` runs
//! one lookup loop without criterion, for profilers (see [`profile`]).
//! `DASH_BENCH_CPU_TIME=1` measures thread CPU time instead of wall time
//! (for a machine shared with other work). `DASH_PAIRED` times dash and
//! hashbrown lookups interleaved, pass by pass, without criterion (see
//! [`paired`]), for comparisons on a machine whose speed drifts.
//! `DASH_FULL_SEGMENTS=1` builds the Dash tables with full-size segments
//! only (`set_small_segments(false)`, the server's cache mode): more memory,
//! fewer items away from their home bucket.

use std::borrow::Borrow;
use std::cell::Cell;
use std::hash::{BuildHasher, Hash, Hasher};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use darter::dash::{DashHash, DashTable, hash_bytes, hash_u64};

type HbMap<K, V> = hashbrown::HashMap<K, V>;
type HbDash<K, V> = hashbrown::HashMap<K, V, DashBuild>;
type StdMap<K, V> = std::collections::HashMap<K, V>;

/// Lookups per lookup-bench iteration (whatever the table size).
const PROBES: usize = 1_000_000;

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

/// A key/value type pair the benches run with.
trait Kind {
    /// Stored key.
    type K: Hash + Eq + DashHash + Borrow<Self::Q> + Clone;
    /// What lookups pass (borrowed form of the key).
    type Q: ?Sized + Hash + Eq + DashHash;
    type V: Copy;
    const NAME: &'static str;
    /// The `i`-th key (distinct for distinct `i`).
    fn key(i: u64) -> Self::K;
    fn value(i: u64) -> Self::V;
    /// Folds a found value into a checksum (keeps the load alive).
    fn sum(v: &Self::V) -> u64;
}

fn splitmix64(i: u64) -> u64 {
    let mut z = i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Redis-benchmark-like key, 16 bytes: "key:000000012345".
fn key16(i: u64) -> [u8; 16] {
    let mut k = *b"key:000000000000";
    let mut x = i;
    for b in k[4..].iter_mut().rev() {
        *b = b'0' + (x % 10) as u8;
        x /= 10;
    }
    assert_eq!(x, 0, "key index too large");
    k
}

/// `(u64, u64)` items, random-looking keys (splitmix64 is a bijection).
struct U64;
impl Kind for U64 {
    type K = u64;
    type Q = u64;
    type V = u64;
    const NAME: &'static str = "u64";
    fn key(i: u64) -> u64 {
        splitmix64(i)
    }
    fn value(i: u64) -> u64 {
        i
    }
    fn sum(v: &u64) -> u64 {
        *v
    }
}

/// `(Box<[u8]>, u64)` items: heap keys, looked up by `&[u8]`.
struct Bytes;
impl Kind for Bytes {
    type K = Box<[u8]>;
    type Q = [u8];
    type V = u64;
    const NAME: &'static str = "bytes";
    fn key(i: u64) -> Box<[u8]> {
        Box::new(key16(i))
    }
    fn value(i: u64) -> u64 {
        i
    }
    fn sum(v: &u64) -> u64 {
        *v
    }
}

/// `([u8; 16], u128)`: a 32-byte item with the key bytes inline.
struct Key16;
impl Kind for Key16 {
    type K = [u8; 16];
    type Q = [u8; 16];
    type V = u128;
    const NAME: &'static str = "key16";
    fn key(i: u64) -> [u8; 16] {
        key16(i)
    }
    fn value(i: u64) -> u128 {
        i as u128
    }
    fn sum(v: &u128) -> u64 {
        *v as u64
    }
}

/// The operations a bench needs from a table.
trait Table<KK: Kind> {
    fn empty() -> Self;
    fn put(&mut self, k: KK::K, v: KK::V);
    fn find(&self, q: &KK::Q) -> Option<&KK::V>;
    fn size(&self) -> usize;
}

impl<KK: Kind> Table<KK> for DashTable<KK::K, KK::V> {
    fn empty() -> Self {
        let mut t = DashTable::with_seed(1);
        if std::env::var_os("DASH_FULL_SEGMENTS").is_some() {
            t.set_small_segments(false);
        }
        t
    }
    #[inline]
    fn put(&mut self, k: KK::K, v: KK::V) {
        self.insert(k, v);
    }
    #[inline(always)]
    fn find(&self, q: &KK::Q) -> Option<&KK::V> {
        self.get(q)
    }
    fn size(&self) -> usize {
        self.len()
    }
}

/// The server's lookup path: `hash_key` + `find_hashed` + `slot` (one
/// hash, one probe; `slot` re-checks the slot is busy).
struct DashSlot<K, V>(DashTable<K, V>);

impl<KK: Kind> Table<KK> for DashSlot<KK::K, KK::V> {
    fn empty() -> Self {
        DashSlot(DashTable::with_seed(1))
    }
    #[inline]
    fn put(&mut self, k: KK::K, v: KK::V) {
        self.0.insert(k, v);
    }
    #[inline(always)]
    fn find(&self, q: &KK::Q) -> Option<&KK::V> {
        let t = &self.0;
        let slot = t.find_hashed(t.hash_key(q), q)?;
        Some(t.slot(slot).1)
    }
    fn size(&self) -> usize {
        self.0.len()
    }
}

macro_rules! hash_map_table {
    ($t:ident) => {
        impl<KK: Kind, S: BuildHasher + Default> Table<KK> for $t<KK::K, KK::V, S> {
            fn empty() -> Self {
                $t::default()
            }
            #[inline]
            fn put(&mut self, k: KK::K, v: KK::V) {
                self.insert(k, v);
            }
            #[inline(always)]
            fn find(&self, q: &KK::Q) -> Option<&KK::V> {
                self.get(q)
            }
            fn size(&self) -> usize {
                self.len()
            }
        }
    };
}
use hashbrown::HashMap as HbAny;
use std::collections::HashMap as StdAny;
hash_map_table!(HbAny);
hash_map_table!(StdAny);

fn sizes() -> Vec<usize> {
    let mut v = vec![1_000_000];
    if std::env::var_os("DASH_BENCH_10M").is_some() {
        v.push(10_000_000);
    }
    v
}

/// `count` distinct indices from `0..n` in random order (xorshift-driven
/// partial Fisher-Yates; deterministic).
fn sample_indices(n: usize, count: usize) -> Vec<u64> {
    let mut idx: Vec<u64> = (0..n as u64).collect();
    let mut x = 0x1234_5678_9abc_def0u64;
    let count = count.min(n);
    for i in 0..count {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = i + (x % (n - i) as u64) as usize;
        idx.swap(i, j);
    }
    idx.truncate(count);
    idx
}

fn build<KK: Kind, T: Table<KK>>(n: usize) -> T {
    let mut t = T::empty();
    for i in 0..n as u64 {
        t.put(KK::key(i), KK::value(i));
    }
    t
}

/// Criterion measurement of the thread's CPU time
/// (`CLOCK_THREAD_CPUTIME_ID`) instead of wall time: on a shared machine
/// it leaves out the time the bench waited for a core (caches are still
/// shared). `DASH_BENCH_CPU_TIME=1` selects it.
struct CpuTime;

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a
    // constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for CpuTime {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, d: &Duration) -> f64 {
        d.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Same unit (nanoseconds) as wall time.
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

fn configure<M: Measurement>(g: &mut BenchmarkGroup<'_, M>, measure: Duration) {
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(measure);
}

fn bench_insert_kind<KK: Kind, M: Measurement>(c: &mut Criterion<M>) {
    fn one<KK: Kind, T: Table<KK>, M: Measurement>(g: &mut BenchmarkGroup<'_, M>, name: &str, keys: &[KK::K]) {
        let n = keys.len();
        g.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter_batched(
                || keys.to_vec(),
                |keys| {
                    let mut t = T::empty();
                    for (i, k) in keys.into_iter().enumerate() {
                        t.put(k, KK::value(i as u64));
                    }
                    t
                },
                BatchSize::PerIteration,
            )
        });
    }
    let mut g = c.benchmark_group(format!("insert_{}", KK::NAME));
    for n in sizes() {
        // One build is ~0.1-0.3 s per 1M: 10 samples of one build each at 10M.
        configure(&mut g, Duration::from_secs(3 * (n / 1_000_000).max(1) as u64));
        let keys: Vec<KK::K> = (0..n as u64).map(KK::key).collect();
        g.throughput(Throughput::Elements(n as u64));
        one::<KK, DashTable<KK::K, KK::V>, M>(&mut g, "dash", &keys);
        one::<KK, HbMap<KK::K, KK::V>, M>(&mut g, "hashbrown", &keys);
        one::<KK, HbDash<KK::K, KK::V>, M>(&mut g, "hashbrown_dashhash", &keys);
    }
    g.finish();
}

/// One lookup pass over `probes`: the measured loop (not inlined, so
/// profilers can attribute it, see `DASH_PROFILE`).
/// Only a checksum of the values found, so the loop is the lookups and an
/// add; that every probe hits (or misses) is checked by [`check_pass`],
/// untimed, before a table is measured.
#[inline(never)]
fn lookup_pass<KK: Kind, T: Table<KK>>(t: &T, probes: &[KK::K]) -> u64 {
    let mut sum = 0u64;
    for k in probes {
        if let Some(v) = t.find(k.borrow()) {
            sum = sum.wrapping_add(KK::sum(v));
        }
    }
    sum
}

/// Untimed: asserts that every probe is found (`hit`) or none is.
fn check_pass<KK: Kind, T: Table<KK>>(t: &T, probes: &[KK::K], hit: bool) {
    let found = probes.iter().filter(|k| t.find((*k).borrow()).is_some()).count();
    assert_eq!(found, if hit { probes.len() } else { 0 }, "lookup probes: wrong number of hits");
}

/// Lookup probes: `PROBES` random present keys (hits) or keys never
/// inserted (misses, keys `n..`).
fn lookup_probes<KK: Kind>(n: usize, hit: bool) -> Vec<KK::K> {
    let base = if hit { 0 } else { n as u64 };
    sample_indices(n, PROBES).into_iter().map(|i| KK::key(base + i)).collect()
}

/// `DASH_PROFILE=hit_u64/dash/1000000`: build that one table and run
/// `DASH_PROFILE_PASSES` (default 10) lookup passes, no criterion, for
/// `perf record` or `valgrind --tool=callgrind --toggle-collect='*lookup_pass*'`
/// (cost per lookup = inclusive cost / passes / 1M).
fn profile(spec: &str) {
    fn run<KK: Kind, T: Table<KK>>(n: usize, hit: bool, passes: usize) {
        let t: T = build(n);
        let probes = lookup_probes::<KK>(n, hit);
        check_pass::<KK, T>(&t, &probes, hit);
        let start = Instant::now();
        let cpu_start = thread_cpu_time();
        let mut sum = 0u64;
        for _ in 0..passes {
            sum = sum.wrapping_add(lookup_pass::<KK, T>(&t, &probes));
        }
        let lookups = (passes * probes.len()) as f64;
        let cpu_ns = (thread_cpu_time() - cpu_start).as_nanos() as f64 / lookups;
        let ns = start.elapsed().as_nanos() as f64 / lookups;
        println!("{cpu_ns:.1} ns/lookup CPU time, {ns:.1} wall (checksum {sum})");
    }
    fn kind<KK: Kind>(table: &str, n: usize, hit: bool, passes: usize) {
        match table {
            "dash" => run::<KK, DashTable<KK::K, KK::V>>(n, hit, passes),
            "dash_slot" => run::<KK, DashSlot<KK::K, KK::V>>(n, hit, passes),
            "hashbrown" => run::<KK, HbMap<KK::K, KK::V>>(n, hit, passes),
            "hashbrown_dashhash" => run::<KK, HbDash<KK::K, KK::V>>(n, hit, passes),
            _ => panic!("DASH_PROFILE: unknown table {table}"),
        }
    }
    let parts: Vec<&str> = spec.split('/').collect();
    let [group, table, n] = parts[..] else {
        panic!("DASH_PROFILE=<hit|miss>_<u64|bytes|key16>/<table>/<n>");
    };
    let n: usize = n.parse().expect("DASH_PROFILE: bad size");
    let passes: usize = std::env::var("DASH_PROFILE_PASSES").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let (which, key) = group.split_once('_').expect("DASH_PROFILE: bad group");
    let hit = which == "hit";
    match key {
        "u64" => kind::<U64>(table, n, hit, passes),
        "bytes" => kind::<Bytes>(table, n, hit, passes),
        "key16" => kind::<Key16>(table, n, hit, passes),
        _ => panic!("DASH_PROFILE: unknown key kind {key}"),
    }
}

/// `DASH_PAIRED=hit_u64/1000000[,miss_u64/10000000...]`: build the `dash`,
/// `hashbrown` and `hashbrown_dashhash` tables of each case and time
/// `DASH_PAIRED_ROUNDS` (default 15) rounds of one lookup pass per table,
/// interleaved (dash, hashbrown, hashbrown_dashhash, dash, ...), in thread
/// CPU time, each after an untimed warm-up pass over the same table.
/// Prints the minimum and median ns per lookup of each table and the
/// median of the per-round dash/hashbrown ratios: on a shared machine whose
/// memory speed drifts, interleaving exposes the tables to the same
/// conditions, which separate criterion runs do not.
fn paired(specs: &str) {
    fn time_pass<KK: Kind, T: Table<KK>>(t: &T, probes: &[KK::K], hit: bool) -> f64 {
        // An untimed pass first, so the table is as warm as in a criterion
        // run (a 1M table mostly fits a 32 MB L3).
        check_pass::<KK, T>(t, probes, hit);
        black_box(lookup_pass::<KK, T>(t, probes));
        let start = thread_cpu_time();
        black_box(lookup_pass::<KK, T>(t, probes));
        (thread_cpu_time() - start).as_nanos() as f64 / probes.len() as f64
    }
    fn stats(v: &mut [f64]) -> (f64, f64) {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2])
    }
    fn run<KK: Kind>(group: &str, n: usize, hit: bool, rounds: usize) {
        let dash: DashTable<KK::K, KK::V> = build::<KK, _>(n);
        let hb: HbMap<KK::K, KK::V> = build::<KK, _>(n);
        let hbd: HbDash<KK::K, KK::V> = build::<KK, _>(n);
        let probes = lookup_probes::<KK>(n, hit);
        let (mut td, mut th, mut thd, mut ratio) = (vec![], vec![], vec![], vec![]);
        for _ in 0..rounds {
            let d = time_pass::<KK, _>(&dash, &probes, hit);
            let h = time_pass::<KK, _>(&hb, &probes, hit);
            thd.push(time_pass::<KK, _>(&hbd, &probes, hit));
            td.push(d);
            th.push(h);
            ratio.push(d / h);
        }
        let (dmin, dmed) = stats(&mut td);
        let (hmin, hmed) = stats(&mut th);
        let (hdmin, hdmed) = stats(&mut thd);
        let (_, rmed) = stats(&mut ratio);
        println!(
            "paired {group} {n}: dash min {dmin:.1} med {dmed:.1} | hashbrown min {hmin:.1} med {hmed:.1} | hashbrown_dashhash min {hdmin:.1} med {hdmed:.1} | dash/hb min-ratio {:.3} median-of-ratios {rmed:.3}",
            dmin / hmin
        );
    }
    let rounds: usize = std::env::var("DASH_PAIRED_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    for spec in specs.split(',') {
        let (group, n) = spec.split_once('/').expect("DASH_PAIRED=<group>/<n>,...");
        let n: usize = n.parse().expect("DASH_PAIRED: bad size");
        let (which, key) = group.split_once('_').expect("DASH_PAIRED: bad group");
        let hit = which == "hit";
        match key {
            "u64" => run::<U64>(group, n, hit, rounds),
            "bytes" => run::<Bytes>(group, n, hit, rounds),
            "key16" => run::<Key16>(group, n, hit, rounds),
            _ => panic!("DASH_PAIRED: unknown key kind {key}"),
        }
    }
}

fn bench_lookup_kind<KK: Kind, M: Measurement>(c: &mut Criterion<M>, hit: bool) {
    fn one<KK: Kind, T: Table<KK>, M: Measurement>(
        g: &mut BenchmarkGroup<'_, M>,
        name: &str,
        n: usize,
        probes: &[KK::K],
        hit: bool,
    ) {
        // Built on first use, so benches a filter skips build nothing.
        let mut table: Option<T> = None;
        g.bench_function(BenchmarkId::new(name, n), |b| {
            let t = table.get_or_insert_with(|| {
                let t = build(n);
                check_pass::<KK, T>(&t, probes, hit);
                t
            });
            b.iter(|| lookup_pass::<KK, T>(t, probes))
        });
        black_box(table.map(|t| t.size()));
    }
    let which = if hit { "hit" } else { "miss" };
    let mut g = c.benchmark_group(format!("{which}_{}", KK::NAME));
    for n in sizes() {
        configure(&mut g, Duration::from_secs(3));
        let probes = lookup_probes::<KK>(n, hit);
        g.throughput(Throughput::Elements(probes.len() as u64));
        one::<KK, DashTable<KK::K, KK::V>, M>(&mut g, "dash", n, &probes, hit);
        one::<KK, DashSlot<KK::K, KK::V>, M>(&mut g, "dash_slot", n, &probes, hit);
        one::<KK, HbMap<KK::K, KK::V>, M>(&mut g, "hashbrown", n, &probes, hit);
        one::<KK, HbDash<KK::K, KK::V>, M>(&mut g, "hashbrown_dashhash", n, &probes, hit);
    }
    g.finish();
}

fn bench_insert<M: Measurement>(c: &mut Criterion<M>) {
    bench_insert_kind::<U64, M>(c);
    bench_insert_kind::<Bytes, M>(c);
    bench_insert_kind::<Key16, M>(c);
}

fn bench_lookup<M: Measurement>(c: &mut Criterion<M>) {
    for hit in [true, false] {
        bench_lookup_kind::<U64, M>(c, hit);
        bench_lookup_kind::<Bytes, M>(c, hit);
        bench_lookup_kind::<Key16, M>(c, hit);
    }
}

fn run_benches<M: Measurement>(mut c: Criterion<M>) {
    bench_lookup(&mut c);
    bench_insert(&mut c);
    c.final_summary();
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
fn measure_latency(keys: &[u64], mut insert: impl FnMut(u64), mut size: impl FnMut() -> usize) -> LatencyStats {
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
    let n: usize = std::env::var("DASH_LATENCY_N").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
    let keys: Vec<u64> = (0..n as u64).map(splitmix64).collect();
    println!("== single-insert latency, growing u64->u64 from empty to {n} entries ==");
    println!("(max/p99.999 include scheduler noise on a shared machine; the growth columns time only");
    println!(" the inserts that split a segment (dash) or rehashed the table (hashbrown, std))");
    let print = |name: &str, s: &LatencyStats, mem: Option<usize>| {
        println!(
            "{name:<10} total {:>7.2?}  p99.9 {:>8.1?}  p99.999 {:>8.1?}  max {:>9.1?} (insert #{}) >100us: {}",
            s.total, s.p999, s.p99999, s.max, s.max_at, s.over_100us,
        );
        let mem = mem.map_or(String::new(), |m| format!("   table bytes {m} ({:.1} B/entry)", m as f64 / n as f64));
        println!(
            "{:<10} growth inserts: {}  mean {:>8.1?}  max {:>9.1?}{mem}",
            "", s.growth_events, s.growth_mean, s.growth_max,
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
        print("dash", &s, Some(t.mem_usage_bytes()));
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
        print("hashbrown", &s, Some(t.allocation_size()));
    }
    {
        let mut t: StdMap<u64, u64> = StdMap::new();
        let cap = Cell::new(0);
        let s = measure_latency(
            &keys,
            |k| {
                t.insert(k, k);
                cap.set(t.capacity());
            },
            || cap.get(),
        );
        print("std", &s, None);
    }
}

fn main() {
    if let Ok(spec) = std::env::var("DASH_PROFILE") {
        profile(&spec);
        return;
    }
    if let Ok(specs) = std::env::var("DASH_PAIRED") {
        paired(&specs);
        return;
    }
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    if !quick && std::env::var_os("DASH_SKIP_LATENCY").is_none() {
        latency_report();
    }
    if std::env::var_os("DASH_BENCH_CPU_TIME").is_some() {
        run_benches(Criterion::default().with_measurement(CpuTime).configure_from_args());
    } else {
        run_benches(Criterion::default().configure_from_args());
    }
}
