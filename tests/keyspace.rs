//! Keyspace commands against the real binary: replies and errors as Redis 7.0 gives
//! them (checked against redis-server 7.0.15), cross-shard RENAME/COPY, SCAN over all
//! shards, KEYS's limit, and millisecond-exact passive and active expiry.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;
use darter::shard::shard_of;

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Status(String),
    Err(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Arr(Option<Vec<V>>),
}

fn ok() -> V {
    V::Status("OK".into())
}

fn err(s: &str) -> V {
    V::Err(s.into())
}

fn bulk(s: &str) -> V {
    V::Bulk(Some(s.as_bytes().to_vec()))
}

/// A minimal RESP client, so error texts can be compared exactly.
struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn new(d: &Server) -> Client {
        let s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { w: s.try_clone().unwrap(), r: BufReader::new(s) }
    }

    fn send(&mut self, args: &[&[u8]]) {
        self.w.write_all(&common::encode_command(args)).unwrap();
    }

    fn read(&mut self) -> V {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let body = line.strip_suffix("\r\n").unwrap_or_else(|| panic!("bad reply line {line:?}"));
        let (t, rest) = body.split_at(1);
        match t {
            "+" => V::Status(rest.into()),
            "-" => V::Err(rest.into()),
            ":" => V::Int(rest.parse().unwrap()),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return V::Bulk(None);
                }
                let mut b = vec![0; n as usize + 2];
                self.r.read_exact(&mut b).unwrap();
                b.truncate(n as usize);
                V::Bulk(Some(b))
            }
            "*" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return V::Arr(None);
                }
                V::Arr(Some((0..n).map(|_| self.read()).collect()))
            }
            _ => panic!("unexpected reply {line:?}"),
        }
    }

    /// Runs a command given as words separated by spaces.
    fn q(&mut self, cmd: &str) -> V {
        let args: Vec<&[u8]> = cmd.split_whitespace().map(str::as_bytes).collect();
        self.send(&args);
        self.read()
    }

    fn int(&mut self, cmd: &str) -> i64 {
        match self.q(cmd) {
            V::Int(n) => n,
            v => panic!("{cmd}: expected an integer, got {v:?}"),
        }
    }

    /// Sends many commands at once, then reads all replies.
    fn pipeline(&mut self, cmds: &[String]) -> Vec<V> {
        let mut b = Vec::new();
        for c in cmds {
            let words: Vec<&str> = c.split_whitespace().collect();
            b.extend(common::encode_command(&words));
        }
        self.w.write_all(&b).unwrap();
        cmds.iter().map(|_| self.read()).collect()
    }
}

/// The strings of an array reply of bulks.
fn strings(v: V) -> Vec<String> {
    match v {
        V::Arr(Some(items)) => items
            .into_iter()
            .map(|i| match i {
                V::Bulk(Some(b)) => String::from_utf8(b).unwrap(),
                other => panic!("expected a bulk, got {other:?}"),
            })
            .collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

/// Two key names living on different shards out of `n`.
fn cross_pair(prefix: &str, n: usize) -> (String, String) {
    let a = format!("{prefix}:a");
    let s = shard_of(a.as_bytes(), n);
    let b = (0..).map(|i| format!("{prefix}:b{i}")).find(|b| shard_of(b.as_bytes(), n) != s).unwrap();
    (a, b)
}

// DEL/UNLINK count each existing key once, EXISTS counts repeats, TOUCH counts hits,
// across shards; TYPE names the type or "none".
#[test]
fn del_exists_touch_type() {
    let d = Server::darter(&["--proactor_threads", "4"]);
    let mut c = Client::new(&d);
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    assert_eq!(c.q(&format!("MSET {}", keys.iter().map(|k| format!("{k} v")).collect::<Vec<_>>().join(" "))), ok());
    let all = keys.join(" ");
    assert_eq!(c.int(&format!("EXISTS {all} {all} nokey")), 24);
    assert_eq!(c.int(&format!("TOUCH {all} nokey k0")), 13);
    assert_eq!(c.int("EXISTS k0 k0 k1 nokey"), 3);
    assert_eq!(c.q("TYPE k0"), V::Status("string".into()));
    assert_eq!(c.q("TYPE nokey"), V::Status("none".into()));
    assert_eq!(c.int("DEL k0 k0 k1 nokey"), 2);
    assert_eq!(c.int("UNLINK k2 k3 k3 k0"), 2);
    assert_eq!(c.int(&format!("EXISTS {all}")), 8);
    assert_eq!(c.int(&format!("DEL {all}")), 8);
    assert_eq!(c.q("DEL"), err("ERR wrong number of arguments for 'del' command"));
    assert_eq!(c.q("UNLINK"), err("ERR wrong number of arguments for 'unlink' command"));
    assert_eq!(c.q("TOUCH"), err("ERR wrong number of arguments for 'touch' command"));
    assert_eq!(c.q("TYPE a b"), err("ERR wrong number of arguments for 'type' command"));
}

// EXPIRE and friends: option errors, overflow errors, NX/XX/GT/LT, deadlines in the
// past delete the key; TTL/PTTL/EXPIRETIME/PEXPIRETIME/PERSIST report and clear it.
#[test]
fn expire_family() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Client::new(&d);
    c.q("SET a 1");
    let incompatible = err("ERR NX and XX, GT or LT options at the same time are not compatible");
    assert_eq!(c.q("EXPIRE a 10 nx xx"), incompatible);
    assert_eq!(c.q("EXPIRE a 10 nx gt"), incompatible);
    assert_eq!(c.q("EXPIRE a 10 gt lt"), err("ERR GT and LT options at the same time are not compatible"));
    assert_eq!(c.q("EXPIRE a 10 xx gt lt"), err("ERR GT and LT options at the same time are not compatible"));
    assert_eq!(c.q("EXPIRE a 10 foo"), err("ERR Unsupported option foo"));
    assert_eq!(c.q("EXPIRE a abc foo"), err("ERR Unsupported option foo"));
    assert_eq!(c.q("EXPIRE nokey 10 foo"), err("ERR Unsupported option foo"));
    assert_eq!(c.q("EXPIRE a abc"), err("ERR value is not an integer or out of range"));
    assert_eq!(c.q("EXPIRE a 9223372036854775807"), err("ERR invalid expire time in 'expire' command"));
    assert_eq!(c.q("EXPIRE a -9223372036854775808"), err("ERR invalid expire time in 'expire' command"));
    assert_eq!(c.q("EXPIRE a 9223372036854775"), err("ERR invalid expire time in 'expire' command"));
    assert_eq!(c.q("PEXPIRE a 9223372036854775807"), err("ERR invalid expire time in 'pexpire' command"));
    assert_eq!(c.q("EXPIREAT a 9223372036854775807"), err("ERR invalid expire time in 'expireat' command"));
    assert_eq!(c.q("EXPIRE a"), err("ERR wrong number of arguments for 'expire' command"));
    assert_eq!(c.int("TTL a"), -1, "errors leave the key alone");

    // No deadline is an infinite one: GT fails, LT succeeds.
    assert_eq!(c.int("EXPIRE a 100 gt"), 0);
    assert_eq!(c.int("TTL a"), -1);
    assert_eq!(c.int("EXPIRE a 100 xx"), 0);
    assert_eq!(c.int("EXPIRE a 100 lt"), 1);
    assert_eq!(c.int("TTL a"), 100);
    assert_eq!(c.int("EXPIRE a 200 gt"), 1);
    assert_eq!(c.int("EXPIRE a 150 gt"), 0);
    assert_eq!(c.int("EXPIRE a 10 nx"), 0);
    assert_eq!(c.int("EXPIRE a 150 lt xx"), 1);
    assert_eq!(c.int("TTL a"), 150);
    assert_eq!(c.int("PERSIST a"), 1);
    assert_eq!(c.int("PERSIST a"), 0);
    assert_eq!(c.int("PERSIST nokey"), 0);
    assert_eq!(c.int("TTL a"), -1);
    assert_eq!(c.int("EXPIRE a 10 nx"), 1);

    // TTL rounds to the nearest second; PTTL is exact.
    assert_eq!(c.int("PEXPIRE a 1500"), 1);
    let pttl = c.int("PTTL a");
    assert!((1400..=1500).contains(&pttl), "{pttl}");
    assert_eq!(c.int("PEXPIRE a 1499"), 1);
    assert_eq!(c.int("TTL a"), 1);

    // Absolute deadlines.
    assert_eq!(c.int("EXPIREAT a 4000000000"), 1);
    assert_eq!(c.int("EXPIRETIME a"), 4_000_000_000);
    assert_eq!(c.int("PEXPIRETIME a"), 4_000_000_000_000);
    assert_eq!(c.int("PEXPIREAT a 4000000000123"), 1);
    assert_eq!(c.int("PEXPIRETIME a"), 4_000_000_000_123);
    assert_eq!(c.int("EXPIRETIME a"), 4_000_000_000);
    assert_eq!(c.int("PEXPIREAT a 9223372036854775807"), 1);
    assert_eq!(c.int("EXPIRETIME a"), 9_223_372_036_854_776);
    assert_eq!(c.int("PEXPIRE a -9223372036854775808"), 1, "a deadline in the past deletes");
    assert_eq!(c.int("EXISTS a"), 0);

    // -2 for a missing key, -1 for no deadline.
    for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(c.int(&format!("{cmd} nokey")), -2);
        c.q("SET b 1");
        assert_eq!(c.int(&format!("{cmd} b")), -1);
    }
    assert_eq!(c.int("EXPIRE nokey 10"), 0);

    // Past deadlines delete, unless a condition says no.
    c.q("SET e 1");
    assert_eq!(c.int("EXPIRE e -5 gt"), 0);
    assert_eq!(c.int("EXISTS e"), 1);
    assert_eq!(c.int("EXPIRE e -5 lt"), 1);
    assert_eq!(c.int("EXISTS e"), 0);
    for cmd in ["EXPIRE f 0", "PEXPIRE f -1", "EXPIREAT f 1", "PEXPIREAT f 0"] {
        c.q("SET f 1");
        assert_eq!(c.int(cmd), 1, "{cmd}");
        assert_eq!(c.int("EXISTS f"), 0, "{cmd}");
    }
    // SET (plain) clears a deadline.
    c.q("SET g 1");
    c.q("EXPIRE g 100");
    c.q("SET g 2");
    assert_eq!(c.int("TTL g"), -1);
}

// RENAME/RENAMENX in one shard and across shards: the value and deadline move, the
// source goes, NX refuses an existing destination, renaming to itself is a no-op.
#[test]
fn rename_both_ways() {
    let d = Server::darter(&["--proactor_threads", "4"]);
    let mut c = Client::new(&d);
    let (x, y) = cross_pair("r", 4);
    let pairs = [(x, y), ("{t}x".to_string(), "{t}y".to_string())];
    for (src, dst) in &pairs {
        assert_eq!(c.q(&format!("RENAME {src} {dst}")), err("ERR no such key"));
        assert_eq!(c.q(&format!("RENAMENX {src} {dst}")), err("ERR no such key"));
        assert_eq!(c.q(&format!("RENAME {src} {src}")), err("ERR no such key"));
        c.q(&format!("SET {src} hello"));
        assert_eq!(c.q(&format!("RENAME {src} {src}")), ok());
        assert_eq!(c.int(&format!("RENAMENX {src} {src}")), 0);
        c.q(&format!("PEXPIRE {src} 100000"));
        assert_eq!(c.q(&format!("RENAME {src} {dst}")), ok());
        assert_eq!(c.int(&format!("EXISTS {src}")), 0);
        assert_eq!(c.q(&format!("GET {dst}")), bulk("hello"));
        let pttl = c.int(&format!("PTTL {dst}"));
        assert!((90_000..=100_000).contains(&pttl), "deadline kept: {pttl}");
        // Overwrite: the destination takes the source's (absent) deadline.
        c.q(&format!("SET {src} 42"));
        assert_eq!(c.int(&format!("RENAMENX {src} {dst}")), 0);
        assert_eq!(c.q(&format!("GET {src}")), bulk("42"));
        assert_eq!(c.q(&format!("RENAME {src} {dst}")), ok());
        assert_eq!(c.q(&format!("GET {dst}")), bulk("42"));
        assert_eq!(c.int(&format!("TTL {dst}")), -1);
        assert_eq!(c.int(&format!("RENAMENX {dst} {src}")), 1);
        assert_eq!(c.q(&format!("GET {src}")), bulk("42"));
        assert_eq!(c.int(&format!("EXISTS {dst}")), 0);
        // Works in another db.
        c.q("SELECT 3");
        c.q(&format!("SET {src} in3"));
        assert_eq!(c.q(&format!("RENAME {src} {dst}")), ok());
        assert_eq!(c.q(&format!("GET {dst}")), bulk("in3"));
        c.q("SELECT 0");
        assert_eq!(c.int(&format!("EXISTS {dst}")), 0);
    }
    assert_eq!(c.q("RENAME a"), err("ERR wrong number of arguments for 'rename' command"));
}

// A cross-shard RENAME is atomic: a concurrent two-key EXISTS always sees exactly one
// of the two names.
#[test]
fn rename_is_atomic() {
    let d = Server::darter(&["--proactor_threads", "4"]);
    let (x, y) = cross_pair("atom", 4);
    let mut c = Client::new(&d);
    c.q(&format!("SET {x} v"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let mut w = Client::new(&d);
        let (x, y, stop) = (x.clone(), y.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(w.int(&format!("EXISTS {x} {y}")), 1);
                n += 1;
            }
            n
        })
    };
    for _ in 0..300 {
        assert_eq!(c.q(&format!("RENAME {x} {y}")), ok());
        assert_eq!(c.q(&format!("RENAME {y} {x}")), ok());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(watcher.join().unwrap() > 0);
}

// COPY in one shard and across shards, to other dbs, with REPLACE, and its errors.
#[test]
fn copy_and_move() {
    let d = Server::darter(&["--proactor_threads", "4"]);
    let mut c = Client::new(&d);
    let (x, y) = cross_pair("c", 4);
    for (src, dst) in [(x.as_str(), y.as_str()), ("{t}x", "{t}y")] {
        assert_eq!(c.q(&format!("COPY {src} {src}")), err("ERR source and destination objects are the same"));
        assert_eq!(c.int(&format!("COPY {src} {dst}")), 0);
        c.q(&format!("SET {src} v1"));
        c.q(&format!("PEXPIRE {src} 100000"));
        assert_eq!(c.int(&format!("COPY {src} {dst}")), 1);
        assert_eq!(c.q(&format!("GET {dst}")), bulk("v1"));
        assert_eq!(c.q(&format!("GET {src}")), bulk("v1"));
        assert!(c.int(&format!("PTTL {dst}")) > 90_000);
        c.q(&format!("SET {src} v2"));
        assert_eq!(c.int(&format!("COPY {src} {dst}")), 0);
        assert_eq!(c.q(&format!("GET {dst}")), bulk("v1"));
        assert_eq!(c.int(&format!("COPY {src} {dst} REPLACE")), 1);
        assert_eq!(c.q(&format!("GET {dst}")), bulk("v2"));
        assert_eq!(c.int(&format!("TTL {dst}")), -1);
        assert_eq!(c.int(&format!("COPY {src} {dst} replace replace db 0")), 1);
        // Other db.
        assert_eq!(c.int(&format!("COPY {src} {dst} DB 5")), 1);
        assert_eq!(c.int(&format!("COPY {src} {src} DB 5")), 1);
        c.q("SELECT 5");
        assert_eq!(c.q(&format!("GET {dst}")), bulk("v2"));
        assert_eq!(c.q(&format!("GET {src}")), bulk("v2"));
        c.q("FLUSHDB");
        c.q("SELECT 0");
        // Errors, in Redis's order.
        assert_eq!(c.q(&format!("COPY {src} {dst} db 99")), err("ERR DB index is out of range"));
        assert_eq!(c.q(&format!("COPY {src} {dst} db 99 foo")), err("ERR DB index is out of range"));
        assert_eq!(c.q(&format!("COPY {src} {dst} foo db 99")), err("ERR syntax error"));
        assert_eq!(c.q(&format!("COPY {src} {dst} db")), err("ERR syntax error"));
        assert_eq!(c.q(&format!("COPY {src} {dst} db abc")), err("ERR value is not an integer or out of range"));
        assert_eq!(c.q(&format!("COPY {src} {dst} db -1")), err("ERR DB index is out of range"));
        assert_eq!(c.q(&format!("COPY nokey {dst} db 99")), err("ERR DB index is out of range"));
    }
    assert_eq!(c.q("COPY a"), err("ERR wrong number of arguments for 'copy' command"));

    // MOVE: same key, another db of the same shard.
    c.q("SET m 1");
    c.q("EXPIRE m 1000");
    assert_eq!(c.q("MOVE m 0"), err("ERR source and destination objects are the same"));
    assert_eq!(c.q("MOVE m 99"), err("ERR DB index is out of range"));
    assert_eq!(c.q("MOVE m -1"), err("ERR DB index is out of range"));
    assert_eq!(c.q("MOVE m abc"), err("ERR value is not an integer or out of range"));
    assert_eq!(c.q("MOVE nokey 0"), err("ERR source and destination objects are the same"));
    assert_eq!(c.int("MOVE nokey 1"), 0);
    assert_eq!(c.int("MOVE m 1"), 1);
    assert_eq!(c.int("EXISTS m"), 0);
    c.q("SET m 2");
    assert_eq!(c.int("MOVE m 1"), 0, "destination exists");
    c.q("SELECT 1");
    assert_eq!(c.q("GET m"), bulk("1"));
    let ttl = c.int("TTL m");
    assert!((990..=1000).contains(&ttl), "deadline kept: {ttl}");
}

// KEYS matches a glob over every shard and stops at keys_output_limit.
#[test]
fn keys_and_limit() {
    let d = Server::darter(&["--proactor_threads", "4", "--keys_output_limit", "100"]);
    let mut c = Client::new(&d);
    let cmds: Vec<String> = (0..300).map(|i| format!("SET key:{i} {i}")).collect();
    assert!(c.pipeline(&cmds).iter().all(|r| *r == ok()));
    c.q("SET other 1");
    assert_eq!(strings(c.q("KEYS *")).len(), 100);
    let mut some = strings(c.q("KEYS key:1?"));
    some.sort();
    let mut want: Vec<String> = (10..20).map(|i| format!("key:{i}")).collect();
    want.sort();
    assert_eq!(some, want);
    assert_eq!(strings(c.q("KEYS oth[a-z]r")), vec!["other".to_string()]);
    assert_eq!(strings(c.q("KEYS nomatch*")), Vec::<String>::new());
    assert_eq!(c.q("KEYS"), err("ERR wrong number of arguments for 'keys' command"));
    // Expired keys are not listed.
    c.q("PEXPIRE other 1");
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(strings(c.q("KEYS oth*")), Vec::<String>::new());
}

/// Every key a full SCAN returns, with the number of times each came back.
fn full_scan(c: &mut Client, opts: &str) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let r = c.q(&format!("SCAN {cursor} {opts}"));
        let V::Arr(Some(mut parts)) = r else { panic!("scan reply {r:?}") };
        let keys = strings(parts.pop().unwrap());
        let V::Bulk(Some(next)) = parts.pop().unwrap() else { panic!("cursor") };
        for k in keys {
            *seen.entry(k).or_insert(0) += 1;
        }
        cursor = String::from_utf8(next).unwrap();
        calls += 1;
        assert!(calls < 100_000, "scan does not end");
        if cursor == "0" {
            return seen;
        }
    }
}

// SCAN visits every shard: a full iteration returns every key exactly once, with
// MATCH, COUNT and TYPE applied; bad cursors and options get Redis's errors.
#[test]
fn scan_all_shards() {
    let d = Server::darter(&["--proactor_threads", "4"]);
    let mut c = Client::new(&d);
    assert_eq!(c.q("SCAN 0"), V::Arr(Some(vec![bulk("0"), V::Arr(Some(vec![]))])));
    let cmds: Vec<String> = (0..1000).map(|i| format!("SET key:{i} {i}")).collect();
    assert!(c.pipeline(&cmds).iter().all(|r| *r == ok()));
    for opts in ["", "COUNT 7", "COUNT 1", "COUNT 10000", "MATCH key:* COUNT 3", "TYPE string COUNT 50", "type STRING"]
    {
        let seen = full_scan(&mut c, opts);
        assert_eq!(seen.len(), 1000, "{opts}");
        assert!(seen.values().all(|&n| n == 1), "{opts}: each key once");
    }
    let seen = full_scan(&mut c, "MATCH key:1?? COUNT 20");
    let want: HashSet<String> = (100..200).map(|i| format!("key:{i}")).collect();
    assert_eq!(seen.keys().cloned().collect::<HashSet<_>>(), want);
    assert!(full_scan(&mut c, "TYPE list").is_empty());
    assert!(full_scan(&mut c, "TYPE foo").is_empty());
    // A small COUNT hands out nonzero cursors.
    let V::Arr(Some(parts)) = c.q("SCAN 0 COUNT 5") else { panic!() };
    assert_ne!(parts[0], bulk("0"));

    // Keys that stay for the whole scan are seen even while others come and go.
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut i = 0;
    loop {
        let V::Arr(Some(mut parts)) = c.q(&format!("SCAN {cursor} COUNT 13")) else { panic!() };
        seen.extend(strings(parts.pop().unwrap()));
        let V::Bulk(Some(next)) = parts.pop().unwrap() else { panic!() };
        cursor = String::from_utf8(next).unwrap();
        c.q(&format!("SET churn:{i} x"));
        c.q(&format!("DEL churn:{}", i / 2));
        i += 1;
        if cursor == "0" {
            break;
        }
    }
    assert!((0..1000).all(|i| seen.contains(&format!("key:{i}"))));

    for cmd in ["SCAN abc", "SCAN -", "SCAN 1x", "SCAN 0x1", "SCAN 18446744073709551616"] {
        assert_eq!(c.q(cmd), err("ERR invalid cursor"), "{cmd}");
    }
    assert_eq!(c.q("SCAN 0 COUNT 0"), err("ERR syntax error"));
    assert_eq!(c.q("SCAN 0 COUNT -1"), err("ERR syntax error"));
    assert_eq!(c.q("SCAN 0 COUNT 1 COUNT 0"), err("ERR syntax error"));
    assert_eq!(c.q("SCAN 0 COUNT abc"), err("ERR value is not an integer or out of range"));
    assert_eq!(c.q("SCAN 0 MATCH"), err("ERR syntax error"));
    assert_eq!(c.q("SCAN 0 TYPE"), err("ERR syntax error"));
    assert_eq!(c.q("SCAN 0 foo"), err("ERR syntax error"));
    assert_eq!(c.q("SCAN abc COUNT 0"), err("ERR invalid cursor"), "cursor first");
    assert!(matches!(c.q("SCAN -1"), V::Arr(Some(_))));
    assert_eq!(c.q("SCAN"), err("ERR wrong number of arguments for 'scan' command"));
}

// SCAN while the keyspace grows several-fold (the shards' Dash tables split segments
// between calls) and shrinks: every key present for the whole scan comes back exactly
// once, and no key comes back twice.
#[test]
fn scan_while_tables_split() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Client::new(&d);
    let cmds: Vec<String> = (0..5000).map(|i| format!("SET stable:{i} {i}")).collect();
    assert!(c.pipeline(&cmds).iter().all(|r| *r == ok()));
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut cursor = "0".to_string();
    let mut step = 0;
    loop {
        let V::Arr(Some(mut parts)) = c.q(&format!("SCAN {cursor} COUNT 50")) else { panic!() };
        for k in strings(parts.pop().unwrap()) {
            *seen.entry(k).or_insert(0) += 1;
        }
        let V::Bulk(Some(next)) = parts.pop().unwrap() else { panic!() };
        cursor = String::from_utf8(next).unwrap();
        let grow: Vec<String> = (0..300).map(|j| format!("SET grow:{step}:{j} x")).collect();
        c.pipeline(&grow);
        let shrink: Vec<String> = (0..100).map(|j| format!("DEL grow:{}:{j}", step / 2)).collect();
        c.pipeline(&shrink);
        step += 1;
        assert!(step < 10_000, "scan does not end");
        if cursor == "0" {
            break;
        }
    }
    assert!((0..5000).all(|i| seen.get(&format!("stable:{i}")) == Some(&1)), "each stable key exactly once");
    assert!(seen.values().all(|&n| n == 1), "no key twice");
    let V::Int(n) = c.q("DBSIZE") else { panic!() };
    assert!(n > 20_000, "the keyspace grew during the scan: {n}");
}

// RANDOMKEY: nil on an empty db, else one of the keys, from every shard over time.
#[test]
fn randomkey() {
    let d = Server::darter(&["--proactor_threads", "4"]);
    let mut c = Client::new(&d);
    assert_eq!(c.q("RANDOMKEY"), V::Bulk(None));
    let keys: HashSet<String> = (0..20).map(|i| format!("rk{i}")).collect();
    for k in &keys {
        c.q(&format!("SET {k} 1"));
    }
    let mut shards = HashSet::new();
    for _ in 0..200 {
        let V::Bulk(Some(k)) = c.q("RANDOMKEY") else { panic!("a key") };
        let k = String::from_utf8(k).unwrap();
        assert!(keys.contains(&k), "{k}");
        shards.insert(shard_of(k.as_bytes(), 4));
    }
    assert_eq!(shards.len(), 4, "every shard gets picked");
    // Only expired keys: nil.
    c.q("FLUSHALL");
    c.q("SET gone 1");
    c.q("PEXPIRE gone 1");
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(c.q("RANDOMKEY"), V::Bulk(None));
    assert_eq!(c.q("RANDOMKEY x"), err("ERR wrong number of arguments for 'randomkey' command"));
}

// FLUSHDB empties the selected db only, FLUSHALL every db, SWAPDB exchanges two dbs;
// their argument errors are Redis's.
#[test]
fn flush_and_swapdb() {
    let d = Server::darter(&["--proactor_threads", "4"]);
    let mut c = Client::new(&d);
    let fill = |c: &mut Client, db: usize, n: usize| {
        c.q(&format!("SELECT {db}"));
        let cmds: Vec<String> = (0..n).map(|i| format!("SET db{db}:{i} x")).collect();
        c.pipeline(&cmds);
    };
    fill(&mut c, 0, 50);
    fill(&mut c, 1, 30);
    c.q("SELECT 0");
    assert_eq!(c.int("DBSIZE"), 50);
    assert_eq!(c.q("SWAPDB 0 1"), ok());
    assert_eq!(c.int("DBSIZE"), 30);
    assert_eq!(c.int("EXISTS db1:0"), 1);
    assert_eq!(c.q("SWAPDB 0 0"), ok());
    assert_eq!(c.q("SWAPDB 1 0"), ok());
    assert_eq!(c.int("DBSIZE"), 50);
    assert_eq!(c.q("SWAPDB a 1"), err("ERR invalid first DB index"));
    assert_eq!(c.q("SWAPDB 0 b"), err("ERR invalid second DB index"));
    assert_eq!(c.q("SWAPDB 2147483648 0"), err("ERR invalid first DB index"));
    assert_eq!(c.q("SWAPDB 0 99"), err("ERR DB index is out of range"));
    assert_eq!(c.q("SWAPDB -1 0"), err("ERR DB index is out of range"));
    assert_eq!(c.q("SWAPDB 0"), err("ERR wrong number of arguments for 'swapdb' command"));

    assert_eq!(c.q("FLUSHDB foo"), err("ERR syntax error"));
    assert_eq!(c.q("FLUSHDB ASYNC extra"), err("ERR syntax error"));
    assert_eq!(c.q("FLUSHALL foo"), err("ERR syntax error"));
    assert_eq!(c.int("DBSIZE"), 50);
    assert_eq!(c.q("FLUSHDB"), ok());
    assert_eq!(c.int("DBSIZE"), 0);
    c.q("SELECT 1");
    assert_eq!(c.int("DBSIZE"), 30);
    assert_eq!(c.q("FLUSHDB async"), ok());
    assert_eq!(c.int("DBSIZE"), 0);
    fill(&mut c, 2, 10);
    fill(&mut c, 3, 10);
    assert_eq!(c.q("FLUSHALL SYNC"), ok());
    for db in 0..4 {
        c.q(&format!("SELECT {db}"));
        assert_eq!(c.int("DBSIZE"), 0);
    }
    fill(&mut c, 0, 10);
    assert_eq!(c.q("FLUSHALL ASYNC"), ok());
    assert_eq!(c.int("DBSIZE"), 0);
}

// Passive expiry is exact to the millisecond: PEXPIRE 100 leaves the key readable at
// 80 ms and gone at 120 ms, on every shard.
#[test]
fn expiry_is_millisecond_exact() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Client::new(&d);
    let keys: Vec<String> = (0..4).map(|i| format!("ms{i}")).collect();
    for round in 0..3 {
        for k in &keys {
            c.q(&format!("SET {k} v"));
        }
        let before = Instant::now();
        let cmds: Vec<String> = keys.iter().map(|k| format!("PEXPIRE {k} 100")).collect();
        assert!(c.pipeline(&cmds).iter().all(|r| *r == V::Int(1)));
        let after = Instant::now();
        std::thread::sleep(Duration::from_millis(80).saturating_sub(before.elapsed()));
        let exists = c.int(&format!("EXISTS {}", keys.join(" ")));
        if before.elapsed() < Duration::from_millis(95) {
            assert_eq!(exists, 4, "round {round}: present at 80 ms");
        }
        std::thread::sleep(Duration::from_millis(120).saturating_sub(after.elapsed()));
        for k in &keys {
            assert_eq!(c.q(&format!("GET {k}")), V::Bulk(None), "round {round}: gone at 120 ms");
        }
    }
}

// Active expiry: 10k keys with a 50 ms deadline that nobody reads are all gone within
// two seconds.
#[test]
fn active_expiry() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Client::new(&d);
    let mut cmds = Vec::new();
    for i in 0..10_000 {
        cmds.push(format!("SET act:{i} x"));
        cmds.push(format!("PEXPIRE act:{i} 50"));
    }
    for chunk in cmds.chunks(2000) {
        c.pipeline(chunk);
    }
    c.q("SET keep 1");
    let start = Instant::now();
    loop {
        let n = c.int("DBSIZE");
        if n == 1 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(2), "{n} keys left after 2 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.int("EXISTS keep"), 1);
}
