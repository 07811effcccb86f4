//! Admission: the one place that decides what becomes of a parsed command, for every
//! path it can take (run inline, squashed into a pipeline batch, sent to one shard,
//! run as a transaction, run on the connection's thread) — or refuses it.
//!
//! ```text
//!   args ──▶ admit ──▶ lookup ─ unknown ──────────────────────────▶ Reject(Unknown)
//!                      arity ─ wrong ─────────────────────────────▶ Reject(Arity)
//!                      PROTECTED (DEBUG) ─ enable-debug-command ──▶ Reject(Protected)
//!                      auth ─ NOAUTH ─────────────────────────────▶ Reject(NoAuth)
//!                      DENYOOM ─ used memory over maxmemory ──────▶ Reject(Oom)
//!                      Handler::Conn ─────────────────────────────▶ Conn(cmd, f)
//!                      keys → shards ─ one shard ─────────────────▶ Single { cmd, shard, squash }
//!                                    └ several ───────────────────▶ Multi(cmd, how)
//! ```
//!
//! The checks run in Redis's order (`processCommand`), so the error a client gets for
//! a command that fails several is Redis's. `admit` is pure: it writes no reply and
//! counts nothing, so a pipeline may look at a command, decide it is a barrier, and
//! admit it again once the squashed run before it has answered. The caller then either
//! writes the refusal ([`Refusal::reply`], which counts a rejected call as Redis's
//! `rejectCommand` does) or counts the call ([`count_call`]) and runs the command.
//!
//! **The barrier decision**: a pipelined run of single-shard commands is squashed into
//! one batch per shard; only `Single { squash: true }` may join it. Everything else is
//! a barrier that waits for the run's replies first (and is admitted again then):
//! connection commands (SELECT, AUTH, CLIENT ... change what follows), transactions,
//! refusals, blocking commands, and writes while used memory is near maxmemory (the
//! run in flight may push it over: the OOM check must see its effect, as it would one
//! command at a time). The pipeline adds one barrier of its own: a command for its own
//! shard whose keys are locked ([`may_run_inline`] is false) must queue.
//!
//! A new gate (MULTI queueing, subscribed mode, READONLY replica, CLIENT PAUSE,
//! script BUSY, ACL) is one more check in [`admit`] and, if it refuses, one more
//! [`Refusal`]; every path sees it.

use crate::conn::Conn;
use crate::op::OpStatus;
use crate::shard::{Shard, shard_of};
use crate::vll::Vll;

use super::{BLOCKING, Command, ConnFn, DENYOOM, Handler, Multi, NO_AUTH, PROTECTED, arity_error, lock_keys, table};

/// What becomes of a parsed command.
#[derive(Clone, Copy)]
pub enum Admission {
    /// Refused; [`Refusal::reply`] writes the error.
    Reject(Refusal),
    /// A connection command: runs on the connection's thread.
    Conn(&'static Command, ConnFn),
    /// A shard command whose keys (if any) all live in `shard` (the connection's own
    /// thread for a keyless one). `squash`: it may join a squashed pipeline run.
    Single { cmd: &'static Command, shard: usize, squash: bool },
    /// A shard command whose keys span shards: a transaction under VLL locks, built as
    /// its [`Multi`] says.
    Multi(&'static Command, Multi),
}

/// Why a command is refused, in the order the checks run.
#[derive(Clone, Copy)]
pub enum Refusal {
    /// No such command.
    Unknown,
    /// Wrong number of arguments.
    Arity(&'static Command),
    /// DEBUG while `enable-debug-command` forbids it for this client.
    Protected(&'static Command),
    /// The connection has not authenticated and the command needs it.
    NoAuth(&'static Command),
    /// A command that may grow the dataset while used memory is over maxmemory
    /// (every maxmemory-policy behaves as noeviction for now: there is no eviction).
    Oom(&'static Command),
}

impl Refusal {
    /// Writes Redis's error for the refusal of `args` and counts it: a refusal of a
    /// known command is a rejected call of it (Redis's `rejectCommand`; not a call) and
    /// becomes the connection's last command.
    pub fn reply(self, shard: &mut Shard, c: &mut Conn, args: &[&[u8]]) {
        if let Some(cmd) = self.command() {
            c.last_cmd = cmd.name;
            shard.stats.cmd[cmd.index].rejected += 1;
        }
        match self {
            Refusal::Unknown => c.out.error_bytes(&unknown_command_error(args)),
            Refusal::Arity(cmd) => c.out.error(&arity_error(cmd.name)),
            Refusal::Protected(_) => c.out.error(DEBUG_NOT_ALLOWED),
            Refusal::NoAuth(_) => c.out.error("NOAUTH Authentication required."),
            Refusal::Oom(_) => OpStatus::Oom.reply(&mut c.out),
        }
    }

    /// The refused command, if it is a known one.
    pub fn command(self) -> Option<&'static Command> {
        match self {
            Refusal::Unknown => None,
            Refusal::Arity(cmd) | Refusal::Protected(cmd) | Refusal::NoAuth(cmd) | Refusal::Oom(cmd) => Some(cmd),
        }
    }
}

/// Decides what becomes of `args` (not empty), sent by `c` to the thread of `shard`:
/// lookup, arity, DEBUG's gate, auth, maxmemory, then the handler kind and key → shard.
/// Pure: writes nothing to the connection and counts nothing (it may refresh the
/// memory estimate). See the module docs.
#[inline]
pub fn admit(shard: &mut Shard, c: &Conn, args: &[&[u8]]) -> Admission {
    let t = table();
    let Some(cmd) = t.lookup(args[0]) else { return Admission::Reject(Refusal::Unknown) };
    let cmd: &'static Command = &t.commands[cmd.index];
    let argc = args.len() as i32;
    if (cmd.arity > 0 && argc != cmd.arity) || argc < -cmd.arity {
        return Admission::Reject(Refusal::Arity(cmd));
    }
    if cmd.flags & PROTECTED != 0 && !protected_allowed(shard, c) {
        return Admission::Reject(Refusal::Protected(cmd));
    }
    if !c.authed && cmd.flags & NO_AUTH == 0 {
        return Admission::Reject(Refusal::NoAuth(cmd));
    }
    // The common path pays one flag test and one compare of this thread's estimate.
    let mut squash = cmd.flags & BLOCKING == 0;
    if cmd.flags & DENYOOM != 0 && shard.maybe_over_maxmemory() {
        if over_maxmemory(shard) {
            return Admission::Reject(Refusal::Oom(cmd));
        }
        squash = false; // near the limit: decide after the run in flight has landed
    }
    match cmd.handler {
        Handler::Conn(f) => Admission::Conn(cmd, f),
        Handler::Shard(_, multi) => match single_shard(cmd, args, shard.nshards, shard.id) {
            Some(target) => Admission::Single { cmd, shard: target, squash },
            None => Admission::Multi(cmd, multi),
        },
    }
}

/// The exact maxmemory check, once the estimate says "over" (out of line: rare).
#[cold]
#[inline(never)]
fn over_maxmemory(shard: &mut Shard) -> bool {
    shard.over_maxmemory()
}

/// Whether a single-shard command on this thread's shard may run inline now: no
/// transaction is queued in the shard's VLL queue, or none holds its keys. Otherwise it
/// must queue behind them (order and isolation). The one copy of this test, used by the
/// pipeline, the slow path and the shard side of messages.
#[inline]
pub fn may_run_inline<T>(vll: &Vll<T>, cmd: &Command, args: &[&[u8]]) -> bool {
    vll.queue_len() == 0 || vll.is_free(&lock_keys(cmd, args))
}

/// Counts a call of an admitted command (before running it): the connection's last
/// command, `total_commands_processed` and the command's `calls`.
#[inline]
pub fn count_call(shard: &mut Shard, c: &mut Conn, cmd: &'static Command) {
    c.last_cmd = cmd.name;
    shard.stats.commands_processed += 1;
    shard.stats.cmd[cmd.index].calls += 1;
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

/// Whether `enable-debug-command` lets this client run a PROTECTED command: `yes`, or
/// `local` and the client is on loopback (Redis's `allowProtectedAction`).
fn protected_allowed(shard: &Shard, c: &Conn) -> bool {
    match shard.cfg.debug_command {
        1 => true,
        2 => c.peer_is_loopback(),
        _ => false,
    }
}

/// Redis 7.0's refusal of DEBUG while `enable-debug-command` forbids it.
pub const DEBUG_NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

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

#[cfg(test)]
mod tests {
    use super::*;

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
