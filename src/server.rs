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
//! completion whose generation does not match its slot's is stale and dropped.
//!
//! Cross-thread traffic: one SPSC ring per ordered thread pair. After pushing, the
//! producer wakes the consumer with an `IORING_OP_MSG_RING` SQE on its own ring, but only
//! if the consumer's `notified` flag was clear (Dekker-style handshake, see [`Worker::wake`]).
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
use crate::shard::{Globals, RuntimeConfig, Shard, unix_ms};
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
    Jobs { jobs: Vec<(usize, Job)>, last: bool },
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
/// Depth of each cross-thread ring.
const RING_DEPTH: usize = 1024;

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
    listen_fds: Vec<i32>,
    pub shard: Shard,
    vll: Vll<QueuedJob>,
    producers: Vec<Option<spsc::Producer<Msg>>>,
    consumers: Vec<spsc::Consumer<Msg>>,
    overflow: Vec<VecDeque<Msg>>,
    to_wake: Vec<bool>,
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
}

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
            .build(4096)
            .or_else(|_| IoUring::builder().setup_coop_taskrun().build(4096))?;
        rings.push(ring);
    }
    let fds: Vec<i32> = rings.iter().map(|r| r.as_raw_fd_()).collect();
    let mut listen_fds = Vec::with_capacity(n);
    for _ in 0..n {
        listen_fds.push(crate::net::listeners(&cfg.bind, cfg.port)?);
    }
    let runtime = cmd::config::initial(&cfg);
    let g = Arc::new(Globals::new(cfg, fds));
    // producers[i][j]: from i to j; consumers[j][i].
    let mut producers: Vec<Vec<Option<spsc::Producer<Msg>>>> = (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    let mut consumers: Vec<Vec<spsc::Consumer<Msg>>> = (0..n).map(|_| Vec::new()).collect();
    for (i, row) in producers.iter_mut().enumerate() {
        for (j, slot) in row.iter_mut().enumerate() {
            if i != j {
                let (p, c) = spsc::channel(RING_DEPTH);
                *slot = Some(p);
                consumers[j].push(c);
            }
        }
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let mut handles = Vec::with_capacity(n);
    for (i, ((ring, lfds), (prod, cons))) in rings
        .into_iter()
        .zip(listen_fds)
        .zip(producers.into_iter().zip(consumers))
        .enumerate()
    {
        let g = g.clone();
        let core = if cores.is_empty() { None } else { Some(cores[i % cores.len()]) };
        let runtime = runtime.clone();
        let h = std::thread::Builder::new().name(format!("shard-{i}")).spawn(move || {
            if let Some(c) = core {
                core_affinity::set_for_current(c);
            }
            let shard = Shard::new(i, g, runtime, cmd::table().len());
            let mut w = Worker {
                id: i,
                ring,
                listen_fds: lfds,
                shard,
                vll: Vll::default(),
                overflow: (0..prod.len()).map(|_| VecDeque::new()).collect(),
                to_wake: vec![false; prod.len()],
                producers: prod,
                consumers: cons,
                local: VecDeque::new(),
                backlog: VecDeque::new(),
                arena: bumpalo::Bump::with_capacity(64 * 1024),
                timer: Box::new(types::Timespec::new().nsec((TICK_MS as u32) * 1_000_000)),
                next_gen: 1,
                expire_cursor_db: 0,
                expire_backlog: false,
                last_expire: std::time::Instant::now(),
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
        for i in 0..self.listen_fds.len() {
            let e = opcode::AcceptMulti::new(types::Fd(self.listen_fds[i])).build().user_data(user_data(KIND_ACCEPT, 0, i as u32));
            self.push_sqe(e);
        }
        let e = opcode::Timeout::new(&*self.timer as *const _)
            .count(0)
            .flags(types::TimeoutFlags::MULTISHOT)
            .build()
            .user_data(user_data(KIND_TIMER, 0, 0));
        self.push_sqe(e);

        let mut cqes: Vec<(u64, i32, u32)> = Vec::with_capacity(256);
        loop {
            if self.shard.g.shutdown.load(Ordering::Relaxed) {
                self.close_all();
                return Ok(());
            }
            self.drain_messages();
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
            let busy = !self.local.is_empty() || self.overflow.iter().any(|q| !q.is_empty());
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
        // reallocated) until the SQE's completion is handled.
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
                if res >= 0 {
                    self.on_accept(res);
                } else if res != -libc::EAGAIN && res != -libc::EINTR && res != -libc::ECONNABORTED {
                    log::warn!("accept failed: {}", std::io::Error::from_raw_os_error(-res));
                }
                if !cqueue::more(flags) {
                    let fd = self.listen_fds[idx as usize];
                    let e = opcode::AcceptMulti::new(types::Fd(fd)).build().user_data(user_data(KIND_ACCEPT, 0, idx));
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

    fn on_accept(&mut self, fd: i32) {
        if self.shard.nconns > self.shard.cfg.maxclients / self.shard.nshards.max(1) {
            let msg = b"-ERR max number of clients reached\r\n";
            // SAFETY: fd is a socket we own; msg outlives the call.
            unsafe {
                libc::send(fd, msg.as_ptr() as *const libc::c_void, msg.len(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
                libc::close(fd);
            }
            self.shard.stats.rejected_connections += 1;
            return;
        }
        crate::net::set_nodelay(fd);
        let (peer, local) = crate::net::addrs(fd);
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
        if c.recv_inflight || c.closing || c.close_after_reply || c.is_waiting() {
            return;
        }
        if c.pending_output() > conn::OUTPUT_SOFT_LIMIT {
            return;
        }
        // Make room: move unparsed bytes to the front, grow if full.
        if c.rpos > 0 {
            c.rbuf.copy_within(c.rpos..c.rlen, 0);
            c.rlen -= c.rpos;
            c.rpos = 0;
        }
        if c.rlen == c.rbuf.len() {
            let new_len = (c.rbuf.len() * 2).min(conn::QUERY_BUFFER_LIMIT + 64 * 1024);
            if new_len <= c.rbuf.len() {
                log::warn!("closing client {} that reached max query buffer length", c.id);
                c.closing = true;
                return;
            }
            c.rbuf.resize(new_len, 0);
        }
        let free = &mut c.rbuf[c.rlen..];
        let e = opcode::Recv::new(types::Fd(c.fd), free.as_mut_ptr(), free.len().min(u32::MAX as usize) as u32)
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
        if res > 0 {
            c.rlen += res as usize;
            self.shard.stats.net_input_bytes += res as u64;
            c.last_interaction_ms = unix_ms();
            self.process(idx, generation, &mut c);
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
        let mut rbuf = std::mem::take(&mut c.rbuf);
        let mut arena = std::mem::take(&mut self.arena);
        let mut squash: Option<Box<Squash>> = None;
        // Commands left before the next keyspace prefetch (see `prefetch_keys`).
        let mut prefetch_in = 0usize;
        while !c.is_waiting() && !c.closing && !c.close_after_reply && c.rpos < c.rlen {
            if c.pending_output() > conn::OUTPUT_SOFT_LIMIT && c.send_inflight {
                break; // resume when the send completes
            }
            if prefetch_in == 0 {
                prefetch_in = self.prefetch_keys(c.db, &rbuf[c.rpos..c.rlen]);
            }
            prefetch_in -= 1;
            let limits = crate::resp::Limits { authenticated: limits_authed || c.authed, ..Default::default() };
            let mut need_grow = 0usize;
            match crate::resp::parse(&rbuf[c.rpos..c.rlen], &arena, &limits) {
                crate::resp::Parsed::Complete { args, consumed } => {
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
                                sq.add(c.out.buf.len(), shard, OwnedCmd::new(command, &args, c.db, c.out.resp3).with_no_touch(c.out.no_touch));
                                if sq.slots.len() >= MAX_SQUASH {
                                    break;
                                }
                            }
                            Some((command, shard)) if self.vll.queue_len() == 0 || self.vll.is_free(&cmd::lock_keys(command, &args)) => {
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
                    need_grow = need.max(1);
                }
                crate::resp::Parsed::Error(e) => {
                    e.write_reply(&mut c.out.buf);
                    c.close_after_reply = true;
                    c.rpos = c.rlen;
                }
            }
            if need_grow > 0 {
                if need_grow > rbuf.len() && need_grow <= conn::QUERY_BUFFER_LIMIT + 64 * 1024 {
                    // Grow now so one recv can take the whole argument.
                    if c.rpos > 0 {
                        rbuf.copy_within(c.rpos..c.rlen, 0);
                        c.rlen -= c.rpos;
                        c.rpos = 0;
                    }
                    rbuf.resize(need_grow.next_power_of_two().max(rbuf.len()), 0);
                }
                break;
            }
            arena.reset();
        }
        arena.reset();
        self.arena = arena;
        c.rbuf = rbuf;
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
    /// then a slice of active expiry.
    fn on_tick(&mut self) {
        self.shard.refresh_memory();
        if self.shard.cfg.cache_mode {
            self.shard.cache_evict(CACHE_EVICT_BUDGET);
        }
        self.expire_backlog = self.active_expire();
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
        for &fd in &self.listen_fds {
            // SAFETY: our listening socket, closed once; shutdown() stops it listening
            // even while the pending multishot accept still holds a reference.
            unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
                libc::close(fd)
            };
        }
    }

    // ---------------------------------------------------------------- messages

    /// Sends a message to thread `to` (itself included).
    pub fn send_msg(&mut self, to: usize, m: Msg) {
        if to == self.id {
            self.local.push_back(m);
            return;
        }
        if !self.overflow[to].is_empty() {
            self.overflow[to].push_back(m);
            return;
        }
        let p = self.producers[to].as_mut().expect("producer for a peer thread");
        if let Err(m) = p.push(m) {
            self.overflow[to].push_back(m);
        }
        self.to_wake[to] = true;
    }

    fn flush_overflow(&mut self) {
        for to in 0..self.overflow.len() {
            while let Some(m) = self.overflow[to].pop_front() {
                let p = self.producers[to].as_mut().expect("producer for a peer thread");
                if let Err(m) = p.push(m) {
                    self.overflow[to].push_front(m);
                    break;
                }
                self.to_wake[to] = true;
            }
        }
    }

    /// Wakes the threads we pushed messages to, unless they are already notified.
    fn send_wakes(&mut self) {
        for to in 0..self.to_wake.len() {
            if !std::mem::take(&mut self.to_wake[to]) {
                continue;
            }
            // Pairs with the consumer's store(false) + fence before it drains: either it
            // sees our message, or we see the flag clear and wake it.
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
        }
    }

    fn handle_msg(&mut self, m: Msg) {
        match m {
            Msg::Exec { origin, cmd } => {
                let keys = cmd::lock_keys(cmd.cmd, &cmd.args());
                if self.vll.is_free(&keys) {
                    let out = cmd.run(&mut self.shard);
                    self.send_msg(origin.thread as usize, Msg::Done { origin, shard: self.id as u32, out: Box::new(out) });
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
            let mut keys: Vec<LockKey> = Vec::new();
            for q in &queued {
                for k in cmd::lock_keys(q.cmd, &q.args()) {
                    match keys.iter_mut().find(|x| x.key == k.key) {
                        Some(x) => x.exclusive |= k.exclusive,
                        None => keys.push(k),
                    }
                }
            }
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
    pub fn exec_single(&mut self, c: &mut Conn, origin: Origin, command: &'static Command, args: &[&[u8]], shard: usize) {
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
            let Phase::Scheduling { refused, accepted, .. } = std::mem::replace(&mut coord.phase, Phase::Running { pending: 0 }) else {
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
                        let shards: Vec<usize> = coord.locks.iter().map(|(s, _)| *s).filter(|s| !involved[*s]).collect();
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

    /// Connections of this thread, for CLIENT LIST/KILL (the calling one is taken out).
    pub fn shard_mut(&mut self) -> &mut Shard {
        &mut self.shard
    }
}

impl Coord {
    fn is_finished(&self) -> bool {
        self.concluded && matches!(self.phase, Phase::Running { pending: 0 })
    }
}

/// Runtime config for a new thread (re-exported for tests).
pub fn runtime_config(cfg: &crate::config::Config) -> RuntimeConfig {
    cmd::config::initial(cfg)
}

/// Asks every thread to stop (SHUTDOWN). Each sees the flag at the top of its loop,
/// which turns at least once per timer tick (`TICK_MS`), closes its sockets and ends;
/// `run` then returns and the process exits 0.
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
    }
}
