//! The shard side of VLL (very lightweight locking): intent-lock counters per key and a
//! transaction queue, owned by one shard thread.
//!
//! ```text
//!   locks:  key -> (shared, exclusive) counters of queued transactions
//!   queue:  [T(7,0) {a:X}] [T(7,1) {b:S}] [T(9,0) {a:S, c:X}] ...   ordered by TxId
//! ```
//!
//! A command whose keys all live in this shard and are not locked by any queued
//! transaction runs at once without touching the queue (the fast path). Otherwise it
//! joins the queue. A queued transaction runs a hop as soon as no *earlier* queued
//! transaction conflicts with it (shares a key where either side is exclusive): it may
//! run out of order past non-conflicting ones, never past a conflicting one.
//!
//! Global order: multi-shard transactions take ids from one global counter, and a shard
//! refuses to schedule a transaction whose id is lower than the highest global id it has
//! already scheduled (the coordinator then cancels it everywhere and retries with a
//! fresh id). So every shard's queue is in global id order, conflicting transactions run
//! in the same order in every shard, and the result is serialisable. Transactions local
//! to one shard get the id (highest global id seen, local sequence) and never bump the
//! global counter, so they never cause a refusal.
//!
//! Cost: every lock set is *normalised* ([`normalize`]: sorted by key, each key once),
//! so locking, unlocking and `is_free` are one hash-map operation per key, and deciding
//! whether two queued transactions conflict is a sorted merge or a binary search
//! ([`conflict`]), never a comparison of every pair of keys. A 1M-key MSET costs
//! O(n log n) here, not O(n²).

use std::collections::{HashMap, VecDeque};

use crate::store::Key;

/// Transaction order: (global id, local sequence).
pub type TxId = (u64, u64);

/// One key a transaction locks, and whether exclusively. A transaction's lock set is a
/// `Vec<LockKey>` in normalised form (sorted by key, no key twice: [`normalize`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockKey {
    pub key: Key,
    pub exclusive: bool,
}

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    shared: u32,
    exclusive: u32,
}

/// A queued transaction and the work it is waiting to run.
pub struct Queued<J> {
    pub id: TxId,
    pub keys: Vec<LockKey>,
    /// The hop waiting to run here, if any.
    pub pending: Option<J>,
}

/// Intent locks plus the transaction queue of one shard. `J` is the job type.
pub struct Vll<J> {
    /// Counters of the keys of small lock sets (see [`BIG_LOCK_SET`]).
    locks: HashMap<Key, Counts>,
    /// Queued transactions whose lock set is big: not in `locks`.
    big_queued: usize,
    queue: VecDeque<Queued<J>>,
    max_global_seen: u64,
    local_seq: u64,
}

impl<J> Default for Vll<J> {
    fn default() -> Self {
        Vll { locks: HashMap::new(), big_queued: 0, queue: VecDeque::new(), max_global_seen: 0, local_seq: 0 }
    }
}

/// Lock sets with more keys than this are not entered in the per-key counters: taking
/// and releasing 500k counters (a hash-map insert and remove per key, at cache-miss
/// speed) was 30% of a 1M-key DEL. Such a set stays sorted in its queue entry, and
/// `is_free` binary-searches it (log2 of 1M = 20 comparisons per key checked). Small
/// sets (almost every command) keep the O(1) map check.
pub const BIG_LOCK_SET: usize = 64;

fn is_big(keys: &[LockKey]) -> bool {
    keys.len() > BIG_LOCK_SET
}

/// Puts a lock set in the form every function here expects: sorted by key, each key
/// once (exclusive if any of its occurrences was). O(n log n); a set of 0 or 1 key is
/// left as it is (no work on the single-key fast path).
pub fn normalize(keys: &mut Vec<LockKey>) {
    if keys.len() < 2 {
        return;
    }
    if keys.len() <= 32 {
        keys.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    } else {
        // Same order, faster: compare the keys' first 8 bytes as a big-endian number
        // (zero-padded) held next to each key, and the whole keys only on a tie. A
        // plain sort spends most of its time fetching both keys through their
        // pointers for every comparison.
        let mut tagged: Vec<(u64, LockKey)> = keys.drain(..).map(|k| (key_prefix(&k.key), k)).collect();
        tagged.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.key.cmp(&b.1.key)));
        keys.extend(tagged.into_iter().map(|(_, k)| k));
    }
    // `later` is dropped when it repeats `kept`'s key; its mode is merged first.
    keys.dedup_by(|later, kept| {
        let same = later.key == kept.key;
        if same {
            kept.exclusive |= later.exclusive;
        }
        same
    });
}

/// The first 8 bytes of `key` as a big-endian number, zero-padded: if
/// `key_prefix(a) < key_prefix(b)` then `a < b` byte-wise, and equal prefixes leave
/// the order to the whole keys.
fn key_prefix(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

/// True if `keys` is sorted by key with no key twice (what [`normalize`] makes).
fn is_normalized(keys: &[LockKey]) -> bool {
    keys.windows(2).all(|w| w[0].key < w[1].key)
}

/// True if two normalised lock sets share a key where either side is exclusive.
///
/// Both are sorted, so this never compares every pair: when one set is much smaller it
/// binary-searches each of its keys in the other (O(small · log big): a GET queued
/// behind a 500k-key MSET costs ~19 comparisons); otherwise it walks both in step
/// (O(a + b)).
fn conflict(a: &[LockKey], b: &[LockKey]) -> bool {
    debug_assert!(is_normalized(a) && is_normalized(b));
    let (small, big) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if small.is_empty() {
        return false;
    }
    let clash = |x: &LockKey, y: &LockKey| x.exclusive || y.exclusive;
    // Binary search pays off once log2(big) comparisons per small key beat a walk of
    // big / small keys per small key.
    if small.len().saturating_mul(usize::BITS as usize - big.len().leading_zeros() as usize) < big.len() {
        return small.iter().any(|x| match big.binary_search_by(|y| y.key.cmp(&x.key)) {
            Ok(i) => clash(x, &big[i]),
            Err(_) => false,
        });
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].key.cmp(&b[j].key) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                if clash(&a[i], &b[j]) {
                    return true;
                }
                i += 1;
                j += 1;
            }
        }
    }
    false
}

impl<J> Vll<J> {
    /// True if no queued transaction holds a lock that conflicts with `keys`: a command
    /// on these keys may take the fast path. One map lookup per key, plus a binary
    /// search per key in each queued big lock set (usually none).
    pub fn is_free(&self, keys: &[LockKey]) -> bool {
        if self.locks.is_empty() && self.big_queued == 0 {
            return true;
        }
        let free_in_map = self.locks.is_empty()
            || keys.iter().all(|k| match self.locks.get(&k.key) {
                None => true,
                Some(c) => c.exclusive == 0 && (!k.exclusive || c.shared == 0),
            });
        free_in_map && (self.big_queued == 0 || !self.queue.iter().any(|q| is_big(&q.keys) && conflict(&q.keys, keys)))
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Takes the intent locks of a lock set. A big set is not entered key by key: it
    /// stays in its queue entry and `is_free` binary-searches it.
    fn lock(&mut self, keys: &[LockKey]) {
        if is_big(keys) {
            self.big_queued += 1;
            return;
        }
        for k in keys {
            let c = self.locks.entry(k.key.clone()).or_default();
            if k.exclusive {
                c.exclusive += 1;
            } else {
                c.shared += 1;
            }
        }
    }

    fn unlock(&mut self, keys: &[LockKey]) {
        if is_big(keys) {
            self.big_queued -= 1;
            return;
        }
        for k in keys {
            let gone = match self.locks.get_mut(&k.key) {
                Some(c) => {
                    if k.exclusive {
                        c.exclusive -= 1;
                    } else {
                        c.shared -= 1;
                    }
                    c.exclusive == 0 && c.shared == 0
                }
                None => panic!("unlock of a key that holds no lock"),
            };
            if gone {
                self.locks.remove(&k.key);
            }
        }
    }

    /// Schedules a multi-shard transaction with global id `txid`. Returns false (and
    /// changes nothing) if a transaction with a higher id was already scheduled here.
    pub fn schedule_global(&mut self, txid: u64, keys: Vec<LockKey>) -> bool {
        if txid < self.max_global_seen {
            return false;
        }
        self.max_global_seen = txid;
        debug_assert!(is_normalized(&keys), "lock sets are normalised (vll::normalize)");
        self.lock(&keys);
        self.queue.push_back(Queued { id: (txid, 0), keys, pending: None });
        true
    }

    /// Queues a transaction local to this shard (a contended single-shard command) with
    /// its only job. Returns its id.
    pub fn schedule_local(&mut self, keys: Vec<LockKey>, job: J) -> TxId {
        self.local_seq += 1;
        let id = (self.max_global_seen, self.local_seq);
        debug_assert!(is_normalized(&keys), "lock sets are normalised (vll::normalize)");
        self.lock(&keys);
        self.queue.push_back(Queued { id, keys, pending: Some(job) });
        id
    }

    /// Attaches the next hop's job to a scheduled transaction. Returns the job back if
    /// the transaction is unknown (a broken invariant in the caller).
    pub fn set_pending(&mut self, id: TxId, job: J) -> Result<(), J> {
        match self.queue.iter_mut().find(|q| q.id == id) {
            Some(q) => {
                debug_assert!(q.pending.is_none());
                q.pending = Some(job);
                Ok(())
            }
            None => Err(job),
        }
    }

    /// Removes a transaction and releases its locks (conclusion or cancellation).
    pub fn remove(&mut self, id: TxId) -> Option<Queued<J>> {
        let pos = self.queue.iter().position(|q| q.id == id)?;
        let q = self.queue.remove(pos).expect("position is in range");
        self.unlock(&q.keys);
        Some(q)
    }

    /// Takes the first pending job that may run now (no earlier queued transaction
    /// conflicts with it), with its transaction id.
    pub fn next_runnable(&mut self) -> Option<(TxId, J)> {
        for i in 0..self.queue.len() {
            if self.queue[i].pending.is_none() {
                continue;
            }
            let blocked = (0..i).any(|j| conflict(&self.queue[j].keys, &self.queue[i].keys));
            if !blocked {
                let q = &mut self.queue[i];
                return Some((q.id, q.pending.take().expect("checked is_some")));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(k: &str) -> LockKey {
        LockKey { key: k.as_bytes().into(), exclusive: true }
    }
    fn s(k: &str) -> LockKey {
        LockKey { key: k.as_bytes().into(), exclusive: false }
    }

    // A lower global id arriving after a higher one is refused: queues stay in id order.
    #[test]
    fn refuses_out_of_order_global_ids() {
        let mut v: Vll<u32> = Vll::default();
        assert!(v.schedule_global(5, vec![x("a")]));
        assert!(!v.schedule_global(3, vec![x("b")]));
        assert!(v.schedule_global(6, vec![x("b")]));
        assert_eq!(v.queue_len(), 2);
    }

    // Local transactions never cause a later global id to be refused.
    #[test]
    fn local_ids_do_not_refuse_globals() {
        let mut v: Vll<u32> = Vll::default();
        assert!(v.schedule_global(5, vec![x("a")]));
        v.schedule_local(vec![x("a")], 1);
        assert!(v.schedule_global(6, vec![x("c")]));
    }

    // Exclusive locks block the fast path for readers and writers; shared only for writers.
    #[test]
    fn fast_path_respects_locks() {
        let mut v: Vll<u32> = Vll::default();
        v.schedule_global(1, vec![s("r"), x("w")]);
        assert!(v.is_free(&[s("r")]));
        assert!(!v.is_free(&[x("r")]));
        assert!(!v.is_free(&[s("w")]));
        assert!(v.is_free(&[x("other")]));
        v.remove((1, 0));
        assert!(v.is_free(&[x("w"), x("r")]));
    }

    // A job runs out of order past a non-conflicting earlier transaction, but waits
    // behind a conflicting one until that concludes.
    #[test]
    fn out_of_order_only_when_uncontended() {
        let mut v: Vll<u32> = Vll::default();
        v.schedule_global(1, vec![x("a")]);
        v.schedule_global(2, vec![x("b")]);
        v.schedule_global(3, vec![s("a")]);
        v.set_pending((2, 0), 20).unwrap();
        v.set_pending((3, 0), 30).unwrap();
        assert_eq!(v.next_runnable(), Some(((2, 0), 20)));
        assert_eq!(v.next_runnable(), None, "3 conflicts with 1 on a");
        v.remove((1, 0));
        assert_eq!(v.next_runnable(), Some(((3, 0), 30)));
    }
    // normalize sorts, keeps each key once, and a key written by any occurrence stays
    // exclusive (DEL a a, or a batch that reads then writes a).
    #[test]
    fn normalize_sorts_and_merges_modes() {
        let mut v = vec![s("b"), x("a"), s("a"), s("b"), s("c"), x("c")];
        normalize(&mut v);
        assert_eq!(v, vec![x("a"), s("b"), x("c")]);
        let mut one = vec![s("z")];
        normalize(&mut one);
        assert_eq!(one, vec![s("z")]);
    }

    // conflict (merge walk or binary search, by the sizes) agrees with comparing every
    // pair, on random sets of very different and similar sizes.
    #[test]
    fn conflict_matches_pairwise() {
        use rand::{Rng, SeedableRng};
        let naive = |a: &[LockKey], b: &[LockKey]| {
            a.iter().any(|p| b.iter().any(|q| p.key == q.key && (p.exclusive || q.exclusive)))
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        for round in 0..2000 {
            let mut set = |n: usize| {
                let mut v: Vec<LockKey> = (0..n)
                    .map(|_| LockKey {
                        key: format!("k{}", rng.gen_range(0..300)).into_bytes().into(),
                        exclusive: rng.gen_bool(0.3),
                    })
                    .collect();
                normalize(&mut v);
                v
            };
            let (na, nb) = if round % 2 == 0 { (1 + round % 5, 50 + round % 200) } else { (round % 40, round % 37) };
            let a = set(na);
            let b = set(nb);
            assert_eq!(conflict(&a, &b), naive(&a, &b), "{a:?} vs {b:?}");
            assert_eq!(conflict(&b, &a), naive(&b, &a));
        }
    }
    // A big lock set (not in the per-key counters) still blocks the fast path for its
    // keys, exclusive or shared as taken, and frees them when removed.
    #[test]
    fn big_lock_sets_block_the_fast_path() {
        let mut v: Vll<u32> = Vll::default();
        let mut big: Vec<LockKey> =
            (0..1000).map(|i| LockKey { key: format!("k{i}").into_bytes().into(), exclusive: i % 2 == 0 }).collect();
        normalize(&mut big);
        assert!(is_big(&big));
        v.schedule_global(1, big);
        assert!(!v.is_free(&[x("k10")]));
        assert!(!v.is_free(&[s("k10")]));
        assert!(v.is_free(&[s("k11")]), "shared on shared is free");
        assert!(!v.is_free(&[x("k11")]));
        assert!(v.is_free(&[x("other")]));
        v.remove((1, 0));
        assert!(v.is_free(&[x("k10")]));
        assert_eq!(v.big_queued, 0);
    }
    // The prefix-tagged sort of big sets gives exactly the byte-wise order, also for
    // keys shorter than 8 bytes, with NUL bytes, or sharing long prefixes.
    #[test]
    fn normalize_big_sets_sorts_bytewise() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for _ in 0..200 {
            let n = rng.gen_range(33..300);
            let mut v: Vec<LockKey> = (0..n)
                .map(|_| {
                    let len = rng.gen_range(0..12);
                    let key: Vec<u8> =
                        (0..len).map(|_| *[0u8, 1, b'a', b'b', 255].get(rng.gen_range(0..5)).unwrap()).collect();
                    LockKey { key: key.into(), exclusive: rng.gen_bool(0.5) }
                })
                .collect();
            let mut expect: Vec<Vec<u8>> = v.iter().map(|k| k.key.to_vec()).collect();
            expect.sort();
            expect.dedup();
            normalize(&mut v);
            assert!(is_normalized(&v));
            assert_eq!(v.iter().map(|k| k.key.to_vec()).collect::<Vec<_>>(), expect);
        }
    }
}
