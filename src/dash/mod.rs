//! Dash: the keyspace hash table (extendible hashing with segments that
//! grow in place before they split), after "Dash: Scalable Hashing on
//! Persistent Memory" (Lu et al., VLDB 2020) and the in-memory variant
//! described by Dragonfly.
//!
//! # Shape
//!
//! ```text
//!  DashTable
//!  ┌──────────────────────────┐   directory: 2^global_depth 16-byte entries
//!  │ dir: [0,0,1,2]  depth 2  │   {segment address, index in `segs`, slot
//!  │ segs: [S0, S1, S2]       │   mask, bucket stride}, indexed by the top
//!  └──────────────────────────┘   `global_depth` bits of the 64-bit hash.
//!                                 S0 has local depth 1 (two dir entries),
//!                                 S1, S2 local depth 2. `segs` owns the
//!                                 segments; a lookup reads only its
//!                                 directory entry before the segment.
//!
//!  Segment<K, V>  (repr(C, align(64)), one heap allocation, metadata first;
//!                  a dynamically sized type: the slot count is in the pointer)
//!  offset
//!      0 ┌──────────────────────────────────────────────────────────────┐
//!        │ hot[60]: 16 B per bucket (buckets 0..56, stash 56..60)       │  960 B
//!    960 │ cold[60]: u64 per bucket                                     │  480 B
//!   1440 │ stash_home[4][14] u8: home bucket of each stash slot         │   56 B
//!   1496 │ local_depth u8, len u16 (+ pad)                              │    8 B
//!   1504 │ versions[56] u32: per logical bucket (snapshots)             │  224 B
//!   1728 ├──────────────────────────────────────────────────────────────┤
//!        │ slots[60 × spb]: MaybeUninit<(K, V)>, spb = 4..=14 per bucket│
//!        │   bucket 0: spb slots │ bucket 1 │ ... │ bucket 55 ║ stash 0..3│ 60·spb x size_of::<(K,V)>
//!        └──────────────────────────────────────────────────────────────┘
//!
//!  Bucket metadata, 24 B in two halves (split so lookups read only 16 B)
//!  hot (16 B, 16-aligned: 4 per cache line, never straddles one)
//!    bytes 0..spb  fp: 1-byte fingerprint per slot, any byte (0 in a free slot)
//!    bytes spb..14 refs: fingerprints of items homed here that live in the
//!                  neighbour or the stash, as many as fit (0 = none, so
//!                  an item of fingerprint 0 has none: it sets elsewhere)
//!    bytes 14..16  word: busy[0..spb] | elsewhere (bit 15)
//!                  elsewhere: some item homed here and living in the
//!                  neighbour or the stash has no ref (always so in a
//!                  14-slot bucket, which has no spare bytes)
//!  cold (u64)
//!    bits  0..14   probe: slot holds an item displaced from the previous bucket
//!    bits 14..64   0 (free: they held 4 per-home stash refs, which the
//!                  refs in the hot half replaced)
//!
//!  Hash bits:  63 ........ 64-g   ...   39 .... 32   31 ............ 0
//!              [segment prefix]          [  fp   ]   [ bucket: lo32*56 >> 32 ]
//! ```
//!
//! Worked numbers (checked by `const` asserts in `segment.rs` and by
//! tests). A "bucket" is 24 B of metadata + `spb` slots; per segment the
//! fixed part is 1728 B (60 × 24 B metadata + stash_home + depth/len +
//! versions: exactly 27 cache lines), whatever its size. Versions are u32
//! (4 billion snapshots) so that a full-size segment of the server's
//! 32-byte items, 28,608 B, fits mimalloc's 28 KiB size class; with u64
//! versions it was 28,864 B in a 32 KiB block. The lookup-side metadata is 960 B per segment
//! (15 lines, 1.14 B per slot of a full-size segment): at 10M entries 15.7 MB, about the 16 MB of
//! control bytes hashbrown reads for the same 10M. Segments are 64-byte aligned, so slot 0 starts a cache
//! line: the server's 32-byte `(key, value)` items never straddle two lines
//! (see DESIGN.md for the measured effect of alignment).
//!
//! Full-size segments (`spb` = 14, 840 slots):
//!
//! | item `(K, V)`                | slot | bytes per bucket   | segment                        | items |
//! |------------------------------|------|--------------------|--------------------------------|-------|
//! | `(u64, u64)`                 | 16 B | 24 + 14×16 = 248 B | 1728 + 840×16 = **15,168 B**   | 840   |
//! | `(Box<[u8]>, u64)`           | 24 B | 24 + 14×24 = 360 B | 1728 + 840×24 = 21,888 B       | 840   |
//! | `(CompactObj, CompactObj)` (server) | 32 B | 24 + 14×32 = 472 B | 1728 + 840×32 = 28,608 B | 840 |
//!
//! Table metadata per slot: (60×24 + 288) / 840 = **2.1 B** (~16 bits),
//! plus 16 B per directory entry and 16 B per segment pointer (~0.04 B per
//! item).
//!
//! # Segment sizes and load factor
//!
//! An insert fails in a segment when one home bucket, its neighbour and all
//! four stash buckets are full. A full-size segment then splits; with 1M
//! random keys it holds on average **819 of 840** items (97.5%, min 90%)
//! when it does. With fixed-size segments only, a uniform hash fills all
//! segments of a depth at the same rate, so splits came in waves and the
//! table-wide load factor swung between ~49% just after a wave and ~97%
//! (1M entries: 2048 segments, 58% full).
//!
//! So segments come in sizes: `spb` slots per bucket, from
//! `MIN_SLOTS` = 4 to 14, all with the same 56 + 4
//! buckets (so the bucket of a hash, and the traversal order, never depend
//! on a segment's size). A segment that is not full size **grows** instead
//! of splitting: the next size is the largest segment that fits the next
//! allocator size class (classes spaced four per power of two, as
//! mimalloc's and jemalloc's: the server's 32-byte items go
//! 4 → 5 → 6 → 7 → 9 → 11 → 14, i.e. 9,408 B in a 10 KiB block up to
//! 28,608 B in 28 KiB), and every item keeps its bucket and slot, so a
//! grow is one allocation and a copy, no rehash. A split moves half of a
//! full-size segment's items out as before, then **rebuilds both halves**
//! at the smallest size where their items fill at most 85% of the slots
//! (`Segment::shrunk`: each item re-placed from its recorded home bucket
//! and fingerprint, after a dry run on metadata alone proves they all fit;
//! typically 9 slots per bucket for ~410 items). A table's first segment
//! is the smallest size, so a table of a few keys costs 9.4 KB, not 28.
//! Measured with 32-byte items (`key:N`, random seed), the load factor is
//! now 0.87–0.88 at 0.5M, 1M, 1.5M and 2M entries (was 0.58 / 0.58 / 0.93 /
//! 0.58), 39–40 B of table per entry.
//!
//! # Placement and lookup
//!
//! An item's **home** is regular bucket `h(lo32) * 56 >> 32` of the segment
//! picked by the top `global_depth` hash bits. Insert tries, in order:
//! 1. a free slot of the home bucket (busy bit set, probe bit clear);
//! 2. a free slot of the neighbour bucket `home + 1` (mod 56), marked with
//!    the probe bit ("displaced from the previous bucket");
//! 3. displacement: move an item *owned* by the neighbour into *its*
//!    neighbour (`home + 2`), or move a *probing* item of the home bucket
//!    back to `home - 1`, freeing a slot for the new item;
//! 4. a stash bucket (starting at `home % 4`), which records the item's
//!    home bucket (`stash_home`);
//! 5. otherwise the segment **splits** (or, in cache mode, evicts).
//!
//! Lookup reads the home bucket's 16-byte hot metadata and compares the
//! fingerprint with all 14 bytes at once (one SSE2 16-byte compare on
//! x86_64, SWAR elsewhere): matches on busy slots are key compares,
//! any other match is a ref. Only on a ref match, or with the elsewhere
//! flag set, does a lookup that failed at home look further: the
//! neighbour's busy slots (its hot half is the next 16 bytes, in the same
//! cache line 3 times in 4), then the four stash buckets' hot halves (one
//! cache line per segment, shared by its 56 homes) for fingerprint
//! matches whose recorded home is this one. A split or a grow moves
//! displaced items back home where it made room.
//!
//! Why refs: a table of small segments runs at 0.76–0.92 load in buckets
//! of 8–14 slots, so 8–15% of items live away from home and 40–74% of
//! buckets have some. With only "displaced"/"stashed" flags, 56% of misses
//! at 1M u64 keys read the neighbour and the home's cold half (another
//! cache line); with refs 5% do (`misses_mostly_stop_at_home`). At 3M and
//! 10M keys, late in a wave of splits, most segments have 11–14 slots
//! (0–3 spare bytes) and 21–45% of buckets still set the flag. Refs are
//! rewritten from where a home's items are (`Segment::refresh_refs`)
//! whenever one of them enters or leaves the neighbour or the stash. The
//! full hash is never stored; splits and traversal filters recompute it.
//!
//! # Growth
//!
//! A new (or cleared) table has no segment and an empty directory, so an
//! empty table costs no allocation (a server keeps 16 databases per
//! shard, mostly empty); the first insert allocates one small segment of
//! depth 0. A full segment below full size grows (above). A split allocates one new segment, hashes the old segment's items once
//! to pick the side (hash bit `63 - local_depth`), moves the chosen ones to
//! the **same bucket/slot** in the new segment (so the placement rules
//! still hold and the move cannot fail), then pulls stashed items back into
//! their home/neighbour buckets where the split freed room and rewrites the
//! refs of both halves. If `local_depth == global_depth` the
//! directory doubles first (a copy of `2^g` 16-byte entries: 256 KB at 10M
//! entries).
//! Then both halves are rebuilt at their fitting size (at most 2 × 840
//! placements, no hashing). Nothing else is rehashed, so an insert pays for at most one segment
//! split (a second one would need all 84 items of the home, neighbour and
//! stash buckets to fall on the new key's side, p ≈ 2^-84), or a few grows
//! of one small segment. All user code
//! (hashing) runs before anything moves, so a panicking `DashHash` leaves
//! the table intact. A degenerate hash (constant / massively colliding)
//! is detected when the directory would exceed 64 entries per segment
//! (and 1024 total) and panics instead of doubling towards OOM.
//!
//! # Shrinking
//!
//! [`DashTable::merge_step`] gives memory back after deletes, a bounded
//! amount of work per call: two buddy segments (same local depth, the two
//! halves of one prefix range) holding at most 420 items together are
//! re-placed into one segment of depth one less, at the smallest size
//! where a dry run fits them; the directory halves once every segment
//! spans two entries or more. A merge only joins two prefix ranges, so it
//! keeps the traversal guarantee below (a cursor may then point inside a
//! segment: its items before the cursor are filtered by prefix).
//!
//! # Traversal (SCAN) guarantee
//!
//! [`DashTable::traverse`] visits logical buckets in the order
//! `(bucket id, 46-bit hash prefix)`: bucket id major, segments in hash
//! order minor. Cursor layout:
//!
//! ```text
//!  63      52 51      46 45                                   0
//!  [ free: 0 ][bucket id][ hash prefix where the next segment starts ]
//! ```
//!
//! **Bits 52..64 are always 0 in returned cursors and ignored on input**:
//! the server keeps its shard number there (`cursor | shard << 52`, up to
//! 4096 shards). 46 prefix bits bound the segment depth (`MAX_DEPTH`) at
//! 46, i.e. 2^46 segments: far beyond any memory.
//!
//! Both coordinates depend only on the key's hash, never on the table
//! shape, and a split only cuts a prefix range in two (the cursor's
//! prefix was a segment boundary and stays one). So the traversal walks a
//! fixed total order and every call visits exactly the keys in
//! `[cursor, next_cursor)`: a key present for the whole traversal is
//! visited **exactly once**, and any key **at most once**, whatever splits,
//! grows and merges happen between calls. (After `clear` the directory shrinks and a cursor
//! may land inside a segment; keys before it are filtered by prefix.)
//! Pinned by `tests::traverse_under_concurrent_splits` and the proptests.
//!
//! # Versions (for fork-less snapshots)
//!
//! Each logical bucket (home bucket `b` of a segment) has a `u64` version.
//! Mutations stamp the mutated item's logical bucket with
//! `max(version, version_clock)`; splits copy versions to both halves;
//! [`DashTable::bucket_version`] / [`DashTable::set_bucket_version`] take a
//! cursor, and [`DashTable::bucket_cursor`] gives the cursor of a key's
//! logical bucket.
//!
//! # Prefetch
//!
//! [`DashTable::prefetch_meta`] and [`DashTable::prefetch_slots`] are hints
//! for a batch of coming lookups: first the home/neighbour metadata of
//! every key, then (reading that metadata) the fingerprint-matching slots.
//! The server issues them for the keys of a pipelined read before running
//! the commands, so their misses overlap (`store::Db::prefetch`).
//!
//! # Cache mode
//!
//! [`DashTable::bump_up`] moves an item to slot 0 of its bucket (from the
//! stash or the neighbour into its home when possible);
//! [`DashTable::insert_or_evict`] with growth disallowed evicts the last
//! slot of the home bucket instead of splitting.
//!
//! # Safety
//!
//! `unsafe` is confined to `segment.rs`, except two blocks of the table's
//! lookup (`seg_of`, and its call of `find_in`), described below. Slots are `MaybeUninit<(K, V)>`,
//! initialized iff their busy bit is set; six small blocks (`item`,
//! `item_mut`, `take`, `iter_mut`, `grown`, `new_boxed`) rely on that, each with a
//! `// SAFETY:` comment, and `item`/`item_mut`/`take` assert the busy bit.
//! `new_boxed` allocates the dynamically sized segment itself and asserts
//! that its layout is the one `Box` will free with.
//! The lookup path reads a found item through a raw pointer to its
//! bucket's first slot (`unsafe fn bucket_first`: `b * stride` bytes into
//! the slots, the stride from the segment's `Shape`, which the caller of
//! `unsafe fn find_in` passes from the directory), only at a bit of a mask
//! of busy slots: `Hot::candidates`, the fingerprint matches masked with
//! the busy bits of the same 16 bytes (debug-asserted), which saves
//! `item`'s re-check. A sixth block calls the SSE2
//! fingerprint-compare intrinsics (no pointers; SSE2 is x86_64 baseline), a
//! seventh the prefetch hint (`_mm_prefetch`, which never faults or reads).
//! `Drop` drops every busy slot once.
//!
//! Segments are owned by `SegBox` (a `Box` by raw pointer: `Box::leak` in,
//! `Box::from_raw` in its `Drop`), because the directory aliases their
//! addresses; `DashTable::seg_of` dereferences a directory entry only
//! through `&self`, and every change to `segs` rewrites the entries of the
//! segments it replaces or moves (`check_invariants` verifies them).
//! Miri-clean (`cargo +nightly miri test`).

mod hash;
mod segment;
mod table;

pub use hash::{DashHash, Equivalent, hash_bytes, hash_u64};
pub use segment::{REGULAR_BUCKETS, SEGMENT_CAPACITY, SEGMENT_HEADER_BYTES, SLOTS, STASH_BUCKETS, TOTAL_BUCKETS};
pub use table::{
    CURSOR_BUCKET_SHIFT, CURSOR_FREE_SHIFT, CURSOR_PREFIX_BITS, CURSOR_USED_MASK, DashTable, Iter, MAX_DEPTH, Retired,
    Slot,
};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
