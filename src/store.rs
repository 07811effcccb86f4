//! Shard-local keyspace: one [`Db`] per logical database, owned by one shard thread.
//!
//! ```text
//!   Shard ── dbs[0..dbnum] ── Db { map: key -> Entry{value, expire_at_ms}, deadlines }
//! ```
//!
//! Only the owning thread touches a `Db`. Expiry is exact to the millisecond: every read
//! goes through [`Db::lookup`], which deletes a key whose deadline has passed (passive
//! expiry); [`Db::expire_some`] removes keys nobody touches, a bounded number per call
//! (active expiry, driven by the thread's timer).
//!
//! The keyspace is a [`DashTable`] (see `crate::dash`): lookups hash the key once and
//! probe once (the expiry check reads the found entry), inserts of new keys do not probe
//! again, and SCAN walks the table's stateless traverse cursor.
//!
//! Non-goals here: compact encodings; the `deadlines` index is still a `BTreeSet`.

use std::collections::BTreeSet;

use crate::dash::{DashHash, DashTable, Slot};

pub type Key = Box<[u8]>;

/// Bytes a key keeps inline in its table slot.
pub const INLINE_KEY_BYTES: usize = 22;

/// A key as the table stores it: up to 22 bytes inline in the 24-byte slot (no heap
/// allocation, and comparing it touches no other cache line), longer keys on the heap.
#[derive(Clone)]
pub enum CompactKey {
    Inline { len: u8, data: [u8; INLINE_KEY_BYTES] },
    Heap(Box<[u8]>),
}

const _: () = assert!(std::mem::size_of::<CompactKey>() == 24);

impl CompactKey {
    pub fn new(b: &[u8]) -> CompactKey {
        if b.len() <= INLINE_KEY_BYTES {
            let mut data = [0u8; INLINE_KEY_BYTES];
            data[..b.len()].copy_from_slice(b);
            CompactKey::Inline { len: b.len() as u8, data }
        } else {
            CompactKey::Heap(b.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            CompactKey::Inline { len, data } => &data[..*len as usize],
            CompactKey::Heap(b) => b,
        }
    }
}

impl std::ops::Deref for CompactKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::borrow::Borrow<[u8]> for CompactKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for CompactKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for CompactKey {}

impl std::hash::Hash for CompactKey {
    // Must hash exactly like `[u8]` so lookups by `&[u8]` find it (Borrow contract).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl DashHash for CompactKey {
    // Must hash exactly like `[u8]` so lookups by `&[u8]` find it.
    #[inline]
    fn dash_hash(&self, seed: u64) -> u64 {
        crate::dash::hash_bytes(self.as_bytes(), seed)
    }
}

impl std::fmt::Debug for CompactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// A stored value. Later data types add variants here.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string value. `raw` records Redis's encoding choice for OBJECT ENCODING:
    /// strings modified in place (APPEND, SETRANGE) are `raw`.
    Str { bytes: Vec<u8>, raw: bool },
    /// A string that holds a canonical 64-bit integer (encoding `int`).
    Int(i64),
}

impl Value {
    /// Builds a string value the way Redis's `tryObjectEncoding` would store it.
    pub fn from_bytes(bytes: &[u8]) -> Value {
        if bytes.len() <= 20
            && let Some(n) = crate::util::parse_i64(bytes) {
                return Value::Int(n);
            }
        Value::Str { bytes: bytes.to_vec(), raw: false }
    }

    /// The Redis TYPE name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str { .. } | Value::Int(_) => "string",
        }
    }

    /// The OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Str { bytes, raw } => {
                if !*raw && bytes.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
        }
    }

    /// The bytes of a string value (integers are formatted), or None for other types.
    pub fn string_bytes(&self) -> Option<std::borrow::Cow<'_, [u8]>> {
        match self {
            Value::Str { bytes, .. } => Some(std::borrow::Cow::Borrowed(bytes)),
            Value::Int(n) => {
                let mut v = Vec::with_capacity(20);
                crate::util::write_i64(&mut v, *n);
                Some(std::borrow::Cow::Owned(v))
            }
        }
    }

    /// The bytes of a string value for changing in place (APPEND, SETRANGE), as Redis's
    /// `dbUnshareStringValue` gives them: an integer becomes its decimal text, and the
    /// string is `raw` from then on. None for other types.
    pub fn str_mut_raw(&mut self) -> Option<&mut Vec<u8>> {
        if let Value::Int(n) = *self {
            let mut v = Vec::with_capacity(20);
            crate::util::write_i64(&mut v, n);
            *self = Value::Str { bytes: v, raw: true };
        }
        match self {
            Value::Str { bytes, raw } => {
                *raw = true;
                Some(bytes)
            }
            _ => None,
        }
    }

    /// Approximate bytes this value owns on the heap, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Str { bytes, .. } => bytes.capacity(),
            Value::Int(_) => 0,
        }
    }
}

/// One key's slot: the value and its absolute deadline in unix milliseconds (0 = none).
#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    pub expire_at_ms: i64,
}

// A keyspace item is one cache line: Dash slots are line-aligned (see `crate::dash`).
const _: () = assert!(std::mem::size_of::<(CompactKey, Entry)>() == 64);

/// Counters a shard keeps for INFO stats.
#[derive(Debug, Default, Clone)]
pub struct KeyStats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
}

/// One logical database in one shard.
#[derive(Default)]
pub struct Db {
    /// The keyspace: a Dash table (`crate::dash`) with a random per-table seed.
    map: DashTable<CompactKey, Entry>,
    /// (deadline, key) for every key with a deadline, for active expiry.
    deadlines: BTreeSet<(i64, Key)>,
    pub stats: KeyStats,
}

#[inline(always)]
fn is_due(e: &Entry, now_ms: i64) -> bool {
    e.expire_at_ms != 0 && e.expire_at_ms <= now_ms
}

impl Db {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of keys with a deadline.
    pub fn expires_len(&self) -> usize {
        self.deadlines.len()
    }

    /// The slot of `key` if it is live, with one hash and one probe; a key whose
    /// deadline has passed is deleted (passive expiry) and reads as absent.
    #[inline]
    fn find_live(&mut self, key: &[u8], now_ms: i64) -> Option<Slot> {
        let h = self.map.hash_key(key);
        let slot = self.map.find_hashed(h, key)?;
        if is_due(self.map.slot(slot).1, now_ms) {
            self.remove_slot(slot);
            self.stats.expired_keys += 1;
            return None;
        }
        Some(slot)
    }

    /// Prefetch hint for a batch of coming lookups (the keys of a pipeline): hashes
    /// each key and prefetches its buckets' metadata, then reads that metadata and
    /// prefetches the matching slots, so the batch's cache misses overlap instead of
    /// coming one lookup at a time. Changes nothing; at most [`PREFETCH_BATCH`] keys.
    pub fn prefetch(&self, keys: &[&[u8]]) {
        let mut hashes = [0u64; PREFETCH_BATCH];
        let n = keys.len().min(PREFETCH_BATCH);
        for (h, k) in hashes.iter_mut().zip(&keys[..n]) {
            *h = self.map.hash_key(*k);
            self.map.prefetch_meta(*h);
        }
        for &h in &hashes[..n] {
            self.map.prefetch_slots(h);
        }
    }

    /// Looks a key up for reading or writing, applying passive expiry. Does not count
    /// hits or misses (see [`Db::lookup_read`]).
    #[inline]
    pub fn lookup(&mut self, key: &[u8], now_ms: i64) -> Option<&mut Entry> {
        let slot = self.find_live(key, now_ms)?;
        Some(self.map.slot_mut(slot).1)
    }

    /// Like [`Db::lookup`], and counts a keyspace hit or miss.
    #[inline]
    pub fn lookup_read(&mut self, key: &[u8], now_ms: i64) -> Option<&mut Entry> {
        match self.find_live(key, now_ms) {
            Some(slot) => {
                self.stats.keyspace_hits += 1;
                Some(self.map.slot_mut(slot).1)
            }
            None => {
                self.stats.keyspace_misses += 1;
                None
            }
        }
    }

    /// True if the key exists (after passive expiry).
    pub fn contains(&mut self, key: &[u8], now_ms: i64) -> bool {
        self.find_live(key, now_ms).is_some()
    }

    /// Stores a value with a deadline (0 = none), replacing any previous entry. One
    /// hash and one probe; a new key is inserted without probing again.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at_ms: i64) {
        let h = self.map.hash_key(key);
        if let Some(slot) = self.map.find_hashed(h, key) {
            let e = self.map.slot_mut(slot).1;
            let old = e.expire_at_ms;
            e.value = value;
            e.expire_at_ms = expire_at_ms;
            if old != expire_at_ms {
                self.reindex(key, old, expire_at_ms);
            }
            return;
        }
        self.map.insert_unique_hashed(h, CompactKey::new(key), Entry { value, expire_at_ms });
        if expire_at_ms != 0 {
            self.deadlines.insert((expire_at_ms, key.into()));
        }
    }

    /// Stores a string value with a deadline (0 = none), like `set(key,
    /// Value::from_bytes(bytes), ..)` but reusing the old value's buffer when it fits,
    /// which saves an allocation and a free on overwrites (the SET hot path).
    pub fn set_bytes(&mut self, key: &[u8], bytes: &[u8], expire_at_ms: i64) {
        let h = self.map.hash_key(key);
        let Some(slot) = self.map.find_hashed(h, key) else {
            self.map.insert_unique_hashed(h, CompactKey::new(key), Entry { value: Value::from_bytes(bytes), expire_at_ms });
            if expire_at_ms != 0 {
                self.deadlines.insert((expire_at_ms, key.into()));
            }
            return;
        };
        let e = self.map.slot_mut(slot).1;
        match &mut e.value {
            Value::Str { bytes: buf, raw }
                if buf.capacity() >= bytes.len()
                    && buf.capacity() <= 2 * bytes.len() + 16
                    && !(bytes.len() <= 20 && crate::util::parse_i64(bytes).is_some()) =>
            {
                buf.clear();
                buf.extend_from_slice(bytes);
                *raw = false;
            }
            v => *v = Value::from_bytes(bytes),
        }
        let old = e.expire_at_ms;
        e.expire_at_ms = expire_at_ms;
        if old != expire_at_ms {
            self.reindex(key, old, expire_at_ms);
        }
    }

    /// Replaces the value and keeps the deadline (SET KEEPTTL, APPEND, INCR...).
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value) {
        let h = self.map.hash_key(key);
        match self.map.find_hashed(h, key) {
            Some(slot) => self.map.slot_mut(slot).1.value = value,
            None => {
                self.map.insert_unique_hashed(h, CompactKey::new(key), Entry { value, expire_at_ms: 0 });
            }
        }
    }

    /// Changes the deadline of an existing key (0 removes it). Returns false if absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at_ms: i64) -> bool {
        let h = self.map.hash_key(key);
        let Some(slot) = self.map.find_hashed(h, key) else { return false };
        let e = self.map.slot_mut(slot).1;
        let old = e.expire_at_ms;
        e.expire_at_ms = expire_at_ms;
        if old != expire_at_ms {
            self.reindex(key, old, expire_at_ms);
        }
        true
    }

    fn reindex(&mut self, key: &[u8], old: i64, new: i64) {
        if old != 0 {
            self.deadlines.remove(&(old, Box::<[u8]>::from(key)));
        }
        if new != 0 {
            self.deadlines.insert((new, key.into()));
        }
    }

    /// Removes the item at `slot` and its deadline.
    fn remove_slot(&mut self, slot: Slot) -> Entry {
        let (k, e) = self.map.remove_slot(slot);
        if e.expire_at_ms != 0 {
            self.deadlines.remove(&(e.expire_at_ms, Box::<[u8]>::from(k.as_bytes())));
        }
        e
    }

    /// Removes a key (no expiry check). Returns the removed entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let h = self.map.hash_key(key);
        let slot = self.map.find_hashed(h, key)?;
        Some(self.remove_slot(slot))
    }

    /// Removes everything and frees the table itself (keeping its hash seed), as Redis's FLUSHALL does (a
    /// `clear()` would keep the capacity: 8 MB left in use after 100k keys).
    pub fn clear(&mut self) {
        self.map = DashTable::with_seed(self.map.seed());
        self.deadlines.clear();
    }

    /// Visits every live key (expired-but-not-yet-removed keys are skipped).
    pub fn for_each_key(&self, now_ms: i64, mut f: impl FnMut(&[u8], &Entry)) {
        for (k, e) in &self.map {
            if !is_due(e, now_ms) {
                f(k, e);
            }
        }
    }

    /// Some live key, or None if the db has none: the Dash table's random entry
    /// (roughly uniform). An expired pick is deleted and another drawn, up to
    /// `RANDOM_KEY_TRIES` times; then the first live key in storage order (a db of
    /// mostly expired keys), so an all-expired db answers None.
    pub fn random_key(&mut self, now_ms: i64, seed: u64) -> Option<Key> {
        const RANDOM_KEY_TRIES: u64 = 16;
        for i in 0..RANDOM_KEY_TRIES {
            let (k, e) = self.map.random_entry(seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))?;
            let k: Key = k.as_bytes().into();
            if !is_due(e, now_ms) {
                return Some(k);
            }
            self.remove(&k);
            self.stats.expired_keys += 1;
        }
        self.map.iter().find(|(_, e)| !is_due(e, now_ms)).map(|(k, _)| k.as_bytes().into())
    }

    /// Active expiry: removes at most `budget` keys whose deadline has passed. Returns the
    /// number removed; fewer than `budget` means nothing else is due.
    pub fn expire_some(&mut self, now_ms: i64, budget: usize) -> usize {
        let mut removed = 0;
        while removed < budget {
            let Some((deadline, _)) = self.deadlines.first() else { break };
            if *deadline > now_ms {
                break;
            }
            let (_, key) = self.deadlines.pop_first().expect("checked non-empty");
            self.map.remove(&*key);
            self.stats.expired_keys += 1;
            removed += 1;
        }
        removed
    }

    /// Moves every key out (SWAPDB, FLUSHDB ASYNC).
    pub fn take(&mut self) -> Db {
        std::mem::take(self)
    }

    /// Moves every key out into a new `Db` and leaves this one empty, keeping the
    /// keyspace counters here (FLUSHDB/FLUSHALL ASYNC: the caller drops the result
    /// elsewhere).
    pub fn take_data(&mut self) -> Db {
        // The new table keeps the seed, so a SCAN in progress keeps its order.
        let fresh = DashTable::with_seed(self.map.seed());
        let map = std::mem::replace(&mut self.map, fresh);
        Db { map, deadlines: std::mem::take(&mut self.deadlines), stats: KeyStats::default() }
    }

    /// One SCAN step over this db: walks the Dash table's traverse cursor from
    /// `cursor` (0 = start), a logical bucket at a time, until at least `count` keys
    /// were visited (expired keys included; a bucket is never split between steps, so
    /// a step may visit up to a bucket's worth more) or `count` traverse calls found
    /// nothing (each skips at most 256 empty buckets, which bounds the work on a
    /// sparse table). Returns the cursor to continue from, 0 when the db is done;
    /// returned cursors only use [`SCAN_POSITION_BITS`] low bits.
    ///
    /// Guarantee (from the Dash traverse order, which depends only on key hashes):
    /// a key present for the whole scan is visited exactly once, whatever inserts,
    /// deletes and segment splits happen between steps (FLUSHDB included: the table
    /// keeps its seed); any key at most once. Only SWAPDB puts another table (another
    /// seed, another order) under the cursor, after which keys may come back once more.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &Entry)) -> u64 {
        let count = count.max(1);
        let mut visited = 0usize;
        let mut cursor = cursor;
        for _ in 0..count {
            cursor = self.map.traverse(cursor, |k, e| {
                visited += 1;
                f(k, e)
            });
            if cursor == 0 || visited >= count {
                break;
            }
        }
        cursor
    }

    /// Approximate bytes used by keys and values: the table itself (segments with
    /// their free slots, directory), heap keys, value buffers and the deadline index.
    pub fn approx_bytes(&self) -> usize {
        let heap: usize = self
            .map
            .iter()
            .map(|(k, e)| if k.len() > INLINE_KEY_BYTES { k.len() } else { 0 } + e.value.heap_bytes())
            .sum();
        self.map.mem_usage_bytes() + heap + self.deadlines.len() * 40
    }
}

/// Most keys one [`Db::prefetch`] call takes (redis-benchmark's `-P 16` sends 16
/// commands per connection and read).
pub const PREFETCH_BATCH: usize = 16;

/// Low bits of a SCAN cursor that hold the position within a shard (the Dash traverse
/// cursor); the shard index goes in the bits above (see `cmd::generic`).
pub const SCAN_POSITION_BITS: u32 = crate::dash::CURSOR_FREE_SHIFT;

/// Shards a SCAN cursor can name: the bits the Dash cursor leaves free.
pub const SCAN_MAX_SHARDS: usize = 1 << (64 - SCAN_POSITION_BITS);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dash::SLOTS;

    // A key whose deadline has passed is gone on the next lookup and counted as expired.
    #[test]
    fn passive_expiry() {
        let mut db = Db::default();
        db.set(b"k", Value::from_bytes(b"v"), 1000);
        assert!(db.lookup(b"k", 999).is_some());
        assert!(db.lookup(b"k", 1000).is_none());
        assert_eq!(db.stats.expired_keys, 1);
        assert_eq!(db.expires_len(), 0);
    }

    // Active expiry removes due keys only, oldest deadline first, within the budget.
    #[test]
    fn active_expiry_budget() {
        let mut db = Db::default();
        for i in 0..10i64 {
            db.set(format!("k{i}").as_bytes(), Value::Int(i), 100 + i);
        }
        db.set(b"forever", Value::Int(1), 0);
        assert_eq!(db.expire_some(104, 3), 3);
        assert_eq!(db.expire_some(104, 100), 2);
        assert_eq!(db.len(), 6);
        assert_eq!(db.expire_some(10_000, 100), 5);
        assert_eq!(db.len(), 1);
    }

    // Changing or clearing a deadline keeps the deadline index in step.
    #[test]
    fn reindex_on_change() {
        let mut db = Db::default();
        db.set(b"k", Value::Int(1), 50);
        db.set_expire(b"k", 0);
        assert_eq!(db.expires_len(), 0);
        assert_eq!(db.expire_some(100, 10), 0);
        assert!(db.lookup(b"k", 100).is_some());
    }

    /// Every key of a full scan of `db` in steps of `count`, calling `between` after
    /// each step; returns the keys in visit order and the number of steps.
    fn full_scan(db: &mut Db, count: usize, mut between: impl FnMut(&mut Db, usize)) -> (Vec<Vec<u8>>, usize) {
        let mut seen = Vec::new();
        let mut cursor = 0;
        let mut steps = 0;
        loop {
            let mut batch = Vec::new();
            cursor = db.scan(cursor, count, |k, _| batch.push(k.to_vec()));
            assert_eq!(cursor >> SCAN_POSITION_BITS, 0, "shard bits stay free");
            seen.extend(batch);
            steps += 1;
            between(db, steps);
            if cursor == 0 {
                return (seen, steps);
            }
        }
    }

    // A full scan in small steps visits every key exactly once; a step visits about
    // `count` keys (whole buckets, so a little more at most).
    #[test]
    fn scan_steps() {
        let mut db = Db::default();
        for i in 0..5000 {
            db.set(format!("k{i}").as_bytes(), Value::Int(i), 0);
        }
        let mut cursor = 0;
        let mut sizes = Vec::new();
        loop {
            let mut n = 0;
            cursor = db.scan(cursor, 20, |_, _| n += 1);
            sizes.push(n);
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(sizes.iter().sum::<usize>(), 5000);
        assert!(sizes[..sizes.len() - 1].iter().all(|&n| (20..20 + 3 * SLOTS).contains(&n)), "{sizes:?}");
        let (seen, _) = full_scan(&mut db, 7, |_, _| {});
        let unique: std::collections::HashSet<&Vec<u8>> = seen.iter().collect();
        assert_eq!((seen.len(), unique.len()), (5000, 5000));
    }

    // Keys present for the whole scan come back exactly once while others come and go
    // and the table splits segments between steps (it grows ~8-fold during the scan).
    #[test]
    fn scan_under_churn_and_splits() {
        let mut db = Db::default();
        for i in 0..1000 {
            db.set(format!("k{i}").as_bytes(), Value::Int(i), 0);
        }
        let segs_before = db.map.segment_count();
        let (seen, steps) = full_scan(&mut db, 5, |db, step| {
            for j in 0..30 {
                db.set(format!("new{step}:{j}").as_bytes(), Value::Int(0), 0);
            }
            for j in 0..20 {
                db.remove(format!("new{}:{j}", step / 2).as_bytes());
            }
        });
        assert!(db.map.segment_count() >= 4 * segs_before, "splits happened: {} -> {}", segs_before, db.map.segment_count());
        let stable: Vec<&Vec<u8>> = seen.iter().filter(|k| k.starts_with(b"k")).collect();
        let unique: std::collections::HashSet<&Vec<u8>> = stable.iter().copied().collect();
        assert_eq!((stable.len(), unique.len()), (1000, 1000), "each stable key exactly once");
        let all: std::collections::HashSet<&Vec<u8>> = seen.iter().collect();
        assert_eq!(all.len(), seen.len(), "no key twice");
        assert!(steps >= 1000 / (5 + 3 * SLOTS));
    }

    // An empty db ends the scan at once; a cursor past the last bucket too; a nearly
    // empty big table still ends (bounded empty buckets per call).
    #[test]
    fn scan_edges() {
        let mut db = Db::default();
        assert_eq!(db.scan(0, 10, |_, _| panic!("empty")), 0);
        db.set(b"a", Value::Int(1), 0);
        let mut n = 0;
        assert_eq!(db.scan(0, 10, |_, _| n += 1), 0);
        assert_eq!(n, 1);
        assert_eq!(db.scan(63 << crate::dash::CURSOR_BUCKET_SHIFT, 10, |_, _| panic!("past the end")), 0);
        for i in 0..100_000 {
            db.set(format!("k{i}").as_bytes(), Value::Int(i), 0);
        }
        for i in 0..100_000 {
            db.remove(format!("k{i}").as_bytes());
        }
        let (seen, steps) = full_scan(&mut db, 1, |_, _| {});
        assert_eq!(seen, vec![b"a".to_vec()]);
        assert!(steps > 1, "a step gives up after a bounded number of empty buckets");
    }

    // Passive expiry with one probe: an expired key found by lookup is deleted along
    // with its deadline; RANDOMKEY deletes expired picks and answers None when all are.
    #[test]
    fn random_key_skips_expired() {
        let mut db = Db::default();
        assert_eq!(db.random_key(0, 1), None);
        for i in 0..100 {
            db.set(format!("t{i}").as_bytes(), Value::Int(i), 10);
        }
        db.set(b"live", Value::Int(1), 0);
        assert!(db.random_key(5, 7).is_some());
        assert_eq!(db.random_key(20, 7).as_deref(), Some(&b"live"[..]));
        assert!(db.stats.expired_keys > 0);
        db.remove(b"live");
        assert_eq!(db.random_key(20, 9), None);
        let mut picks = std::collections::HashSet::new();
        let mut db = Db::default();
        for i in 0..50 {
            db.set(format!("k{i}").as_bytes(), Value::Int(i), 0);
        }
        for seed in 0..2000 {
            picks.insert(db.random_key(0, seed).unwrap());
        }
        assert_eq!(picks.len(), 50, "every key can come up");
    }

    // Prefetching is only a hint: any keys, present or not, on an empty or full db,
    // more than a batch, change nothing.
    #[test]
    fn prefetch_is_a_hint() {
        let mut db = Db::default();
        db.prefetch(&[b"a", b"b"]);
        for i in 0..2000 {
            db.set(format!("k{i}").as_bytes(), Value::Int(i), 0);
        }
        let keys: Vec<Vec<u8>> = (0..40).map(|i| format!("k{}", i * 7).into_bytes()).collect();
        let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        db.prefetch(&refs);
        db.prefetch(&[b"absent"]);
        assert_eq!(db.len(), 2000);
        assert_eq!(db.lookup(b"k7", 0).map(|e| e.value.clone()), Some(Value::Int(7)));
    }

    // Long keys (heap) and short keys (inline) are found by their bytes alike.
    #[test]
    fn long_and_short_keys() {
        let mut db = Db::default();
        let long = vec![b'x'; 100];
        db.set(&long, Value::Int(1), 0);
        db.set(b"short", Value::Int(2), 0);
        assert_eq!(db.lookup(&long, 0).map(|e| e.value.clone()), Some(Value::Int(1)));
        assert_eq!(db.lookup(b"short", 0).map(|e| e.value.clone()), Some(Value::Int(2)));
        assert_eq!(CompactKey::new(&long).dash_hash(5), crate::dash::hash_bytes(&long, 5));
        assert!(db.remove(&long).is_some());
        assert_eq!(db.len(), 1);
    }

    // take_data empties the db but leaves its counters and its hash seed.
    #[test]
    fn take_data_keeps_stats() {
        let mut db = Db::default();
        db.set(b"a", Value::Int(1), 5);
        db.lookup_read(b"a", 0);
        let old = db.take_data();
        assert_eq!((old.len(), old.expires_len()), (1, 1));
        assert_eq!((db.len(), db.expires_len(), db.stats.keyspace_hits), (0, 0, 1));
        // Same seed, so a SCAN cursor keeps meaning the same order.
        assert_eq!(db.map.seed(), old.map.seed());
    }

    // Values pick Redis's encodings: canonical integers are int, short strings embstr.
    #[test]
    fn encodings() {
        assert_eq!(Value::from_bytes(b"123").encoding(), "int");
        assert_eq!(Value::from_bytes(b"0123").encoding(), "embstr");
        assert_eq!(Value::from_bytes(&[b'x'; 45]).encoding(), "raw");
    }

    // Changing a string in place turns integers into text and the encoding into raw.
    #[test]
    fn str_mut_raw_unshares() {
        let mut v = Value::from_bytes(b"-12");
        v.str_mut_raw().unwrap().push(b'3');
        assert_eq!(v, Value::Str { bytes: b"-123".to_vec(), raw: true });
        assert_eq!(v.encoding(), "raw");
        let mut v = Value::from_bytes(b"ab");
        assert_eq!(v.str_mut_raw().unwrap(), b"ab");
        assert_eq!(v.encoding(), "raw");
    }
}
