//! Bounded lock-free single-producer single-consumer ring buffer.
//!
//! Shard threads talk to each other through one ring per ordered pair of
//! threads: the sending thread owns the [`Producer`], the receiving thread
//! owns the [`Consumer`]. Neither end blocks; `push` hands the value back when
//! the ring is full and `pop` returns `None` when it is empty, so callers
//! decide how to back off (spin, park, poll their event loop).
//!
//! # Design
//!
//! * Positions are free-running `usize` counters (`head` = next slot to read,
//!   `tail` = next slot to write); the slot index is `pos & mask` and the
//!   number of queued items is `tail.wrapping_sub(head)`, so wrap-around of
//!   the counters themselves is harmless.
//! * `head` and `tail` live on separate cache lines (`#[repr(align(64))]`)
//!   so the two threads do not false-share.
//! * Each side keeps a private copy of its own counter and a *cached* copy of
//!   the other side's counter. It only reloads the shared atomic when the
//!   cached value says the ring looks full (producer) or empty (consumer),
//!   which keeps the other side's cache line from bouncing on every message.
//! * Orderings: the producer writes the slot and then publishes it with a
//!   `Release` store of `tail`; the consumer `Acquire`-loads `tail` before
//!   reading the slot. Symmetrically the consumer moves the value out of the
//!   slot and then frees it with a `Release` store of `head`; the producer
//!   `Acquire`-loads `head` before overwriting the slot.
//! * When both ends are gone, the shared ring drops every item still queued.
//! * Growing rings ([`channel_growing`]) start small and double up to a maximum: when
//!   the ring is full but for one slot, the producer makes a ring twice the size, puts
//!   the value in it, and writes a *link* to it (the new ring's consumer end) into the
//!   last free slot of the old one. The consumer, on popping the link, drops the old
//!   ring (empty by then: the link was its last item) and goes on from the new one. So
//!   the queue stays FIFO, lock-free and single-producer single-consumer, and an idle
//!   ring costs a few slots instead of its maximum.
//!
//! ```text
//!   old ring (4): [a][b][c][→new]      new ring (8): [d][e][ ][ ][ ][ ][ ][ ]
//!   consumer pops a, b, c, then the link: switches to the new ring, pops d, e ...
//! ```
//!
//! ```
//! let (mut tx, mut rx) = darter::spsc::channel::<u32>(3); // rounded up to 4
//! assert_eq!(tx.capacity(), 4);
//! for i in 0..4 {
//!     tx.push(i).unwrap();
//! }
//! assert_eq!(tx.push(99), Err(99)); // full: the value comes back
//! assert_eq!(rx.pop(), Some(0));
//! assert_eq!(rx.len(), 3);
//! ```
//!
//! The ends are `Send` but neither `Sync` nor `Clone`: exactly one thread may
//! produce and exactly one may consume.
//!
//! ```compile_fail
//! fn needs_sync<T: Sync>(_: &T) {}
//! let (tx, _rx) = darter::spsc::channel::<u32>(4);
//! needs_sync(&tx);
//! ```
//!
//! ```compile_fail
//! let (tx, _rx) = darter::spsc::channel::<u32>(4);
//! let _second = tx.clone();
//! ```

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Pads and aligns a value to its own 64-byte cache line.
#[repr(align(64))]
struct CachePadded<T>(T);

/// What a slot holds: an item, or (growing rings) the link to the next, larger ring.
enum Slot<T> {
    Item(T),
    Next(Consumer<T>),
}

/// The state shared by both ends.
struct Ring<T> {
    /// Position of the next slot to read. Written only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Position of the next slot to write. Written only by the producer.
    tail: CachePadded<AtomicUsize>,
    /// `capacity` slots; slot `pos & mask` holds an initialised value exactly
    /// when `head <= pos < tail` (in wrapping arithmetic).
    slots: Box<[UnsafeCell<MaybeUninit<Slot<T>>>]>,
    /// `capacity - 1`; capacity is a power of two.
    mask: usize,
}

// SAFETY: the ring hands values of type `T` from the producer's thread to the
// consumer's thread, which requires `T: Send`. Shared access to the ring
// (through the two `Arc`s) is data-race free: each slot is accessed by one
// side at a time, as arbitrated by the Acquire/Release protocol on
// `head`/`tail` described in the module docs, and `head`/`tail` are atomics.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: see the `Send` impl; `&Ring<T>` only exposes atomics and slots
// whose ownership is arbitrated by those atomics.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    #[inline]
    fn slot(&self, pos: usize) -> *mut MaybeUninit<Slot<T>> {
        self.slots[pos & self.mask].get()
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Both ends are gone (we hold `&mut self`, and the `Arc` drop made
        // their last writes visible), so plain reads of the counters are
        // exact.
        let mut head = *self.head.0.get_mut();
        let tail = *self.tail.0.get_mut();
        while head != tail {
            // SAFETY: every position in `head..tail` holds an initialised
            // value that was pushed and never popped (ring invariant), and
            // no other reference to the slots exists any more.
            unsafe { (*self.slot(head)).assume_init_drop() };
            head = head.wrapping_add(1);
        }
    }
}

/// The sending end of a ring created by [`channel`].
pub struct Producer<T> {
    ring: Arc<Ring<T>>,
    /// Private copy of `ring.tail` (only this end writes it).
    tail: usize,
    /// Last value of `ring.head` seen; `head` only grows, so this is a lower
    /// bound of the real value and underestimates free space, never
    /// overestimates it.
    cached_head: usize,
    /// The largest capacity this ring may grow to (its capacity if it never grows).
    max_capacity: usize,
    /// Keeps the type `!Sync` (while leaving it `Send`).
    _not_sync: PhantomData<Cell<()>>,
}

/// The receiving end of a ring created by [`channel`].
pub struct Consumer<T> {
    ring: Arc<Ring<T>>,
    /// Private copy of `ring.head` (only this end writes it).
    head: usize,
    /// Last value of `ring.tail` seen; a lower bound of the real value, so it
    /// underestimates the items available, never overestimates them.
    cached_tail: usize,
    /// Keeps the type `!Sync` (while leaving it `Send`).
    _not_sync: PhantomData<Cell<()>>,
}

/// Creates a ring holding up to `capacity` items, rounded up to a power of
/// two (a capacity of 0 gives a ring of 1).
///
/// # Panics
///
/// If the rounded capacity overflows `usize` or exceeds `isize::MAX / 2`.
pub fn channel<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let capacity = round_capacity(capacity);
    channel_at(capacity, capacity, 0)
}

/// Creates a ring that starts with `initial` slots and doubles, when full, up to
/// `max` (both rounded up to powers of two, `initial` to at least 2 and at most
/// `max`). It then holds up to `max - 1` items in a ring of `max` slots plus what
/// the smaller rings it grew from still hold; see the module docs.
///
/// # Panics
///
/// As [`channel`].
pub fn channel_growing<T: Send>(initial: usize, max: usize) -> (Producer<T>, Consumer<T>) {
    let max = round_capacity(max);
    let initial = round_capacity(initial).max(2).min(max);
    channel_at(initial, max, 0)
}

/// `capacity` rounded up to a power of two (at least 1).
fn round_capacity(capacity: usize) -> usize {
    capacity
        .max(1)
        .checked_next_power_of_two()
        .filter(|&c| c <= isize::MAX as usize / 2)
        .expect("spsc capacity too large")
}

/// A ring of `capacity` slots (a power of two) that may grow to `max_capacity`, with
/// both counters starting at `start` (tests use it to cross the `usize` wrap-around
/// quickly).
fn channel_at<T>(capacity: usize, max_capacity: usize, start: usize) -> (Producer<T>, Consumer<T>) {
    debug_assert!(capacity.is_power_of_two() && max_capacity.is_power_of_two() && capacity <= max_capacity);
    let slots = (0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect::<Box<[_]>>();
    let ring = Arc::new(Ring {
        head: CachePadded(AtomicUsize::new(start)),
        tail: CachePadded(AtomicUsize::new(start)),
        slots,
        mask: capacity - 1,
    });
    let producer =
        Producer { ring: Arc::clone(&ring), tail: start, cached_head: start, max_capacity, _not_sync: PhantomData };
    let consumer = Consumer { ring, head: start, cached_tail: start, _not_sync: PhantomData };
    (producer, consumer)
}

impl<T> Producer<T> {
    /// Appends `v`, or hands it back as `Err(v)` when the ring is full (a growing
    /// ring is full only at its maximum capacity).
    #[inline]
    pub fn push(&mut self, v: T) -> Result<(), T> {
        let cap = self.ring.mask + 1;
        // A ring that may still grow keeps its last free slot for the link.
        let room = if cap < self.max_capacity { cap - 1 } else { cap };
        if self.tail.wrapping_sub(self.cached_head) >= room {
            // Looks full: refresh our view of the consumer's progress.
            // Acquire pairs with the consumer's Release store of `head`, so
            // its reads of the freed slots happen before our overwrite.
            self.cached_head = self.ring.head.0.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.cached_head) >= room {
                if cap == self.max_capacity {
                    return Err(v);
                }
                self.grow(v);
                return Ok(());
            }
        }
        self.write(Slot::Item(v));
        Ok(())
    }

    /// Writes `slot` at `tail` and publishes it. The caller checked that the ring
    /// has a free slot (`tail - head < capacity`).
    #[inline]
    fn write(&mut self, slot: Slot<T>) {
        debug_assert!(
            self.tail.wrapping_sub(self.cached_head) < self.ring.mask + 1,
            "write to a full ring (tail {}, head at least {})",
            self.tail,
            self.cached_head
        );
        // SAFETY: `tail - head < capacity` (checked by the caller against an
        // Acquire load of `head`), so slot `tail` is outside the initialised range
        // `head..tail`: the consumer is not reading it (it only reads below
        // `tail`, which we have not published yet), and its previous value, if
        // any, was moved out before the consumer released `head` past it, which
        // our Acquire load (this one or an earlier one) observed. Writing without
        // dropping is correct because the slot is logically uninitialised.
        unsafe { (*self.ring.slot(self.tail)).write(slot) };
        self.tail = self.tail.wrapping_add(1);
        // Release publishes the slot write to the consumer's Acquire load.
        self.ring.tail.0.store(self.tail, Ordering::Release);
    }

    /// The ring is full but for the slot kept for the link: moves to a ring twice
    /// the size, with `v` as its first item, and links it from the last slot of
    /// this one.
    #[cold]
    fn grow(&mut self, v: T) {
        debug_assert!(self.ring.mask + 1 < self.max_capacity, "only a ring below its maximum grows");
        let cap = (self.ring.mask + 1) * 2;
        let (mut next, consumer) = channel_at(cap, self.max_capacity, 0);
        // The new ring is empty and has at least 2 slots: the item fits.
        next.write(Slot::Item(v));
        // One slot is free here (`tail - head == capacity - 1`, or less).
        self.write(Slot::Next(consumer));
        // Our end of the old ring goes; the consumer frees it after the link.
        *self = next;
    }

    /// The number of slots of the ring being written (a power of two; a growing
    /// ring's current size).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.ring.mask + 1
    }

    /// The size of one slot in bytes (a ring of `capacity` slots takes
    /// `capacity * slot_bytes()` plus a small header).
    pub fn slot_bytes(&self) -> usize {
        std::mem::size_of::<Slot<T>>()
    }

    /// Items currently queued in the ring being written (a snapshot: the consumer
    /// may be popping; items in rings a growing ring grew from are not counted).
    #[inline]
    pub fn len(&self) -> usize {
        self.tail.wrapping_sub(self.ring.head.0.load(Ordering::Acquire))
    }

    /// True when nothing is queued (a snapshot: the consumer may be popping).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the consumer end has been dropped, so pushes can never be
    /// received (they are still accepted and dropped with the ring).
    #[inline]
    pub fn is_abandoned(&self) -> bool {
        abandoned(&self.ring)
    }
}

/// True when `ring` has no other owner left. The Acquire fence pairs with the
/// Release decrement in the other end's `Arc` drop, so everything that end
/// did (its last push or pop) is visible once this returns true.
#[inline]
fn abandoned<T>(ring: &Arc<Ring<T>>) -> bool {
    let alone = Arc::strong_count(ring) == 1;
    if alone {
        std::sync::atomic::fence(Ordering::Acquire);
    }
    alone
}

impl<T> Consumer<T> {
    /// Removes and returns the oldest item, or `None` when the ring is empty.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        loop {
            if self.head == self.cached_tail {
                // Looks empty: refresh our view of the producer's progress.
                // Acquire pairs with the producer's Release store of `tail`, so
                // its slot writes happen before our reads.
                self.cached_tail = self.ring.tail.0.load(Ordering::Acquire);
                if self.head == self.cached_tail {
                    return None;
                }
            }
            debug_assert!(
                self.cached_tail.wrapping_sub(self.head) <= self.ring.mask + 1,
                "more items than slots (head {}, tail {})",
                self.head,
                self.cached_tail
            );
            // SAFETY: `head != tail` (as last observed with Acquire), so slot
            // `head` lies in the initialised range `head..tail`; the producer
            // wrote it before releasing `tail` past it and will not touch it
            // again until we release `head` past it below. Reading moves the
            // value out; advancing `head` marks the slot uninitialised so it is
            // never read or dropped twice.
            let slot = unsafe { (*self.ring.slot(self.head)).assume_init_read() };
            self.head = self.head.wrapping_add(1);
            // Release orders our read of the slot before the producer's reuse.
            self.ring.head.0.store(self.head, Ordering::Release);
            match slot {
                Slot::Item(v) => return Some(v),
                // The link was the old ring's last item: go on from the new ring
                // (dropping our end frees the old one).
                Slot::Next(next) => *self = next,
            }
        }
    }

    /// True when no item is available right now.
    #[inline]
    pub fn is_empty(&self) -> bool {
        // `cached_tail` never exceeds the real tail, so items known to be
        // there answer without touching the producer's cache line.
        self.head == self.cached_tail && self.head == self.ring.tail.0.load(Ordering::Acquire)
    }

    /// Items available right now (the producer may add more concurrently).
    #[inline]
    pub fn len(&self) -> usize {
        self.ring.tail.0.load(Ordering::Acquire).wrapping_sub(self.head)
    }

    /// The number of items the ring can hold (a power of two).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.ring.mask + 1
    }

    /// True when the producer end has been dropped: once [`Self::pop`]
    /// returns `None` after this is seen true, nothing more will arrive.
    #[inline]
    pub fn is_abandoned(&self) -> bool {
        abandoned(&self.ring)
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer").field("capacity", &self.capacity()).field("len", &self.len()).finish()
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer").field("capacity", &self.capacity()).field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::thread;

    /// Counts its own drops in a shared counter.
    #[derive(Debug)]
    struct DropCounter<'a>(&'a AtomicUsize, u64);

    impl Drop for DropCounter<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    const STREAM: u64 = if cfg!(miri) { 100_000 } else { 1_000_000 };

    /// Pins the public bounds: both ends move to other threads, and items
    /// only need `Send`.
    #[test]
    fn ends_are_send() {
        fn assert_send<S: Send>() {}
        assert_send::<Producer<Box<u8>>>();
        assert_send::<Consumer<Box<u8>>>();
        assert_send::<Producer<std::cell::Cell<u8>>>();
    }

    /// Pins capacity rounding: up to the next power of two, 0 becomes 1.
    #[test]
    fn capacity_rounds_up_to_power_of_two() {
        for (asked, got) in [(0, 1), (1, 1), (2, 2), (3, 4), (5, 8), (64, 64), (65, 128)] {
            let (tx, rx) = channel::<u8>(asked);
            assert_eq!(tx.capacity(), got, "asked {asked}");
            assert_eq!(rx.capacity(), got, "asked {asked}");
        }
    }

    /// Pins the empty edge: a fresh ring pops nothing and reports empty, also
    /// after it has been filled and fully drained.
    #[test]
    fn empty_ring_pops_none() {
        let (mut tx, mut rx) = channel::<u32>(4);
        assert!(rx.is_empty() && tx.is_empty());
        assert_eq!(rx.len(), 0);
        assert_eq!(rx.pop(), None);
        tx.push(7).unwrap();
        assert!(!rx.is_empty());
        assert_eq!(rx.pop(), Some(7));
        assert_eq!(rx.pop(), None);
        assert!(rx.is_empty());
    }

    /// Pins the full edge: exactly `capacity` pushes succeed, the next one
    /// returns the very value back (not dropped), and one pop makes room for
    /// exactly one more.
    #[test]
    fn full_ring_rejects_and_returns_value() {
        let drops = AtomicUsize::new(0);
        let (mut tx, mut rx) = channel(4);
        for i in 0..4 {
            assert!(tx.push(DropCounter(&drops, i)).is_ok());
        }
        assert_eq!(rx.len(), 4);
        assert_eq!(tx.len(), 4);
        let back = tx.push(DropCounter(&drops, 99)).unwrap_err();
        assert_eq!(back.1, 99);
        assert_eq!(drops.load(Ordering::Relaxed), 0, "rejected value not dropped by push");
        drop(back);
        assert_eq!(rx.pop().map(|d| d.1), Some(0));
        assert!(tx.push(DropCounter(&drops, 4)).is_ok());
        assert!(tx.push(DropCounter(&drops, 5)).is_err());
        let order: Vec<u64> = std::iter::from_fn(|| rx.pop().map(|d| d.1)).collect();
        assert_eq!(order, [1, 2, 3, 4]);
    }

    /// Pins that a capacity-1 ring alternates strictly between full and empty.
    #[test]
    fn capacity_one_alternates() {
        let (mut tx, mut rx) = channel::<u32>(1);
        for i in 0..100 {
            tx.push(i).unwrap();
            assert_eq!(tx.push(i + 1000), Err(i + 1000));
            assert_eq!(rx.pop(), Some(i));
            assert_eq!(rx.pop(), None);
        }
    }

    /// Pins FIFO order across many laps of a small ring with uneven batch
    /// sizes, so head and tail wrap around the slot array at varying offsets.
    #[test]
    fn fifo_across_wraparound() {
        let (mut tx, mut rx) = channel::<u64>(8);
        let (mut next_in, mut next_out) = (0u64, 0u64);
        for round in 0..500u64 {
            let n = 1 + round % 8;
            for _ in 0..n {
                if tx.push(next_in).is_ok() {
                    next_in += 1;
                }
            }
            for _ in 0..(round * 7) % 9 {
                match rx.pop() {
                    Some(v) => {
                        assert_eq!(v, next_out);
                        next_out += 1;
                    }
                    None => assert_eq!(next_out, next_in),
                }
            }
            assert_eq!(rx.len() as u64, next_in - next_out);
        }
    }

    /// Pins that the free-running counters may wrap past `usize::MAX`
    /// without losing, duplicating or reordering items.
    #[test]
    fn counters_wrap_around_usize_max() {
        let (mut tx, mut rx) = channel_at::<u32>(4, 4, usize::MAX - 5);
        for i in 0..40 {
            tx.push(2 * i).unwrap();
            tx.push(2 * i + 1).unwrap();
            assert_eq!(rx.len(), 2);
            assert_eq!(rx.pop(), Some(2 * i));
            assert_eq!(rx.pop(), Some(2 * i + 1));
        }
        for i in 0..4 {
            tx.push(i).unwrap();
        }
        assert_eq!(tx.push(9), Err(9));
        assert_eq!(rx.len(), 4);
    }

    /// Pins Drop: items left in the ring are dropped exactly once when both
    /// ends are gone, whichever end goes last; popped items belong to the
    /// caller and are not dropped again.
    #[test]
    fn drop_releases_unpopped_items() {
        for consumer_first in [false, true] {
            let drops = AtomicUsize::new(0);
            let (mut tx, mut rx) = channel(8);
            for i in 0..6 {
                tx.push(DropCounter(&drops, i)).unwrap();
            }
            let popped = rx.pop().unwrap();
            let popped2 = rx.pop().unwrap();
            drop(popped);
            assert_eq!(drops.load(Ordering::Relaxed), 1);
            if consumer_first {
                drop(rx);
                assert!(tx.is_abandoned());
                // Pushing into an abandoned ring still works; the item is
                // dropped with the ring.
                tx.push(DropCounter(&drops, 6)).unwrap();
                assert_eq!(drops.load(Ordering::Relaxed), 1);
                drop(tx);
                assert_eq!(drops.load(Ordering::Relaxed), 1 + 5);
            } else {
                drop(tx);
                assert!(rx.is_abandoned());
                assert_eq!(drops.load(Ordering::Relaxed), 1);
                drop(rx);
                assert_eq!(drops.load(Ordering::Relaxed), 1 + 4);
            }
            drop(popped2);
            let want = if consumer_first { 7 } else { 6 };
            assert_eq!(drops.load(Ordering::Relaxed), want);
        }
    }

    /// Pins Drop when the queued range straddles the end of the slot array.
    #[test]
    fn drop_wrapped_range() {
        let drops = AtomicUsize::new(0);
        let (mut tx, mut rx) = channel(4);
        for i in 0..3 {
            tx.push(DropCounter(&drops, i)).unwrap();
        }
        for _ in 0..3 {
            rx.pop().unwrap();
        }
        assert_eq!(drops.load(Ordering::Relaxed), 3);
        for i in 0..4 {
            tx.push(DropCounter(&drops, i)).unwrap(); // slots 3, 0, 1, 2
        }
        drop((tx, rx));
        assert_eq!(drops.load(Ordering::Relaxed), 7);
    }

    /// Pins that zero-sized items work (no slot memory at all).
    #[test]
    fn zero_sized_items() {
        let (mut tx, mut rx) = channel::<()>(2);
        tx.push(()).unwrap();
        tx.push(()).unwrap();
        assert_eq!(tx.push(()), Err(()));
        assert_eq!(rx.pop(), Some(()));
        assert_eq!(rx.pop(), Some(()));
        assert_eq!(rx.pop(), None);
    }

    /// Pins the cross-thread contract: 1M (100k under Miri) sequence numbers
    /// pushed by one thread arrive at the other in order, none lost or
    /// duplicated, through a ring much smaller than the stream so both the
    /// full and the empty paths are exercised concurrently.
    #[test]
    fn two_threads_stream_in_order() {
        let (mut tx, mut rx) = channel::<u64>(64);
        let producer = thread::spawn(move || {
            for i in 0..STREAM {
                let mut v = i;
                while let Err(back) = tx.push(v) {
                    v = back;
                    std::hint::spin_loop();
                    if cfg!(miri) {
                        thread::yield_now();
                    }
                }
            }
        });
        let mut expected = 0u64;
        while expected < STREAM {
            match rx.pop() {
                Some(v) => {
                    assert_eq!(v, expected, "out of order or lost");
                    expected += 1;
                }
                None => {
                    std::hint::spin_loop();
                    if cfg!(miri) {
                        thread::yield_now();
                    }
                }
            }
        }
        producer.join().unwrap();
        assert_eq!(rx.pop(), None, "nothing beyond the stream");
        assert!(rx.is_abandoned());
    }

    /// Pins heap-owning items across threads: every Box is moved exactly once
    /// (Miri flags double frees, leaks and races on the slots), including the
    /// ones the consumer leaves in the ring for Drop.
    #[test]
    fn two_threads_boxed_items_and_leftovers() {
        let n: u64 = if cfg!(miri) { 2_000 } else { 200_000 };
        let (mut tx, mut rx) = channel::<Box<u64>>(16);
        let producer = thread::spawn(move || {
            for i in 0..n {
                let mut v = Box::new(i);
                while let Err(back) = tx.push(v) {
                    v = back;
                    thread::yield_now();
                }
            }
            // Leave a few behind for Ring::drop.
            for i in 0..5 {
                let _ = tx.push(Box::new(n + i));
            }
        });
        let mut sum = 0u64;
        let mut seen = 0u64;
        while seen < n {
            if let Some(b) = rx.pop() {
                assert_eq!(*b, seen);
                sum += *b;
                seen += 1;
            } else {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(sum, n * (n - 1) / 2);
        drop(rx);
    }

    /// Pins the `len` snapshot bounds while the other side runs: the
    /// consumer never sees more than `capacity` items queued.
    #[test]
    fn len_never_exceeds_capacity_concurrently() {
        let n: u32 = if cfg!(miri) { 1_000 } else { 100_000 };
        let (mut tx, mut rx) = channel::<u32>(8);
        let producer = thread::spawn(move || {
            for i in 0..n {
                while tx.push(i).is_err() {
                    thread::yield_now();
                }
                assert!(tx.len() <= 8);
            }
        });
        let mut got = 0;
        while got < n {
            assert!(rx.len() <= 8);
            if rx.pop().is_some() {
                got += 1;
            } else {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
    }
    // A growing ring starts small, doubles when full (keeping FIFO order across the
    // link), stops at its maximum and then refuses like a fixed ring.
    #[test]
    fn growing_ring_doubles_up_to_max_in_order() {
        let (mut tx, mut rx) = channel_growing::<u32>(2, 16);
        assert_eq!(tx.capacity(), 2);
        let mut pushed = 0;
        while tx.push(pushed).is_ok() {
            pushed += 1;
        }
        assert_eq!(tx.capacity(), 16);
        // 1 in the 2-ring, 3 in the 4-ring, 7 in the 8-ring, 16 in the last.
        assert_eq!(pushed, 1 + 3 + 7 + 16);
        for i in 0..pushed {
            assert_eq!(rx.pop(), Some(i));
        }
        assert_eq!(rx.pop(), None);
        assert_eq!(rx.capacity(), 16, "the consumer followed the links");
        // Interleaved use keeps working at the maximum size.
        for i in 0..100 {
            tx.push(i).unwrap();
            assert_eq!(rx.pop(), Some(i));
        }
    }

    // Items still queued in a chain of grown rings are dropped exactly once when both
    // ends go, and a producer sees the consumer go even across a link.
    #[test]
    fn growing_ring_drops_chain() {
        let drops = AtomicUsize::new(0);
        {
            let (mut tx, mut rx) = channel_growing(2, 64);
            for i in 0..40 {
                tx.push(DropCounter(&drops, i)).unwrap();
            }
            assert_eq!(rx.pop().map(|d| d.1), Some(0));
            assert_eq!(drops.load(Ordering::Relaxed), 1);
            drop(rx);
            assert!(tx.is_abandoned());
        }
        assert_eq!(drops.load(Ordering::Relaxed), 40);
    }

    // Two threads stream through a ring that grows while the consumer reads.
    #[test]
    fn two_threads_growing_stream_in_order() {
        let (mut tx, mut rx) = channel_growing::<u64>(2, 64);
        let n = STREAM / 10;
        let producer = thread::spawn(move || {
            for i in 0..n {
                let mut v = i;
                while let Err(back) = tx.push(v) {
                    v = back;
                    thread::yield_now();
                }
            }
        });
        let mut next = 0;
        while next < n {
            match rx.pop() {
                Some(v) => {
                    assert_eq!(v, next);
                    next += 1;
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(rx.pop(), None);
    }
}
