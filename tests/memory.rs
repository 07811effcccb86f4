//! Memory accounting and maxmemory against the real binary.
//!
//! - used_memory (the counting allocator's exact sum) grows by about the payload when
//!   100k keys of 1 KiB are loaded and falls back after FLUSHALL; the peak stays.
//! - Over maxmemory, DENYOOM commands get Redis's exact OOM error, also pipelined and
//!   across shards; reads, DEL, EXPIRE and FLUSHALL still work; writes work again once
//!   used memory is back under the limit. The same script runs on redis-server 7.0.15
//!   and the raw replies must be identical.
//!
//! `DARTER_TEST_SERVER_BIN=$(which redis-server) cargo test --release --test memory`
//! runs the Darter side against Redis too (the payload bound then allows jemalloc's
//! size classes: 1 KiB values take 1280-byte allocations there).

mod common;

use common::{RawConn, Server, ServerKind, encode_command, info_field, load, used_memory};

const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";

// used_memory grows by roughly the payload and falls back after FLUSHALL; the peak and
// the human-readable forms follow Redis's formats.
#[test]
fn used_memory_follows_the_dataset() {
    let s = Server::darter(&["--proactor_threads", "4"]);
    let mut c = s.raw();
    const N: usize = 100_000;
    const SIZE: usize = 1024;
    let payload = (N * SIZE) as f64;
    let before = used_memory(&mut c);
    assert!(before > 0);
    load(&mut c, N, SIZE);
    assert_eq!(c.cmd(&["DBSIZE"]), format!(":{N}\r\n").into_bytes());
    let loaded = used_memory(&mut c);
    let growth = (loaded - before) as f64 / payload;
    // Darter: the values, the keys (inline, 16 bytes) and the tables: ~1.08.
    let max_growth = if s.kind == ServerKind::Redis { 1.4 } else { 1.2 };
    assert!((1.0..max_growth).contains(&growth), "used_memory {before} -> {loaded}: {growth:.3} x the payload");

    let human = info_field(&mut c, "memory", "used_memory_human");
    assert!(human.ends_with('M') && human.contains('.'), "{human}");
    let rss: i64 = info_field(&mut c, "memory", "used_memory_rss").parse().unwrap();
    assert!(rss as f64 > payload * 0.9, "rss {rss}");
    let frag: f64 = info_field(&mut c, "memory", "mem_fragmentation_ratio").parse().unwrap();
    assert!(frag > 0.5 && frag < 2.0, "mem_fragmentation_ratio {frag}");

    assert_eq!(c.cmd(&["FLUSHALL"]), b"+OK\r\n");
    let after = used_memory(&mut c);
    let left = (after - before).abs() as f64 / payload;
    assert!(left < 0.1, "used_memory {before} -> {loaded} -> {after} after FLUSHALL");
    let peak: i64 = info_field(&mut c, "memory", "used_memory_peak").parse().unwrap();
    assert!(peak >= loaded, "peak {peak} < loaded {loaded}");
    let peak_human = info_field(&mut c, "memory", "used_memory_peak_human");
    assert!(peak_human.ends_with('M'), "{peak_human}");
    let perc = info_field(&mut c, "memory", "used_memory_peak_perc");
    assert!(perc.ends_with('%') && perc.split('.').nth(1).map(|d| d.len()) == Some(3), "{perc}");
}

/// Sends one command, records and returns its raw reply.
fn run(c: &mut RawConn, log: &mut Vec<(String, Vec<u8>)>, args: &[&str]) -> Vec<u8> {
    let r = c.cmd(args);
    log.push((args.join(" "), r.clone()));
    r
}

/// The maxmemory script: returns every raw reply, for comparing two servers. The
/// limit is set between the empty and the loaded server's used_memory.
fn oom_script(s: &Server) -> Vec<(String, Vec<u8>)> {
    let mut c = s.raw();
    let mut log: Vec<(String, Vec<u8>)> = Vec::new();
    let base = used_memory(&mut c);
    load(&mut c, 20_000, 1024); // ~20 MB
    run(&mut c, &mut log, &["SET", "counter", "10"]);
    run(&mut c, &mut log, &["SET", "{t}a", "x"]);
    let limit = base + 10_000_000;
    assert!(used_memory(&mut c) > limit);
    run(&mut c, &mut log, &["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    assert_eq!(info_field(&mut c, "memory", "maxmemory"), limit.to_string());

    // Refused before running: nothing changes.
    for cmd in [
        &["SET", "newkey", "v"][..],
        &["SET", "key:1", "overwrite"],
        &["SETNX", "newkey", "v"],
        &["SETEX", "newkey", "100", "v"],
        &["GETSET", "key:2", "v"],
        &["APPEND", "{t}a", "y"],
        &["INCR", "counter"],
        &["INCRBY", "counter", "5"],
        &["DECR", "counter"],
        &["INCRBYFLOAT", "counter", "1.5"],
        &["SETRANGE", "{t}a", "0", "z"],
        &["MSET", "k1", "1", "k2", "2", "k3", "3"],
        &["MSETNX", "k1", "1", "k2", "2"],
        &["COPY", "{t}a", "{t}b"],
    ] {
        let r = run(&mut c, &mut log, cmd);
        assert_eq!(r, OOM, "{cmd:?}");
    }
    // Reads, deletes and other writes that cannot grow the dataset still work.
    assert_eq!(run(&mut c, &mut log, &["GET", "counter"]), b"$2\r\n10\r\n");
    assert_eq!(run(&mut c, &mut log, &["GET", "{t}a"]), b"$1\r\nx\r\n");
    assert_eq!(run(&mut c, &mut log, &["EXISTS", "newkey", "k1", "{t}b"]), b":0\r\n");
    assert_eq!(run(&mut c, &mut log, &["STRLEN", "key:3"]), b":1024\r\n");
    assert_eq!(run(&mut c, &mut log, &["MGET", "key:4", "nokey", "counter"])[..4], *b"*3\r\n");
    assert_eq!(run(&mut c, &mut log, &["EXPIRE", "counter", "1000"]), b":1\r\n");
    assert_eq!(run(&mut c, &mut log, &["DEL", "key:5", "key:6", "nokey"]), b":2\r\n");
    assert_eq!(run(&mut c, &mut log, &["GETDEL", "key:7"])[..6], *b"$1024\r");
    assert_eq!(run(&mut c, &mut log, &["DBSIZE"]), b":19999\r\n");

    // Pipelined: SETs refused, GETs/DELs answered, in order (Darter's squashed path).
    let mut pipe = Vec::new();
    let mut names = Vec::new();
    for i in 0..40 {
        let key = format!("key:{}", 100 + i);
        pipe.extend(encode_command(&["SET", &format!("p{i}"), "v"]));
        pipe.extend(encode_command(&["GET", &key]));
        pipe.extend(encode_command(&["DEL", &format!("key:{}", 200 + i)]));
        names.push(format!("SET p{i} v"));
        names.push(format!("GET {key}"));
        names.push(format!("DEL key:{}", 200 + i));
    }
    c.send_raw(&pipe);
    for name in names {
        let r = c.read_reply();
        if name.starts_with("SET") {
            assert_eq!(r, OOM, "{name}");
        } else if name.starts_with("GET") {
            assert!(r.starts_with(b"$1024\r\n"), "{name}");
        } else {
            assert_eq!(r, b":1\r\n", "{name}");
        }
        log.push((name, r));
    }
    let stats = String::from_utf8_lossy(&c.cmd(&["INFO", "commandstats"])).into_owned();
    let set_line = stats.split("\r\n").find(|l| l.starts_with("cmdstat_set:")).expect("cmdstat_set").to_string();
    assert!(set_line.contains(",rejected_calls=42,"), "{set_line}");
    assert!(set_line.starts_with("cmdstat_set:calls=20002,"), "{set_line}");

    // Back under the limit: writes work again.
    assert_eq!(run(&mut c, &mut log, &["FLUSHALL"]), b"+OK\r\n");
    assert_eq!(run(&mut c, &mut log, &["SET", "newkey", "v"]), b"+OK\r\n");
    assert_eq!(run(&mut c, &mut log, &["MSET", "k1", "1", "k2", "2", "k3", "3"]), b"+OK\r\n");
    assert_eq!(run(&mut c, &mut log, &["INCR", "counter"]), b":1\r\n");
    // maxmemory 0: no limit.
    run(&mut c, &mut log, &["CONFIG", "SET", "maxmemory", "1"]);
    assert_eq!(run(&mut c, &mut log, &["SET", "newkey", "v2"]), OOM);
    run(&mut c, &mut log, &["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(run(&mut c, &mut log, &["SET", "newkey", "v2"]), b"+OK\r\n");
    assert_eq!(run(&mut c, &mut log, &["GET", "newkey"]), b"$2\r\nv2\r\n");
    log
}

// Over maxmemory, Darter answers exactly like redis-server 7.0.15, command by command.
#[test]
fn oom_like_redis() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let r = Server::redis(&[]);
    let dl = oom_script(&d);
    let rl = oom_script(&r);
    assert_eq!(dl.len(), rl.len());
    for ((cmd, a), (_, b)) in dl.iter().zip(&rl) {
        assert_eq!(String::from_utf8_lossy(a), String::from_utf8_lossy(b), "reply to {cmd}");
    }
}

// --maxmemory at start-up applies from the first command; GET still works.
#[test]
fn maxmemory_flag() {
    let s = Server::darter(&["--proactor_threads", "2", "--maxmemory", "1"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["SET", "a", "1"]), OOM);
    assert_eq!(c.cmd(&["GET", "a"]), b"$-1\r\n");
    assert_eq!(info_field(&mut c, "memory", "maxmemory"), "1");
    assert_eq!(info_field(&mut c, "memory", "maxmemory_human"), "1B");
}

// No eviction yet: every maxmemory-policy behaves as noeviction (Darter only; Redis
// would evict keys to make room).
#[test]
fn policies_act_as_noeviction() {
    let s = Server::darter(&["--proactor_threads", "2"]);
    if s.kind == ServerKind::Redis {
        return;
    }
    let mut c = s.raw();
    load(&mut c, 1000, 100);
    for policy in ["allkeys-lru", "volatile-lru", "allkeys-random", "volatile-ttl", "allkeys-lfu"] {
        assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory-policy", policy]), b"+OK\r\n");
        assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "1"]), b"+OK\r\n");
        assert_eq!(c.cmd(&["SET", "x", "1"]), OOM, "{policy}");
        assert_eq!(c.cmd(&["DBSIZE"]), b":1000\r\n", "{policy}: nothing evicted");
        assert_eq!(info_field(&mut c, "memory", "maxmemory_policy"), policy);
        assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), b"+OK\r\n");
    }
}

// Loading data: used_memory's growth and the sum of MEMORY USAGE over the keys are
// both within 10% of the RSS growth.
#[test]
fn accounting_matches_rss_growth() {
    let s = Server::darter(&["--proactor_threads", "1"]);
    let mut c = s.raw();
    const N: usize = 200_000;
    let rss = |c: &mut RawConn| info_field(c, "memory", "used_memory_rss").parse::<i64>().unwrap();
    let (used0, rss0) = (used_memory(&mut c), rss(&mut c));
    load(&mut c, N, 100);
    let (used1, rss1) = (used_memory(&mut c), rss(&mut c));
    let mut total = 0i64;
    for chunk in (0..N).collect::<Vec<_>>().chunks(1000) {
        let mut buf = Vec::new();
        for i in chunk {
            buf.extend(encode_command(&["MEMORY", "USAGE", &format!("key:{i}")]));
        }
        c.send_raw(&buf);
        for r in common::parse_all(&c.read_replies(chunk.len())) {
            total += r.as_int().expect("MEMORY USAGE of a loaded key");
        }
    }
    let (grew, rss_grew) = (used1 - used0, rss1 - rss0);
    eprintln!("memory: {N} keys: RSS +{rss_grew}, used_memory +{grew}, sum of MEMORY USAGE {total}");
    let within = |x: i64| (x - rss_grew).abs() * 10 <= rss_grew;
    assert!(within(grew), "used_memory grew {grew}, RSS {rss_grew}");
    assert!(within(total), "MEMORY USAGE sums to {total}, RSS grew {rss_grew}");
}

/// MEMORY USAGE of a key, or None for nil.
fn memory_usage(c: &mut RawConn, key: &str) -> Option<i64> {
    let r = c.cmd_resp(&["MEMORY", "USAGE", key]);
    if r.is_error() {
        panic!("MEMORY USAGE {key}: {r}");
    }
    r.as_int()
}

// MEMORY USAGE is the key's own bytes (issue 17, item 12): the same on every call and
// whatever else the table holds (10k other keys inserted in between); a small string
// costs no more than Redis says (64 for `small` = "abcdefgh" on 7.0.15); a 1 KiB value is
// 1 KiB and a little; a TTL adds its expire entry; a missing key is nil; SAMPLES
// parses as Redis's. Keys on both shards of a 2-thread server.
#[test]
fn memory_usage_is_the_keys_own_and_stable() {
    let s = Server::darter(&["--proactor_threads", "2"]);
    let redis = Server::redis(&[]);
    let mut c = s.raw();
    let mut r = redis.raw();
    for conn in [&mut c, &mut r] {
        assert_eq!(conn.cmd(&["SET", "small", "abcdefgh"]), b"+OK\r\n");
        assert_eq!(conn.cmd(&["SET", "big", &"x".repeat(1024)]), b"+OK\r\n");
        assert_eq!(conn.cmd(&["SET", "int", "123456"]), b"+OK\r\n");
        assert_eq!(conn.cmd(&["SET", "ttl", "abcdefgh", "EX", "1000"]), b"+OK\r\n");
    }
    let redis_small = memory_usage(&mut r, "small").unwrap();
    let keys = ["small", "big", "int", "ttl"];
    let first: Vec<i64> = keys.iter().map(|k| memory_usage(&mut c, k).unwrap()).collect();
    let again: Vec<i64> = keys.iter().map(|k| memory_usage(&mut c, k).unwrap()).collect();
    assert_eq!(first, again, "two calls agree");
    load(&mut c, 10_000, 20);
    let after: Vec<i64> = keys.iter().map(|k| memory_usage(&mut c, k).unwrap()).collect();
    assert_eq!(first, after, "10k more keys change nothing");
    let (small, big, int, ttl) = (first[0], first[1], first[2], first[3]);
    assert!((16..=redis_small).contains(&small), "8-byte string: {small} (Redis {redis_small})");
    assert_eq!(int, small, "an integer is stored inline like a short string");
    assert!((1024..=1024 + 64).contains(&big), "1 KiB value: {big}");
    assert!(ttl > small && ttl <= small + 48, "a TTL adds its expire entry: {ttl} vs {small}");
    for conn in [&mut c, &mut r] {
        assert_eq!(conn.cmd(&["MEMORY", "USAGE", "nosuchkey"]), b"$-1\r\n");
    }
    let script: &[&[&str]] = &[
        &["MEMORY", "USAGE", "nosuchkey", "SAMPLES", "5"],
        &["MEMORY", "USAGE", "nosuchkey", "SAMPLES", "0"],
        &["MEMORY", "USAGE", "small", "SAMPLES", "-1"],
        &["MEMORY", "USAGE", "small", "SAMPLES", "x"],
        &["MEMORY", "USAGE", "small", "SAMPLES"],
        &["MEMORY", "USAGE", "small", "FOO", "1"],
        &["MEMORY", "USAGE"],
    ];
    for cmd in script {
        assert_eq!(String::from_utf8_lossy(&c.cmd(cmd)), String::from_utf8_lossy(&r.cmd(cmd)), "{cmd:?}");
    }
    assert_eq!(memory_usage(&mut c, "small"), Some(small));
    let samples = c.cmd_resp(&["MEMORY", "USAGE", "big", "SAMPLES", "0"]);
    assert_eq!(samples.as_int(), Some(big));
}
