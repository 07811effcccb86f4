//! The shard side of VLL (very lightweight locking): intent locks per key and a
//! transaction queue, owned by one shard thread.
//!
//! ```text
//!   queue:  [T(7,0) {a:X}] [T(7,1) {b:S}] [T(9,0) {a:S, c:X}] ...   in scheduling order
//!   keys:   a -> [T(7,0) X, T(9,0) S]   b -> [T(7,1) S]   c -> [T(9,0) X]
//!   ready:  {T(7,0), T(7,1)}            (pending hop, nothing conflicting ahead)
//! ```
//!
//! A command whose keys all live in this shard and are not locked by any queued
//! transaction runs at once without touching the queue (the fast path). Otherwise it
//! joins the queue. A queued transaction runs a hop as soon as no *earlier* queued
//! transaction conflicts with it (shares a key where either side is exclusive): it may
//! run out of order past non-conflicting ones, never past a conflicting one. Among the
//! hops that may run, the earliest-scheduled runs first.
//!
//! Global order: multi-shard transactions take ids from one global counter, and a shard
//! refuses to schedule a transaction whose id is lower than the highest global id it has
//! already scheduled (the coordinator then cancels it everywhere and retries with a
//! fresh id). So every shard's queue is in global id order, conflicting transactions run
//! in the same order in every shard, and the result is serialisable. Transactions local
//! to one shard get the id (highest global id seen, local sequence) and never bump the
//! global counter, so they never cause a refusal.
//!
//! Finding the next runnable hop does not scan the queue. Every key of a small lock set
//! has a *holder list* (the queued transactions that lock it, in queue order), and every
//! queued transaction counts its *blockers*: the keys on which an earlier holder
//! conflicts with it, plus the earlier conflicting transactions where one side has a big
//! lock set ([`BIG_LOCK_SET`]: those stay out of the holder lists). A transaction with no
//! blocker and a pending hop sits in the `ready` set, and `next_runnable` takes the
//! first one. The counts change only when a transaction leaves the queue, and only for
//! the holders right behind it on its keys.
//!
//! Cost: every lock set is *normalised* ([`normalize`]: sorted by key, each key once),
//! and deciding whether two lock sets conflict is a sorted merge or a binary search
//! ([`conflict`]), never a comparison of every pair of keys. A 1M-key MSET costs
//! O(n log n) here, not O(n²). Per operation, for a transaction with k keys in a queue
//! of q transactions of which b have big lock sets:
//!
//! | operation | cost |
//! |---|---|
//! | `is_free` | k map lookups + b conflict checks |
//! | schedule (small set) | k map updates + b conflict checks |
//! | schedule (big set) | q conflict checks |
//! | `set_pending`, `next_runnable` | O(log q) |
//! | `remove` | per key, O(log h) to find it among the key's h holders (plus moving the shorter side of that list, nothing when it leaves in order), + one step per transaction it unblocks |
//!
//! So a queue of 10k transactions on one hot key drains in O(10k log 10k) steps, where
//! scanning the queue for each hop took O(10k²) conflict checks.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

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

/// Position of a transaction in this shard's queue: taken from a counter when it is
/// scheduled, so queue order is `Seq` order (independent of the [`TxId`]s).
type Seq = u64;

/// The queued transactions that hold one key (small lock sets only).
#[derive(Default, Debug)]
struct Holders {
    /// `(position, exclusive)` of each holder, in queue order (sorted by `Seq`: new
    /// holders are always the latest scheduled, so they are pushed at the back).
    list: VecDeque<(Seq, bool)>,
    /// The earliest exclusive holder. A shared holder is blocked on this key exactly
    /// when it is behind this one; an exclusive holder, when it is not the first.
    first_exclusive: Option<Seq>,
}

/// A queued transaction and the work it is waiting to run.
pub struct Queued<J> {
    pub id: TxId,
    pub keys: Vec<LockKey>,
    /// The hop waiting to run here, if any.
    pub pending: Option<J>,
}

/// A queued transaction with its place in the blocking graph.
struct Entry<J> {
    q: Queued<J>,
    /// How many reasons keep it from running: keys on which an earlier holder
    /// conflicts with it, plus earlier conflicting transactions where either side has
    /// a big lock set. Runnable at 0.
    blockers: u32,
    /// Later transactions whose `blockers` count this one through a big-set conflict:
    /// each loses one blocker when this one leaves the queue.
    blocks: Vec<Seq>,
}

/// Intent locks plus the transaction queue of one shard. `J` is the job type.
pub struct Vll<J> {
    /// Holder lists of the keys of small lock sets (see [`BIG_LOCK_SET`]); a key with
    /// no holder has no entry.
    holders: HashMap<Key, Holders>,
    /// The queue, by position.
    entries: BTreeMap<Seq, Entry<J>>,
    /// Where each queued transaction is.
    ids: HashMap<TxId, Seq>,
    /// Queued transactions whose lock set is big (not in `holders`).
    bigs: BTreeSet<Seq>,
    /// Queued transactions with a pending hop and no blocker.
    ready: BTreeSet<Seq>,
    next_seq: Seq,
    max_global_seen: u64,
    local_seq: u64,
    /// Elementary steps taken (keys visited, holders walked, conflict checks, ready-set
    /// operations): what the tests bound to prove no operation scans the queue.
    #[cfg(test)]
    work: u64,
}

impl<J> Default for Vll<J> {
    fn default() -> Self {
        Vll {
            holders: HashMap::new(),
            entries: BTreeMap::new(),
            ids: HashMap::new(),
            bigs: BTreeSet::new(),
            ready: BTreeSet::new(),
            next_seq: 0,
            max_global_seen: 0,
            local_seq: 0,
            #[cfg(test)]
            work: 0,
        }
    }
}

/// Lock sets with more keys than this are not entered in the holder lists: taking and
/// releasing 500k per-key entries (a hash-map insert and remove per key, at cache-miss
/// speed) was 30% of a 1M-key DEL. Such a set stays sorted in its queue entry, and
/// conflicts with it are found by binary search (log2 of 1M = 20 comparisons per key
/// checked). Small sets (almost every command) keep the O(1) map check.
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
    /// Counts `n` elementary steps (tests only; nothing in release builds).
    #[inline]
    fn tick(&mut self, n: usize) {
        #[cfg(test)]
        {
            self.work += n as u64;
        }
        #[cfg(not(test))]
        let _ = n;
    }

    /// True if no queued transaction holds a lock that conflicts with `keys`: a command
    /// on these keys may take the fast path. One map lookup per key, plus a conflict
    /// check against each queued big lock set (usually none).
    pub fn is_free(&self, keys: &[LockKey]) -> bool {
        if self.entries.is_empty() {
            return true;
        }
        let free_in_map = self.holders.is_empty()
            || keys.iter().all(|k| match self.holders.get(&k.key) {
                None => true,
                Some(h) => !k.exclusive && h.first_exclusive.is_none(),
            });
        free_in_map && self.bigs.iter().all(|b| !conflict(&self.entries[b].q.keys, keys))
    }

    /// Number of queued transactions.
    pub fn queue_len(&self) -> usize {
        self.entries.len()
    }

    /// Schedules a multi-shard transaction with global id `txid`. Returns false (and
    /// changes nothing) if a transaction with a higher id was already scheduled here.
    pub fn schedule_global(&mut self, txid: u64, keys: Vec<LockKey>) -> bool {
        if txid < self.max_global_seen {
            return false;
        }
        self.max_global_seen = txid;
        self.push((txid, 0), keys, None);
        true
    }

    /// Queues a transaction local to this shard (a contended single-shard command) with
    /// its only job. Returns its id.
    pub fn schedule_local(&mut self, keys: Vec<LockKey>, job: J) -> TxId {
        self.local_seq += 1;
        let id = (self.max_global_seen, self.local_seq);
        self.push(id, keys, Some(job));
        id
    }

    /// Appends a transaction to the queue: takes its locks and counts its blockers
    /// (see the module docs for the cost).
    fn push(&mut self, id: TxId, keys: Vec<LockKey>, pending: Option<J>) {
        debug_assert!(is_normalized(&keys), "lock sets are normalised (vll::normalize)");
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut blockers = 0u32;
        if is_big(&keys) {
            // Conflicts with a big set are found pairwise, against everything queued.
            self.tick(self.entries.len());
            for e in self.entries.values_mut() {
                if conflict(&e.q.keys, &keys) {
                    blockers += 1;
                    e.blocks.push(seq);
                }
            }
            self.bigs.insert(seq);
        } else {
            self.tick(keys.len() + self.bigs.len());
            for k in &keys {
                let h = match self.holders.get_mut(&k.key) {
                    Some(h) => h,
                    None => self.holders.entry(k.key.clone()).or_default(),
                };
                debug_assert!(h.list.back().is_none_or(|&(last, _)| last < seq), "holders are in queue order");
                let blocked = if k.exclusive { !h.list.is_empty() } else { h.first_exclusive.is_some() };
                if k.exclusive && h.first_exclusive.is_none() {
                    h.first_exclusive = Some(seq);
                }
                h.list.push_back((seq, k.exclusive));
                blockers += u32::from(blocked);
            }
            for b in &self.bigs {
                let e = self.entries.get_mut(b).expect("bigs lists queued transactions");
                if conflict(&e.q.keys, &keys) {
                    blockers += 1;
                    e.blocks.push(seq);
                }
            }
        }
        if blockers == 0 && pending.is_some() {
            self.ready.insert(seq);
        }
        let previous = self.ids.insert(id, seq);
        debug_assert!(previous.is_none(), "transaction {id:?} scheduled twice in one shard");
        self.entries.insert(seq, Entry { q: Queued { id, keys, pending }, blockers, blocks: Vec::new() });
        debug_assert_eq!(self.ids.len(), self.entries.len());
    }

    /// Attaches the next hop's job to a scheduled transaction. Returns the job back if
    /// the transaction is unknown (a broken invariant in the caller).
    pub fn set_pending(&mut self, id: TxId, job: J) -> Result<(), J> {
        let Some(&seq) = self.ids.get(&id) else { return Err(job) };
        let e = self.entries.get_mut(&seq).expect("ids point at queued transactions");
        debug_assert!(e.q.pending.is_none(), "a hop is sent only after the previous one ran");
        e.q.pending = Some(job);
        if e.blockers == 0 {
            self.tick(1);
            self.ready.insert(seq);
        }
        Ok(())
    }

    /// Removes a transaction and releases its locks (conclusion or cancellation): the
    /// transactions it was blocking lose one blocker each.
    pub fn remove(&mut self, id: TxId) -> Option<Queued<J>> {
        let seq = self.ids.remove(&id)?;
        let e = self.entries.remove(&seq).expect("ids point at queued transactions");
        self.ready.remove(&seq);
        let mut unblocked = e.blocks;
        if is_big(&e.q.keys) {
            self.bigs.remove(&seq);
        } else {
            for k in &e.q.keys {
                self.release(k, seq, &mut unblocked);
            }
        }
        self.tick(unblocked.len());
        for s in unblocked {
            // A transaction it blocked may have left the queue before it (cancelled).
            if let Some(w) = self.entries.get_mut(&s) {
                debug_assert!(w.blockers > 0, "blocker count of {:?} underflows", w.q.id);
                w.blockers -= 1;
                if w.blockers == 0 && w.q.pending.is_some() {
                    self.ready.insert(s);
                }
            }
        }
        debug_assert_eq!(self.ids.len(), self.entries.len());
        debug_assert!(self.ready.len() <= self.entries.len() && self.bigs.len() <= self.entries.len());
        Some(e.q)
    }

    /// Drops the transaction at `seq` from `k`'s holders and pushes onto `unblocked`
    /// the holders that it was the last to block on this key:
    /// - removing the first exclusive holder frees the shared holders behind it up to
    ///   the next exclusive one (which becomes the first);
    /// - a holder left at the front of the list is blocked by nothing: if it is
    ///   exclusive, it was blocked until now.
    ///
    /// Any other holder keeps a conflicting holder ahead of it.
    fn release(&mut self, k: &LockKey, seq: Seq, unblocked: &mut Vec<Seq>) {
        let Some(h) = self.holders.get_mut(&k.key) else {
            panic!("release of a key that holds no lock");
        };
        let Ok(pos) = h.list.binary_search_by_key(&seq, |&(s, _)| s) else {
            panic!("release of a key this transaction does not hold");
        };
        debug_assert_eq!(h.list[pos].1, k.exclusive);
        h.list.remove(pos);
        let mut steps = 1;
        if h.first_exclusive == Some(seq) {
            h.first_exclusive = None;
            for &(s, exclusive) in h.list.range(pos..) {
                steps += 1;
                if exclusive {
                    h.first_exclusive = Some(s);
                    break;
                }
                unblocked.push(s);
            }
        }
        if pos == 0
            && let Some(&(front, true)) = h.list.front()
        {
            unblocked.push(front);
        }
        debug_assert!(
            h.first_exclusive.is_none_or(|f| h.list.binary_search(&(f, true)).is_ok()),
            "the first exclusive holder is an exclusive holder"
        );
        if h.list.is_empty() {
            self.holders.remove(&k.key);
        }
        self.tick(steps);
    }

    /// Takes the first pending job that may run now (no earlier queued transaction
    /// conflicts with it), with its transaction id.
    pub fn next_runnable(&mut self) -> Option<(TxId, J)> {
        let seq = self.ready.pop_first()?;
        self.tick(1);
        let e = self.entries.get_mut(&seq).expect("ready lists queued transactions");
        debug_assert_eq!(e.blockers, 0, "only unblocked transactions are ready");
        Some((e.q.id, e.q.pending.take().expect("ready transactions have a pending hop")))
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
        assert!(v.bigs.is_empty());
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

    // The holders of one key run in queue order: writers one at a time, readers
    // together; a reader scheduled after a waiting writer does not overtake it (so a
    // stream of readers cannot starve a writer).
    #[test]
    fn fair_order_on_one_key() {
        let mut v: Vll<u32> = Vll::default();
        v.schedule_global(1, vec![s("k")]);
        v.schedule_local(vec![x("k")], 2);
        v.schedule_local(vec![s("k")], 3);
        v.schedule_local(vec![s("k")], 4);
        v.schedule_local(vec![x("k")], 5);
        v.set_pending((1, 0), 1).unwrap();
        assert_eq!(v.next_runnable(), Some(((1, 0), 1)));
        assert_eq!(v.next_runnable(), None, "the writer waits for the reader; later readers wait for it");
        v.remove((1, 0));
        assert_eq!(v.next_runnable(), Some(((1, 1), 2)));
        assert_eq!(v.next_runnable(), None);
        v.remove((1, 1));
        assert_eq!(v.next_runnable(), Some(((1, 2), 3)), "both readers are free at once, first one first");
        assert_eq!(v.next_runnable(), Some(((1, 3), 4)));
        assert_eq!(v.next_runnable(), None, "the second writer waits for both readers");
        v.remove((1, 3));
        assert_eq!(v.next_runnable(), None);
        v.remove((1, 2));
        assert_eq!(v.next_runnable(), Some(((1, 4), 5)));
        v.remove((1, 4));
        assert_eq!(v.queue_len(), 0);
        assert!(v.holders.is_empty() && v.ready.is_empty() && v.ids.is_empty());
    }

    // Shared locks are compatible with shared ones only; removing a waiting writer
    // (a cancelled transaction) frees the readers behind it at once.
    #[test]
    fn shared_and_exclusive() {
        let mut v: Vll<u32> = Vll::default();
        v.schedule_global(1, vec![s("a"), s("b")]);
        v.schedule_global(2, vec![x("a")]);
        v.schedule_global(3, vec![s("a")]);
        v.schedule_global(4, vec![s("b")]);
        v.schedule_global(5, vec![x("b")]);
        for t in 1..=5 {
            v.set_pending((t, 0), t as u32).unwrap();
        }
        assert_eq!(v.next_runnable(), Some(((1, 0), 1)));
        assert_eq!(v.next_runnable(), Some(((4, 0), 4)), "shared b behind shared b runs");
        assert_eq!(v.next_runnable(), None, "2 waits for 1 on a, 3 for 2, 5 for 1 and 4");
        assert!(v.is_free(&[s("c")]) && !v.is_free(&[s("a")]) && !v.is_free(&[x("b")]));
        v.remove((2, 0)); // cancelled while waiting
        assert_eq!(v.next_runnable(), Some(((3, 0), 3)), "the reader behind the cancelled writer");
        v.remove((1, 0));
        v.remove((3, 0));
        assert_eq!(v.next_runnable(), None, "5 still waits for 4");
        v.remove((4, 0));
        assert_eq!(v.next_runnable(), Some(((5, 0), 5)));
    }

    // A queue of 10k transactions: every operation costs a bounded number of steps,
    // whatever the queue length (scanning the queue for each hop took ~5·10⁷ conflict
    // checks here). The bound is on the work counter, not on time.
    #[test]
    fn ten_thousand_queued_cost_bounded_work() {
        const N: u64 = 10_000;
        // One hot key: a writer holds it; N local commands (alternately writers and
        // runs of readers) queue behind it and drain one by one.
        let mut v: Vll<u64> = Vll::default();
        v.schedule_global(1, vec![x("hot")]);
        for i in 0..N {
            let key = if i % 3 == 0 { x("hot") } else { s("hot") };
            v.schedule_local(vec![key, x(&format!("own{i}"))], i);
        }
        assert_eq!(v.next_runnable(), None);
        v.work = 0;
        v.remove((1, 0));
        let mut ran = Vec::new();
        while let Some((id, job)) = v.next_runnable() {
            ran.push(job);
            v.remove(id);
        }
        assert_eq!(ran, (0..N).collect::<Vec<_>>(), "FIFO on the hot key");
        assert!(v.work <= 10 * N, "{} steps to drain {N} transactions", v.work);

        // N global transactions on distinct keys, each waiting for its hop: setting a
        // hop and taking it costs O(1) steps each, not a walk of the queue.
        let mut v: Vll<u64> = Vll::default();
        for t in 1..=N {
            v.schedule_global(t, vec![x(&format!("k{t}"))]);
        }
        v.work = 0;
        for t in (1..=N).rev() {
            v.set_pending((t, 0), t).unwrap();
            assert_eq!(v.next_runnable(), Some(((t, 0), t)));
        }
        assert!(v.work <= 4 * N, "{} steps", v.work);

        // A big lock set at the front blocks N small ones pairwise; releasing it wakes
        // exactly those.
        let mut v: Vll<u64> = Vll::default();
        let mut big: Vec<LockKey> = (0..200).map(|i| x(&format!("b{i}"))).collect();
        normalize(&mut big);
        v.schedule_global(1, big);
        for i in 0..N {
            v.schedule_local(vec![s(&format!("b{}", i % 200))], i);
        }
        assert_eq!(v.next_runnable(), None);
        v.work = 0;
        v.remove((1, 0));
        let mut n = 0;
        while let Some((id, _)) = v.next_runnable() {
            v.remove(id);
            n += 1;
        }
        assert_eq!(n, N);
        assert!(v.work <= 10 * N, "{} steps", v.work);
    }

    /// The queue as it was first written: a list in scheduling order, and a hop may run
    /// when no earlier transaction conflicts with it (checked pairwise, O(queue²)). The
    /// randomized test below holds [`Vll`] to it.
    #[derive(Default)]
    struct Model {
        queue: Vec<(TxId, Vec<LockKey>, Option<u32>)>,
        max_global_seen: u64,
        local_seq: u64,
    }

    impl Model {
        fn schedule_global(&mut self, txid: u64, keys: Vec<LockKey>) -> bool {
            if txid < self.max_global_seen {
                return false;
            }
            self.max_global_seen = txid;
            self.queue.push(((txid, 0), keys, None));
            true
        }
        fn schedule_local(&mut self, keys: Vec<LockKey>, job: u32) -> TxId {
            self.local_seq += 1;
            let id = (self.max_global_seen, self.local_seq);
            self.queue.push((id, keys, Some(job)));
            id
        }
        fn next_runnable(&mut self) -> Option<(TxId, u32)> {
            let i = (0..self.queue.len()).find(|&i| {
                self.queue[i].2.is_some() && !(0..i).any(|j| conflict(&self.queue[j].1, &self.queue[i].1))
            })?;
            Some((self.queue[i].0, self.queue[i].2.take().unwrap()))
        }
        fn is_free(&self, keys: &[LockKey]) -> bool {
            !self.queue.iter().any(|q| conflict(&q.1, keys))
        }
    }

    // Random schedules, hops, cancellations and conclusions over a few keys, with small
    // and big lock sets: Vll runs the same hops in the same order as the model, and
    // agrees on the fast path.
    #[test]
    fn matches_the_pairwise_model() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(18);
        for round in 0..300 {
            let mut v: Vll<u32> = Vll::default();
            let mut m = Model::default();
            let mut next_global = 0u64;
            let nkeys = 3 + round % 12;
            let lock_set = |rng: &mut rand::rngs::StdRng| {
                let n = if rng.gen_bool(0.1) { BIG_LOCK_SET + 1 + rng.gen_range(0..20) } else { rng.gen_range(0..4) };
                let mut keys: Vec<LockKey> = (0..n)
                    .map(|i| {
                        // Big sets take distinct filler keys next to a few shared ones.
                        let name = if i < 3 {
                            format!("k{}", rng.gen_range(0..nkeys))
                        } else {
                            format!("f{}", rng.gen_range(0..500))
                        };
                        LockKey { key: name.into_bytes().into(), exclusive: rng.gen_bool(0.4) }
                    })
                    .collect();
                normalize(&mut keys);
                keys
            };
            let mut job = 0u32;
            for _ in 0..200 {
                match rng.gen_range(0..10) {
                    0 | 1 => {
                        // Mostly in order; sometimes a stale id that must be refused (ids
                        // are unique, as the global counter makes them).
                        let txid = if rng.gen_bool(0.2) && m.max_global_seen > 0 {
                            m.max_global_seen - 1 - rng.gen_range(0..m.max_global_seen)
                        } else {
                            next_global += 1;
                            next_global
                        };
                        let keys = lock_set(&mut rng);
                        assert_eq!(v.schedule_global(txid, keys.clone()), m.schedule_global(txid, keys));
                    }
                    2 | 3 => {
                        job += 1;
                        let keys = lock_set(&mut rng);
                        assert_eq!(v.schedule_local(keys.clone(), job), m.schedule_local(keys, job));
                    }
                    4 | 5 => {
                        // A hop for a global transaction that has none pending.
                        let waiting: Vec<TxId> =
                            m.queue.iter().filter(|q| q.0.1 == 0 && q.2.is_none()).map(|q| q.0).collect();
                        if let Some(&id) = waiting.get(rng.gen_range(0..waiting.len().max(1))) {
                            job += 1;
                            v.set_pending(id, job).unwrap();
                            m.queue.iter_mut().find(|q| q.0 == id).unwrap().2 = Some(job);
                        }
                    }
                    6 => {
                        // Cancel or conclude any transaction, running or not.
                        if !m.queue.is_empty() {
                            let i = rng.gen_range(0..m.queue.len());
                            let (id, keys, _) = m.queue.remove(i);
                            let q = v.remove(id).expect("queued");
                            assert_eq!((q.id, q.keys), (id, keys));
                        }
                    }
                    7 => {
                        let keys = lock_set(&mut rng);
                        assert_eq!(v.is_free(&keys), m.is_free(&keys), "{keys:?}");
                    }
                    _ => {
                        // Run what may run; a local transaction concludes with its job.
                        let got = v.next_runnable();
                        assert_eq!(got, m.next_runnable());
                        if let Some((id, _)) = got
                            && id.1 != 0
                        {
                            v.remove(id);
                            m.queue.retain(|q| q.0 != id);
                        }
                    }
                }
                assert_eq!(v.queue_len(), m.queue.len());
            }
            while let Some(q) = m.queue.pop() {
                assert!(v.remove(q.0).is_some());
            }
            assert!(v.holders.is_empty() && v.bigs.is_empty() && v.ready.is_empty() && v.ids.is_empty());
        }
    }
}
