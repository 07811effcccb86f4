//! The shard side of transactions: running single-shard commands and batches when
//! their keys are free, queueing them (and the hops of multi-shard transactions) in the
//! VLL queue otherwise, and answering the coordinator.

use super::{Job, Msg, Origin, OwnedCmd};
use crate::cmd;
use crate::conn::Conns;
use crate::runtime::Worker;
use crate::shard::Shard;
use crate::vll::{LockKey, TxId};

/// What waits in the VLL queue: a command, the rest of a batch or a hop. Each kind
/// has its own answer, so no result is ever type-erased.
pub enum Work {
    /// A single-shard command; answered with `Msg::Reply`.
    Exec(Box<OwnedCmd>),
    /// The rest of a batch after its first contended command, with the replies of the
    /// commands that ran before it; answered with `Msg::Replies`.
    Batch(Vec<OwnedCmd>, Vec<Vec<u8>>),
    /// A hop of a multi-shard transaction; answered with `Msg::Done`.
    Hop(Job),
}

impl Work {
    /// Runs the work on `shard` and returns the answer for `origin`.
    fn run(self, shard: &mut Shard, conns: &mut Conns, origin: Origin) -> Msg {
        match self {
            Work::Exec(cmd) => Msg::Reply { origin, bytes: cmd.run(shard) },
            Work::Batch(cmds, mut replies) => {
                for q in cmds {
                    replies.push(q.run(shard));
                }
                Msg::Replies { origin, shard: shard.id as u32, replies }
            }
            Work::Hop(job) => {
                job.run(shard, conns);
                Msg::Done { origin, shard: shard.id as u32 }
            }
        }
    }
}

/// A queued entry of the VLL queue.
pub struct QueuedJob {
    work: Work,
    origin: Origin,
    last: bool,
}

impl Worker {
    pub(crate) fn handle_msg(&mut self, m: Msg) {
        match m {
            Msg::Exec { origin, cmd } => {
                let keys = cmd::lock_keys(cmd.cmd, &cmd.args());
                if self.vll.is_free(&keys) {
                    let bytes = cmd.run(&mut self.shard);
                    self.send_msg(origin.thread as usize, Msg::Reply { origin, bytes });
                } else {
                    self.vll.schedule_local(keys, QueuedJob { work: Work::Exec(cmd), origin, last: true });
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
                        if self.vll.set_pending(id, QueuedJob { work: Work::Hop(job), origin, last }).is_err() {
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
                job.run(&mut self.shard, &mut self.conns);
                self.send_msg(origin.thread as usize, Msg::Done { origin, shard: self.id as u32 });
            }
            Msg::Done { origin, shard } => self.on_done(origin, shard as usize),
            Msg::Reply { origin, bytes } => self.on_reply(origin, bytes),
            Msg::Replies { origin, shard, replies } => self.on_replies(origin, shard as usize, replies),
            Msg::Scheduled { origin, shard, ok } => self.on_scheduled(origin, shard as usize, ok),
        }
    }

    /// Runs a squashed batch in order. Commands run at once while their keys are free;
    /// from the first contended one on, the rest wait in the queue as one transaction
    /// holding all their keys, so the batch keeps its order.
    pub(crate) fn exec_batch(&mut self, origin: Origin, cmds: Vec<OwnedCmd>) {
        let mut replies: Vec<Vec<u8>> = Vec::with_capacity(cmds.len());
        let mut rest = cmds.into_iter();
        while let Some(cmd) = rest.next() {
            if cmd::admit::may_run_inline(&self.vll, cmd.cmd, &cmd.args()) {
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
            self.vll.schedule_local(keys, QueuedJob { work: Work::Batch(queued, replies), origin, last: true });
            self.pump();
            return;
        }
        self.send_msg(origin.thread as usize, Msg::Replies { origin, shard: self.id as u32, replies });
    }

    /// Runs every queued entry that has become runnable.
    pub(crate) fn pump(&mut self) {
        while let Some((id, q)) = self.vll.next_runnable() {
            let answer = q.work.run(&mut self.shard, &mut self.conns, q.origin);
            if q.last {
                self.vll.remove(id);
            }
            self.send_msg(q.origin.thread as usize, answer);
        }
    }
}
