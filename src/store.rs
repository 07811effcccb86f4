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
//! Non-goals here: compact encodings and the Dash table (the storage-engine issue replaces
//! `map` and the `deadlines` index).

use std::collections::{BTreeSet, HashMap};

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
    map: HashMap<CompactKey, Entry>,
    /// (deadline, key) for every key with a deadline, for active expiry.
    deadlines: BTreeSet<(i64, Key)>,
    pub stats: KeyStats,
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

    /// Deletes `key` if its deadline has passed. Returns true if it was deleted.
    fn expire_if_due(&mut self, key: &[u8], now_ms: i64) -> bool {
        // Most dbs hold no key with a deadline: skip the extra hash lookup then.
        if self.deadlines.is_empty() {
            return false;
        }
        let due = match self.map.get(key) {
            Some(e) => e.expire_at_ms != 0 && e.expire_at_ms <= now_ms,
            None => false,
        };
        if due {
            self.remove(key);
            self.stats.expired_keys += 1;
        }
        due
    }

    /// Looks a key up for reading or writing, applying passive expiry. Does not count
    /// hits or misses (see [`Db::lookup_read`]).
    pub fn lookup(&mut self, key: &[u8], now_ms: i64) -> Option<&mut Entry> {
        self.expire_if_due(key, now_ms);
        self.map.get_mut(key)
    }

    /// Like [`Db::lookup`], and counts a keyspace hit or miss.
    pub fn lookup_read(&mut self, key: &[u8], now_ms: i64) -> Option<&mut Entry> {
        self.expire_if_due(key, now_ms);
        match self.map.get_mut(key) {
            Some(e) => {
                self.stats.keyspace_hits += 1;
                Some(e)
            }
            None => {
                self.stats.keyspace_misses += 1;
                None
            }
        }
    }

    /// True if the key exists (after passive expiry).
    pub fn contains(&mut self, key: &[u8], now_ms: i64) -> bool {
        self.lookup(key, now_ms).is_some()
    }

    /// Stores a value with a deadline (0 = none), replacing any previous entry.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at_ms: i64) {
        if let Some(e) = self.map.get_mut(key) {
            let old = e.expire_at_ms;
            e.value = value;
            e.expire_at_ms = expire_at_ms;
            if old != expire_at_ms {
                self.reindex(key, old, expire_at_ms);
            }
            return;
        }
        self.map.insert(CompactKey::new(key), Entry { value, expire_at_ms });
        if expire_at_ms != 0 {
            self.deadlines.insert((expire_at_ms, key.into()));
        }
    }

    /// Stores a string value with a deadline (0 = none), like `set(key,
    /// Value::from_bytes(bytes), ..)` but reusing the old value's buffer when it fits,
    /// which saves an allocation and a free on overwrites (the SET hot path).
    pub fn set_bytes(&mut self, key: &[u8], bytes: &[u8], expire_at_ms: i64) {
        let Some(e) = self.map.get_mut(key) else {
            return self.set(key, Value::from_bytes(bytes), expire_at_ms);
        };
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
        if let Some(e) = self.map.get_mut(key) {
            e.value = value;
        } else {
            self.map.insert(CompactKey::new(key), Entry { value, expire_at_ms: 0 });
        }
    }

    /// Changes the deadline of an existing key (0 removes it). Returns false if absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at_ms: i64) -> bool {
        let Some(e) = self.map.get_mut(key) else { return false };
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

    /// Removes a key (no expiry check). Returns the removed entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.map.remove(key)?;
        if e.expire_at_ms != 0 {
            self.deadlines.remove(&(e.expire_at_ms, Box::<[u8]>::from(key)));
        }
        Some(e)
    }

    /// Removes everything and frees the table itself, as Redis's FLUSHALL does (a
    /// `clear()` would keep the capacity: 8 MB left in use after 100k keys).
    pub fn clear(&mut self) {
        self.map = HashMap::new();
        self.deadlines.clear();
    }

    /// Visits every live key (expired-but-not-yet-removed keys are skipped).
    pub fn for_each_key(&self, now_ms: i64, mut f: impl FnMut(&[u8], &Entry)) {
        for (k, e) in &self.map {
            if e.expire_at_ms == 0 || e.expire_at_ms > now_ms {
                f(k, e);
            }
        }
    }

    /// Some live key, or None if the db is empty. Not uniform; good enough for RANDOMKEY.
    pub fn random_key(&mut self, now_ms: i64, seed: u64) -> Option<Key> {
        // Drop expired keys first so an all-expired db answers nil.
        for _ in 0..self.map.len().min(64) {
            let n = self.map.len();
            if n == 0 {
                return None;
            }
            let skip = (seed as usize) % n.min(128);
            let (k, e) = self.map.iter().nth(skip)?;
            if e.expire_at_ms != 0 && e.expire_at_ms <= now_ms {
                let k: Key = k.as_bytes().into();
                self.remove(&k);
                self.stats.expired_keys += 1;
                continue;
            }
            return Some(k.as_bytes().into());
        }
        self.map.iter().find(|(_, e)| e.expire_at_ms == 0 || e.expire_at_ms > now_ms).map(|(k, _)| k.as_bytes().into())
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
        Db { map: std::mem::take(&mut self.map), deadlines: std::mem::take(&mut self.deadlines), stats: KeyStats::default() }
    }

    /// One step of a SCAN over this db, in [`scan_hash`] order. Visits every key whose
    /// scan hash is at least `from`, up to the `count` lowest such hashes (all keys
    /// sharing the last visited hash are visited too, so a hash is never split between
    /// two steps), expired keys included. Returns the position to continue from, or
    /// None when no key with a higher hash remains.
    ///
    /// A key present for the whole scan is visited exactly once: positions only move
    /// past hashes already visited. Cost: two passes over the whole db per call, so a
    /// full scan is O(n²/count).
    // TODO(dash): the Dash table's traverse cursor replaces this ordering.
    pub fn scan_from(&self, from: u64, count: usize, f: impl FnMut(&[u8], &Entry)) -> Option<u64> {
        self.scan_by(scan_hash, from, count, f)
    }

    /// [`Db::scan_from`] with the ordering hash as a parameter (tests force ties).
    fn scan_by(&self, hash: impl Fn(&[u8]) -> u64, from: u64, count: usize, mut f: impl FnMut(&[u8], &Entry)) -> Option<u64> {
        let count = count.max(1);
        // Pass 1: the count-th lowest hash >= from (a max-heap of the lowest seen).
        let mut heap: std::collections::BinaryHeap<u64> = std::collections::BinaryHeap::new();
        for k in self.map.keys() {
            let h = hash(k);
            if h < from {
                continue;
            }
            if heap.len() < count {
                heap.push(h);
            } else if h < *heap.peek().expect("heap is full") {
                heap.pop();
                heap.push(h);
            }
        }
        let full = heap.len() >= count;
        let limit = if full { *heap.peek().expect("heap is full") } else { u64::MAX };
        // Pass 2: visit [from, limit]; anything above means more to come.
        let mut more = false;
        for (k, e) in &self.map {
            let h = hash(k);
            if h < from {
                continue;
            }
            if h <= limit {
                f(k, e);
            } else {
                more = true;
            }
        }
        if more { Some(limit + 1) } else { None }
    }

    /// Approximate bytes used by keys and values.
    pub fn approx_bytes(&self) -> usize {
        // A rough estimate: slot + key + value payload.
        self.map.iter().map(|(k, e)| 48 + k.len() + e.value.heap_bytes()).sum::<usize>() + self.deadlines.len() * 40
    }
}

/// Bits of a SCAN cursor left for the shard index (see `cmd::generic`): scan hashes
/// use the other 52.
pub const SCAN_SHARD_BITS: u32 = 12;

/// The order [`Db::scan_from`] visits keys in: a 52-bit hash of the key, stable for the
/// life of the process.
pub fn scan_hash(key: &[u8]) -> u64 {
    crate::shard::hash_bytes(key).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> SCAN_SHARD_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

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

    // A full scan in small steps visits every key once, in hash order, and keys that
    // stay for the whole scan are never missed while others come and go.
    #[test]
    fn scan_steps() {
        let mut db = Db::default();
        for i in 0..1000 {
            db.set(format!("k{i}").as_bytes(), Value::Int(i), 0);
        }
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let mut pos = 0;
        let mut step = 0;
        loop {
            let mut batch = Vec::new();
            let next = db.scan_from(pos, 7, |k, _| batch.push(k.to_vec()));
            assert!(batch.len() <= 7, "no 52-bit ties among 1000 keys");
            assert!(batch.iter().all(|k| scan_hash(k) >= pos));
            seen.extend(batch);
            // Churn: add and remove other keys between steps.
            db.set(format!("new{step}").as_bytes(), Value::Int(0), 0);
            db.remove(format!("new{}", step / 2).as_bytes());
            step += 1;
            match next {
                Some(p) => {
                    assert!(p > pos);
                    pos = p;
                }
                None => break,
            }
        }
        let stable: Vec<&Vec<u8>> = seen.iter().filter(|k| k.starts_with(b"k")).collect();
        let unique: std::collections::HashSet<&Vec<u8>> = stable.iter().copied().collect();
        assert_eq!(stable.len(), 1000, "each stable key once");
        assert_eq!(unique.len(), 1000);
        assert!(step >= 1000 / 7);
    }

    // Keys sharing a hash are visited in the same step, even past the count, so a
    // step never ends in the middle of a group.
    #[test]
    fn scan_ties() {
        let mut db = Db::default();
        for k in ["a1", "a2", "a3", "b1", "c1", "c2"] {
            db.set(k.as_bytes(), Value::Int(1), 0);
        }
        let first_byte = |k: &[u8]| k[0] as u64;
        let step = |from: u64, count: usize| {
            let mut v: Vec<String> = Vec::new();
            let next = db.scan_by(first_byte, from, count, |k, _| v.push(String::from_utf8(k.to_vec()).unwrap()));
            v.sort();
            (v, next)
        };
        assert_eq!(step(0, 1), (vec!["a1".into(), "a2".into(), "a3".into()], Some(b'a' as u64 + 1)));
        assert_eq!(step(b'b' as u64, 2), (vec!["b1".into(), "c1".into(), "c2".into()], None));
        assert_eq!(step(b'b' as u64, 1), (vec!["b1".into()], Some(b'c' as u64)));
    }

    // An empty db or a position past every hash ends the scan at once.
    #[test]
    fn scan_edges() {
        let mut db = Db::default();
        assert_eq!(db.scan_from(0, 10, |_, _| panic!("empty")), None);
        db.set(b"a", Value::Int(1), 0);
        let mut n = 0;
        assert_eq!(db.scan_from(0, 10, |_, _| n += 1), None);
        assert_eq!(n, 1);
        assert_eq!(db.scan_from(scan_hash(b"a") + 1, 10, |_, _| panic!("past a")), None);
    }

    // take_data empties the db but leaves its counters.
    #[test]
    fn take_data_keeps_stats() {
        let mut db = Db::default();
        db.set(b"a", Value::Int(1), 5);
        db.lookup_read(b"a", 0);
        let old = db.take_data();
        assert_eq!((old.len(), old.expires_len()), (1, 1));
        assert_eq!((db.len(), db.expires_len(), db.stats.keyspace_hits), (0, 0, 1));
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
