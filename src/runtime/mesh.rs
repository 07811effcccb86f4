//! The rings between threads. One SPSC ring per ordered thread pair that has talked
//! ([`Mesh`]: created by the sender on its first message, so an idle pair costs one
//! pointer). After pushing, the producer wakes the consumer with an `IORING_OP_MSG_RING`
//! SQE on its own ring, but only if the consumer's `notified` flag was clear
//! (Dekker-style handshake, see [`Worker::send_wakes`]).

use std::collections::VecDeque;
use std::sync::atomic::{Ordering, fence};

use io_uring::{opcode, squeue, types};

use super::{KIND_IGNORE, KIND_WAKE, Worker, user_data};
use crate::spsc;
use crate::tx::Msg;

/// Slots a cross-thread ring starts with: it doubles when full, up to [`ring_depth`]
/// (`spsc::channel_growing`). 16 slots of ~64 bytes: ~1.3 KB with the ring's header.
pub(crate) const RING_INITIAL: usize = 16;
/// Most slots of a cross-thread ring (with few threads; see [`ring_depth`]).
pub(crate) const RING_DEPTH: usize = 1024;
/// Fewest slots of a cross-thread ring (with many threads).
pub(crate) const RING_DEPTH_MIN: usize = 64;
/// Ring slots per thread pair, summed over a thread's peers: [`ring_depth`] divides it.
pub(crate) const RING_SLOTS_PER_THREAD: usize = 64 * 1024;

/// The most slots a cross-thread ring grows to with `nthreads` threads: 1024 up to 64
/// threads, then fewer so that a thread's rings from all its peers, if every pair talks
/// hard enough to grow them all, hold at most ~64k messages (~4 MB): 512 at 128
/// threads, 256 at 256, 64 at 1024. A full ring spills into the sender's overflow FIFO,
/// so a shallow ring costs wake-ups, not messages.
pub(crate) fn ring_depth(nthreads: usize) -> usize {
    (RING_SLOTS_PER_THREAD / nthreads.max(1)).clamp(RING_DEPTH_MIN, RING_DEPTH).next_power_of_two()
}
/// The rings between threads, created lazily.
///
/// ```text
///   cells[to * n + from]: AtomicPtr<Consumer>   null ── sender's first message ──▶ set
///                                                set  ── receiver adopts it ──────▶ null
///   new_inbound[to]: set after a cell of row `to` was filled
/// ```
///
/// A thread that sends to a peer for the first time creates the ring, keeps the
/// producer end, publishes the consumer end in the peer's cell (Release) and raises the
/// peer's `new_inbound` flag; the peer, at its next drain, swaps the flag clear, takes
/// the consumer ends of its row (Acquire) and polls them from then on. Idle pairs cost
/// 8 bytes (1024 threads: 8 MB) instead of a 57 KB ring each (60 GB). The flag is
/// raised before the sender's wake-up fence (`send_wakes`), so the receiver, which reads
/// it after clearing `notified`, sees it or is woken again: the same handshake as for
/// the messages themselves. Each cell has one writer (the sender, once) and one taker
/// (the receiver): no locks.
pub struct Mesh {
    n: usize,
    cells: Box<[std::sync::atomic::AtomicPtr<spsc::Consumer<Msg>>]>,
    new_inbound: Vec<crate::shard::PaddedFlag>,
}

impl Mesh {
    pub fn new(n: usize) -> Mesh {
        Mesh {
            n,
            cells: (0..n * n).map(|_| std::sync::atomic::AtomicPtr::new(std::ptr::null_mut())).collect(),
            new_inbound: (0..n).map(|_| crate::shard::PaddedFlag::default()).collect(),
        }
    }

    /// Creates the ring from `from` to `to` and publishes its consumer end; returns the
    /// producer end. Called once per pair, by `from`.
    fn connect(&self, from: usize, to: usize) -> spsc::Producer<Msg> {
        let (p, c) = spsc::channel_growing(RING_INITIAL, ring_depth(self.n));
        let c = Box::into_raw(Box::new(c));
        let prev = self.cells[to * self.n + from].swap(c, Ordering::AcqRel);
        assert!(prev.is_null(), "ring {from}->{to} created twice");
        self.new_inbound[to].0.store(true, Ordering::Release);
        p
    }

    /// The consumer ends published for `to` since its last call (cheap when none:
    /// one load of its own flag).
    fn adopt(&self, to: usize, into: &mut Vec<spsc::Consumer<Msg>>) {
        if !self.new_inbound[to].0.load(Ordering::Relaxed) || !self.new_inbound[to].0.swap(false, Ordering::Acquire) {
            return;
        }
        for cell in &self.cells[to * self.n..(to + 1) * self.n] {
            let c = cell.swap(std::ptr::null_mut(), Ordering::Acquire);
            if !c.is_null() {
                // SAFETY: a non-null cell holds a pointer from `Box::into_raw` in
                // `connect`, stored once; the swap to null makes this the only taker.
                into.push(*unsafe { Box::from_raw(c) });
            }
        }
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for cell in self.cells.iter_mut() {
            let c = *cell.get_mut();
            if !c.is_null() {
                // SAFETY: as in `adopt`; no thread is left to take it (we own `self`).
                drop(unsafe { Box::from_raw(c) });
            }
        }
    }
}

/// Pushes a message into a ring; when the ring grew to take it, adds the new slots'
/// bytes to `ring_bytes` (the old ring's slots are freed once the consumer moves on).
#[inline]
pub(crate) fn push_counted(
    p: &mut spsc::Producer<Msg>,
    m: Msg,
    ring_bytes: &std::sync::atomic::AtomicU64,
) -> Result<(), Msg> {
    let cap = p.capacity();
    p.push(m)?;
    if p.capacity() != cap {
        ring_bytes.fetch_add(((p.capacity() - cap) * p.slot_bytes()) as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// What a thread keeps for a peer it has sent messages to.
pub(crate) struct Peer {
    producer: spsc::Producer<Msg>,
    /// Messages that did not fit the ring, pushed first on later iterations.
    overflow: VecDeque<Msg>,
    /// Pushed to since the last wake-up round.
    wake: bool,
}

impl Peer {
    /// Messages wait in the overflow FIFO: the loop must not block in the kernel.
    pub(crate) fn has_overflow(&self) -> bool {
        !self.overflow.is_empty()
    }
}

impl Worker {
    /// Sends a message to thread `to` (itself included). The first message to a peer
    /// creates the ring to it ([`Mesh::connect`]).
    pub fn send_msg(&mut self, to: usize, m: Msg) {
        if to == self.id {
            self.local.push_back(m);
            return;
        }
        let peer = match &mut self.peers[to] {
            Some(p) => p,
            slot @ None => {
                // The ring's bytes (as this thread's allocator counter saw them) are
                // messaging overhead: kept out of the maxmemory check, shown in INFO.
                let before = crate::alloc::this_thread();
                let producer = self.mesh.connect(self.id, to);
                self.talking.push(to);
                let peer = slot.insert(Box::new(Peer { producer, overflow: VecDeque::new(), wake: false }));
                let bytes = (crate::alloc::this_thread() - before).max(0) as u64;
                self.shard.g.ring_bytes.fetch_add(bytes, Ordering::Relaxed);
                peer
            }
        };
        peer.wake = true;
        if !peer.overflow.is_empty() {
            peer.overflow.push_back(m);
            return;
        }
        if let Err(m) = push_counted(&mut peer.producer, m, &self.shard.g.ring_bytes) {
            peer.overflow.push_back(m);
        }
    }

    pub(crate) fn flush_overflow(&mut self) {
        for &to in &self.talking {
            let peer = self.peers[to].as_mut().expect("talking peers have a ring");
            while let Some(m) = peer.overflow.pop_front() {
                if let Err(m) = push_counted(&mut peer.producer, m, &self.shard.g.ring_bytes) {
                    peer.overflow.push_front(m);
                    break;
                }
                peer.wake = true;
            }
        }
    }

    /// Wakes the threads we pushed messages to, unless they are already notified.
    pub(crate) fn send_wakes(&mut self) {
        for i in 0..self.talking.len() {
            let to = self.talking[i];
            let peer = self.peers[to].as_mut().expect("talking peers have a ring");
            if !std::mem::take(&mut peer.wake) {
                continue;
            }
            // Pairs with the consumer's store(false) + fence before it drains: either it
            // sees our message (and a ring we created, `Mesh::adopt`), or we see the flag
            // clear and wake it.
            fence(Ordering::SeqCst);
            if self.shard.g.notified[to].0.swap(true, Ordering::SeqCst) {
                continue;
            }
            let fd = self.shard.g.ring_fds[to];
            let e = opcode::MsgRingData::new(types::Fd(fd), 0, user_data(KIND_WAKE, 0, 0), None)
                .build()
                .flags(squeue::Flags::SKIP_SUCCESS)
                .user_data(user_data(KIND_IGNORE, 0, 0));
            self.push_sqe(e);
        }
    }

    pub(crate) fn drain_messages(&mut self) {
        self.mesh.adopt(self.id, &mut self.consumers);
        loop {
            let mut progressed = false;
            while let Some(m) = self.local.pop_front() {
                self.handle_msg(m);
                progressed = true;
            }
            for i in 0..self.consumers.len() {
                // Bounded per ring per round so one busy peer cannot starve the loop.
                for _ in 0..256 {
                    let Some(m) = self.consumers[i].pop() else { break };
                    self.handle_msg(m);
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
            // Handling may have made a peer create its ring to us meanwhile.
            self.mesh.adopt(self.id, &mut self.consumers);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::uring_entries;

    // A ring exists only once its sender has sent: the receiver adopts it at its next
    // drain (once), other threads see nothing, and rings never adopted are freed with
    // the mesh.
    #[test]
    fn mesh_creates_rings_on_first_message() {
        let mesh = Mesh::new(4);
        let mut inbound: Vec<spsc::Consumer<Msg>> = Vec::new();
        mesh.adopt(2, &mut inbound);
        assert!(inbound.is_empty());
        let mut p = mesh.connect(1, 2);
        assert!(p.push(Msg::Cancel { txid: 7 }).is_ok());
        let _unadopted = mesh.connect(0, 3);
        mesh.adopt(2, &mut inbound);
        assert_eq!(inbound.len(), 1);
        assert!(matches!(inbound[0].pop(), Some(Msg::Cancel { txid: 7 })));
        mesh.adopt(2, &mut inbound);
        assert_eq!(inbound.len(), 1, "adopted once");
        let mut none = Vec::new();
        mesh.adopt(1, &mut none);
        assert!(none.is_empty());
    }

    // Ring depth and io_uring size shrink with the thread count within their bounds.
    #[test]
    fn sizes_scale_with_threads() {
        assert_eq!(ring_depth(1), RING_DEPTH);
        assert_eq!(ring_depth(64), 1024);
        assert_eq!(ring_depth(256), 256);
        assert_eq!(ring_depth(1024), RING_DEPTH_MIN);
        assert_eq!(uring_entries(1), 4096);
        assert_eq!(uring_entries(128), 256);
        assert_eq!(uring_entries(1024), 256);
    }
}
