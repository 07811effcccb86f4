//! Cache mode against the real binary: with `--cache_mode --maxmemory`, writes past
//! the limit evict instead of failing, used memory stays at the limit, and INFO stats
//! counts evictions, hits and misses.

mod common;

use common::{Server, encode_command, info_field, load, used_memory};

fn stat(c: &mut common::RawConn, field: &str) -> u64 {
    info_field(c, "stats", field).parse().unwrap_or_else(|e| panic!("{field}: {e}"))
}

#[test]
fn cache_mode_evicts_within_maxmemory() {
    const LIMIT: i64 = 16 << 20;
    const N: usize = 300_000;
    let s = Server::darter(&["--proactor_threads", "2", "--cache_mode", "--maxmemory", "16mb"]);
    let mut c = s.raw();
    // ~40 MB of 100-byte values into 16 MB: every SET still answers +OK.
    load(&mut c, N, 100);
    std::thread::sleep(std::time::Duration::from_millis(100)); // a tick or more
    let used = used_memory(&mut c);
    // The tick may still be evicting: read the count on both sides of DBSIZE until it
    // stood still across it, so the two figures describe the same moment.
    let (mut keys, mut evicted) = (0, 0);
    for _ in 0..100 {
        let before = stat(&mut c, "evicted_keys");
        keys = c.cmd_resp(&["DBSIZE"]).as_int().unwrap() as u64;
        evicted = stat(&mut c, "evicted_keys");
        if before == evicted {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    eprintln!("cache: used_memory {used} of {LIMIT}, {keys} keys, {evicted} evicted");
    assert!(used <= LIMIT, "used_memory {used} over maxmemory {LIMIT}");
    assert!(evicted > 0);
    assert_eq!(keys + evicted, N as u64, "every key is either there or was evicted");
    assert!(keys > 50_000, "the cache holds a fair share: {keys}");
    assert_eq!(info_field(&mut c, "memory", "maxmemory"), LIMIT.to_string());

    // Hits and misses: the last keys written are mostly there, the first mostly not.
    let (hits0, misses0) = (stat(&mut c, "keyspace_hits"), stat(&mut c, "keyspace_misses"));
    let mut buf = Vec::new();
    for i in (0..1000).chain(N - 1000..N) {
        buf.extend(encode_command(&["GET", &format!("key:{i}")]));
    }
    c.send_raw(&buf);
    let replies = common::parse_all(&c.read_replies(2000));
    let found = |r: &[common::Resp]| r.iter().filter(|x| x.as_bytes().is_some()).count();
    let (old, new) = (found(&replies[..1000]), found(&replies[1000..]));
    assert!(new > old, "recent keys {new}/1000 present vs old {old}/1000");
    let (hits, misses) = (stat(&mut c, "keyspace_hits") - hits0, stat(&mut c, "keyspace_misses") - misses0);
    assert_eq!((hits, misses), ((old + new) as u64, (2000 - old - new) as u64));

    // Keys read again and again while the rest churns stay cached (hits promote them
    // to the front of their bucket); keys written once and never read go.
    let hot: Vec<String> = (0..100).map(|i| format!("hot:{i}")).collect();
    for k in &hot {
        c.cmd(&["SET", k.as_str(), "1"]);
        c.cmd(&["GET", k.as_str()]); // a new key sits at the back of its bucket until read
    }
    let rounds = 50;
    let mut hot_found = 0;
    for round in 0..rounds {
        let mut buf = Vec::new();
        for i in 0..2000 {
            buf.extend(encode_command(&["SET", &format!("churn:{round}:{i}"), &"x".repeat(100)]));
        }
        for k in &hot {
            buf.extend(encode_command(&["GET", k.as_str()]));
        }
        c.send_raw(&buf);
        let replies = common::parse_all(&c.read_replies(2000 + hot.len()));
        hot_found = found(&replies[2000..]);
    }
    let mut buf = Vec::new();
    for i in 0..2000 {
        buf.extend(encode_command(&["EXISTS", &format!("churn:0:{i}")]));
    }
    c.send_raw(&buf);
    let cold_found = common::parse_all(&c.read_replies(2000)).iter().filter(|r| r.as_int() == Some(1)).count();
    eprintln!("cache: {hot_found}/100 hot keys and {cold_found}/2000 first-round keys left after {rounds} rounds");
    assert!(hot_found >= 95, "hot keys left: {hot_found}/100");
    assert!(cold_found < 1000, "unread keys left: {cold_found}/2000");
}
