//! The per-thread completion loop, cross-thread messages and the transaction coordinator.
//!
//! ```text
//!   thread i:  loop {
//!                drain inbound SPSC rings + local queue ──▶ handle Msg (shard side
//!                                                          or coordinator side)
//!                run queued transaction hops that became runnable (VLL)
//!                submit SQEs, wait for ≥1 CQE (unless work is pending)
//!                collect CQEs, then handle each: accept | recv | send | timer | wake
//!              }
//! ```
//!
//! `user_data` of every SQE is `kind << 56 | generation << 32 | slab index`; a
//! completion whose generation does not match its slot's is stale and dropped. Accepts
//! carry the listeners' generation (`Shard::listen_gen`) instead, bumped when `CONFIG
//! SET port|bind` swaps them ([`install_listeners`]) or shutdown closes them.
//!
//! Shutdown (SHUTDOWN, SIGTERM, SIGINT) raises `Globals::shutdown`; each loop then drains
//! ([`Worker::drain_step`]: no more accepts or reads, replies already produced are
//! sent) and ends once every thread is drained or `SHUTDOWN_DRAIN` has passed.
//!
//! Cross-thread traffic: one SPSC ring per ordered thread pair that has talked
//! ([`Mesh`]: created by the sender on its first message, so an idle pair costs one
//! pointer). After pushing, the producer wakes the consumer with an `IORING_OP_MSG_RING`
//! SQE on its own ring, but only if the consumer's `notified` flag was clear
//! (Dekker-style handshake, see `Worker::send_wakes`).
//!
//! Goals: no locks, no async runtime, one send per batch of pipelined replies.
//! Non-goals (yet): provided-buffer multishot recv, zero-copy send.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use crate::cmd::{self, Command};
use crate::conn::{self, Conn, ConnSlot, Squash, Wait};
use crate::reply::ReplyBuf;
use crate::shard::{Globals, Shard, unix_ms};
use crate::spsc;
use crate::vll::{LockKey, TxId, Vll};

/// The result of a job, sent back to the coordinator.
pub type Out = Box<dyn Any + Send>;
/// Work for a shard, run on the shard's own thread.
pub type Job = Box<dyn FnOnce(&mut Shard) -> Out + Send>;

/// Who gets a job's result: a connection on some thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub thread: u32,
    pub idx: u32,
    pub generation: u32,
}

/// Messages between threads (and from a thread to itself).
pub enum Msg {
    /// A single-shard command: run now if its keys are unlocked, else queue it.
    Exec { origin: Origin, cmd: Box<OwnedCmd> },
    /// Pipelined single-shard commands, run in order; answered with `Vec<Vec<u8>>`.
    ExecBatch { origin: Origin, cmds: Vec<OwnedCmd> },
    /// Schedule a multi-shard transaction's locks in this shard.
    Schedule { origin: Origin, txid: u64, keys: Vec<LockKey> },
    /// Run one hop of a scheduled transaction (None: only conclude); `last` releases the locks.
    Hop { origin: Origin, txid: u64, job: Option<Job>, last: bool },
    /// Drop a scheduled transaction that another shard refused.
    Cancel { txid: u64 },
    /// Run a job at once, without locks (broadcasts: DBSIZE, INFO, KEYS...).
    Run { origin: Origin, job: Job },
    /// A job's result, for the coordinator.
    Done { origin: Origin, shard: u32, out: Out },
    /// Answer to `Schedule`.
    Scheduled { origin: Origin, shard: u32, ok: bool },
}

/// A command with its arguments copied out of the connection's buffer, to run elsewhere.
pub struct OwnedCmd {
    pub cmd: &'static Command,
    pub data: Vec<u8>,
    pub ends: Vec<u32>,
    pub db: u16,
    pub resp3: bool,
    /// CLIENT NO-TOUCH of the sending connection (`ReplyBuf::no_touch`).
    pub no_touch: bool,
}

impl OwnedCmd {
    pub fn new(cmd: &'static Command, args: &[&[u8]], db: usize, resp3: bool) -> OwnedCmd {
        let total = args.iter().map(|a| a.len()).sum();
        let mut data = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(args.len());
        for a in args {
            data.extend_from_slice(a);
            ends.push(data.len() as u32);
        }
        OwnedCmd { cmd, data, ends, db: db as u16, resp3, no_touch: false }
    }

    /// Marks the command as sent by a client in CLIENT NO-TOUCH mode.
    pub fn with_no_touch(mut self, no_touch: bool) -> OwnedCmd {
        self.no_touch = no_touch;
        self
    }

    /// The arguments as slices.
    pub fn args(&self) -> Vec<&[u8]> {
        let mut v = Vec::with_capacity(self.ends.len());
        let mut start = 0usize;
        for &e in &self.ends {
            v.push(&self.data[start..e as usize]);
            start = e as usize;
        }
        v
    }

    /// Runs the command's shard handler here and returns its reply bytes.
    pub fn run(&self, shard: &mut Shard) -> Vec<u8> {
        let args = self.args();
        let mut out = ReplyBuf::new(self.resp3);
        out.no_touch = self.no_touch;
        cmd::run_shard_handler(shard, self.cmd, self.db as usize, &args, &mut out);
        out.buf
    }
}

/// Lock sets of a multi-shard transaction, by shard.
pub type LockSets = Vec<(usize, Vec<LockKey>)>;
/// What a multi-shard command builder returns: its locks and its program.
pub type TxPlan = (LockSets, Box<dyn Program>);

/// A multi-step program a coordinator drives over several shards.
pub trait Program: Send {
    /// Returns the jobs of hop `hop`, given the previous hop's results by shard, or
    /// [`Plan::Done`] once it has written its reply into `out`.
    fn step(&mut self, hop: u32, results: &mut [Option<Out>], out: &mut ReplyBuf) -> Plan;
}

pub enum Plan {
    /// Run these jobs (at most one per shard). `last`: the transaction concludes after them.
    Jobs {
        jobs: Vec<(usize, Job)>,
        last: bool,
    },
    Done,
}

enum Phase {
    Scheduling { pending: usize, refused: bool, accepted: Vec<usize> },
    Running { pending: usize },
}

/// Coordinator state of a multi-shard transaction (or an unlocked broadcast).
pub struct Coord {
    prog: Box<dyn Program>,
    /// Lock sets by shard; empty for unlocked programs.
    locks: LockSets,
    txid: u64,
    hop: u32,
    phase: Phase,
    results: Vec<Option<Out>>,
    /// The last hop was sent: the shards release their locks on their own.
    concluded: bool,
}

/// A queued hop in the VLL queue.
pub struct QueuedJob {
    job: Job,
    origin: Origin,
    last: bool,
}

const KIND_ACCEPT: u64 = 1;
const KIND_RECV: u64 = 2;
const KIND_SEND: u64 = 3;
const KIND_TIMER: u64 = 4;
const KIND_WAKE: u64 = 5;
const KIND_IGNORE: u64 = 6;

fn user_data(kind: u64, generation: u32, idx: u32) -> u64 {
    kind << 56 | ((generation as u64) & 0xff_ffff) << 32 | idx as u64
}

fn decode(ud: u64) -> (u64, u32, u32) {
    (ud >> 56, ((ud >> 32) & 0xff_ffff) as u32, ud as u32)
}

/// Timer period for active expiry and housekeeping.
const TICK_MS: i64 = 10;
/// Most pipelined commands squashed into one round of per-shard batches.
const MAX_SQUASH: usize = 1024;
/// Slots a cross-thread ring starts with: it doubles when full, up to [`ring_depth`]
/// (`spsc::channel_growing`). 16 slots of ~64 bytes: ~1.3 KB with the ring's header.
const RING_INITIAL: usize = 16;
/// Most slots of a cross-thread ring (with few threads; see [`ring_depth`]).
const RING_DEPTH: usize = 1024;
/// Bytes the per-thread parse arena starts with.
const ARENA_INITIAL: usize = 64 * 1024;
/// An arena that grew past this for one command is dropped for a fresh one afterwards
/// (see `Worker::process`); below it, `reset` keeps the memory for the next command.
const ARENA_RETAIN_MAX: usize = 1 << 20;
/// Timer ticks per second (the tick is `TICK_MS`).
const TICKS_PER_SECOND: usize = (1000 / TICK_MS) as usize;
/// Fewest connection slots one tick's client housekeeping visits (Redis's
/// `CLIENTS_CRON_MIN_ITERATIONS`); otherwise a 100th of the slots, so that every
/// connection is visited about once a second.
const CLIENTS_CRON_MIN_VISITS: usize = 5;

/// Fewest slots of a cross-thread ring (with many threads).
const RING_DEPTH_MIN: usize = 64;
/// Ring slots per thread pair, summed over a thread's peers: [`ring_depth`] divides it.
const RING_SLOTS_PER_THREAD: usize = 64 * 1024;

/// The most slots a cross-thread ring grows to with `nthreads` threads: 1024 up to 64
/// threads, then fewer so that a thread's rings from all its peers, if every pair talks
/// hard enough to grow them all, hold at most ~64k messages (~4 MB): 512 at 128
/// threads, 256 at 256, 64 at 1024. A full ring spills into the sender's overflow FIFO,
/// so a shallow ring costs wake-ups, not messages.
fn ring_depth(nthreads: usize) -> usize {
    (RING_SLOTS_PER_THREAD / nthreads.max(1)).clamp(RING_DEPTH_MIN, RING_DEPTH).next_power_of_two()
}

/// Submission queue entries of each thread's io_uring (the completion queue has twice
/// as many): 4096 up to 8 threads, fewer with more threads (each then has fewer
/// connections), never under 256. SQEs that do not fit wait in the backlog FIFO. At
/// 4096 entries a ring costs ~400 KB of kernel memory mapped into the process: 400 MB
/// for 1024 threads; at 256, 25 KB.
fn uring_entries(nthreads: usize) -> u32 {
    (32 * 1024 / nthreads.max(1)).clamp(256, 4096).next_power_of_two() as u32
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
fn push_counted(p: &mut spsc::Producer<Msg>, m: Msg, ring_bytes: &std::sync::atomic::AtomicU64) -> Result<(), Msg> {
    let cap = p.capacity();
    p.push(m)?;
    if p.capacity() != cap {
        ring_bytes.fetch_add(((p.capacity() - cap) * p.slot_bytes()) as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// What a thread keeps for a peer it has sent messages to.
struct Peer {
    producer: spsc::Producer<Msg>,
    /// Messages that did not fit the ring, pushed first on later iterations.
    overflow: VecDeque<Msg>,
    /// Pushed to since the last wake-up round.
    wake: bool,
}

/// Most time one slice of active expiry takes (see `Worker::active_expire`).
const ACTIVE_EXPIRE_SLICE: std::time::Duration = std::time::Duration::from_micros(200);
/// Emptied table segments (~28 KB each) one expiry slice frees (a free of one took
/// ~30 µs: mimalloc gives such blocks back to the system).
const RETIRED_PER_SLICE: usize = 4;
/// How often expiry slices run while keys are still due.
const EXPIRE_BACKLOG_PERIOD: std::time::Duration = std::time::Duration::from_micros(1000);
/// Most time one tick spends on cache-mode background eviction.
const CACHE_EVICT_BUDGET: std::time::Duration = std::time::Duration::from_micros(500);
/// Keys with a deadline one active-expiry step looks at.
const ACTIVE_EXPIRE_SAMPLE: usize = 64;

pub struct Worker {
    pub id: usize,
    ring: IoUring,
    pub shard: Shard,
    vll: Vll<QueuedJob>,
    mesh: Arc<Mesh>,
    /// By thread id: the ring to that peer, once this thread has sent it a message
    /// (a null pointer per idle peer).
    peers: Vec<Option<Box<Peer>>>,
    /// Ids of the `Some` entries of `peers`, for the per-iteration loops.
    talking: Vec<usize>,
    /// Rings from peers that have sent this thread a message.
    consumers: Vec<spsc::Consumer<Msg>>,
    local: VecDeque<Msg>,
    backlog: VecDeque<squeue::Entry>,
    arena: bumpalo::Bump,
    timer: Box<types::Timespec>,
    next_gen: u32,
    expire_cursor_db: usize,
    /// Active expiry ran out of time with keys still due: run more slices between
    /// rounds of completions (see `Worker::active_expire`).
    expire_backlog: bool,
    /// When the last expiry slice started.
    last_expire: std::time::Instant,
    /// Set when this thread saw the shutdown flag: the time by which it stops waiting
    /// for in-flight replies (see [`Worker::drain_step`]).
    drain_deadline: Option<std::time::Instant>,
    /// This thread has counted itself in `Globals::threads_drained`.
    drained: bool,
}

/// Longest a graceful shutdown (SIGTERM, SIGINT, SHUTDOWN) waits for replies already
/// produced to reach clients that do not read them.
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

/// Creates the rings and threads and runs until SHUTDOWN. Returns when all threads end.
pub fn run(cfg: crate::config::Config) -> std::io::Result<()> {
    let n = cfg.threads();
    let mut rings = Vec::with_capacity(n);
    for _ in 0..n {
        // SINGLE_ISSUER + DEFER_TASKRUN: completions are processed only when this
        // thread enters the kernel, in its context (fewer interrupts of the loop). The
        // ring starts disabled so that the owning thread, not main, becomes its issuer
        // when it enables it.
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_r_disabled()
            .build(uring_entries(n))
            .or_else(|_| IoUring::builder().setup_coop_taskrun().build(uring_entries(n)))?;
        rings.push(ring);
    }
    let fds: Vec<i32> = rings.iter().map(|r| r.as_raw_fd_()).collect();
    let listen_fds = match crate::net::listeners(&cfg.bind, cfg.port, n, &[]) {
        Ok(l) => l,
        Err(e) => {
            // Redis's two lines; another process (maybe another Darter) holds the port.
            log::warn!("Warning: {e}");
            log::warn!("Failed listening on port {} (TCP), aborting.", cfg.port);
            return Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, e.to_string()));
        }
    };
    let runtime = cmd::config::initial(&cfg);
    let g = Arc::new(Globals::new(cfg, fds));
    crate::signals::spawn_signal_thread(g.clone())?;
    let mesh = Arc::new(Mesh::new(n));
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let mut handles = Vec::with_capacity(n);
    for (i, (ring, lfds)) in rings.into_iter().zip(listen_fds).enumerate() {
        let mesh = mesh.clone();
        let g = g.clone();
        let core = if cores.is_empty() { None } else { Some(cores[i % cores.len()]) };
        let runtime = runtime.clone();
        let h = std::thread::Builder::new().name(format!("shard-{i}")).spawn(move || {
            if let Some(c) = core {
                core_affinity::set_for_current(c);
            }
            let mut shard = Shard::new(i, g, runtime, cmd::table().len());
            shard.listen_fds = lfds;
            let mut w = Worker {
                id: i,
                ring,
                shard,
                vll: Vll::default(),
                peers: (0..n).map(|_| None).collect(),
                talking: Vec::new(),
                consumers: Vec::new(),
                mesh,
                local: VecDeque::new(),
                backlog: VecDeque::new(),
                arena: bumpalo::Bump::with_capacity(ARENA_INITIAL),
                timer: Box::new(types::Timespec::new().nsec((TICK_MS as u32) * 1_000_000)),
                next_gen: 1,
                expire_cursor_db: 0,
                expire_backlog: false,
                last_expire: std::time::Instant::now(),
                drain_deadline: None,
                drained: false,
            };
            // The last thread to be ready records used_memory_startup.
            if w.shard.g.threads_ready.fetch_add(1, Ordering::AcqRel) + 1 == w.shard.nshards {
                let used = crate::alloc::used_memory();
                w.shard.g.startup_memory.store(used, Ordering::Relaxed);
            }
            if let Err(e) = w.run() {
                log::error!("thread {i} stopped: {e}");
            }
        })?;
        handles.push(h);
    }
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

trait RawFdExt {
    fn as_raw_fd_(&self) -> i32;
}
impl RawFdExt for IoUring {
    fn as_raw_fd_(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.as_raw_fd()
    }
}

impl Worker {
    fn run(&mut self) -> std::io::Result<()> {
        // Enables a ring built with R_DISABLED (no-op error otherwise: already enabled).
        let _ = self.ring.submitter().register_enable_rings();
        self.arm_accepts();
        let e = opcode::Timeout::new(&*self.timer as *const _)
            .count(0)
            .flags(types::TimeoutFlags::MULTISHOT)
            .build()
            .user_data(user_data(KIND_TIMER, 0, 0));
        self.push_sqe(e);

        let mut cqes: Vec<(u64, i32, u32)> = Vec::with_capacity(256);
        loop {
            if self.shard.g.shutdown.load(Ordering::Relaxed) && self.drain_step() {
                self.close_all();
                return Ok(());
            }
            self.drain_messages();
            if self.shard.arm_accepts {
                self.arm_accepts(); // CONFIG SET port|bind installed new listeners
            }
            self.flush_overflow();
            self.send_wakes();
            while let Some(e) = self.backlog.pop_front() {
                // SAFETY: entries in the backlog point at buffers owned by live
                // connections that keep them until the completion arrives.
                if unsafe { self.ring.submission().push(&e) }.is_err() {
                    self.backlog.push_front(e);
                    break;
                }
            }
            let busy = !self.local.is_empty()
                || self.talking.iter().any(|&t| self.peers[t].as_ref().is_some_and(|p| !p.overflow.is_empty()));
            let want = if busy { 0 } else { 1 };
            let r = if self.expire_backlog && want == 1 {
                // Wake up for the next expiry slice even if no I/O comes.
                let ts = types::Timespec::new().nsec(EXPIRE_BACKLOG_PERIOD.as_nanos() as u32);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            } else {
                self.ring.submit_and_wait(want)
            };
            match r {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::ETIME)) => {}
                Err(e) => return Err(e),
            }
            cqes.clear();
            for c in self.ring.completion() {
                cqes.push((c.user_data(), c.result(), c.flags()));
            }
            for &(ud, res, flags) in &cqes {
                self.on_completion(ud, res, flags);
            }
            if self.expire_backlog && self.last_expire.elapsed() >= EXPIRE_BACKLOG_PERIOD {
                self.expire_backlog = self.active_expire();
            }
        }
    }

    /// Queues an SQE, submitting first if the queue is full.
    fn push_sqe(&mut self, e: squeue::Entry) {
        // SAFETY: every SQE built in this module points either at nothing, at the
        // boxed timer, or at a buffer of a connection that stays allocated (and is not
        // reallocated) until the SQE's completion is handled — for a recv, the read
        // buffer's spare capacity, which nothing resizes or compacts while
        // `recv_inflight` (see `conn`'s module docs).
        if unsafe { self.ring.submission().push(&e) }.is_ok() {
            return;
        }
        let _ = self.ring.submit();
        // SAFETY: as above.
        if unsafe { self.ring.submission().push(&e) }.is_err() {
            self.backlog.push_back(e);
        }
    }

    fn on_completion(&mut self, ud: u64, res: i32, flags: u32) {
        let (kind, generation, idx) = decode(ud);
        match kind {
            KIND_ACCEPT => {
                if generation != self.shard.listen_gen {
                    // A listener closed by CONFIG SET port|bind or shutdown: a
                    // connection it still accepted is closed, the accept not re-armed.
                    if res >= 0 {
                        // SAFETY: a socket the kernel just gave us and nobody else has.
                        unsafe { libc::close(res) };
                    }
                    return;
                }
                if res >= 0 {
                    self.on_accept(res);
                } else if res != -libc::EAGAIN && res != -libc::EINTR && res != -libc::ECONNABORTED {
                    log::warn!("accept failed: {}", std::io::Error::from_raw_os_error(-res));
                }
                if !cqueue::more(flags) {
                    let fd = self.shard.listen_fds[idx as usize];
                    let e = opcode::AcceptMulti::new(types::Fd(fd)).build().user_data(user_data(
                        KIND_ACCEPT,
                        generation,
                        idx,
                    ));
                    self.push_sqe(e);
                }
            }
            KIND_RECV => self.on_recv(idx as usize, generation, res),
            KIND_SEND => self.on_send(idx as usize, generation, res),
            KIND_TIMER => self.on_tick(),
            KIND_WAKE => {
                self.shard.g.notified[self.id].0.store(false, Ordering::SeqCst);
                fence(Ordering::SeqCst);
            }
            _ => {}
        }
    }

    /// Starts the multishot accepts of this thread's current listeners (at start and
    /// after `CONFIG SET port|bind` swapped them); their completions carry
    /// `listen_gen`, so those of older listeners are told apart and dropped.
    fn arm_accepts(&mut self) {
        self.shard.arm_accepts = false;
        for i in 0..self.shard.listen_fds.len() {
            let fd = self.shard.listen_fds[i];
            let e = opcode::AcceptMulti::new(types::Fd(fd)).build().user_data(user_data(
                KIND_ACCEPT,
                self.shard.listen_gen,
                i as u32,
            ));
            self.push_sqe(e);
        }
    }

    fn on_accept(&mut self, fd: i32) {
        // maxclients over all threads (Redis's check: admitted while fewer are connected).
        if self.shard.g.clients.fetch_add(1, Ordering::AcqRel) >= self.shard.cfg.maxclients {
            self.shard.g.clients.fetch_sub(1, Ordering::AcqRel);
            reject_connection(fd, b"-ERR max number of clients reached\r\n");
            self.shard.stats.rejected_connections += 1;
            return;
        }
        crate::net::set_nodelay(fd);
        let (peer, local) = crate::net::addrs(fd);
        if self.shard.cfg.protected_mode
            && self.shard.cfg.requirepass.is_empty()
            && !crate::net::is_loopback_peer(&peer)
        {
            self.shard.g.clients.fetch_sub(1, Ordering::AcqRel);
            reject_connection(fd, PROTECTED_MODE_DENIED.as_bytes());
            self.shard.stats.connections_received += 1;
            self.shard.stats.rejected_connections += 1;
            return;
        }
        let id = self.shard.g.next_client_id.fetch_add(1, Ordering::Relaxed);
        let authed = self.shard.cfg.requirepass.is_empty();
        let conn = Box::new(Conn::new(fd, id, peer, local, authed, unix_ms()));
        let generation = self.next_gen;
        self.next_gen = (self.next_gen + 1) & 0xff_ffff;
        let idx = self.shard.conns.insert(ConnSlot { generation, conn: Some(conn) });
        self.shard.nconns += 1;
        self.shard.stats.connections_received += 1;
        let mut c = self.take(idx);
        self.post_recv(idx, generation, &mut c);
        self.put(idx, c);
    }

    /// Takes a connection out of its slot for processing; put it back with [`Worker::put`].
    fn take(&mut self, idx: usize) -> Box<Conn> {
        self.shard.conns[idx].conn.take().expect("connection is in its slot")
    }

    /// Puts a connection back, or frees the slot if it is closing and idle.
    fn put(&mut self, idx: usize, c: Box<Conn>) {
        self.shard.conns[idx].conn = Some(c);
        reap(&mut self.shard, idx);
    }

    /// Looks up a live slot by index and generation.
    fn slot_ok(&self, idx: usize, generation: u32) -> bool {
        matches!(self.shard.conns.get(idx), Some(s) if s.generation == generation && s.conn.is_some())
    }

    fn post_recv(&mut self, idx: usize, generation: u32, c: &mut Conn) {
        if c.recv_inflight || c.closing || c.close_after_reply || c.is_waiting() || self.drain_deadline.is_some() {
            return;
        }
        if c.pending_output() > conn::OUTPUT_SOFT_LIMIT {
            return;
        }
        // Make room: move unparsed bytes to the front, shrink if the tick asked to,
        // grow if full. The only place besides the tick that changes the allocation,
        // and no recv is in flight here.
        if c.prepare_read_buf().is_err() {
            log::warn!("closing client {} that reached max query buffer length", c.id);
            c.closing = true;
            return;
        }
        let spare = c.rbuf.spare_capacity_mut();
        // The kernel writes into the spare capacity: uninitialised memory that nothing
        // reads until `on_recv` extends the length by the bytes the kernel reported.
        // `rbuf` is neither reallocated nor compacted until then (`recv_inflight`).
        let e = opcode::Recv::new(
            types::Fd(c.fd),
            spare.as_mut_ptr().cast::<u8>(),
            spare.len().min(u32::MAX as usize) as u32,
        )
        .build()
        .user_data(user_data(KIND_RECV, generation, idx as u32));
        c.recv_inflight = true;
        self.push_sqe(e);
    }

    fn on_recv(&mut self, idx: usize, generation: u32, res: i32) {
        if !self.slot_ok(idx, generation) {
            return;
        }
        let mut c = self.take(idx);
        c.recv_inflight = false;
        c.recv_cancel = false;
        if res > 0 && self.drain_deadline.is_some() {
            // Shutting down: no new commands (see `drain_step`).
        } else if res > 0 {
            let (len, received) = (c.rbuf.len(), res as usize);
            assert!(received <= c.rbuf.capacity() - len, "recv reported more bytes than it was given room for");
            // SAFETY: the recv posted by `post_recv` pointed at `rbuf`'s spare capacity
            // (from `len` on), and the buffer has not moved since (no reallocation or
            // compaction while `recv_inflight`); the kernel reports that it initialised
            // the first `received` bytes of it, which the assert keeps within capacity.
            unsafe { c.rbuf.set_len(len + received) };
            c.rbuf_peak = c.rbuf_peak.max(c.rbuf.len());
            self.shard.stats.net_input_bytes += res as u64;
            c.last_interaction_ms = unix_ms();
            self.process(idx, generation, &mut c);
        } else if res == -libc::ECANCELED {
            // The tick cancelled a recv to shrink the buffer: post_recv shrinks it and
            // reads again. (Only our ASYNC_CANCEL ends a recv this way. If a cancel sat
            // in the SQE backlog while the recv it aimed at completed with data, it can
            // hit the next recv instead, which carries the same user_data: reading
            // again is right in that case too.)
            self.post_recv(idx, generation, &mut c);
        } else if res == 0 || !(res == -libc::EAGAIN || res == -libc::EINTR || res == -libc::ENOBUFS) {
            c.closing = true;
        } else {
            self.post_recv(idx, generation, &mut c);
        }
        self.put(idx, c);
    }

    fn on_send(&mut self, idx: usize, generation: u32, res: i32) {
        if !self.slot_ok(idx, generation) {
            return;
        }
        let mut c = self.take(idx);
        c.send_inflight = false;
        if res < 0 {
            if res == -libc::EAGAIN || res == -libc::EINTR {
                self.flush(idx, generation, &mut c);
            } else {
                c.closing = true;
            }
        } else {
            c.sent += res as usize;
            self.shard.stats.net_output_bytes += res as u64;
            if c.sent == c.sending.len() {
                c.sending.clear();
                c.sent = 0;
            }
            self.flush(idx, generation, &mut c);
            if !c.send_inflight && c.close_after_reply && !c.is_waiting() {
                c.closing = true;
            }
            // Back-pressure may have held reads back; parsed-but-unexecuted input may remain.
            if !c.closing && !c.is_waiting() {
                self.process(idx, generation, &mut c);
            }
        }
        self.put(idx, c);
    }

    /// Starts a send if none is in flight and replies are waiting.
    fn flush(&mut self, idx: usize, generation: u32, c: &mut Conn) {
        if c.send_inflight || c.closing {
            return;
        }
        if c.sending.is_empty() {
            // Replies of a squashed batch are spliced into `out` by position: hold it.
            if c.out.buf.is_empty() || matches!(c.wait, Wait::Squash(_)) {
                return;
            }
            std::mem::swap(&mut c.sending, &mut c.out.buf);
            c.sent = 0;
        }
        let rest = &c.sending[c.sent..];
        let e = opcode::Send::new(types::Fd(c.fd), rest.as_ptr(), rest.len().min(u32::MAX as usize) as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data(KIND_SEND, generation, idx as u32));
        c.send_inflight = true;
        self.push_sqe(e);
    }

    /// Parses and executes every complete command in the read buffer, in order, until
    /// one has to wait for another shard. Then sends the replies and reads more.
    fn process(&mut self, idx: usize, generation: u32, c: &mut Conn) {
        let origin = Origin { thread: self.id as u32, idx: idx as u32, generation };
        let limits_authed = c.authed;
        // Lent to the parser so that `args` can borrow it while commands get `&mut c`.
        // Moving the Vec does not move its heap block: a recv in flight (this can run
        // from a send completion) keeps writing into the spare capacity, which parsing
        // never reads; nothing here changes the allocation.
        let rbuf = std::mem::take(&mut c.rbuf);
        c.rbuf_lent = Some((rbuf.len(), rbuf.capacity()));
        let mut arena = std::mem::take(&mut self.arena);
        let mut squash: Option<Box<Squash>> = None;
        // Commands left before the next keyspace prefetch (see `prefetch_keys`).
        let mut prefetch_in = 0usize;
        while !c.is_waiting() && !c.closing && !c.close_after_reply && c.rpos < rbuf.len() {
            if c.pending_output() > conn::OUTPUT_SOFT_LIMIT && c.send_inflight {
                break; // resume when the send completes
            }
            if prefetch_in == 0 {
                prefetch_in = self.prefetch_keys(c.db, &rbuf[c.rpos..]);
            }
            prefetch_in -= 1;
            let limits = crate::resp::Limits { authenticated: limits_authed || c.authed, ..Default::default() };
            match crate::resp::parse(&rbuf[c.rpos..], &arena, &limits) {
                crate::resp::Parsed::Complete { args, consumed } => {
                    c.need = 0;
                    if args.is_empty() {
                        c.rpos += consumed;
                    } else if self.shard.nshards == 1 {
                        c.rpos += consumed;
                        cmd::dispatch(self, c, origin, &args);
                    } else {
                        match cmd::route(self, c, &args) {
                            Some((command, shard)) if shard != self.id => {
                                c.rpos += consumed;
                                cmd::count_call(self, c, command);
                                let sq = squash.get_or_insert_with(|| Box::new(Squash::new(self.shard.nshards)));
                                sq.add(
                                    c.out.buf.len(),
                                    shard,
                                    OwnedCmd::new(command, &args, c.db, c.out.resp3).with_no_touch(c.out.no_touch),
                                );
                                if sq.slots.len() >= MAX_SQUASH {
                                    break;
                                }
                            }
                            Some((command, shard))
                                if self.vll.queue_len() == 0 || self.vll.is_free(&cmd::lock_keys(command, &args)) =>
                            {
                                // Local and uncontended: runs inline even inside a squashed run.
                                c.rpos += consumed;
                                cmd::count_call(self, c, command);
                                self.exec_single(c, origin, command, &args, shard);
                            }
                            _ if squash.is_some() => break, // a barrier: send the run first
                            _ => {
                                c.rpos += consumed;
                                cmd::dispatch(self, c, origin, &args);
                            }
                        }
                    }
                }
                crate::resp::Parsed::Incomplete { need } => {
                    // The buffer grows in `post_recv`, as the bytes actually arrive.
                    c.need = need;
                    break;
                }
                crate::resp::Parsed::Error(e) => {
                    e.write_reply(&mut c.out.buf);
                    c.close_after_reply = true;
                    c.rpos = rbuf.len();
                }
            }
            arena.reset();
        }
        arena.reset();
        if arena.allocated_bytes() > ARENA_RETAIN_MAX && c.rpos == rbuf.len() {
            // `reset` keeps the arena's largest chunk: after one command with a million
            // arguments that would be ~18 MB per thread for good. Start small again —
            // unless this connection's next command is still arriving: each read
            // re-parses it from its start, and would fault a fresh arena in every time.
            arena = bumpalo::Bump::with_capacity(ARENA_INITIAL);
        }
        self.arena = arena;
        c.rbuf = rbuf;
        c.rbuf_lent = None;
        if let Some(mut sq) = squash {
            for shard in 0..sq.batches.len() {
                let cmds = std::mem::take(&mut sq.batches[shard]);
                if !cmds.is_empty() {
                    sq.outstanding += 1;
                    self.send_msg(shard, Msg::ExecBatch { origin, cmds });
                }
            }
            c.wait = Wait::Squash(sq);
        }
        self.flush(idx, generation, c);
        if c.close_after_reply && !c.send_inflight && !c.is_waiting() {
            c.closing = true;
        }
        self.post_recv(idx, generation, c);
    }

    /// Pipelined commands: prefetches the table slots of the next (up to 16) commands'
    /// keys that live in this shard, so their cache misses overlap (see
    /// [`Db::prefetch`](crate::store::Db::prefetch)). Returns how many commands that
    /// covers; with fewer than two complete commands in `buf` it prefetches nothing and
    /// returns `usize::MAX` (no more tries in this read).
    fn prefetch_keys(&self, db: usize, buf: &[u8]) -> usize {
        const BATCH: usize = crate::store::PREFETCH_BATCH;
        let mut keys: [&[u8]; BATCH] = [&[]; BATCH];
        let mut local = 0;
        let (me, nshards) = (self.shard.id, self.shard.nshards);
        let n = crate::resp::peek_keys(buf, BATCH, |k| {
            if nshards == 1 || crate::shard::shard_of(k, nshards) == me {
                keys[local] = k;
                local += 1;
            }
        });
        if n < 2 {
            return usize::MAX;
        }
        if let Some(d) = self.shard.dbs.get(db) {
            d.prefetch(&keys[..local]);
        }
        n
    }

    /// Periodic work: the memory sum (maxmemory estimate, peak), cache-mode eviction,
    /// client buffer housekeeping, then a slice of active expiry.
    fn on_tick(&mut self) {
        self.shard.refresh_memory();
        if self.shard.cfg.cache_mode {
            self.shard.cache_evict(CACHE_EVICT_BUDGET);
        }
        self.clients_cron();
        self.expire_backlog = self.active_expire();
    }

    /// Redis's `clientsCron`, for buffers: visits the next slots of the connection slab
    /// round-robin — a hundredth of them per tick (at least [`CLIENTS_CRON_MIN_VISITS`]),
    /// so each connection about once a second at a bounded cost per tick — records
    /// their buffer sizes for INFO, and shrinks buffers that are idle or far above
    /// their recent use (see `conn`'s module docs). No connection is taken out of its
    /// slot while the tick runs.
    fn clients_cron(&mut self) {
        let now_ms = unix_ms();
        let now_secs = now_ms / 1000;
        self.shard.client_peaks.tick(now_secs);
        // Every slab key is below the slab's capacity, so walking 0..capacity round-robin
        // visits every connection.
        let slots = self.shard.conns.capacity();
        if slots == 0 {
            return;
        }
        let visits = (slots / TICKS_PER_SECOND).max(CLIENTS_CRON_MIN_VISITS).min(slots);
        for _ in 0..visits {
            let idx = self.shard.clients_cron_cursor % slots;
            self.shard.clients_cron_cursor = idx + 1;
            let Some(slot) = self.shard.conns.get_mut(idx) else { continue };
            let generation = slot.generation;
            let Some(c) = slot.conn.as_mut() else { continue };
            if c.closing {
                continue;
            }
            self.shard.client_peaks.record(now_secs, c.rbuf.capacity(), c.output_buf_bytes());
            c.shrink_output_bufs();
            let Some(target) = c.read_buf_shrink_target(now_ms) else { continue };
            if !c.recv_inflight {
                c.shrink_read_buf(target);
            } else if !c.recv_cancel {
                // The kernel owns the buffer's spare room until the recv completes:
                // cancel it; the -ECANCELED completion shrinks and reads again.
                c.shrink_rbuf_to = target;
                c.recv_cancel = true;
                let e = opcode::AsyncCancel::new(user_data(KIND_RECV, generation, idx as u32))
                    .build()
                    .user_data(user_data(KIND_IGNORE, 0, 0));
                self.push_sqe(e);
            }
        }
    }

    /// One slice of active expiry, at most [`ACTIVE_EXPIRE_SLICE`] long. Each db with
    /// deadlines gets at least one step of [`ACTIVE_EXPIRE_SAMPLE`] keys; a db keeps
    /// getting steps while more than a tenth of what a step saw was due (Redis's
    /// acceptable-stale share). Returns true when the slice ran out of time with keys
    /// still due: the loop then runs another slice every [`EXPIRE_BACKLOG_PERIOD`]
    /// (waking up for it if no I/O comes) until the backlog is gone, so a mass expiry
    /// gets a fifth of the thread while a request waits at most one slice. Idle dbs
    /// cost a few hundred nanoseconds a tick.
    fn active_expire(&mut self) -> bool {
        let start = std::time::Instant::now();
        self.last_expire = start;
        // Segments of tables rebuilt small after mass deletes are freed a few per slice.
        let mut retired = false;
        for d in &mut self.shard.dbs {
            retired |= d.free_retired(RETIRED_PER_SLICE);
        }
        if !self.shard.cfg.active_expire {
            return retired;
        }
        let now = unix_ms();
        let ndb = self.shard.dbs.len();
        for _ in 0..ndb {
            let db = self.expire_cursor_db % ndb;
            loop {
                let step = self.shard.dbs[db].expire_step(now, ACTIVE_EXPIRE_SAMPLE);
                self.shard.stats.expired_keys_active += step.removed as u64;
                if step.removed * 10 <= step.sampled {
                    break;
                }
                if start.elapsed() >= ACTIVE_EXPIRE_SLICE {
                    return true; // this db goes on in the next slice
                }
            }
            self.expire_cursor_db = (db + 1) % ndb;
        }
        retired
    }

    /// One step of a graceful shutdown, run at the top of every loop turn once the
    /// shutdown flag is up. The first step stops accepting (closes the listeners); from
    /// then on no recv is posted and data that still arrives is dropped, while replies
    /// already produced are sent and transactions in flight finish (every thread keeps
    /// serving messages). A thread whose connections have nothing left to send counts
    /// itself drained; returns true, so the thread closes everything and ends, once all
    /// threads are drained or [`SHUTDOWN_DRAIN`] has passed.
    fn drain_step(&mut self) -> bool {
        let now = std::time::Instant::now();
        if self.drain_deadline.is_none() {
            self.drain_deadline = Some(now + SHUTDOWN_DRAIN);
            crate::net::close_listeners(&std::mem::take(&mut self.shard.listen_fds));
            self.shard.listen_gen = (self.shard.listen_gen + 1) & 0xff_ffff;
        }
        if !self.drained {
            let quiet = self.shard.conns.iter().all(|(_, s)| {
                s.conn.as_ref().is_none_or(|c| {
                    !c.is_waiting() && (c.closing || (!c.send_inflight && c.sending.is_empty() && c.out.buf.is_empty()))
                })
            });
            if quiet {
                self.drained = true;
                self.shard.g.threads_drained.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.shard.g.threads_drained.load(Ordering::Acquire) >= self.shard.nshards
            || self.drain_deadline.is_some_and(|d| now >= d)
    }

    fn close_all(&mut self) {
        for (_, s) in self.shard.conns.iter_mut() {
            if let Some(c) = &s.conn {
                // SAFETY: closing our own sockets at shutdown; the process is exiting.
                // shutdown() first: in-flight io_uring requests keep the file open until
                // the ring is torn down, and clients should see EOF now.
                unsafe {
                    libc::shutdown(c.fd, libc::SHUT_RDWR);
                    libc::close(c.fd)
                };
            }
        }
        crate::net::close_listeners(&std::mem::take(&mut self.shard.listen_fds));
    }

    // ---------------------------------------------------------------- messages

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

    fn flush_overflow(&mut self) {
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
    fn send_wakes(&mut self) {
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

    fn drain_messages(&mut self) {
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

    fn handle_msg(&mut self, m: Msg) {
        match m {
            Msg::Exec { origin, cmd } => {
                let keys = cmd::lock_keys(cmd.cmd, &cmd.args());
                if self.vll.is_free(&keys) {
                    let out = cmd.run(&mut self.shard);
                    self.send_msg(
                        origin.thread as usize,
                        Msg::Done { origin, shard: self.id as u32, out: Box::new(out) },
                    );
                } else {
                    let job: Job = Box::new(move |s: &mut Shard| Box::new(cmd.run(s)) as Out);
                    self.vll.schedule_local(keys, QueuedJob { job, origin, last: true });
                    self.pump();
                }
            }
            Msg::ExecBatch { origin, cmds } => self.exec_batch(origin, cmds),
            Msg::Schedule { origin, txid, keys } => {
                let ok = self.vll.schedule_global(txid, keys);
                if !ok {
                    self.shard.stats.tx_schedule_refusals += 1;
                }
                self.send_msg(origin.thread as usize, Msg::Scheduled { origin, shard: self.id as u32, ok });
            }
            Msg::Hop { origin, txid, job, last } => {
                let id: TxId = (txid, 0);
                match job {
                    None => {
                        debug_assert!(last);
                        self.vll.remove(id);
                    }
                    Some(job) => {
                        if self.vll.set_pending(id, QueuedJob { job, origin, last }).is_err() {
                            panic!("hop for transaction {txid} that is not scheduled in shard {}", self.id);
                        }
                    }
                }
                self.pump();
            }
            Msg::Cancel { txid } => {
                self.vll.remove((txid, 0));
                self.pump();
            }
            Msg::Run { origin, job } => {
                let out = job(&mut self.shard);
                self.send_msg(origin.thread as usize, Msg::Done { origin, shard: self.id as u32, out });
            }
            Msg::Done { origin, shard, out } => self.on_done(origin, shard as usize, out),
            Msg::Scheduled { origin, shard, ok } => self.on_scheduled(origin, shard as usize, ok),
        }
    }

    /// Runs a squashed batch in order. Commands run at once while their keys are free;
    /// from the first contended one on, the rest wait in the queue as one transaction
    /// holding all their keys, so the batch keeps its order.
    fn exec_batch(&mut self, origin: Origin, cmds: Vec<OwnedCmd>) {
        let mut replies: Vec<Vec<u8>> = Vec::with_capacity(cmds.len());
        let mut rest = cmds.into_iter();
        while let Some(cmd) = rest.next() {
            if self.vll.queue_len() == 0 || self.vll.is_free(&cmd::lock_keys(cmd.cmd, &cmd.args())) {
                replies.push(cmd.run(&mut self.shard));
                continue;
            }
            let mut queued = vec![cmd];
            queued.extend(rest);
            // One lock set for the rest of the batch: every command's keys, each once,
            // exclusive if any command writes it (sort + dedup: O(n log n)).
            let mut keys: Vec<LockKey> = Vec::new();
            for q in &queued {
                keys.extend(cmd::lock_keys(q.cmd, &q.args()));
            }
            crate::vll::normalize(&mut keys);
            let job: Job = Box::new(move |s: &mut Shard| {
                for q in queued {
                    replies.push(q.run(s));
                }
                Box::new(replies) as Out
            });
            self.vll.schedule_local(keys, QueuedJob { job, origin, last: true });
            self.pump();
            return;
        }
        self.send_msg(origin.thread as usize, Msg::Done { origin, shard: self.id as u32, out: Box::new(replies) });
    }

    /// Runs every queued hop that has become runnable.
    fn pump(&mut self) {
        while let Some((id, q)) = self.vll.next_runnable() {
            let out = (q.job)(&mut self.shard);
            if q.last {
                self.vll.remove(id);
            }
            self.send_msg(q.origin.thread as usize, Msg::Done { origin: q.origin, shard: self.id as u32, out });
        }
    }

    // ------------------------------------------------------------ coordinator

    /// Runs a single-shard command on `shard`: inline when it is this thread's and its
    /// keys are free, else through a message (the connection waits for the reply).
    pub fn exec_single(
        &mut self,
        c: &mut Conn,
        origin: Origin,
        command: &'static Command,
        args: &[&[u8]],
        shard: usize,
    ) {
        if shard == self.id && (self.vll.queue_len() == 0 || self.vll.is_free(&cmd::lock_keys(command, args))) {
            cmd::run_shard_handler(&mut self.shard, command, c.db, args, &mut c.out);
            return;
        }
        let owned = Box::new(OwnedCmd::new(command, args, c.db, c.out.resp3).with_no_touch(c.out.no_touch));
        c.wait = Wait::Single;
        self.send_msg(shard, Msg::Exec { origin, cmd: owned });
    }

    /// Starts a multi-shard transaction: schedules `locks` in every shard listed, then
    /// drives `prog`'s hops. The connection waits until the program is done.
    pub fn start_tx(&mut self, c: &mut Conn, origin: Origin, locks: LockSets, prog: Box<dyn Program>) {
        let n = self.shard.nshards;
        let mut coord = Box::new(Coord {
            prog,
            locks,
            txid: 0,
            hop: 0,
            phase: Phase::Running { pending: 0 },
            results: (0..n).map(|_| None).collect(),
            concluded: false,
        });
        if coord.locks.is_empty() {
            self.next_hop(c, origin, &mut coord);
        } else {
            self.schedule(origin, &mut coord);
        }
        if !coord.is_finished() {
            c.wait = Wait::Tx(coord);
        }
    }

    /// Runs an unlocked program (broadcasts and reads that need no isolation).
    pub fn start_broadcast(&mut self, c: &mut Conn, origin: Origin, prog: Box<dyn Program>) {
        self.start_tx(c, origin, Vec::new(), prog);
    }

    fn schedule(&mut self, origin: Origin, coord: &mut Coord) {
        coord.txid = self.shard.g.new_txid();
        coord.phase = Phase::Scheduling { pending: coord.locks.len(), refused: false, accepted: Vec::new() };
        let txid = coord.txid;
        let locks: LockSets = coord.locks.clone();
        for (shard, keys) in locks {
            self.send_msg(shard, Msg::Schedule { origin, txid, keys });
        }
    }

    fn on_scheduled(&mut self, origin: Origin, shard: usize, ok: bool) {
        let idx = origin.idx as usize;
        if !self.slot_ok(idx, origin.generation) {
            panic!("schedule answer for a freed connection slot");
        }
        let mut c = self.take(idx);
        let Wait::Tx(mut coord) = std::mem::replace(&mut c.wait, Wait::None) else {
            panic!("schedule answer for a connection that coordinates no transaction");
        };
        let mut all_in = false;
        if let Phase::Scheduling { pending, refused, accepted } = &mut coord.phase {
            *pending -= 1;
            if ok {
                accepted.push(shard);
            } else {
                *refused = true;
            }
            all_in = *pending == 0;
        }
        if all_in {
            let Phase::Scheduling { refused, accepted, .. } =
                std::mem::replace(&mut coord.phase, Phase::Running { pending: 0 })
            else {
                unreachable!()
            };
            if refused {
                for s in accepted {
                    self.send_msg(s, Msg::Cancel { txid: coord.txid });
                }
                self.schedule(origin, &mut coord);
            } else {
                self.next_hop(&mut c, origin, &mut coord);
            }
        }
        self.resume(idx, origin, c, coord);
    }

    fn on_done(&mut self, origin: Origin, shard: usize, out: Out) {
        let idx = origin.idx as usize;
        if !self.slot_ok(idx, origin.generation) {
            // Connections stay allocated while they wait, so this is a broken invariant.
            panic!("job result for a freed connection slot");
        }
        let mut c = self.take(idx);
        match std::mem::replace(&mut c.wait, Wait::None) {
            Wait::Single => {
                let bytes = out.downcast::<Vec<u8>>().expect("single-shard jobs answer reply bytes");
                if !c.closing {
                    c.out.buf.extend_from_slice(&bytes);
                }
                let generation = origin.generation;
                if !c.closing {
                    self.process(idx, generation, &mut c);
                }
                self.put(idx, c);
            }
            Wait::Tx(mut coord) => {
                coord.results[shard] = Some(out);
                let mut all_in = false;
                if let Phase::Running { pending } = &mut coord.phase {
                    *pending -= 1;
                    all_in = *pending == 0;
                }
                if all_in {
                    coord.hop += 1;
                    self.next_hop(&mut c, origin, &mut coord);
                }
                self.resume(idx, origin, c, coord);
            }
            Wait::Squash(mut sq) => {
                sq.results[shard] = *out.downcast::<Vec<Vec<u8>>>().expect("batch jobs answer reply lists");
                sq.outstanding -= 1;
                if sq.outstanding > 0 {
                    c.wait = Wait::Squash(sq);
                } else {
                    sq.assemble(&mut c.out.buf);
                    if !c.closing {
                        self.process(idx, origin.generation, &mut c);
                    }
                }
                self.put(idx, c);
            }
            Wait::None => panic!("job result for a connection that waits for nothing"),
        }
    }

    /// Puts the coordinator back, or, if it finished, continues the connection.
    fn resume(&mut self, idx: usize, origin: Origin, mut c: Box<Conn>, coord: Box<Coord>) {
        if coord.is_finished() {
            if !c.closing {
                self.process(idx, origin.generation, &mut c);
            }
        } else {
            c.wait = Wait::Tx(coord);
        }
        self.put(idx, c);
    }

    /// Asks the program for its next hop and sends the jobs.
    fn next_hop(&mut self, c: &mut Conn, origin: Origin, coord: &mut Coord) {
        let hop = coord.hop;
        let plan = {
            // A closing connection still drives its transaction to the end; its
            // replies go nowhere.
            coord.prog.step(hop, &mut coord.results, &mut c.out)
        };
        for r in coord.results.iter_mut() {
            *r = None;
        }
        let locked = !coord.locks.is_empty();
        match plan {
            Plan::Done => {
                if locked && !coord.concluded {
                    let locks = std::mem::take(&mut coord.locks);
                    for (s, _) in &locks {
                        self.send_msg(*s, Msg::Hop { origin, txid: coord.txid, job: None, last: true });
                    }
                    coord.locks = locks;
                }
                coord.concluded = true;
                coord.phase = Phase::Running { pending: 0 };
            }
            Plan::Jobs { jobs, last } => {
                coord.phase = Phase::Running { pending: jobs.len() };
                if locked {
                    let mut involved = vec![false; self.shard.nshards];
                    for (s, job) in jobs {
                        involved[s] = true;
                        self.send_msg(s, Msg::Hop { origin, txid: coord.txid, job: Some(job), last });
                    }
                    if last {
                        let shards: Vec<usize> =
                            coord.locks.iter().map(|(s, _)| *s).filter(|s| !involved[*s]).collect();
                        for s in shards {
                            self.send_msg(s, Msg::Hop { origin, txid: coord.txid, job: None, last: true });
                        }
                        coord.concluded = true;
                    }
                } else {
                    for (s, job) in jobs {
                        self.send_msg(s, Msg::Run { origin, job });
                    }
                }
                if let Phase::Running { pending: 0 } = coord.phase {
                    // No jobs at all: step again at once.
                    coord.hop += 1;
                    self.next_hop(c, origin, coord);
                }
            }
        }
    }
}

impl Coord {
    fn is_finished(&self) -> bool {
        self.concluded && matches!(self.phase, Phase::Running { pending: 0 })
    }
}

/// Asks every thread to stop (SHUTDOWN, SIGTERM, SIGINT). Each sees the flag at the top
/// of its loop, which turns at least once per timer tick (`TICK_MS`), drains (see
/// [`Worker::drain_step`]), closes its sockets and ends; `run` then returns and the
/// process exits 0.
pub fn request_shutdown(g: &Globals) {
    g.shutdown.store(true, Ordering::SeqCst);
}

/// Kills connection `idx` of this shard (CLIENT KILL, possibly from another thread's
/// request): marks it closing and shuts its socket down, so its pending recv/send
/// completes and the loop frees it; frees it at once if nothing is in flight.
/// Returns false if there is no such live connection.
pub fn kill_conn(shard: &mut Shard, idx: usize) -> bool {
    match shard.conns.get_mut(idx).and_then(|s| s.conn.as_mut()) {
        Some(c) if !c.closing => c.closing = true,
        _ => return false,
    }
    reap(shard, idx);
    true
}

/// For a closing connection in slot `idx`: shuts its socket down (once), so pending
/// I/O completes, and once no SQE and no transaction is in flight closes the fd and
/// frees the slot.
fn reap(shard: &mut Shard, idx: usize) {
    let Some(c) = shard.conns.get_mut(idx).and_then(|s| s.conn.as_mut()) else { return };
    if !c.closing {
        return;
    }
    if !c.shutdown_done {
        c.shutdown_done = true;
        // SAFETY: c.fd is this connection's open socket.
        unsafe { libc::shutdown(c.fd, libc::SHUT_RDWR) };
    }
    if !c.recv_inflight && !c.send_inflight && !c.is_waiting() {
        // SAFETY: nothing refers to the fd any more; it is closed exactly once.
        unsafe { libc::close(c.fd) };
        shard.conns.remove(idx);
        shard.nconns -= 1;
        shard.g.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Redis's protected-mode refusal (networking.c, 7.0), sent to a non-loopback client
/// when protected mode is on and no password is set.
pub const PROTECTED_MODE_DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Refuses a just-accepted connection: one best-effort send of `msg` (the socket's
/// buffer is empty, so it fits), then close.
fn reject_connection(fd: i32, msg: &[u8]) {
    // SAFETY: fd is a socket we own and close exactly once here; msg outlives the call.
    unsafe {
        libc::send(fd, msg.as_ptr() as *const libc::c_void, msg.len(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
        libc::close(fd);
    }
}

/// Installs the listening sockets a `CONFIG SET port|bind` opened for this thread
/// (runs as a broadcast job on the thread itself): closes the old listeners at once,
/// so the old address refuses connections before the CONFIG SET is answered, and has
/// the loop arm accepts on the new ones (new connections wait in their backlog until
/// then). Existing connections are untouched. `seq` orders concurrent CONFIG SETs: the
/// sockets of one older than the installed set are closed instead.
pub fn install_listeners(shard: &mut Shard, seq: u64, fds: Vec<i32>) {
    if seq < shard.listen_seq || shard.g.shutdown.load(Ordering::Relaxed) {
        crate::net::close_listeners(&fds);
        return;
    }
    crate::net::close_listeners(&std::mem::replace(&mut shard.listen_fds, fds));
    shard.listen_seq = seq;
    shard.listen_gen = (shard.listen_gen + 1) & 0xff_ffff;
    shard.arm_accepts = true;
}

#[cfg(test)]
mod tests {
    use super::*;

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
