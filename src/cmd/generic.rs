//! Keyspace ("generic") commands, with Redis 7.0's replies and errors.
//!
//! ```text
//!   per key, one shard      EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PTTL EXPIRETIME
//!                           PEXPIRETIME PERSIST TYPE MOVE
//!   keys split over shards  DEL UNLINK EXISTS TOUCH: SplitOps (a count per shard,
//!                           summed)
//!   two keys                RENAME RENAMENX COPY: one shard ─▶ shard handler
//!                                                 two shards ─▶ two-hop program under
//!                                                 VLL locks (read src │ move/copy);
//!                                                 both decide with one check function
//!   every shard             KEYS RANDOMKEY FLUSHDB FLUSHALL SWAPDB (broadcasts)
//!   shard after shard       SCAN: cursor = shard index << 52 | Dash traverse cursor
//! ```
//!
//! SCAN's cursor walks the shards one after the other; within a shard the position is
//! the Dash table's traverse cursor (see [`crate::store::Db::scan`]; it uses bits
//! 0..52, the shard index the 12 bits above). A call walks logical buckets until about
//! COUNT keys were visited (MATCH and TYPE filter them afterwards, so a call may return
//! fewer or none), and continues into the next shards while fewer were visited, so an
//! empty db answers cursor 0. The traverse order depends only on the key's hash, so a
//! key present for the whole iteration is returned exactly once and no key is
//! returned twice, whatever splits or flushes happen between calls (a flushed table
//! keeps its hash seed). The exception: SWAPDB puts another table, with another seed
//! and so another order, under the cursor; keys may then come back once more (at most
//! once per SWAPDB) or, if not present for the whole scan, be missed. Cost: O(COUNT)
//! keys plus at most COUNT × 256 empty buckets per shard step.
//!
//! Non-goals here: keyspace notifications, LRU/LFU touching, replication rewrites.
//! FLUSHDB/FLUSHALL/SWAPDB run on each shard without locks, so a multi-shard
//! transaction in flight may see one shard before and another after them.

use std::sync::Arc;

use super::{Command, DENYOOM, FAST, Handler, Multi, READONLY, WRITE};
use crate::op::{OpResult, OpStatus};
use crate::reply::ReplyBuf;
use crate::shard::{Shard, ShardCtx, shard_of, unix_ms};
use crate::store::{Entry, Key, SCAN_MAX_SHARDS, SCAN_POSITION_BITS};
use crate::tx::program::{Part, Slots, SplitOp, split_local, split_plan};
use crate::tx::{Ctx, Plan, Program, TxPlan};
use crate::util::{glob_match, parse_i64};
use crate::vll::LockKey;

pub fn commands() -> Vec<Command> {
    let w1 = Handler::Shard;
    vec![
        Command::new(
            "del",
            -2,
            WRITE,
            (1, -1, 1),
            w1(split_local::<Del>, Multi::Tx(split_plan::<Del>)),
            "@keyspace @write @slow",
        ),
        Command::new(
            "unlink",
            -2,
            WRITE | FAST,
            (1, -1, 1),
            w1(split_local::<Del>, Multi::Tx(split_plan::<Del>)),
            "@keyspace @write @fast",
        ),
        Command::new(
            "exists",
            -2,
            READONLY | FAST,
            (1, -1, 1),
            w1(split_local::<Exists>, Multi::Tx(split_plan::<Exists>)),
            "@keyspace @read @fast",
        ),
        Command::new(
            "touch",
            -2,
            READONLY | FAST,
            (1, -1, 1),
            w1(split_local::<Touch>, Multi::Tx(split_plan::<Touch>)),
            "@keyspace @read @fast",
        ),
        Command::new("expire", -3, WRITE | FAST, (1, 1, 1), w1(expire, Multi::None), "@keyspace @write @fast"),
        Command::new("pexpire", -3, WRITE | FAST, (1, 1, 1), w1(pexpire, Multi::None), "@keyspace @write @fast"),
        Command::new("expireat", -3, WRITE | FAST, (1, 1, 1), w1(expireat, Multi::None), "@keyspace @write @fast"),
        Command::new("pexpireat", -3, WRITE | FAST, (1, 1, 1), w1(pexpireat, Multi::None), "@keyspace @write @fast"),
        Command::new("ttl", 2, READONLY | FAST, (1, 1, 1), w1(ttl, Multi::None), "@keyspace @read @fast"),
        Command::new("pttl", 2, READONLY | FAST, (1, 1, 1), w1(pttl, Multi::None), "@keyspace @read @fast"),
        Command::new("expiretime", 2, READONLY | FAST, (1, 1, 1), w1(expiretime, Multi::None), "@keyspace @read @fast"),
        Command::new(
            "pexpiretime",
            2,
            READONLY | FAST,
            (1, 1, 1),
            w1(pexpiretime, Multi::None),
            "@keyspace @read @fast",
        ),
        Command::new("persist", 2, WRITE | FAST, (1, 1, 1), w1(persist, Multi::None), "@keyspace @write @fast"),
        Command::new("type", 2, READONLY | FAST, (1, 1, 1), w1(type_, Multi::None), "@keyspace @read @fast"),
        Command::new("rename", 3, WRITE, (1, 2, 1), w1(rename, Multi::Tx(rename_plan)), "@keyspace @write @slow"),
        Command::new(
            "renamenx",
            3,
            WRITE | FAST,
            (1, 2, 1),
            w1(renamenx, Multi::Tx(rename_plan)),
            "@keyspace @write @fast",
        ),
        Command::new("copy", -3, WRITE | DENYOOM, (1, 2, 1), w1(copy, Multi::Tx(copy_plan)), "@keyspace @write @slow"),
        Command::new("move", 3, WRITE | FAST, (1, 1, 1), w1(move_, Multi::None), "@keyspace @write @fast"),
        Command::new("keys", 2, READONLY, (0, 0, 0), Handler::Conn(keys), "@keyspace @read @slow @dangerous"),
        Command::new("randomkey", 1, READONLY, (0, 0, 0), Handler::Conn(randomkey), "@keyspace @read @slow"),
        Command::new("scan", -2, READONLY, (0, 0, 0), Handler::Conn(scan), "@keyspace @read @slow"),
        Command::new("flushdb", -1, WRITE, (0, 0, 0), Handler::Conn(flushdb), "@keyspace @write @slow @dangerous"),
        Command::new("flushall", -1, WRITE, (0, 0, 0), Handler::Conn(flushall), "@keyspace @write @slow @dangerous"),
        Command::new("swapdb", 3, WRITE | FAST, (0, 0, 0), Handler::Conn(swapdb), "@keyspace @write @fast @dangerous"),
    ]
}

/// Parses an integer that must fit a C `int` (Redis's `getIntFromObject`).
fn parse_i32(s: &[u8]) -> Option<i32> {
    parse_i64(s).and_then(|n| i32::try_from(n).ok())
}

/// A db index for COPY/MOVE: an int, then in range.
fn parse_db_index(s: &[u8], dbnum: usize) -> OpResult<usize> {
    let n = parse_i32(s).ok_or(OpStatus::NotInteger)?;
    if n < 0 || n as usize >= dbnum {
        return Err(OpStatus::DbIndexOutOfRange);
    }
    Ok(n as usize)
}

// ------------------------------------------------------------------ DEL EXISTS TOUCH

/// The reply of DEL, EXISTS and TOUCH: the sum of the shards' counts.
fn sum_counts(parts: Vec<Part<i64>>, out: &mut ReplyBuf) {
    out.int(parts.iter().map(|p| p.value).sum());
}

/// DEL and UNLINK (values are freed at once either way): keys deleted.
pub struct Del;

impl SplitOp for Del {
    type Part = i64;

    fn run(ctx: &mut ShardCtx, args: &[&[u8]]) -> i64 {
        let now = ctx.now_ms;
        let mut n = 0;
        for k in &args[1..] {
            if ctx.db().lookup(k, now).is_some() {
                ctx.db().remove(k);
                n += 1;
            }
        }
        n
    }

    fn reduce(parts: Vec<Part<i64>>, _nkeys: usize, out: &mut ReplyBuf) {
        sum_counts(parts, out);
    }
}

/// EXISTS: keys that exist; repeated keys count every time.
pub struct Exists;

impl SplitOp for Exists {
    type Part = i64;

    fn run(ctx: &mut ShardCtx, args: &[&[u8]]) -> i64 {
        let now = ctx.now_ms;
        args[1..].iter().filter(|k| ctx.db().contains(k, now)).count() as i64
    }

    fn reduce(parts: Vec<Part<i64>>, _nkeys: usize, out: &mut ReplyBuf) {
        sum_counts(parts, out);
    }
}

/// TOUCH: like EXISTS, as a read (counts hits and misses) that touches the keys,
/// even in CLIENT NO-TOUCH mode (Redis 7.2).
pub struct Touch;

impl SplitOp for Touch {
    type Part = i64;

    fn run(ctx: &mut ShardCtx, args: &[&[u8]]) -> i64 {
        let now = ctx.now_ms;
        args[1..].iter().filter(|k| ctx.db_touch().lookup_read(k, now).is_some()).count() as i64
    }

    fn reduce(parts: Vec<Part<i64>>, _nkeys: usize, out: &mut ReplyBuf) {
        sum_counts(parts, out);
    }
}

// ------------------------------------------------------------------------- EXPIRE

const EXPIRE_NX: u8 = 1;
const EXPIRE_XX: u8 = 2;
const EXPIRE_GT: u8 = 4;
const EXPIRE_LT: u8 = 8;

/// The NX/XX/GT/LT options of the EXPIRE family (Redis's
/// `parseExtendedExpireArgumentsOrReply`), or the error reply.
fn parse_expire_flags(opts: &[&[u8]]) -> Result<u8, Vec<u8>> {
    let mut flags = 0;
    for o in opts {
        flags |= match o.to_ascii_lowercase().as_slice() {
            b"nx" => EXPIRE_NX,
            b"xx" => EXPIRE_XX,
            b"gt" => EXPIRE_GT,
            b"lt" => EXPIRE_LT,
            _ => {
                let mut e = b"ERR Unsupported option ".to_vec();
                e.extend_from_slice(o);
                return Err(e);
            }
        };
    }
    if flags & EXPIRE_NX != 0 && flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT) != 0 {
        return Err(b"ERR NX and XX, GT or LT options at the same time are not compatible".to_vec());
    }
    if flags & EXPIRE_GT != 0 && flags & EXPIRE_LT != 0 {
        return Err(b"ERR GT and LT options at the same time are not compatible".to_vec());
    }
    Ok(flags)
}

/// The absolute deadline in ms for an EXPIRE-family argument, or None on overflow
/// (Redis: "invalid expire time"). `basetime` is 0 for the *AT variants.
fn expire_deadline(when: i64, seconds: bool, basetime: i64) -> Option<i64> {
    let when = if seconds { when.checked_mul(1000)? } else { when };
    if when > i64::MAX - basetime {
        return None;
    }
    Some(when + basetime)
}

/// Whether the NX/XX/GT/LT conditions let a deadline `when` replace `current`
/// (0 = the key has none).
fn expire_allowed(flags: u8, current: i64, when: i64) -> bool {
    let has = current != 0;
    if flags & EXPIRE_NX != 0 && has {
        return false;
    }
    if flags & EXPIRE_XX != 0 && !has {
        return false;
    }
    // No deadline counts as an infinite one: GT always fails, LT always passes.
    if flags & EXPIRE_GT != 0 && (!has || when <= current) {
        return false;
    }
    if flags & EXPIRE_LT != 0 && has && when >= current {
        return false;
    }
    true
}

fn expire_generic(
    ctx: &mut ShardCtx,
    args: &[&[u8]],
    out: &mut ReplyBuf,
    relative: bool,
    seconds: bool,
    name: &'static str,
) {
    let flags = match parse_expire_flags(&args[3..]) {
        Ok(f) => f,
        Err(e) => return out.error_bytes(&e),
    };
    let Some(when) = parse_i64(args[2]) else { return OpStatus::NotInteger.reply(out) };
    let now = ctx.now_ms;
    let Some(when) = expire_deadline(when, seconds, if relative { now } else { 0 }) else {
        return OpStatus::InvalidExpireTime(name).reply(out);
    };
    let key = args[1];
    let db = ctx.db();
    let Some(e) = db.lookup(key, now) else { return out.int(0) };
    if !expire_allowed(flags, e.expire_at_ms, when) {
        return out.int(0);
    }
    if when <= now {
        // A deadline in the past deletes the key (as a DEL, not an expiry).
        db.remove(key);
    } else {
        db.set_expire(key, when);
    }
    out.int(1);
}

fn expire(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    expire_generic(ctx, args, out, true, true, "expire");
}

fn pexpire(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    expire_generic(ctx, args, out, true, false, "pexpire");
}

fn expireat(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    expire_generic(ctx, args, out, false, true, "expireat");
}

fn pexpireat(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    expire_generic(ctx, args, out, false, false, "pexpireat");
}

/// The TTL family's reply for a live key with deadline `deadline` (0 = none): -1, or the
/// remaining (or absolute) time, in ms or rounded to seconds.
fn ttl_value(deadline: i64, now: i64, ms: bool, absolute: bool) -> i64 {
    if deadline == 0 {
        return -1;
    }
    let t = if absolute { deadline } else { deadline - now }.max(0);
    if ms { t } else { ((t as i128 + 500) / 1000) as i64 }
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME: a read that does not touch the key (Redis's
/// `LOOKUP_NOTOUCH`).
fn ttl_generic(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf, ms: bool, absolute: bool) {
    let now = ctx.now_ms;
    match ctx.db_peek().lookup_read(args[1], now) {
        None => out.int(-2),
        Some(e) => out.int(ttl_value(e.expire_at_ms, now, ms, absolute)),
    }
}

fn ttl(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    ttl_generic(ctx, args, out, false, false);
}

fn pttl(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    ttl_generic(ctx, args, out, true, false);
}

fn expiretime(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    ttl_generic(ctx, args, out, false, true);
}

fn pexpiretime(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    ttl_generic(ctx, args, out, true, true);
}

fn persist(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let now = ctx.now_ms;
    let db = ctx.db();
    let had = matches!(db.lookup(args[1], now), Some(e) if e.expire_at_ms != 0);
    if had {
        db.set_expire(args[1], 0);
    }
    out.int(had as i64);
}

/// TYPE: a read that does not touch the key (Redis's `LOOKUP_NOTOUCH`).
fn type_(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let now = ctx.now_ms;
    match ctx.db_peek().lookup_read(args[1], now) {
        None => out.simple("none"),
        Some(e) => out.simple(e.value.type_name()),
    }
}

// ------------------------------------------------------------------------- RENAME

/// RENAME's decision from what it found, written once for both paths: the source's
/// absence is an error; `Ok(false)`: reply without moving (the same key, or NX and the
/// destination exists); `Ok(true)`: move.
fn rename_check(src_found: bool, same_key: bool, dst_found: bool, nx: bool) -> OpResult<bool> {
    if !src_found {
        return Err(OpStatus::NoSuchKey);
    }
    Ok(!(same_key || (nx && dst_found)))
}

/// RENAME's reply (OK) or RENAMENX's (1 if moved, else 0).
fn rename_reply(nx: bool, moved: bool, out: &mut ReplyBuf) {
    if nx { out.int(moved as i64) } else { out.ok() }
}

/// Writes a moved or copied entry (value and deadline) under `key` in `db` of a shard
/// (the db's clock is set first: jobs and COPY's other db have no ShardCtx for it).
fn put_entry(s: &mut Shard, db: usize, key: &[u8], e: Entry) {
    s.dbs[db].set_access(unix_ms(), true);
    s.dbs[db].set(key, e.value, e.expire_at_ms);
}

/// RENAME / RENAMENX with both keys in this shard.
fn rename_generic(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf, nx: bool) {
    let (src, dst) = (args[1], args[2]);
    let now = ctx.now_ms;
    let db = ctx.db();
    let found = db.lookup(src, now).is_some();
    let same = src == dst;
    // Looked up only where Redis looks it up: RENAMENX of an existing source elsewhere.
    let dst_found = found && !same && nx && db.lookup(dst, now).is_some();
    match rename_check(found, same, dst_found, nx) {
        Err(status) => status.reply(out),
        Ok(false) => rename_reply(nx, false, out),
        Ok(true) => {
            let e = db.remove(src).expect("looked up above");
            db.set(dst, e.value, e.expire_at_ms);
            rename_reply(nx, true, out);
        }
    }
}

fn rename(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    rename_generic(ctx, args, out, false);
}

fn renamenx(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    rename_generic(ctx, args, out, true);
}

/// RENAME / RENAMENX across two shards, under exclusive locks on both keys:
/// hop 0 copies the source entry (and, for NX, checks the destination); hop 1 deletes
/// the source and writes the destination with the source's deadline.
struct RenameProgram {
    src: Key,
    dst: Key,
    src_shard: usize,
    dst_shard: usize,
    db: usize,
    nx: bool,
    entry: Slots<Option<Entry>>,
    dst_found: Slots<bool>,
    moved: Slots<()>,
}

fn rename_plan(cmd: &'static Command, args: &[&[u8]], db: usize, nshards: usize) -> TxPlan {
    let (src, dst): (Key, Key) = (args[1].into(), args[2].into());
    let (src_shard, dst_shard) = (shard_of(&src, nshards), shard_of(&dst, nshards));
    debug_assert_ne!(src_shard, dst_shard, "same-shard renames run the shard handler");
    let locks = vec![
        (src_shard, vec![LockKey { key: src.clone(), exclusive: true }]),
        (dst_shard, vec![LockKey { key: dst.clone(), exclusive: true }]),
    ];
    let nx = cmd.name == "renamenx";
    let prog = RenameProgram {
        src,
        dst,
        src_shard,
        dst_shard,
        db,
        nx,
        entry: Slots::new(1),
        dst_found: Slots::new(1),
        moved: Slots::new(2),
    };
    (locks, Box::new(prog))
}

impl Program for RenameProgram {
    fn step(&mut self, hop: u32, out: &mut ReplyBuf) -> Plan {
        let db = self.db;
        match hop {
            0 => {
                let src = self.src.clone();
                let read =
                    self.entry.job(0, move |s: &mut Shard| s.dbs[db].lookup(&src, unix_ms()).map(|e| e.to_entry()));
                let mut jobs = vec![(self.src_shard, read)];
                if self.nx {
                    let dst = self.dst.clone();
                    jobs.push((
                        self.dst_shard,
                        self.dst_found.job(0, move |s: &mut Shard| s.dbs[db].contains(&dst, unix_ms())),
                    ));
                }
                Plan::Jobs { jobs, last: false }
            }
            1 => {
                let entry = self.entry.take(0);
                let dst_found = self.nx && self.dst_found.take(0);
                match rename_check(entry.is_some(), false, dst_found, self.nx) {
                    Err(status) => {
                        status.reply(out);
                        Plan::Done
                    }
                    Ok(false) => {
                        rename_reply(self.nx, false, out);
                        Plan::Done
                    }
                    Ok(true) => {
                        let entry = entry.expect("checked above");
                        let (src, dst) = (self.src.clone(), self.dst.clone());
                        let jobs = vec![
                            (self.src_shard, self.moved.job(0, move |s: &mut Shard| drop(s.dbs[db].remove(&src)))),
                            (self.dst_shard, self.moved.job(1, move |s: &mut Shard| put_entry(s, db, &dst, entry))),
                        ];
                        Plan::Jobs { jobs, last: true }
                    }
                }
            }
            _ => {
                rename_reply(self.nx, true, out);
                Plan::Done
            }
        }
    }
}

// --------------------------------------------------------------------------- COPY

struct CopyOpts {
    replace: bool,
    dst_db: usize,
}

/// COPY's options after the two keys, checked left to right as Redis does.
fn parse_copy_opts(opts: &[&[u8]], src_db: usize, dbnum: usize) -> OpResult<CopyOpts> {
    let mut o = CopyOpts { replace: false, dst_db: src_db };
    let mut i = 0;
    while i < opts.len() {
        if opts[i].eq_ignore_ascii_case(b"replace") {
            o.replace = true;
        } else if opts[i].eq_ignore_ascii_case(b"db") && i + 1 < opts.len() {
            o.dst_db = parse_db_index(opts[i + 1], dbnum)?;
            i += 1;
        } else {
            return Err(OpStatus::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

/// COPY's decision from what it found, written once for both paths: the entry to
/// write, or None to reply 0 (no source, or the destination exists without REPLACE).
fn copy_check(src: Option<Entry>, dst_found: bool, replace: bool) -> Option<Entry> {
    src.filter(|_| replace || !dst_found)
}

/// COPY with both keys in this shard (any dbs).
fn copy(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let opts = match parse_copy_opts(&args[3..], ctx.db, ctx.shard.dbs.len()) {
        Ok(o) => o,
        Err(status) => return status.reply(out),
    };
    let (src, dst) = (args[1], args[2]);
    if opts.dst_db == ctx.db && src == dst {
        return OpStatus::SameObject.reply(out);
    }
    let now = ctx.now_ms;
    let Some(e) = ctx.db().lookup_read(src, now).map(|e| e.to_entry()) else { return out.int(0) };
    let target = &mut ctx.shard.dbs[opts.dst_db];
    target.set_access(now, true); // another db than ctx's: its clock for the new key
    let dst_found = !opts.replace && target.lookup(dst, now).is_some();
    match copy_check(Some(e), dst_found, opts.replace) {
        Some(e) => {
            target.set(dst, e.value, e.expire_at_ms);
            out.int(1);
        }
        None => out.int(0),
    }
}

/// COPY across two shards: hop 0 parses the options on the shards (they know the
/// number of dbs), copies the source entry and checks the destination; hop 1 writes
/// the destination. The source is locked shared, the destination exclusive.
struct CopyProgram {
    src: Key,
    dst: Key,
    opts: Vec<Vec<u8>>,
    src_shard: usize,
    dst_shard: usize,
    db: usize,
    read: Slots<CopyRead>,
    check: Slots<Option<(usize, bool)>>,
    written: Slots<()>,
}

fn copy_plan(_cmd: &'static Command, args: &[&[u8]], db: usize, nshards: usize) -> TxPlan {
    let (src, dst): (Key, Key) = (args[1].into(), args[2].into());
    let (src_shard, dst_shard) = (shard_of(&src, nshards), shard_of(&dst, nshards));
    let locks = vec![
        (src_shard, vec![LockKey { key: src.clone(), exclusive: false }]),
        (dst_shard, vec![LockKey { key: dst.clone(), exclusive: true }]),
    ];
    let opts = args[3..].iter().map(|a| a.to_vec()).collect();
    let prog = CopyProgram {
        src,
        dst,
        opts,
        src_shard,
        dst_shard,
        db,
        read: Slots::new(1),
        check: Slots::new(1),
        written: Slots::new(1),
    };
    (locks, Box::new(prog))
}

/// The source shard's part of COPY: REPLACE, and the source entry if any.
type CopyRead = OpResult<(bool, Option<Entry>)>;

impl Program for CopyProgram {
    fn step(&mut self, hop: u32, out: &mut ReplyBuf) -> Plan {
        let db = self.db;
        match hop {
            0 => {
                let (src, opts) = (self.src.clone(), self.opts.clone());
                let read = self.read.job(0, move |s: &mut Shard| {
                    let opts: Vec<&[u8]> = opts.iter().map(|o| o.as_slice()).collect();
                    parse_copy_opts(&opts, db, s.dbs.len())
                        .map(|o| (o.replace, s.dbs[db].lookup_read(&src, unix_ms()).map(|e| e.to_entry())))
                });
                let (dst, opts) = (self.dst.clone(), self.opts.clone());
                let check = self.check.job(0, move |s: &mut Shard| {
                    let opts: Vec<&[u8]> = opts.iter().map(|o| o.as_slice()).collect();
                    parse_copy_opts(&opts, db, s.dbs.len())
                        .map(|o| (o.dst_db, s.dbs[o.dst_db].contains(&dst, unix_ms())))
                        .ok()
                });
                Plan::Jobs { jobs: vec![(self.src_shard, read), (self.dst_shard, check)], last: false }
            }
            1 => {
                let (replace, entry) = match self.read.take(0) {
                    Err(status) => {
                        status.reply(out);
                        return Plan::Done;
                    }
                    Ok(r) => r,
                };
                let (dst_db, dst_found) = self.check.take(0).expect("both shards parse the same options");
                let Some(entry) = copy_check(entry, dst_found, replace) else {
                    out.int(0);
                    return Plan::Done;
                };
                let dst = self.dst.clone();
                let write = self.written.job(0, move |s: &mut Shard| put_entry(s, dst_db, &dst, entry));
                Plan::Jobs { jobs: vec![(self.dst_shard, write)], last: true }
            }
            _ => {
                out.int(1);
                Plan::Done
            }
        }
    }
}

// --------------------------------------------------------------------------- MOVE

fn move_(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let dst_db = match parse_db_index(args[2], ctx.shard.dbs.len()) {
        Ok(d) => d,
        Err(status) => return status.reply(out),
    };
    if dst_db == ctx.db {
        return OpStatus::SameObject.reply(out);
    }
    let (key, now) = (args[1], ctx.now_ms);
    if ctx.db().lookup(key, now).is_none() {
        return out.int(0);
    }
    if ctx.shard.dbs[dst_db].lookup(key, now).is_some() {
        return out.int(0);
    }
    let e = ctx.db().remove(key).expect("looked up above");
    ctx.shard.dbs[dst_db].set(key, e.value, e.expire_at_ms);
    out.int(1);
}

// --------------------------------------------------------------------------- KEYS

/// KEYS: every shard's matches, at most `keys_output_limit` in all.
fn keys(ctx: &mut Ctx, args: &[&[u8]]) {
    let db = ctx.conn.db;
    let pattern: Arc<[u8]> = args[1].into();
    let limit = ctx.shard.cfg.keys_output_limit;
    ctx.broadcast(
        move |_| {
            let pattern = pattern.clone();
            move |s: &mut Shard| {
                let all = &*pattern == b"*";
                let limit = s.cfg.keys_output_limit;
                let mut v: Vec<Key> = Vec::new();
                s.dbs[db].for_each_key(unix_ms(), |k, _| {
                    if v.len() < limit && (all || glob_match(&pattern, k, false)) {
                        v.push(k.into());
                    }
                });
                v
            }
        },
        move |parts: Vec<Vec<Key>>, out| {
            let n = parts.iter().map(|p| p.len()).sum::<usize>().min(limit);
            out.array(n);
            for k in parts.iter().flatten().take(n) {
                out.bulk(k);
            }
        },
    );
}

// ---------------------------------------------------------------------- RANDOMKEY

/// RANDOMKEY: every shard proposes a key; one is picked with odds by shard size.
fn randomkey(ctx: &mut Ctx, _args: &[&[u8]]) {
    let db = ctx.conn.db;
    let seed = ctx.shard.random();
    ctx.broadcast(
        move |_| {
            move |s: &mut Shard| {
                let seed = s.random();
                let k = s.dbs[db].random_key(unix_ms(), seed);
                (s.dbs[db].len(), k)
            }
        },
        move |proposals: Vec<(usize, Option<Key>)>, out| {
            let props: Vec<(usize, Key)> =
                proposals.into_iter().filter_map(|(n, k)| k.map(|k| (n.max(1), k))).collect();
            match pick_weighted(&props, seed) {
                Some(k) => out.bulk(k),
                None => out.null(),
            }
        },
    );
}

/// Picks one key, each with odds proportional to its weight.
fn pick_weighted(props: &[(usize, Key)], seed: u64) -> Option<&Key> {
    let total: u64 = props.iter().map(|p| p.0 as u64).sum();
    if total == 0 {
        return None;
    }
    let mut r = seed % total;
    for (n, k) in props {
        if r < *n as u64 {
            return Some(k);
        }
        r -= *n as u64;
    }
    None
}

// --------------------------------------------------------------------------- SCAN

/// A SCAN cursor, parsed like Redis's `strtoul` check: optional sign (a minus negates
/// modulo 2^64), decimal digits (none means 0), nothing else, no overflow.
fn parse_scan_cursor(s: &[u8]) -> Option<u64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        // strtoul consumes nothing: valid (0) only if nothing was there at all.
        return if s.is_empty() { Some(0) } else { None };
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

const POSITION_MASK: u64 = (1 << SCAN_POSITION_BITS) - 1;

// Every shard count the config allows fits the cursor's shard bits.
const _: () = assert!(crate::config::MAX_THREADS <= SCAN_MAX_SHARDS);

/// The cursor for `position` (a Dash traverse cursor) within `shard`.
fn encode_cursor(shard: usize, position: u64) -> u64 {
    debug_assert!(shard < SCAN_MAX_SHARDS && position <= POSITION_MASK);
    (shard as u64) << SCAN_POSITION_BITS | position
}

/// (shard, position) of a cursor.
fn decode_cursor(cursor: u64) -> (usize, u64) {
    ((cursor >> SCAN_POSITION_BITS) as usize, cursor & POSITION_MASK)
}

/// The cursor after a step on `shard` that ended at `next` (0: shard finished).
fn next_cursor(shard: usize, next: u64, nshards: usize) -> u64 {
    match next {
        0 if shard + 1 < nshards => encode_cursor(shard + 1, 0),
        0 => 0,
        p => encode_cursor(shard, p),
    }
}

struct ScanOpts {
    count: usize,
    pattern: Option<Vec<u8>>,
    type_name: Option<Vec<u8>>,
}

fn parse_scan_opts(opts: &[&[u8]]) -> OpResult<ScanOpts> {
    let mut o = ScanOpts { count: 10, pattern: None, type_name: None };
    let mut i = 0;
    while i < opts.len() {
        let has_value = i + 1 < opts.len();
        if opts[i].eq_ignore_ascii_case(b"count") && has_value {
            let n = parse_i64(opts[i + 1]).ok_or(OpStatus::NotInteger)?;
            if n < 1 {
                return Err(OpStatus::Syntax);
            }
            o.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if opts[i].eq_ignore_ascii_case(b"match") && has_value {
            o.pattern = if opts[i + 1] == b"*" { None } else { Some(opts[i + 1].to_vec()) };
        } else if opts[i].eq_ignore_ascii_case(b"type") && has_value {
            o.type_name = Some(opts[i + 1].to_vec());
        } else {
            return Err(OpStatus::Syntax);
        }
        i += 2;
    }
    Ok(o)
}

/// SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]: steps through the cursor's shard,
/// and on into the next shards while fewer than COUNT keys were visited.
fn scan(ctx: &mut Ctx, args: &[&[u8]]) {
    let out = &mut ctx.conn.out;
    let Some(cursor) = parse_scan_cursor(args[1]) else { return OpStatus::InvalidCursor.reply(out) };
    let opts = match parse_scan_opts(&args[2..]) {
        Ok(o) => o,
        Err(status) => return status.reply(out),
    };
    let nshards = ctx.shard.nshards;
    let (shard, pos) = decode_cursor(cursor);
    if shard >= nshards {
        // Not a cursor we handed out: nothing there.
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return;
    }
    let remaining = opts.count;
    let (db, opts) = (ctx.conn.db, Arc::new(opts));
    let prog = ScanProgram { db, shard, pos, remaining, nshards, opts, keys: Vec::new(), step: Slots::new(1) };
    ctx.run(Box::new(prog));
}

/// One SCAN call: a step per shard, shard after shard (no locks).
struct ScanProgram {
    db: usize,
    shard: usize,
    pos: u64,
    /// Keys still to visit in this call (COUNT minus the keys visited so far).
    remaining: usize,
    nshards: usize,
    opts: Arc<ScanOpts>,
    keys: Vec<Key>,
    /// The result of the current shard's step.
    step: Slots<ScanStep>,
}

/// What a shard's SCAN step gives back: matching keys, where to go on (0: shard
/// done), keys visited.
type ScanStep = (Vec<Key>, u64, usize);

/// One SCAN step over `db` of a shard, from `pos`, visiting about `count` keys.
fn scan_step(s: &mut Shard, db: usize, pos: u64, count: usize, opts: &ScanOpts) -> ScanStep {
    let now = unix_ms();
    let mut keys: Vec<Key> = Vec::new();
    let mut expired: Vec<Key> = Vec::new();
    let mut visited = 0;
    let next = s.dbs[db].scan(pos, count, |k, value, expire_at_ms| {
        visited += 1;
        if opts.pattern.as_ref().is_some_and(|p| !glob_match(p, k, false)) {
            return;
        }
        if expire_at_ms != 0 && expire_at_ms <= now {
            expired.push(k.into());
            return;
        }
        if opts.type_name.as_ref().is_some_and(|t| !t.eq_ignore_ascii_case(value.type_name().as_bytes())) {
            return;
        }
        keys.push(k.into());
    });
    for k in expired {
        s.dbs[db].lookup(&k, now); // passive expiry deletes it
    }
    (keys, next, visited)
}

impl Program for ScanProgram {
    fn step(&mut self, hop: u32, out: &mut ReplyBuf) -> Plan {
        if hop > 0 {
            let (keys, next, visited) = self.step.take(0);
            self.keys.extend(keys);
            self.remaining = self.remaining.saturating_sub(visited);
            let cursor = match next {
                0 if self.remaining > 0 && self.shard + 1 < self.nshards => {
                    self.shard += 1;
                    self.pos = 0;
                    None
                }
                next => Some(next_cursor(self.shard, next, self.nshards)),
            };
            if let Some(cursor) = cursor {
                let mut cur = Vec::with_capacity(20);
                crate::util::write_u64(&mut cur, cursor);
                out.array(2);
                out.bulk(&cur);
                out.array(self.keys.len());
                for k in &self.keys {
                    out.bulk(k);
                }
                return Plan::Done;
            }
        }
        let (db, pos, count, opts) = (self.db, self.pos, self.remaining, self.opts.clone());
        let job = self.step.job(0, move |s: &mut Shard| scan_step(s, db, pos, count, &opts));
        Plan::Jobs { jobs: vec![(self.shard, job)], last: true }
    }
}

// ------------------------------------------------------- FLUSHDB FLUSHALL SWAPDB

/// FLUSHDB/FLUSHALL's optional ASYNC|SYNC: true for ASYNC.
fn parse_flush_mode(args: &[&[u8]]) -> OpResult<bool> {
    match args {
        [_] => Ok(false),
        [_, m] if m.eq_ignore_ascii_case(b"sync") => Ok(false),
        [_, m] if m.eq_ignore_ascii_case(b"async") => Ok(true),
        _ => Err(OpStatus::Syntax),
    }
}

/// Keys above which FLUSH ... ASYNC frees the old table on a helper thread.
const LAZY_FREE_KEYS: usize = 64 * 1024;

/// Empties one db of a shard; large ones are freed in the background when `lazy`.
pub(super) fn flush_db(s: &mut Shard, db: usize, lazy: bool) {
    let d = &mut s.dbs[db];
    if lazy && d.len() > LAZY_FREE_KEYS {
        let old = d.take_data();
        let spawned = std::thread::Builder::new().name("lazyfree".into()).spawn(move || drop(old));
        if let Err(e) = spawned {
            log::warn!("lazy free thread: {e}; freeing inline");
        }
    } else {
        d.clear();
    }
}

fn flushdb(ctx: &mut Ctx, args: &[&[u8]]) {
    let lazy = match parse_flush_mode(args) {
        Ok(l) => l,
        Err(status) => return status.reply(&mut ctx.conn.out),
    };
    let db = ctx.conn.db;
    ctx.broadcast(move |_| move |s: &mut Shard| flush_db(s, db, lazy), |_, out| out.ok());
}

fn flushall(ctx: &mut Ctx, args: &[&[u8]]) {
    let lazy = match parse_flush_mode(args) {
        Ok(l) => l,
        Err(status) => return status.reply(&mut ctx.conn.out),
    };
    ctx.broadcast(
        move |_| {
            move |s: &mut Shard| {
                for db in 0..s.dbs.len() {
                    flush_db(s, db, lazy);
                }
            }
        },
        |_, out| out.ok(),
    );
}

fn swapdb(ctx: &mut Ctx, args: &[&[u8]]) {
    let out = &mut ctx.conn.out;
    let Some(a) = parse_i32(args[1]) else { return OpStatus::InvalidFirstDbIndex.reply(out) };
    let Some(b) = parse_i32(args[2]) else { return OpStatus::InvalidSecondDbIndex.reply(out) };
    let dbnum = ctx.shard.dbs.len();
    if a < 0 || b < 0 || a as usize >= dbnum || b as usize >= dbnum {
        return OpStatus::DbIndexOutOfRange.reply(out);
    }
    let (a, b) = (a as usize, b as usize);
    ctx.broadcast(move |_| move |s: &mut Shard| s.dbs.swap(a, b), |_, out| out.ok());
}

#[cfg(test)]
mod tests {
    use super::*;

    // Option conflicts and unknown options give Redis's errors, in Redis's order.
    #[test]
    fn expire_flags() {
        assert_eq!(parse_expire_flags(&[b"NX"]), Ok(EXPIRE_NX));
        assert_eq!(parse_expire_flags(&[b"gt", b"xx"]), Ok(EXPIRE_GT | EXPIRE_XX));
        let err = |o: &[&[u8]]| String::from_utf8(parse_expire_flags(o).unwrap_err()).unwrap();
        assert_eq!(err(&[b"nx", b"xx"]), "ERR NX and XX, GT or LT options at the same time are not compatible");
        assert_eq!(err(&[b"nx", b"lt"]), "ERR NX and XX, GT or LT options at the same time are not compatible");
        assert_eq!(err(&[b"xx", b"gt", b"lt"]), "ERR GT and LT options at the same time are not compatible");
        // An unknown option wins even after a conflict.
        assert_eq!(err(&[b"nx", b"xx", b"foo"]), "ERR Unsupported option foo");
    }

    // Unit conversion and the base time overflow like Redis's checks.
    #[test]
    fn deadlines() {
        assert_eq!(expire_deadline(10, true, 1000), Some(11_000));
        assert_eq!(expire_deadline(-5, false, 1000), Some(995));
        assert_eq!(expire_deadline(i64::MAX / 1000 + 1, true, 0), None);
        assert_eq!(expire_deadline(i64::MIN / 1000, true, 0), Some(i64::MIN / 1000 * 1000));
        assert_eq!(expire_deadline(i64::MAX, false, 0), Some(i64::MAX));
        assert_eq!(expire_deadline(i64::MAX, false, 1), None);
        assert_eq!(expire_deadline(i64::MIN, false, 1_700_000_000_000), Some(i64::MIN + 1_700_000_000_000));
    }

    // NX/XX/GT/LT treat "no deadline" as infinite.
    #[test]
    fn expire_conditions() {
        assert!(expire_allowed(EXPIRE_NX, 0, 5));
        assert!(!expire_allowed(EXPIRE_NX, 7, 5));
        assert!(!expire_allowed(EXPIRE_XX, 0, 5));
        assert!(!expire_allowed(EXPIRE_GT, 0, 5));
        assert!(expire_allowed(EXPIRE_GT, 4, 5));
        assert!(!expire_allowed(EXPIRE_GT, 5, 5));
        assert!(expire_allowed(EXPIRE_LT, 0, 5));
        assert!(!expire_allowed(EXPIRE_LT, 5, 5));
        assert!(expire_allowed(EXPIRE_LT | EXPIRE_XX, 6, 5));
    }

    // TTL rounds to the nearest second, never goes negative, and -1 means no deadline.
    #[test]
    fn ttl_rounding() {
        assert_eq!(ttl_value(0, 100, false, false), -1);
        assert_eq!(ttl_value(1_600, 100, false, false), 2);
        assert_eq!(ttl_value(1_599, 100, false, false), 1);
        assert_eq!(ttl_value(50, 100, true, false), 0);
        assert_eq!(ttl_value(2_000_000, 100, false, true), 2_000);
        assert_eq!(ttl_value(i64::MAX, 0, false, true), 9_223_372_036_854_776);
    }

    // Cursors parse like strtoul: sign, no spaces, no junk, no overflow.
    #[test]
    fn scan_cursors() {
        assert_eq!(parse_scan_cursor(b"0"), Some(0));
        assert_eq!(parse_scan_cursor(b""), Some(0));
        assert_eq!(parse_scan_cursor(b"+7"), Some(7));
        assert_eq!(parse_scan_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_scan_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_scan_cursor(b"18446744073709551616"), None);
        for bad in [&b"-"[..], b"+", b" 1", b"1x", b"0x1", b"abc"] {
            assert_eq!(parse_scan_cursor(bad), None, "{bad:?}");
        }
    }

    // A cursor walks shard 0..n in order and ends at 0; the shard sits in the bits the
    // Dash cursor leaves free, enough for every shard count the config allows.
    #[test]
    fn cursor_walk() {
        assert_eq!(decode_cursor(0), (0, 0));
        let c = next_cursor(0, 5, 3);
        assert_eq!(decode_cursor(c), (0, 5));
        assert_eq!(decode_cursor(next_cursor(0, 0, 3)), (1, 0));
        assert_eq!(next_cursor(2, 0, 3), 0);
        assert_eq!(decode_cursor(encode_cursor(4095, POSITION_MASK)), (4095, POSITION_MASK));
        assert_eq!(SCAN_MAX_SHARDS, 4096);
    }

    // SCAN's options: COUNT must be a positive integer; unknown words are syntax errors.
    #[test]
    fn scan_options() {
        let o = parse_scan_opts(&[b"MATCH", b"k*", b"count", b"5", b"TYPE", b"string"]).unwrap();
        assert_eq!(
            (o.count, o.pattern.as_deref(), o.type_name.as_deref()),
            (5, Some(&b"k*"[..]), Some(&b"string"[..]))
        );
        assert!(parse_scan_opts(&[b"match", b"*"]).unwrap().pattern.is_none());
        assert_eq!(parse_scan_opts(&[b"count", b"0"]).err(), Some(OpStatus::Syntax));
        assert_eq!(parse_scan_opts(&[b"count", b"x"]).err(), Some(OpStatus::NotInteger));
        assert_eq!(parse_scan_opts(&[b"count"]).err(), Some(OpStatus::Syntax));
        assert_eq!(parse_scan_opts(&[b"foo", b"1"]).err(), Some(OpStatus::Syntax));
    }

    // COPY's options are checked left to right: a bad DB before junk wins.
    #[test]
    fn copy_options() {
        let o = parse_copy_opts(&[b"db", b"3", b"REPLACE"], 0, 16).unwrap();
        assert_eq!((o.dst_db, o.replace), (3, true));
        assert_eq!(parse_copy_opts(&[b"db", b"99", b"foo"], 0, 16).err(), Some(OpStatus::DbIndexOutOfRange));
        assert_eq!(parse_copy_opts(&[b"foo", b"db", b"99"], 0, 16).err(), Some(OpStatus::Syntax));
        assert_eq!(parse_copy_opts(&[b"db"], 0, 16).err(), Some(OpStatus::Syntax));
        assert_eq!(parse_copy_opts(&[b"db", b"x"], 0, 16).err(), Some(OpStatus::NotInteger));
        assert_eq!(parse_copy_opts(&[b"db", b"-1"], 0, 16).err(), Some(OpStatus::DbIndexOutOfRange));
    }

    // RANDOMKEY's pick covers every proposal and respects weights.
    #[test]
    fn weighted_pick() {
        let props: Vec<(usize, Key)> = vec![(1, b"a"[..].into()), (3, b"b"[..].into())];
        let picks: Vec<&[u8]> = (0..4).map(|s| &**pick_weighted(&props, s).unwrap()).collect();
        assert_eq!(picks, vec![&b"a"[..], b"b", b"b", b"b"]);
        assert!(pick_weighted(&[], 1).is_none());
    }

    // FLUSH modes: none, SYNC or ASYNC in any case; anything else is a syntax error.
    #[test]
    fn flush_modes() {
        assert_eq!(parse_flush_mode(&[b"flushdb"]), Ok(false));
        assert_eq!(parse_flush_mode(&[b"flushdb", b"ASYNC"]), Ok(true));
        assert_eq!(parse_flush_mode(&[b"flushdb", b"sync"]), Ok(false));
        assert_eq!(parse_flush_mode(&[b"flushdb", b"foo"]), Err(OpStatus::Syntax));
        assert_eq!(parse_flush_mode(&[b"flushdb", b"async", b"x"]), Err(OpStatus::Syntax));
    }
}
