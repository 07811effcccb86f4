//! The coordinator side of multi-shard transactions: schedule the lock sets in every
//! shard (VLL), retry on refusal, drive a [`Program`]'s hops, conclude.

use super::{LockSets, Msg, Origin, OwnedCmd, Plan, Program};
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
        let mut coord =
            Box::new(Coord { prog, locks, txid: 0, hop: 0, phase: Phase::Running { pending: 0 }, concluded: false });
        if coord.locks.is_empty() {
            self.next_hop(c, origin, &mut coord);
        } else {
            self.schedule(origin, &mut coord);
        }
        if !coord.is_finished() {
            c.wait = Wait::Tx(coord);
        }
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

    /// Takes the connection an answer from another shard is for. It cannot have been
    /// freed: a connection stays allocated while it waits (`reap`), so a missing slot is
    /// a broken invariant.
    fn take_waiting(&mut self, origin: Origin, what: &str) -> (usize, Box<Conn>) {
        let idx = origin.idx as usize;
        if !self.slot_ok(idx, origin.generation) {
            panic!("{what} for a freed connection slot");
        }
        (idx, self.take(idx))
    }

    pub(crate) fn on_scheduled(&mut self, origin: Origin, shard: usize, ok: bool) {
        let (idx, mut c) = self.take_waiting(origin, "schedule answer");
        let Wait::Tx(mut coord) = std::mem::replace(&mut c.wait, Wait::None) else {
            panic!("schedule answer for a connection that coordinates no transaction");
        };
        let mut all_in = false;
        debug_assert!(matches!(coord.phase, Phase::Scheduling { .. }), "schedule answer while running");
        if let Phase::Scheduling { pending, refused, accepted } = &mut coord.phase {
            debug_assert!(*pending > 0, "more schedule answers than shards asked");
            debug_assert!(!accepted.contains(&shard), "two schedule answers from shard {shard}");
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

    /// A hop's job ran on `shard`: once every job of the hop has, step the program.
    pub(crate) fn on_done(&mut self, origin: Origin, shard: usize) {
        let (idx, mut c) = self.take_waiting(origin, "job result");
        let Wait::Tx(mut coord) = std::mem::replace(&mut c.wait, Wait::None) else {
            panic!("hop answer from shard {shard} for a connection that coordinates no transaction");
        };
        let mut all_in = false;
        debug_assert!(matches!(coord.phase, Phase::Running { .. }), "hop answer while scheduling");
        if let Phase::Running { pending } = &mut coord.phase {
            debug_assert!(*pending > 0, "more hop answers than jobs sent");
            *pending -= 1;
            all_in = *pending == 0;
        }
        if all_in {
            coord.hop += 1;
            self.next_hop(&mut c, origin, &mut coord);
        }
        self.resume(idx, origin, c, coord);
    }

    /// The reply of a single-shard command run elsewhere: append it and go on.
    pub(crate) fn on_reply(&mut self, origin: Origin, bytes: Vec<u8>) {
        let (idx, mut c) = self.take_waiting(origin, "command reply");
        let Wait::Single = std::mem::replace(&mut c.wait, Wait::None) else {
            panic!("command reply for a connection that waits for none");
        };
        if !c.is_closing() {
            c.out.buf.extend_from_slice(&bytes);
            self.process(idx, origin.generation, &mut c);
        }
        self.put(idx, c);
    }

    /// The replies of a squashed batch from `shard`: once every batch is in, splice
    /// them into the output and go on.
    pub(crate) fn on_replies(&mut self, origin: Origin, shard: usize, replies: Vec<Vec<u8>>) {
        let (idx, mut c) = self.take_waiting(origin, "batch replies");
        let Wait::Squash(mut sq) = std::mem::replace(&mut c.wait, Wait::None) else {
            panic!("batch replies for a connection that squashed nothing");
        };
        debug_assert!(sq.outstanding > 0, "more batch answers than batches sent");
        debug_assert!(sq.results[shard].is_empty(), "two batch answers from shard {shard}");
        sq.results[shard] = replies;
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
        debug_assert!(matches!(coord.phase, Phase::Running { pending: 0 }), "next hop with answers outstanding");
        // A closing connection still drives its transaction to the end; its replies go
        // nowhere.
        let plan = coord.prog.step(hop, &mut c.out);
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
                debug_assert!(!coord.concluded, "jobs after the transaction concluded");
                debug_assert!(jobs.len() <= self.shard.nshards, "more jobs than shards in one hop");
                coord.phase = Phase::Running { pending: jobs.len() };
                if locked {
                    let mut involved = vec![false; self.shard.nshards];
                    for (s, job) in jobs {
                        debug_assert!(!involved[s], "two jobs for shard {s} in one hop");
                        debug_assert!(
                            coord.locks.iter().any(|(l, _)| *l == s),
                            "a job for shard {s}, which holds no locks"
                        );
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
