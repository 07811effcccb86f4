//! The coordinator side of multi-shard transactions: schedule the lock sets in every
//! shard (VLL), retry on refusal, drive a [`Program`]'s hops, conclude.

use super::{LockSets, Msg, Origin, Out, OwnedCmd, Plan, Program};
use crate::cmd::{self, Command};
use crate::conn::{Conn, Wait};
use crate::runtime::Worker;

pub(crate) enum Phase {
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

impl Worker {
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
        if shard == self.id && cmd::admit::may_run_inline(&self.vll, command, args) {
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

    pub(crate) fn schedule(&mut self, origin: Origin, coord: &mut Coord) {
        coord.txid = self.shard.g.new_txid();
        coord.phase = Phase::Scheduling { pending: coord.locks.len(), refused: false, accepted: Vec::new() };
        let txid = coord.txid;
        let locks: LockSets = coord.locks.clone();
        for (shard, keys) in locks {
            self.send_msg(shard, Msg::Schedule { origin, txid, keys });
        }
    }

    pub(crate) fn on_scheduled(&mut self, origin: Origin, shard: usize, ok: bool) {
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

    pub(crate) fn on_done(&mut self, origin: Origin, shard: usize, out: Out) {
        let idx = origin.idx as usize;
        if !self.slot_ok(idx, origin.generation) {
            // Connections stay allocated while they wait, so this is a broken invariant.
            panic!("job result for a freed connection slot");
        }
        let mut c = self.take(idx);
        match std::mem::replace(&mut c.wait, Wait::None) {
            Wait::Single => {
                let bytes = out.downcast::<Vec<u8>>().expect("single-shard jobs answer reply bytes");
                if !c.is_closing() {
                    c.out.buf.extend_from_slice(&bytes);
                }
                let generation = origin.generation;
                if !c.is_closing() {
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
                    if !c.is_closing() {
                        self.process(idx, origin.generation, &mut c);
                    }
                }
                self.put(idx, c);
            }
            Wait::None => panic!("job result for a connection that waits for nothing"),
        }
    }

    /// Puts the coordinator back, or, if it finished, continues the connection.
    pub(crate) fn resume(&mut self, idx: usize, origin: Origin, mut c: Box<Conn>, coord: Box<Coord>) {
        if coord.is_finished() {
            if !c.is_closing() {
                self.process(idx, origin.generation, &mut c);
            }
        } else {
            c.wait = Wait::Tx(coord);
        }
        self.put(idx, c);
    }

    /// Asks the program for its next hop and sends the jobs.
    pub(crate) fn next_hop(&mut self, c: &mut Conn, origin: Origin, coord: &mut Coord) {
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
    pub(crate) fn is_finished(&self) -> bool {
        self.concluded && matches!(self.phase, Phase::Running { pending: 0 })
    }
}
