//! The command table, admission and dispatch.
//!
//! ```text
//!   args ──▶ admit::admit: lookup, arity, DEBUG gate, auth, maxmemory, keys → shards
//!        ──▶ Reject          : the error (counted as a rejected call)
//!        ──▶ Conn            : runs on the connection's thread (server, connection cmds)
//!                              with a tx::Ctx (session, reply, local shard, programs)
//!        ──▶ Single{shard}   : fast path: inline if local and unlocked, squashed into a
//!                              pipeline batch for another shard, else Msg::Exec
//!        ──▶ Multi           : Multi::Tx: the command's plan (lock sets + a
//!                              tx::Program) run by the coordinator under VLL locks
//! ```
//!
//! The pipeline (`tx::pipeline`) runs the fast path itself and hands everything else
//! to [`dispatch`], with the [`Admission`] it got: every command is admitted once.
//!
//! A multi-key command is written once as a [`crate::tx::program::SplitOp`] (a per-shard
//! `run` and a typed `reduce`): its shard handler is `split_local::<Op>` and its
//! `Multi::Tx` builder `split_plan::<Op>`. Commands with several hops (MSETNX,
//! RENAME, COPY, LCS) share their shard-local operations between the shard handler and
//! their program.
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

use crate::reply::ReplyBuf;
use crate::shard::{Shard, ShardCtx, unix_ms};
use crate::tx::{Ctx, TxPlan};
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
pub type ConnFn = fn(&mut Ctx, &[&[u8]]);
/// Builds the lock sets and program of a command whose keys span several shards:
/// `(command, args, db, nshards)`.
pub type PlanFn = fn(&'static Command, &[&[u8]], usize, usize) -> TxPlan;

#[derive(Clone, Copy)]
pub enum Multi {
    /// All keys must live in one shard (single-key commands).
    None,
    /// Keys over several shards run as this plan (e.g. `split_plan::<Op>`).
    Tx(PlanFn),
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
