//! One Dash segment: 56 regular buckets + 4 stash buckets of `spb` slots
//! each (4..=14; see "Segment sizes" in the module docs of `dash`).
//!
//! All `unsafe` of the table lives in this file: slot storage is
//! `MaybeUninit<(K, V)>` and a slot is initialized iff its busy bit is set.
//! Only [`Segment::item`], [`Segment::item_mut`], [`Segment::take`],
//! [`Segment::new_boxed`], [`Segment::grown`] and [`Segment::iter_mut`]
//! touch that invariant.

use std::mem::MaybeUninit;

/// Slots per bucket.
pub const SLOTS: usize = 14;
/// Regular (addressable) buckets per segment.
pub const REGULAR_BUCKETS: usize = 56;
/// Stash buckets per segment.
pub const STASH_BUCKETS: usize = 4;
/// All buckets per segment.
pub const TOTAL_BUCKETS: usize = REGULAR_BUCKETS + STASH_BUCKETS;
/// Item capacity of one segment.
pub const SEGMENT_CAPACITY: usize = TOTAL_BUCKETS * SLOTS;

const SLOT_MASK: u32 = (1 << SLOTS) - 1;

// Layout facts the bit packing relies on.
const _: () = assert!(SLOTS <= 14, "busy bits + 2 flags must fit a u16");
const _: () = assert!(
    (REGULAR_BUCKETS * 16).is_multiple_of(64) && STASH_BUCKETS * 16 == 64,
    "the stash buckets' hot halves are one cache line (see `find_stashed`)"
);
const _: () = assert!(REGULAR_BUCKETS <= 64, "bucket id must fit the 6-bit cursor field");
const _: () = assert!(TOTAL_BUCKETS <= u8::MAX as usize);
const _: () = assert!(SEGMENT_CAPACITY <= u16::MAX as usize, "segment len is a u16");
const _: () = assert!(REGULAR_BUCKETS <= u8::MAX as usize, "stash_home is u8");
const _: () = assert!(
    std::mem::size_of::<Hot>() == 16 && std::mem::align_of::<Hot>() == 16,
    "a lookup reads one aligned 16-byte block"
);
/// Cache line size the segment layout is aligned to.
pub const CACHE_LINE: usize = 64;
/// A segment's fixed header: 60 x (16 B hot + 8 B cold) metadata + 56 B
/// stash_home + depth/len (padded to 8) + 56 x 4 B versions = 1728 B
/// (exactly 27 cache lines), so the slots start on a cache line.
pub const SEGMENT_HEADER_BYTES: usize = TOTAL_BUCKETS * (16 + 8) + STASH_BUCKETS * SLOTS + 8 + REGULAR_BUCKETS * 4;
const _: () = assert!(SEGMENT_HEADER_BYTES == 1728 && SEGMENT_HEADER_BYTES.is_multiple_of(CACHE_LINE));
/// A rebuilt segment (split halves, merges) starts at the smallest size at which its
/// items fill at most this share of its slots.
const REBUILD_FILL_PERCENT: usize = 85;
/// Fewest slots per bucket a segment is allocated with (a table's first
/// segment; it grows towards [`SLOTS`] before it splits).
pub const MIN_SLOTS: usize = 4;
// With the server's 32-byte items a full-size segment is 1728 + 840 × 32 = 28,608
// bytes: inside mimalloc's 28 KiB size class (28,672). With u64 versions it was
// 28,864 and took a 32 KiB block, 13% of the table wasted.
const _: () = assert!(segment_bytes(SLOTS, 32, 8) <= 28 * 1024);
const _: () = assert!(segment_bytes(SLOTS, 16, 8) == 15_168);
const _: () = assert!(segment_bytes(SLOTS, 24, 8) == 21_888);
// The growth ladder of the server's 32-byte items, each step the largest
// segment of its size class: 9,408 B (10 KiB), 11,328 (12 KiB), 13,248
// (14 KiB), 15,168 (16 KiB), 19,008 (20 KiB), 22,848 (24 KiB), 28,608 (28 KiB).
const _: () = assert!(
    matches!(next_slots(4, 32, 8), Some(5))
        && matches!(next_slots(5, 32, 8), Some(6))
        && matches!(next_slots(6, 32, 8), Some(7))
        && matches!(next_slots(7, 32, 8), Some(9))
        && matches!(next_slots(9, 32, 8), Some(11))
        && matches!(next_slots(11, 32, 8), Some(14))
        && next_slots(14, 32, 8).is_none()
);

/// Bytes of a segment with `spb` slots per bucket for items of `size`
/// bytes aligned to `align`: the header, the slots, padded to the
/// segment's alignment (a cache line, or the item's if larger).
pub const fn segment_bytes(spb: usize, size: usize, align: usize) -> usize {
    let a = if align > CACHE_LINE { align } else { CACHE_LINE };
    (SEGMENT_HEADER_BYTES + TOTAL_BUCKETS * spb * size).next_multiple_of(a)
}

/// The allocator block a request of `n` bytes takes, assuming size classes
/// spaced four per power of two (mimalloc's and jemalloc's spacing above a
/// few hundred bytes: 16 KiB, 20, 24, 28, 32 KiB, ...).
pub const fn size_class(n: usize) -> usize {
    if n <= 64 {
        return n.next_multiple_of(8);
    }
    let top = usize::BITS - 1 - (n - 1).leading_zeros(); // 2^top < n <= 2^(top+1)
    let step = 1usize << (top - 2);
    n.next_multiple_of(step)
}

/// The next slots-per-bucket size a segment of `spb` grows to: the largest
/// one whose segment still fits the smallest size class above the current
/// segment's block, so each step buys a whole class and wastes almost none
/// of it. `None` at [`SLOTS`] (a full-size segment splits instead).
pub const fn next_slots(spb: usize, size: usize, align: usize) -> Option<usize> {
    if spb >= SLOTS {
        return None;
    }
    let cur = size_class(segment_bytes(spb, size, align));
    let mut best = spb + 1;
    let mut cand = spb + 1;
    // The first class above `cur` that some size reaches, then the largest
    // size inside that class.
    let mut class = 0;
    while cand <= SLOTS {
        let c = size_class(segment_bytes(cand, size, align));
        if c > cur {
            if class == 0 {
                class = c;
            }
            if c == class {
                best = cand;
            } else {
                break;
            }
        }
        cand += 1;
    }
    if class == 0 { Some(SLOTS) } else { Some(best) }
}

/// The half of a bucket's metadata a lookup reads: 16 bytes, 16-aligned
/// (so it never straddles two cache lines; four buckets per line).
///
/// ```text
/// byte 0..spb   fp: one-byte fingerprint per slot (0 in a free slot)
/// byte spb..14  refs: fingerprints of items homed here that live in the
///               neighbour or the stash (0 = no ref); none when spb = 14
/// byte 14..16   word (u16): busy[0..spb] | ELSEWHERE_FLAG (bit 15)
/// ```
///
/// A fingerprint is any byte, 0 included (`fp_of_hash`). One SSE2 compare
/// matches all 14 bytes: matches among busy slots (the word's busy bits)
/// are candidates here, any other match is a ref, so a lookup looks beyond
/// the home bucket only for a ref match or when `ELSEWHERE_FLAG` says some
/// item homed here has no ref (see [`Segment::refresh_refs`]). Free slots
/// and empty refs hold 0, so a probe of 0 also "matches a ref" there: a
/// lookup of such a key (1 in 256) may look beyond the home for nothing.
#[repr(C, align(16))]
#[derive(Clone, Copy, Default)]
pub(crate) struct Hot([u8; 16]);

/// Byte offset of `Hot`'s word (after the 14 fingerprints).
const WORD_IDX: usize = SLOTS;

/// `Hot::word` bit 15: some item homed here lives in the neighbour or the
/// stash without a ref in the spare fingerprint bytes (always the case for
/// such items in a 14-slot bucket, which has no spare bytes). Bit 14 is
/// unused (0).
const ELSEWHERE_FLAG: u16 = 1 << 15;

/// The other half of a bucket's metadata (insert, remove, moves; lookups
/// never read it): one `u64`.
///
/// ```text
/// bits  0..14  probe: slot holds an item displaced from the previous bucket
/// bits 14..64  0 (free; they held per-home stash refs, which the refs in
///              the hot half replaced)
/// ```
const PROBE_MASK: u64 = SLOT_MASK as u64;

/// A bucket's metadata (both halves), by value: read with
/// [`Segment::meta`], changed with [`Segment::update_meta`].
#[derive(Clone, Copy, Default)]
pub(crate) struct Meta {
    hot: Hot,
    cold: u64,
}

impl Hot {
    #[inline(always)]
    fn word(&self) -> u16 {
        u16::from_le_bytes(self.0[WORD_IDX..].try_into().unwrap())
    }
    #[inline(always)]
    fn set_word(&mut self, w: u16) {
        [self.0[WORD_IDX], self.0[WORD_IDX + 1]] = w.to_le_bytes();
    }
    #[inline(always)]
    fn busy(&self) -> u32 {
        self.word() as u32 & SLOT_MASK
    }

    /// The busy slots whose fingerprint matched, given `all =
    /// self.matches(probe)` and `w = self.word()`: the candidates to compare
    /// keys with. (The word's bits 14 and 15 are above `SLOT_MASK`, so only
    /// busy bits survive.)
    #[inline(always)]
    fn candidates(all: u32, w: u16) -> u32 {
        all & SLOT_MASK & w as u32
    }

    /// True if an item homed here with the probe's fingerprint may live
    /// outside this bucket, given `all = self.matches(probe)` and `w =
    /// self.word()`: a byte that is not a busy slot matches (a ref, or a
    /// free slot or empty ref for a probe of 0), or some item elsewhere has
    /// no ref. A test of bytes a lookup has already loaded, so a miss
    /// usually stops at the home's 16 bytes.
    #[inline(always)]
    fn may_be_elsewhere(all: u32, w: u16) -> bool {
        all & SLOT_MASK & !(w as u32) != 0 || w & ELSEWHERE_FLAG != 0
    }

    /// Zero the fingerprint bytes of free slots and refs (all but the busy
    /// slots'), and the flag.
    fn clear_free(&mut self) {
        let busy = self.busy();
        for (i, b) in self.0[..SLOTS].iter_mut().enumerate() {
            if busy & (1 << i) == 0 {
                *b = 0;
            }
        }
        self.set_word(busy as u16);
    }

    /// Bitmask of bytes (slots and refs) equal to `fp`, which may be any
    /// byte (0 matches free slots and empty refs). Tests only.
    #[cfg(test)]
    fn match_fp(&self, fp: u8) -> u32 {
        self.matches(Probe::new(fp)) & SLOT_MASK
    }

    /// The bytes equal to the probe's fingerprint, as a 16-bit mask whose
    /// bits 14 and 15 (the word's bytes) are meaningless: one load of the
    /// 16 bytes. Callers mask the result ([`candidates`](Self::candidates)
    /// with the word's busy bits, `& SLOT_MASK` for slots and refs).
    #[inline(always)]
    fn matches(&self, p: Probe) -> u32 {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_load_si128, _mm_movemask_epi8};
            // SAFETY: these intrinsics only require the `sse2` target
            // feature, which every x86_64 target has (it is part of the
            // x86_64 baseline). The load reads the 16 bytes of `self`,
            // which `repr(align(16))` makes 16-aligned, as it requires.
            let m = unsafe {
                let v = _mm_load_si128(self.0.as_ptr().cast::<__m128i>());
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, p.0))
            };
            m as u32
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            // SWAR fallback.
            let lo = u64::from_le_bytes(self.0[0..8].try_into().unwrap());
            let hi = u64::from_le_bytes(self.0[8..16].try_into().unwrap());
            let pat = 0x0101_0101_0101_0101u64 * p.0 as u64;
            zero_bytes(lo ^ pat) | (zero_bytes(hi ^ pat) << 8)
        }
    }
}

/// A lookup's fingerprint, ready to be compared with buckets' 16 bytes
/// (on x86_64, the byte broadcast to an SSE2 register). Any byte: a
/// lookup masks matches with the busy bits (see [`Hot`]), so a probe of 0
/// never takes a free slot for an item.
#[derive(Clone, Copy)]
pub(crate) struct Probe(
    #[cfg(target_arch = "x86_64")] std::arch::x86_64::__m128i,
    #[cfg(not(target_arch = "x86_64"))] u8,
);

impl Probe {
    /// Probe for fingerprint `fp` (tests; lookups use
    /// [`of_hash`](Self::of_hash)).
    #[cfg(test)]
    pub(crate) fn new(fp: u8) -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::_mm_set1_epi8;
            // SAFETY: SSE2 is x86_64 baseline.
            Probe(unsafe { _mm_set1_epi8(fp as i8) })
        }
        #[cfg(not(target_arch = "x86_64"))]
        Probe(fp)
    }

    /// Probe for fingerprint `(h >> 32) as u8` (`fp_of_hash`), broadcast
    /// straight from the hash's register: byte 4 of `h` doubled into word 4,
    /// spread over the high four words, then dword 2 over all four (no
    /// shift of `h` first).
    #[inline(always)]
    pub(crate) fn of_hash(h: u64) -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_cvtsi64_si128, _mm_shuffle_epi32, _mm_shufflehi_epi16, _mm_unpacklo_epi8};
            // SAFETY: SSE2 is x86_64 baseline.
            Probe(unsafe {
                let v = _mm_cvtsi64_si128(h as i64);
                let v = _mm_unpacklo_epi8(v, v);
                let v = _mm_shufflehi_epi16::<0>(v);
                _mm_shuffle_epi32::<0xaa>(v)
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        Probe((h >> 32) as u8)
    }
}

/// A segment's size as a lookup uses it ([`Segment::shape`]): how many
/// bytes of slots a bucket has (a lookup finds a bucket's first slot with
/// one multiply, not a multiply by the item size too), and which
/// fingerprint bytes are slots (the slots per bucket, for the segment's
/// slice length; lookups mask matches with the busy bits instead). Four
/// bytes, so a directory entry holds it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Shape {
    /// `(1 << spb) - 1`.
    pub(crate) slot_mask: u16,
    /// `spb * size_of::<(K, V)>()`.
    pub(crate) stride: u16,
}

impl Shape {
    /// Slots per bucket.
    #[inline(always)]
    pub(crate) fn slots_per_bucket(self) -> u32 {
        (self.slot_mask as u32 + 1).trailing_zeros()
    }
}

impl Meta {
    #[inline(always)]
    pub(crate) fn busy(&self) -> u32 {
        self.hot.busy()
    }
    #[inline(always)]
    pub(crate) fn probe(&self) -> u32 {
        (self.cold & PROBE_MASK) as u32
    }
    /// Busy slots that hold items homed in this bucket.
    #[inline(always)]
    pub(crate) fn owned(&self) -> u32 {
        self.busy() & !self.probe()
    }
    /// Busy slots that hold items displaced from the previous bucket.
    #[inline(always)]
    pub(crate) fn probing(&self) -> u32 {
        self.busy() & self.probe()
    }
    /// The first free slot among those in `mask` (the segment's slots).
    #[inline(always)]
    fn free_slot(&self, mask: u32) -> Option<usize> {
        let free = !self.busy() & mask;
        if free == 0 { None } else { Some(free.trailing_zeros() as usize) }
    }
    #[inline(always)]
    pub(crate) fn fp(&self, slot: usize) -> u8 {
        self.hot.0[slot]
    }

    #[inline(always)]
    fn mark(&mut self, slot: usize, fp: u8, probe: bool) {
        self.hot.set_word(self.hot.word() | (1 << slot));
        if probe {
            self.cold |= 1 << slot;
        } else {
            self.cold &= !(1 << slot);
        }
        self.hot.0[slot] = fp;
    }

    #[inline(always)]
    fn unmark(&mut self, slot: usize) {
        self.hot.set_word(self.hot.word() & !(1 << slot));
        self.cold &= !(1 << slot);
        self.hot.0[slot] = 0;
    }

    /// Rotate slots `0..=s` right by one in the metadata (slot `s` moves to
    /// slot 0, slots `0..s` shift up by one).
    fn rotate_front(&mut self, s: usize) {
        let m = (1u64 << (s + 1)) - 1;
        let rot = |x: u64| -> u64 { (x & !m) | ((x << 1) & m) | ((x >> s) & 1) };
        // Busy bits rotate inside the word (all below `s + 1 <= spb`); the
        // flag and the refs (bytes from `spb` up) stay.
        self.hot.set_word(rot(self.hot.word() as u64) as u16);
        self.cold = rot(self.cold);
        self.hot.0[..=s].rotate_right(1);
    }
}

/// Hint the CPU to fetch the cache line holding `p` into all cache levels.
/// Never faults and reads nothing: `p` may be any address.
#[inline(always)]
fn prefetch(p: *const u8) {
    // (Not under Miri, which need not know the intrinsic; it is only a hint.)
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `prefetch` is a hint: it never faults, whatever the
        // address, and has no effect on program state (SSE is x86_64
        // baseline).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) }
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    let _ = p;
}

/// High bit of every zero byte of `x`, compressed to one bit per byte
/// (bit i set iff byte i of `x` is zero). Exact (no false positives).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn zero_bytes(x: u64) -> u32 {
    const L: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let hi = !(((x & L).wrapping_add(L)) | x | L); // 0x80 in each zero byte
    // Gather bit 7 of each byte into the top byte, bit i <- byte i.
    (((hi >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56) as u32
}

/// Position of an item inside a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) bucket: u8,
    pub(crate) slot: u8,
}

impl Pos {
    #[inline(always)]
    pub(crate) fn new(bucket: usize, slot: usize) -> Self {
        Pos { bucket: bucket as u8, slot: slot as u8 }
    }
    #[inline(always)]
    pub(crate) fn b(self) -> usize {
        self.bucket as usize
    }
    #[inline(always)]
    pub(crate) fn s(self) -> usize {
        self.slot as usize
    }
}

#[inline(always)]
pub(crate) fn next_bucket(b: usize) -> usize {
    if b + 1 == REGULAR_BUCKETS { 0 } else { b + 1 }
}

#[inline(always)]
pub(crate) fn prev_bucket(b: usize) -> usize {
    if b == 0 { REGULAR_BUCKETS - 1 } else { b - 1 }
}

/// A fixed-size open-addressed mini table. See the module docs of
/// `dash` for the placement rules.
///
/// `repr(C)` keeps the hot metadata halves of all 60 buckets together at
/// the front (960 B), so a lookup (and almost every miss) touches one cache
/// line of metadata before the single slot it compares keys with.
/// `align(64)` plus the header padding put slot 0 on a cache line.
#[repr(C, align(64))]
pub(crate) struct Segment<K, V> {
    /// Lookup half of each bucket's metadata (960 B, 15 cache lines).
    hot: [Hot; TOTAL_BUCKETS],
    /// The rest of each bucket's metadata (480 B).
    cold: [u64; TOTAL_BUCKETS],
    /// Home bucket of the item in each stash slot (valid where busy).
    stash_home: [[u8; SLOTS]; STASH_BUCKETS],
    pub(crate) local_depth: u8,
    _pad0: u8,
    len: u16,
    _pad1: [u8; 4],
    /// Version of each logical bucket (items homed in regular bucket i).
    pub(crate) versions: [u32; REGULAR_BUCKETS],
    /// `TOTAL_BUCKETS` buckets of `slots_per_bucket()` slots each, bucket
    /// after bucket. The length lives in the (fat) pointer, so finding a
    /// slot reads nothing from the segment's header.
    slots: [MaybeUninit<(K, V)>],
}

impl<K, V> Segment<K, V> {
    /// Allocate an empty segment of `spb` slots per bucket directly on the
    /// heap (no stack temporary, so huge `K`/`V` cannot overflow the stack).
    pub(crate) fn new_boxed(local_depth: u8, spb: usize) -> Box<Self> {
        assert!((1..=SLOTS).contains(&spb), "dash: {spb} slots per bucket");
        let item = std::alloc::Layout::new::<MaybeUninit<(K, V)>>();
        let size = segment_bytes(spb, item.size(), item.align());
        let layout =
            std::alloc::Layout::from_size_align(size, item.align().max(CACHE_LINE)).expect("dash: segment layout");
        let n = TOTAL_BUCKETS * spb;
        // SAFETY: the layout's size is at least the 1728-byte header, never 0.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        if raw.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let fat = std::ptr::slice_from_raw_parts_mut(raw.cast::<MaybeUninit<(K, V)>>(), n) as *mut Self;
        // SAFETY: `raw` is a live allocation of `layout`, which is exactly the
        // layout of a `Segment` with `n` slots: `repr(C)` puts the slice at
        // the header's end (1728, a multiple of every alignment up to 64, the
        // segment's), and the size is header + slots padded to that alignment,
        // as `segment_bytes` computes (checked below, so `Box`'s dealloc gets
        // the same layout). Every header field is an integer, an array of
        // integers or a `repr(C)` struct of integers (`Hot`): all-zero bytes
        // are valid for each and mean "all slots free", matching the
        // uninitialized `MaybeUninit` slots.
        let mut b = unsafe { Box::from_raw(fat) };
        assert_eq!(std::mem::size_of_val(&*b), size, "dash: segment layout");
        assert_eq!(
            (std::ptr::from_ref(&b.slots) as *const u8 as usize) - (std::ptr::from_ref(&*b) as *const u8 as usize),
            SEGMENT_HEADER_BYTES,
            "dash: slots start after the header"
        );
        b.local_depth = local_depth;
        b
    }

    /// Slots per bucket of this segment (`MIN_SLOTS..=SLOTS`), from the
    /// pointer's length: no memory read.
    #[inline(always)]
    pub(crate) fn slots_per_bucket(&self) -> usize {
        self.slots.len() / TOTAL_BUCKETS
    }

    /// Index into `slots` of slot `s` of bucket `b`.
    #[inline(always)]
    fn idx(&self, b: usize, s: usize) -> usize {
        debug_assert!(b < TOTAL_BUCKETS && s < self.slots_per_bucket());
        b * self.slots_per_bucket() + s
    }

    /// First free slot of bucket `b`.
    #[inline(always)]
    fn free_slot(&self, b: usize) -> Option<usize> {
        self.meta(b).free_slot((1 << self.slots_per_bucket()) - 1)
    }

    /// The next size up for this segment ([`next_slots`]), or `None` if it
    /// is full size and must split.
    pub(crate) fn next_size(&self) -> Option<usize> {
        let item = std::alloc::Layout::new::<(K, V)>();
        next_slots(self.slots_per_bucket(), item.size(), item.align())
    }

    /// This segment with `spb` (more) slots per bucket: a new allocation
    /// holding every item at the same bucket and slot, so all placement
    /// metadata is copied as is. `self` is left empty. Calls no user code.
    pub(crate) fn grown(&mut self, spb: usize) -> Box<Self> {
        assert!(spb >= self.slots_per_bucket(), "dash: grown() cannot shrink");
        let mut g = Self::new_boxed(self.local_depth, spb);
        g.hot = self.hot;
        // The old refs sit in what are now free slots (and fewer refs fit):
        // clear them; `rebalance_stash` below rewrites all refs.
        for h in &mut g.hot {
            h.clear_free();
        }
        g.cold = self.cold;
        g.stash_home = self.stash_home;
        g.versions = self.versions;
        g.len = self.len;
        for b in 0..TOTAL_BUCKETS {
            let mut m = self.hot[b].busy();
            while m != 0 {
                let s = m.trailing_zeros() as usize;
                m &= m - 1;
                let (from, to) = (self.idx(b, s), g.idx(b, s));
                // SAFETY: slot `s` of `b` is busy, hence initialized (see
                // `item`); its busy bit is cleared below with all the others
                // before `self` can be read or dropped, so the value is moved
                // out exactly once.
                g.slots[to].write(unsafe { self.slots[from].assume_init_read() });
            }
        }
        self.hot = [Hot::default(); TOTAL_BUCKETS];
        self.cold = [0; TOTAL_BUCKETS];
        self.len = 0;
        g.pull_probing_home();
        g.rebalance_stash();
        g
    }

    /// Give the pages of this emptied segment back to the operating system
    /// just before it is freed (`MADV_DONTNEED` on the whole pages inside
    /// it, except the first, where allocators keep their free-list link).
    /// A grow or a split frees a segment whose size class the table will
    /// not allocate again until its next wave of splits; without this the
    /// freed block stays resident in a page that still holds live blocks
    /// (measured: ~6 B per key of RSS above used_memory at 1M keys). When
    /// the allocator reuses the block, its pages fault in again as zeros.
    pub(crate) fn release_pages(&mut self) {
        assert_eq!(self.len, 0, "dash: release_pages of a segment with items");
        #[cfg(all(target_os = "linux", not(miri)))]
        {
            const PAGE: usize = 4096;
            let start = std::ptr::from_mut(self) as *mut u8 as usize;
            let end = start + std::mem::size_of_val(self);
            let from = (start + 1).next_multiple_of(PAGE);
            let to = end / PAGE * PAGE;
            if to > from {
                // SAFETY: `[from, to)` lies inside this segment's allocation,
                // which `&mut self` owns exclusively, and nothing reads it
                // before it is freed (the caller drops the segment next).
                // On private memory (every allocator's heap) MADV_DONTNEED
                // makes the bytes read as zero, valid for every header
                // field ("all slots free", as `len == 0` says) and for the
                // `MaybeUninit` slots; on shared memory they keep their
                // value. Either way the segment stays a valid empty one.
                unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_DONTNEED) };
            }
        }
    }

    /// The smallest segment size (slots per bucket, on the growth ladder
    /// from [`MIN_SLOTS`]) with room for `n` items at most
    /// `REBUILD_FILL_PERCENT` full.
    fn fitting_size(n: usize) -> usize {
        let item = std::alloc::Layout::new::<(K, V)>();
        let mut spb = MIN_SLOTS;
        while n * 100 > TOTAL_BUCKETS * spb * REBUILD_FILL_PERCENT {
            match next_slots(spb, item.size(), item.align()) {
                Some(next) => spb = next,
                None => break,
            }
        }
        spb
    }

    /// This segment rebuilt at a smaller size if its items fit one: the
    /// smallest that fits them comfortably ([`fitting_size`](Self::fitting_size))
    /// or a bigger one still below its size now (see
    /// [`placed_anew`](Self::placed_anew)). `self` is left empty on
    /// success. Calls no user code.
    pub(crate) fn shrunk(&mut self) -> Option<Box<Self>> {
        let (from, below) = (Self::fitting_size(self.len()), self.slots_per_bucket());
        let depth = self.local_depth;
        Self::placed_anew(&mut [self], from, below, depth)
    }

    /// Buddy segments `a` and `b` (same local depth, together one prefix
    /// range) merged into one of depth one less, at the smallest size from
    /// [`fitting_size`](Self::fitting_size) up (full size only with
    /// `full_size`) where their items fit, or `None` (nothing moved) if
    /// they fit none. Both are left empty on success. Calls no user code.
    pub(crate) fn merged(a: &mut Self, b: &mut Self, full_size: bool) -> Option<Box<Self>> {
        debug_assert_eq!(a.local_depth, b.local_depth);
        let from = if full_size { SLOTS } else { Self::fitting_size(a.len() + b.len()) };
        let depth = a.local_depth.checked_sub(1).expect("dash: merge of depth-0 segments");
        Self::placed_anew(&mut [a, b], from, SLOTS + 1, depth)
    }

    /// A new segment of depth `local_depth` holding every item of `parts`,
    /// of the first size on the growth ladder from `from` (below `below`)
    /// at which they all fit: each item is placed afresh (home, neighbour,
    /// displacement, stash) from its recorded home bucket and fingerprint,
    /// part after part in storage order, so a bucket's items keep their
    /// order (the cache-mode ranking). A dry run on metadata alone first
    /// checks each size; if none fits, `None` and nothing moved. Bucket
    /// versions are the parts' maximum.
    fn placed_anew(parts: &mut [&mut Self], from: usize, below: usize, local_depth: u8) -> Option<Box<Self>> {
        // Every item's position, home and fingerprint, in that order: both
        // runs place them in this order, so they place them alike.
        let order: Vec<Vec<(Pos, usize, u8)>> = parts
            .iter()
            .map(|seg| seg.positions().map(|p| (p, seg.home_of(p), seg.meta(p.b()).fp(p.s()))).collect())
            .collect();
        let item = std::alloc::Layout::new::<(K, V)>();
        let mut spb = from;
        loop {
            if spb >= below {
                return None;
            }
            let mut dry = Segment::<(), ()>::new_boxed(local_depth, spb);
            if order.iter().flatten().all(|&(_, home, fp)| dry.try_insert(home, fp, ((), ())).is_ok()) {
                break;
            }
            spb = next_slots(spb, item.size(), item.align())?;
        }
        let mut n = Self::new_boxed(local_depth, spb);
        for (seg, items) in parts.iter_mut().zip(order) {
            for (v, &w) in n.versions.iter_mut().zip(&seg.versions) {
                *v = (*v).max(w);
            }
            for (p, home, fp) in items {
                let item = seg.take(p.b(), p.s());
                if n.try_insert(home, fp, item).is_err() {
                    unreachable!("dash: the dry run placed every item");
                }
            }
        }
        Some(n)
    }

    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    #[inline(always)]
    pub(crate) fn meta(&self, b: usize) -> Meta {
        Meta { hot: self.hot[b], cold: self.cold[b] }
    }

    /// Change bucket `b`'s metadata through `f`.
    #[inline(always)]
    fn update_meta<R>(&mut self, b: usize, f: impl FnOnce(&mut Meta) -> R) -> R {
        let mut m = self.meta(b);
        let r = f(&mut m);
        self.hot[b] = m.hot;
        self.cold[b] = m.cold;
        r
    }

    /// Shared reference to the item at `p`. Panics if the slot is free.
    #[inline(always)]
    pub(crate) fn item(&self, p: Pos) -> &(K, V) {
        assert!(self.hot[p.b()].busy() & (1 << p.s()) != 0, "dash: read of a free slot");
        // SAFETY: the busy bit is set, and a slot's busy bit is set only
        // after `MaybeUninit::write` (in `put`) and cleared before or when
        // the value is moved out (in `take`), so the slot is initialized.
        unsafe { self.slots[self.idx(p.b(), p.s())].assume_init_ref() }
    }

    /// Mutable reference to the item at `p`. Panics if the slot is free.
    #[inline(always)]
    pub(crate) fn item_mut(&mut self, p: Pos) -> &mut (K, V) {
        assert!(self.hot[p.b()].busy() & (1 << p.s()) != 0, "dash: write to a free slot");
        // SAFETY: as in `item`: busy bit set => slot initialized.
        unsafe { self.slots[self.idx(p.b(), p.s())].assume_init_mut() }
    }

    /// Mutable references to all items, in storage order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut (K, V)> + '_ {
        let spb = self.slots_per_bucket();
        self.hot.iter().zip(self.slots.chunks_exact_mut(spb)).flat_map(|(hot, slots)| {
            let busy = hot.busy();
            slots.iter_mut().enumerate().filter_map(move |(i, slot)| {
                if busy & (1 << i) != 0 {
                    // SAFETY: busy bit set => slot initialized (see `item`).
                    // Each slot is yielded at most once and the iterator
                    // holds `&mut self`, so the references are disjoint and
                    // no slot can be freed while they live.
                    Some(unsafe { slot.assume_init_mut() })
                } else {
                    None
                }
            })
        })
    }

    /// Home bucket of the item at `p`.
    #[inline(always)]
    pub(crate) fn home_of(&self, p: Pos) -> usize {
        if p.b() >= REGULAR_BUCKETS {
            self.stash_home[p.b() - REGULAR_BUCKETS][p.s()] as usize
        } else if self.meta(p.b()).probe() & (1 << p.s()) != 0 {
            prev_bucket(p.b())
        } else {
            p.b()
        }
    }

    /// Write `item` into a free slot and mark it (and, for a probing item,
    /// refresh the refs of its home). Stash bookkeeping is the caller's
    /// job (see `put_stash`).
    #[inline(always)]
    fn put(&mut self, b: usize, s: usize, fp: u8, probe: bool, item: (K, V)) {
        debug_assert!(self.hot[b].busy() & (1 << s) == 0, "put into a busy slot");
        debug_assert!(!probe || b < REGULAR_BUCKETS, "probing item in the stash");
        let i = self.idx(b, s);
        self.slots[i].write(item);
        self.update_meta(b, |m| m.mark(s, fp, probe));
        self.len += 1;
        if probe {
            self.refresh_refs(prev_bucket(b));
        }
    }

    /// Move the item out of a busy slot and free the slot. Stash
    /// bookkeeping is the caller's job. Panics if the slot is free.
    #[inline(always)]
    fn take(&mut self, b: usize, s: usize) -> (K, V) {
        assert!(self.hot[b].busy() & (1 << s) != 0, "dash: take from a free slot");
        let probing = self.meta(b).probing();
        self.update_meta(b, |m| m.unmark(s));
        self.len -= 1;
        // SAFETY: the busy bit was set, so the slot is initialized (see
        // `item`); we just cleared it, so this value is read exactly once
        // and the slot is never read or dropped again until the next `put`.
        let item = unsafe { self.slots[self.idx(b, s)].assume_init_read() };
        if probing & (1 << s) != 0 {
            // An item displaced from `b - 1` left (a stash bucket has no
            // probing slots, so `b` is regular here).
            self.refresh_refs(prev_bucket(b));
        }
        item
    }

    fn put_stash(&mut self, p: usize, s: usize, fp: u8, home: usize, item: (K, V)) {
        self.put(REGULAR_BUCKETS + p, s, fp, false, item);
        self.stash_home[p][s] = home as u8;
        self.refresh_refs(home);
    }

    /// Take the item in slot `s` of stash bucket `p`, refreshing the refs
    /// of its home.
    fn take_stash(&mut self, p: usize, s: usize) -> (K, V) {
        let home = self.stash_home[p][s] as usize;
        let item = self.take(REGULAR_BUCKETS + p, s);
        self.refresh_refs(home);
        item
    }

    /// Rewrite the refs of regular bucket `home` (its spare fingerprint
    /// bytes, from `slots_per_bucket()` to 14) from where its items are:
    /// the fingerprints of its items in the neighbour's probing slots,
    /// then of its stashed items, as many as fit; `ELSEWHERE_FLAG` set if
    /// some did not fit. Called whenever an item homed at `home` enters or
    /// leaves the neighbour or the stash (and on bulk moves by
    /// [`refresh_all_refs`](Self::refresh_all_refs)), so a miss on a home
    /// whose displaced items all have refs reads nothing but the home's 16
    /// bytes unless a ref matches (1 in 255 per ref).
    fn refresh_refs(&mut self, home: usize) {
        let spb = self.slots_per_bucket();
        let mut refs = [0u8; SLOTS];
        let mut n = spb;
        let mut uncovered = false;
        let mut add = |fp: u8| {
            // 0 means "no ref": an item with fingerprint 0 needs the flag.
            if n < SLOTS && fp != 0 {
                refs[n] = fp;
                n += 1;
            } else {
                uncovered = true;
            }
        };
        let nm = self.meta(next_bucket(home));
        let mut m = nm.probing();
        while m != 0 {
            add(nm.fp(m.trailing_zeros() as usize));
            m &= m - 1;
        }
        for sp in 0..STASH_BUCKETS {
            let sm = self.meta(REGULAR_BUCKETS + sp);
            let mut m = sm.busy();
            while m != 0 {
                let s = m.trailing_zeros() as usize;
                if self.stash_home[sp][s] as usize == home {
                    add(sm.fp(s));
                }
                m &= m - 1;
            }
        }
        let hot = &mut self.hot[home];
        hot.0[spb..SLOTS].copy_from_slice(&refs[spb..]);
        let w = hot.word() & !ELSEWHERE_FLAG;
        hot.set_word(if uncovered { w | ELSEWHERE_FLAG } else { w });
    }

    /// [`refresh_refs`](Self::refresh_refs) of every regular bucket, after
    /// moves that skipped it (splits, stash rebalancing, growing).
    fn refresh_all_refs(&mut self) {
        for b in 0..REGULAR_BUCKETS {
            self.refresh_refs(b);
        }
    }

    /// Move an item between two slots of this segment (fingerprint kept).
    fn relocate(&mut self, from: Pos, to_b: usize, to_s: usize, probe: bool) {
        let fp = self.meta(from.b()).fp(from.s());
        let item = self.take(from.b(), from.s());
        self.put(to_b, to_s, fp, probe, item);
    }

    /// Prefetch hint: the lookup half of bucket `home`'s metadata (the 16
    /// aligned bytes, one cache line, a lookup reads first). Reads nothing
    /// itself.
    #[inline(always)]
    pub(crate) fn prefetch_meta(&self, home: usize) {
        prefetch(std::ptr::from_ref(&self.hot[home]).cast::<u8>());
    }

    /// Prefetch hint: the slots a lookup of `home`/`probe` will compare
    /// keys with (fingerprint matches among the home's slots and, if a ref
    /// matches or the elsewhere flag is set, the neighbour's), found as
    /// [`find_in`](Self::find_in) finds them. Reads the metadata of those
    /// buckets; only computes (bounds-checked) addresses to hint.
    #[inline(always)]
    pub(crate) fn prefetch_matches(&self, home: usize, probe: Probe) {
        let hm = &self.hot[home];
        let (all, w) = (hm.matches(probe), hm.word());
        let mut m = Hot::candidates(all, w);
        while m != 0 {
            prefetch(std::ptr::from_ref(&self.slots[self.idx(home, m.trailing_zeros() as usize)]).cast());
            m &= m - 1;
        }
        if !Hot::may_be_elsewhere(all, w) {
            return;
        }
        let nb = next_bucket(home);
        let nm = &self.hot[nb];
        let mut m = Hot::candidates(nm.matches(probe), nm.word());
        while m != 0 {
            prefetch(std::ptr::from_ref(&self.slots[self.idx(nb, m.trailing_zeros() as usize)]).cast());
            m &= m - 1;
        }
    }

    /// Bits `0..slots_per_bucket()`: which bytes of a bucket's fingerprints
    /// are slots (the rest are refs).
    #[inline(always)]
    pub(crate) fn slot_mask(&self) -> u32 {
        (1 << self.slots_per_bucket()) - 1
    }

    /// What a lookup needs to know of this segment's size, precomputed
    /// (the table keeps it in its directory).
    #[inline(always)]
    pub(crate) fn shape(&self) -> Shape {
        const {
            assert!(
                SLOTS * std::mem::size_of::<(K, V)>() <= u16::MAX as usize,
                "dash: (K, V) over 4681 bytes (the bucket stride is a u16)"
            )
        };
        Shape {
            slot_mask: self.slot_mask() as u16,
            stride: (self.slots_per_bucket() * std::mem::size_of::<(K, V)>()) as u16,
        }
    }

    /// Look `home`/`fp` up, given the segment's [`shape`](Self::shape)
    /// (which the table keeps in its directory, so a lookup does not
    /// compute it): home bucket, then (only if a ref of the home matches
    /// `fp` or some item homed there has no ref) the neighbour and the
    /// stash buckets (items whose recorded home is this one). `eq` is only
    /// called on fingerprint matches. Returns the position and the item.
    ///
    /// Inlined into every lookup, the neighbour and stash probes behind a
    /// cold-path hint (inlined too: a call there clobbers caller-saved
    /// registers, and LLVM then spilled the caller's loop state on every
    /// lookup's path, not only on the rare ones that take it). A miss
    /// usually stops after the home's 16 bytes.
    ///
    /// The candidates are the fingerprint matches among the busy slots (the
    /// busy bits sit in the same 16 bytes, so masking costs one `and`; a
    /// fingerprint may be any byte, so no lookup pays to map 0 to another
    /// value). Every busy slot, not only the owned ones: a probing slot
    /// holds an item homed at `home - 1`, whose key cannot equal one homed
    /// here, so including it is correct, rarely costs a key compare, and
    /// saves reading the probe bits (the cold half) on every lookup.
    ///
    /// # Safety
    ///
    /// `shape` must be [`self.shape()`](Self::shape) (a wrong stride would
    /// read outside the bucket).
    #[inline(always)]
    pub(crate) unsafe fn find_in(
        &self,
        home: usize,
        probe: Probe,
        shape: Shape,
        mut eq: impl FnMut(&K) -> bool,
    ) -> Option<(Pos, &(K, V))> {
        debug_assert_eq!(shape, self.shape());
        // Only the 16-byte hot half of the home's metadata.
        let hm = &self.hot[home];
        let (all, w) = (hm.matches(probe), hm.word());
        // SAFETY: `candidates` are busy slots of `home`. `shape` is the
        // segment's (asserted above in debug builds; the caller guarantees
        // it).
        let found = unsafe { self.first_equal(home, Hot::candidates(all, w), shape, &mut eq) };
        if let Some(found) = found {
            return Some(found);
        }
        if !Hot::may_be_elsewhere(all, w) {
            return None;
        }
        std::hint::cold_path();
        // SAFETY: the caller's guarantee, passed on.
        unsafe { self.find_elsewhere(home, probe, shape, eq) }
    }

    /// Bucket `b`'s first slot, `b * stride` bytes into the slots: a
    /// multiply by the precomputed stride (no slots-per-bucket needed), and
    /// a loop over the bucket's slots keeps a single base register.
    ///
    /// # Safety
    ///
    /// `b < TOTAL_BUCKETS`, and `shape` must be [`self.shape()`](Self::shape).
    #[inline(always)]
    unsafe fn bucket_first(&self, b: usize, shape: Shape) -> *const MaybeUninit<(K, V)> {
        debug_assert!(b < TOTAL_BUCKETS);
        debug_assert_eq!(shape, self.shape());
        // SAFETY: `stride` is `spb * size_of::<(K, V)>()` (the caller's
        // guarantee) and `b < TOTAL_BUCKETS`, so the offset is that of slot
        // `b * spb`, in bounds of `slots` (`TOTAL_BUCKETS * spb` long).
        unsafe { self.slots.as_ptr().cast::<u8>().add(b * shape.stride as usize).cast::<MaybeUninit<(K, V)>>() }
    }

    /// The first item among slots `m` (busy slots) of bucket `b` whose key
    /// `eq` accepts.
    ///
    /// # Safety
    ///
    /// `m` must be a subset of `meta(b).busy()`, `shape` must be
    /// [`self.shape()`](Self::shape).
    #[inline(always)]
    unsafe fn first_equal(
        &self,
        b: usize,
        mut m: u32,
        shape: Shape,
        eq: &mut impl FnMut(&K) -> bool,
    ) -> Option<(Pos, &(K, V))> {
        debug_assert_eq!(m & !self.hot[b].busy(), 0);
        // SAFETY: the caller's guarantee, passed on.
        let first = unsafe { self.bucket_first(b, shape) };
        while m != 0 {
            let s = m.trailing_zeros() as usize;
            // SAFETY: `s` is a bit of `m`, a subset of `b`'s `busy()`: a slot
            // of bucket `b` (so `first + s` is in bounds) that is initialized.
            let item = unsafe { (*first.add(s)).assume_init_ref() };
            if eq(&item.0) {
                return Some((Pos::new(b, s), item));
            }
            m &= m - 1;
        }
        None
    }

    /// The neighbour and stash part of [`find_in`](Self::find_in) (rarely
    /// needed; the caller marks it a cold path). Reads the neighbour's hot
    /// half (mostly the same cache line as the home's) and, if that fails,
    /// the stash buckets' hot halves (one line).
    ///
    /// # Safety
    ///
    /// As for [`find_in`](Self::find_in).
    #[inline(always)]
    unsafe fn find_elsewhere(
        &self,
        home: usize,
        probe: Probe,
        shape: Shape,
        mut eq: impl FnMut(&K) -> bool,
    ) -> Option<(Pos, &(K, V))> {
        let nb = next_bucket(home);
        let nm = &self.hot[nb];
        // All busy slots rather than the probing ones (whose bits are in
        // the cold half): an item owned by `nb` cannot equal a key homed
        // at `home`, so it only costs a rare extra key compare.
        let candidates = Hot::candidates(nm.matches(probe), nm.word());
        // SAFETY: `candidates` are busy slots of `nb`.
        if let Some(found) = unsafe { self.first_equal(nb, candidates, shape, &mut eq) } {
            return Some(found);
        }
        // SAFETY: the caller's guarantee, passed on.
        unsafe { self.find_stashed(home, probe, shape, eq) }
    }

    /// The stash part of [`find_in`](Self::find_in): fingerprint matches in the
    /// stash buckets whose recorded home is `home`. The four buckets' matches
    /// are gathered into one 64-bit mask first and walked by one loop, so
    /// the probe inlines into every lookup as a few dozen bytes of code
    /// (and, unlike a call, leaves the caller's registers alone).
    ///
    /// # Safety
    ///
    /// `shape` must be [`self.shape()`](Self::shape).
    #[inline(always)]
    unsafe fn find_stashed(
        &self,
        home: usize,
        probe: Probe,
        shape: Shape,
        mut eq: impl FnMut(&K) -> bool,
    ) -> Option<(Pos, &(K, V))> {
        // The four stash buckets' hot halves are one cache line, shared by
        // the segment's 56 homes (so often cached), where the home's stash
        // refs (its cold half) would be a line of its own: match them all.
        let mut m = 0u64;
        for sp in 0..STASH_BUCKETS {
            let smeta = &self.hot[REGULAR_BUCKETS + sp];
            m |= (Hot::candidates(smeta.matches(probe), smeta.word()) as u64) << (16 * sp);
        }
        while m != 0 {
            let bit = m.trailing_zeros() as usize;
            let (sp, s) = (bit / 16, bit % 16);
            debug_assert!(s < SLOTS);
            // SAFETY: `s` is a busy bit of stash bucket `sp` (`candidates`),
            // so below `spb <= SLOTS`, and `sp < STASH_BUCKETS`.
            if unsafe { *self.stash_home.get_unchecked(sp).get_unchecked(s) } as usize == home {
                // SAFETY: `s` is a bit of stash bucket `sp`'s `busy()`:
                // a slot of that bucket, initialized; `shape` is the
                // segment's (the caller's guarantee).
                let item = unsafe { (*self.bucket_first(REGULAR_BUCKETS + sp, shape).add(s)).assume_init_ref() };
                if eq(&item.0) {
                    return Some((Pos::new(REGULAR_BUCKETS + sp, s), item));
                }
            }
            m &= m - 1;
        }
        None
    }

    /// Place a new item homed at `home`: home bucket, neighbour bucket,
    /// displacement (neighbour's own item -> its neighbour, or home's
    /// probing item -> back to its home), then stash. `Err` returns the
    /// item when all of that fails (the segment must split or evict).
    pub(crate) fn try_insert(&mut self, home: usize, fp: u8, item: (K, V)) -> Result<Pos, (K, V)> {
        if let Some(s) = self.free_slot(home) {
            self.put(home, s, fp, false, item);
            return Ok(Pos::new(home, s));
        }
        let nb = next_bucket(home);
        if let Some(s) = self.free_slot(nb) {
            self.put(nb, s, fp, true, item);
            return Ok(Pos::new(nb, s));
        }
        // Displacement 1: an item owned by `nb` moves to `nb + 1` (its
        // neighbour) and the new item takes its slot as a probing item.
        let nnb = next_bucket(nb);
        if let Some(t) = self.free_slot(nnb) {
            let owned = self.meta(nb).owned();
            if owned != 0 {
                let s = (31 - owned.leading_zeros()) as usize;
                self.relocate(Pos::new(nb, s), nnb, t, true);
                self.put(nb, s, fp, true, item);
                return Ok(Pos::new(nb, s));
            }
        }
        // Displacement 2: a probing item in `home` (homed at `home - 1`)
        // moves back to its home bucket, the new item takes its slot.
        let pb = prev_bucket(home);
        if let Some(t) = self.free_slot(pb) {
            let probing = self.meta(home).probing();
            if probing != 0 {
                let s = (31 - probing.leading_zeros()) as usize;
                self.relocate(Pos::new(home, s), pb, t, false);
                self.put(home, s, fp, false, item);
                return Ok(Pos::new(home, s));
            }
        }
        for k in 0..STASH_BUCKETS {
            let p = (home + k) % STASH_BUCKETS;
            if let Some(s) = self.free_slot(REGULAR_BUCKETS + p) {
                self.put_stash(p, s, fp, home, item);
                return Ok(Pos::new(REGULAR_BUCKETS + p, s));
            }
        }
        Err(item)
    }

    /// Remove and return the item at `p`, keeping refs consistent.
    pub(crate) fn remove_at(&mut self, p: Pos) -> (K, V) {
        if p.b() >= REGULAR_BUCKETS { self.take_stash(p.b() - REGULAR_BUCKETS, p.s()) } else { self.take(p.b(), p.s()) }
    }

    /// Rotate slots `0..=s` of regular bucket `b` so slot `s` becomes slot 0
    /// (the others shift one slot towards the back). Returns the new pos.
    pub(crate) fn rotate_front(&mut self, b: usize, s: usize) -> Pos {
        debug_assert!(b < REGULAR_BUCKETS);
        let i = self.idx(b, 0);
        self.slots[i..=i + s].rotate_right(1);
        self.update_meta(b, |m| m.rotate_front(s));
        Pos::new(b, 0)
    }

    /// Cache-mode promotion, see `DashTable::bump_up`. Returns the new pos.
    pub(crate) fn bump_up(&mut self, p: Pos) -> Pos {
        let home = self.home_of(p);
        if p.b() >= REGULAR_BUCKETS {
            let sp = p.b() - REGULAR_BUCKETS;
            let fp = self.meta(p.b()).fp(p.s());
            if let Some(t) = self.free_slot(home) {
                // Room at home: leave the stash.
                let item = self.take_stash(sp, p.s());
                self.put(home, t, fp, false, item);
                return self.rotate_front(home, t);
            }
            let owned = self.meta(home).owned();
            if owned != 0 {
                // Home is full: swap with the last item owned by `home`,
                // which has the same home and so may live in this stash slot.
                let t = (31 - owned.leading_zeros()) as usize;
                let ofp = self.meta(home).fp(t);
                let stashed = self.take_stash(sp, p.s());
                let demoted = self.take(home, t);
                self.put(home, t, fp, false, stashed);
                self.put_stash(sp, p.s(), ofp, home, demoted);
                return self.rotate_front(home, t);
            }
            return p;
        }
        if home != p.b() {
            // Probing item in the neighbour: go home if there is room.
            if let Some(t) = self.free_slot(home) {
                self.relocate(p, home, t, false);
                return self.rotate_front(home, t);
            }
        }
        self.rotate_front(p.b(), p.s())
    }

    /// Split support: move the items selected by `mask` (per bucket, bit =
    /// slot) into `dst` at the same positions, then re-balance both
    /// segments (displaced items go back to their home bucket, stashed items
    /// to their home or neighbour bucket, where there is room) and rebuild
    /// their refs. `dst` must be empty. Calls no user code.
    pub(crate) fn split_into(&mut self, dst: &mut Segment<K, V>, mask: &[u16; TOTAL_BUCKETS]) {
        debug_assert_eq!(dst.len, 0);
        for (b, &m) in mask.iter().enumerate() {
            let mut m = m as u32;
            let probe = self.meta(b).probe();
            while m != 0 {
                let s = m.trailing_zeros() as usize;
                let fp = self.meta(b).fp(s);
                let item = self.take(b, s);
                dst.put(b, s, fp, probe & (1 << s) != 0, item);
                if b >= REGULAR_BUCKETS {
                    let sp = b - REGULAR_BUCKETS;
                    dst.stash_home[sp][s] = self.stash_home[sp][s];
                }
                m &= m - 1;
            }
        }
        dst.versions = self.versions;
        self.pull_probing_home();
        dst.pull_probing_home();
        self.rebalance_stash();
        dst.rebalance_stash();
    }

    /// Move items displaced into the neighbour bucket back to their home
    /// bucket where it now has a free slot (a split halves the segment, so
    /// most can go home). Otherwise they would stay displaced for good: at
    /// 1M random keys 16% of items sat in their neighbour and 65% of
    /// buckets had displaced items, costing a second bucket read on those
    /// hits and on most misses; after this, 0.8% and 3.6%.
    fn pull_probing_home(&mut self) {
        for b in 0..REGULAR_BUCKETS {
            let mut m = self.meta(b).probing();
            let home = prev_bucket(b);
            while m != 0 {
                let Some(t) = self.free_slot(home) else {
                    break;
                };
                let s = m.trailing_zeros() as usize;
                m &= m - 1;
                self.relocate(Pos::new(b, s), home, t, false);
            }
        }
    }

    /// Move stashed items into their home (or neighbour) bucket where
    /// there is room, then rewrite all refs.
    fn rebalance_stash(&mut self) {
        for sp in 0..STASH_BUCKETS {
            let sb = REGULAR_BUCKETS + sp;
            let mut m = self.meta(sb).busy();
            while m != 0 {
                let s = m.trailing_zeros() as usize;
                m &= m - 1;
                let home = self.stash_home[sp][s] as usize;
                if let Some(t) = self.free_slot(home) {
                    self.relocate(Pos::new(sb, s), home, t, false);
                } else if let Some(t) = self.free_slot(next_bucket(home)) {
                    self.relocate(Pos::new(sb, s), next_bucket(home), t, true);
                }
            }
        }
        self.refresh_all_refs();
    }

    /// Visit (in slot order) every item whose home is regular bucket
    /// `home`: owned slots of `home`, probing slots of `home + 1`, and
    /// stashed items with that home.
    #[inline]
    pub(crate) fn for_each_in_logical(&self, home: usize, mut f: impl FnMut(Pos)) {
        let mut m = self.meta(home).owned();
        while m != 0 {
            f(Pos::new(home, m.trailing_zeros() as usize));
            m &= m - 1;
        }
        let nb = next_bucket(home);
        let mut m = self.meta(nb).probing();
        while m != 0 {
            f(Pos::new(nb, m.trailing_zeros() as usize));
            m &= m - 1;
        }
        for sp in 0..STASH_BUCKETS {
            let sb = REGULAR_BUCKETS + sp;
            let mut m = self.meta(sb).busy();
            while m != 0 {
                let s = m.trailing_zeros() as usize;
                if self.stash_home[sp][s] as usize == home {
                    f(Pos::new(sb, s));
                }
                m &= m - 1;
            }
        }
    }

    /// Occupied positions, in storage order.
    pub(crate) fn positions(&self) -> impl Iterator<Item = Pos> + '_ {
        (0..TOTAL_BUCKETS).flat_map(move |b| {
            let mut m = self.meta(b).busy();
            std::iter::from_fn(move || {
                if m == 0 {
                    return None;
                }
                let s = m.trailing_zeros() as usize;
                m &= m - 1;
                Some(Pos::new(b, s))
            })
        })
    }

    /// True if a lookup of `home`/`fp` that finds nothing at home goes on
    /// to the neighbour and the stash (tests only).
    #[cfg(test)]
    pub(crate) fn lookup_leaves_home(&self, home: usize, fp: u8) -> bool {
        let hm = &self.hot[home];
        Hot::may_be_elsewhere(hm.matches(Probe::new(fp)), hm.word())
    }

    /// Check every structural invariant of this segment (tests only).
    /// `home_fp` returns (home bucket, fingerprint) recomputed from the key.
    #[cfg(test)]
    pub(crate) fn check(&self, mut home_fp: impl FnMut(&K) -> (usize, u8)) {
        let mut n = 0;
        for p in self.positions().collect::<Vec<_>>() {
            n += 1;
            let (home, fp) = home_fp(&self.item(p).0);
            assert_eq!(self.meta(p.b()).fp(p.s()), fp, "fingerprint at {p:?}");
            assert_eq!(self.home_of(p), home, "home of {p:?}");
            if p.b() < REGULAR_BUCKETS {
                let probing = self.meta(p.b()).probe() & (1 << p.s()) != 0;
                let expect = if probing { next_bucket(home) } else { home };
                assert_eq!(p.b(), expect, "placement of {p:?}");
            }
        }
        assert_eq!(n, self.len(), "segment len");
        let spb = self.slots_per_bucket();
        for b in 0..TOTAL_BUCKETS {
            let m = self.meta(b);
            assert_eq!(m.probe() & !m.busy(), 0, "probe bit on free slot in {b}");
            assert_eq!(m.cold & !PROBE_MASK, 0, "cold bits above the probe bits of {b}");
            assert_eq!(m.busy() >> spb, 0, "busy bit beyond the slots of {b}");
            for s in 0..spb {
                let busy = m.busy() & (1 << s) != 0;
                assert!(busy || m.fp(s) == 0, "fingerprint byte of free slot {s} of {b}");
            }
            assert_eq!(m.hot.word() & (1 << 14), 0, "bit 14 of {b}");
            // Refs: fingerprints of as many of the items homed here that
            // live elsewhere as fit (any of them: a rotation may reorder
            // them); the flag if not all.
            let mut elsewhere = Vec::new();
            if b < REGULAR_BUCKETS {
                self.for_each_in_logical(b, |p| {
                    if p.b() != b {
                        elsewhere.push(self.meta(p.b()).fp(p.s()));
                    }
                });
            }
            let refs: Vec<u8> = m.hot.0[spb..SLOTS].iter().copied().filter(|&f| f != 0).collect();
            // Items with fingerprint 0 have no ref (0 is "no ref").
            let fit = elsewhere.iter().filter(|&&f| f != 0).count().min(SLOTS - spb);
            assert_eq!(refs.len(), fit, "ref count of {b}");
            for r in &refs {
                let i = elsewhere.iter().position(|f| f == r).unwrap_or_else(|| panic!("ref {r} of {b} without item"));
                elsewhere.swap_remove(i);
            }
            let elsewhere_len = fit + elsewhere.len();
            assert!(m.hot.0[spb + fit..SLOTS].iter().all(|&f| f == 0), "ref bytes after the refs of {b}");
            assert_eq!(m.hot.word() & ELSEWHERE_FLAG != 0, elsewhere_len > fit, "elsewhere flag of {b}");
            if b >= REGULAR_BUCKETS {
                assert_eq!(m.probe(), 0, "probe bit in stash");
            }
        }
    }
}

/// An owned, heap-allocated [`Segment`]: a `Box` that the table's
/// directory may alias with raw copies of its address (its lookups go
/// straight from a directory entry to the segment, see `DirEntry` in
/// `table.rs`). A `Box` could not be aliased like that (moving or
/// mutably borrowing one asserts it is the only pointer, which would
/// invalidate the copies under Rust's aliasing rules); a raw pointer
/// from [`Box::leak`] can, as long as no copy is dereferenced while a
/// `&mut` from [`DerefMut`](std::ops::DerefMut) is live, which the table
/// guarantees by only dereferencing copies through `&self`.
pub(crate) struct SegBox<K, V>(std::ptr::NonNull<Segment<K, V>>);

// SAFETY: a `SegBox` owns its segment exactly as `Box<Segment<K, V>>`
// does (the aliasing raw copies are only read through a shared borrow of
// the owning table), so it is `Send`/`Sync` under the same conditions.
unsafe impl<K: Send, V: Send> Send for SegBox<K, V> {}
// SAFETY: as for `Send`.
unsafe impl<K: Sync, V: Sync> Sync for SegBox<K, V> {}

impl<K, V> From<Box<Segment<K, V>>> for SegBox<K, V> {
    fn from(b: Box<Segment<K, V>>) -> Self {
        SegBox(std::ptr::NonNull::from(Box::leak(b)))
    }
}

impl<K, V> SegBox<K, V> {
    /// The segment's address with the provenance of the whole allocation,
    /// for a directory entry: [`Segment::from_thin`] rebuilds the
    /// pointer from it and the slots per bucket.
    #[inline]
    pub(crate) fn thin(&self) -> std::ptr::NonNull<u8> {
        self.0.cast()
    }
}

impl<K, V> Segment<K, V> {
    /// Rebuild a segment pointer from [`SegBox::thin`] and the segment's
    /// [`slots_per_bucket`](Self::slots_per_bucket). Only pointer
    /// arithmetic (no read): `spb * 60` is the slot count the (fat) pointer
    /// carries, and `slots_per_bucket` of the result folds back to `spb`
    /// without a division.
    #[inline(always)]
    pub(crate) fn from_thin(thin: std::ptr::NonNull<u8>, spb: u32) -> *const Self {
        std::ptr::slice_from_raw_parts(thin.as_ptr().cast::<MaybeUninit<(K, V)>>(), spb as usize * TOTAL_BUCKETS)
            as *const Self
    }
}

impl<K, V> std::ops::Deref for SegBox<K, V> {
    type Target = Segment<K, V>;
    #[inline(always)]
    fn deref(&self) -> &Segment<K, V> {
        // SAFETY: the pointer came from `Box::leak` and is freed only by
        // `drop`; no `&mut` to the segment can be live while `&self` is.
        unsafe { self.0.as_ref() }
    }
}

impl<K, V> std::ops::DerefMut for SegBox<K, V> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Segment<K, V> {
        // SAFETY: as for `deref`; `&mut self` is the only way to reach the
        // segment mutably, and the table never reads its raw copies while
        // it holds `&mut` (they are only dereferenced through `&self`).
        unsafe { self.0.as_mut() }
    }
}

impl<K, V> Drop for SegBox<K, V> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` of a `Box` of this
        // type and is dropped once (here); the copies in the table's
        // directory are never used after the segment leaves `segs`.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

impl<K, V> Drop for Segment<K, V> {
    fn drop(&mut self) {
        if !std::mem::needs_drop::<(K, V)>() {
            return;
        }
        for b in 0..TOTAL_BUCKETS {
            let mut m = self.meta(b).busy();
            while m != 0 {
                let s = m.trailing_zeros() as usize;
                m &= m - 1;
                drop(self.take(b, s));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins: the fingerprint matcher agrees with a byte-by-byte scan,
    // including the value 0x80, and never reports the word bytes (busy bits
    // and flags) after the 14 fingerprints.
    #[test]
    fn match_fp_exact() {
        let mut m = Meta::default();
        let vals = [0u8, 1, 0x80, 0x7f, 0xff, 0x80, 3, 0x80, 9, 0, 0x80, 0x81, 0x7f, 0x80];
        m.hot.0[..SLOTS].copy_from_slice(&vals);
        m.hot.set_word(0x7f80); // must never match
        for fp in 0..=255u8 {
            let want = vals.iter().enumerate().filter(|(_, v)| **v == fp).fold(0u32, |a, (i, _)| a | (1 << i));
            assert_eq!(m.hot.match_fp(fp), want, "fp {fp:#x}");
        }
    }

    // Pins: the candidates of a probe are exactly the busy slots whose
    // byte equals it, fingerprint 0 included (a free slot's 0 byte never
    // is one), and a lookup goes beyond the home exactly when a byte that
    // is not a busy slot matches (refs; free slots for a probe of 0) or the
    // flag is set, whatever the word's other bits.
    #[test]
    fn candidates_are_busy_matches() {
        let mut h = Hot::default();
        for (i, b) in h.0[..SLOTS].iter_mut().enumerate() {
            *b = (i as u8) % 7; // 0..6, 0..6
        }
        for busy in [0u16, 0x3fff, 0x00ff, 0x2a55, 1] {
            for flag in [0, ELSEWHERE_FLAG] {
                h.set_word(busy | flag);
                for f in 0..=255u8 {
                    let all = h.matches(Probe::new(f));
                    let eq: u32 = (0..SLOTS).filter(|&i| h.0[i] == f).map(|i| 1 << i).sum();
                    assert_eq!(all & SLOT_MASK, eq, "byte {f:#x}");
                    let cand = Hot::candidates(all, h.word());
                    assert_eq!(cand, eq & busy as u32, "byte {f:#x} busy {busy:#x}");
                    let away = eq & !(busy as u32) != 0 || flag != 0;
                    assert_eq!(Hot::may_be_elsewhere(all, h.word()), away, "byte {f:#x} busy {busy:#x}");
                }
            }
        }
    }

    // Pins: the lookup probe `of_hash` broadcasts byte 4 of the hash (the
    // fingerprint `fp_of_hash` stores), whatever the hash's other bytes.
    #[test]
    fn probe_of_hash_is_hash_byte_4() {
        let mut h = Hot::default();
        for f in 0..=255u8 {
            // Byte 0 is `f`, the other 15 bytes differ from it and each other.
            for (i, b) in h.0.iter_mut().enumerate() {
                *b = f.wrapping_add(i as u8 * 17);
            }
            for other in [0u64, u64::MAX, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210] {
                let x = (other & !(0xff << 32)) | ((f as u64) << 32);
                assert_eq!(h.matches(Probe::of_hash(x)), 1, "hash {x:#x}");
            }
        }
    }

    // Pins: the portable SWAR zero-byte matcher (used on non-x86_64) is
    // exact, including 0x80/0x7f/0x00 bytes next to matches.
    #[test]
    fn swar_zero_bytes_exact() {
        let words = [0u64, u64::MAX, 0x8000_7f00_0100_80ff, 0x0080_0000_7f7f_0001, 0x0101_0101_0101_0101];
        for &w in &words {
            for fp in [0u8, 1, 0x7f, 0x80, 0xff] {
                let pat = 0x0101_0101_0101_0101u64 * fp as u64;
                let want = (0..8).filter(|i| (w >> (8 * i)) as u8 == fp).fold(0u32, |a, i| a | (1 << i));
                assert_eq!(zero_bytes(w ^ pat), want, "w {w:#x} fp {fp:#x}");
            }
        }
    }

    // Pins: rotate_front moves slot s to slot 0 together with its busy,
    // probe and fingerprint, shifting 0..s up and leaving s+1.. alone.
    #[test]
    fn meta_rotate() {
        let mut m = Meta::default();
        for s in 0..SLOTS {
            if s != 2 {
                m.mark(s, s as u8 + 1, s % 3 == 0);
            }
        }
        m.hot.set_word(m.hot.word() | ELSEWHERE_FLAG);
        m.rotate_front(5);
        assert_eq!(m.fp(0), 6);
        assert_eq!(&m.hot.0[1..6], &[1, 2, 0, 4, 5]); // slot 2 was never marked
        assert_eq!(m.fp(6), 7);
        assert_ne!(m.hot.word() & ELSEWHERE_FLAG, 0, "the flag does not rotate");
        assert_eq!(m.busy() & (1 << 3), 0, "hole at 2 moved to 3");
        assert_eq!(m.probe() & 1, 0, "old slot 5 (not probing) is now slot 0");
        assert_ne!(m.probe() & 0b10, 0, "old slot 0 (probing) is now slot 1");
        assert_ne!(m.probe() & 0b1_0000, 0, "old slot 3 (probing) is now slot 4");
        assert_ne!(m.probe() & (1 << 6), 0, "slot 6 untouched");
    }
}
