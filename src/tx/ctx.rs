//! [`Ctx`]: what a connection-side command handler (`cmd::ConnFn`) gets — the
//! connection's session state and reply buffer, this thread's shard, and the ways to
//! run work on other shards — instead of the whole runtime.
//!
//! ```text
//!   Worker::dispatch ──▶ Ctx { conn, shard, origin } ──▶ handler(ctx, args)
//!                                                      │ ctx.broadcast / on_shard /
//!                                                      │ start_tx / run: records the plan
//!                     Worker::start_tx(plan) ◀─────────┘ after the handler returns
//! ```
//!
//! The handler never sees the `Worker` (ring, VLL queue, mesh, other connections): a
//! program it starts is recorded in the context and started by the dispatcher once
//! the handler has returned. A handler starts at most one program, as its last act;
//! the connection then waits for the program's reply.

use super::Origin;
use super::program::{self, LockSets, Program, TxPlan};
use crate::conn::{Conn, Conns};
use crate::reply::ReplyBuf;
use crate::shard::Shard;

/// The context of a connection-side command.
pub struct Ctx<'a> {
    /// The calling connection: its session (`db`, `authed`, `name`, the protocol in
    /// `out.resp3`, CLIENT NO-TOUCH in `out.no_touch`) and its reply buffer `out`.
    pub conn: &'a mut Conn,
    /// This thread's shard (its dbs, config, stats and globals).
    pub shard: &'a mut Shard,
    origin: Origin,
    /// The program to start after the handler returns, with its lock sets.
    next: Option<TxPlan>,
}

impl<'a> Ctx<'a> {
    pub fn new(conn: &'a mut Conn, shard: &'a mut Shard, origin: Origin) -> Ctx<'a> {
        Ctx { conn, shard, origin, next: None }
    }

    /// Who the command's replies go to (its thread and connection slot).
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The program the handler started, if any (for the dispatcher).
    pub fn take_plan(&mut self) -> Option<TxPlan> {
        self.next.take()
    }

    /// Starts a transaction: `locks` are scheduled in their shards (VLL), then the
    /// program's hops run under them. The reply is the program's.
    pub fn start_tx(&mut self, locks: LockSets, prog: Box<dyn Program>) {
        debug_assert!(self.next.is_none(), "a handler starts at most one program");
        self.next = Some((locks, prog));
    }

    /// Runs a program without locks (broadcasts and reads that need no isolation).
    pub fn run(&mut self, prog: Box<dyn Program>) {
        self.start_tx(Vec::new(), prog);
    }

    /// Runs `make(shard)` on every shard (no locks), then `done` with the results in
    /// shard order. For DBSIZE, KEYS, INFO, FLUSHALL, CONFIG SET...
    pub fn broadcast<R, M, F, D>(&mut self, make: M, done: D)
    where
        R: Send + 'static,
        M: FnMut(usize) -> F + Send + 'static,
        F: FnOnce(&mut Shard) -> R + Send + 'static,
        D: FnOnce(Vec<R>, &mut ReplyBuf) + Send + 'static,
    {
        let shards = (0..self.shard.nshards).collect();
        self.run(program::gather(shards, make, done));
    }

    /// [`Ctx::broadcast`] with thread-level jobs: `make(shard)` also gets that thread's
    /// connections (CLIENT LIST/KILL, INFO clients).
    pub fn broadcast_threads<R, M, F, D>(&mut self, make: M, done: D)
    where
        R: Send + 'static,
        M: FnMut(usize) -> F + Send + 'static,
        F: FnOnce(&mut Shard, &mut Conns) -> R + Send + 'static,
        D: FnOnce(Vec<R>, &mut ReplyBuf) + Send + 'static,
    {
        let shards = (0..self.shard.nshards).collect();
        self.run(program::gather_threads(shards, make, done));
    }

    /// Runs `f` on one shard (no locks), then `done` with its result.
    pub fn on_shard<R, F, D>(&mut self, shard: usize, f: F, done: D)
    where
        R: Send + 'static,
        F: FnOnce(&mut Shard) -> R + Send + 'static,
        D: FnOnce(R, &mut ReplyBuf) + Send + 'static,
    {
        let mut f = Some(f);
        let make = move |_s: usize| f.take().expect("one shard, one job");
        let done = move |mut rs: Vec<R>, out: &mut ReplyBuf| done(rs.pop().expect("one result"), out);
        self.run(program::gather(vec![shard], make, done));
    }
}
