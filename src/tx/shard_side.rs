//! The shard side of transactions: running single-shard commands and batches when
//! their keys are free, queueing them (and the hops of multi-shard transactions) in the
//! VLL queue otherwise, and answering the coordinator.

use super::{Job, Msg, Origin, Out, OwnedCmd};
use crate::cmd;
use crate::runtime::Worker;
use crate::shard::Shard;
use crate::vll::{LockKey, TxId};

/// A queued hop in the VLL queue.
pub struct QueuedJob {
    job: Job,
    origin: Origin,
    last: bool,
}

impl Worker {
    pub(crate) fn handle_msg(&mut self, m: Msg) {
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
    pub(crate) fn pump(&mut self) {
        while let Some((id, q)) = self.vll.next_runnable() {
            let out = (q.job)(&mut self.shard);
            if q.last {
                self.vll.remove(id);
            }
            self.send_msg(q.origin.thread as usize, Msg::Done { origin: q.origin, shard: self.id as u32, out });
        }
    }
}
