//! Shard-local keyspace: one [`Db`] per logical database, owned by one shard thread.
//!
//! ```text
//!   Shard ── dbs[0..dbnum] ── Db { map:     key -> value            (Dash, 32 B items)
//!                                  expires: key -> deadline ms      (Dash, keys with a TTL only)
//!                                  expire_cursor }
//! ```
//!
//! Keys and values are 16-byte [`CompactObj`]s (`crate::compact`). A key with a
//! deadline carries `FLAG_EXPIRE` and has an entry in `expires`, which uses the same
//! hash seed as `map`, so one hash serves both; a key without one never touches
//! `expires`. Deadlines thus cost memory only for keys that have one.
//!
//! Only the owning thread touches a `Db`. Expiry is exact to the millisecond: every
//! read goes through [`Db::lookup`], which deletes a key whose deadline has passed
//! (passive expiry); [`Db::expire_step`] walks `expires` with the Dash traverse cursor
//! and removes due keys, reporting how many it saw and removed so the caller can adapt
//! (active expiry, driven by the thread's timer).
//!
//! Each key object also carries an 8-bit access stamp (`crate::access`): lookups touch
//! it unless the command or the client says not to ([`Db::set_access`]), writes of a
//! new value stamp it, and [`Db::age_step`] (run from [`Db::free_retired`]) moves old
//! stamps into the db's generations, so [`Db::idle_seconds`] answers OBJECT IDLETIME.
//!
//! A table that becomes empty or sparse is rebuilt small (keeping the seed, so SCAN
//! cursors keep their meaning) and its old segments are freed a few at a time
//! ([`Db::free_retired`]), so memory returns to the baseline after a mass expiry.
//!
//! **One write path.** Every change to a key's value or deadline goes through a `Db`
//! method (there is no other way to reach the tables), and each calls the db's
//! [`WriteHooks`]: `pre_write` before the change reaches the table and `on_write`
//! after it, with the key and a [`WriteKind`]. A value changed in place is reached only
//! through the guard [`EntryMut`] ([`Db::lookup_typed`]), which reports the change when
//! it is dropped. Whole-db writes (FLUSHDB, FLUSHALL, SWAPDB) fire the db-level hooks.
//! The dbs of a shard live in [`Dbs`], which hands out `&mut Db` (so only `Db`'s
//! methods) and does SWAPDB itself.
//!
//! ```text
//!   command ──▶ Db::set / set_bytes / set_keep_ttl / set_expire / remove / clear ...
//!               Db::lookup_typed ──▶ EntryMut::value_mut ··· drop
//!   store   ──▶ passive + active expiry, cache-mode eviction
//!                  │ pre_write(key)        (before the table changes: snapshots)
//!                  ▼ on_write(key, kind)   (after: WATCH, blocking, notifications, journal)
//!               WriteHooks of the db's index (Dbs::swap keeps them with the index)
//! ```

use crate::access::{self, AGE_PASS_MS, AGE_STEP_MAX_KEYS, Generations};
use crate::compact::CompactObj;
use crate::container::ObjType;
use crate::dash::{DashTable, Retired, Slot};
use crate::op::{OpResult, OpStatus};

pub type Key = Box<[u8]>;

/// A stored value: a 16-byte object (a string, or a boxed container of another type;
/// see `crate::compact` and `crate::container`).
pub type Value = CompactObj;

/// A key as the table stores it (16 bytes; see `crate::compact`).
pub type CompactKey = CompactObj;

/// An owned key's value and deadline (COPY, MOVE, RENAME carry them between dbs).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Value,
    /// Absolute deadline in unix milliseconds, 0 = none.
    pub expire_at_ms: i64,
}

/// A live key's value and deadline, as the read lookups ([`Db::lookup`],
/// [`Db::lookup_read`], [`Db::lookup_read_typed`]) find them. Read-only: a command that
/// changes a value in place takes it through [`Db::lookup_typed`]'s [`EntryMut`].
#[derive(Debug)]
pub struct EntryRef<'a> {
    pub value: &'a Value,
    /// Absolute deadline in unix milliseconds, 0 = none.
    pub expire_at_ms: i64,
}

impl EntryRef<'_> {
    /// An owned copy.
    pub fn to_entry(&self) -> Entry {
        Entry { value: self.value.clone(), expire_at_ms: self.expire_at_ms }
    }
}

/// A live key found for writing ([`Db::lookup_typed`], Redis's `lookupKeyWrite`): its
/// value can be read freely, and changed in place only through
/// [`EntryMut::value_mut`], which fires the db's `pre_write` (once) and makes the guard
/// fire `on_write(key, Modify)` when it is dropped. A guard only read fires nothing, so
/// a command that fails after looking (INCR of a non-integer, WRONGTYPE...) reports no
/// write.
#[derive(Debug)]
pub struct EntryMut<'a> {
    value: &'a mut Value,
    expire_at_ms: i64,
    key: &'a [u8],
    hooks: &'a mut WriteHooks,
    modified: bool,
}

impl EntryMut<'_> {
    /// The value, to read.
    #[inline]
    pub fn value(&self) -> &Value {
        self.value
    }

    /// The value, to change in place; the change is reported when the guard drops.
    #[inline]
    pub fn value_mut(&mut self) -> &mut Value {
        if !self.modified {
            self.modified = true;
            self.hooks.pre_write(self.key);
        }
        self.value
    }

    /// Absolute deadline in unix milliseconds, 0 = none.
    #[inline]
    pub fn expire_at_ms(&self) -> i64 {
        self.expire_at_ms
    }
}

impl Drop for EntryMut<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.modified {
            self.hooks.on_write(self.key, WriteKind::Modify);
        }
    }
}

// A keyspace item is 32 bytes: two to a cache line.
const _: () = assert!(std::mem::size_of::<(CompactKey, Value)>() == 32);

/// A db's counters for INFO stats ([`Db::stats`]).
#[derive(Debug, Default, Clone)]
pub struct KeyStats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
}

/// What one [`Db::expire_step`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpireStep {
    /// Keys with a deadline looked at.
    pub sampled: usize,
    /// Of those, keys removed because their deadline had passed.
    pub removed: usize,
    /// True when the walk reached the end of the expire table (and starts over).
    pub wrapped: bool,
}

/// What a write did, as the write hooks are told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// A value was stored under the key, new or replacing one (SET and its variants,
    /// MSET, INCR's and INCRBYFLOAT's results, RENAME's, COPY's and MOVE's destination).
    Set,
    /// The value was changed in place through an [`EntryMut`] (APPEND, SETRANGE).
    Modify,
    /// A command deleted the key (DEL, UNLINK, GETDEL, RENAME's and MOVE's source, an
    /// EXPIRE or GETEX deadline already past).
    Delete,
    /// The key's deadline was set, changed or removed (EXPIRE family, PERSIST, GETEX).
    Expire,
    /// The store deleted the key because its deadline had passed (passive expiry in a
    /// lookup, active expiry in [`Db::expire_step`], RANDOMKEY).
    Expired,
    /// Cache mode evicted the key to make room.
    Evicted,
    /// Db-level: every key of the db was deleted (FLUSHDB, FLUSHALL). Fired only for a
    /// db that had keys.
    Flush,
    /// Db-level: the db's keys were exchanged with another db's (SWAPDB; fired for both
    /// indices, unless both dbs were empty).
    Swap,
}

/// The write hooks of one db index: the one place that sees every write to the db's
/// keys. Today it counts the keys the store removes on its own (INFO `expired_keys`,
/// `evicted_keys`), and unit tests attach a recorder; later issues attach here:
///
/// - WATCH (MULTI/EXEC): `on_write` marks the transactions watching the key dirty.
/// - Blocking lists: `on_write` of a key some client blocks on queues it as ready.
/// - Keyspace notifications and the replication journal: `on_write` of the `Expired`
///   and `Evicted` keys (the writes no command makes; commands notify and journal
///   themselves, with their own event names).
/// - Fork-less snapshots: `pre_write` serialises the key's Dash bucket, if the
///   snapshot has not reached it yet, before the table changes it.
///
/// A subscriber that needs shard-wide state (a journal, pub/sub) keeps a queue here
/// that the shard drains after the command. Db-level writes carry no key: a
/// subscriber treats `Flush` as a write of every key the db held (WATCH: Redis touches
/// only the watched keys that existed; `pre_write_db` runs while they still do) and
/// `Swap` as a write of every key of both dbs before and after.
///
/// What is *not* a write: access stamps (lookups, the aging walk), cache-mode
/// promotion within a bucket, and table reorganisations (segment splits, merges,
/// rebuilds of empty tables) move or stamp items without changing any key's value or
/// deadline; a snapshot follows those through the Dash bucket versions.
///
/// The hooks belong to the index, not to the tables: SWAPDB exchanges two dbs' tables
/// and leaves each index's hooks in place ([`Dbs::swap`]), as Redis keeps a db's id and
/// its watched and blocking keys. Only the store calls them (the methods are private
/// to this module), with no allocation and no dynamic dispatch: each is inlined into
/// the write it reports.
#[derive(Debug, Default)]
pub struct WriteHooks {
    /// The db index these hooks belong to.
    db: usize,
    /// Keys deleted by expiry (INFO `expired_keys`).
    expired_keys: u64,
    /// Keys evicted in cache mode (INFO `evicted_keys`).
    evicted_keys: u64,
    /// Unit tests' recorder (`Dbs::record_writes`).
    #[cfg(test)]
    recorded: Option<Vec<Hooked>>,
}

/// One hook call, as the unit tests' recorder keeps it: (db index, key, kind).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hooked {
    Pre(usize, Vec<u8>),
    PreBucket(usize),
    PreDb(usize, WriteKind),
    Write(usize, Vec<u8>, WriteKind),
    WriteDb(usize, WriteKind),
}

impl WriteHooks {
    fn new(db: usize) -> WriteHooks {
        WriteHooks { db, ..Default::default() }
    }

    /// Before `key`'s value or deadline changes in the table (an insert included: with
    /// cache-mode eviction it may remove another item of the key's bucket). The snapshot
    /// hook point.
    #[inline(always)]
    fn pre_write(&mut self, key: &[u8]) {
        #[cfg(test)]
        self.record(|db| Hooked::Pre(db, key.to_vec()));
        let _ = key;
    }

    /// Before the cache-mode eviction walk removes an item from the Dash bucket at
    /// traverse position `cursor` (which item is known only once it is removed).
    #[inline(always)]
    fn pre_write_bucket(&mut self, cursor: u64) {
        #[cfg(test)]
        self.record(Hooked::PreBucket);
        let _ = cursor;
    }

    /// Before a db-level write ([`WriteKind::Flush`], [`WriteKind::Swap`]).
    #[inline(always)]
    fn pre_write_db(&mut self, kind: WriteKind) {
        #[cfg(test)]
        self.record(|db| Hooked::PreDb(db, kind));
        let _ = kind;
    }

    /// After `key` was written.
    #[inline(always)]
    fn on_write(&mut self, key: &[u8], kind: WriteKind) {
        #[cfg(test)]
        self.record(|db| Hooked::Write(db, key.to_vec(), kind));
        let _ = key;
        match kind {
            WriteKind::Expired => self.expired_keys += 1,
            WriteKind::Evicted => self.evicted_keys += 1,
            _ => {}
        }
    }

    /// After a db-level write ([`WriteKind::Flush`], [`WriteKind::Swap`]).
    #[inline(always)]
    fn on_write_db(&mut self, kind: WriteKind) {
        #[cfg(test)]
        self.record(|db| Hooked::WriteDb(db, kind));
        let _ = kind;
    }

    #[cfg(test)]
    fn record(&mut self, event: impl FnOnce(usize) -> Hooked) {
        let db = self.db;
        if let Some(log) = &mut self.recorded {
            log.push(event(db));
        }
    }
}

/// The dbs of one shard, indexed by db number. Hands out `&mut Db` — so writes go
/// through `Db`'s methods and fire its hooks — and exchanges dbs itself (SWAPDB), so
/// that the hooks stay with their index.
pub struct Dbs {
    dbs: Vec<Db>,
}

impl Dbs {
    /// `n` empty dbs, numbered 0..n.
    pub fn new(n: usize) -> Dbs {
        Dbs {
            dbs: (0..n)
                .map(|i| {
                    let mut db = Db::new();
                    db.hooks.db = i;
                    db
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.dbs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dbs.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Db> {
        self.dbs.get(i)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Db> {
        self.dbs.iter()
    }

    /// SWAPDB: exchanges the keys (tables, cursors, access generations, read counters)
    /// of dbs `a` and `b`; each index keeps its [`WriteHooks`], which report a
    /// [`WriteKind::Swap`] unless nothing changes (`a == b`, or both empty).
    pub fn swap(&mut self, a: usize, b: usize) {
        if a == b || (self.dbs[a].is_empty() && self.dbs[b].is_empty()) {
            return;
        }
        for i in [a, b] {
            self.dbs[i].hooks.pre_write_db(WriteKind::Swap);
        }
        self.dbs.swap(a, b);
        let (lo, hi) = self.dbs.split_at_mut(a.max(b));
        std::mem::swap(&mut lo[a.min(b)].hooks, &mut hi[0].hooks);
        for i in [a, b] {
            self.dbs[i].hooks.on_write_db(WriteKind::Swap);
        }
    }

    /// Unit tests: start recording every hook call of every db.
    #[cfg(test)]
    pub fn record_writes(&mut self) {
        for d in &mut self.dbs {
            d.hooks.recorded = Some(Vec::new());
        }
    }

    /// Unit tests: the hook calls recorded since the last call, db after db.
    #[cfg(test)]
    pub fn take_recorded(&mut self) -> Vec<Hooked> {
        self.dbs.iter_mut().flat_map(|d| d.hooks.recorded.as_mut().map(std::mem::take).unwrap_or_default()).collect()
    }
}

impl std::ops::Index<usize> for Dbs {
    type Output = Db;

    #[inline(always)]
    fn index(&self, i: usize) -> &Db {
        &self.dbs[i]
    }
}

impl std::ops::IndexMut<usize> for Dbs {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut Db {
        &mut self.dbs[i]
    }
}

impl<'a> IntoIterator for &'a Dbs {
    type Item = &'a Db;
    type IntoIter = std::slice::Iter<'a, Db>;

    fn into_iter(self) -> Self::IntoIter {
        self.dbs.iter()
    }
}

impl<'a> IntoIterator for &'a mut Dbs {
    type Item = &'a mut Db;
    type IntoIter = std::slice::IterMut<'a, Db>;

    fn into_iter(self) -> Self::IntoIter {
        self.dbs.iter_mut()
    }
}

/// One logical database in one shard.
pub struct Db {
    /// The keyspace: a Dash table (`crate::dash`) with a random per-table seed.
    map: DashTable<CompactKey, Value>,
    /// Deadline of every key that has one (same seed as `map`).
    expires: DashTable<CompactKey, i64>,
    /// Where active expiry continues in `expires` (a Dash traverse cursor).
    expire_cursor: u64,
    /// Reused buffer for the keys one expiry step removes.
    due: Vec<CompactKey>,
    /// Cache mode: hits promote the item inside its bucket ([`Db::set_cache_mode`]).
    cache_mode: bool,
    /// Where the background eviction walk continues (a Dash traverse cursor).
    evict_cursor: u64,
    /// Cache mode and over the memory budget: inserts evict first.
    over_budget: bool,
    /// Emptied segments of rebuilt tables, freed a few at a time ([`Db::free_retired`]).
    retired_map: Vec<Retired<CompactKey, Value>>,
    retired_expires: Vec<Retired<CompactKey, i64>>,
    /// Where the merging of sparse tables' segments continues (directory indices).
    merge_cursor_map: usize,
    merge_cursor_expires: usize,
    /// The access stamp of "now" (`access::stamp`), written into a key when it is
    /// touched or created; kept current by every lookup and by `ShardCtx::db`.
    clock: u8,
    /// Whether lookups touch the key they find (stamp it, and promote it in cache
    /// mode). Set per command: off for TTL, TYPE, OBJECT... and under CLIENT NO-TOUCH.
    touch: bool,
    /// The access-stamp walk ([`Db::age_step`]): its traverse cursor, when its last
    /// step ran, and the aged generations (`crate::access`; allocated on the first
    /// pass over a non-empty db).
    age_cursor: u64,
    age_last_step_ms: i64,
    gens: Option<Box<Generations>>,
    /// Lookups that found / did not find their key (INFO `keyspace_hits`/`_misses`).
    keyspace_hits: u64,
    keyspace_misses: u64,
    /// The write hooks of this db's index (left in place by [`Dbs::swap`]).
    hooks: WriteHooks,
}

impl Db {
    /// An empty db, of index 0 as its hooks see it (a shard's dbs are numbered by
    /// [`Dbs::new`]).
    pub fn new() -> Db {
        let map = DashTable::new();
        let expires = DashTable::with_seed(map.seed());
        Db {
            map,
            expires,
            expire_cursor: 0,
            due: Vec::new(),
            cache_mode: false,
            evict_cursor: 0,
            over_budget: false,
            retired_map: Vec::new(),
            retired_expires: Vec::new(),
            merge_cursor_map: 0,
            merge_cursor_expires: 0,
            clock: 0,
            touch: true,
            age_cursor: 0,
            age_last_step_ms: 0,
            gens: None,
            keyspace_hits: 0,
            keyspace_misses: 0,
            hooks: WriteHooks::new(0),
        }
    }

    /// The db's counters for INFO stats.
    pub fn stats(&self) -> KeyStats {
        KeyStats {
            keyspace_hits: self.keyspace_hits,
            keyspace_misses: self.keyspace_misses,
            expired_keys: self.hooks.expired_keys,
            evicted_keys: self.hooks.evicted_keys,
        }
    }

    /// Zeroes the counters of [`Db::stats`] (CONFIG RESETSTAT).
    pub fn reset_stats(&mut self) {
        (self.keyspace_hits, self.keyspace_misses) = (0, 0);
        (self.hooks.expired_keys, self.hooks.evicted_keys) = (0, 0);
    }

    /// Cache mode (`--cache_mode`): with `on`, reads promote what they hit towards the
    /// front of its bucket (Dash bump-up: the ranking costs no memory per item), and
    /// while `may_grow` is false an insert into a full segment evicts the last item of
    /// the new key's home bucket instead of splitting the segment. Without cache mode
    /// the table always grows.
    ///
    /// With `over` (used memory over the eviction threshold), every insert of a new key
    /// first evicts up to [`EVICT_PER_INSERT`] items ([`Db::evict_some`]),
    /// so memory goes down while writes go on (the background step alone may not keep
    /// up with a fast writer).
    #[inline]
    pub fn set_cache_mode(&mut self, on: bool, may_grow: bool, over: bool) {
        self.cache_mode = on;
        self.over_budget = on && over;
        self.map.set_growth_allowed(!on || may_grow);
        // Full-size segments in cache mode: growing and rebuilding segments frees
        // blocks of one size class after another, and once the table stops growing at
        // the budget nothing reuses them (peak RSS 1.25 × maxmemory instead of 1.08 in
        // perf/hitrate.sh).
        self.map.set_small_segments(!on);
    }

    /// Cache mode's eviction step: evicts up to `max` items, each the least recently
    /// promoted item of the next bucket of a walk over the table that holds four or
    /// more (looking at no more than `4 * max` buckets per round); only when a round
    /// found nothing does the next accept buckets of two, then lone items. (In a bucket
    /// down to two items, both may be hot: with "two or more" first, 1 run in 6 of
    /// `cache_tests` lost a promoted key that way.) Returns how many were evicted.
    pub fn evict_some(&mut self, max: usize) -> usize {
        let mut evicted = 0;
        for min_items in [4, 2, 1] {
            for _ in 0..max * 4 {
                if evicted == max || self.map.is_empty() {
                    break;
                }
                self.hooks.pre_write_bucket(self.evict_cursor);
                let (item, next) = self.map.evict_at_min(self.evict_cursor, min_items);
                self.evict_cursor = next;
                if let Some((k, _)) = item {
                    self.forget_deadline(&k);
                    self.hooks.on_write(k.bytes(&mut [0; 20]), WriteKind::Evicted);
                    evicted += 1;
                }
            }
            if evicted > 0 {
                break;
            }
        }
        if evicted > 0 {
            self.shrink_if_empty();
        }
        evicted
    }

    /// Sets the clock new and touched keys are stamped with, and whether lookups touch
    /// (see [`Db::lookup`]). The shard context calls it before every command.
    #[inline(always)]
    pub fn set_access(&mut self, now_ms: i64, touch: bool) {
        self.clock = access::stamp(now_ms);
        self.touch = touch;
    }

    /// Removes the `expires` entry of a key object just taken out of `map`.
    fn forget_deadline(&mut self, k: &CompactKey) {
        if k.has_expire() {
            let h = self.expires.hash_key(k);
            if let Some(s) = self.expires.find_hashed(h, k) {
                self.expires.remove_slot(s);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of keys with a deadline.
    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    /// The deadline of the key at `slot` (hash `h`), 0 if none.
    #[inline(always)]
    fn deadline_at(&self, h: u64, slot: Slot) -> i64 {
        let k = self.map.slot(slot).0;
        if !k.has_expire() {
            return 0;
        }
        match self.expires.find_hashed(h, k) {
            Some(s) => *self.expires.slot(s).1,
            None => {
                debug_assert!(false, "FLAG_EXPIRE without an expires entry");
                0
            }
        }
    }

    /// The slot of `key` (hash `h`) and its deadline if it is live; a key whose
    /// deadline has passed is deleted (passive expiry) and reads as absent.
    #[inline]
    fn find_live(&mut self, h: u64, key: &[u8], now_ms: i64) -> Option<(Slot, i64)> {
        self.clock = access::stamp(now_ms);
        let slot = self.map.find_hashed(h, key)?;
        let deadline = self.deadline_at(h, slot);
        if deadline != 0 && deadline <= now_ms {
            self.hooks.pre_write(key);
            self.remove_slot(h, slot);
            self.hooks.on_write(key, WriteKind::Expired);
            return None;
        }
        Some((slot, deadline))
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

    /// Looks a key up for reading or writing, applying passive expiry, and touches it
    /// (stamps its access time) unless touching is off for this command
    /// ([`Db::set_access`]). Does not count hits or misses (see [`Db::lookup_read`]).
    #[inline]
    pub fn lookup(&mut self, key: &[u8], now_ms: i64) -> Option<EntryRef<'_>> {
        let h = self.map.hash_key(key);
        let (slot, expire_at_ms) = self.find_live(h, key, now_ms)?;
        Some(EntryRef { value: self.touched(slot), expire_at_ms })
    }

    /// The value at `slot`, its key stamped with the access time when touching is on
    /// (see [`touch_key`]).
    #[inline(always)]
    fn touched(&mut self, slot: Slot) -> &mut Value {
        let (k, v) = self.map.slot_key_mut(slot);
        touch_key(k, self.touch, self.clock);
        v
    }

    /// The write lookup (Redis's `lookupKeyWrite` + `checkType`): like [`Db::lookup`],
    /// and checks the value's type: `Ok(None)` if the key is missing, `Err(WrongType)`
    /// if it holds another type. The found value can be changed in place through the
    /// returned guard, which reports the change to the write hooks ([`EntryMut`]).
    #[inline]
    pub fn lookup_typed<'a>(&'a mut self, key: &'a [u8], now_ms: i64, ty: ObjType) -> OpResult<Option<EntryMut<'a>>> {
        let h = self.map.hash_key(key);
        let Some((slot, expire_at_ms)) = self.find_live(h, key, now_ms) else { return Ok(None) };
        let (k, value) = self.map.slot_key_mut(slot);
        // Touched before the type check, as Redis's lookupKeyWrite does.
        touch_key(k, self.touch, self.clock);
        if value.obj_type() != ty {
            return Err(OpStatus::WrongType);
        }
        Ok(Some(EntryMut { value, expire_at_ms, key, hooks: &mut self.hooks, modified: false }))
    }

    /// [`Db::lookup_read`] that checks the value's type (Redis's `lookupKeyRead` +
    /// `checkType`; the hit or miss is counted either way, as Redis does).
    #[inline]
    pub fn lookup_read_typed(&mut self, key: &[u8], now_ms: i64, ty: ObjType) -> OpResult<Option<EntryRef<'_>>> {
        match self.lookup_read(key, now_ms) {
            Some(e) if e.value.obj_type() != ty => Err(OpStatus::WrongType),
            found => Ok(found),
        }
    }

    /// Like [`Db::lookup`], and counts a keyspace hit or miss. In cache mode a touched
    /// hit is promoted in its bucket (the eviction ranking).
    #[inline]
    pub fn lookup_read(&mut self, key: &[u8], now_ms: i64) -> Option<EntryRef<'_>> {
        let h = self.map.hash_key(key);
        match self.find_live(h, key, now_ms) {
            Some((slot, expire_at_ms)) => {
                self.keyspace_hits += 1;
                let slot = if self.cache_mode && self.touch { self.map.bump_up_slot(slot) } else { slot };
                Some(EntryRef { value: self.touched(slot), expire_at_ms })
            }
            None => {
                self.keyspace_misses += 1;
                None
            }
        }
    }

    /// Seconds since the key was last touched (OBJECT IDLETIME; `crate::access` has the
    /// precision), without touching it; None if absent (after passive expiry).
    pub fn idle_seconds(&mut self, key: &[u8], now_ms: i64) -> Option<u64> {
        let h = self.map.hash_key(key);
        let (slot, _) = self.find_live(h, key, now_ms)?;
        Some(self.idle_of(self.map.slot(slot).0.access(), now_ms))
    }

    /// One step of the walk that ages access stamps (`crate::access`): visits the
    /// share of the keyspace due since the last step, so that every key is visited
    /// once per [`AGE_PASS_MS`] (at most [`AGE_STEP_MAX_KEYS`] keys per step): a recent
    /// stamp idle for a minute or more joins the pass's generation, a stamp of a
    /// retired generation moves to the live one. Called from the thread's housekeeping
    /// slice ([`Db::free_retired`]).
    pub fn age_step(&mut self, now_ms: i64) {
        if self.map.is_empty() {
            self.age_cursor = 0;
            self.age_last_step_ms = now_ms;
            return;
        }
        let since_ms = (now_ms - self.age_last_step_ms).clamp(0, AGE_PASS_MS);
        self.age_last_step_ms = now_ms;
        let want = ((self.map.len() as i64 * since_ms / AGE_PASS_MS) as usize + 1).min(AGE_STEP_MAX_KEYS);
        let gens = self.gens.get_or_insert_with(Generations::new);
        if self.age_cursor == 0 {
            gens.begin_pass(now_ms);
        }
        let stamp_now = access::stamp(now_ms);
        let mut visited = 0;
        let mut cursor = self.age_cursor;
        for _ in 0..want + 16 {
            cursor = self.map.traverse_keys_mut(cursor, |k| {
                visited += 1;
                if let Some(s) = gens.visit(k.access(), stamp_now, now_ms) {
                    k.set_access(s);
                }
            });
            if cursor == 0 || visited >= want {
                break;
            }
        }
        self.age_cursor = cursor;
    }

    /// Idle seconds an access stamp of this db stands for at `now_ms`.
    fn idle_of(&self, stamp: u8, now_ms: i64) -> u64 {
        match (&self.gens, stamp >= access::AGED) {
            (_, false) => access::recent_idle_s(access::stamp(now_ms), stamp),
            (Some(g), true) => g.aged_idle_s(stamp, now_ms),
            (None, true) => {
                debug_assert!(false, "aged stamp without generations");
                0
            }
        }
    }

    /// True if the key exists (after passive expiry).
    pub fn contains(&mut self, key: &[u8], now_ms: i64) -> bool {
        let h = self.map.hash_key(key);
        self.find_live(h, key, now_ms).is_some()
    }

    /// Sets the deadline of the key at `slot` (hash `h`, bytes `key`): adds, changes or
    /// (with 0) removes its `expires` entry and flag.
    fn put_deadline(&mut self, h: u64, slot: Slot, key: &[u8], expire_at_ms: i64) {
        let (k, _) = self.map.slot_key_mut(slot);
        let had = k.has_expire();
        k.set_expire_flag(expire_at_ms != 0);
        match (had, expire_at_ms != 0) {
            (false, false) => {}
            (false, true) => {
                self.expires.insert_unique_hashed(h, CompactObj::key(key), expire_at_ms);
            }
            (true, true) => match self.expires.find_hashed(h, key) {
                Some(s) => *self.expires.slot_mut(s).1 = expire_at_ms,
                None => {
                    self.expires.insert_unique_hashed(h, CompactObj::key(key), expire_at_ms);
                }
            },
            (true, false) => {
                if let Some(s) = self.expires.find_hashed(h, key) {
                    self.expires.remove_slot(s);
                    self.shrink_if_empty();
                }
            }
        }
    }

    /// Inserts a key known to be absent (hash `h`). The caller fires the key's own
    /// hooks; the items evicted to make room are reported here.
    fn insert_new(&mut self, h: u64, key: &[u8], value: Value, expire_at_ms: i64) {
        if self.over_budget {
            self.evict_some(EVICT_PER_INSERT);
        }
        let mut k = CompactObj::key(key);
        k.set_access(self.clock);
        if expire_at_ms != 0 {
            k.set_expire_flag(true);
            self.expires.insert_unique_hashed(h, CompactObj::key(key), expire_at_ms);
        }
        if self.map.growth_allowed() {
            self.map.insert_unique_hashed(h, k, value);
            return;
        }
        let mut victim = None;
        self.map.insert_unique_or_evict_hashed(h, k, value, |vk, _| victim = Some(vk));
        if let Some(vk) = victim {
            self.forget_deadline(&vk);
            self.hooks.on_write(vk.bytes(&mut [0; 20]), WriteKind::Evicted);
        }
    }

    /// Stores a value with a deadline (0 = none), replacing any previous entry. One
    /// hash and one probe; a new key is inserted without probing again.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at_ms: i64) {
        self.hooks.pre_write(key);
        let h = self.map.hash_key(key);
        match self.map.find_hashed(h, key) {
            Some(slot) => {
                let (k, v) = self.map.slot_key_mut(slot);
                *v = value;
                k.set_access(self.clock);
                self.put_deadline(h, slot, key, expire_at_ms);
            }
            None => self.insert_new(h, key, value, expire_at_ms),
        }
        self.hooks.on_write(key, WriteKind::Set);
    }

    /// Stores a string value with a deadline (0 = none), like `set(key,
    /// Value::from_bytes(bytes), ..)` but reusing the old value's buffer when it fits,
    /// which saves an allocation and a free on overwrites (the SET hot path).
    #[inline]
    pub fn set_bytes(&mut self, key: &[u8], bytes: &[u8], expire_at_ms: i64) {
        self.hooks.pre_write(key);
        let h = self.map.hash_key(key);
        match self.map.find_hashed(h, key) {
            Some(slot) => {
                let (k, v) = self.map.slot_key_mut(slot);
                v.assign_bytes(bytes);
                if k.access() != self.clock {
                    k.set_access(self.clock);
                }
                if k.has_expire() || expire_at_ms != 0 {
                    self.put_deadline(h, slot, key, expire_at_ms);
                }
            }
            None => self.insert_new(h, key, Value::from_bytes(bytes), expire_at_ms),
        }
        self.hooks.on_write(key, WriteKind::Set);
    }

    /// Replaces the value and keeps the deadline (SET KEEPTTL, APPEND, INCR...).
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value) {
        self.hooks.pre_write(key);
        let h = self.map.hash_key(key);
        match self.map.find_hashed(h, key) {
            Some(slot) => {
                let (k, v) = self.map.slot_key_mut(slot);
                *v = value;
                k.set_access(self.clock);
            }
            None => self.insert_new(h, key, value, 0),
        }
        self.hooks.on_write(key, WriteKind::Set);
    }

    /// Changes the deadline of an existing key (0 removes it). Returns false if absent.
    /// Removing the deadline of a key that has none changes nothing and is no write.
    pub fn set_expire(&mut self, key: &[u8], expire_at_ms: i64) -> bool {
        let h = self.map.hash_key(key);
        let Some(slot) = self.map.find_hashed(h, key) else { return false };
        if expire_at_ms == 0 && !self.map.slot(slot).0.has_expire() {
            return true;
        }
        self.hooks.pre_write(key);
        self.put_deadline(h, slot, key, expire_at_ms);
        self.hooks.on_write(key, WriteKind::Expire);
        true
    }

    /// Gives memory back after mass deletes, part one: a table that became empty is
    /// replaced by a fresh one (same seed, so a SCAN cursor keeps its meaning: the
    /// traverse order depends only on the hashes), its segments retired. Part two, a
    /// table that became sparse but not empty, merges its segments a few at a time in
    /// [`Db::free_retired`].
    ///
    /// The old segments are not freed here: freeing a million keys' worth (64 MB) took
    /// 7 ms in one go. They wait in `retired_*` for [`Db::free_retired`].
    #[inline]
    fn shrink_if_empty(&mut self) {
        if self.map.is_empty() && self.map.segment_count() > 0 {
            let (t, old) = rebuilt(&mut self.map);
            self.map = t;
            self.merge_cursor_map = 0;
            self.retired_map.push(old);
        }
        if self.expires.is_empty() && self.expires.segment_count() > 0 {
            let (t, old) = rebuilt(&mut self.expires);
            self.expires = t;
            self.merge_cursor_expires = 0;
            self.retired_expires.push(old);
        }
    }

    /// Part two of giving memory back (see [`Db::shrink_if_empty`]): in a table under
    /// a quarter full, up to [`MERGES_PER_CALL`] merge attempts of buddy segments,
    /// looking at up to 64 segments (`DashTable::merge_step`: at most 420 items placed
    /// per merge).
    fn merge_sparse(&mut self) {
        fn loose<V>(t: &DashTable<CompactKey, V>) -> bool {
            t.segment_count() > 1 && t.len() * 4 < t.capacity()
        }
        if loose(&self.map) {
            (self.merge_cursor_map, _) = self.map.merge_step(self.merge_cursor_map, 64, MERGES_PER_CALL);
        }
        if loose(&self.expires) {
            (self.merge_cursor_expires, _) = self.expires.merge_step(self.merge_cursor_expires, 64, MERGES_PER_CALL);
        }
    }

    /// Frees up to `n` retired segments (each ~28 KB), after shrinking a table that is
    /// due (see [`Db::shrink_if_empty`]: one per call); returns true if segments are
    /// left. The thread calls it in every expiry slice.
    pub fn free_retired(&mut self, mut n: usize) -> bool {
        if !self.map.is_empty() {
            // The thread's per-slice housekeeping of each db: stamps age here too.
            self.age_step(crate::shard::unix_ms());
        }
        self.shrink_if_empty();
        self.merge_sparse();
        while n > 0 {
            if let Some(r) = self.retired_map.last_mut() {
                let before = r.len();
                let left = r.free_some(n);
                n -= before - left;
                if left == 0 {
                    self.retired_map.pop();
                }
            } else if let Some(r) = self.retired_expires.last_mut() {
                let before = r.len();
                let left = r.free_some(n);
                n -= before - left;
                if left == 0 {
                    self.retired_expires.pop();
                }
            } else {
                return false;
            }
        }
        !(self.retired_map.is_empty() && self.retired_expires.is_empty())
    }

    /// Removes the item at `slot` (hash `h`) and its deadline. The caller fires the
    /// hooks.
    fn remove_slot(&mut self, h: u64, slot: Slot) -> Entry {
        let (k, value) = self.map.remove_slot(slot);
        let mut expire_at_ms = 0;
        if k.has_expire()
            && let Some(s) = self.expires.find_hashed(h, &k)
        {
            expire_at_ms = self.expires.remove_slot(s).1;
        }
        self.shrink_if_empty();
        Entry { value, expire_at_ms }
    }

    /// Deletes a key (no expiry check; a [`WriteKind::Delete`]). Returns the removed
    /// entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.remove_as(key, WriteKind::Delete)
    }

    /// Removes a key, reporting it to the hooks as `kind`.
    fn remove_as(&mut self, key: &[u8], kind: WriteKind) -> Option<Entry> {
        let h = self.map.hash_key(key);
        let slot = self.map.find_hashed(h, key)?;
        self.hooks.pre_write(key);
        let e = self.remove_slot(h, slot);
        self.hooks.on_write(key, kind);
        Some(e)
    }

    /// Removes everything and frees the tables themselves (keeping the hash seed), as
    /// Redis's FLUSHALL does (a `clear()` that kept the capacity would leave 8 MB in
    /// use after 100k keys). A [`WriteKind::Flush`] if the db had keys.
    pub fn clear(&mut self) {
        let had_keys = !self.map.is_empty();
        if had_keys {
            self.hooks.pre_write_db(WriteKind::Flush);
        }
        self.map.clear();
        self.expires.clear();
        self.expire_cursor = 0;
        if had_keys {
            self.hooks.on_write_db(WriteKind::Flush);
        }
    }

    /// The deadline of a key object found in `map` (0 if none).
    fn deadline_of(&self, k: &CompactKey) -> i64 {
        if !k.has_expire() {
            return 0;
        }
        self.expires.get(k).copied().unwrap_or(0)
    }

    /// Visits every live key (expired-but-not-yet-removed keys are skipped).
    pub fn for_each_key(&self, now_ms: i64, mut f: impl FnMut(&[u8], &Value)) {
        let mut buf = [0u8; 20];
        for (k, v) in &self.map {
            let d = self.deadline_of(k);
            if d == 0 || d > now_ms {
                f(k.bytes(&mut buf), v);
            }
        }
    }

    /// Some live key, or None if the db has none: the Dash table's random entry
    /// (roughly uniform). An expired pick is deleted and another drawn, up to
    /// `RANDOM_KEY_TRIES` times; then the first live key in storage order (a db of
    /// mostly expired keys), so an all-expired db answers None.
    pub fn random_key(&mut self, now_ms: i64, seed: u64) -> Option<Key> {
        const RANDOM_KEY_TRIES: u64 = 16;
        let live = |db: &Db, k: &CompactKey| {
            let d = db.deadline_of(k);
            d == 0 || d > now_ms
        };
        for i in 0..RANDOM_KEY_TRIES {
            let (k, _) = self.map.random_entry(seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))?;
            let key: Key = k.to_cow().into();
            if live(self, k) {
                return Some(key);
            }
            self.remove_as(&key, WriteKind::Expired);
        }
        self.map.keys().find(|k| live(self, k)).map(|k| k.to_cow().into())
    }

    /// One step of active expiry: walks the expire table from where the last step
    /// stopped, looking at whole buckets until at least `sample` keys with a deadline
    /// were seen (or the walk wrapped), and removes those whose deadline has passed.
    /// The caller adapts: a step that removed a large share of what it saw says more
    /// keys are probably due (see `runtime::Worker::on_tick`).
    pub fn expire_step(&mut self, now_ms: i64, sample: usize) -> ExpireStep {
        let mut step = ExpireStep::default();
        if self.expires.is_empty() {
            self.expire_cursor = 0;
            step.wrapped = true;
            return step;
        }
        let mut due = std::mem::take(&mut self.due);
        let mut cursor = self.expire_cursor;
        // Each traverse call skips at most 256 empty buckets: a sparse table costs a
        // bounded walk per step, not a walk to the end.
        for _ in 0..EXPIRE_STEP_MAX_CALLS {
            if step.sampled >= sample {
                break;
            }
            cursor = self.expires.traverse(cursor, |k, &d| {
                step.sampled += 1;
                if d <= now_ms {
                    due.push(k.clone());
                }
            });
            if cursor == 0 {
                step.wrapped = true;
                break;
            }
        }
        self.expire_cursor = cursor;
        let mut buf = [0u8; 20];
        for k in due.drain(..) {
            let key = k.bytes(&mut buf);
            self.hooks.pre_write(key);
            let h = self.map.hash_key(&k);
            if let Some(s) = self.expires.find_hashed(h, &k) {
                self.expires.remove_slot(s);
            }
            if let Some(s) = self.map.find_hashed(h, &k) {
                self.map.remove_slot(s);
            }
            self.hooks.on_write(key, WriteKind::Expired);
            step.removed += 1;
        }
        self.due = due;
        if step.removed > 0 {
            self.shrink_if_empty();
        }
        step
    }

    /// Moves every key out and leaves this db empty, keeping its counters and hooks
    /// (FLUSHDB/FLUSHALL ASYNC: the caller drops the result elsewhere). A
    /// [`WriteKind::Flush`] if the db had keys.
    pub fn take_data(&mut self) -> TakenData {
        let had_keys = !self.map.is_empty();
        if had_keys {
            self.hooks.pre_write_db(WriteKind::Flush);
        }
        // The new tables keep the seed, so a SCAN in progress keeps its order.
        let seed = self.map.seed();
        let map = std::mem::replace(&mut self.map, DashTable::with_seed(seed));
        let expires = std::mem::replace(&mut self.expires, DashTable::with_seed(seed));
        self.expire_cursor = 0;
        if had_keys {
            self.hooks.on_write_db(WriteKind::Flush);
        }
        TakenData { _map: map, _expires: expires }
    }

    /// One SCAN step over this db: walks the Dash table's traverse cursor from
    /// `cursor` (0 = start), a logical bucket at a time, until at least `count` keys
    /// were visited (expired keys included; a bucket is never split between steps, so
    /// a step may visit up to a bucket's worth more) or `count` traverse calls found
    /// nothing (each skips at most 256 empty buckets, which bounds the work on a
    /// sparse table). `f` gets each key, its value and its deadline (0 = none).
    /// Returns the cursor to continue from, 0 when the db is done;
    /// returned cursors only use [`SCAN_POSITION_BITS`] low bits.
    ///
    /// Guarantee (from the Dash traverse order, which depends only on key hashes):
    /// a key present for the whole scan is visited exactly once, whatever inserts,
    /// deletes and segment splits happen between steps (FLUSHDB included: the table
    /// keeps its seed); any key at most once. Only SWAPDB puts another table (another
    /// seed, another order) under the cursor, after which keys may come back once more.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &Value, i64)) -> u64 {
        let count = count.max(1);
        let mut visited = 0usize;
        let mut cursor = cursor;
        let mut buf = [0u8; 20];
        for _ in 0..count {
            cursor = self.map.traverse(cursor, |k, v| {
                visited += 1;
                f(k.bytes(&mut buf), v, self.deadline_of(k))
            });
            if cursor == 0 || visited >= count {
                break;
            }
        }
        cursor
    }

    /// MEMORY USAGE of a key: the bytes that are its own — the allocator blocks of its
    /// key and value strings when they are on the heap, and its share of the table:
    /// [`MAP_BYTES_PER_KEY`] (its 32-byte slot plus the metadata and free slots that
    /// go with a slot at the table's design fill), and for a key with a deadline its
    /// `expires` entry ([`EXPIRE_BYTES_PER_KEY`] and a second copy of a heap key). A
    /// function of the key and value alone: the same on every call, whatever else the
    /// table holds. Summed over the keys it is close to the keyspace's memory (within
    /// the table's fill swings: 0.87 ± a few points, see DESIGN.md). None if absent.
    pub fn memory_usage(&self, key: &[u8]) -> Option<usize> {
        let h = self.map.hash_key(key);
        let slot = self.map.find_hashed(h, key)?;
        let (k, v) = self.map.slot(slot);
        let heap = |o: &CompactObj| match o.heap_bytes() {
            0 => 0,
            n => crate::alloc::block_size(n),
        };
        let mut n = MAP_BYTES_PER_KEY + heap(k) + heap(v);
        if k.has_expire() {
            n += EXPIRE_BYTES_PER_KEY + heap(k);
        }
        Some(n)
    }

    /// Approximate bytes used by keys and values: the tables themselves (segments with
    /// their free slots, directory) and the heap parts of keys and values.
    pub fn approx_bytes(&self) -> usize {
        let heap: usize = self.map.iter().map(|(k, v)| k.heap_bytes() + v.heap_bytes()).sum::<usize>()
            + self.expires.keys().map(|k| k.heap_bytes()).sum::<usize>();
        self.map.mem_usage_bytes() + self.expires.mem_usage_bytes() + heap
    }
}

impl Default for Db {
    fn default() -> Db {
        Db::new()
    }
}

/// A db's former keys, taken out by [`Db::take_data`]: only to be dropped (on another
/// thread, for a large db), never put back.
pub struct TakenData {
    // Held only to be dropped.
    _map: DashTable<CompactKey, Value>,
    _expires: DashTable<CompactKey, i64>,
}

/// Stamps a key being looked up with the access time `clock` when `touch` is on.
/// The stamp is written only when it changes (once a second at most), so a hot key
/// read in a loop does not dirty its cache line for it.
#[inline(always)]
fn touch_key(k: &mut CompactKey, touch: bool, clock: u8) {
    if touch && k.access() != clock {
        k.set_access(clock);
    }
}

/// A table's bytes as allocated (each segment's allocation rounded to its allocator
/// block, see `alloc::block_size`).
#[cfg(test)]
fn table_bytes<V>(t: &DashTable<CompactKey, V>) -> usize {
    t.segment_allocations().map(|(bytes, n)| n * (crate::alloc::block_size(bytes) - bytes)).sum::<usize>()
        + t.mem_usage_bytes()
}

/// Table bytes MEMORY USAGE counts per key ([`Db::memory_usage`]): a 32-byte slot
/// plus ~3 bytes of bucket metadata per slot (a segment's 1,728-byte header over its
/// 540–840 slots: 2.1–3.2 B), divided by the design fill 0.87 that growing segments
/// keep (`dash` module doc, "Segment sizes"): (32 + 3) / 0.87 = 40.
pub const MAP_BYTES_PER_KEY: usize = (32 + 3) * 100 / 87;

/// Bytes MEMORY USAGE adds for a key's deadline: its `expires` slot (a 16-byte key
/// object and an 8-byte deadline) with the same metadata and fill: (24 + 3) / 0.87 = 31.
pub const EXPIRE_BYTES_PER_KEY: usize = (24 + 3) * 100 / 87;

const _: () = assert!(MAP_BYTES_PER_KEY == 40 && EXPIRE_BYTES_PER_KEY == 31);

/// Most traverse calls one [`Db::expire_step`] makes (each looks at up to 256 empty
/// buckets).
pub const EXPIRE_STEP_MAX_CALLS: usize = 16;

/// Items a new key's insert evicts from its bucket while a cache-mode db is over its
/// memory budget (see [`Db::set_cache_mode`]).
pub const EVICT_PER_INSERT: usize = 2;

/// Most segment merge attempts one [`Db::free_retired`] call makes per table (each
/// places at most 420 items: ~10-40 µs).
pub const MERGES_PER_CALL: usize = 2;

/// A new table with `t`'s seed and growth setting holding `t`'s items (moved), and
/// `t`'s emptied segments, still to be freed.
fn rebuilt<V>(t: &mut DashTable<CompactKey, V>) -> (DashTable<CompactKey, V>, Retired<CompactKey, V>) {
    let mut fresh = DashTable::with_seed(t.seed());
    let growth = t.growth_allowed();
    fresh.set_small_segments(t.small_segments());
    let old = t.drain_into(|k, v| {
        let h = fresh.hash_key(&k);
        fresh.insert_unique_hashed(h, k, v);
    });
    fresh.set_growth_allowed(growth);
    (fresh, old)
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
    use crate::dash::{DashHash, SLOTS};

    // A key whose deadline has passed is gone on the next lookup and counted as expired.
    #[test]
    fn passive_expiry() {
        let mut db = Db::default();
        db.set(b"k", Value::from_bytes(b"v"), 1000);
        assert!(db.lookup(b"k", 999).is_some());
        assert!(db.lookup(b"k", 1000).is_none());
        assert_eq!(db.stats().expired_keys, 1);
        assert_eq!(db.expires_len(), 0);
    }

    // The typed lookups (Redis lookupKey* + checkType): a missing key is Ok(None), a
    // string is found as a string, a value of another type (the test-only container
    // kind) is WrongType; the read variant counts hits and misses either way; MEMORY
    // USAGE and approx_bytes count the container's own bytes, and deleting it frees it.
    #[test]
    fn typed_lookup_and_container_values() {
        use crate::container::Container;
        let mut db = Db::default();
        db.set(b"s", Value::from_bytes(b"text"), 0);
        db.set(b"c", Value::from_container(Box::new(Container::Probe(vec![7; 100]))), 0);
        assert!(matches!(db.lookup_typed(b"none", 0, ObjType::String), Ok(None)));
        assert!(
            db.lookup_typed(b"s", 0, ObjType::String).expect("a string").is_some_and(|e| e.value.eq_bytes(b"text"))
        );
        assert!(matches!(db.lookup_typed(b"c", 0, ObjType::String), Err(OpStatus::WrongType)));
        assert!(db.lookup_typed(b"c", 0, ObjType::Probe).expect("a probe").is_some());
        assert!(matches!(db.lookup_read_typed(b"c", 0, ObjType::String), Err(OpStatus::WrongType)));
        assert!(matches!(db.lookup_read_typed(b"none", 0, ObjType::String), Ok(None)));
        assert_eq!((db.stats().keyspace_hits, db.stats().keyspace_misses), (1, 1));
        let string_usage = db.memory_usage(b"s").expect("exists");
        assert!(db.memory_usage(b"c").expect("exists") >= string_usage + 100);
        assert!(db.approx_bytes() >= 100 + std::mem::size_of::<Container>());
        let copy = db.lookup(b"c", 0).expect("exists").to_entry();
        assert_eq!(copy.value.type_name(), "probe");
        assert!(db.remove(b"c").is_some());
        assert!(db.lookup(b"c", 0).is_none());
    }

    // Active expiry removes due keys only, and steps sample about what they are asked;
    // a key without a deadline is never looked at.
    #[test]
    fn active_expiry_steps() {
        let mut db = Db::default();
        for i in 0..1000i64 {
            db.set(format!("k{i}").as_bytes(), Value::from_int(i), if i % 2 == 0 { 100 } else { 200 });
        }
        db.set(b"forever", Value::from_int(1), 0);
        assert_eq!(db.expires_len(), 1000);
        let step = db.expire_step(50, 64);
        assert_eq!(step.removed, 0);
        assert!((64..64 + 3 * crate::dash::SLOTS).contains(&step.sampled), "{step:?}");
        let mut removed = 0;
        let mut wraps = 0;
        while wraps < 2 {
            let step = db.expire_step(150, 64);
            removed += step.removed;
            wraps += step.wrapped as usize;
        }
        assert_eq!(removed, 500);
        assert_eq!((db.len(), db.expires_len()), (501, 500));
        assert_eq!(db.stats().expired_keys, 500);
        while db.expire_step(10_000, 1000).removed > 0 {}
        assert_eq!((db.len(), db.expires_len()), (1, 0));
        assert!(db.lookup(b"forever", 10_000).is_some());
        assert_eq!(db.expire_step(10_000, 64), ExpireStep { sampled: 0, removed: 0, wrapped: true });
    }

    // Deadlines cost nothing for keys without one; setting, changing and clearing a
    // deadline keeps the expire table and the key's flag in step.
    #[test]
    fn deadlines_only_for_keys_with_one() {
        let mut db = Db::default();
        db.set(b"k", Value::from_int(1), 50);
        assert_eq!(db.lookup(b"k", 0).unwrap().expire_at_ms, 50);
        db.set_expire(b"k", 70);
        assert_eq!(db.lookup(b"k", 0).unwrap().expire_at_ms, 70);
        assert_eq!(db.expires_len(), 1);
        db.set_expire(b"k", 0);
        assert_eq!(db.expires_len(), 0);
        assert_eq!(db.expire_step(100, 10).removed, 0);
        assert_eq!(db.lookup(b"k", 100).unwrap().expire_at_ms, 0);
        // SET with and without a TTL on an existing key.
        db.set_bytes(b"k", b"v", 500);
        assert_eq!((db.expires_len(), db.lookup(b"k", 0).unwrap().expire_at_ms), (1, 500));
        db.set_bytes(b"k", b"w", 0);
        assert_eq!((db.expires_len(), db.lookup(b"k", 0).unwrap().expire_at_ms), (0, 0));
        db.set(b"k", Value::from_int(2), 9);
        db.set_keep_ttl(b"k", Value::from_int(3));
        assert_eq!(db.lookup(b"k", 0).unwrap().expire_at_ms, 9);
        assert_eq!(db.remove(b"k").unwrap(), Entry { value: Value::from_int(3), expire_at_ms: 9 });
        assert_eq!((db.len(), db.expires_len()), (0, 0));
    }

    // Emptying a table frees its segments: memory goes back to an empty db's.
    #[test]
    fn empty_tables_are_freed() {
        let mut db = Db::default();
        let empty = db.approx_bytes();
        for i in 0..20_000i64 {
            db.set(format!("key:{i:012}").as_bytes(), Value::from_bytes(&[b'x'; 32]), 10);
        }
        assert!(db.approx_bytes() > 20_000 * 32);
        while db.expire_step(100, 512).removed > 0 {}
        assert_eq!(db.len(), 0);
        while db.free_retired(8) {}
        assert_eq!(db.approx_bytes(), empty);
        for i in 0..1000i64 {
            db.set(format!("k{i}").as_bytes(), Value::from_int(i), 0);
        }
        for i in 0..1000i64 {
            db.remove(format!("k{i}").as_bytes());
        }
        assert_eq!(db.approx_bytes(), empty);
        // A sparse table shrinks too: one key left of 20k merges back to one segment.
        db.set(b"stay", Value::from_int(1), 0);
        let one = db.approx_bytes();
        for i in 0..20_000i64 {
            db.set(format!("key:{i:012}").as_bytes(), Value::from_int(i), 10);
        }
        while db.expire_step(100, 512).removed > 0 {}
        settle(&mut db);
        assert_eq!(db.map.segment_count(), 1);
        assert!(db.approx_bytes() <= one, "{} > {one}", db.approx_bytes());
        assert_eq!(db.lookup(b"stay", 100).map(|e| e.value.clone()), Some(Value::from_int(1)));
    }

    /// Runs the background shrinking (retired segments, merges) until the tables stop
    /// changing, as the expiry slices would.
    fn settle(db: &mut Db) {
        loop {
            let before = (db.map.segment_count(), db.expires.segment_count());
            for _ in 0..1000 {
                db.free_retired(8);
            }
            if (db.map.segment_count(), db.expires.segment_count()) == before {
                return;
            }
        }
    }

    /// Every key of a full scan of `db` in steps of `count`, calling `between` after
    /// each step; returns the keys in visit order and the number of steps.
    fn full_scan(db: &mut Db, count: usize, mut between: impl FnMut(&mut Db, usize)) -> (Vec<Vec<u8>>, usize) {
        let mut seen = Vec::new();
        let mut cursor = 0;
        let mut steps = 0;
        loop {
            let mut batch = Vec::new();
            cursor = db.scan(cursor, count, |k, _, _| batch.push(k.to_vec()));
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
            db.set(format!("k{i}").as_bytes(), Value::from_int(i), 0);
        }
        let mut cursor = 0;
        let mut sizes = Vec::new();
        loop {
            let mut n = 0;
            cursor = db.scan(cursor, 20, |_, _, _| n += 1);
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
            db.set(format!("k{i}").as_bytes(), Value::from_int(i), 0);
        }
        let segs_before = db.map.segment_count();
        let (seen, steps) = full_scan(&mut db, 5, |db, step| {
            for j in 0..30 {
                db.set(format!("new{step}:{j}").as_bytes(), Value::from_int(0), 0);
            }
            for j in 0..20 {
                db.remove(format!("new{}:{j}", step / 2).as_bytes());
            }
        });
        assert!(
            db.map.segment_count() >= 4 * segs_before,
            "splits happened: {} -> {}",
            segs_before,
            db.map.segment_count()
        );
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
        assert_eq!(db.scan(0, 10, |_, _, _| panic!("empty")), 0);
        db.set(b"a", Value::from_int(1), 0);
        let mut n = 0;
        assert_eq!(db.scan(0, 10, |_, _, _| n += 1), 0);
        assert_eq!(n, 1);
        assert_eq!(db.scan(63 << crate::dash::CURSOR_BUCKET_SHIFT, 10, |_, _, _| panic!("past the end")), 0);
        for i in 0..100_000 {
            db.set(format!("k{i}").as_bytes(), Value::from_int(i), 0);
        }
        for i in 0..100_000 {
            db.remove(format!("k{i}").as_bytes());
        }
        // The sparse table merged back to one segment, so the scan is short.
        settle(&mut db);
        let (seen, steps) = full_scan(&mut db, 1, |_, _| {});
        assert_eq!(seen, vec![b"a".to_vec()]);
        assert_eq!(db.map.segment_count(), 1);
        assert!(steps <= 2, "{steps}");
        // A big sparse table (no shrinking while many keys stay): a step gives up after
        // a bounded number of empty buckets.
        for i in 0..200_000 {
            db.set(format!("k{i}").as_bytes(), Value::from_int(i), 0);
        }
        for i in 0..200_000 {
            if i % 40 != 0 {
                db.remove(format!("k{i}").as_bytes());
            }
        }
        let (seen, steps) = full_scan(&mut db, 1, |_, _| {});
        assert_eq!(seen.len(), 5001);
        assert!(steps > 1);
    }

    // Passive expiry with one probe: an expired key found by lookup is deleted along
    // with its deadline; RANDOMKEY deletes expired picks and answers None when all are.
    #[test]
    fn random_key_skips_expired() {
        let mut db = Db::default();
        assert_eq!(db.random_key(0, 1), None);
        for i in 0..100 {
            db.set(format!("t{i}").as_bytes(), Value::from_int(i), 10);
        }
        db.set(b"live", Value::from_int(1), 0);
        assert!(db.random_key(5, 7).is_some());
        // Picks that land on an expired key remove and count it. One call's first pick
        // is "live" for 1 table seed in ~100, so several calls (failing all: ~1e-16).
        for seed in 7..15 {
            assert_eq!(db.random_key(20, seed).as_deref(), Some(&b"live"[..]));
        }
        assert!(db.stats().expired_keys > 0);
        db.remove(b"live");
        assert_eq!(db.random_key(20, 9), None);
        let mut picks = std::collections::HashSet::new();
        let mut db = Db::default();
        for i in 0..50 {
            db.set(format!("k{i}").as_bytes(), Value::from_int(i), 0);
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
            db.set(format!("k{i}").as_bytes(), Value::from_int(i), 0);
        }
        let keys: Vec<Vec<u8>> = (0..40).map(|i| format!("k{}", i * 7).into_bytes()).collect();
        let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        db.prefetch(&refs);
        db.prefetch(&[b"absent"]);
        assert_eq!(db.len(), 2000);
        assert_eq!(db.lookup(b"k7", 0).map(|e| e.value.clone()), Some(Value::from_int(7)));
    }

    // MEMORY USAGE is the key's own bytes: the same whatever else the table holds, and
    // its per-key table share is within 15% of what the table really costs per key
    // at sizes between splits waves.
    #[test]
    fn memory_usage_is_per_key_and_stable() {
        let mut db = Db::new();
        db.set(b"foo", Value::from_bytes(b"12345678x"), 0);
        let alone = db.memory_usage(b"foo").unwrap();
        assert_eq!(alone, MAP_BYTES_PER_KEY);
        assert_eq!(db.memory_usage(b"nope"), None);
        let long_key = [b'k'; 40];
        db.set(&long_key, Value::from_bytes(&[b'v'; 1024]), 0);
        assert_eq!(db.memory_usage(&long_key), Some(MAP_BYTES_PER_KEY + crate::alloc::block_size(40) + 1024));
        db.set(b"ttl", Value::from_int(7), i64::MAX);
        assert_eq!(db.memory_usage(b"ttl"), Some(MAP_BYTES_PER_KEY + EXPIRE_BYTES_PER_KEY));
        for n in [100_000usize, 300_000] {
            while db.len() < n {
                let i = db.len();
                db.set(format!("key:{i}").as_bytes(), Value::from_bytes(b"v"), 0);
            }
            assert_eq!(db.memory_usage(b"foo"), Some(alone));
            let per_key = table_bytes(&db.map) as f64 / db.len() as f64;
            let err = (per_key - MAP_BYTES_PER_KEY as f64).abs() / per_key;
            assert!(err < 0.15, "{n} keys: table {per_key:.1} B/key vs {MAP_BYTES_PER_KEY}");
        }
    }

    // Lookups touch (stamp) the key unless touching is off; new and overwritten keys
    // get the current stamp; idle_seconds reads without touching.
    #[test]
    fn lookups_touch_unless_told_not_to() {
        let mut db = Db::new();
        let t0 = 1_000_000_000_000i64; // a whole second
        db.set_access(t0, true);
        db.set(b"a", Value::from_bytes(b"1"), 0);
        assert_eq!(db.idle_seconds(b"a", t0 + 5_500), Some(5));
        assert_eq!(db.idle_seconds(b"a", t0 + 6_000), Some(6), "idle_seconds does not touch");
        db.set_access(t0 + 7_000, false);
        assert!(db.lookup_read(b"a", t0 + 7_000).is_some());
        assert!(db.lookup(b"a", t0 + 7_000).is_some());
        assert_eq!(db.idle_seconds(b"a", t0 + 7_000), Some(7), "no-touch lookups");
        db.set_access(t0 + 8_000, true);
        assert!(db.lookup_read(b"a", t0 + 8_000).is_some());
        assert_eq!(db.idle_seconds(b"a", t0 + 9_000), Some(1));
        db.set_access(t0 + 20_000, false);
        db.set_bytes(b"a", b"2", 0);
        assert_eq!(db.idle_seconds(b"a", t0 + 21_000), Some(1), "a write stores a new value: touched");
        assert_eq!(db.idle_seconds(b"zz", t0), None);
    }

    // The aging walk in a db, on a simulated clock stepped like the server's 10 ms
    // housekeeping (coarser here: 100 ms): keys left alone read their idle time
    // exactly to 64 s, then within a few percent (one generation per 16 s pass) up
    // to days; a touch makes a key recent again.
    #[test]
    fn idle_time_ages_in_a_db() {
        let mut db = Db::new();
        let t0 = 1_700_000_000_000i64;
        db.set_access(t0, true);
        for i in 0..2000 {
            db.set(format!("k{i}").as_bytes(), Value::from_bytes(b"v"), 0);
        }
        let mut now = t0;
        let check = |db: &mut Db, now: i64| {
            let true_idle = ((now - t0) / 1000) as u64;
            for i in 0..2000 {
                let idle = db.idle_seconds(format!("k{i}").as_bytes(), now).unwrap();
                if true_idle < 64 {
                    assert_eq!(idle, true_idle);
                } else {
                    assert!(idle.abs_diff(true_idle) <= 1 + true_idle / 20, "{idle} vs {true_idle}");
                }
            }
        };
        while now < t0 + 600_000 {
            now += 100;
            db.age_step(now);
            if (now - t0) % 10_000 == 0 {
                check(&mut db, now);
            }
        }
        while now < t0 + 3 * 86_400_000 {
            now += 8_000;
            db.age_step(now);
        }
        check(&mut db, now);
        db.set_access(now, true);
        assert!(db.lookup(b"k7", now).is_some());
        assert_eq!(db.idle_seconds(b"k7", now + 2_000), Some(2));
        assert!(db.idle_seconds(b"k8", now + 2_000).unwrap() > 3 * 86_400);
    }

    // Long keys (heap) and short keys (inline) are found by their bytes alike.
    #[test]
    fn long_and_short_keys() {
        let mut db = Db::default();
        let long = vec![b'x'; 100];
        db.set(&long, Value::from_int(1), 0);
        db.set(b"short", Value::from_int(2), 0);
        assert_eq!(db.lookup(&long, 0).map(|e| e.value.clone()), Some(Value::from_int(1)));
        assert_eq!(db.lookup(b"short", 0).map(|e| e.value.clone()), Some(Value::from_int(2)));
        assert_eq!(CompactKey::key(&long).dash_hash(5), crate::dash::hash_bytes(&long, 5));
        assert!(db.remove(&long).is_some());
        assert_eq!(db.len(), 1);
    }

    // The hooks around a value changed in place and a flush: a guard only read reports
    // nothing; `value_mut` announces the write once and the drop reports it; FLUSH
    // ASYNC's take_data reports a Flush only for a db that had keys.
    #[test]
    fn guard_and_take_data_hooks() {
        let mut dbs = Dbs::new(2);
        dbs.record_writes();
        dbs[1].set(b"s", Value::from_bytes(b"abc"), 0);
        dbs.take_recorded();
        let e = dbs[1].lookup_typed(b"s", 0, ObjType::String).expect("a string").expect("exists");
        assert!(e.value().eq_bytes(b"abc"));
        drop(e);
        assert_eq!(dbs.take_recorded(), vec![]);
        let mut e = dbs[1].lookup_typed(b"s", 0, ObjType::String).expect("a string").expect("exists");
        e.value_mut().modify_raw(|b| b.push(b'd'));
        e.value_mut().modify_raw(|b| b.push(b'e'));
        drop(e);
        assert_eq!(
            dbs.take_recorded(),
            vec![Hooked::Pre(1, b"s".to_vec()), Hooked::Write(1, b"s".to_vec(), WriteKind::Modify)]
        );
        assert!(dbs[1].lookup(b"s", 0).is_some_and(|e| e.value.eq_bytes(b"abcde")));
        let _ = dbs[0].take_data();
        assert_eq!(dbs.take_recorded(), vec![]);
        let old = dbs[1].take_data();
        assert_eq!(old._map.len(), 1);
        assert_eq!(dbs.take_recorded(), vec![Hooked::PreDb(1, WriteKind::Flush), Hooked::WriteDb(1, WriteKind::Flush)]);
    }

    // take_data empties the db but leaves its counters and its hash seed.
    #[test]
    fn take_data_keeps_stats() {
        let mut db = Db::default();
        db.set(b"a", Value::from_int(1), 5);
        db.lookup_read(b"a", 0);
        let old = db.take_data();
        assert_eq!((old._map.len(), old._expires.len()), (1, 1));
        assert_eq!((db.len(), db.expires_len(), db.stats().keyspace_hits), (0, 0, 1));
        // Same seed, so a SCAN cursor keeps meaning the same order.
        assert_eq!(db.map.seed(), old._map.seed());
    }

    // Cache mode without growth: the table keeps its size and evicts (counting it), the
    // expire table stays in step, and a key read between inserts stays in.
    #[test]
    fn cache_mode_evicts_instead_of_growing() {
        let mut db = Db::default();
        db.set_cache_mode(true, true, false);
        for i in 0..5000i64 {
            db.set(format!("k{i}").as_bytes(), Value::from_int(i), if i % 3 == 0 { 1 << 40 } else { 0 });
        }
        let segs = db.map.segment_count();
        db.set_cache_mode(true, false, false);
        for i in 5000..200_000i64 {
            db.set(format!("k{i}").as_bytes(), Value::from_int(i), if i % 3 == 0 { 1 << 40 } else { 0 });
            assert!(db.lookup_read(b"k7", 0).is_some(), "hot key evicted at {i}");
        }
        assert_eq!(db.map.segment_count(), segs);
        assert_eq!(db.len() as u64 + db.stats().evicted_keys, 200_000);
        let with_deadline = db.map.keys().filter(|k| k.has_expire()).count();
        assert_eq!(db.expires_len(), with_deadline);
        // Growth allowed again: no more evictions.
        db.set_cache_mode(true, true, false);
        let before = db.stats().evicted_keys;
        for i in 0..50_000i64 {
            db.set(format!("n{i}").as_bytes(), Value::from_int(i), 0);
        }
        assert_eq!(db.stats().evicted_keys, before);
        // The background walk evicts what it is asked, and empties the db in the end.
        assert_eq!(db.evict_some(100), 100);
        while db.evict_some(1000) > 0 {}
        assert_eq!((db.len(), db.expires_len()), (0, 0));
    }
}
#[cfg(test)]
mod cache_tests {
    use super::*;

    // Over budget, every insert evicts two items on the walk; keys read once per round
    // sit at the front of their buckets and all survive while unread keys go.
    #[test]
    fn promoted_keys_survive_eviction() {
        let mut db = Db::default();
        db.set_cache_mode(true, true, false);
        for i in 0..90_000i64 {
            db.set(format!("key:{i}").as_bytes(), Value::from_bytes(&[b'x'; 100]), 0);
        }
        for h in 0..100 {
            db.set(format!("hot:{h}").as_bytes(), Value::from_int(1), 0);
        }
        db.set_cache_mode(true, false, true);
        let read_hot =
            |db: &mut Db| (0..100).filter(|h| db.lookup_read(format!("hot:{h}").as_bytes(), 0).is_some()).count();
        assert_eq!(read_hot(&mut db), 100);
        for round in 0..15 {
            for i in 0..2000 {
                db.set(format!("churn:{round}:{i}").as_bytes(), Value::from_bytes(&[b'x'; 100]), 0);
            }
            assert_eq!(read_hot(&mut db), 100, "round {round}");
            db.map.check_invariants();
        }
        // Each of the 30,000 inserts evicted two first (and, rarely, one more when its
        // segment was full): 90,100 + 30,000 - 60,000 at most.
        assert!(db.len() <= 60_100);
        assert_eq!(db.len() as u64 + db.stats().evicted_keys, 120_100);
        // A steady state like the server's: evicting on insert only while over, many
        // rounds; the promoted keys stay.
        for round in 15..80 {
            for i in 0..2000 {
                let over = db.len() > 45_000;
                db.set_cache_mode(true, false, over);
                db.set(format!("churn:{round}:{i}").as_bytes(), Value::from_bytes(&[b'x'; 100]), 0);
            }
            assert_eq!(read_hot(&mut db), 100, "round {round}");
            db.map.check_invariants();
        }
    }
}
