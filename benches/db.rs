//! Keyspace (`store::Db`) hot paths without the network: what GET and SET cost in the
//! table, with redis-benchmark's key shape (`key:` + 12 digits, 16 bytes) and 32-byte
//! values, in random order.
//!
//! Run: `cargo bench --bench db` (plain timing loop, no criterion: each case runs
//! `ROUNDS` times and the best round is printed in ns/op; `DB_BENCH_KEYS` sets the
//! key count, default 100000 as in perf/bench_strings.sh; `DB_BENCH_OPS` the lookups
//! per round, default 2000000).
//!
//! Cases:
//! - `get hit`: `lookup_read` of present keys (GET).
//! - `get miss`: `lookup_read` of absent keys.
//! - `set overwrite`: `set_bytes` on present keys (SET on a warm server).
//! - `set insert`: `set_bytes` of new keys into an empty db until it holds all keys,
//!   per insert (growth and dropping the db included).
//! - `get hit ttl`: `lookup_read` of keys that all have a (future) deadline.

use std::hint::black_box;
use std::time::Instant;

use darter::store::Db;

const ROUNDS: usize = 7;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

/// xorshift: a fixed pseudo-random sequence of indexes below `n`.
fn order(n: usize, len: usize, seed: u64) -> Vec<usize> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        })
        .collect()
}

fn best(name: &str, ops: usize, mut round: impl FnMut() -> u64) {
    let mut best = f64::MAX;
    let mut sink = 0u64;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        sink = sink.wrapping_add(round());
        best = best.min(t.elapsed().as_nanos() as f64 / ops as f64);
    }
    black_box(sink);
    println!("{name:<16} {best:>7.1} ns/op");
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let n = env("DB_BENCH_KEYS", 100_000);
    let ops = env("DB_BENCH_OPS", 2_000_000);
    let value = [b'v'; 32];
    let keys: Vec<Vec<u8>> = (0..n).map(key).collect();
    let absent: Vec<Vec<u8>> = (n..2 * n).map(key).collect();
    let seq = order(n, ops, 0x1234_5678);
    println!("db bench: {n} keys, {ops} ops per round, best of {ROUNDS}");

    let mut db = Db::default();
    for k in &keys {
        db.set_bytes(k, &value, 0);
    }
    best("get hit", ops, || {
        let mut s = 0u64;
        for &i in &seq {
            s += db.lookup_read(&keys[i], 1).map_or(0, |e| e.expire_at_ms as u64 + 1);
        }
        s
    });
    best("get miss", ops, || {
        let mut s = 0u64;
        for &i in &seq {
            s += db.lookup_read(&absent[i], 1).is_some() as u64;
        }
        s
    });
    best("set overwrite", ops, || {
        for &i in &seq {
            db.set_bytes(&keys[i], &value, 0);
        }
        db.len() as u64
    });
    let ins = order(n, n, 0x9abc_def1);
    let mut perm: Vec<usize> = (0..n).collect();
    for (i, &j) in ins.iter().enumerate() {
        perm.swap(i, j % (i + 1));
    }
    best("set insert", n, || {
        let mut db = Db::default();
        for &i in &perm {
            db.set_bytes(&keys[i], &value, 0);
        }
        let l = db.len() as u64;
        drop(black_box(db));
        l
    });
    let mut ttl = Db::default();
    for k in &keys {
        ttl.set_bytes(k, &value, i64::MAX / 2);
    }
    best("get hit ttl", ops, || {
        let mut s = 0u64;
        for &i in &seq {
            s += ttl.lookup_read(&keys[i], 1).is_some() as u64;
        }
        s
    });
}
