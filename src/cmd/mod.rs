//! The command table, admission and dispatch.
//!
//! ```text
//!   args ──▶ admit::admit: lookup, arity, DEBUG gate, auth, maxmemory, keys → shards
//!        ──▶ Reject          : the error (counted as a rejected call)
//!        ──▶ Conn            : runs on the connection's thread (server, connection cmds)
//!        ──▶ Single{shard}   : fast path: inline if local and unlocked, squashed into a
//!                              pipeline batch for another shard, else Msg::Exec
//!        ──▶ Multi           : Multi::Split (one hop per shard, merged replies) or
//!                              Multi::Custom (a multi-hop program), both under VLL locks
//! ```
//!
//! The pipeline (`tx::pipeline`) runs the fast path itself and hands everything else
//! to [`dispatch`], with the [`Admission`] it got: every command is admitted once.
//!
//! Each command family is one module; each registers its commands with [`Command`]
//! entries: name, arity (Redis convention: negative means "at least"), flags, key
//! positions (first, last, step; last < 0 counts from the end) and handler. The same
//! table serves `COMMAND`, `COMMAND INFO/GETKEYS/COUNT/DOCS` and the transaction layer.

pub mod admit;
pub mod config;
pub mod generic;
pub mod server;
pub mod strings;
#[cfg(test)]
mod write_hook_tests;

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::conn::Conn;
use crate::reply::ReplyBuf;
use crate::runtime::Worker;
use crate::shard::{Shard, ShardCtx, shard_of, unix_ms};
use crate::tx::{Job, Origin, Out, OwnedCmd, Plan, Program};
use crate::vll::LockKey;
pub use admit::Admission;

pub const WRITE: u32 = 1 << 0;
pub const READONLY: u32 = 1 << 1;
pub const DENYOOM: u32 = 1 << 2;
pub const ADMIN: u32 = 1 << 3;
pub const PUBSUB: u32 = 1 << 4;
pub const NOSCRIPT: u32 = 1 << 5;
pub const BLOCKING: u32 = 1 << 6;
pub const LOADING: u32 = 1 << 7;
pub const STALE: u32 = 1 << 8;
pub const FAST: u32 = 1 << 9;
pub const NO_AUTH: u32 = 1 << 10;
pub const SKIP_SLOWLOG: u32 = 1 << 11;
pub const ALLOW_BUSY: u32 = 1 << 12;
pub const NO_MULTI: u32 = 1 << 13;
pub const MOVABLE_KEYS: u32 = 1 << 14;
/// Runs only where `enable-debug-command` allows it (Redis's CMD_PROTECTED: DEBUG). Not
/// shown by COMMAND, as in Redis 7.0.
pub const PROTECTED: u32 = 1 << 15;

/// Command flags and their names, in the order Redis's COMMAND prints them.
pub const FLAG_NAMES: &[(u32, &str)] = &[
    (WRITE, "write"),
    (READONLY, "readonly"),
    (DENYOOM, "denyoom"),
    (ADMIN, "admin"),
    (PUBSUB, "pubsub"),
    (NOSCRIPT, "noscript"),
    (BLOCKING, "blocking"),
    (LOADING, "loading"),
    (STALE, "stale"),
    (SKIP_SLOWLOG, "skip_slowlog"),
    (FAST, "fast"),
    (NO_AUTH, "no_auth"),
    (NO_MULTI, "no_multi"),
    (MOVABLE_KEYS, "movablekeys"),
    (ALLOW_BUSY, "allow_busy"),
];

/// A shard-side handler: runs on the thread that owns the command's keys.
pub type ShardFn = fn(&mut ShardCtx, &[&[u8]], &mut ReplyBuf);
/// A connection-side handler: runs on the connection's thread.
pub type ConnFn = fn(&mut Worker, &mut Conn, Origin, &[&[u8]]);
/// Builds the locks and program of a command whose keys span several shards.
pub type CustomFn = fn(&'static Command, &[&[u8]], usize, bool, usize) -> crate::tx::TxPlan;

/// How replies of a command split over shards are merged.
#[derive(Clone, Copy, Debug)]
pub enum Merge {
    /// Integer replies are summed (DEL, EXISTS, TOUCH, UNLINK).
    SumInts,
    /// Every part answers OK (MSET).
    Ok,
    /// Array replies are put back in key order (MGET).
    Reorder,
}

#[derive(Clone, Copy)]
pub enum Multi {
    /// All keys must live in one shard (single-key commands).
    None,
    Split(Merge),
    Custom(CustomFn),
}

#[derive(Clone, Copy)]
pub enum Handler {
    Shard(ShardFn, Multi),
    Conn(ConnFn),
}

pub struct Command {
    /// Lower-case name (`client|list` style for subcommands is not used: containers
    /// dispatch their subcommands themselves).
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub handler: Handler,
    /// ACL categories for COMMAND INFO, e.g. "@string @fast".
    pub acl: &'static str,
    /// Position in the table (per-command stats).
    pub index: usize,
}

impl Command {
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        keys: (i32, i32, i32),
        handler: Handler,
        acl: &'static str,
    ) -> Command {
        Command { name, arity, flags, first_key: keys.0, last_key: keys.1, step: keys.2, handler, acl, index: 0 }
    }

    /// Indices of the key arguments for a call with `argc` arguments.
    pub fn key_indices(&self, argc: usize) -> impl Iterator<Item = usize> + use<> {
        let (first, step) = (self.first_key, self.step.max(1));
        let last = if self.last_key < 0 { argc as i32 + self.last_key } else { self.last_key.min(argc as i32 - 1) };
        let range = if first <= 0 || last < first { 0..0 } else { first..last + 1 };
        range.step_by(step as usize).map(|i| i as usize)
    }

    pub fn is_write(&self) -> bool {
        self.flags & WRITE != 0
    }
}

pub struct Table {
    pub commands: Vec<Command>,
    by_name: HashMap<&'static str, usize>,
}

impl Table {
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Finds a command by name, case-insensitively.
    pub fn lookup(&self, name: &[u8]) -> Option<&Command> {
        let mut buf = [0u8; 32];
        if name.len() > buf.len() {
            return None;
        }
        for (d, s) in buf.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
        self.by_name.get(lower).map(|&i| &self.commands[i])
    }
}

/// The command table, built once.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut commands = Vec::new();
        commands.extend(strings::commands());
        commands.extend(generic::commands());
        commands.extend(server::commands());
        let mut by_name = HashMap::new();
        for (i, c) in commands.iter_mut().enumerate() {
            c.index = i;
            let prev = by_name.insert(c.name, i);
            assert!(prev.is_none(), "command {} registered twice", c.name);
        }
        Table { commands, by_name }
    })
}

/// The locks a command takes: its keys, exclusive if it writes, as a normalised lock
/// set (sorted by key, each key once: see [`crate::vll::normalize`]). O(n log n) in the
/// key count; a one-key command pays one allocation for the vector and one for the key,
/// and no sorting or hashing.
pub fn lock_keys(cmd: &Command, args: &[&[u8]]) -> Vec<LockKey> {
    let exclusive = cmd.is_write();
    let mut v: Vec<LockKey> = cmd.key_indices(args.len()).map(|i| LockKey { key: args[i].into(), exclusive }).collect();
    crate::vll::normalize(&mut v);
    v
}

/// Redis's wrong-arity error text.
pub fn arity_error(name: &str) -> String {
    format!("ERR wrong number of arguments for '{name}' command")
}

/// Runs a shard handler on this thread's shard.
pub fn run_shard_handler(shard: &mut Shard, cmd: &Command, db: usize, args: &[&[u8]], out: &mut ReplyBuf) {
    let Handler::Shard(f, _) = cmd.handler else {
        panic!("{} has no shard handler", cmd.name);
    };
    let mut ctx = ShardCtx { shard, db, now_ms: unix_ms(), no_touch: out.no_touch };
    f(&mut ctx, args, out);
}

/// The slow path: runs an admitted command (see [`admit`]) that is not run inline or
/// squashed by the pipeline — refusals, connection commands, single-shard commands for
/// another shard or behind a lock, and transactions.
pub fn dispatch(w: &mut Worker, c: &mut Conn, origin: Origin, args: &[&[u8]], admission: Admission) {
    match admission {
        Admission::Reject(refusal) => refusal.reply(&mut w.shard, c, args),
        Admission::Conn(cmd, f) => {
            admit::count_call(&mut w.shard, c, cmd);
            f(w, c, origin, args);
        }
        Admission::Single { cmd, shard, .. } => {
            admit::count_call(&mut w.shard, c, cmd);
            w.exec_single(c, origin, cmd, args, shard);
        }
        Admission::Multi(cmd, multi) => {
            admit::count_call(&mut w.shard, c, cmd);
            let n = w.shard.nshards;
            match multi {
                Multi::None => {
                    // Not reachable for well-formed tables: single-key commands can't span.
                    c.out.error("ERR command keys must be in one shard");
                }
                Multi::Split(merge) => {
                    let (locks, prog) = split_program(cmd, args, c.db, c.out.resp3, n, merge);
                    w.start_tx(c, origin, locks, prog);
                }
                Multi::Custom(build) => {
                    let (locks, prog) = build(cmd, args, c.db, c.out.resp3, n);
                    w.start_tx(c, origin, locks, prog);
                }
            }
        }
    }
}

/// One shard's part of a split command.
struct Part {
    shard: usize,
    /// Ordinal (among the keys) of each key in this part, in order.
    ordinals: Vec<usize>,
    cmd: Option<OwnedCmd>,
}

/// Runs a multi-key command as one sub-command per shard and merges the replies.
struct SplitProgram {
    parts: Vec<Part>,
    merge: Merge,
    nkeys: usize,
    resp3: bool,
}

fn split_program(
    cmd: &'static Command,
    args: &[&[u8]],
    db: usize,
    resp3: bool,
    nshards: usize,
    merge: Merge,
) -> crate::tx::TxPlan {
    let step = cmd.step.max(1) as usize;
    let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); nshards];
    let mut ordinal_of: Vec<Vec<usize>> = vec![Vec::new(); nshards];
    for (ord, i) in cmd.key_indices(args.len()).enumerate() {
        let s = shard_of(args[i], nshards);
        by_shard[s].push(i);
        ordinal_of[s].push(ord);
    }
    let nkeys = ordinal_of.iter().map(|v| v.len()).sum();
    let mut parts = Vec::new();
    let mut locks = Vec::new();
    for s in 0..nshards {
        if by_shard[s].is_empty() {
            continue;
        }
        let mut sub: Vec<&[u8]> = vec![args[0]];
        for &i in &by_shard[s] {
            sub.extend_from_slice(&args[i..(i + step).min(args.len())]);
        }
        locks.push((s, lock_keys(cmd, &sub)));
        parts.push(Part {
            shard: s,
            ordinals: std::mem::take(&mut ordinal_of[s]),
            cmd: Some(OwnedCmd::new(cmd, &sub, db, resp3)),
        });
    }
    (locks, Box::new(SplitProgram { parts, merge, nkeys, resp3 }))
}

impl Program for SplitProgram {
    fn step(&mut self, hop: u32, results: &mut [Option<Out>], out: &mut ReplyBuf) -> Plan {
        if hop == 0 {
            let jobs = self
                .parts
                .iter_mut()
                .map(|p| {
                    let owned = p.cmd.take().expect("hop 0 runs once");
                    let job: Job = Box::new(move |s: &mut Shard| Box::new(owned.run(s)) as Out);
                    (p.shard, job)
                })
                .collect();
            return Plan::Jobs { jobs, last: true };
        }
        let replies: Vec<Vec<u8>> = self
            .parts
            .iter()
            .map(|p| *results[p.shard].take().expect("every part answers").downcast::<Vec<u8>>().expect("reply bytes"))
            .collect();
        // An error from any part (e.g. WRONGTYPE) is the reply, as Redis would give it.
        if let Some(err) = replies.iter().find(|r| r.first() == Some(&b'-')) {
            out.buf.extend_from_slice(err);
            return Plan::Done;
        }
        match self.merge {
            Merge::SumInts => {
                let total: i64 = replies.iter().map(|r| parse_int_reply(r).expect("integer reply")).sum();
                out.int(total);
            }
            Merge::Ok => out.ok(),
            Merge::Reorder => {
                let mut slots: Vec<&[u8]> = vec![&[]; self.nkeys];
                for (p, r) in self.parts.iter().zip(&replies) {
                    let elems = split_array_reply(r).expect("array reply");
                    for (ord, e) in p.ordinals.iter().zip(elems) {
                        slots[*ord] = e;
                    }
                }
                let _ = self.resp3;
                out.array(self.nkeys);
                for s in slots {
                    out.buf.extend_from_slice(s);
                }
            }
        }
        Plan::Done
    }
}

/// A program that runs one job on each of a set of shards, without locks, then builds
/// the reply from their results (in the order of `shards`).
struct Gather<F, D> {
    shards: Vec<usize>,
    make: F,
    done: Option<D>,
}

impl<F, D> Program for Gather<F, D>
where
    F: FnMut(usize) -> Job + Send,
    D: FnOnce(Vec<Out>, &mut ReplyBuf) + Send,
{
    fn step(&mut self, hop: u32, results: &mut [Option<Out>], out: &mut ReplyBuf) -> Plan {
        if hop == 0 {
            let jobs = self.shards.iter().map(|&s| (s, (self.make)(s))).collect();
            return Plan::Jobs { jobs, last: true };
        }
        let outs = self.shards.iter().map(|&s| results[s].take().expect("every shard answers")).collect();
        (self.done.take().expect("done runs once"))(outs, out);
        Plan::Done
    }
}

/// Runs `make(shard)`'s job on every shard (no locks), then `done` with the results in
/// shard order. The connection waits meanwhile. For DBSIZE, KEYS, INFO, FLUSHALL...
pub fn broadcast<F, D>(w: &mut Worker, c: &mut Conn, origin: Origin, make: F, done: D)
where
    F: FnMut(usize) -> Job + Send + 'static,
    D: FnOnce(Vec<Out>, &mut ReplyBuf) + Send + 'static,
{
    let shards = (0..w.shard.nshards).collect();
    w.start_broadcast(c, origin, Box::new(Gather { shards, make, done: Some(done) }));
}

/// Runs one job on one shard (no locks), then `done` with its result.
pub fn on_shard<D>(w: &mut Worker, c: &mut Conn, origin: Origin, shard: usize, job: Job, done: D)
where
    D: FnOnce(Out, &mut ReplyBuf) + Send + 'static,
{
    let mut job = Some(job);
    let make = move |_s: usize| job.take().expect("one job");
    let done = move |mut outs: Vec<Out>, out: &mut ReplyBuf| done(outs.pop().expect("one result"), out);
    w.start_broadcast(c, origin, Box::new(Gather { shards: vec![shard], make, done: Some(done) }));
}

/// The value of an integer reply (`:N\r\n`).
fn parse_int_reply(r: &[u8]) -> Option<i64> {
    let body = r.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    crate::util::parse_i64(body)
}

/// Splits an array reply of bulk strings / nulls / integers / simple strings into its
/// elements' raw bytes (what our own shard handlers produce for MGET-like commands).
fn split_array_reply(r: &[u8]) -> Option<Vec<&[u8]>> {
    let line_end = |from: usize| memchr::memmem::find(&r[from..], b"\r\n").map(|i| from + i);
    if r.first() != Some(&b'*') {
        return None;
    }
    let e = line_end(0)?;
    let n: usize = std::str::from_utf8(&r[1..e]).ok()?.parse().ok()?;
    let mut pos = e + 2;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let start = pos;
        let e = line_end(pos)?;
        if r[pos] == b'$' {
            let len: i64 = std::str::from_utf8(&r[pos + 1..e]).ok()?.parse().ok()?;
            pos = if len < 0 { e + 2 } else { e + 2 + len as usize + 2 };
        } else {
            pos = e + 2;
        }
        v.push(r.get(start..pos)?);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Key positions follow Redis's (first, last, step) convention, last < 0 from the end.
    #[test]
    fn key_positions() {
        let t = table();
        let mset = t.lookup(b"MSET").unwrap();
        assert_eq!(mset.key_indices(5).collect::<Vec<_>>(), vec![1, 3]);
        let del = t.lookup(b"del").unwrap();
        assert_eq!(del.key_indices(4).collect::<Vec<_>>(), vec![1, 2, 3]);
        let ping = t.lookup(b"ping").unwrap();
        assert_eq!(ping.key_indices(2).count(), 0);
    }
}
