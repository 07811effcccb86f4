//! Start-up cost by thread count (issue 17, item 5): the rings between threads are
//! created on a pair's first message, so a server with many threads starts small, and
//! their bytes stay out of the maxmemory check.
//!
//! ```text
//!   darter --proactor_threads 128 --maxmemory 500mb ──▶ SET accepted at once
//!   darter --proactor_threads 256 / 1024            ──▶ PING answered, small RSS
//!   darter --proactor_threads 32, rings created     ──▶ maxmemory between "data" and
//!                                                       used_memory: writes still OK
//! ```
//!
//! Before: 128 threads counted 818 MB at start (the first SET under 500mb was refused),
//! 256 threads 3.2 GB, and 1024 threads grew to 5.1 GB RSS and never answered PING.
//! On this 2-core machine all these threads share two cores; bounds are generous.

mod common;

use common::{Server, info_field, used_memory};

/// Resident set size of a process, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

fn info_u64(c: &mut common::RawConn, field: &str) -> u64 {
    info_field(c, "memory", field).parse().unwrap_or_else(|e| panic!("{field}: {e}"))
}

// 128 threads with --maxmemory 500mb: the first SET is accepted, start-up memory is a
// few MB (bound 50 MB; it was 818 MB), and multi-key commands over keys in many of the
// 128 shards still work and keep their order.
#[test]
fn threads_128_start_small_and_accept_writes() {
    let s = Server::darter(&["--proactor_threads", "128", "--maxmemory", "500mb"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["SET", "first", "write"]), b"+OK\r\n");
    let startup = info_u64(&mut c, "used_memory_startup");
    let used = used_memory(&mut c) as u64;
    eprintln!("128 threads: used_memory_startup {startup}, used_memory {used}");
    assert!(startup < 50_000_000, "used_memory_startup {startup}");
    assert!(used < 50_000_000, "used_memory {used}");
    // 2000 keys over (nearly) all 128 shards, then read back in order.
    let mut mset: Vec<String> = vec!["MSET".into()];
    let mut mget: Vec<String> = vec!["MGET".into()];
    let mut expect = b"*2000\r\n".to_vec();
    for i in 0..2000 {
        let (k, v) = (format!("key:{i}"), format!("value-{i}"));
        expect.extend_from_slice(format!("${}\r\n{v}\r\n", v.len()).as_bytes());
        mset.extend([k.clone(), v]);
        mget.push(k);
    }
    assert_eq!(c.cmd(&mset), b"+OK\r\n");
    assert_eq!(c.cmd(&mget), expect);
    assert_eq!(c.cmd(&["DBSIZE"]), b":2001\r\n");
    mget[0] = "DEL".into();
    assert_eq!(c.cmd(&mget), b":2000\r\n");
}

// 256 threads (a 256-core host's default) start with under 100 MB of used_memory and
// of RSS (it was 3.2 GB used_memory, 420 MB RSS).
#[test]
fn threads_256_start_under_100mb() {
    let s = Server::darter(&["--proactor_threads", "256"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    let used = used_memory(&mut c) as u64;
    let rss = rss_bytes(s.pid());
    eprintln!("256 threads: used_memory {used}, RSS {rss}");
    assert!(used < 100_000_000, "used_memory {used}");
    assert!(rss < 100_000_000, "RSS {rss}");
}

// 1024 threads (the largest accepted value) answer PING and stay at a few hundred MB
// (before: 5.1 GB RSS and no answer).
#[test]
fn threads_1024_answer_ping() {
    let s = Server::darter(&["--proactor_threads", "1024"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    let rss = rss_bytes(s.pid());
    eprintln!("1024 threads: RSS {rss}");
    assert!(rss < 400_000_000, "RSS {rss}");
}

// The rings created by traffic are reported (mem_not_counted_for_evict, part of
// used_memory_overhead) and not counted against maxmemory: with maxmemory between
// used_memory without the rings and used_memory with them, writes are accepted; with
// maxmemory under the data, they are refused as before.
#[test]
fn rings_not_counted_against_maxmemory() {
    let s = Server::darter(&["--proactor_threads", "64"]);
    let mut c = s.raw();
    // Broadcasts from connections on (very likely) many threads: rings both ways
    // between those threads and all others, a few thousand rings of ~1.3 KB.
    let mut conns: Vec<common::RawConn> = (0..48).map(|_| s.raw()).collect();
    for cc in &mut conns {
        assert_eq!(cc.cmd(&["DBSIZE"]), b":0\r\n");
    }
    let rings = info_u64(&mut c, "mem_not_counted_for_evict");
    let used = used_memory(&mut c) as u64;
    let overhead = info_u64(&mut c, "used_memory_overhead");
    let startup = info_u64(&mut c, "used_memory_startup");
    eprintln!("64 threads: rings {rings}, used {used}, overhead {overhead}, startup {startup}");
    assert!(rings >= 1_000_000, "a thousand rings or more of ~1.3 KB: {rings}");
    assert!(overhead >= startup + rings, "overhead {overhead} counts startup {startup} + rings {rings}");
    let between = used - rings / 2;
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", &between.to_string()]), b"+OK\r\n");
    assert_eq!(
        c.cmd(&["SET", "k", "v"]),
        b"+OK\r\n",
        "used {used} > maxmemory {between}, but rings {rings} don't count"
    );
    let under = (used - rings) / 2;
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", &under.to_string()]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k2", "v"]), b"-OOM command not allowed when used memory > 'maxmemory'.\r\n".to_vec());
}
