//! Programs: what the coordinator ([`super::coord`]) drives over several shards, and
//! the typed pieces they are built from.
//!
//! ```text
//!   Program::step(hop) ──▶ Plan::Jobs [(shard, Job)] ──▶ shards run the jobs; each job
//!        ▲                                               writes its typed result into
//!        │                                               a Slots<R> the program owns
//!        └──── Msg::Done (origin, shard): no payload ◀───┘
//! ```
//!
//! A job is `FnOnce(&mut Shard)`; its result goes into a slot of a [`Slots`] that the
//! program created for the hop, so results stay typed end to end: no `dyn Any`, no
//! reply bytes parsed back. The ring's release/acquire already orders the job's write
//! before the coordinator's read; the slot's mutex is never contended.
//!
//! Building blocks:
//! - [`SplitOp`] + [`split_plan`] / [`split_local`]: a multi-key command written once as
//!   a per-shard operation and a typed reduce. One shard: [`split_local`] runs `run`
//!   and `reduce` inline, no message. Several: [`split_plan`] runs `run` on every shard
//!   under VLL locks (one hop) and `reduce` on the coordinator.
//! - [`gather`]: one unlocked job per listed shard, then a typed `done` (DBSIZE, KEYS,
//!   INFO, FLUSHALL, CONFIG SET, CLIENT LIST...).
//! - [`Seq`]: programs composed under one transaction's locks (for EXEC and EVAL).
//! - [`error`]: a program that only replies with an error.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::cmd::{self, Command};
use crate::conn::Conns;
use crate::reply::ReplyBuf;
use crate::shard::{Shard, ShardCtx, shard_of, unix_ms};
use crate::vll::LockKey;

use super::OwnedCmd;

/// Work for a shard, run on the shard's own thread. It returns nothing: a job that
/// has a result writes it into its program's [`Slots`].
pub enum Job {
    /// Needs the shard's keyspace only (nearly every job).
    Shard(ShardJob),
    /// A thread-level job: needs the thread's connections too (CLIENT LIST/KILL, INFO
    /// clients). The only way a command reaches connections other than its own.
    Thread(ThreadJob),
}

/// The closure of a [`Job::Shard`].
pub type ShardJob = Box<dyn FnOnce(&mut Shard) + Send>;
/// The closure of a [`Job::Thread`].
pub type ThreadJob = Box<dyn FnOnce(&mut Shard, &mut Conns) + Send>;

impl Job {
    /// Runs the job on its thread's shard (and connections).
    pub fn run(self, shard: &mut Shard, conns: &mut Conns) {
        match self {
            Job::Shard(f) => f(shard),
            Job::Thread(f) => f(shard, conns),
        }
    }
}

/// Lock sets of a multi-shard transaction, by shard.
pub type LockSets = Vec<(usize, Vec<LockKey>)>;
/// What a multi-shard command builder returns: its locks and its program.
pub type TxPlan = (LockSets, Box<dyn Program>);

/// A multi-step program a coordinator drives over several shards.
pub trait Program: Send {
    /// Returns the jobs of hop `hop` (the previous hop's jobs have all run and written
    /// their slots), or [`Plan::Done`] once it has written its reply into `out`.
    fn step(&mut self, hop: u32, out: &mut ReplyBuf) -> Plan;
}

pub enum Plan {
    /// Run these jobs (at most one per shard). `last`: the transaction concludes after them.
    Jobs {
        jobs: Vec<(usize, Job)>,
        last: bool,
    },
    Done,
}

/// Typed result slots of one hop's jobs, owned by the program (indexed as the program
/// likes: by shard, by part...). Cloning the handle into each job is one `Arc` count.
pub struct Slots<R>(Arc<[Mutex<Option<R>>]>);

impl<R: Send + 'static> Slots<R> {
    pub fn new(n: usize) -> Slots<R> {
        Slots((0..n).map(|_| Mutex::new(None)).collect())
    }

    /// A job that runs `f` on its shard and stores the result in slot `i`.
    pub fn job<F>(&self, i: usize, f: F) -> Job
    where
        F: FnOnce(&mut Shard) -> R + Send + 'static,
    {
        let slots = self.0.clone();
        Job::Shard(Box::new(move |s: &mut Shard| {
            let r = f(s);
            *lock(&slots[i]) = Some(r);
        }))
    }

    /// A thread-level job ([`Job::Thread`]) that runs `f` and stores the result in slot `i`.
    pub fn thread_job<F>(&self, i: usize, f: F) -> Job
    where
        F: FnOnce(&mut Shard, &mut Conns) -> R + Send + 'static,
    {
        let slots = self.0.clone();
        Job::Thread(Box::new(move |s: &mut Shard, c: &mut Conns| {
            let r = f(s, c);
            *lock(&slots[i]) = Some(r);
        }))
    }

    /// Takes slot `i`'s result. Panics if its job has not run: the coordinator steps a
    /// program only after every job of the hop answered, so that is a broken invariant.
    pub fn take(&self, i: usize) -> R {
        lock(&self.0[i]).take().expect("a hop's jobs all ran before the next step")
    }
}

/// The slot's mutex is only ever taken by one side at a time; a job that panicked
/// took its thread down, so poisoning carries no meaning here.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ------------------------------------------------------------------------ Gather

/// One job on each of a set of shards, without locks, then `done` with their results
/// in the order of `shards`.
/// `make(shard, slots, i)` builds the job for `shard` that fills slot `i`.
struct Gather<R, M, D> {
    shards: Vec<usize>,
    make: M,
    done: Option<D>,
    slots: Slots<R>,
}

impl<R, M, D> Program for Gather<R, M, D>
where
    R: Send + 'static,
    M: FnMut(usize, &Slots<R>, usize) -> Job + Send,
    D: FnOnce(Vec<R>, &mut ReplyBuf) + Send,
{
    fn step(&mut self, hop: u32, out: &mut ReplyBuf) -> Plan {
        if hop == 0 {
            let jobs = self.shards.iter().enumerate().map(|(i, &s)| (s, (self.make)(s, &self.slots, i))).collect();
            return Plan::Jobs { jobs, last: true };
        }
        let results = (0..self.shards.len()).map(|i| self.slots.take(i)).collect();
        (self.done.take().expect("done runs once"))(results, out);
        Plan::Done
    }
}

/// A program that runs `make(shard)` on each of `shards` (no locks), then `done` with
/// the results in the order of `shards`.
pub fn gather<R, M, F, D>(shards: Vec<usize>, make: M, done: D) -> Box<dyn Program>
where
    R: Send + 'static,
    M: FnMut(usize) -> F + Send + 'static,
    F: FnOnce(&mut Shard) -> R + Send + 'static,
    D: FnOnce(Vec<R>, &mut ReplyBuf) + Send + 'static,
{
    let mut make = make;
    let slots = Slots::new(shards.len());
    let make = move |s: usize, slots: &Slots<R>, i: usize| slots.job(i, make(s));
    Box::new(Gather { shards, make, done: Some(done), slots })
}

/// [`gather`] with thread-level jobs ([`Job::Thread`]): `make(shard)` also gets the
/// thread's connections.
pub fn gather_threads<R, M, F, D>(shards: Vec<usize>, make: M, done: D) -> Box<dyn Program>
where
    R: Send + 'static,
    M: FnMut(usize) -> F + Send + 'static,
    F: FnOnce(&mut Shard, &mut Conns) -> R + Send + 'static,
    D: FnOnce(Vec<R>, &mut ReplyBuf) + Send + 'static,
{
    let mut make = make;
    let slots = Slots::new(shards.len());
    let make = move |s: usize, slots: &Slots<R>, i: usize| slots.thread_job(i, make(s));
    Box::new(Gather { shards, make, done: Some(done), slots })
}

// ------------------------------------------------------------------------- Error

/// A program that only replies with an error (checks made before any shard is asked).
struct ErrorReply(String);

impl Program for ErrorReply {
    fn step(&mut self, _hop: u32, out: &mut ReplyBuf) -> Plan {
        out.error(&self.0);
        Plan::Done
    }
}

/// A lock-free plan that replies with `msg` as an error.
pub fn error(msg: String) -> TxPlan {
    (Vec::new(), Box::new(ErrorReply(msg)))
}

// --------------------------------------------------------------------------- Seq

/// Programs run one after the other under one transaction's locks (the union of their
/// lock sets), each writing its own reply: the building block of MULTI/EXEC and EVAL.
/// Only the last program's last hop concludes the transaction.
pub struct Seq {
    progs: Vec<Box<dyn Program>>,
    cur: usize,
    /// The current program's own hop counter.
    hop: u32,
}

impl Seq {
    /// Composes `plans` into one plan whose lock sets are the union of theirs.
    pub fn compose(plans: Vec<TxPlan>) -> TxPlan {
        let mut by_shard: LockSets = Vec::new();
        let mut progs = Vec::with_capacity(plans.len());
        for (locks, prog) in plans {
            for (s, keys) in locks {
                match by_shard.iter_mut().find(|(t, _)| *t == s) {
                    Some((_, v)) => v.extend(keys),
                    None => by_shard.push((s, keys)),
                }
            }
            progs.push(prog);
        }
        for (_, keys) in &mut by_shard {
            crate::vll::normalize(keys);
        }
        (by_shard, Box::new(Seq { progs, cur: 0, hop: 0 }))
    }
}

impl Program for Seq {
    fn step(&mut self, _hop: u32, out: &mut ReplyBuf) -> Plan {
        while let Some(p) = self.progs.get_mut(self.cur) {
            match p.step(self.hop, out) {
                Plan::Done => {
                    self.cur += 1;
                    self.hop = 0;
                }
                Plan::Jobs { jobs, last } => {
                    self.hop += 1;
                    let more = self.cur + 1 < self.progs.len();
                    return Plan::Jobs { jobs, last: last && !more };
                }
            }
        }
        Plan::Done
    }
}

// ------------------------------------------------------------------------- Split

/// One shard's result of a split command, with the ordinals (positions among the
/// command's keys) of the keys it covered, in order.
pub struct Part<T> {
    pub ordinals: Vec<usize>,
    pub value: T,
}

/// A multi-key command written once: `run` does one shard's share (the command name
/// followed by the key groups that live there, in argument order), `reduce` builds
/// the reply from the shares. With every key in one shard both run inline
/// ([`split_local`]); otherwise [`split_plan`] runs `run` on each shard in one hop
/// under exclusive (writes) or shared (reads) locks and `reduce` on the coordinator.
pub trait SplitOp: 'static {
    /// One shard's result.
    type Part: Send + 'static;
    /// Arguments per key group: 1 for DEL/MGET (`key`), 2 for MSET (`key value`), as
    /// the command's key step in the table.
    const STEP: usize = 1;

    /// A check of the whole command before it is split (e.g. MSET's pairs); the error.
    fn check(_args: &[&[u8]]) -> Result<(), String> {
        Ok(())
    }

    /// One shard's share of the work.
    fn run(ctx: &mut ShardCtx, args: &[&[u8]]) -> Self::Part;

    /// The reply from every shard's result; `nkeys` keys in all.
    fn reduce(parts: Vec<Part<Self::Part>>, nkeys: usize, out: &mut ReplyBuf);
}

/// The shard handler of a [`SplitOp`] command whose keys are all in this shard.
pub fn split_local<O: SplitOp>(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    if let Err(e) = O::check(args) {
        return out.error(&e);
    }
    let value = O::run(ctx, args);
    let nkeys = (args.len() - 1) / O::STEP;
    O::reduce(vec![Part { ordinals: (0..nkeys).collect(), value }], nkeys, out);
}

/// One shard's share of a split command: its arguments (copied once), its shard and
/// the ordinals of its keys.
pub struct Share {
    pub shard: usize,
    pub ordinals: Vec<usize>,
    pub cmd: Arc<OwnedCmd>,
}

impl Share {
    /// A job that runs `f` on this share's arguments with a [`ShardCtx`] for its db,
    /// and stores the result in slot `i` of `slots`.
    pub fn job<R, F>(&self, slots: &Slots<R>, i: usize, f: F) -> Job
    where
        R: Send + 'static,
        F: FnOnce(&mut ShardCtx, &[&[u8]]) -> R + Send + 'static,
    {
        let owned = self.cmd.clone();
        slots.job(i, move |s: &mut Shard| {
            let args = owned.args();
            let mut ctx = ShardCtx { shard: s, db: owned.db as usize, now_ms: unix_ms(), no_touch: owned.no_touch };
            f(&mut ctx, &args)
        })
    }
}

/// Splits a command's key groups (a key and the `step - 1` arguments after it) by
/// shard, with the lock set of each share.
pub fn split_shares(cmd: &'static Command, args: &[&[u8]], db: usize, nshards: usize) -> (LockSets, Vec<Share>) {
    let step = cmd.step.max(1) as usize;
    let mut subs: Vec<Vec<&[u8]>> = vec![Vec::new(); nshards];
    let mut ordinals: Vec<Vec<usize>> = vec![Vec::new(); nshards];
    for (ord, i) in cmd.key_indices(args.len()).enumerate() {
        let s = shard_of(args[i], nshards);
        if subs[s].is_empty() {
            subs[s].push(args[0]);
        }
        subs[s].extend_from_slice(&args[i..(i + step).min(args.len())]);
        ordinals[s].push(ord);
    }
    let mut locks = Vec::new();
    let mut shares = Vec::new();
    for (s, (sub, ordinals)) in subs.into_iter().zip(ordinals).enumerate() {
        if sub.is_empty() {
            continue;
        }
        locks.push((s, cmd::lock_keys(cmd, &sub)));
        shares.push(Share { shard: s, ordinals, cmd: Arc::new(OwnedCmd::new(cmd, &sub, db, false)) });
    }
    (locks, shares)
}

/// The multi-shard program of a [`SplitOp`] command: one hop of `run` on every share,
/// then `reduce`.
struct Split<O: SplitOp> {
    shares: Vec<Share>,
    slots: Slots<O::Part>,
    nkeys: usize,
}

impl<O: SplitOp> Program for Split<O> {
    fn step(&mut self, hop: u32, out: &mut ReplyBuf) -> Plan {
        if hop == 0 {
            let jobs = self.shares.iter().enumerate().map(|(i, p)| (p.shard, p.job(&self.slots, i, O::run))).collect();
            return Plan::Jobs { jobs, last: true };
        }
        let parts = self
            .shares
            .iter_mut()
            .enumerate()
            .map(|(i, p)| Part { ordinals: std::mem::take(&mut p.ordinals), value: self.slots.take(i) })
            .collect();
        O::reduce(parts, self.nkeys, out);
        Plan::Done
    }
}

/// The [`crate::cmd::CustomFn`] of a [`SplitOp`] command whose keys span shards.
pub fn split_plan<O: SplitOp>(cmd: &'static Command, args: &[&[u8]], db: usize, nshards: usize) -> TxPlan {
    if let Err(e) = O::check(args) {
        return error(e);
    }
    let (locks, shares) = split_shares(cmd, args, db, nshards);
    let nkeys = shares.iter().map(|p| p.ordinals.len()).sum();
    let slots = Slots::new(shares.len());
    (locks, Box::new(Split::<O> { shares, slots, nkeys }))
}

/// Runs a program to the end against `shards` on this thread, without locks or
/// messages: the test driver of programs and their reduces.
#[cfg(test)]
pub fn run_here(prog: &mut dyn Program, shards: &mut [Shard], out: &mut ReplyBuf) -> u32 {
    let mut hop = 0;
    loop {
        match prog.step(hop, out) {
            Plan::Done => return hop,
            Plan::Jobs { jobs, .. } => {
                for (s, job) in jobs {
                    job.run(&mut shards[s], &mut Conns::default());
                }
            }
        }
        hop += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::generic::Del;
    use crate::cmd::strings::Mget;

    /// `n` shards of one process, as the threads would hold them.
    fn shards(n: usize) -> Vec<Shard> {
        let cfg = crate::config::Config::from_args(["darter".to_string()]).unwrap();
        let runtime = crate::cmd::config::initial(&cfg);
        let g = Arc::new(crate::shard::Globals::new(cfg, vec![-1; n]));
        (0..n).map(|i| Shard::new(i, g.clone(), runtime.clone(), crate::cmd::table().len())).collect()
    }

    /// The plan of a command (as the dispatcher builds it for keys over `nshards`).
    fn plan(args: &[&str], nshards: usize) -> TxPlan {
        let cmd = crate::cmd::table().lookup(args[0].as_bytes()).unwrap();
        let cmd: &'static Command = &crate::cmd::table().commands[cmd.index];
        let crate::cmd::Handler::Shard(_, crate::cmd::Multi::Tx(build)) = cmd.handler else {
            panic!("{} has no plan", cmd.name)
        };
        let a: Vec<&[u8]> = args.iter().map(|x| x.as_bytes()).collect();
        build(cmd, &a, 0, nshards)
    }

    /// Runs a command's plan to the end on `shards`; its RESP2 reply.
    fn run_plan(p: TxPlan, shards: &mut [Shard]) -> String {
        let mut out = ReplyBuf::new(false);
        let (_, mut prog) = p;
        run_here(&mut *prog, shards, &mut out);
        String::from_utf8(out.buf).unwrap()
    }

    /// Two keys on shard 0 and two on shard 1 of two.
    fn keys_on_two_shards() -> Vec<String> {
        let (mut on0, mut on1) = (Vec::new(), Vec::new());
        for i in 0.. {
            let k = format!("k{i}");
            let v = if shard_of(k.as_bytes(), 2) == 0 { &mut on0 } else { &mut on1 };
            if v.len() < 2 {
                v.push(k);
            }
            if on0.len() == 2 && on1.len() == 2 {
                break;
            }
        }
        vec![on0[0].clone(), on1[0].clone(), on0[1].clone(), on1[1].clone()]
    }

    // MGET's reduce puts each shard's values back at their keys' positions.
    #[test]
    fn mget_reorders_parts() {
        let parts = vec![
            Part { ordinals: vec![1, 3], value: vec![Some(b"b".to_vec()), None] },
            Part { ordinals: vec![0, 2], value: vec![Some(b"a".to_vec()), Some(b"c".to_vec())] },
        ];
        let mut out = ReplyBuf::new(false);
        Mget::reduce(parts, 4, &mut out);
        assert_eq!(out.buf, b"*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$-1\r\n");
    }

    // DEL's reduce sums the shards' counts.
    #[test]
    fn del_sums_parts() {
        let parts = vec![Part { ordinals: vec![0], value: 1 }, Part { ordinals: vec![1, 2], value: 2 }];
        let mut out = ReplyBuf::new(false);
        Del::reduce(parts, 3, &mut out);
        assert_eq!(out.buf, b":3\r\n");
    }

    // A split command runs its per-shard op on each shard and its reduce once; the lock
    // sets name each shard's keys.
    #[test]
    fn split_over_two_shards() {
        let mut s = shards(2);
        let k = keys_on_two_shards();
        let p = plan(&["mset", &k[0], "1", &k[1], "2", &k[2], "3"], 2);
        assert_eq!(p.0.iter().map(|(s, keys)| (*s, keys.len())).collect::<Vec<_>>(), vec![(0, 2), (1, 1)]);
        assert_eq!(run_plan(p, &mut s), "+OK\r\n");
        let p = plan(&["mget", &k[3], &k[2], &k[1], &k[0]], 2);
        assert_eq!(run_plan(p, &mut s), "*4\r\n$-1\r\n$1\r\n3\r\n$1\r\n2\r\n$1\r\n1\r\n");
        let p = plan(&["del", &k[0], &k[1], &k[3]], 2);
        assert_eq!(run_plan(p, &mut s), ":2\r\n");
        // An odd pair count is refused before any shard is asked.
        let p = plan(&["mset", &k[0], "1", &k[1]], 2);
        assert!(p.0.is_empty());
        assert_eq!(run_plan(p, &mut s), "-ERR wrong number of arguments for 'mset' command\r\n");
    }

    // MSETNX over two shards is all or nothing.
    #[test]
    fn msetnx_all_or_nothing() {
        let mut s = shards(2);
        let k = keys_on_two_shards();
        assert_eq!(run_plan(plan(&["mset", &k[3], "old"], 2), &mut s), "+OK\r\n");
        // One key exists (on shard 1): nothing is set anywhere, after one hop.
        let (_, mut prog) = plan(&["msetnx", &k[0], "a", &k[1], "b", &k[3], "c"], 2);
        let mut out = ReplyBuf::new(false);
        assert_eq!(run_here(&mut *prog, &mut s, &mut out), 1);
        assert_eq!(out.buf, b":0\r\n");
        let p = plan(&["mget", &k[0], &k[1], &k[3]], 2);
        assert_eq!(run_plan(p, &mut s), "*3\r\n$-1\r\n$-1\r\n$3\r\nold\r\n");
        // None exists: every pair is set, in a second hop.
        let (_, mut prog) = plan(&["msetnx", &k[0], "a", &k[1], "b"], 2);
        let mut out = ReplyBuf::new(false);
        assert_eq!(run_here(&mut *prog, &mut s, &mut out), 2);
        assert_eq!(out.buf, b":1\r\n");
        let p = plan(&["mget", &k[0], &k[1]], 2);
        assert_eq!(run_plan(p, &mut s), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    }

    // Composed programs run one after the other under the union of their locks, each
    // writing its reply; only the last hop of the last one concludes.
    #[test]
    fn composed_programs() {
        let mut s = shards(2);
        let k = keys_on_two_shards();
        let (locks, mut prog) = Seq::compose(vec![
            plan(&["mset", &k[0], "1", &k[1], "2"], 2),
            plan(&["mget", &k[0], &k[1], &k[2]], 2),
            plan(&["del", &k[0], &k[1]], 2),
        ]);
        // Each shard's keys once, exclusive where any program writes them.
        let summary: Vec<(usize, Vec<(String, bool)>)> = locks
            .iter()
            .map(|(s, keys)| {
                (*s, keys.iter().map(|l| (String::from_utf8(l.key.to_vec()).unwrap(), l.exclusive)).collect())
            })
            .collect();
        let mut want0 = vec![(k[0].clone(), true), (k[2].clone(), false)];
        want0.sort();
        assert_eq!(summary, vec![(0, want0), (1, vec![(k[1].clone(), true)])]);
        let mut out = ReplyBuf::new(false);
        let mut lasts = Vec::new();
        let mut hop = 0;
        loop {
            match prog.step(hop, &mut out) {
                Plan::Done => break,
                Plan::Jobs { jobs, last } => {
                    lasts.push(last);
                    for (sh, job) in jobs {
                        job.run(&mut s[sh], &mut Conns::default());
                    }
                }
            }
            hop += 1;
        }
        assert_eq!(lasts, vec![false, false, true]);
        assert_eq!(String::from_utf8(out.buf).unwrap(), "+OK\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n:2\r\n");
    }
}
