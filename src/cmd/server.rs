//! Connection and server commands: PING, ECHO, QUIT, RESET, HELLO, AUTH, SELECT,
//! DBSIZE, TIME, LASTSAVE, SAVE/BGSAVE, SHUTDOWN, OBJECT, MEMORY, DEBUG, FUNCTION, and
//! (in submodules) CLIENT, COMMAND and INFO. CONFIG lives in `cmd::config`.
//!
//! ```text
//!   connection state (db, name, resp3, authed)  ── changed in place on the
//!                                                  connection's thread
//!   server-wide views (DBSIZE, INFO, CLIENT LIST/KILL, CONFIG SET)
//!                                               ── broadcast a job to every shard,
//!                                                  merge the results
//!   keyed introspection (OBJECT, MEMORY USAGE, DEBUG OBJECT)
//!                                               ── run on the key's shard
//! ```
//!
//! Containers (CLIENT, CONFIG, COMMAND, OBJECT, MEMORY, FUNCTION) check their
//! subcommand's arity themselves against [`Sub`] tables, which COMMAND also prints.

mod client;
mod command;
mod info;

use super::{
    ADMIN, ALLOW_BUSY, Command, FAST, Handler, LOADING, Multi, NO_AUTH, NO_MULTI, NOSCRIPT, PROTECTED, READONLY, STALE,
    WRITE,
};
use crate::op::OpStatus;
use crate::reply::ReplyBuf;
use crate::shard::{Shard, ShardCtx};
use crate::tx::Ctx;

/// The Redis version Darter reports (HELLO, INFO): clients gate features on it.
pub const REDIS_VERSION: &str = "7.0.15";

const CONN_FLAGS: u32 = NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY;

pub fn commands() -> Vec<Command> {
    vec![
        Command::new("ping", -1, FAST, (0, 0, 0), Handler::Conn(ping), "@fast @connection"),
        Command::new("echo", 2, LOADING | STALE | FAST, (0, 0, 0), Handler::Conn(echo), "@fast @connection"),
        Command::new("quit", -1, CONN_FLAGS, (0, 0, 0), Handler::Conn(quit), "@fast @connection"),
        Command::new("reset", 1, CONN_FLAGS, (0, 0, 0), Handler::Conn(reset), "@fast @connection"),
        Command::new("hello", -1, CONN_FLAGS, (0, 0, 0), Handler::Conn(hello), "@fast @connection"),
        Command::new("auth", -2, CONN_FLAGS, (0, 0, 0), Handler::Conn(auth), "@fast @connection"),
        Command::new("dbsize", 1, READONLY | FAST, (0, 0, 0), Handler::Conn(dbsize), "@keyspace @read @fast"),
        Command::new("select", 2, LOADING | STALE | FAST, (0, 0, 0), Handler::Conn(select), "@fast @connection"),
        Command::new("client", -2, 0, (0, 0, 0), Handler::Conn(client::client), "@slow"),
        super::config::command(),
        Command::new("command", -1, LOADING | STALE, (0, 0, 0), Handler::Conn(command::command), "@slow @connection"),
        Command::new("info", -1, LOADING | STALE, (0, 0, 0), Handler::Conn(info::info), "@slow @dangerous"),
        Command::new("time", 1, LOADING | STALE | FAST, (0, 0, 0), Handler::Conn(time), "@fast"),
        Command::new(
            "lastsave",
            1,
            LOADING | STALE | FAST,
            (0, 0, 0),
            Handler::Conn(lastsave),
            "@admin @fast @dangerous",
        ),
        Command::new("save", 1, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), Handler::Conn(save), "@admin @slow @dangerous"),
        Command::new("bgsave", -1, ADMIN | NOSCRIPT, (0, 0, 0), Handler::Conn(save), "@admin @slow @dangerous"),
        Command::new(
            "shutdown",
            -1,
            ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
            (0, 0, 0),
            Handler::Conn(shutdown),
            "@admin @slow @dangerous",
        ),
        // Keyed containers: the key (argument 2) picks the shard they run on.
        Command::new("object", -2, 0, (2, 2, 1), Handler::Shard(object, Multi::None), "@slow"),
        Command::new("memory", -2, 0, (2, 2, 1), Handler::Shard(memory, Multi::None), "@slow"),
        Command::new(
            "debug",
            -2,
            ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED,
            (0, 0, 0),
            Handler::Conn(debug),
            "@admin @slow @dangerous",
        ),
        Command::new("function", -2, 0, (0, 0, 0), Handler::Conn(function), "@slow"),
    ]
}

// ------------------------------------------------------------------ subcommands

/// A container's subcommand, as COMMAND prints it and as arity checks use it.
pub struct Sub {
    /// `container|sub`, lower-case.
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    pub keys: (i32, i32, i32),
    pub acl: &'static str,
    /// Command tips, space separated.
    pub tips: &'static str,
}

const fn sub(name: &'static str, arity: i32, flags: u32, acl: &'static str) -> Sub {
    Sub { name, arity, flags, keys: (0, 0, 0), acl, tips: "" }
}
const fn tips(mut s: Sub, tips: &'static str) -> Sub {
    s.tips = tips;
    s
}
const fn keyed(mut s: Sub) -> Sub {
    s.keys = (2, 2, 1);
    s
}

const CNS: u32 = NOSCRIPT | LOADING | STALE;
const ACNS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const CONN_ACL: &str = "@slow @connection";
const ADMIN_CONN_ACL: &str = "@admin @slow @dangerous @connection";

static CLIENT_SUBS: &[Sub] = &[
    tips(sub("client|list", -2, ACNS, ADMIN_CONN_ACL), "nondeterministic_output"),
    tips(sub("client|info", 2, CNS, CONN_ACL), "nondeterministic_output"),
    sub("client|kill", -3, ACNS, ADMIN_CONN_ACL),
    sub("client|getredir", 2, CNS, CONN_ACL),
    sub("client|setname", 3, CNS, CONN_ACL),
    sub("client|id", 2, CNS, CONN_ACL),
    sub("client|getname", 2, CNS, CONN_ACL),
    sub("client|no-evict", 3, ACNS, ADMIN_CONN_ACL),
    sub("client|no-touch", 3, CNS | FAST, "@fast @connection"),
    sub("client|setinfo", 4, CNS, CONN_ACL),
    sub("client|help", 2, LOADING | STALE, CONN_ACL),
];

static COMMAND_SUBS: &[Sub] = &[
    tips(sub("command|list", -2, LOADING | STALE, CONN_ACL), "nondeterministic_output_order"),
    tips(sub("command|docs", -2, LOADING | STALE, CONN_ACL), "nondeterministic_output_order"),
    sub("command|getkeys", -4, LOADING | STALE, CONN_ACL),
    tips(sub("command|info", -2, LOADING | STALE, CONN_ACL), "nondeterministic_output_order"),
    sub("command|help", 2, LOADING | STALE, CONN_ACL),
    sub("command|count", 2, LOADING | STALE, CONN_ACL),
];

const OBJ_ACL: &str = "@keyspace @read @slow";
static OBJECT_SUBS: &[Sub] = &[
    tips(keyed(sub("object|encoding", 3, READONLY, OBJ_ACL)), "nondeterministic_output"),
    tips(keyed(sub("object|freq", 3, READONLY, OBJ_ACL)), "nondeterministic_output"),
    tips(keyed(sub("object|refcount", 3, READONLY, OBJ_ACL)), "nondeterministic_output"),
    tips(keyed(sub("object|idletime", 3, READONLY, OBJ_ACL)), "nondeterministic_output"),
    sub("object|help", 2, LOADING | STALE, "@keyspace @slow"),
];

static MEMORY_SUBS: &[Sub] = &[
    keyed(sub("memory|usage", -3, READONLY, "@read @slow")),
    tips(
        sub("memory|doctor", 2, 0, "@slow"),
        "nondeterministic_output request_policy:all_shards response_policy:special",
    ),
    sub("memory|help", 2, LOADING | STALE, "@slow"),
    tips(
        sub("memory|malloc-stats", 2, 0, "@slow"),
        "nondeterministic_output request_policy:all_shards response_policy:special",
    ),
    tips(sub("memory|purge", 2, 0, "@slow"), "request_policy:all_shards response_policy:all_succeeded"),
];

static FUNCTION_SUBS: &[Sub] = &[
    tips(
        sub("function|flush", -2, WRITE | NOSCRIPT, "@write @slow @scripting"),
        "request_policy:all_shards response_policy:all_succeeded",
    ),
    tips(sub("function|list", -2, NOSCRIPT, "@slow @scripting"), "nondeterministic_output_order"),
    sub("function|help", 2, LOADING | STALE, "@slow @scripting"),
];

static CONFIG_SUBS: &[Sub] = &[
    tips(
        sub("config|set", -4, ACNS, "@admin @slow @dangerous"),
        "request_policy:all_nodes response_policy:all_succeeded",
    ),
    sub("config|get", -3, ACNS, "@admin @slow @dangerous"),
    sub("config|resetstat", 2, ACNS, "@admin @slow @dangerous"),
    sub("config|help", 2, LOADING | STALE, "@slow"),
    sub("config|rewrite", 2, ACNS, "@admin @slow @dangerous"),
];

/// The subcommands of a container command (empty for plain commands).
pub fn subcommands(container: &str) -> &'static [Sub] {
    match container {
        "client" => CLIENT_SUBS,
        "command" => COMMAND_SUBS,
        "object" => OBJECT_SUBS,
        "memory" => MEMORY_SUBS,
        "function" => FUNCTION_SUBS,
        "config" => CONFIG_SUBS,
        _ => &[],
    }
}

/// Finds `args[1]` among `container`'s subcommands and checks its arity, answering
/// Redis's error otherwise.
pub fn find_sub(out: &mut ReplyBuf, container: &str, args: &[&[u8]]) -> Option<&'static Sub> {
    let name = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    let prefix = container.len() + 1;
    let Some(s) = subcommands(container).iter().find(|s| s.name[prefix..] == *name) else {
        let given: String = String::from_utf8_lossy(args[1]).chars().take(128).collect();
        out.error(&format!("ERR unknown subcommand '{given}'. Try {} HELP.", container.to_ascii_uppercase()));
        return None;
    };
    let argc = args.len() as i32;
    if (s.arity > 0 && argc != s.arity) || argc < -s.arity {
        out.error(&super::arity_error(s.name));
        return None;
    }
    Some(s)
}

/// A help reply: the header line, then `lines`, then HELP (Redis's `addReplyHelp`).
pub fn help_reply(out: &mut ReplyBuf, container: &str, lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(format!("{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", container.to_ascii_uppercase()));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

// ------------------------------------------------------------------ connection

fn ping(ctx: &mut Ctx, args: &[&[u8]]) {
    match args.len() {
        1 => ctx.conn.out.simple("PONG"),
        2 => ctx.conn.out.bulk(args[1]),
        _ => ctx.conn.out.error(&super::arity_error("ping")),
    }
}

fn echo(ctx: &mut Ctx, args: &[&[u8]]) {
    ctx.conn.out.bulk(args[1]);
}

fn quit(ctx: &mut Ctx, _args: &[&[u8]]) {
    ctx.conn.out.ok();
    ctx.conn.close_after_reply();
}

/// RESET: back to db 0, no name, RESP2, and unauthenticated if a password is set.
fn reset(ctx: &mut Ctx, _args: &[&[u8]]) {
    ctx.conn.db = 0;
    ctx.conn.out.resp3 = false;
    ctx.conn.out.no_touch = false; // Redis 7.2's RESET clears CLIENT NO-TOUCH
    ctx.conn.name.clear();
    ctx.conn.authed = ctx.shard.cfg.requirepass.is_empty();
    ctx.conn.out.simple("RESET");
}

/// Checks a user/password pair: only the "default" user exists; without requirepass it
/// takes any password ("nopass").
fn check_credentials(shard: &Shard, user: &[u8], pass: &[u8]) -> bool {
    if user != b"default" {
        return false;
    }
    let required = &shard.cfg.requirepass;
    required.is_empty() || crate::util::constant_time_eq(required.as_bytes(), pass)
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn auth(ctx: &mut Ctx, args: &[&[u8]]) {
    if args.len() > 3 {
        OpStatus::Syntax.reply(&mut ctx.conn.out);
        return;
    }
    let (user, pass): (&[u8], &[u8]) = if args.len() == 2 {
        if ctx.shard.cfg.requirepass.is_empty() {
            ctx.conn.out.error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            );
            return;
        }
        (b"default", args[1])
    } else {
        (args[1], args[2])
    };
    if check_credentials(ctx.shard, user, pass) {
        ctx.conn.authed = true;
        ctx.conn.out.ok();
    } else {
        ctx.conn.out.error(WRONGPASS);
    }
}

/// Redis's client-name check: printable ASCII without spaces.
pub fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

pub const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

fn hello(ctx: &mut Ctx, args: &[&[u8]]) {
    let mut ver = 0;
    let mut next = 1;
    if args.len() >= 2 {
        match crate::util::parse_i64(args[1]) {
            None => {
                ctx.conn.out.error("ERR Protocol version is not an integer or out of range");
                return;
            }
            Some(v) if !(2..=3).contains(&v) => {
                ctx.conn.out.error("NOPROTO unsupported protocol version");
                return;
            }
            Some(v) => ver = v,
        }
        next = 2;
    }
    let mut creds: Option<(&[u8], &[u8])> = None;
    let mut name: Option<&[u8]> = None;
    let mut j = next;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args[j];
        if opt.eq_ignore_ascii_case(b"auth") && more >= 2 {
            creds = Some((args[j + 1], args[j + 2]));
            j += 3;
        } else if opt.eq_ignore_ascii_case(b"setname") && more >= 1 {
            name = Some(args[j + 1]);
            j += 2;
        } else {
            ctx.conn.out.error(&format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(opt)));
            return;
        }
    }
    if let Some((user, pass)) = creds {
        if !check_credentials(ctx.shard, user, pass) {
            ctx.conn.out.error(WRONGPASS);
            return;
        }
        ctx.conn.authed = true;
    }
    if !ctx.conn.authed {
        ctx.conn.out.error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        );
        return;
    }
    if let Some(n) = name {
        if !valid_name(n) {
            ctx.conn.out.error(BAD_NAME);
            return;
        }
        ctx.conn.name = n.to_vec();
    }
    if ver != 0 {
        ctx.conn.out.resp3 = ver == 3;
    }
    let out = &mut ctx.conn.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if out.resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(ctx.conn.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
}

fn select(ctx: &mut Ctx, args: &[&[u8]]) {
    match crate::util::parse_i64(args[1]) {
        None => OpStatus::NotInteger.reply(&mut ctx.conn.out),
        Some(n) if n < 0 || n as usize >= ctx.shard.dbs.len() => OpStatus::DbIndexOutOfRange.reply(&mut ctx.conn.out),
        Some(n) => {
            ctx.conn.db = n as usize;
            ctx.conn.out.ok();
        }
    }
}

/// DBSIZE: the sum of every shard's key count for the selected db.
fn dbsize(ctx: &mut Ctx, _args: &[&[u8]]) {
    let db = ctx.conn.db;
    ctx.broadcast(
        move |_| move |s: &mut Shard| s.dbs[db].len(),
        |lens: Vec<usize>, out| out.int(lens.iter().sum::<usize>() as i64),
    );
}

// ------------------------------------------------------------------ server

fn time(ctx: &mut Ctx, _args: &[&[u8]]) {
    let us = crate::shard::unix_us();
    ctx.conn.out.array(2);
    ctx.conn.out.bulk_int(us / 1_000_000);
    ctx.conn.out.bulk_int(us % 1_000_000);
}

/// LASTSAVE: Darter has not saved yet, so the start time (as Redis reports before its
/// first save).
fn lastsave(ctx: &mut Ctx, _args: &[&[u8]]) {
    ctx.conn.out.int(ctx.shard.g.started_unix_ms / 1000);
}

fn save(ctx: &mut Ctx, _args: &[&[u8]]) {
    ctx.conn.out.error("ERR snapshots are not supported yet");
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: raises the shutdown flag; every thread
/// sees it at its next loop turn (at most one timer tick away), closes its sockets and
/// ends, and the process exits 0. No reply on success, as in Redis.
fn shutdown(ctx: &mut Ctx, args: &[&[u8]]) {
    let (mut nosave, mut save, mut abort, mut flags) = (false, false, false, false);
    for a in &args[1..] {
        if a.eq_ignore_ascii_case(b"nosave") {
            nosave = true;
            flags = true;
        } else if a.eq_ignore_ascii_case(b"save") {
            save = true;
            flags = true;
        } else if a.eq_ignore_ascii_case(b"now") || a.eq_ignore_ascii_case(b"force") {
            flags = true;
        } else if a.eq_ignore_ascii_case(b"abort") {
            abort = true;
        } else {
            OpStatus::Syntax.reply(&mut ctx.conn.out);
            return;
        }
    }
    if (abort && flags) || (nosave && save) {
        OpStatus::Syntax.reply(&mut ctx.conn.out);
        return;
    }
    if abort {
        ctx.conn.out.error("ERR No shutdown in progress.");
        return;
    }
    log::warn!("user requested shutdown (client id {})", ctx.conn.id);
    crate::runtime::request_shutdown(&ctx.shard.g);
    ctx.conn.close_after_reply();
}

// ------------------------------------------------------------------ keyed introspection

const OBJECT_HELP: &[&str] = &[
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
];

/// Redis's shared integers: values 0..10000 are one shared object (refcount INT_MAX)
/// unless the eviction policy needs per-key LRU/LFU data.
const OBJ_SHARED_INTEGERS: i64 = 10000;

/// Redis 7.0's error for OBJECT FREQ without an LFU maxmemory-policy (object.c).
const NO_LFU_ERROR: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// Darter's error for OBJECT FREQ under an LFU maxmemory-policy: it keeps no
/// frequency counter (cache mode ranks keys by recency within their bucket).
const NO_FREQ_ERROR: &str = "ERR Darter does not track access frequency under any maxmemory policy; OBJECT IDLETIME gives the time since the last access.";

/// OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ <key>, on the key's shard; does not touch
/// the key (Redis's `LOOKUP_NOTOUCH`).
///
/// IDLETIME is the key's access stamp read back (`store::idle_seconds`: exact to the
/// second up to a minute or two, then within ~11%); under an LFU maxmemory-policy it
/// is Redis's error, as clients expect (the stamp is kept under every policy). FREQ:
/// Redis's error without an LFU policy; with one, Darter's own error, as it keeps no
/// frequency counter to report.
fn object(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let Some(s) = find_sub(out, "object", args) else { return };
    let sub = &s.name[7..];
    if sub == "help" {
        help_reply(out, "object", OBJECT_HELP);
        return;
    }
    let now = ctx.now_ms;
    let policy = ctx.shard.cfg.maxmemory_policy;
    // Redis shares integers unless a maxmemory LRU/LFU policy needs per-key data.
    let shared_ok = ctx.shard.cfg.maxmemory == 0 || !(policy.contains("lru") || policy.contains("lfu"));
    let db = ctx.db_peek();
    let Some(idle_s) = db.idle_seconds(args[2], now) else {
        out.null();
        return;
    };
    let Some(e) = db.lookup(args[2], now) else {
        out.null();
        return;
    };
    match sub {
        "encoding" => out.bulk(e.value.encoding().as_bytes()),
        "refcount" => {
            let shared = e.value.as_int().is_some_and(|n| (0..OBJ_SHARED_INTEGERS).contains(&n)) && shared_ok;
            out.int(if shared { i32::MAX as i64 } else { 1 });
        }
        "idletime" => {
            if policy.contains("lfu") {
                out.error(
                    "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
                );
            } else {
                out.int(idle_s as i64);
            }
        }
        _ => out.error(if policy.contains("lfu") { NO_FREQ_ERROR } else { NO_LFU_ERROR }),
    }
}

const MEMORY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
];

/// MEMORY USAGE <key> [SAMPLES n] (on the key's shard), DOCTOR, MALLOC-STATS, PURGE.
fn memory(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let Some(s) = find_sub(out, "memory", args) else { return };
    match &s.name[7..] {
        "usage" => {
            let mut j = 3;
            while j < args.len() {
                if args[j].eq_ignore_ascii_case(b"samples") && j + 1 < args.len() {
                    match crate::util::parse_i64(args[j + 1]) {
                        Some(n) if n >= 0 => {}
                        Some(_) => {
                            OpStatus::Syntax.reply(out);
                            return;
                        }
                        None => {
                            OpStatus::NotInteger.reply(out);
                            return;
                        }
                    }
                    j += 2;
                } else {
                    OpStatus::Syntax.reply(out);
                    return;
                }
            }
            // Darter's own accounting (`Db::memory_usage`), not Redis's object sizes.
            // Does not touch the key (Redis reads it without a lookup).
            let now = ctx.now_ms;
            let db = ctx.db_peek();
            match db.lookup(args[2], now) {
                None => out.null(),
                Some(_) => out.int(db.memory_usage(args[2]).unwrap_or(0) as i64),
            }
        }
        "doctor" => out.verbatim(
            "txt",
            b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.",
        ),
        "malloc-stats" => out.verbatim("txt", b"Stats not supported for the current allocator"),
        "purge" => out.ok(),
        _ => help_reply(out, "memory", MEMORY_HELP),
    }
}

// ------------------------------------------------------------------ DEBUG / FUNCTION

const DEBUG_HELP: &[&str] = &[
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "    Dangerous: should be used only for testing the replication subsystem.",
    "JMAP",
    "    Accepted for compatibility; does nothing.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Not supported by Darter.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
];

/// C `atoi`: optional blanks and sign, then leading digits; 0 if none.
fn atoi(s: &[u8]) -> i64 {
    let t = std::str::from_utf8(s).unwrap_or("").trim_start();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).take(18).collect();
    let v: i64 = digits.parse().unwrap_or(0);
    if neg { -v } else { v }
}

/// C `strtod` on a whole argument, 0 when it does not parse (DEBUG SLEEP's leniency).
fn strtod_lenient(s: &[u8]) -> f64 {
    std::str::from_utf8(s).ok().and_then(|t| t.trim().parse::<f64>().ok()).unwrap_or(0.0)
}

fn debug(ctx: &mut Ctx, args: &[&[u8]]) {
    let sub = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    let argc = args.len();
    match (sub.as_str(), argc) {
        ("help", 2) => help_reply(&mut ctx.conn.out, "debug", DEBUG_HELP),
        ("sleep", 3) => {
            // Redis blocks the whole server; Darter blocks this thread.
            let secs = strtod_lenient(args[2]);
            if secs > 0.0 && secs.is_finite() {
                std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(86_400.0)));
            }
            ctx.conn.out.ok();
        }
        ("set-active-expire", 3) => {
            let on = atoi(args[2]) != 0;
            ctx.broadcast(move |_| move |s: &mut Shard| s.cfg.active_expire = on, |_, out| out.ok());
        }
        ("jmap", _) | ("change-repl-id", 2) => ctx.conn.out.ok(),
        ("log", 3) => {
            log::warn!("DEBUG LOG: {}", String::from_utf8_lossy(args[2]));
            ctx.conn.out.ok();
        }
        ("reload", _) => ctx.conn.out.error("ERR DEBUG RELOAD not supported"),
        ("object", 3) => {
            let key = args[2].to_vec();
            let db = ctx.conn.db;
            let shard = crate::shard::shard_of(&key, ctx.shard.nshards);
            let job = move |s: &mut Shard| -> Option<String> {
                let now = crate::shard::unix_ms();
                // Like Redis's DEBUG OBJECT, leaves the key's access time alone.
                let d = &mut s.dbs[db];
                d.set_access(now, false);
                let idle_s = d.idle_seconds(&key, now).unwrap_or(0);
                d.lookup(&key, now).map(|e| {
                    let len = e.value.len();
                    let refcount = if e.value.as_int().is_some_and(|n| (0..OBJ_SHARED_INTEGERS).contains(&n)) {
                        i32::MAX as i64
                    } else {
                        1
                    };
                    format!(
                        "Value at:{:p} refcount:{refcount} encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{idle_s}",
                        e.value as *const _,
                        e.value.encoding(),
                        len + 1,
                        // Redis's 24-bit LRU clock (seconds) at the last access.
                        (now / 1000 - idle_s as i64) & ((1 << 24) - 1),
                    )
                })
            };
            ctx.on_shard(shard, job, |r, out| match r {
                Some(line) => out.simple(line),
                None => out.error("ERR no such key"),
            });
        }
        ("protocol", 3) => debug_protocol(&mut ctx.conn.out, args[2]),
        _ => ctx.conn.out.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(args[1])
        )),
    }
}

/// DEBUG PROTOCOL <type>: one value of each RESP type, as Redis sends it.
#[allow(clippy::approx_constant)] // Redis's test double is 3.141
fn debug_protocol(out: &mut ReplyBuf, name: &[u8]) {
    match String::from_utf8_lossy(name).to_ascii_lowercase().as_str() {
        "string" => out.bulk(b"Hello World"),
        "integer" => out.int(12345),
        "double" => out.double(3.141),
        "bignum" => out.big_number(b"1234567999999999999999999999999999999"),
        "null" => out.null(),
        "array" => {
            out.array(3);
            for i in 0..3 {
                out.int(i);
            }
        }
        "set" => {
            out.set(3);
            for i in 0..3 {
                out.int(i);
            }
        }
        "map" => {
            out.map(3);
            for i in 0..3 {
                out.int(i);
                out.bool(i == 1);
            }
        }
        "attrib" => {
            if out.resp3 {
                out.buf.extend_from_slice(b"|1\r\n");
                out.bulk(b"key-popularity");
                out.array(2);
                out.bulk(b"key:123");
                out.int(90);
            }
            out.bulk(b"Some real reply following the attribute");
        }
        "push" => {
            if !out.resp3 {
                out.error("ERR RESP2 is not supported by this command");
                return;
            }
            out.push(2);
            out.bulk(b"server-cpu-usage");
            out.int(42);
            out.bulk(b"Some real reply following the push reply");
        }
        "true" => out.bool(true),
        "false" => out.bool(false),
        "verbatim" => out.verbatim("txt", b"This is a verbatim\nstring"),
        _ => out.error(
            "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
        ),
    }
}

const FUNCTION_HELP: &[&str] = &[
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "LIST [WITHCODE] [LIBRARYNAME <library_name_pattern>]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
];

/// FUNCTION FLUSH / LIST / HELP: Darter has no functions, so there is nothing to flush
/// or list.
fn function(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(s) = find_sub(&mut ctx.conn.out, "function", args) else { return };
    ctx.conn.last_cmd = s.name;
    match &s.name[9..] {
        "flush" => {
            if args.len() > 3 {
                ctx.conn
                    .out
                    .error("ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP.");
            } else if args.len() == 3
                && !args[2].eq_ignore_ascii_case(b"async")
                && !args[2].eq_ignore_ascii_case(b"sync")
            {
                ctx.conn.out.error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
            } else {
                ctx.conn.out.ok();
            }
        }
        "list" => ctx.conn.out.array(0),
        _ => help_reply(&mut ctx.conn.out, "function", FUNCTION_HELP),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every container's subcommands are named `container|sub`.
    #[test]
    fn subcommand_names() {
        for c in ["client", "command", "object", "memory", "function", "config"] {
            for s in subcommands(c) {
                assert!(s.name.starts_with(c) && s.name.as_bytes()[c.len()] == b'|', "{}", s.name);
            }
        }
    }
}
