//! Periodic work on each thread (every `TICK_MS`): memory accounting, cache-mode
//! eviction, client buffer housekeeping, active expiry; and the graceful-shutdown drain.

use std::sync::atomic::Ordering;

use io_uring::opcode;

use super::{KIND_IGNORE, KIND_RECV, TICK_MS, Worker, user_data};
use crate::conn::Recv;
use crate::shard::unix_ms;

/// Timer ticks per second (the tick is `TICK_MS`).
pub(crate) const TICKS_PER_SECOND: usize = (1000 / TICK_MS) as usize;
/// Fewest connection slots one tick's client housekeeping visits (Redis's
/// `CLIENTS_CRON_MIN_ITERATIONS`); otherwise a 100th of the slots, so that every
/// connection is visited about once a second.
pub(crate) const CLIENTS_CRON_MIN_VISITS: usize = 5;
/// Most time one slice of active expiry takes (see `Worker::active_expire`).
pub(crate) const ACTIVE_EXPIRE_SLICE: std::time::Duration = std::time::Duration::from_micros(200);
/// Emptied table segments (~28 KB each) one expiry slice frees (a free of one took
/// ~30 µs: mimalloc gives such blocks back to the system).
pub(crate) const RETIRED_PER_SLICE: usize = 4;
/// How often expiry slices run while keys are still due.
pub(crate) const EXPIRE_BACKLOG_PERIOD: std::time::Duration = std::time::Duration::from_micros(1000);
/// Most time one tick spends on cache-mode background eviction.
pub(crate) const CACHE_EVICT_BUDGET: std::time::Duration = std::time::Duration::from_micros(500);
/// Keys with a deadline one active-expiry step looks at.
pub(crate) const ACTIVE_EXPIRE_SAMPLE: usize = 64;
/// Longest a graceful shutdown (SIGTERM, SIGINT, SHUTDOWN) waits for replies already
/// produced to reach clients that do not read them.
pub(crate) const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

impl Worker {
    /// Periodic work: the memory sum (maxmemory estimate, peak), cache-mode eviction,
    /// client buffer housekeeping, then a slice of active expiry.
    pub(crate) fn on_tick(&mut self) {
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
    pub(crate) fn clients_cron(&mut self) {
        let now_ms = unix_ms();
        let now_secs = now_ms / 1000;
        self.conns.peaks.tick(now_secs);
        // Every slab key is below the slab's capacity, so walking 0..capacity round-robin
        // visits every connection.
        let slots = self.conns.slab.capacity();
        if slots == 0 {
            return;
        }
        let visits = (slots / TICKS_PER_SECOND).max(CLIENTS_CRON_MIN_VISITS).min(slots);
        for _ in 0..visits {
            let idx = self.conns.cron_cursor % slots;
            self.conns.cron_cursor = idx + 1;
            let Some(slot) = self.conns.slab.get_mut(idx) else { continue };
            let generation = slot.generation;
            let Some(c) = slot.conn.as_mut() else { continue };
            if c.is_closing() {
                continue;
            }
            self.conns.peaks.record(now_secs, c.rbuf.capacity(), c.output_buf_bytes());
            c.shrink_output_bufs();
            let Some(target) = c.read_buf_shrink_target(now_ms) else { continue };
            if c.recv == Recv::Idle {
                c.shrink_read_buf(target);
            } else if c.recv == Recv::InFlight {
                // The kernel owns the buffer's spare room until the recv completes:
                // cancel it; the -ECANCELED completion shrinks and reads again.
                c.shrink_rbuf_to = target;
                c.recv = Recv::Cancelling;
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
    pub(crate) fn active_expire(&mut self) -> bool {
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
    pub(crate) fn drain_step(&mut self) -> bool {
        let now = std::time::Instant::now();
        if self.drain_deadline.is_none() {
            self.drain_deadline = Some(now + SHUTDOWN_DRAIN);
            super::close_listeners(std::mem::take(&mut self.shard.listeners));
            self.shard.listen_gen = (self.shard.listen_gen + 1) & 0xff_ffff;
        }
        if !self.drained {
            let quiet = self.conns.slab.iter().all(|(_, s)| {
                s.conn.as_ref().is_none_or(|c| {
                    !c.is_waiting()
                        && (c.is_closing() || (!c.send_inflight && c.sending.is_empty() && c.out.buf.is_empty()))
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

    pub(crate) fn close_all(&mut self) {
        for (_, s) in self.conns.slab.iter_mut() {
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
        super::close_listeners(std::mem::take(&mut self.shard.listeners));
    }
}
