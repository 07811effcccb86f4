//! Property tests: `DashTable` against `std::collections::HashMap` as the
//! model, over random sequences of insert / remove / find / grow /
//! traverse / evict / bump / retain / merge / clear.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Insert(u64, u32),
    Remove(u64),
    Find(u64),
    GetOrInsert(u64, u32),
    Bump(u64),
    /// Insert this many fresh keys (forces splits).
    Grow(u16),
    /// Remove every key with `k % m == 0`.
    Retain(u8),
    /// Advance the ongoing traversal by this many calls.
    Traverse(u8),
    /// insert_or_evict with growth disabled.
    Evict(u64, u32),
    /// insert_or_evict of this many fresh keys with growth disabled
    /// (fills segments until they evict).
    EvictFill(u16),
    /// merge_step over the whole directory (after removals: merges).
    Merge(u8),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u64..600;
    prop_oneof![
        30 => (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        12 => key.clone().prop_map(Op::Remove),
        12 => key.clone().prop_map(Op::Find),
        6 => (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        4 => key.clone().prop_map(Op::Bump),
        4 => (1u16..if cfg!(miri) { 300 } else { 1500 }).prop_map(Op::Grow),
        1 => (2u8..6).prop_map(Op::Retain),
        15 => (1u8..40).prop_map(Op::Traverse),
        4 => (key, any::<u32>()).prop_map(|(k, v)| Op::Evict(k, v)),
        2 => (1u16..if cfg!(miri) { 300 } else { 1500 }).prop_map(Op::EvictFill),
        3 => (1u8..8).prop_map(Op::Merge),
        1 => Just(Op::Clear),
    ]
}

/// An in-flight traversal and what it must guarantee at the end.
struct Trav {
    cursor: u64,
    seen: HashMap<u64, u32>,
    /// Keys present since the traversal started (shrinks on removal).
    stable: HashSet<u64>,
}

impl Trav {
    fn start(model: &HashMap<u64, u32>) -> Self {
        Trav { cursor: 0, seen: HashMap::new(), stable: model.keys().copied().collect() }
    }
}

fn config() -> ProptestConfig {
    if cfg!(miri) {
        ProptestConfig { cases: 3, failure_persistence: None, ..ProptestConfig::default() }
    } else {
        ProptestConfig { cases: 128, ..ProptestConfig::default() }
    }
}

fn run(ops: Vec<Op>, seed: u64) -> Result<(), TestCaseError> {
    let mut t: DashTable<u64, u32> = DashTable::with_seed(seed);
    let mut model: HashMap<u64, u32> = HashMap::new();
    let mut trav = Trav::start(&model);
    let mut fresh = 1u64 << 32;
    let mut completed = 0;
    let n_ops = ops.len();
    for (i, op) in ops.into_iter().enumerate() {
        let mut removed: Vec<u64> = Vec::new();
        match op {
            Op::Insert(k, v) => prop_assert_eq!(t.insert(k, v), model.insert(k, v)),
            Op::Remove(k) => {
                prop_assert_eq!(t.remove(&k), model.remove(&k).map(|v| (k, v)));
                removed.push(k);
            }
            Op::Find(k) => {
                prop_assert_eq!(t.get(&k), model.get(&k));
                prop_assert_eq!(t.contains_key(&k), model.contains_key(&k));
                prop_assert_eq!(t.get_key_value(&k), model.get_key_value(&k));
            }
            Op::GetOrInsert(k, v) => {
                let was = model.contains_key(&k);
                let mv = *model.entry(k).or_insert(v);
                let (tv, inserted) = t.get_or_insert_with(k, || v);
                prop_assert_eq!(*tv, mv);
                prop_assert_eq!(inserted, !was);
            }
            Op::Bump(k) => {
                prop_assert_eq!(t.bump_up(&k), model.contains_key(&k));
                prop_assert_eq!(t.get(&k), model.get(&k));
            }
            Op::Grow(n) => {
                for _ in 0..n {
                    t.insert(fresh, fresh as u32);
                    model.insert(fresh, fresh as u32);
                    fresh += 1;
                }
            }
            Op::Retain(m) => {
                let m = m as u64;
                t.retain(|k, _| k % m != 0);
                model.retain(|k, _| {
                    if k % m == 0 {
                        removed.push(*k);
                    }
                    k % m != 0
                });
            }
            Op::Traverse(steps) => {
                for _ in 0..steps {
                    trav.cursor = t.traverse(trav.cursor, |k, v| {
                        *trav.seen.entry(*k).or_insert(0) += 1;
                        assert_eq!(model.get(k), Some(v), "traversal yields live items");
                    });
                    prop_assert_eq!(trav.cursor >> CURSOR_FREE_SHIFT, 0);
                    if trav.cursor == 0 {
                        for k in &trav.stable {
                            prop_assert_eq!(trav.seen.get(k), Some(&1), "stable key {} missed", k);
                        }
                        prop_assert!(trav.seen.values().all(|&c| c == 1), "key visited twice");
                        completed += 1;
                        trav = Trav::start(&model);
                        break;
                    }
                }
            }
            Op::Evict(k, v) => {
                t.set_growth_allowed(false);
                let mut ev = Vec::new();
                let old = t.insert_or_evict(k, v, |ek, evv| ev.push((ek, evv)));
                t.set_growth_allowed(true);
                prop_assert_eq!(old, model.insert(k, v));
                for (ek, evv) in ev {
                    prop_assert_ne!(ek, k);
                    prop_assert_eq!(model.remove(&ek), Some(evv));
                    removed.push(ek);
                }
                prop_assert!(t.contains_key(&k));
            }
            Op::EvictFill(n) => {
                t.set_growth_allowed(false);
                let segs = t.segment_count();
                for _ in 0..n {
                    let mut ev = Vec::new();
                    t.insert_or_evict(fresh, fresh as u32, |ek, evv| ev.push((ek, evv)));
                    model.insert(fresh, fresh as u32);
                    for (ek, evv) in ev {
                        prop_assert_eq!(model.remove(&ek), Some(evv));
                        removed.push(ek);
                    }
                    fresh += 1;
                }
                // (An empty table allocates its first segment regardless.)
                prop_assert!(t.segment_count() <= segs.max(1), "no growth while disallowed");
                t.set_growth_allowed(true);
            }
            Op::Merge(max) => {
                let (mut c, mut rounds) = (0, 0);
                loop {
                    (c, _) = t.merge_step(c, 16, max as usize);
                    rounds += 1;
                    if c == 0 || rounds > 10_000 {
                        break;
                    }
                }
                t.check_invariants();
            }
            Op::Clear => {
                t.clear();
                removed.extend(model.keys().copied());
                model.clear();
            }
        }
        for k in removed {
            trav.stable.remove(&k);
        }
        prop_assert_eq!(t.len(), model.len());
        if model.len() < 2000 || i % 16 == 0 || i + 1 == n_ops {
            t.check_invariants();
        }
    }
    // Final state equals the model.
    let got: HashMap<u64, u32> = t.iter().map(|(k, v)| (*k, *v)).collect();
    prop_assert_eq!(got.len(), t.len());
    prop_assert_eq!(&got, &model);
    let _ = completed;
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    // Pins: every operation agrees with the HashMap model, structural
    // invariants hold after each step, and every traversal completed in
    // between mutations/splits visits each continuously present key
    // exactly once and no key twice.
    #[test]
    fn matches_hashmap_model(
        ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 300 }),
        seed in any::<u64>(),
    ) {
        run(ops, seed)?;
    }

    // Pins: byte-string keys looked up through `&[u8]` agree with the
    // model across growth and removal.
    #[test]
    fn byte_keys_match_model(
        keys in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 1..if cfg!(miri) { 60 } else { 3000 }),
        seed in any::<u64>(),
    ) {
        let mut t: DashTable<Box<[u8]>, usize> = DashTable::with_seed(seed);
        let mut model: HashMap<Vec<u8>, usize> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            prop_assert_eq!(t.insert(k.clone().into_boxed_slice(), i), model.insert(k.clone(), i));
        }
        for (i, k) in keys.iter().enumerate() {
            if i % 3 == 0 {
                prop_assert_eq!(t.remove(&k[..]).map(|(_, v)| v), model.remove(k));
            }
        }
        for k in &keys {
            prop_assert_eq!(t.get(&k[..]), model.get(k));
        }
        prop_assert_eq!(t.len(), model.len());
        t.check_invariants();
    }

    // Pins: a traversal interleaved with heavy growth (a random number of
    // fresh inserts and removals after every call) never misses a stable
    // key and never repeats a key.
    #[test]
    fn traversal_guarantee_under_growth(
        initial in 0u64..if cfg!(miri) { 300 } else { 6000 },
        per_call in proptest::collection::vec((0u8..6, 0u8..3), 1..64),
        seed in any::<u64>(),
    ) {
        let mut t: DashTable<u64, ()> = DashTable::with_seed(seed);
        for k in 0..initial {
            t.insert(k, ());
        }
        let mut seen: HashMap<u64, u32> = HashMap::new();
        let mut stable: HashSet<u64> = (0..initial).collect();
        let mut fresh = 1u64 << 40;
        let mut cursor = 0;
        let mut i = 0;
        let mut victim = 0u64;
        loop {
            cursor = t.traverse(cursor, |k, _| *seen.entry(*k).or_insert(0) += 1);
            let (ins, rem) = per_call[i % per_call.len()];
            i += 1;
            for _ in 0..ins {
                t.insert(fresh, ());
                fresh += 1;
            }
            for _ in 0..rem {
                victim = (victim + 7919) % initial.max(1);
                t.remove(&victim);
                stable.remove(&victim);
            }
            if cursor == 0 {
                break;
            }
        }
        for k in &stable {
            prop_assert_eq!(seen.get(k), Some(&1));
        }
        prop_assert!(seen.values().all(|&c| c == 1));
    }
}
