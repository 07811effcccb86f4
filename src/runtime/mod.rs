//! The per-thread runtime: the io_uring completion loop and everything it owns that is
//! not about commands — the ring and its SQE backlog, `user_data` kinds, the SPSC mesh
//! with MSG_RING wake-ups ([`mesh`]), listeners and connection I/O ([`io`]), and the
//! housekeeping tick ([`tick`]). Commands and transactions live in [`crate::tx`] and
//! [`crate::cmd`]; the runtime hands them parsed sessions and messages.
//!
//! ```text
//!   thread i:  loop {
//!                drain inbound SPSC rings + local queue ──▶ tx::handle_msg (shard side
//!                                                          or coordinator side)
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
//! Goals: no locks, no async runtime, one send per batch of pipelined replies.
//! Non-goals (yet): provided-buffer multishot recv, zero-copy send.

pub mod io;
pub mod mesh;
pub mod tick;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use crate::cmd;
use crate::proto::{Listener, Protocol};
use crate::shard::{Globals, Shard};
use crate::spsc;
use crate::tx::Msg;
use crate::tx::pipeline::ARENA_INITIAL;
use crate::tx::shard_side::QueuedJob;
use crate::vll::Vll;
use mesh::{Mesh, Peer};
use tick::EXPIRE_BACKLOG_PERIOD;

pub(crate) const KIND_ACCEPT: u64 = 1;
pub(crate) const KIND_RECV: u64 = 2;
pub(crate) const KIND_SEND: u64 = 3;
pub(crate) const KIND_TIMER: u64 = 4;
pub(crate) const KIND_WAKE: u64 = 5;
pub(crate) const KIND_IGNORE: u64 = 6;

pub(crate) fn user_data(kind: u64, generation: u32, idx: u32) -> u64 {
    kind << 56 | ((generation as u64) & 0xff_ffff) << 32 | idx as u64
}

pub(crate) fn decode(ud: u64) -> (u64, u32, u32) {
    (ud >> 56, ((ud >> 32) & 0xff_ffff) as u32, ud as u32)
}

/// Timer period for active expiry and housekeeping.
pub(crate) const TICK_MS: i64 = 10;
/// Submission queue entries of each thread's io_uring (the completion queue has twice
/// as many): 4096 up to 8 threads, fewer with more threads (each then has fewer
/// connections), never under 256. SQEs that do not fit wait in the backlog FIFO. At
/// 4096 entries a ring costs ~400 KB of kernel memory mapped into the process: 400 MB
/// for 1024 threads; at 256, 25 KB.
pub(crate) fn uring_entries(nthreads: usize) -> u32 {
    (32 * 1024 / nthreads.max(1)).clamp(256, 4096).next_power_of_two() as u32
}

pub struct Worker {
    pub id: usize,
    pub(crate) ring: IoUring,
    pub shard: Shard,
    /// This thread's connections (the shard holds only the keyspace).
    pub(crate) conns: crate::conn::Conns,
    pub(crate) vll: Vll<QueuedJob>,
    pub(crate) mesh: Arc<Mesh>,
    /// By thread id: the ring to that peer, once this thread has sent it a message
    /// (a null pointer per idle peer).
    pub(crate) peers: Vec<Option<Box<Peer>>>,
    /// Ids of the `Some` entries of `peers`, for the per-iteration loops.
    pub(crate) talking: Vec<usize>,
    /// Rings from peers that have sent this thread a message.
    pub(crate) consumers: Vec<spsc::Consumer<Msg>>,
    pub(crate) local: VecDeque<Msg>,
    pub(crate) backlog: VecDeque<squeue::Entry>,
    pub(crate) arena: bumpalo::Bump,
    pub(crate) timer: Box<types::Timespec>,
    pub(crate) next_gen: u32,
    pub(crate) expire_cursor_db: usize,
    /// Active expiry ran out of time with keys still due: run more slices between
    /// rounds of completions (see `Worker::active_expire`).
    pub(crate) expire_backlog: bool,
    /// When the last expiry slice started.
    pub(crate) last_expire: std::time::Instant,
    /// Set when this thread saw the shutdown flag: the time by which it stops waiting
    /// for in-flight replies (see [`Worker::drain_step`]).
    pub(crate) drain_deadline: Option<std::time::Instant>,
    /// This thread has counted itself in `Globals::threads_drained`.
    pub(crate) drained: bool,
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
            shard.listeners = resp_listeners(lfds);
            let mut w = Worker {
                id: i,
                ring,
                shard,
                conns: Default::default(),
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
    pub(crate) fn run(&mut self) -> std::io::Result<()> {
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
                || self.talking.iter().any(|&t| self.peers[t].as_ref().is_some_and(|p| p.has_overflow()));
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
    pub(crate) fn push_sqe(&mut self, e: squeue::Entry) {
        // SAFETY: every SQE built in this module points either at nothing, at the
        // boxed timer, or at a buffer of a connection that stays allocated (and is not
        // reallocated) until the SQE's completion is handled — for a recv, the read
        // buffer's spare capacity, which nothing resizes or compacts while
        // its recv is in flight (see `conn`'s module docs).
        if unsafe { self.ring.submission().push(&e) }.is_ok() {
            return;
        }
        let _ = self.ring.submit();
        // SAFETY: as above.
        if unsafe { self.ring.submission().push(&e) }.is_err() {
            self.backlog.push_back(e);
        }
    }

    pub(crate) fn on_completion(&mut self, ud: u64, res: i32, flags: u32) {
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
                    self.on_accept(res, self.shard.listeners[idx as usize].proto);
                } else if res != -libc::EAGAIN && res != -libc::EINTR && res != -libc::ECONNABORTED {
                    log::warn!("accept failed: {}", std::io::Error::from_raw_os_error(-res));
                }
                if !cqueue::more(flags) {
                    let fd = self.shard.listeners[idx as usize].fd;
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
    pub(crate) fn arm_accepts(&mut self) {
        self.shard.arm_accepts = false;
        for i in 0..self.shard.listeners.len() {
            let fd = self.shard.listeners[i].fd;
            let e = opcode::AcceptMulti::new(types::Fd(fd)).build().user_data(user_data(
                KIND_ACCEPT,
                self.shard.listen_gen,
                i as u32,
            ));
            self.push_sqe(e);
        }
    }
}

/// Asks every thread to stop (SHUTDOWN, SIGTERM, SIGINT). Each sees the flag at the top
/// of its loop, which turns at least once per timer tick (`TICK_MS`), drains (see
/// [`Worker::drain_step`]), closes its sockets and ends; `run` then returns and the
/// process exits 0.
pub fn request_shutdown(g: &Globals) {
    g.shutdown.store(true, Ordering::SeqCst);
}

/// RESP listeners for the sockets `fds` (from [`crate::net::listeners`]).
fn resp_listeners(fds: Vec<i32>) -> Vec<Listener> {
    fds.into_iter().map(|fd| Listener { fd, proto: Protocol::Resp }).collect()
}

/// Closes listening sockets (their pending accepts complete with an error or are
/// dropped by generation).
pub(crate) fn close_listeners(listeners: Vec<Listener>) {
    let fds: Vec<i32> = listeners.iter().map(|l| l.fd).collect();
    crate::net::close_listeners(&fds);
}

/// Installs the listening sockets a `CONFIG SET port|bind` opened for this thread
/// (runs as a broadcast job on the thread itself): closes the old listeners at once,
/// so the old address refuses connections before the CONFIG SET is answered, and has
/// the loop arm accepts on the new ones (new connections wait in their backlog until
/// then). Existing connections are untouched. `seq` orders concurrent CONFIG SETs: the
/// sockets of one older than the installed set are closed instead.
///
/// `port` and `bind` are RESP's, and today every listener is RESP: the new set
/// replaces all of them. (A second protocol's listeners would have to survive this:
/// with their own generation, since the accepts of the ones kept stay armed.)
pub fn install_listeners(shard: &mut Shard, seq: u64, fds: Vec<i32>) {
    if seq < shard.listen_seq || shard.g.shutdown.load(Ordering::Relaxed) {
        crate::net::close_listeners(&fds);
        return;
    }
    close_listeners(std::mem::replace(&mut shard.listeners, resp_listeners(fds)));
    shard.listen_seq = seq;
    shard.listen_gen = (shard.listen_gen + 1) & 0xff_ffff;
    shard.arm_accepts = true;
}
