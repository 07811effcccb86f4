//! Exact heap accounting without locks: a [`GlobalAlloc`] wrapper around the mimalloc
//! allocator that counts the bytes the process has asked for and not yet freed.
//!
//! ```text
//!   thread T allocates n bytes ──▶ MiMalloc.alloc ──▶ T's counter += n
//!   thread U frees them        ──▶ MiMalloc.dealloc ──▶ U's counter -= n
//!
//!   SLOTS: [Padded(AtomicI64); MAX_THREADS]   one cache line each, only its thread writes
//!   MINE (thread-local)  ──▶ &SLOTS[i], claimed on the thread's first allocation
//!   used_memory() = Σ SLOTS[0..registered]    any thread can read
//! ```
//!
//! - A thread updates its own counter with a Relaxed load and a Relaxed store (no
//!   locked instruction: nobody else writes that line). Readers sum every registered
//!   slot with Relaxed loads. A free on another thread than the allocating one makes
//!   the two threads' numbers drift (one grows, the other can go negative) but the sum
//!   is exact.
//! - What is counted is the block mimalloc hands out for `Layout::size()`: the size
//!   rounded up to its size class ([`block_size`], `mi_good_size`; a 100-byte string
//!   is a 112-byte block), as Redis counts jemalloc's usable size. So used_memory
//!   follows RSS growth when loading data (within 10%, `tests/memory.rs`). Pages
//!   left part-used by frees are not counted (they show in the RSS, hence in
//!   mem_fragmentation_ratio). `realloc` counts the difference of the blocks.
//! - Slots are never released: a thread that exits leaves its net count behind, which
//!   is right (what it allocated and nobody freed is still in use). Past
//!   [`MAX_THREADS`] threads, the rest share one overflow slot with `fetch_add`.
//! - Only the `darter` binary installs it (`#[global_allocator]` in `main.rs`); in a
//!   process without it every counter stays 0 and [`installed`] is false.

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

/// Threads with a counter of their own; later threads share [`OVERFLOW`].
pub const MAX_THREADS: usize = 256;

/// An `AtomicI64` alone on its cache line.
#[repr(align(64))]
pub struct Padded(AtomicI64);

static SLOTS: [Padded; MAX_THREADS] = [const { Padded(AtomicI64::new(0)) }; MAX_THREADS];
/// Slots handed out so far (may exceed MAX_THREADS; readers clamp).
static REGISTERED: AtomicUsize = AtomicUsize::new(0);
/// The shared counter of threads beyond MAX_THREADS (updated with fetch_add).
static OVERFLOW: Padded = Padded(AtomicI64::new(0));
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Highest used_memory seen by [`note_peak`].
static PEAK: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's slot; null until its first allocation.
    static MINE: Cell<*const AtomicI64> = const { Cell::new(std::ptr::null()) };
}

/// The counting allocator. Install with `#[global_allocator] static A: Counting = Counting;`.
pub struct Counting;

#[inline]
fn add(delta: i64) {
    // `try_with` cannot fail for a const-initialised Cell without a destructor, but if
    // it ever did (thread teardown), the shared slot keeps the sum exact.
    let ok = MINE.try_with(|m| {
        let mut p = m.get();
        if p.is_null() {
            p = register();
            m.set(p);
        }
        if std::ptr::eq(p, &OVERFLOW.0) {
            OVERFLOW.0.fetch_add(delta, Ordering::Relaxed);
        } else {
            // SAFETY: p points into the static SLOTS array.
            let slot = unsafe { &*p };
            slot.store(slot.load(Ordering::Relaxed).wrapping_add(delta), Ordering::Relaxed);
        }
    });
    if ok.is_err() {
        OVERFLOW.0.fetch_add(delta, Ordering::Relaxed);
    }
}

unsafe extern "C" {
    /// mimalloc's `mi_good_size` (linked in by the `mimalloc` crate).
    fn mi_good_size(size: usize) -> usize;
}

/// The size of the block mimalloc gives for a request of `size` bytes (its size
/// class); what used_memory counts.
#[inline]
pub fn block_size(size: usize) -> usize {
    // SAFETY: `mi_good_size` is a pure computation on its argument.
    unsafe { mi_good_size(size) }
}

unsafe extern "C" {
    /// mimalloc's `mi_option_set` (linked in by the `mimalloc` crate).
    fn mi_option_set(option: i32, value: std::ffi::c_long);
}

/// mimalloc 2.x `mi_option_purge_delay` (milliseconds; default 10).
const MI_OPTION_PURGE_DELAY: i32 = 15;

/// Start-up tuning of the allocator:
/// - no transparent huge pages for this process (as Redis does), so mimalloc's arenas
///   fault memory in 4 KiB pages as it is used: an empty server's RSS is ~8 MB
///   instead of ~10 MB, which matters for small `--maxmemory` budgets;
/// - mimalloc purges (decommits, `MADV_DONTNEED`) a freed page at once instead of
///   10 ms later. With the delay, a mass expiry's 64 MB of frees were purged in one
///   batch that stalled a thread for 8–12 ms (the previous fix, `MADV_FREE` resets,
///   avoided the stall but left freed pages counted in RSS until the kernel wanted
///   them: 93.8 B per key instead of 81.8 after loading 1M keys, as the Dash
///   segments' grow and split waves free blocks of one size class after another).
///   Purged at once, each free pays for its own page: `tests/expiry.rs` probe p99
///   0.35 ms (max 3.0 ms once in 3,640 requests) while 1M keys expire.
pub fn tune_allocator() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and only sets a flag of
    // this process.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    // SAFETY: `mi_option_set` only stores an option value; called before the shard
    // threads start.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

#[cold]
fn register() -> *const AtomicI64 {
    INSTALLED.store(true, Ordering::Relaxed);
    let i = REGISTERED.fetch_add(1, Ordering::Relaxed);
    if i < MAX_THREADS { &SLOTS[i].0 } else { &OVERFLOW.0 }
}

// SAFETY: every method forwards to `MiMalloc` with the same arguments and only adds
// bookkeeping that neither allocates nor touches the returned memory.
unsafe impl GlobalAlloc for Counting {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { MiMalloc.alloc(layout) };
        if !p.is_null() {
            add(block_size(layout.size()) as i64);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            add(block_size(layout.size()) as i64);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { MiMalloc.dealloc(ptr, layout) };
        add(-(block_size(layout.size()) as i64));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(block_size(new_size) as i64 - block_size(layout.size()) as i64);
        }
        p
    }
}

/// Whether the counting allocator is this process's global allocator (it has counted
/// at least one allocation).
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Net bytes allocated by all threads: exact at the moment each slot is read (the sum is
/// not a snapshot across threads, but every byte is in exactly one slot). Can be
/// negative only in a process where the allocator was installed late.
pub fn net_allocated() -> i64 {
    let n = REGISTERED.load(Ordering::Relaxed).min(MAX_THREADS);
    let mut sum = OVERFLOW.0.load(Ordering::Relaxed);
    for s in &SLOTS[..n] {
        sum = sum.wrapping_add(s.0.load(Ordering::Relaxed));
    }
    sum
}

/// used_memory: [`net_allocated`] clamped at 0.
pub fn used_memory() -> u64 {
    net_allocated().max(0) as u64
}

/// The calling thread's own counter (allocations minus frees made on this thread).
/// Only this thread writes it, so reading it costs no cache miss.
#[inline]
pub fn this_thread() -> i64 {
    MINE.try_with(|m| {
        let p = m.get();
        if p.is_null() || std::ptr::eq(p, &OVERFLOW.0) {
            0
        } else {
            // SAFETY: p points into the static SLOTS array.
            unsafe { &*p }.load(Ordering::Relaxed)
        }
    })
    .unwrap_or(0)
}

/// Raises the recorded peak to `used` if higher; returns the peak.
pub fn note_peak(used: u64) -> u64 {
    let peak = PEAK.load(Ordering::Relaxed);
    if used > peak { PEAK.fetch_max(used, Ordering::Relaxed).max(used) } else { peak }
}

/// used_memory_peak: the highest used_memory recorded (every 10 ms tick and every INFO).
pub fn peak() -> u64 {
    PEAK.load(Ordering::Relaxed)
}

/// Resident set size from /proc/self/statm (0 if unreadable).
pub fn rss_bytes() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as u64,
        _ => 4096,
    };
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map(|pages| pages * page)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The wrapper counts the blocks it hands out (the request rounded to mimalloc's
    // size class) and forgets what comes back, including reallocations and frees on
    // another thread. (Called directly: the test binary's global allocator is the
    // system one, so the counters move only by these calls.)
    #[test]
    fn counts_alloc_realloc_free_across_threads() {
        let a = Counting;
        let before = net_allocated();
        let l = Layout::from_size_align(1000, 8).unwrap();
        let (b1000, b5000, b64) = (block_size(1000) as i64, block_size(5000) as i64, block_size(64) as i64);
        assert!((1000..1280).contains(&b1000) && (5000..6400).contains(&b5000) && b64 == 64);
        assert_eq!(block_size(32), 32);
        assert_eq!(block_size(100), 112);
        // SAFETY: valid layouts; every pointer is freed once with its current layout.
        unsafe {
            let p = a.alloc(l);
            assert!(!p.is_null());
            assert_eq!(net_allocated() - before, b1000);
            let p = a.realloc(p, l, 5000);
            assert_eq!(net_allocated() - before, b5000);
            let z = a.alloc_zeroed(Layout::from_size_align(64, 8).unwrap());
            assert_eq!(net_allocated() - before, b5000 + b64);
            a.dealloc(z, Layout::from_size_align(64, 8).unwrap());
            let addr = p as usize;
            let mine_before = this_thread();
            std::thread::spawn(move || {
                a.dealloc(addr as *mut u8, Layout::from_size_align(5000, 8).unwrap());
                assert_eq!(this_thread(), -b5000, "the freeing thread's own number drifts");
            })
            .join()
            .unwrap();
            assert_eq!(this_thread(), mine_before);
        }
        assert_eq!(net_allocated(), before, "the sum is exact");
        assert!(installed());
    }

    #[test]
    fn peak_only_rises() {
        let p = note_peak(10);
        assert!(p >= 10);
        assert_eq!(note_peak(1), p);
        assert!(peak() >= 10);
    }
}
