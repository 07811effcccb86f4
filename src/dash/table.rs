//! The directory + segments: [`DashTable`].

use super::hash::Equivalent;
use std::fmt;
use std::mem;

use super::hash::{DashHash, hash_u64};
use super::segment::{
    MIN_SLOTS, Pos, Probe, REGULAR_BUCKETS, SEGMENT_CAPACITY, SLOTS, STASH_BUCKETS, SegBox, Segment, Shape,
    TOTAL_BUCKETS, segment_bytes,
};
use std::ptr::NonNull;

/// Bits of the cursor holding the hash prefix (bits `0..46`).
pub const CURSOR_PREFIX_BITS: u32 = 46;
/// The logical bucket id (0..56) sits in cursor bits `46..52`.
pub const CURSOR_BUCKET_SHIFT: u32 = CURSOR_PREFIX_BITS;
/// Cursor bits `52..64` (12 bits) are never set by [`DashTable::traverse`]
/// and are ignored on input: the caller may store e.g. a shard number there
/// (the server's SCAN does, for up to 4096 shards).
pub const CURSOR_FREE_SHIFT: u32 = 52;
/// Mask of the cursor bits the table uses (`0..52`).
pub const CURSOR_USED_MASK: u64 = (1 << CURSOR_FREE_SHIFT) - 1;
const PREFIX_MASK: u64 = (1 << CURSOR_PREFIX_BITS) - 1;
const PREFIX_END: u64 = 1 << CURSOR_PREFIX_BITS;

/// Segments cannot be deeper than the cursor's prefix field (2^46 segments
/// would be exabytes: never reached by a well-mixed hash).
pub const MAX_DEPTH: u32 = CURSOR_PREFIX_BITS;

/// Empty logical buckets a single `traverse` call may skip before it
/// returns without having visited anything.
const TRAVERSE_MAX_EMPTY: usize = 256;

/// A directory doubling that would leave more than this many directory
/// entries per segment (once the directory has at least
/// `DEGENERATE_MIN_DIR` entries) means one hash prefix keeps overflowing a
/// segment: the `DashHash` implementation is degenerate (constant or
/// heavily colliding). We panic instead of doubling towards OOM. With a
/// well-mixed hash this needs a segment 5+ levels deeper than average,
/// i.e. a prefix range ~32x denser than average, which does not happen.
const DEGENERATE_DIR_PER_SEGMENT: usize = 64;
const DEGENERATE_MIN_DIR: usize = 1024;

/// Load factor assumed by `with_capacity` when sizing the directory.
const PRESIZE_FILL_PERCENT: usize = 70;
/// Most items two buddy segments may hold together to be merged: half a
/// full-size segment, so a merged segment is far from splitting again.
const MERGE_MAX_ITEMS: usize = SEGMENT_CAPACITY / 2;

const _: () = assert!(CURSOR_BUCKET_SHIFT + 6 <= CURSOR_FREE_SHIFT);
const _: () = assert!(REGULAR_BUCKETS <= 1 << (CURSOR_FREE_SHIFT - CURSOR_BUCKET_SHIFT));
const _: () = assert!(CURSOR_BUCKET_SHIFT + 6 == CURSOR_FREE_SHIFT);
// The prefix and the fingerprint / bucket bits overlap only beyond depth 24
// (2^24 segments, ~10^10 items), where it merely weakens fingerprints.
const _: () = assert!(MAX_DEPTH < 63);

#[inline(always)]
pub(super) fn home_of_hash(h: u64) -> usize {
    (((h as u32 as u64) * REGULAR_BUCKETS as u64) >> 32) as usize
}

#[inline(always)]
pub(super) fn fp_of_hash(h: u64) -> u8 {
    // Any byte, 0 included (lookups mask fingerprint matches with the busy
    // bits; see `Hot` in `segment.rs`).
    (h >> 32) as u8
}

/// The lookup [`Probe`] for `fp_of_hash(h)`.
#[inline(always)]
pub(super) fn probe_of_hash(h: u64) -> Probe {
    Probe::of_hash(h)
}

#[inline(always)]
fn prefix_of_hash(h: u64) -> u64 {
    h >> (64 - CURSOR_PREFIX_BITS)
}

#[inline(always)]
fn encode_cursor(bucket: usize, prefix: u64) -> u64 {
    ((bucket as u64) << CURSOR_BUCKET_SHIFT) | prefix
}

#[inline(always)]
/// Moves a traversal at logical bucket `b` past the prefix range that ends at `end`: to
/// the next range of the bucket, or to the next bucket's first range. False once past
/// the last bucket (the traversal is over).
fn next_range(b: &mut usize, prefix: &mut u64, end: u64) -> bool {
    if end == PREFIX_END {
        *prefix = 0;
        *b += 1;
        *b < REGULAR_BUCKETS
    } else {
        *prefix = end;
        true
    }
}

fn decode_cursor(cursor: u64) -> (usize, u64) {
    let c = cursor & CURSOR_USED_MASK;
    ((c >> CURSOR_BUCKET_SHIFT) as usize, c & PREFIX_MASK)
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(0x6461_7368_u64)
}

/// A directory entry: the segment's address and [`Shape`], which is
/// all a lookup needs to reach its metadata (no second array to read on
/// the way), and its index in `segs`, for [`Loc`] and everything else.
/// 16 bytes (four to a cache line), read with one load's line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct DirEntry {
    seg: NonNull<u8>,
    si: u32,
    /// `Segment::shape`: slot mask and bucket stride, so that a lookup
    /// needs no shift by a variable amount and no multiply by the item size.
    shape: Shape,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(mem::size_of::<DirEntry>() == 16);

// SAFETY: a `DirEntry` is a copy of a `SegBox`'s address that the table
// only dereferences through `&self` (see `DashTable::seg_of`); whether the
// table may cross threads is decided by its `segs` (`SegBox<K, V>`), as
// for a table of `Box`es.
unsafe impl Send for DirEntry {}
// SAFETY: as for `Send`.
unsafe impl Sync for DirEntry {}

/// Where an item lives.
#[derive(Clone, Copy, Debug)]
struct Loc {
    seg: u32,
    pos: Pos,
}

/// Where an item is stored, as returned by [`DashTable::find_hashed`]: a
/// segment index and a bucket/slot. Valid until the next mutation of the
/// table (inserts may move items, splits move them to other segments);
/// using a stale `Slot` never touches uninitialized memory (the table checks
/// the slot is busy) but may name another item.
#[derive(Clone, Copy, Debug)]
pub struct Slot(Loc);

/// A Dash extendible hash table. See the [module docs](super) for the
/// layout and the guarantees.
pub struct DashTable<K, V> {
    /// `2^global_depth` entries; the segment of hash `h` is
    /// `segs[dir[h >> (64 - global_depth)].si]`, whose address and size
    /// the entry also holds. Empty (and `segs` too) in a table that never
    /// had an item since `new`/`clear`. Every change to `segs` rewrites
    /// the entries of the segments it moves or replaces.
    dir: Vec<DirEntry>,
    segs: Vec<SegBox<K, V>>,
    /// Number of segments of each size (index: slots per bucket), for
    /// `capacity` and the memory figures without walking the segments.
    sizes: [u32; SLOTS + 1],
    global_depth: u32,
    len: usize,
    seed: u64,
    version_clock: u32,
    growth_allowed: bool,
    /// Segments start small and grow before they split (default); when
    /// false, every segment is full size (see `set_small_segments`).
    small_segments: bool,
}

impl<K, V> DashTable<K, V> {
    /// Empty table with a random per-table hash seed. Allocates nothing:
    /// the first insert allocates the first segment.
    pub fn new() -> Self {
        Self::with_capacity_and_seed(0, random_seed())
    }

    /// Empty table with a fixed hash seed (deterministic layout and
    /// traversal order; use a secret random seed for untrusted keys).
    pub fn with_seed(seed: u64) -> Self {
        Self::with_capacity_and_seed(0, seed)
    }

    /// Table pre-split into enough segments for about `capacity` items
    /// (sized for a 70% fill, rounded up to a power of two segments).
    /// Unlike `HashMap`, this cannot promise zero splits: a segment splits
    /// when one home bucket's neighbourhood fills, which depends on hashes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_seed(capacity, random_seed())
    }

    /// [`with_capacity`](Self::with_capacity) with a fixed seed.
    pub fn with_capacity_and_seed(capacity: usize, seed: u64) -> Self {
        let per_seg = SEGMENT_CAPACITY * PRESIZE_FILL_PERCENT / 100;
        let need = capacity.div_ceil(per_seg);
        let depth = need.next_power_of_two().trailing_zeros().min(MAX_DEPTH);
        // Capacity 0: no segment (and an empty directory) until the first insert.
        let n = if need == 0 { 0 } else { 1usize << depth };
        let segs: Vec<SegBox<K, V>> = (0..n).map(|_| Segment::new_boxed(depth as u8, SLOTS).into()).collect();
        DashTable {
            dir: (0..n).map(|si| Self::entry_of(&segs, si)).collect(),
            segs,
            sizes: std::array::from_fn(|spb| if spb == SLOTS { n as u32 } else { 0 }),
            global_depth: depth,
            len: 0,
            seed,
            version_clock: 0,
            growth_allowed: true,
            small_segments: true,
        }
    }

    /// Number of items.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no items.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The hash seed passed to [`DashHash::dash_hash`].
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segs.len()
    }

    /// Directory depth: the directory has `2^global_depth` entries.
    pub fn global_depth(&self) -> u32 {
        self.global_depth
    }

    /// Slots allocated (60 buckets × slots per bucket, summed over the
    /// segments; at most `segment_count * 840`). Items may need a split or
    /// a bigger segment well before `len == capacity`; see the module docs
    /// for typical fill.
    pub fn capacity(&self) -> usize {
        self.sizes.iter().enumerate().map(|(spb, &n)| n as usize * spb * TOTAL_BUCKETS).sum()
    }

    /// `(bytes, count)`: how many segments of each allocation size the
    /// table holds (for callers that round sizes to their allocator's
    /// blocks).
    pub fn segment_allocations(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.sizes
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(spb, &n)| (Self::segment_bytes_for(spb), n as usize))
    }

    /// Bytes of one segment with `spb` slots per bucket for this `K`, `V`.
    fn segment_bytes_for(spb: usize) -> usize {
        segment_bytes(spb, mem::size_of::<(K, V)>(), mem::align_of::<(K, V)>())
    }

    /// Track a segment of `spb` slots per bucket coming (`true`) or going.
    #[inline]
    fn count_size(&mut self, spb: usize, add: bool) {
        if add {
            self.sizes[spb] += 1;
        } else {
            self.sizes[spb] -= 1;
        }
    }

    /// Bytes used by the table structure itself: directory, segment
    /// pointers and segments (slots included, full or empty), plus the
    /// `DashTable` header. Heap memory owned by keys/values is not counted.
    pub fn mem_usage_bytes(&self) -> usize {
        mem::size_of::<Self>()
            + self.dir.capacity() * mem::size_of::<DirEntry>()
            + self.segs.capacity() * mem::size_of::<SegBox<K, V>>()
            + self.segment_allocations().map(|(bytes, n)| bytes * n).sum::<usize>()
    }

    /// Size in bytes of one full-size segment (840 slots) for this `K`, `V`.
    pub fn segment_bytes() -> usize {
        Self::segment_bytes_for(SLOTS)
    }

    /// Drop all items and free all segments (and the directory): the table
    /// is as after [`new`](Self::new). Keeps the seed, the version clock and
    /// the growth flag.
    pub fn clear(&mut self) {
        // Reset the structure before dropping items so a panicking Drop
        // leaves a valid (empty) table behind.
        let old = mem::take(&mut self.segs);
        self.dir = Vec::new();
        self.sizes = [0; SLOTS + 1];
        self.global_depth = 0;
        self.len = 0;
        drop(old);
    }

    /// Moves every item out (to `f`, in storage order) and leaves the table
    /// empty with no segment, keeping its seed and growth setting. The
    /// emptied segments are returned rather than freed, so that a caller
    /// who must not stall can free them a few at a time
    /// ([`Retired::free_some`]); dropping the result frees them all.
    pub fn drain_into(&mut self, mut f: impl FnMut(K, V)) -> Retired<K, V> {
        let mut segs = mem::take(&mut self.segs);
        self.dir = Vec::new();
        self.sizes = [0; SLOTS + 1];
        self.global_depth = 0;
        self.len = 0;
        for seg in &mut segs {
            if seg.len() == 0 {
                continue;
            }
            for b in 0..TOTAL_BUCKETS {
                loop {
                    let busy = seg.meta(b).busy();
                    if busy == 0 {
                        break;
                    }
                    let (k, v) = seg.remove_at(Pos::new(b, busy.trailing_zeros() as usize));
                    f(k, v);
                }
            }
        }
        Retired { segs }
    }

    /// Iterator over `(&K, &V)` in storage order (segment, bucket, slot).
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter { segs: self.segs.iter(), seg: None, bucket: 0, mask: 0, left: self.len }
    }

    /// Iterator over `(&K, &mut V)`. Stamps every logical bucket with the
    /// version clock (see [`set_version_clock`](Self::set_version_clock)).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> + '_ {
        let clock = self.version_clock;
        for seg in &mut self.segs {
            for v in seg.versions.iter_mut() {
                *v = (*v).max(clock);
            }
        }
        self.segs.iter_mut().flat_map(|s| s.iter_mut()).map(|(k, v)| (&*k, v))
    }

    /// Keys in storage order.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Values in storage order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Keep only the items for which `f` returns true (`f` may modify the
    /// value). Every visited logical bucket is stamped with the version
    /// clock.
    pub fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        let clock = self.version_clock;
        for seg in &mut self.segs {
            for b in 0..TOTAL_BUCKETS {
                let mut m = seg.meta(b).busy();
                while m != 0 {
                    let p = Pos::new(b, m.trailing_zeros() as usize);
                    m &= m - 1;
                    let home = seg.home_of(p);
                    let v = &mut seg.versions[home];
                    *v = (*v).max(clock);
                    let (k, v) = seg.item_mut(p);
                    if !f(k, v) {
                        let item = seg.remove_at(p);
                        self.len -= 1;
                        drop(item);
                    }
                }
            }
        }
    }

    /// A random item, cheap and roughly uniform: picks a segment with
    /// probability proportional to the hash range it covers, then a uniformly
    /// random slot of it, retrying on empty slots (expected ~1/fill tries,
    /// at most 32); a very sparse table falls back to scanning from a
    /// random point. Deterministic in `seed`.
    pub fn random_entry(&self, seed: u64) -> Option<(&K, &V)> {
        if self.len == 0 {
            return None;
        }
        let n = self.dir.len();
        let mut r = hash_u64(seed, self.seed ^ 0x7261_6e64);
        for _ in 0..32 {
            let r2 = hash_u64(r, 0x736c_6f74);
            let seg = &self.segs[self.dir[(r as usize) & (n - 1)].si as usize];
            let b = (((r2 as u32 as u64) * TOTAL_BUCKETS as u64) >> 32) as usize;
            let s = (((r2 >> 32) * seg.slots_per_bucket() as u64) >> 32) as usize;
            if seg.meta(b).busy() & (1 << s) != 0 {
                let (k, v) = seg.item(Pos::new(b, s));
                return Some((k, v));
            }
            r = r2;
        }
        // Sparse: first non-empty bucket from a random point.
        let mut di = (r as usize) & (n - 1);
        loop {
            let seg = &self.segs[self.dir[di].si as usize];
            if seg.len() > 0 {
                let b0 = ((r >> 32) % TOTAL_BUCKETS as u64) as usize;
                for k in 0..TOTAL_BUCKETS {
                    let b = (b0 + k) % TOTAL_BUCKETS;
                    let mut m = seg.meta(b).busy();
                    if m == 0 {
                        continue;
                    }
                    let j = ((r >> 16) & 0xffff) as u32 % m.count_ones();
                    for _ in 0..j {
                        m &= m - 1;
                    }
                    let (k, v) = seg.item(Pos::new(b, m.trailing_zeros() as usize));
                    return Some((k, v));
                }
                unreachable!("segment len out of sync");
            }
            let span = 1usize << (self.global_depth - seg.local_depth as u32);
            di = ((di & !(span - 1)) + span) & (n - 1);
        }
    }

    /// Growth flag used by [`insert_or_evict`](Self::insert_or_evict)
    /// (default true). Plain `insert` always grows.
    pub fn set_growth_allowed(&mut self, allowed: bool) {
        self.growth_allowed = allowed;
    }

    /// With `on` (the default), a new segment is the smallest size and grows
    /// through the size ladder before it splits, and split halves are rebuilt
    /// at the size their items need (module docs, "Segment sizes"). With
    /// `off`, new segments and split halves are full size: segments are then
    /// never freed while the table grows, so a table that stops growing (cache
    /// mode at its memory budget) leaves no freed segment blocks of other size
    /// classes in the allocator's pages. Existing segments are kept.
    pub fn set_small_segments(&mut self, on: bool) {
        self.small_segments = on;
    }

    /// See [`set_small_segments`](Self::set_small_segments).
    pub fn small_segments(&self) -> bool {
        self.small_segments
    }

    /// See [`set_growth_allowed`](Self::set_growth_allowed).
    pub fn growth_allowed(&self) -> bool {
        self.growth_allowed
    }

    /// Version stamped on logical buckets by mutations (default 0).
    /// Every mutation through the table (insert, replace, remove, get_mut,
    /// get_or_insert*, retain, iter_mut, eviction) sets the version of the
    /// mutated item's logical bucket to `max(version, clock)`.
    pub fn set_version_clock(&mut self, clock: u32) {
        self.version_clock = clock;
    }

    /// See [`set_version_clock`](Self::set_version_clock).
    pub fn version_clock(&self) -> u32 {
        self.version_clock
    }

    /// Version of the logical bucket at traversal position `cursor` (a
    /// cursor returned by [`traverse`](Self::traverse), by
    /// [`bucket_cursor`](Self::bucket_cursor), or 0). A segment split copies
    /// the versions into both halves (a split mutates no item).
    pub fn bucket_version(&self, cursor: u64) -> u32 {
        let (b, prefix) = decode_cursor(cursor);
        if b >= REGULAR_BUCKETS || self.segs.is_empty() {
            return 0;
        }
        let (si, _, _) = self.segment_range(prefix);
        self.segs[si].versions[b]
    }

    /// Set the version of the logical bucket at `cursor` (ignored for an
    /// invalid cursor).
    pub fn set_bucket_version(&mut self, cursor: u64, version: u32) {
        let (b, prefix) = decode_cursor(cursor);
        if b >= REGULAR_BUCKETS || self.segs.is_empty() {
            return;
        }
        let (si, _, _) = self.segment_range(prefix);
        self.segs[si].versions[b] = version;
    }

    /// Segment index and `[start, end)` prefix range of the segment that
    /// holds hash prefix `prefix` (46-bit cursor space). The table must
    /// have a segment.
    #[inline]
    fn segment_range(&self, prefix: u64) -> (usize, u64, u64) {
        let di = self.dir_index(prefix << (64 - CURSOR_PREFIX_BITS));
        let si = self.dir[di].si as usize;
        let l = self.segs[si].local_depth as u32;
        let seg_prefix = (di >> (self.global_depth - l)) as u64;
        let shift = CURSOR_PREFIX_BITS - l;
        (si, seg_prefix << shift, (seg_prefix + 1) << shift)
    }

    /// The directory entry for segment `si` of `segs`.
    fn entry_of(segs: &[SegBox<K, V>], si: usize) -> DirEntry {
        DirEntry { seg: segs[si].thin(), si: si as u32, shape: segs[si].shape() }
    }

    /// Point directory entries `range` at segment `si`.
    fn point_dir(&mut self, range: std::ops::Range<usize>, si: usize) {
        let e = Self::entry_of(&self.segs, si);
        self.dir[range].fill(e);
    }

    /// The segment of directory entry `e` (one of `self.dir`'s), reached
    /// from the entry alone.
    #[inline(always)]
    fn seg_of(&self, e: DirEntry) -> &Segment<K, V> {
        debug_assert_eq!(e, Self::entry_of(&self.segs, e.si as usize));
        // SAFETY: `e` is an entry of `self.dir`, which always equals
        // `entry_of(segs, e.si)` (every change to `segs` rewrites the entries
        // of the segments it moves or replaces; `check_invariants` checks
        // it): the address and size of the live segment `segs[e.si]`, owned
        // by `self`. `&self` means no `&mut` to any segment is live, and the
        // borrow returned keeps it so.
        unsafe { &*Segment::from_thin(e.seg, e.shape.slots_per_bucket()) }
    }

    #[inline(always)]
    fn dir_index(&self, h: u64) -> usize {
        // h >> (64 - depth), also correct for depth == 0 (and 0 for an
        // empty directory), as the high half of `h * 2^depth`: a multiply
        // rather than a shift by a variable amount, which on x86_64 must
        // sit in `cl` and so ties up a fixed register around every lookup.
        debug_assert!(self.dir.is_empty() || self.dir.len() == 1 << self.global_depth);
        ((h as u128 * self.dir.len() as u128) >> 64) as usize
    }

    /// The directory entry for hash `h` (`None` only while no segment was
    /// allocated yet). The emptiness test depends on the table alone, not
    /// on `h` (unlike a bounds check of the index), so a loop of lookups
    /// does it once.
    #[inline(always)]
    fn dir_entry(&self, h: u64) -> Option<DirEntry> {
        if self.dir.is_empty() {
            return None;
        }
        let i = self.dir_index(h);
        debug_assert!(i < self.dir.len());
        // SAFETY: `dir_index` is the high half of `h * len`, which is below
        // `len` for `h < 2^64` and `len > 0`.
        Some(unsafe { *self.dir.get_unchecked(i) })
    }

    #[inline(always)]
    fn stamp(&mut self, seg: u32, home: usize) {
        // Clock 0 (no snapshot machinery in use) cannot raise anything:
        // skip touching the versions cache line.
        if self.version_clock != 0 {
            let v = &mut self.segs[seg as usize].versions[home];
            *v = (*v).max(self.version_clock);
        }
    }

    #[inline(always)]
    fn stamp_loc(&mut self, l: Loc) {
        let home = self.segs[l.seg as usize].home_of(l.pos);
        self.stamp(l.seg, home);
    }

    #[inline(always)]
    fn item(&self, l: Loc) -> &(K, V) {
        self.segs[l.seg as usize].item(l.pos)
    }

    #[inline(always)]
    fn item_mut(&mut self, l: Loc) -> &mut (K, V) {
        self.segs[l.seg as usize].item_mut(l.pos)
    }

    fn remove_loc(&mut self, l: Loc) -> (K, V) {
        let seg = &mut self.segs[l.seg as usize];
        let home = seg.home_of(l.pos);
        let item = seg.remove_at(l.pos);
        self.len -= 1;
        self.stamp(l.seg, home);
        item
    }

    /// (segment index, bucket, slot) of `key` (tests only).
    #[cfg(test)]
    pub(crate) fn debug_pos<Q>(&self, key: &Q) -> Option<(usize, usize, usize)>
    where
        K: Eq + DashHash,
        Q: Equivalent<K> + DashHash + ?Sized,
    {
        let l = self.find(key.dash_hash(self.seed), key)?;
        Some((l.seg as usize, l.pos.b(), l.pos.s()))
    }

    /// Checks all structural invariants (tests only).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self)
    where
        K: DashHash,
    {
        let g = self.global_depth;
        if self.segs.is_empty() {
            assert!(self.dir.is_empty() && self.len == 0 && g == 0);
            return;
        }
        assert_eq!(self.dir.len(), 1 << g);
        let mut total = 0;
        let mut seen = vec![false; self.segs.len()];
        let mut di = 0;
        while di < self.dir.len() {
            let si = self.dir[di].si as usize;
            assert!(!seen[si], "segment {si} referenced by two ranges");
            seen[si] = true;
            let l = self.segs[si].local_depth as u32;
            assert!(l <= g);
            let span = 1 << (g - l);
            assert_eq!(di % span, 0, "misaligned segment range");
            let e = Self::entry_of(&self.segs, si);
            assert!(self.dir[di..di + span].iter().all(|&x| x == e), "stale directory entry");
            di += span;
        }
        assert!(seen.iter().all(|&s| s), "orphan segment");
        for (si, seg) in self.segs.iter().enumerate() {
            let seed = self.seed;
            seg.check(|k| {
                let h = k.dash_hash(seed);
                assert_eq!(self.dir[self.dir_index(h)].si as usize, si, "item in wrong segment");
                (home_of_hash(h), fp_of_hash(h))
            });
            total += seg.len();
        }
        assert_eq!(total, self.len);
    }
}

impl<K: Eq + DashHash, V> DashTable<K, V> {
    #[inline(always)]
    fn hash<Q: DashHash + ?Sized>(&self, key: &Q) -> u64 {
        key.dash_hash(self.seed)
    }

    /// Where `key` (of hash `h`) is and the item itself.
    #[inline(always)]
    fn find_item<Q>(&self, h: u64, key: &Q) -> Option<(Loc, &(K, V))>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let e = self.dir_entry(h)?;
        let seg = self.seg_of(e);
        // SAFETY: `e` is a directory entry, whose `shape` is its segment's
        // (see `seg_of`).
        unsafe { seg.find_in(home_of_hash(h), probe_of_hash(h), e.shape, |k| key.equivalent(k)) }
            .map(|(pos, item)| (Loc { seg: e.si, pos }, item))
    }

    #[inline(always)]
    fn find<Q>(&self, h: u64, key: &Q) -> Option<Loc>
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.find_item(h, key).map(|(l, _)| l)
    }

    /// Shared reference to the value of `key`.
    #[inline(always)]
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        Q: Equivalent<K> + DashHash + ?Sized,
    {
        self.find_item(self.hash(key), key).map(|(_, (_, v))| v)
    }

    /// Key and value stored for `key`.
    #[inline(always)]
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        Q: Equivalent<K> + DashHash + ?Sized,
    {
        self.find_item(self.hash(key), key).map(|(_, (k, v))| (k, v))
    }

    /// True if `key` is present.
    #[inline(always)]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        Q: Equivalent<K> + DashHash + ?Sized,
    {
        self.find(self.hash(key), key).is_some()
    }

    /// Mutable reference to the value of `key` (stamps its bucket version).
    #[inline]
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        Q: Equivalent<K> + DashHash + ?Sized,
    {
        let l = self.find(self.hash(key), key)?;
        self.stamp_loc(l);
        Some(&mut self.item_mut(l).1)
    }

    /// The hash the table uses for `key` (its seed applied), for the
    /// [`Slot`] API: hash once, then [`find_hashed`](Self::find_hashed) and,
    /// if absent, [`insert_unique_hashed`](Self::insert_unique_hashed).
    #[inline]
    pub fn hash_key<Q: DashHash + ?Sized>(&self, key: &Q) -> u64 {
        self.hash(key)
    }

    /// Where `key` (whose [`hash_key`](Self::hash_key) is `hash`) is
    /// stored, if present. One probe; the [`Slot`] stays valid until the
    /// table is next mutated.
    #[inline(always)]
    pub fn find_hashed<Q>(&self, hash: u64, key: &Q) -> Option<Slot>
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.find(hash, key).map(Slot)
    }

    /// Prefetch hint for a coming lookup of `hash`: fetches the home and
    /// neighbour bucket metadata, so that a later
    /// [`prefetch_slots`](Self::prefetch_slots) or lookup finds it in cache.
    /// Issue it for a batch of keys first, then `prefetch_slots` for the
    /// batch, then do the lookups: their cache misses overlap.
    #[inline]
    pub fn prefetch_meta(&self, hash: u64) {
        if let Some(e) = self.dir_entry(hash) {
            self.seg_of(e).prefetch_meta(home_of_hash(hash));
        }
    }

    /// Prefetch hint, second stage: reads the metadata (ideally prefetched
    /// by [`prefetch_meta`](Self::prefetch_meta)) and fetches the slots
    /// whose fingerprint matches `hash`, i.e. the item a lookup will find.
    #[inline]
    pub fn prefetch_slots(&self, hash: u64) {
        if let Some(e) = self.dir_entry(hash) {
            self.seg_of(e).prefetch_matches(home_of_hash(hash), probe_of_hash(hash));
        }
    }

    /// Key and value at `slot` (from [`find_hashed`](Self::find_hashed) or
    /// [`insert_unique_hashed`](Self::insert_unique_hashed), with no
    /// mutation since). Panics if the slot is free.
    #[inline]
    pub fn slot(&self, slot: Slot) -> (&K, &V) {
        let (k, v) = self.item(slot.0);
        (k, v)
    }

    /// Mutable value at `slot` (stamps its bucket version, like
    /// [`get_mut`](Self::get_mut)). Panics if the slot is free.
    #[inline]
    pub fn slot_mut(&mut self, slot: Slot) -> (&K, &mut V) {
        self.stamp_loc(slot.0);
        let (k, v) = self.item_mut(slot.0);
        (&*k, v)
    }

    /// Mutable key and value at `slot`, for changing bits of the key that
    /// take no part in its hash or equality (the server's per-key flags).
    /// Changing the key's hash or equality misplaces the item (it is then
    /// not found) but is memory-safe.
    #[inline]
    pub fn slot_key_mut(&mut self, slot: Slot) -> (&mut K, &mut V) {
        self.stamp_loc(slot.0);
        let (k, v) = self.item_mut(slot.0);
        (k, v)
    }

    /// Removes the item at `slot`. Panics if the slot is free.
    #[inline]
    pub fn remove_slot(&mut self, slot: Slot) -> (K, V) {
        self.remove_loc(slot.0)
    }

    /// Inserts a key known to be absent (the caller just got `None` from
    /// [`find_hashed`](Self::find_hashed) with this `hash`), without probing
    /// again. May split one segment. `hash` must be `hash_key(&key)`
    /// (checked in debug builds); a wrong hash misplaces the item (it is
    /// then not found) but is memory-safe.
    #[inline]
    pub fn insert_unique_hashed(&mut self, hash: u64, key: K, value: V) -> Slot {
        debug_assert_eq!(hash, self.hash(&key), "insert_unique_hashed: wrong hash");
        Slot(self.insert_unique(hash, key, value))
    }

    /// Insert or replace; returns the previous value (the stored key is
    /// kept, as with `HashMap::insert`). May split one segment.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let h = self.hash(&key);
        if let Some(l) = self.find(h, &key) {
            self.stamp_loc(l);
            return Some(mem::replace(&mut self.item_mut(l).1, value));
        }
        self.insert_unique(h, key, value);
        None
    }

    /// Value of `key`, inserting `default()` first if absent. Returns the
    /// value and whether it was inserted.
    pub fn get_or_insert_with(&mut self, key: K, default: impl FnOnce() -> V) -> (&mut V, bool) {
        let h = self.hash(&key);
        if let Some(l) = self.find(h, &key) {
            self.stamp_loc(l);
            return (&mut self.item_mut(l).1, false);
        }
        let value = default();
        let l = self.insert_unique(h, key, value);
        (&mut self.item_mut(l).1, true)
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with) but looks up a
    /// borrowed key and builds the owned key only when absent (e.g. look up
    /// `&[u8]`, allocate a `Box<[u8]>` only on insert). `make` must return
    /// a key equal to `key`.
    pub fn get_or_insert_borrowed<Q>(&mut self, key: &Q, make: impl FnOnce(&Q) -> (K, V)) -> (&mut V, bool)
    where
        Q: Equivalent<K> + DashHash + ?Sized,
    {
        let h = self.hash(key);
        if let Some(l) = self.find(h, key) {
            self.stamp_loc(l);
            return (&mut self.item_mut(l).1, false);
        }
        let (k, v) = make(key);
        assert!(key.equivalent(&k), "get_or_insert_borrowed: made key differs from the looked-up key");
        let l = self.insert_unique(h, k, v);
        (&mut self.item_mut(l).1, true)
    }

    /// Remove `key`, returning the stored key and value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        Q: Equivalent<K> + DashHash + ?Sized,
    {
        let l = self.find(self.hash(key), key)?;
        Some(self.remove_loc(l))
    }

    /// Cache-mode promotion of `key`: a stashed item moves into its home
    /// bucket (into a free slot, or swapping with the home's last owned
    /// item when full); an item displaced into the neighbour bucket moves
    /// home if there is room; then the item is rotated to slot 0 of its
    /// bucket (the others shift back by one), so the last slots hold the
    /// least recently bumped items. Returns false if `key` is absent.
    pub fn bump_up<Q>(&mut self, key: &Q) -> bool
    where
        Q: Equivalent<K> + DashHash + ?Sized,
    {
        match self.find(self.hash(key), key) {
            Some(l) => {
                self.segs[l.seg as usize].bump_up(l.pos);
                true
            }
            None => false,
        }
    }

    /// [`bump_up`](Self::bump_up) of the item at `slot`, without looking it
    /// up again; returns where the item is now.
    #[inline]
    pub fn bump_up_slot(&mut self, slot: Slot) -> Slot {
        let l = slot.0;
        let pos = self.segs[l.seg as usize].bump_up(l.pos);
        Slot(Loc { seg: l.seg, pos })
    }

    /// Inserts a key known to be absent (as
    /// [`insert_unique_hashed`](Self::insert_unique_hashed)); when its
    /// segment is full and growth is disallowed, evicts the item in the last
    /// slot of the key's home bucket (passing it to `evict`) instead of
    /// splitting, as [`insert_or_evict`](Self::insert_or_evict) does.
    /// Returns where the new item went.
    pub fn insert_unique_or_evict_hashed(&mut self, hash: u64, key: K, value: V, evict: impl FnOnce(K, V)) -> Slot {
        debug_assert_eq!(hash, self.hash(&key), "insert_unique_or_evict_hashed: wrong hash");
        if self.growth_allowed {
            return Slot(self.insert_unique(hash, key, value));
        }
        let (home, fp) = (home_of_hash(hash), fp_of_hash(hash));
        self.ensure_segment();
        let si = self.dir[self.dir_index(hash)].si;
        let seg = &mut self.segs[si as usize];
        match seg.try_insert(home, fp, (key, value)) {
            Ok(pos) => {
                self.len += 1;
                self.stamp(si, home);
                Slot(Loc { seg: si, pos })
            }
            Err(item) => {
                // The home bucket is full (insertion tried it first).
                let victim_pos = Pos::new(home, seg.slots_per_bucket() - 1);
                let victim_home = seg.home_of(victim_pos);
                let victim = seg.remove_at(victim_pos);
                let pos = match seg.try_insert(home, fp, item) {
                    Ok(p) => {
                        debug_assert_eq!(p, victim_pos);
                        seg.rotate_front(home, p.s())
                    }
                    Err(_) => unreachable!("home bucket has a free slot"),
                };
                self.stamp(si, victim_home);
                self.stamp(si, home);
                evict(victim.0, victim.1);
                Slot(Loc { seg: si, pos })
            }
        }
    }

    /// Cache-mode eviction walk: removes the item in the last busy slot of
    /// regular bucket at traverse position `cursor` (the least recently
    /// bumped item there; if it is empty, the last item of stash bucket
    /// `bucket % 4`), or nothing if both are empty, and returns it
    /// with the cursor of the next logical bucket (0 after the last, as with
    /// [`traverse`](Self::traverse)). Looks at one bucket per call.
    ///
    /// A regular bucket holding fewer than `min_items` items is left alone
    /// (its one item was likely promoted to the front and is the bucket's
    /// most recently used), and with `min_items > 1` the stash too (a
    /// promoted item stays there when its home bucket is full of its
    /// neighbour's items).
    pub fn evict_at_min(&mut self, cursor: u64, min_items: u32) -> (Option<(K, V)>, u64) {
        let (b, prefix) = decode_cursor(cursor);
        if b >= REGULAR_BUCKETS || self.segs.is_empty() {
            return (None, 0);
        }
        let (si, _, end) = self.segment_range(prefix);
        let next = if end == PREFIX_END {
            if b + 1 == REGULAR_BUCKETS { 0 } else { encode_cursor(b + 1, 0) }
        } else {
            encode_cursor(b, end)
        };
        // The bucket's last item; if the bucket is empty, one from the stash
        // bucket `b % 4` (so a full walk also drains the stash).
        let busy = self.segs[si].meta(b).busy();
        if busy != 0 && busy.count_ones() < min_items {
            return (None, next);
        }
        let pos = if busy != 0 {
            Pos::new(b, (31 - busy.leading_zeros()) as usize)
        } else if min_items > 1 {
            return (None, next);
        } else {
            let sb = REGULAR_BUCKETS + b % STASH_BUCKETS;
            let busy = self.segs[si].meta(sb).busy();
            if busy == 0 {
                return (None, next);
            }
            Pos::new(sb, (31 - busy.leading_zeros()) as usize)
        };
        let item = self.remove_loc(Loc { seg: si as u32, pos });
        (Some(item), next)
    }

    /// Insert or replace like [`insert`](Self::insert), but when the target
    /// segment is full and growth is disallowed
    /// ([`set_growth_allowed(false)`](Self::set_growth_allowed)), evict the
    /// item in the last slot of the new key's home bucket (passing it to
    /// `evict`) and put the new item in slot 0 of that bucket instead of
    /// splitting. With growth allowed this is exactly `insert`.
    pub fn insert_or_evict(&mut self, key: K, value: V, evict: impl FnOnce(K, V)) -> Option<V> {
        let h = self.hash(&key);
        if let Some(l) = self.find(h, &key) {
            self.stamp_loc(l);
            return Some(mem::replace(&mut self.item_mut(l).1, value));
        }
        self.insert_unique_or_evict_hashed(h, key, value, evict);
        None
    }

    /// Allocate the first segment of a table that has none (not growth:
    /// done even when growth is disallowed).
    #[inline]
    fn ensure_segment(&mut self) {
        if self.segs.is_empty() {
            let spb = if self.small_segments { MIN_SLOTS } else { SLOTS };
            self.segs.push(Segment::new_boxed(0, spb).into());
            self.count_size(spb, true);
            self.dir = vec![Self::entry_of(&self.segs, 0)];
            self.global_depth = 0;
        }
    }

    /// Insert a key known to be absent; returns where it went.
    fn insert_unique(&mut self, h: u64, key: K, value: V) -> Loc {
        let (home, fp) = (home_of_hash(h), fp_of_hash(h));
        let mut item = (key, value);
        self.ensure_segment();
        loop {
            let di = self.dir_index(h);
            let si = self.dir[di].si;
            match self.segs[si as usize].try_insert(home, fp, item) {
                Ok(pos) => {
                    self.len += 1;
                    self.stamp(si, home);
                    return Loc { seg: si, pos };
                }
                Err(back) => {
                    item = back;
                    if !self.grow(di) {
                        self.split(h);
                    }
                }
            }
        }
    }

    /// Replace the full segment of directory entry `di` by a bigger one
    /// (the next size of the ladder, same items at the same places) if it
    /// is not full size yet. Returns false if it is (it must split).
    fn grow(&mut self, di: usize) -> bool {
        let si = self.dir[di].si as usize;
        let Some(spb) = self.segs[si].next_size() else {
            return false;
        };
        let bigger = self.segs[si].grown(spb);
        self.replace_segment(di, bigger);
        true
    }

    /// Rebuild the segment of directory entry `di` at the smallest size
    /// that fits its items, if smaller (see `Segment::shrunk`).
    fn shrink_segment(&mut self, di: usize) {
        let si = self.dir[di].si as usize;
        if let Some(small) = self.segs[si].shrunk() {
            self.replace_segment(di, small);
        }
    }

    /// Put `new` in place of the segment of directory entry `di`, which has
    /// been emptied into it (same depth), point its directory entries at it
    /// and free the old one (its pages given back first).
    fn replace_segment(&mut self, di: usize, new: Box<Segment<K, V>>) {
        let si = self.dir[di].si as usize;
        let span = 1usize << (self.global_depth - self.segs[si].local_depth as u32);
        let start = di & !(span - 1);
        self.count_size(new.slots_per_bucket(), true);
        let mut old = mem::replace(&mut self.segs[si], new.into());
        self.point_dir(start..start + span, si);
        self.count_size(old.slots_per_bucket(), false);
        old.release_pages();
    }

    /// Gives memory back after deletes, a little at a time: walks the
    /// directory from `cursor` (0 to start), looking at up to `max_visits`
    /// segments, and tries at most `max_merges` merges of pairs of buddy segments
    /// (same local depth, the two halves of one prefix range) that together
    /// hold at most 420 items into one segment of the size they need. When
    /// no segment needs the directory's full depth any more, the directory
    /// halves. Returns the cursor to resume from (0 after the last
    /// segment) and the number of merges done.
    ///
    /// A merge only joins two prefix ranges, so the traversal order, which
    /// depends on hashes alone, is unchanged: a traverse cursor taken
    /// before a merge goes on where it was (a cursor may then point inside
    /// a segment, whose items before it are filtered by prefix, as after
    /// `clear`). Each merge places at most 420 items and reads the
    /// directory once or twice; no user code runs.
    pub fn merge_step(&mut self, cursor: usize, max_visits: usize, max_merges: usize) -> (usize, usize) {
        let mut d = cursor;
        let (mut merges, mut attempts) = (0, 0);
        for _ in 0..max_visits {
            if d >= self.dir.len() {
                return (0, merges);
            }
            let l = self.segs[self.dir[d].si as usize].local_depth as u32;
            let span = 1usize << (self.global_depth - l);
            let start = d & !(span - 1);
            d = start + span;
            if l == 0 || attempts == max_merges {
                continue;
            }
            let pair = start & !(2 * span - 1);
            let (ai, bi) = (self.dir[pair].si as usize, self.dir[pair + span].si as usize);
            let (a, b) = (&self.segs[ai], &self.segs[bi]);
            if a.local_depth as u32 != l || b.local_depth as u32 != l || a.len() + b.len() > MERGE_MAX_ITEMS {
                continue;
            }
            let depth = self.global_depth;
            attempts += 1;
            if self.merge_pair(pair, span, ai, bi) {
                merges += 1;
                d = (pair + 2 * span) >> (depth - self.global_depth);
            }
        }
        (if d >= self.dir.len() { 0 } else { d }, merges)
    }

    /// Merge buddy segments `ai` (directory entries `pair..pair + span`)
    /// and `bi` (the next `span`) if their items fit one segment; halve the
    /// directory while no segment needs its full depth. False if nothing
    /// changed.
    fn merge_pair(&mut self, pair: usize, span: usize, ai: usize, bi: usize) -> bool {
        debug_assert_ne!(ai, bi);
        let (lo, hi) = self.segs.split_at_mut(ai.max(bi));
        let (a, b) = if ai < bi { (&mut lo[ai], &mut hi[0]) } else { (&mut hi[0], &mut lo[bi]) };
        let Some(m) = Segment::merged(a, b, !self.small_segments) else {
            return false;
        };
        self.replace_segment(pair, m);
        // Remove `bi`: the last segment takes its index.
        let last = self.segs.len() - 1;
        let mut gone = self.segs.swap_remove(bi);
        self.count_size(gone.slots_per_bucket(), false);
        gone.release_pages();
        if bi != last {
            for e in &mut self.dir {
                if e.si == last as u32 {
                    e.si = bi as u32;
                }
            }
        }
        if self.segs.len() * 4 < self.segs.capacity() {
            self.segs.shrink_to_fit();
        }
        let mi = if ai == last { bi } else { ai };
        self.point_dir(pair..pair + 2 * span, mi);
        // Halve the directory while every segment spans two entries or more.
        while self.global_depth > 0 && self.dir.chunks_exact(2).all(|p| p[0] == p[1]) {
            self.dir = self.dir.iter().step_by(2).copied().collect();
            self.global_depth -= 1;
        }
        true
    }

    /// Split the segment that holds hash `h` into two segments of depth
    /// `local_depth + 1`, doubling the directory first if needed. Only that
    /// segment's items are touched (hashed once each, then moved).
    fn split(&mut self, h: u64) {
        let si = self.dir[self.dir_index(h)].si as usize;
        let l = self.segs[si].local_depth as u32;
        assert!(
            l < MAX_DEPTH,
            "DashTable: segment at maximum depth {MAX_DEPTH}; the DashHash implementation is degenerate"
        );
        if l == self.global_depth {
            assert!(
                self.dir.len() < DEGENERATE_MIN_DIR
                    || self.dir.len() * 2 <= self.segs.len() * DEGENERATE_DIR_PER_SEGMENT,
                "DashTable: directory would grow to {} entries for {} segments; \
                 the DashHash implementation is degenerate",
                self.dir.len() * 2,
                self.segs.len()
            );
            let mut dir = Vec::with_capacity(self.dir.len() * 2);
            for &x in &self.dir {
                dir.push(x);
                dir.push(x);
            }
            self.dir = dir;
            self.global_depth += 1;
        }
        // Decide first (this runs user hash code), mutate after.
        let bit = 63 - l;
        let seed = self.seed;
        let mut mask = [0u16; TOTAL_BUCKETS];
        {
            let seg = &self.segs[si];
            for p in seg.positions() {
                if (seg.item(p).0.dash_hash(seed) >> bit) & 1 == 1 {
                    mask[p.b()] |= 1 << p.s();
                }
            }
        }
        let spb = self.segs[si].slots_per_bucket();
        let mut new_seg = SegBox::from(Segment::new_boxed((l + 1) as u8, spb));
        let ni = u32::try_from(self.segs.len()).expect("DashTable: too many segments");
        self.segs.reserve(1);
        let seg = &mut self.segs[si];
        seg.local_depth = (l + 1) as u8;
        seg.split_into(&mut new_seg, &mask);
        self.segs.push(new_seg);
        self.count_size(spb, true);
        let span = 1usize << (self.global_depth - l);
        let start = self.dir_index(h) & !(span - 1);
        self.point_dir(start + span / 2..start + span, ni as usize);
        // Each half holds about half the items: give both the size that
        // fits them, so the table does not double its slots at once.
        if self.small_segments {
            self.shrink_segment(start);
            self.shrink_segment(start + span / 2);
        }
    }

    /// Resumable, stateless traversal in hash order.
    ///
    /// Start with `cursor = 0`; each call visits every item of the next
    /// non-empty logical bucket (all items whose home is bucket `b` of one
    /// segment, wherever they sit: home, neighbour or stash) and returns
    /// the cursor to pass next, or 0 when the traversal is complete. A
    /// call gives up after skipping 256 empty logical buckets and may then
    /// return a non-zero cursor without having called `f`.
    ///
    /// Cursor layout (bits): `0..46` hash prefix (top 46 bits of the hash
    /// space where the next segment starts), `46..52` logical bucket id
    /// (0..56), `52..64` **always 0 on output and ignored on input** (free
    /// for the caller, e.g. a shard number).
    ///
    /// Order: bucket id major, hash prefix minor. Both are functions of
    /// the key's hash alone, so the traversal walks a fixed total order of
    /// hash positions that splits cannot change (a split only refines the
    /// prefix ranges). Consequently, even with splits, inserts and removes
    /// between calls: a key present for the whole traversal is visited
    /// **exactly once**, and any key is visited **at most once** (a key
    /// removed and re-inserted returns to the same position). After
    /// `clear` shrinks the directory the cursor may point inside a segment;
    /// items before it are filtered out by prefix, keeping the guarantee.
    pub fn traverse(&self, cursor: u64, mut f: impl FnMut(&K, &V)) -> u64 {
        let (mut b, mut prefix) = decode_cursor(cursor);
        if b >= REGULAR_BUCKETS || self.segs.is_empty() {
            return 0;
        }
        for _ in 0..TRAVERSE_MAX_EMPTY {
            let (si, start, end) = self.segment_range(prefix);
            let seg = &self.segs[si];
            let mut visited = false;
            let filter = prefix != start;
            seg.for_each_in_logical(b, |p| {
                let (k, v) = seg.item(p);
                if filter && prefix_of_hash(k.dash_hash(self.seed)) < prefix {
                    return;
                }
                visited = true;
                f(k, v);
            });
            if !next_range(&mut b, &mut prefix, end) {
                return 0;
            }
            if visited {
                break;
            }
        }
        encode_cursor(b, prefix)
    }

    /// [`traverse`](Self::traverse) with mutable keys, for changing bits of
    /// a key that take no part in its hash or equality (the server's
    /// per-key access stamp, aged by a background walk). Same cursor, same
    /// order, same exactly-once guarantee; stamps no bucket version (no
    /// item changes as far as lookups and snapshots are concerned).
    /// Changing a key's hash or equality misplaces it but is memory-safe.
    pub fn traverse_keys_mut(&mut self, cursor: u64, mut f: impl FnMut(&mut K)) -> u64 {
        let (mut b, mut prefix) = decode_cursor(cursor);
        if b >= REGULAR_BUCKETS || self.segs.is_empty() {
            return 0;
        }
        // A logical bucket's items: its own slots, its neighbour's probing
        // slots and its stashed items.
        let mut found = [Pos { bucket: 0, slot: 0 }; 2 * SLOTS + STASH_BUCKETS * SLOTS];
        for _ in 0..TRAVERSE_MAX_EMPTY {
            let (si, start, end) = self.segment_range(prefix);
            let mut n = 0;
            self.segs[si].for_each_in_logical(b, |p| {
                found[n] = p;
                n += 1;
            });
            let filter = prefix != start;
            let mut visited = false;
            let seed = self.seed;
            for &p in &found[..n] {
                let k = &mut self.segs[si].item_mut(p).0;
                if filter && prefix_of_hash(k.dash_hash(seed)) < prefix {
                    continue;
                }
                visited = true;
                f(k);
            }
            if !next_range(&mut b, &mut prefix, end) {
                return 0;
            }
            if visited {
                break;
            }
        }
        encode_cursor(b, prefix)
    }

    /// Cursor of the logical bucket that currently holds `key`'s hash
    /// position (present or not): `traverse(bucket_cursor(k), f)` visits
    /// it first, and `bucket_version(bucket_cursor(k))` is its version.
    /// Changes when that segment splits.
    pub fn bucket_cursor<Q>(&self, key: &Q) -> u64
    where
        Q: DashHash + ?Sized,
    {
        let h = key.dash_hash(self.seed);
        if self.segs.is_empty() {
            // As for the one segment of depth 0 the first insert creates.
            return encode_cursor(home_of_hash(h), 0);
        }
        let (_, start, _) = self.segment_range(prefix_of_hash(h));
        encode_cursor(home_of_hash(h), start)
    }
}

/// Empty segments taken out of a table by [`DashTable::drain_into`], to be
/// freed later, a few at a time.
pub struct Retired<K, V> {
    segs: Vec<SegBox<K, V>>,
}

impl<K, V> Retired<K, V> {
    /// Frees up to `n` segments; returns how many are left.
    pub fn free_some(&mut self, n: usize) -> usize {
        let keep = self.segs.len().saturating_sub(n);
        self.segs.truncate(keep);
        self.segs.len()
    }

    /// Segments not freed yet.
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    /// True when every segment was freed.
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }
}

impl<K, V> Default for DashTable<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for DashTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Eq + DashHash, V> Extend<(K, V)> for DashTable<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K: Eq + DashHash, V> FromIterator<(K, V)> for DashTable<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut t = Self::new();
        t.extend(iter);
        t
    }
}

impl<'a, K, V> IntoIterator for &'a DashTable<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;
    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

/// Iterator returned by [`DashTable::iter`].
pub struct Iter<'a, K, V> {
    segs: std::slice::Iter<'a, SegBox<K, V>>,
    seg: Option<&'a Segment<K, V>>,
    bucket: usize,
    mask: u32,
    left: usize,
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.mask != 0 {
                let seg = self.seg?;
                let s = self.mask.trailing_zeros() as usize;
                self.mask &= self.mask - 1;
                self.left -= 1;
                let (k, v) = seg.item(Pos::new(self.bucket, s));
                return Some((k, v));
            }
            match self.seg {
                Some(seg) if self.bucket + 1 < TOTAL_BUCKETS => {
                    self.bucket += 1;
                    self.mask = seg.meta(self.bucket).busy();
                }
                _ => {
                    let seg = loop {
                        let s = self.segs.next()?;
                        if s.len() > 0 {
                            break s;
                        }
                    };
                    self.seg = Some(seg);
                    self.bucket = 0;
                    self.mask = seg.meta(0).busy();
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<K, V> ExactSizeIterator for Iter<'_, K, V> {}
impl<K, V> std::iter::FusedIterator for Iter<'_, K, V> {}

#[cfg(test)]
impl<K: Eq + DashHash, V> DashTable<K, V> {
    /// True if a lookup of absent `key` reads more than its home bucket's
    /// 16 metadata bytes (tests only).
    pub(crate) fn miss_leaves_home(&self, key: &K) -> bool {
        let h = self.hash(key);
        let seg = self.seg_of(self.dir[self.dir_index(h)]);
        seg.lookup_leaves_home(home_of_hash(h), fp_of_hash(h))
    }
}
