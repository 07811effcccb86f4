//! The command table and dispatch.
//!
//! ```text
//!   args ──▶ lookup (name, case-insensitive) ──▶ arity, auth checks
//!        ──▶ Handler::Conn : runs on the connection's thread (server, connection cmds)
//!                             with a tx::Ctx (session, reply, local shard, programs)
//!        ──▶ Handler::Shard: keys → shards
//!               one shard  ──▶ fast path: inline if local and unlocked, else Msg::Exec
//!               many shards──▶ Multi::Tx: the command's plan (lock sets + a
//!                              tx::Program) run by the coordinator under VLL locks
//! ```
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

pub mod config;
pub mod generic;
pub mod server;
pub mod strings;

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::conn::Conn;
use crate::op::OpStatus;
use crate::reply::ReplyBuf;
use crate::runtime::Worker;
use crate::shard::{Shard, ShardCtx, shard_of, unix_ms};
use crate::tx::{Ctx, Origin, TxPlan};
use crate::vll::LockKey;

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

/// Redis's "unknown command" error text (bytes: arguments are quoted as they came,
/// each cut at a NUL byte like C's `%.*s`, at most 128 bytes of them in all).
pub fn unknown_command_error(args: &[&[u8]]) -> Vec<u8> {
    fn c_str(b: &[u8], max: usize) -> &[u8] {
        let b = &b[..memchr::memchr(0, b).unwrap_or(b.len())];
        &b[..b.len().min(max)]
    }
    let mut tail: Vec<u8> = Vec::new();
    for a in &args[1..] {
        if tail.len() >= 128 {
            break;
        }
        let room = 128 - tail.len();
        tail.push(b'\'');
        tail.extend_from_slice(c_str(a, room));
        tail.extend_from_slice(b"' ");
    }
    let mut e = b"ERR unknown command '".to_vec();
    e.extend_from_slice(c_str(args[0], 128));
    e.extend_from_slice(b"', with args beginning with: ");
    e.extend_from_slice(&tail);
    e
}

/// Redis 7.0's refusal of DEBUG while `enable-debug-command` forbids it.
pub const DEBUG_NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

/// Whether `enable-debug-command` lets this client run a PROTECTED command: `yes`, or
/// `local` and the client is on loopback (Redis's `allowProtectedAction`).
fn protected_allowed(w: &Worker, c: &Conn) -> bool {
    match w.shard.cfg.debug_command {
        1 => true,
        2 => c.peer_is_loopback(),
        _ => false,
    }
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

/// For a command that would take the single-shard fast path — known, right arity,
/// allowed, a shard handler, all keys in one shard — the command and its shard. None
/// for everything else (errors, connection commands, multi-shard commands), which go
/// through [`dispatch`]. Pure: writes no reply, counts nothing.
pub fn route(w: &Worker, c: &Conn, args: &[&[u8]]) -> Option<(&'static Command, usize)> {
    let t = table();
    let cmd = t.lookup(args[0])?;
    let cmd: &'static Command = &t.commands[cmd.index];
    let argc = args.len() as i32;
    if (cmd.arity > 0 && argc != cmd.arity) || argc < -cmd.arity || cmd.flags & BLOCKING != 0 {
        return None;
    }
    if !c.authed && cmd.flags & NO_AUTH == 0 {
        return None;
    }
    let Handler::Shard(..) = cmd.handler else { return None };
    if cmd.flags & DENYOOM != 0 && w.shard.maybe_over_maxmemory() {
        return None; // dispatch decides, and refuses it if really over
    }
    Some((cmd, single_shard(cmd, args, w.shard.nshards, w.id)?))
}

/// The one shard all the keys of `args` hash to, `home` for a command without
/// keys, or `None` when the keys span shards (the caller then runs a
/// transaction). Stops at the first key on another shard: the transaction
/// split hashes every key again anyway.
#[inline]
fn single_shard(cmd: &Command, args: &[&[u8]], nshards: usize, home: usize) -> Option<usize> {
    let mut target: Option<usize> = None;
    for i in cmd.key_indices(args.len()) {
        let s = shard_of(args[i], nshards);
        match target {
            None => target = Some(s),
            Some(t) if t != s => return None,
            _ => {}
        }
    }
    Some(target.unwrap_or(home))
}

/// Counts a call of `cmd` (what [`dispatch`] does before running a command).
pub fn count_call(w: &mut Worker, c: &mut Conn, cmd: &'static Command) {
    c.last_cmd = cmd.name;
    w.shard.stats.commands_processed += 1;
    w.shard.stats.cmd[cmd.index].calls += 1;
}

/// Parses, checks and routes one command.
pub fn dispatch(w: &mut Worker, c: &mut Conn, origin: Origin, args: &[&[u8]]) {
    let t = table();
    // Redis's order: unknown command, then arity, then authentication.
    let Some(cmd) = t.lookup(args[0]) else {
        c.out.error_bytes(&unknown_command_error(args));
        return;
    };
    let cmd: &'static Command = &t.commands[cmd.index];
    c.last_cmd = cmd.name;
    let argc = args.len() as i32;
    // Errors of these checks count as rejected calls of the command, as Redis's
    // rejectCommand does.
    if (cmd.arity > 0 && argc != cmd.arity) || argc < -cmd.arity {
        w.shard.stats.cmd[cmd.index].rejected += 1;
        c.out.error(&arity_error(cmd.name));
        return;
    }
    if cmd.flags & PROTECTED != 0 && !protected_allowed(w, c) {
        w.shard.stats.cmd[cmd.index].rejected += 1;
        c.out.error(DEBUG_NOT_ALLOWED);
        return;
    }
    if !c.authed && cmd.flags & NO_AUTH == 0 {
        w.shard.stats.cmd[cmd.index].rejected += 1;
        c.out.error("NOAUTH Authentication required.");
        return;
    }
    // Redis's processCommand: with maxmemory set and used memory over it, commands that
    // may grow the dataset are refused (counted as rejected, not as calls). Every
    // maxmemory-policy behaves as noeviction for now: there is no eviction yet.
    if cmd.flags & DENYOOM != 0 && w.shard.cfg.maxmemory != 0 && refuse_if_oom(w, c, cmd) {
        return;
    }
    let stats = &mut w.shard.stats;
    stats.commands_processed += 1;
    stats.cmd[cmd.index].calls += 1;
    match cmd.handler {
        Handler::Conn(f) => {
            let mut ctx = Ctx::new(c, &mut w.shard, origin);
            f(&mut ctx, args);
            if let Some((locks, prog)) = ctx.take_plan() {
                w.start_tx(c, origin, locks, prog);
            }
        }
        Handler::Shard(_, multi) => {
            let n = w.shard.nshards;
            if let Some(target) = single_shard(cmd, args, n, w.id) {
                w.exec_single(c, origin, cmd, args, target);
                return;
            }
            match multi {
                Multi::None => {
                    // Not reachable for well-formed tables: single-key commands can't span.
                    c.out.error("ERR command keys must be in one shard");
                }
                Multi::Tx(build) => {
                    let (locks, prog) = build(cmd, args, c.db, n);
                    w.start_tx(c, origin, locks, prog);
                }
            }
        }
    }
}

/// The maxmemory check of a DENYOOM command (maxmemory is set): replies with the OOM
/// error and counts a rejected call when used memory is over the limit. Out of line so
/// that dispatch's common path stays two compares.
#[cold]
#[inline(never)]
fn refuse_if_oom(w: &mut Worker, c: &mut Conn, cmd: &'static Command) -> bool {
    if !w.shard.over_maxmemory() {
        return false;
    }
    w.shard.stats.cmd[cmd.index].rejected += 1;
    OpStatus::Oom.reply(&mut c.out);
    true
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

    // The unknown-command error quotes the arguments like Redis.
    #[test]
    fn unknown_command_text() {
        assert_eq!(
            unknown_command_error(&[b"foo", b"a", b"b"]),
            b"ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        assert_eq!(unknown_command_error(&[b"foo"]), b"ERR unknown command 'foo', with args beginning with: ");
        assert_eq!(
            unknown_command_error(&[b"x", b"\xb2\0z"]),
            b"ERR unknown command 'x', with args beginning with: '\xb2' "
        );
    }
}
