//! A connection's pipeline: parse every complete command in the read buffer with its
//! protocol's parser (`Conn::proto`, see [`crate::proto`]), admit it (`cmd::admit`,
//! once per command) and run it — inline when its keys are local and
//! free, squashed into one batch per other shard when a run of pipelined commands goes
//! elsewhere ([`Squash`]), or through [`Worker::dispatch`] for everything else — until one
//! has to wait.

use super::{Ctx, Msg, Origin, OwnedCmd};
use crate::cmd::{self, Admission, admit};
use crate::conn::{self, Conn, Wait};
use crate::proto::{Protocol, Request};
use crate::runtime::Worker;

/// Pipelined single-shard commands for other shards, sent as one message per shard
/// and answered in one reply message per shard. Replies of commands run locally in
/// between are already in `out`; remote replies are spliced in at their positions.
#[derive(Default)]
pub struct Squash {
    /// (position in `out.buf`, shard, index in that shard's batch), in command order.
    pub slots: Vec<(usize, u16, u32)>,
    /// Commands not yet sent, by shard.
    pub batches: Vec<Vec<OwnedCmd>>,
    /// Replies received, by shard.
    pub results: Vec<Vec<Vec<u8>>>,
    pub outstanding: usize,
}

impl Squash {
    pub fn new(nshards: usize) -> Squash {
        Squash {
            slots: Vec::new(),
            batches: (0..nshards).map(|_| Vec::new()).collect(),
            results: (0..nshards).map(|_| Vec::new()).collect(),
            outstanding: 0,
        }
    }

    /// Adds a command for `shard` whose reply goes at `pos` of the output.
    pub fn add(&mut self, pos: usize, shard: usize, cmd: OwnedCmd) {
        let idx = self.batches[shard].len();
        self.batches[shard].push(cmd);
        self.slots.push((pos, shard as u16, idx as u32));
    }

    /// Splices the remote replies into `out` at their positions.
    pub fn assemble(&mut self, out: &mut Vec<u8>) {
        let extra: usize = self.results.iter().flatten().map(|r| r.len()).sum();
        let first = self.slots.first().map_or(out.len(), |s| s.0);
        let tail = out.split_off(first);
        out.reserve(tail.len() + extra);
        let mut from = 0usize;
        for &(pos, shard, idx) in &self.slots {
            out.extend_from_slice(&tail[from..pos - first]);
            from = pos - first;
            out.extend_from_slice(&self.results[shard as usize][idx as usize]);
        }
        out.extend_from_slice(&tail[from..]);
    }
}

/// Most pipelined commands squashed into one round of per-shard batches.
pub(crate) const MAX_SQUASH: usize = 1024;
/// Bytes the per-thread parse arena starts with.
pub(crate) const ARENA_INITIAL: usize = 64 * 1024;
/// An arena that grew past this for one command is dropped for a fresh one afterwards
/// (see `Worker::process`); below it, `reset` keeps the memory for the next command.
pub(crate) const ARENA_RETAIN_MAX: usize = 1 << 20;

impl Worker {
    /// Parses (with the connection's protocol) and executes every complete command in
    /// the read buffer, in order, until one has to wait for another shard. Then sends
    /// the replies and reads more. Nothing here knows a protocol's wire format.
    pub(crate) fn process(&mut self, idx: usize, generation: u32, c: &mut Conn) {
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
        while !c.is_waiting() && c.is_open() && c.rpos < rbuf.len() {
            if c.pending_output() > conn::OUTPUT_SOFT_LIMIT && c.send_inflight {
                break; // resume when the send completes
            }
            if prefetch_in == 0 {
                prefetch_in = self.prefetch_keys(c.proto, c.db, &rbuf[c.rpos..]);
            }
            prefetch_in -= 1;
            match c.proto.parse(&rbuf[c.rpos..], &arena, limits_authed || c.authed, &mut c.out) {
                Request::Command { args, consumed } => {
                    c.need = 0;
                    if args.is_empty() {
                        c.rpos += consumed;
                    } else {
                        let admission = admit::admit(&mut self.shard, c, &args);
                        match admission {
                            Admission::Single { cmd: command, shard, squash: true } if shard != self.id => {
                                c.rpos += consumed;
                                admit::count_call(&mut self.shard, c, command);
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
                            Admission::Single { cmd: command, squash: true, .. }
                                if admit::may_run_inline(&self.vll, command, &args) =>
                            {
                                // Local and uncontended: runs inline even inside a squashed run.
                                c.rpos += consumed;
                                admit::count_call(&mut self.shard, c, command);
                                cmd::run_shard_handler(&mut self.shard, command, c.db, &args, &mut c.out);
                            }
                            // A barrier, or a local command that must queue: send the run first.
                            _ if squash.is_some() => break,
                            _ => {
                                c.rpos += consumed;
                                self.dispatch(c, origin, &args, admission);
                            }
                        }
                    }
                }
                Request::Incomplete { need } => {
                    // The buffer grows in `post_recv`, as the bytes actually arrive.
                    c.need = need;
                    break;
                }
                Request::Malformed => {
                    c.close_after_reply();
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
        c.close_if_replied();
        self.post_recv(idx, generation, c);
    }

    /// Pipelined commands: prefetches the table slots of the next (up to 16) commands'
    /// keys that live in this shard, so their cache misses overlap (see
    /// [`Db::prefetch`](crate::store::Db::prefetch)). Returns how many commands that
    /// covers; with fewer than two complete commands in `buf` it prefetches nothing and
    /// returns `usize::MAX` (no more tries in this read).
    pub(crate) fn prefetch_keys(&self, proto: Protocol, db: usize, buf: &[u8]) -> usize {
        const BATCH: usize = crate::store::PREFETCH_BATCH;
        let mut keys: [&[u8]; BATCH] = [&[]; BATCH];
        let mut local = 0;
        let (me, nshards) = (self.shard.id, self.shard.nshards);
        let n = proto.peek_keys(buf, BATCH, |k| {
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
}

impl Worker {
    /// The slow path: runs an admitted command (see [`cmd::admit`]) that is not run inline or
    /// squashed by the pipeline — refusals, connection commands, single-shard commands for
    /// another shard or behind a lock, and transactions.
    pub(crate) fn dispatch(&mut self, c: &mut Conn, origin: Origin, args: &[&[u8]], admission: Admission) {
        match admission {
            Admission::Reject(refusal) => refusal.reply(&mut self.shard, c, args),
            Admission::Conn(cmd, f) => {
                cmd::admit::count_call(&mut self.shard, c, cmd);
                let mut ctx = Ctx::new(c, &mut self.shard, origin);
                f(&mut ctx, args);
                if let Some((locks, prog)) = ctx.take_plan() {
                    self.start_tx(c, origin, locks, prog);
                }
            }
            Admission::Single { cmd, shard, .. } => {
                cmd::admit::count_call(&mut self.shard, c, cmd);
                self.exec_single(c, origin, cmd, args, shard);
            }
            Admission::Multi(cmd, multi) => {
                cmd::admit::count_call(&mut self.shard, c, cmd);
                let n = self.shard.nshards;
                match multi {
                    cmd::Multi::None => {
                        // Not reachable for well-formed tables: single-key commands can't span.
                        c.out.error("ERR command keys must be in one shard");
                    }
                    cmd::Multi::Tx(build) => {
                        let (locks, prog) = build(cmd, args, c.db, n);
                        self.start_tx(c, origin, locks, prog);
                    }
                }
            }
        }
    }
}
