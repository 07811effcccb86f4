//! Unit tests for `DashTable`. Sizes shrink under Miri (`cfg(miri)`).

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use super::table::{fp_of_hash, home_of_hash};
use super::*;

/// Big enough for many splits natively, small enough for Miri.
const N: u64 = if cfg!(miri) { 2_500 } else { 200_000 };

/// Key with a caller-chosen hash, to steer items into chosen buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HK {
    h: u64,
    id: u64,
}

impl DashHash for HK {
    fn dash_hash(&self, _seed: u64) -> u64 {
        self.h
    }
}

/// A hash with the given home bucket, fingerprint and top (prefix) bits.
fn hash_for(home: usize, fp: u8, top: u64) -> u64 {
    let low = ((home as u64) << 32).div_ceil(REGULAR_BUCKETS as u64);
    let h = (top << 40) | ((fp as u64) << 32) | low;
    assert_eq!(home_of_hash(h), home);
    assert_eq!(fp_of_hash(h), fp);
    h
}

// Pins: basic map semantics: insert returns the old value and keeps the
// first key, get/contains/remove agree, len tracks.
#[test]
fn basic_ops() {
    let mut t: DashTable<u64, String> = DashTable::with_seed(1);
    assert!(t.is_empty());
    assert_eq!(t.insert(1, "a".into()), None);
    assert_eq!(t.insert(2, "b".into()), None);
    assert_eq!(t.insert(1, "c".into()), Some("a".into()));
    assert_eq!(t.len(), 2);
    assert_eq!(t.get(&1).map(String::as_str), Some("c"));
    assert_eq!(t.get_key_value(&2), Some((&2, &"b".to_string())));
    assert!(t.contains_key(&2));
    assert!(!t.contains_key(&3));
    t.get_mut(&2).unwrap().push('!');
    assert_eq!(t.remove(&2), Some((2, "b!".into())));
    assert_eq!(t.remove(&2), None);
    assert_eq!(t.len(), 1);
    t.check_invariants();
}

// Pins: byte-slice keys are looked up by `&[u8]` without allocating, for
// both `Vec<u8>` and `Box<[u8]>` storage.
#[test]
fn borrowed_byte_keys() {
    let mut t: DashTable<Box<[u8]>, u32> = DashTable::with_seed(2);
    for i in 0..500u32 {
        t.insert(format!("key:{i}").into_bytes().into_boxed_slice(), i);
    }
    for i in 0..500u32 {
        let k = format!("key:{i}");
        assert_eq!(t.get(k.as_bytes()), Some(&i));
    }
    assert_eq!(t.get(&b"nope"[..]), None);
    let mut v: DashTable<Vec<u8>, u32> = DashTable::with_seed(3);
    v.insert(b"abc".to_vec(), 1);
    assert_eq!(v.get(&b"abc"[..]), Some(&1));
    assert_eq!(v.remove(&b"abc"[..]), Some((b"abc".to_vec(), 1)));
}

// Pins: growth through many segment splits and directory doublings keeps
// every key findable and all structural invariants (placement, stash
// refs, directory ranges) intact; removal of half keeps the other half.
#[test]
fn grow_and_shrink() {
    let mut t: DashTable<u64, u64> = DashTable::with_seed(4);
    for i in 0..N {
        assert_eq!(t.insert(i, i * 2), None);
    }
    assert_eq!(t.len(), N as usize);
    assert!(t.segment_count() > 1 && t.global_depth() >= 1);
    t.check_invariants();
    for i in 0..N {
        assert_eq!(t.get(&i), Some(&(i * 2)), "key {i}");
    }
    for i in (0..N).step_by(2) {
        assert_eq!(t.remove(&i), Some((i, i * 2)));
    }
    t.check_invariants();
    for i in 0..N {
        assert_eq!(t.get(&i).is_some(), i % 2 == 1);
    }
    assert_eq!(t.len(), (N / 2) as usize);
}

// Pins: the table-wide fill stays in the expected range (segments grow
// before they split, and split halves get the size their items need, so
// well above 50% of the slots are used), and the overhead accounting adds
// up: the segments' allocations plus the directory and pointers.
#[test]
fn load_factor_and_mem_usage() {
    let mut t: DashTable<u64, u64> = DashTable::with_seed(5);
    for i in 0..N {
        t.insert(i, i);
    }
    let lf = t.len() as f64 / t.capacity() as f64;
    if !cfg!(miri) {
        assert!(lf > 0.65 && lf <= 1.0, "load factor {lf}");
    }
    let segs = t.segment_count();
    assert_eq!(DashTable::<u64, u64>::segment_bytes(), 15168);
    let allocs: Vec<(usize, usize)> = t.segment_allocations().collect();
    assert_eq!(allocs.iter().map(|&(_, n)| n).sum::<usize>(), segs);
    assert!(allocs.iter().all(|&(bytes, _)| bytes <= 15168 && (bytes - 1728) % 960 == 0), "{allocs:?}");
    let seg_bytes: usize = allocs.iter().map(|&(b, n)| b * n).sum();
    assert_eq!(t.capacity(), (seg_bytes - segs * 1728) / 16);
    assert!(t.mem_usage_bytes() >= seg_bytes);
    assert!(t.mem_usage_bytes() < seg_bytes + (1 << t.global_depth()) * 4 * 2 + segs * 32 + 4096);
}

// Pins: with_capacity pre-splits into a power of two segments sized for
// ~70% fill, so inserting `capacity` items needs few or no splits.
#[test]
fn with_capacity_presizes() {
    let cap = if cfg!(miri) { 2000 } else { 100_000 };
    let mut t: DashTable<u64, u64> = DashTable::with_capacity_and_seed(cap, 6);
    let before = t.segment_count();
    assert!(before * SEGMENT_CAPACITY * 7 / 10 >= cap);
    assert!(before.is_power_of_two());
    for i in 0..cap as u64 {
        t.insert(i, i);
    }
    assert!(t.segment_count() <= before + before / 8, "{} -> {}", before, t.segment_count());
    t.check_invariants();
}

// Pins: get_or_insert_with runs the closure only for absent keys and
// reports whether it inserted; the borrowed form builds the owned key only
// on insert.
#[test]
fn get_or_insert() {
    let mut t: DashTable<Box<[u8]>, u32> = DashTable::with_seed(7);
    let mut made = 0;
    for round in 0..2 {
        for i in 0..300u32 {
            let k = format!("k{i}");
            let (v, inserted) = t.get_or_insert_borrowed(k.as_bytes(), |q| {
                made += 1;
                (q.to_vec().into_boxed_slice(), i)
            });
            assert_eq!(inserted, round == 0);
            *v += 1;
        }
    }
    assert_eq!(made, 300);
    assert_eq!(t.get(&b"k7"[..]), Some(&9));
    let mut u: DashTable<u64, Vec<u32>> = DashTable::with_seed(8);
    let (v, ins) = u.get_or_insert_with(5, Vec::new);
    assert!(ins);
    v.push(1);
    let (v, ins) = u.get_or_insert_with(5, || unreachable!());
    assert!(!ins);
    assert_eq!(v, &vec![1]);
}

// Pins: iter/iter_mut/keys/values visit every item exactly once with an
// exact size_hint; retain removes exactly the rejected items.
#[test]
fn iteration_and_retain() {
    let n = N / 4;
    let mut t: DashTable<u64, u64> = DashTable::with_seed(9);
    for i in 0..n {
        t.insert(i, i);
    }
    let it = t.iter();
    assert_eq!(it.len(), n as usize);
    let keys: HashSet<u64> = t.keys().copied().collect();
    assert_eq!(keys.len(), n as usize);
    assert_eq!(t.values().sum::<u64>(), n * (n - 1) / 2);
    for (k, v) in t.iter_mut() {
        *v = k + 1;
    }
    assert!(t.iter().all(|(k, v)| *v == k + 1));
    t.retain(|k, v| {
        *v += 1;
        k % 3 != 0
    });
    assert_eq!(t.len(), (0..n).filter(|k| k % 3 != 0).count());
    assert!(t.iter().all(|(k, v)| k % 3 != 0 && *v == k + 2));
    t.check_invariants();
    assert_eq!(format!("{:?}", DashTable::<u64, u64>::with_seed(0)), "{}");
}

// Pins: a new table allocates nothing, every read path answers "empty"
// on it, and the first insert (even with growth disallowed) allocates
// exactly one segment.
#[test]
fn lazy_first_segment() {
    let mut t: DashTable<u64, u64> = DashTable::with_seed(3);
    assert_eq!((t.segment_count(), t.global_depth()), (0, 0));
    assert_eq!(t.get(&1), None);
    assert_eq!(t.remove(&1), None);
    assert!(!t.bump_up(&1));
    assert_eq!(t.random_entry(5), None);
    assert_eq!(t.traverse(0, |_, _| panic!("empty")), 0);
    assert_eq!(t.bucket_version(t.bucket_cursor(&1)), 0);
    t.set_bucket_version(0, 9);
    assert_eq!(t.iter().count(), 0);
    t.check_invariants();
    t.set_growth_allowed(false);
    assert_eq!(t.insert_or_evict(1, 2, |_, _| panic!("nothing to evict")), None);
    assert_eq!((t.segment_count(), t.get(&1)), (1, Some(&2)));
    t.check_invariants();
    let mut t: DashTable<u64, u64> = DashTable::with_capacity_and_seed(0, 3);
    assert_eq!(t.segment_count(), 0);
    t.insert(7, 8);
    assert_eq!((t.segment_count(), t.get(&7)), (1, Some(&8)));
}

// Pins: the Slot API probes once: find_hashed, then slot/slot_mut/
// remove_slot on the hit or insert_unique_hashed on a miss, behaves like
// get/get_mut/remove/insert (splits included).
#[test]
fn slot_api() {
    let mut t: DashTable<Box<[u8]>, u64> = DashTable::with_seed(4);
    let n = if cfg!(miri) { 1_500 } else { 5_000 }; // > 840: splits
    for i in 0..n {
        let k = format!("key:{i}");
        let h = t.hash_key(k.as_bytes());
        assert!(t.find_hashed(h, k.as_bytes()).is_none());
        let s = t.insert_unique_hashed(h, k.as_bytes().into(), i);
        assert_eq!(t.slot(s), (&k.as_bytes().into(), &i));
    }
    assert!(t.segment_count() > 1);
    for i in 0..n {
        let k = format!("key:{i}");
        let h = t.hash_key(k.as_bytes());
        let s = t.find_hashed(h, k.as_bytes()).expect("present");
        *t.slot_mut(s).1 += 1;
        if i % 2 == 0 {
            assert_eq!(t.remove_slot(s).1, i + 1);
        }
    }
    assert_eq!(t.len(), (n / 2) as usize);
    assert_eq!(t.get(&b"key:1"[..]), Some(&2));
    assert_eq!(t.get(&b"key:0"[..]), None);
    t.check_invariants();
}

// Pins: clear frees all segments and the table is reusable.
#[test]
fn clear_and_reuse() {
    let mut t: DashTable<u64, u64> = DashTable::with_seed(10);
    for i in 0..N.max(8_000) / 4 {
        t.insert(i, i);
    }
    let big = t.mem_usage_bytes();
    t.clear();
    assert!(t.is_empty());
    assert_eq!(t.segment_count(), 0);
    assert!(t.mem_usage_bytes() < big);
    t.check_invariants();
    assert_eq!(t.traverse(12345, |_, _| panic!("empty")), 0);
    assert_eq!(t.get(&1), None);
    for i in 0..1000 {
        t.insert(i, i + 1);
    }
    assert_eq!(t.get(&999), Some(&1000));
    t.check_invariants();
}

// Pins: random_entry returns None on empty, a real item otherwise, is
// deterministic per seed, and is roughly uniform (every item is drawn, no
// item more than ~5x its fair share).
#[test]
fn random_entry_roughly_uniform() {
    let mut t: DashTable<u64, u64> = DashTable::with_seed(11);
    assert!(t.random_entry(1).is_none());
    let n = if cfg!(miri) { 200 } else { 5_000 };
    for i in 0..n {
        t.insert(i, i);
    }
    let draws = n * if cfg!(miri) { 20 } else { 100 };
    let mut hits = HashMap::new();
    for s in 0..draws {
        let (k, v) = t.random_entry(s).unwrap();
        assert_eq!(k, v);
        *hits.entry(*k).or_insert(0u64) += 1;
    }
    assert_eq!(t.random_entry(42), t.random_entry(42));
    let fair = draws / n;
    assert!(hits.len() as u64 >= n * 95 / 100, "only {} of {n} items drawn", hits.len());
    let max = *hits.values().max().unwrap();
    assert!(max <= fair * 6, "max {max} vs fair {fair}");
    // A sparse table (most segments empty) still finds its items.
    t.retain(|k, _| *k == 17);
    assert_eq!(t.random_entry(99), Some((&17, &17)));
}

/// Full traversal from 0, returning visit counts and number of calls.
fn full_traverse<K: Eq + DashHash + Clone + std::hash::Hash, V>(t: &DashTable<K, V>) -> (HashMap<K, u32>, usize) {
    let mut seen = HashMap::new();
    let mut cursor = 0;
    let mut calls = 0;
    loop {
        cursor = t.traverse(cursor, |k, _| *seen.entry(k.clone()).or_insert(0) += 1);
        calls += 1;
        assert_eq!(cursor >> CURSOR_FREE_SHIFT, 0, "free cursor bits must stay 0");
        if cursor == 0 {
            return (seen, calls);
        }
    }
}

// Pins: a full traversal of a static table visits every key exactly once,
// the free cursor bits 52..64 are always 0 and are ignored on input, and an
// empty table finishes in one call.
#[test]
fn traverse_static() {
    let mut t: DashTable<u64, u64> = DashTable::with_seed(12);
    assert_eq!(t.traverse(0, |_, _| panic!("empty")), 0);
    let n = N / 4;
    for i in 0..n {
        t.insert(i, i);
    }
    let (seen, calls) = full_traverse(&t);
    assert_eq!(seen.len(), n as usize);
    assert!(seen.values().all(|&c| c == 1));
    assert!(calls <= t.segment_count() * REGULAR_BUCKETS + 1);
    // Shard bits in the top byte do not change what a call does.
    let mut a = Vec::new();
    let mut b = Vec::new();
    let c1 = t.traverse(0, |k, _| a.push(*k));
    let c2 = t.traverse(0xAB << CURSOR_FREE_SHIFT, |k, _| b.push(*k));
    assert_eq!((c1, &a), (c2, &b));
    let c1 = t.traverse(c1, |_, _| {});
    let c2 = t.traverse(c1 | (0xFF << CURSOR_FREE_SHIFT), |_, _| {});
    assert_eq!(c2 & !CURSOR_USED_MASK, 0);
    // Invalid bucket field: traversal over.
    assert_eq!(t.traverse(63 << CURSOR_BUCKET_SHIFT, |_, _| panic!()), 0);
}

// traverse_keys_mut walks the same order as traverse, call for call (same
// keys, same cursors), also from a cursor inside a segment after a clear.
#[test]
fn traverse_keys_mut_matches_traverse() {
    let mut t: DashTable<u64, u64> = DashTable::with_seed(5);
    for i in 0..N / 8 {
        t.insert(i, i);
    }
    let mut cursor = 0;
    loop {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let c1 = t.traverse(cursor, |k, _| a.push(*k));
        let c2 = t.traverse_keys_mut(cursor, |k| b.push(*k));
        assert_eq!((c1, &a), (c2, &b));
        cursor = c1;
        if cursor == 0 {
            break;
        }
    }
    let mid = t.traverse(t.traverse(0, |_, _| {}), |_, _| {});
    let mut a = Vec::new();
    let mut b = Vec::new();
    assert_eq!(t.traverse(mid, |k, _| a.push(*k)), t.traverse_keys_mut(mid, |k| b.push(*k)));
    assert_eq!(a, b);
    let mut e: DashTable<u64, u64> = DashTable::with_seed(5);
    assert_eq!(e.traverse_keys_mut(0, |_| panic!("empty")), 0);
}

// Pins THE traversal guarantee: with inserts (forcing segment splits and
// directory doublings) and removals between every call, every key present
// for the whole traversal is visited exactly once and no key is visited
// more than once.
#[test]
fn traverse_under_concurrent_splits() {
    for seed in 0..if cfg!(miri) { 1 } else { 4 } {
        let s = if cfg!(miri) { 300 } else { 20_000 };
        let per_call = if cfg!(miri) { 8 } else { 4 };
        let mut t: DashTable<u64, u64> = DashTable::with_seed(seed);
        for i in 0..2 * s {
            t.insert(i, i);
        }
        let segs_before = t.segment_count();
        let mut seen: HashMap<u64, u32> = HashMap::new();
        let mut cursor = 0;
        let mut next_new = 1u64 << 40;
        let mut transient = s..2 * s; // removed during the traversal
        let mut calls = 0;
        loop {
            cursor = t.traverse(cursor, |k, _| *seen.entry(*k).or_insert(0) += 1);
            calls += 1;
            for _ in 0..per_call {
                t.insert(next_new, 0);
                next_new += 1;
            }
            if calls % 2 == 0
                && let Some(k) = transient.next()
            {
                t.remove(&k);
            }
            if cursor == 0 {
                break;
            }
        }
        t.check_invariants();
        assert!(
            t.segment_count() >= (segs_before * 3 / 2).max(segs_before + 1),
            "not enough splits: {segs_before} -> {}",
            t.segment_count()
        );
        for k in 0..s {
            assert_eq!(seen.get(&k), Some(&1), "stable key {k}");
        }
        assert!(seen.values().all(|&c| c == 1), "a key was visited twice");
    }
}

// Pins: a traversal that spans `clear` (directory shrinks to one segment,
// so the cursor points into the middle of a segment) still visits no key
// twice and visits every key inserted after the clear that stays present.
#[test]
fn traverse_across_clear() {
    let n = if cfg!(miri) { 1500 } else { 30_000 };
    let mut t: DashTable<u64, u64> = DashTable::with_seed(13);
    for i in 0..n {
        t.insert(i, i);
    }
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let mut cursor = 0;
    for _ in 0..50 {
        cursor = t.traverse(cursor, |k, _| *seen.entry(*k).or_insert(0) += 1);
    }
    assert_ne!(cursor, 0);
    let mid = cursor;
    t.clear();
    // Re-fill to fewer segments than before so `mid` lands inside one.
    let n = n / 8;
    for i in 0..n {
        t.insert(i, i);
    }
    let mut after: HashMap<u64, u32> = HashMap::new();
    while cursor != 0 {
        cursor = t.traverse(cursor, |k, _| *after.entry(*k).or_insert(0) += 1);
    }
    assert!(after.values().all(|&c| c == 1));
    // Exactly the keys at or after `mid` in traversal order are visited.
    let mut rest: HashSet<u64> = HashSet::new();
    let mut c = mid;
    while c != 0 {
        c = t.traverse(c, |k, _| {
            rest.insert(*k);
        });
    }
    assert_eq!(after.keys().copied().collect::<HashSet<_>>(), rest);
    // ... and that set is exactly the keys at or after `mid` in the
    // (bucket id, 46-bit hash prefix) order.
    let (mb, mp) = (mid >> CURSOR_BUCKET_SHIFT, mid & ((1 << CURSOR_PREFIX_BITS) - 1));
    let expect: HashSet<u64> = (0..n)
        .filter(|k| {
            let h = k.dash_hash(t.seed());
            (home_of_hash(h) as u64, h >> (64 - CURSOR_PREFIX_BITS)) >= (mb, mp)
        })
        .collect();
    assert_eq!(rest, expect);
    assert!(!expect.is_empty() && expect.len() < n as usize);
    let (full, _) = full_traverse(&t);
    assert_eq!(full.len(), n as usize);
}

// Pins: bucket versions: mutations stamp the item's logical bucket with
// the version clock (max, never lowering), reads do not, splits copy the
// versions into both halves, and set_bucket_version/bucket_cursor address
// the same logical bucket that traverse visits.
#[test]
fn bucket_versions() {
    let mut t: DashTable<u64, u64> = DashTable::with_seed(14);
    t.insert(1, 1);
    assert_eq!(t.bucket_version(t.bucket_cursor(&1)), 0);
    t.set_version_clock(5);
    t.get(&1);
    assert_eq!(t.bucket_version(t.bucket_cursor(&1)), 0, "reads do not stamp");
    *t.get_mut(&1).unwrap() = 2;
    let c = t.bucket_cursor(&1);
    assert_eq!(t.bucket_version(c), 5);
    t.set_bucket_version(c, 9);
    t.insert(1, 3);
    assert_eq!(t.bucket_version(c), 9, "stamping never lowers");
    let mut visited = Vec::new();
    t.traverse(c, |k, _| visited.push(*k));
    assert!(visited.contains(&1));
    // Splits preserve versions of every logical bucket.
    t.set_version_clock(0);
    let pre: Vec<(u64, u32)> = (0..REGULAR_BUCKETS as u64)
        .map(|b| {
            let c = b << CURSOR_BUCKET_SHIFT;
            t.set_bucket_version(c, 100 + b as u32);
            (c, 100 + b as u32)
        })
        .collect();
    let m = if cfg!(miri) { 3_000 } else { N / 8 };
    for i in 2..m {
        t.insert(i, i);
    }
    assert!(t.segment_count() > 2);
    drop(pre);
    for k in 2..m {
        let home = home_of_hash(k.dash_hash(t.seed())) as u32;
        assert_eq!(t.bucket_version(t.bucket_cursor(&k)), 100 + home, "key {k}");
    }
    // Removal stamps too.
    t.set_version_clock(200);
    let c = t.bucket_cursor(&7);
    t.remove(&7);
    assert_eq!(t.bucket_version(c), 200);
}

// Pins: placement rules with steered hashes: home bucket first, then the
// neighbour as a probing item, then displacement, then the stash; and
// more stashed items of one home than it has spare bytes for refs (the
// elsewhere flag) are still all found and removed.
#[test]
fn placement_neighbour_displacement_stash() {
    let mut t: DashTable<HK, u32> = DashTable::with_capacity_and_seed(1, 0); // one full-size segment
    let home = 10;
    let mut id = 0;
    let mut key = |fp: u8| {
        id += 1;
        HK { h: hash_for(home, fp, 0), id }
    };
    let mut keys = Vec::new();
    for i in 0..SLOTS {
        let k = key(i as u8);
        t.insert(k.clone(), 0);
        assert_eq!(t.debug_pos(&k).unwrap().1, home, "home bucket first");
        keys.push(k);
    }
    for _ in 0..SLOTS {
        let k = key(7);
        t.insert(k.clone(), 0);
        assert_eq!(t.debug_pos(&k).unwrap().1, home + 1, "then neighbour");
        keys.push(k);
    }
    // Both full. Next goes to the stash (no displacement possible: the
    // neighbour holds no item of its own).
    for i in 0..10 {
        let k = key(if i < 6 { 7 } else { i as u8 });
        t.insert(k.clone(), 0);
        assert!(t.debug_pos(&k).unwrap().1 >= REGULAR_BUCKETS, "then stash");
        keys.push(k);
    }
    t.check_invariants();
    for k in &keys {
        assert!(t.contains_key(k));
    }
    // Remove stashed items.
    for k in keys.drain(2 * SLOTS..).rev() {
        assert!(t.remove(&k).is_some());
        t.check_invariants();
    }
    // Displacement 1: make the neighbour hold an item of its own.
    let mut t: DashTable<HK, u32> = DashTable::with_capacity_and_seed(1, 0);
    let own = HK { h: hash_for(home + 1, 1, 0), id: 1000 };
    t.insert(own.clone(), 0);
    for i in 0..SLOTS as u64 {
        t.insert(HK { h: hash_for(home, 2, 0), id: i }, 0);
    }
    for i in 0..SLOTS as u64 - 1 {
        t.insert(HK { h: hash_for(home, 3, 0), id: 100 + i }, 0);
    }
    // home and home+1 full; home+2 has room -> `own` moves to home+2.
    let k = HK { h: hash_for(home, 4, 0), id: 2000 };
    t.insert(k.clone(), 0);
    assert_eq!(t.debug_pos(&own).unwrap().1, home + 2, "own item displaced to its neighbour");
    assert_eq!(t.debug_pos(&k).unwrap().1, home + 1);
    t.check_invariants();
    // Displacement 2: home holds a probing item whose home has room.
    let mut t: DashTable<HK, u32> = DashTable::with_capacity_and_seed(1, 0);
    for i in 0..SLOTS as u64 {
        t.insert(HK { h: hash_for(home - 1, 1, 0), id: i }, 0); // fills home-1
    }
    let prober = HK { h: hash_for(home - 1, 1, 0), id: 99 };
    t.insert(prober.clone(), 0); // -> home as probing
    assert_eq!(t.debug_pos(&prober).unwrap().1, home);
    t.remove(&HK { h: hash_for(home - 1, 1, 0), id: 0 }); // room in home-1
    for i in 0..SLOTS as u64 - 1 {
        t.insert(HK { h: hash_for(home, 2, 0), id: 200 + i }, 0); // fills home
    }
    for i in 0..SLOTS as u64 {
        t.insert(HK { h: hash_for(home + 1, 2, 0), id: 300 + i }, 0); // fills home+1
    }
    for i in 0..SLOTS as u64 {
        t.insert(HK { h: hash_for(home + 2, 2, 0), id: 400 + i }, 0); // fills home+2
    }
    let k = HK { h: hash_for(home, 5, 0), id: 3000 };
    t.insert(k.clone(), 0);
    assert_eq!(t.debug_pos(&prober).unwrap().1, home - 1, "probing item moved back home");
    assert_eq!(t.debug_pos(&k).unwrap().1, home);
    t.check_invariants();
}

// Pins: a split happens only when home, neighbour and all four stash
// buckets are full, touches only that segment, and leaves every item
// findable; items land in the half their hash bit selects.
#[test]
fn split_when_neighbourhood_full() {
    let mut t: DashTable<HK, u32> = DashTable::with_seed(0);
    let home = 30;
    let cap = 2 * SLOTS + STASH_BUCKETS * SLOTS;
    for i in 0..cap as u64 {
        t.insert(HK { h: hash_for(home, i as u8, (i & 1) << 23), id: i }, 0);
    }
    assert_eq!(t.segment_count(), 1, "84 items fit home+neighbour+stash");
    t.insert(HK { h: hash_for(home, 200, 1 << 23), id: 999 }, 0);
    assert_eq!(t.segment_count(), 2);
    assert_eq!(t.global_depth(), 1);
    t.check_invariants();
    for i in 0..cap as u64 {
        let k = HK { h: hash_for(home, i as u8, (i & 1) << 23), id: i };
        let (seg, _, _) = t.debug_pos(&k).unwrap();
        assert_eq!(seg, (i & 1) as usize, "top hash bit selects the half");
    }
}

// Pins: a constant (degenerate) DashHash panics with a clear message after
// a few splits instead of doubling the directory until OOM.
#[test]
#[should_panic(expected = "degenerate")]
fn degenerate_hash_panics() {
    let mut t: DashTable<HK, u32> = DashTable::with_seed(0);
    for i in 0..10_000 {
        t.insert(HK { h: 12345, id: i }, 0);
    }
}

// Pins: bump_up moves a stashed item into its (non-full) home bucket at
// slot 0, swaps it with the home's last owned item when home is full,
// brings a probing item home when there is room, and otherwise rotates the
// item to slot 0 of its bucket without losing anyone.
#[test]
fn bump_up_moves_items_forward() {
    let mut t: DashTable<HK, u32> = DashTable::with_capacity_and_seed(1, 0); // one full-size segment
    let home = 5;
    let ks: Vec<HK> = (0..SLOTS as u64 * 2 + 3).map(|i| HK { h: hash_for(home, i as u8, 0), id: i }).collect();
    for k in &ks {
        t.insert(k.clone(), k.id as u32);
    }
    let stashed = &ks[2 * SLOTS + 1];
    assert!(t.debug_pos(stashed).unwrap().1 >= REGULAR_BUCKETS);
    // Home full: swap with home's last owned item.
    assert!(t.bump_up(stashed));
    assert_eq!(t.debug_pos(stashed).unwrap().1, home);
    assert_eq!(t.debug_pos(stashed).unwrap().2, 0);
    t.check_invariants();
    // Rotation within the home bucket.
    let last = &ks[SLOTS - 2];
    assert!(t.bump_up(last));
    assert_eq!(t.debug_pos(last).unwrap(), (0, home, 0));
    assert_eq!(t.debug_pos(stashed).unwrap(), (0, home, 1));
    t.check_invariants();
    // Probing item goes home once there is room.
    let prober = &ks[SLOTS];
    assert_eq!(t.debug_pos(prober).unwrap().1, home + 1);
    t.remove(&ks[0]);
    assert!(t.bump_up(prober));
    assert_eq!(t.debug_pos(prober).unwrap(), (0, home, 0));
    // Stashed item goes home into a free slot.
    let stashed2 = &ks[2 * SLOTS + 2];
    t.remove(&ks[1]);
    assert!(t.debug_pos(stashed2).unwrap().1 >= REGULAR_BUCKETS);
    assert!(t.bump_up(stashed2));
    assert_eq!(t.debug_pos(stashed2).unwrap(), (0, home, 0));
    t.check_invariants();
    for k in &ks[2..] {
        assert_eq!(t.get(k), Some(&(k.id as u32)));
    }
    assert!(!t.bump_up(&HK { h: 1, id: 12345 }));
}

// Pins: with growth disabled, insert_or_evict never splits: a full
// neighbourhood evicts the last slot of the home bucket (reported through
// the callback, gone from the table), the new item lands in slot 0, and
// len stays consistent. With growth allowed it behaves like insert.
#[test]
fn insert_or_evict_without_growth() {
    let mut t: DashTable<u64, u64> = DashTable::with_seed(15);
    t.set_growth_allowed(false);
    let mut evicted = Vec::new();
    let n = if cfg!(miri) { 2_000 } else { 20_000 };
    for i in 0..n {
        assert_eq!(t.insert_or_evict(i, i, |k, v| evicted.push((k, v))), None);
        assert!(t.contains_key(&i), "new item must be present");
    }
    assert_eq!(t.segment_count(), 1);
    assert!(!evicted.is_empty());
    assert_eq!(t.len() + evicted.len(), n as usize);
    for (k, v) in &evicted {
        assert_eq!(k, v);
        assert!(!t.contains_key(k));
    }
    t.check_invariants();
    // Replacing an existing key never evicts.
    let some = *t.keys().next().unwrap();
    let before = evicted.len();
    assert_eq!(t.insert_or_evict(some, 7, |k, v| evicted.push((k, v))), Some(some));
    assert_eq!(evicted.len(), before);
    t.set_growth_allowed(true);
    for i in n..2 * n {
        t.insert_or_evict(i, i, |_, _| panic!("growth allowed"));
    }
    assert!(t.segment_count() > 1);
}

// Pins: with steered hashes, eviction takes exactly the last slot of the
// home bucket and puts the new key in slot 0.
#[test]
fn evict_takes_last_home_slot() {
    let mut t: DashTable<HK, u64> = DashTable::with_capacity_and_seed(1, 0); // one full-size segment
    t.set_growth_allowed(false);
    let home = 40;
    let cap = 2 * SLOTS + STASH_BUCKETS * SLOTS;
    let ks: Vec<HK> = (0..cap as u64).map(|i| HK { h: hash_for(home, i as u8, 0), id: i }).collect();
    for k in &ks {
        t.insert_or_evict(k.clone(), k.id, |_, _| panic!("not full yet"));
    }
    let last = t
        .keys()
        .find(|k| {
            let (_, b, s) = t.debug_pos(*k).unwrap();
            b == home && s == SLOTS - 1
        })
        .unwrap()
        .clone();
    let newk = HK { h: hash_for(home, 250, 0), id: 5000 };
    let mut ev = Vec::new();
    t.insert_or_evict(newk.clone(), 1, |k, _| ev.push(k));
    assert_eq!(ev, vec![last]);
    assert_eq!(t.debug_pos(&newk).unwrap(), (0, home, 0));
    assert_eq!(t.len(), cap);
    t.check_invariants();
}

/// Value that counts live instances.
struct Counted {
    live: Rc<Cell<i64>>,
    created: Rc<Cell<i64>>,
}

impl Counted {
    fn new(live: &Rc<Cell<i64>>, created: &Rc<Cell<i64>>) -> Self {
        live.set(live.get() + 1);
        created.set(created.get() + 1);
        Counted { live: live.clone(), created: created.clone() }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let _ = &self.created;
        self.live.set(self.live.get() - 1);
        assert!(self.live.get() >= 0, "double drop");
    }
}

/// Key that counts live instances too.
#[derive(PartialEq, Eq)]
struct CKey {
    id: u64,
    #[allow(dead_code)]
    tag: CountedTag,
}

struct CountedTag(Rc<Cell<i64>>);
impl PartialEq for CountedTag {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for CountedTag {}
impl Drop for CountedTag {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
        assert!(self.0.get() >= 0, "double drop of key");
    }
}
impl DashHash for CKey {
    fn dash_hash(&self, seed: u64) -> u64 {
        self.id.dash_hash(seed)
    }
}

// Pins: every key and value is dropped exactly once across inserts with
// splits, replacements, removals, retain, get_or_insert, evictions, clear
// and the final Drop (no leak, no double drop).
#[test]
fn drops_every_item_exactly_once() {
    let live = Rc::new(Cell::new(0));
    let created = Rc::new(Cell::new(0));
    let klive = Rc::new(Cell::new(0));
    let ck = |id: u64| {
        klive.set(klive.get() + 1);
        CKey { id, tag: CountedTag(klive.clone()) }
    };
    let n = if cfg!(miri) { 1_500 } else { 30_000 };
    {
        let mut t: DashTable<CKey, Counted> = DashTable::with_seed(16);
        for i in 0..n {
            t.insert(ck(i), Counted::new(&live, &created));
        }
        for i in 0..n / 4 {
            let old = t.insert(ck(i), Counted::new(&live, &created));
            assert!(old.is_some()); // the new key is dropped, old value returned
        }
        for i in n / 4..n / 2 {
            assert!(t.remove(&ck(i)).is_some());
        }
        t.retain(|k, _| k.id % 5 != 0);
        for i in n..n + 100 {
            t.get_or_insert_with(ck(i), || Counted::new(&live, &created));
        }
        let mut evicted = 0;
        t.set_growth_allowed(false);
        for i in 2 * n..3 * n {
            t.insert_or_evict(ck(i), Counted::new(&live, &created), |_, _| evicted += 1);
        }
        assert!(evicted > 0);
        assert_eq!(live.get(), t.len() as i64);
        assert_eq!(klive.get(), t.len() as i64);
        t.check_invariants();
        t.clear();
        assert_eq!(live.get(), 0);
        assert_eq!(klive.get(), 0);
        for i in 0..n / 2 {
            t.insert(ck(i), Counted::new(&live, &created));
        }
    }
    assert_eq!(live.get(), 0, "leak or double drop of values");
    assert_eq!(klive.get(), 0, "leak or double drop of keys");
    assert!(created.get() > 2 * n as i64);
}

thread_local! {
    static HASH_BUDGET: Cell<u64> = const { Cell::new(u64::MAX) };
}

#[derive(PartialEq, Eq, Debug)]
struct FragileKey(u64);
impl DashHash for FragileKey {
    fn dash_hash(&self, seed: u64) -> u64 {
        HASH_BUDGET.with(|b| {
            if b.get() == 0 {
                panic!("hash budget exhausted");
            }
            b.set(b.get() - 1);
        });
        self.0.dash_hash(seed)
    }
}

// Pins: a panic inside user hash code in the middle of a segment split
// leaves the table consistent (all invariants hold, every earlier item
// still present) and nothing is dropped twice.
#[test]
fn panic_during_split_is_safe() {
    let live = Rc::new(Cell::new(0));
    let created = Rc::new(Cell::new(0));
    let mut t: DashTable<FragileKey, Counted> = DashTable::with_seed(17);
    let mut i = 0;
    // Insert until the next insert will split: detect via segment count.
    let n = if cfg!(miri) { 400 } else { 5000 };
    for _ in 0..n {
        t.insert(FragileKey(i), Counted::new(&live, &created));
        i += 1;
    }
    let mut panicked = 0;
    for _ in 0..20_000 {
        let segs = t.segment_count();
        // Allow the key's own hash, then panic inside a split (if any).
        HASH_BUDGET.with(|b| b.set(1 + 20));
        let r = catch_unwind(AssertUnwindSafe(|| {
            t.insert(FragileKey(i), Counted::new(&live, &created));
        }));
        HASH_BUDGET.with(|b| b.set(u64::MAX));
        if r.is_err() {
            panicked += 1;
            assert_eq!(t.segment_count(), segs, "no half-done split");
            t.check_invariants();
            if panicked == 3 {
                break;
            }
        }
        assert_eq!(live.get(), t.len() as i64);
        i += 1;
    }
    t.check_invariants();
    assert!(panicked > 0, "no split was interrupted");
    for k in 0..n {
        assert!(t.contains_key(&FragileKey(k)));
    }
    drop(t);
    assert_eq!(live.get(), 0);
}

// Pins: zero-sized values and large values work (a large V allocates the
// segment on the heap directly, no stack temporary).
#[test]
fn odd_value_sizes() {
    let mut z: DashTable<u64, ()> = DashTable::with_seed(18);
    for i in 0..3000 {
        z.insert(i, ());
    }
    assert_eq!(z.len(), 3000);
    z.check_invariants();
    if !cfg!(miri) {
        let mut big: DashTable<u64, [u64; 512]> = DashTable::with_seed(19);
        for i in 0..3000 {
            big.insert(i, [i; 512]);
        }
        assert_eq!(big.get(&2999).unwrap()[511], 2999);
        assert!(big.segment_count() >= 4);
    }
}

// Pins: the table is Send/Sync exactly when its contents are (no raw
// pointers hide ownership).
#[test]
fn auto_traits() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<DashTable<Box<[u8]>, Vec<u8>>>();
    assert_send_sync::<Iter<'static, u64, u64>>();
}

// Pins: a table's first segment starts small and grows through the size
// ladder (each step the largest segment of the next allocator size class,
// items staying in place) before the first split, and the halves of a
// split are rebuilt at the size their items need rather than full size.
#[test]
fn segments_grow_before_they_split() {
    let mut t: DashTable<u64, u64> = DashTable::with_seed(11);
    let mut caps = Vec::new();
    let mut i = 0u64;
    while t.segment_count() < 2 {
        t.insert(i, i);
        if caps.last() != Some(&t.capacity()) && t.segment_count() == 1 {
            caps.push(t.capacity());
            t.check_invariants();
        }
        i += 1;
    }
    // (u64, u64): 5,568 B (6 KiB class) ... 15,168 B (16 KiB).
    let ladder: Vec<usize> = [4, 5, 6, 8, 11, 13, 14].iter().map(|s| s * TOTAL_BUCKETS).collect();
    assert_eq!(caps, ladder);
    t.check_invariants();
    assert!(t.capacity() < 2 * SEGMENT_CAPACITY, "split halves are not full size: {}", t.capacity());
    for j in 0..i {
        assert_eq!(t.get(&j), Some(&j));
    }
    // Many splits later every segment is still a ladder size, and the
    // table is well filled.
    for j in i..if cfg!(miri) { 3000 } else { 200_000 } {
        t.insert(j, j);
    }
    t.check_invariants();
    for (bytes, _) in t.segment_allocations() {
        let spb = (bytes - SEGMENT_HEADER_BYTES) / (TOTAL_BUCKETS * 16);
        assert!(ladder.contains(&(spb * TOTAL_BUCKETS)), "{bytes} B segment");
    }
}

// Pins: after most keys are removed, merge steps join buddy segments (the
// directory halving once no segment needs its depth), every remaining key
// is still found, the table's memory shrinks, and a traversal that runs
// across the merges still visits every key present throughout exactly once.
#[test]
fn merges_give_memory_back() {
    let n: u64 = if cfg!(miri) { 3000 } else { 100_000 };
    let mut t: DashTable<u64, u64> = DashTable::with_seed(12);
    for i in 0..n {
        t.insert(i, i);
    }
    let (segs, depth, bytes) = (t.segment_count(), t.global_depth(), t.mem_usage_bytes());
    t.retain(|k, _| k % 20 == 0);
    let kept: Vec<u64> = (0..n).step_by(20).collect();
    // Traverse half-way, then merge everything, then finish.
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let mut cursor = 0;
    while seen.len() < kept.len() / 2 {
        cursor = t.traverse(cursor, |k, _| *seen.entry(*k).or_insert(0) += 1);
        assert_ne!(cursor, 0);
    }
    let (mut c, mut merges) = (0, 0);
    loop {
        let (next, m) = t.merge_step(c, 64, 8);
        merges += m;
        c = next;
        if c == 0 && m == 0 {
            break;
        }
    }
    t.check_invariants();
    // (`<=`: Miri's 3000 keys start from 4 segments.)
    assert!(merges > 0 && t.segment_count() * 4 <= segs, "{segs} -> {} segments", t.segment_count());
    assert!(t.global_depth() < depth);
    assert!(t.mem_usage_bytes() < bytes / 4, "{bytes} -> {}", t.mem_usage_bytes());
    while cursor != 0 {
        cursor = t.traverse(cursor, |k, _| *seen.entry(*k).or_insert(0) += 1);
    }
    for k in &kept {
        assert_eq!(t.get(k), Some(k));
        assert_eq!(seen.get(k), Some(&1), "key {k}");
    }
    assert_eq!(seen.len(), kept.len());
    // And it grows again as usual.
    for i in n..n + n / 2 {
        t.insert(i, i);
    }
    t.check_invariants();
    assert_eq!(t.len(), kept.len() + (n / 2) as usize);
}

// Pins: a miss reads only its home bucket's 16 metadata bytes (no
// neighbour, no stash) unless a ref matches or the home has an item
// elsewhere without a ref. Measured at 1M u64 keys: 5% of misses look
// further; before refs (only "displaced"/"stashed" flags) 56% did.
#[test]
fn misses_mostly_stop_at_home() {
    let n: u64 = if cfg!(miri) { 2_000 } else { 1_000_000 };
    let mut t: DashTable<u64, u64> = DashTable::with_seed(1);
    for i in 0..n {
        t.insert(i, i);
    }
    let probes = n.min(100_000);
    let further = (n..n + probes).filter(|k| t.miss_leaves_home(k)).count();
    let frac = further as f64 / probes as f64;
    if !cfg!(miri) {
        assert!(frac < 0.10, "{frac:.3} of misses read beyond the home bucket");
    }
    for k in n..n + probes.min(1000) {
        assert!(t.get(&k).is_none());
    }
}

// Pins: fingerprint 0 is an ordinary fingerprint: in a small segment
// (4 slots per bucket, so the home has spare bytes for refs), items of
// fingerprint 0 and others overflow one home into the neighbour and the
// stash; those of fingerprint 0 get no ref (0 means "no ref") but the
// elsewhere flag, and every item is found, absent keys of fingerprint 0 are
// not, and all remove cleanly.
#[test]
fn fingerprint_zero_items_away_from_home() {
    let mut t: DashTable<HK, u32> = DashTable::with_seed(0);
    assert!(t.small_segments());
    let home = 10;
    let mut keys = Vec::new();
    for id in 0..9u64 {
        let fp = if id % 3 == 1 { 5 } else { 0 };
        let k = HK { h: hash_for(home, fp, 0), id };
        t.insert(k.clone(), id as u32);
        keys.push(k);
        t.check_invariants();
    }
    assert!(keys.iter().any(|k| t.debug_pos(k).unwrap().1 != home), "some item left home");
    for k in &keys {
        assert_eq!(t.get(k), Some(&(k.id as u32)));
    }
    for id in 100..110 {
        assert!(!t.contains_key(&HK { h: hash_for(home, 0, 0), id }));
        assert!(!t.contains_key(&HK { h: hash_for(home + 1, 0, 0), id }));
    }
    for k in keys.iter().rev() {
        assert_eq!(t.remove(k).map(|(_, v)| v), Some(k.id as u32));
        t.check_invariants();
    }
    assert!(t.is_empty());
}
