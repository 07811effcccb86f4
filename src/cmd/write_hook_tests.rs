//! The write hook seen from the commands: every write command of the table, run on a
//! one-shard `Shard` with the store's test recorder on (`store::Dbs::record_writes`),
//! reports exactly the keys it changed, with their kind, and nothing for a write that
//! fails or changes nothing. The store-side writes (passive and active expiry,
//! cache-mode eviction) and the whole-db writes (FLUSHDB, FLUSHALL, SWAPDB: their jobs'
//! bodies, `generic::flush_db` and `Dbs::swap`) are checked the same way.

use std::collections::BTreeSet;

use crate::cmd::table;
use crate::container::Container;
use crate::reply::ReplyBuf;
use crate::shard::{Shard, unix_ms};
use crate::store::{Hooked, Value, WriteKind};

use WriteKind::*;

/// A one-shard shard (16 dbs) recording its write hooks.
fn recording_shard() -> Shard {
    let cfg = crate::config::Config::from_args(["darter".to_string()]).expect("default config");
    let runtime = crate::cmd::config::initial(&cfg);
    let g = std::sync::Arc::new(crate::shard::Globals::new(cfg, vec![-1]));
    let mut s = Shard::new(0, g, runtime, table().len());
    s.dbs.record_writes();
    s
}

/// A key write as the test states it: (db, key, kind).
type W = (usize, String, WriteKind);

/// The hook calls recorded since the last call, checked for their order, as the key
/// writes (db, key, kind) and db-level writes (db, kind) they reported.
fn recorded(s: &mut Shard) -> (Vec<W>, Vec<(usize, WriteKind)>) {
    let log = s.dbs.take_recorded();
    let (mut keys, mut dbs) = (Vec::new(), Vec::new());
    for (i, h) in log.iter().enumerate() {
        match h {
            Hooked::Write(db, k, kind) => {
                // Each key write was announced to the pre-write hook first: with its key
                // since the key's last write, or — for an eviction — with its bucket
                // (the walk) or with the key whose insert evicted it.
                let mut announced =
                    log[..i].iter().rev().take_while(|e| !matches!(e, Hooked::Write(d, kk, _) if d == db && kk == k));
                let ok = announced.any(|e| match e {
                    Hooked::Pre(d, kk) => d == db && (kk == k || *kind == Evicted),
                    Hooked::PreBucket(d) => d == db && *kind == Evicted,
                    _ => false,
                });
                assert!(ok, "write of {:?} without a pre-write: {log:?}", String::from_utf8_lossy(k));
                keys.push((*db, String::from_utf8_lossy(k).into_owned(), *kind));
            }
            Hooked::WriteDb(db, kind) => {
                assert!(log[..i].contains(&Hooked::PreDb(*db, *kind)), "{log:?}");
                dbs.push((*db, *kind));
            }
            Hooked::Pre(..) | Hooked::PreBucket(_) | Hooked::PreDb(..) => {}
        }
    }
    (keys, dbs)
}

/// Runs a command on db `db` and returns its reply and the key writes it reported (it
/// must report no db-level write).
fn run_in(s: &mut Shard, db: usize, args: &[&str]) -> (String, Vec<W>) {
    let cmd = table().lookup(args[0].as_bytes()).expect("a command");
    let a: Vec<&[u8]> = args.iter().map(|x| x.as_bytes()).collect();
    let mut out = ReplyBuf::new(false);
    crate::cmd::run_shard_handler(s, cmd, db, &a, &mut out);
    let (keys, dbs) = recorded(s);
    assert_eq!(dbs, vec![], "{args:?}");
    (String::from_utf8(out.buf).expect("utf-8 reply"), keys)
}

/// A case's expected key write: (db, key, kind).
type Want = (usize, &'static str, WriteKind);

fn w(db: usize, key: &str, kind: WriteKind) -> W {
    (db, key.to_string(), kind)
}

/// Every write command of the table, with writes that happen and writes that fail or
/// change nothing (Redis signals no modification for those: no `signalModifiedKey`).
#[test]
fn every_write_command_reports_exactly_its_writes() {
    let mut s = recording_shard();
    let future = (unix_ms() / 1000 + 1000).to_string();
    let future_ms = (unix_ms() + 1_000_000).to_string();
    // A value of another type than string (the test-only container kind), for WRONGTYPE.
    s.dbs[0].set(b"other", Value::from_container(Box::new(Container::Probe(vec![1]))), 0);
    assert_eq!(recorded(&mut s).0, vec![w(0, "other", Set)]);

    #[rustfmt::skip]
    let cases: &[(&[&str], &[Want])] = &[
        // SET family: a write even when the value is the same; none when NX/XX stop it.
        (&["set", "k", "v"], &[(0, "k", Set)]),
        (&["set", "k", "v"], &[(0, "k", Set)]),
        (&["set", "k", "v", "nx"], &[]),
        (&["set", "nokey", "v", "xx"], &[]),
        (&["set", "k", "v2", "keepttl", "get"], &[(0, "k", Set)]),
        (&["set", "other", "v", "get"], &[]),
        (&["set", "k", "v", "ex", "0"], &[]),
        (&["setnx", "k", "v"], &[]),
        (&["setnx", "n", "v"], &[(0, "n", Set)]),
        (&["setex", "e1", "100", "v"], &[(0, "e1", Set)]),
        (&["setex", "e1", "-1", "v"], &[]),
        (&["psetex", "e2", "100000", "v"], &[(0, "e2", Set)]),
        (&["getset", "k", "w"], &[(0, "k", Set)]),
        (&["getset", "other", "w"], &[]),
        (&["getdel", "nokey"], &[]),
        (&["getdel", "n"], &[(0, "n", Delete)]),
        (&["getdel", "other"], &[]),
        // GETEX: only a deadline change is a write.
        (&["getex", "k"], &[]),
        (&["getex", "nokey", "px", "100"], &[]),
        (&["getex", "k", "px", "100000"], &[(0, "k", Expire)]),
        (&["getex", "k", "persist"], &[(0, "k", Expire)]),
        (&["getex", "k", "persist"], &[]),
        (&["getex", "k", "ex", "0"], &[]),
        (&["getex", "k", "exat", "1"], &[(0, "k", Delete)]),
        // APPEND / PREPEND: a new key is stored, an existing one changed in place.
        (&["append", "a", "x"], &[(0, "a", Set)]),
        (&["append", "a", "y"], &[(0, "a", Modify)]),
        (&["prepend", "a", "z"], &[(0, "a", Modify)]),
        (&["prepend", "p", "z"], &[(0, "p", Set)]),
        (&["append", "other", "y"], &[]),
        // Counters: no write when the value or the increment is not a number, or on
        // overflow.
        (&["incr", "i"], &[(0, "i", Set)]),
        (&["decr", "i"], &[(0, "i", Set)]),
        (&["incrby", "i", "5"], &[(0, "i", Set)]),
        (&["decrby", "i", "2"], &[(0, "i", Set)]),
        (&["incrby", "i", "x"], &[]),
        (&["decrby", "i", "-9223372036854775808"], &[]),
        (&["incr", "a"], &[]),
        (&["incr", "other"], &[]),
        (&["set", "max", "9223372036854775807"], &[(0, "max", Set)]),
        (&["incr", "max"], &[]),
        (&["incrbyfloat", "f", "1.5"], &[(0, "f", Set)]),
        (&["incrbyfloat", "a", "1"], &[]),
        (&["incrbyfloat", "f", "x"], &[]),
        (&["incrbyfloat", "other", "1"], &[]),
        // SETRANGE: an empty value changes nothing.
        (&["setrange", "r", "2", "ab"], &[(0, "r", Set)]),
        (&["setrange", "r", "0", "x"], &[(0, "r", Modify)]),
        (&["setrange", "r", "0", ""], &[]),
        (&["setrange", "nokey", "0", ""], &[]),
        (&["setrange", "r", "-1", "x"], &[]),
        (&["setrange", "other", "0", "x"], &[]),
        // MSET / MSETNX.
        (&["mset", "m1", "a", "m2", "b"], &[(0, "m1", Set), (0, "m2", Set)]),
        (&["mset", "m1", "a", "m2"], &[]),
        (&["msetnx", "m1", "x", "m3", "y"], &[]),
        (&["msetnx", "m3", "x", "m4", "y"], &[(0, "m3", Set), (0, "m4", Set)]),
        // DEL / UNLINK: only the keys that existed.
        (&["del", "m1", "nokey", "m2"], &[(0, "m1", Delete), (0, "m2", Delete)]),
        (&["unlink", "m3", "nokey"], &[(0, "m3", Delete)]),
        // EXPIRE family and PERSIST.
        (&["expire", "nokey", "100"], &[]),
        (&["expire", "m4", "100"], &[(0, "m4", Expire)]),
        (&["expire", "m4", "100", "nx"], &[]),
        (&["pexpire", "m4", "100000", "xx"], &[(0, "m4", Expire)]),
        (&["expireat", "m4", &future], &[(0, "m4", Expire)]),
        (&["pexpireat", "m4", &future_ms], &[(0, "m4", Expire)]),
        (&["pexpire", "m4", "1", "gt"], &[]),
        (&["expire", "m4", "x"], &[]),
        (&["persist", "m4"], &[(0, "m4", Expire)]),
        (&["persist", "m4"], &[]),
        (&["persist", "nokey"], &[]),
        (&["expire", "m4", "-1"], &[(0, "m4", Delete)]),
        // RENAME / RENAMENX.
        (&["set", "r1", "v"], &[(0, "r1", Set)]),
        (&["rename", "r1", "r2"], &[(0, "r1", Delete), (0, "r2", Set)]),
        (&["rename", "nokey", "r3"], &[]),
        (&["rename", "r2", "r2"], &[]),
        (&["renamenx", "r2", "a"], &[]),
        (&["renamenx", "r2", "r2"], &[]),
        (&["renamenx", "r2", "r4"], &[(0, "r2", Delete), (0, "r4", Set)]),
        // COPY, into this db or another.
        (&["copy", "r4", "c1"], &[(0, "c1", Set)]),
        (&["copy", "r4", "c1"], &[]),
        (&["copy", "r4", "c1", "replace"], &[(0, "c1", Set)]),
        (&["copy", "r4", "c1", "db", "1"], &[(1, "c1", Set)]),
        (&["copy", "nokey", "c2"], &[]),
        (&["copy", "r4", "r4"], &[]),
        (&["copy", "r4", "c3", "db", "99"], &[]),
        // MOVE: deleted here, stored there; nothing when the target has the key.
        (&["move", "c1", "2"], &[(0, "c1", Delete), (2, "c1", Set)]),
        (&["move", "r4", "0"], &[]),
        (&["move", "nokey", "1"], &[]),
        (&["copy", "r4", "c1"], &[(0, "c1", Set)]),
        (&["move", "c1", "2"], &[]),
    ];
    let mut covered = BTreeSet::new();
    for (args, want) in cases {
        let (reply, got) = run_in(&mut s, 0, args);
        let want: Vec<W> = want.iter().map(|&(db, k, kind)| w(db, k, kind)).collect();
        assert_eq!(got, want, "{args:?} replied {reply:?}");
        covered.insert(args[0]);
    }

    // Reads write nothing, except a lookup that finds a key past its deadline
    // (passive expiry).
    for args in [&["get", "k"][..], &["mget", "k", "nokey"], &["exists", "r4"], &["ttl", "r4"], &["strlen", "a"]] {
        assert_eq!(run_in(&mut s, 0, args).1, vec![], "{args:?}");
    }
    for (args, key) in
        [(&["get", "x1"][..], "x1"), (&["exists", "x2"], "x2"), (&["ttl", "x3"], "x3"), (&["del", "x4"], "x4")]
    {
        s.dbs[0].set(key.as_bytes(), Value::from_int(1), 1); // a deadline long past
        assert_eq!(recorded(&mut s).0, vec![w(0, key, Set)]);
        assert_eq!(run_in(&mut s, 0, args).1, vec![w(0, key, Expired)], "{args:?}");
    }
    // SET KEEPTTL on a key past its deadline: deleted first, then stored without one.
    s.dbs[0].set(b"x5", Value::from_int(1), 1);
    let _ = recorded(&mut s);
    assert_eq!(run_in(&mut s, 0, &["set", "x5", "v", "keepttl"]).1, vec![w(0, "x5", Expired), w(0, "x5", Set)]);
    assert_eq!(run_in(&mut s, 0, &["pttl", "x5"]).0, ":-1\r\n");
    let expired_before = s.dbs[0].stats().expired_keys;

    // FLUSHDB / FLUSHALL: what their jobs run on every shard. A db that had keys
    // reports a Flush; an empty one nothing.
    assert!(!s.dbs[1].is_empty() && s.dbs[3].is_empty());
    super::generic::flush_db(&mut s, 1, false);
    super::generic::flush_db(&mut s, 3, false);
    assert_eq!(recorded(&mut s), (vec![], vec![(1, Flush)]));
    for db in 0..s.dbs.len() {
        super::generic::flush_db(&mut s, db, true);
    }
    assert_eq!(recorded(&mut s), (vec![], vec![(0, Flush), (2, Flush)]));
    assert!(s.dbs.iter().all(|d| d.is_empty()));
    covered.extend(["flushdb", "flushall"]);

    // SWAPDB: both indices report it, and keep their hooks (and counters): a write
    // after the swap is reported by the index it was made in.
    run_in(&mut s, 0, &["set", "s0", "v"]);
    s.dbs.swap(0, 5);
    assert_eq!(recorded(&mut s), (vec![], vec![(0, Swap), (5, Swap)]));
    assert!(s.dbs[0].is_empty() && !s.dbs[5].is_empty());
    assert_eq!(s.dbs[0].stats().expired_keys, expired_before);
    assert_eq!(run_in(&mut s, 5, &["del", "s0"]).1, vec![w(5, "s0", Delete)]);
    s.dbs.swap(4, 4);
    s.dbs.swap(6, 7); // both empty: nothing changes
    assert_eq!(recorded(&mut s), (vec![], vec![]));
    covered.insert("swapdb");

    let missing: Vec<&str> =
        table().commands.iter().filter(|c| c.is_write() && !covered.contains(c.name)).map(|c| c.name).collect();
    assert_eq!(missing, Vec::<&str>::new(), "write commands without a case here");
}

/// Active expiry and cache-mode eviction, the writes no command makes: each removed key
/// is reported (and counted for INFO by the hook).
#[test]
fn store_side_writes_are_reported() {
    let mut s = recording_shard();
    let db = &mut s.dbs[2];
    for i in 0..50 {
        db.set(format!("t{i}").as_bytes(), Value::from_int(i), if i % 2 == 0 { 1 } else { 0 });
    }
    let _ = recorded(&mut s);
    let mut removed = 0;
    for _ in 0..100 {
        removed += s.dbs[2].expire_step(unix_ms(), 64).removed;
    }
    assert_eq!(removed, 25);
    let (keys, dbs) = recorded(&mut s);
    assert_eq!(dbs, vec![]);
    assert!(keys.iter().all(|(d, _, kind)| *d == 2 && *kind == Expired), "{keys:?}");
    let want: BTreeSet<String> = (0..50).step_by(2).map(|i| format!("t{i}")).collect();
    assert_eq!(keys.iter().map(|(_, k, _)| k.clone()).collect::<BTreeSet<String>>(), want);
    assert_eq!(keys.len(), 25);
    assert_eq!(s.dbs[2].stats().expired_keys, 25);

    // The eviction walk (the tick's cache-mode step): every evicted key is reported,
    // and only those are gone.
    let db = &mut s.dbs[2];
    for i in 0..2000 {
        db.set(format!("p{i}").as_bytes(), Value::from_int(i), 0);
    }
    let _ = recorded(&mut s);
    s.dbs[2].set_cache_mode(true, true, false);
    let mut evicted = 0;
    while evicted < 50 {
        evicted += s.dbs[2].evict_some(50 - evicted);
    }
    let (keys, _) = recorded(&mut s);
    assert_eq!(keys.len(), 50);
    assert!(keys.iter().all(|(d, _, kind)| *d == 2 && *kind == Evicted), "{keys:?}");
    let gone: BTreeSet<&str> = keys.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(gone.len(), 50);
    for k in &gone {
        assert!(!s.dbs[2].contains(k.as_bytes(), unix_ms()));
    }
    assert_eq!(s.dbs[2].len(), 2025 - 50);
    // Over budget, an insert evicts first (announced by the insert's own pre-write).
    s.dbs[2].set_cache_mode(true, true, true);
    let (_, keys) = run_in(&mut s, 2, &["set", "new", "v"]);
    let n = keys.len() - 1;
    assert!((1..=crate::store::EVICT_PER_INSERT).contains(&n), "{keys:?}");
    assert!(keys[..n].iter().all(|(_, _, kind)| *kind == Evicted), "{keys:?}");
    assert_eq!(keys[n], w(2, "new", Set));
    assert_eq!(s.dbs[2].stats().evicted_keys, 50 + n as u64);
    assert_eq!(s.dbs[2].len(), 2025 - 50 - n + 1);
}
