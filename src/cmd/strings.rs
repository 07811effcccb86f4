//! The STRING command family, with Redis 7.0's replies and error texts (`t_string.c`).
//!
//! ```text
//!   one key ──▶ shard handler (SET, GET, INCR, APPEND, SETRANGE, LCS on one shard...)
//!   MGET    ──▶ SplitOp `Mget`: each shard reads its keys (typed values), the reduce
//!               puts them back in key order
//!   MSET    ──▶ SplitOp `Mset`: each shard sets its pairs, the reply is OK
//!   MSETNX  ──▶ one shard: `op_any_exists` then `op_mset` inline; several: the same
//!               ops as two hops (existence everywhere under exclusive locks, then the
//!               sets only if no key exists)
//!   LCS     ──▶ one shard: `lcs_fetch` twice inline; two: one hop of `lcs_fetch` on
//!               each (shared locks), then the coordinator computes the LCS and replies
//! ```
//!
//! Error order follows Redis: option syntax, then argument values, then the key's type,
//! except where Redis does otherwise (GETEX validates the expire time after the lookup;
//! SET GET checks the type only after the expire time). Errors are [`OpStatus`]es,
//! rendered by `OpStatus::reply`. The key's type is checked by the store's typed
//! lookups (`Db::lookup_typed`, `Db::lookup_read_typed`: WRONGTYPE for a value of
//! another type), so every value these commands read is a string; MGET answers nil
//! for other types, LCS its own error.
//!
//! Encodings (OBJECT ENCODING) follow Redis: values stored from arguments take
//! `tryObjectEncoding`'s choice ([`Value::from_bytes`]); INCR/DECR results are `int`;
//! INCRBYFLOAT results are strings (`embstr` up to 44 bytes); APPEND/PREPEND/SETRANGE on
//! an existing key and SETRANGE on a new one make `raw`.
//!
//! Darter extension: PREPEND key value, APPEND's mirror image.

use std::borrow::Cow;

use super::{Command, DENYOOM, FAST, Handler, Multi, READONLY, WRITE};
use crate::container::ObjType;
use crate::op::{OpResult, OpStatus};
use crate::reply::ReplyBuf;
use crate::shard::{Shard, ShardCtx, shard_of, unix_ms};
use crate::store::Value;
use crate::tx::program::{self, Part, Share, Slots, SplitOp, split_local, split_plan};
use crate::tx::{Plan, Program, TxPlan};
use crate::util::{FloatErr, incr_by_float, parse_i64};

pub fn commands() -> Vec<Command> {
    let w = "@write @string @fast";
    let ws = "@write @string @slow";
    vec![
        Command::new("get", 2, READONLY | FAST, (1, 1, 1), Handler::Shard(get, Multi::None), "@read @string @fast"),
        Command::new("set", -3, WRITE | DENYOOM, (1, 1, 1), Handler::Shard(set, Multi::None), ws),
        Command::new("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), Handler::Shard(setnx, Multi::None), w),
        Command::new("setex", 4, WRITE | DENYOOM, (1, 1, 1), Handler::Shard(setex, Multi::None), ws),
        Command::new("psetex", 4, WRITE | DENYOOM, (1, 1, 1), Handler::Shard(psetex, Multi::None), ws),
        Command::new("getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), Handler::Shard(getset, Multi::None), w),
        Command::new("getdel", 2, WRITE | FAST, (1, 1, 1), Handler::Shard(getdel, Multi::None), w),
        Command::new("getex", -2, WRITE | FAST, (1, 1, 1), Handler::Shard(getex, Multi::None), w),
        Command::new(
            "mget",
            -2,
            READONLY | FAST,
            (1, -1, 1),
            Handler::Shard(split_local::<Mget>, Multi::Tx(split_plan::<Mget>)),
            "@read @string @fast",
        ),
        Command::new(
            "mset",
            -3,
            WRITE | DENYOOM,
            (1, -1, 2),
            Handler::Shard(split_local::<Mset>, Multi::Tx(split_plan::<Mset>)),
            ws,
        ),
        Command::new("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), Handler::Shard(msetnx, Multi::Tx(msetnx_plan)), ws),
        Command::new("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), Handler::Shard(incr, Multi::None), w),
        Command::new("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), Handler::Shard(decr, Multi::None), w),
        Command::new("incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), Handler::Shard(incrby, Multi::None), w),
        Command::new("decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), Handler::Shard(decrby, Multi::None), w),
        Command::new("incrbyfloat", 3, WRITE | DENYOOM | FAST, (1, 1, 1), Handler::Shard(incrbyfloat, Multi::None), w),
        Command::new("append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), Handler::Shard(append, Multi::None), w),
        Command::new("prepend", 3, WRITE | DENYOOM | FAST, (1, 1, 1), Handler::Shard(prepend, Multi::None), w),
        Command::new(
            "strlen",
            2,
            READONLY | FAST,
            (1, 1, 1),
            Handler::Shard(strlen, Multi::None),
            "@read @string @fast",
        ),
        Command::new("getrange", 4, READONLY, (1, 1, 1), Handler::Shard(getrange, Multi::None), "@read @string @slow"),
        Command::new("substr", 4, READONLY, (1, 1, 1), Handler::Shard(getrange, Multi::None), "@read @string @slow"),
        Command::new("setrange", 4, WRITE | DENYOOM, (1, 1, 1), Handler::Shard(setrange, Multi::None), ws),
        Command::new("lcs", -3, READONLY, (1, 2, 1), Handler::Shard(lcs, Multi::Tx(lcs_plan)), "@read @string @slow"),
    ]
}

/// Largest string a command may build (Redis `proto-max-bulk-len`, default 512MB).
const MAX_STRING: u64 = crate::resp::PROTO_MAX_BULK_LEN as u64;

/// A string value's bytes (integers formatted). The caller found it with a typed
/// lookup, so it is a string.
fn str_bytes(v: &Value) -> Cow<'_, [u8]> {
    debug_assert_eq!(v.obj_type(), ObjType::String);
    v.to_cow()
}

/// Replies with a string value as a bulk string (integers without an allocation).
fn reply_str(v: &Value, out: &mut ReplyBuf) {
    debug_assert_eq!(v.obj_type(), ObjType::String);
    match v.as_int() {
        Some(n) => out.bulk_int(n),
        None => {
            let mut buf = [0u8; 20];
            out.bulk(v.bytes(&mut buf))
        }
    }
}

/// Redis compares options as C strings: an argument ends at its first NUL byte.
fn opt_is(arg: &[u8], name: &str) -> bool {
    let end = memchr::memchr(0, arg).unwrap_or(arg.len());
    arg[..end].eq_ignore_ascii_case(name.as_bytes())
}

// ------------------------------------------------------------------ options

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// SET / GETEX options (Redis `parseExtendedStringArgumentsOrReply`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct StrOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// The expire option and its (still unparsed) argument; a repeated option of the
    /// same kind keeps the last argument.
    expire: Option<(ExpireKind, &'a [u8])>,
}

/// Parses SET's options (`for_set`) or GETEX's. Any unknown, misplaced or conflicting
/// option, or an expire option without its argument, is a syntax error. Repeating an
/// option is allowed, as in Redis.
fn parse_opts<'a>(opts: &[&'a [u8]], for_set: bool) -> Result<StrOpts<'a>, ()> {
    let mut o = StrOpts::default();
    let mut j = 0;
    while j < opts.len() {
        let opt = opts[j];
        let next = opts.get(j + 1).copied();
        let other_expire = |k: ExpireKind, o: &StrOpts| o.expire.is_some_and(|(x, _)| x != k);
        let expire_kind =
            [("ex", ExpireKind::Ex), ("px", ExpireKind::Px), ("exat", ExpireKind::ExAt), ("pxat", ExpireKind::PxAt)]
                .into_iter()
                .find(|(name, _)| opt_is(opt, name))
                .map(|(_, k)| k);
        if for_set && opt_is(opt, "nx") && !o.xx {
            o.nx = true;
        } else if for_set && opt_is(opt, "xx") && !o.nx {
            o.xx = true;
        } else if for_set && opt_is(opt, "get") {
            o.get = true;
        } else if for_set && opt_is(opt, "keepttl") && !o.persist && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && opt_is(opt, "persist") && o.expire.is_none() && !o.keepttl {
            o.persist = true;
        } else if let Some(k) =
            expire_kind.filter(|&k| !o.keepttl && !o.persist && !other_expire(k, &o) && next.is_some())
        {
            o.expire = Some((k, next.expect("checked")));
            j += 1;
        } else {
            return Err(());
        }
        j += 1;
    }
    Ok(o)
}

/// The absolute deadline in unix ms for an expire option (Redis
/// `getExpireMillisecondsOrReply`): the value must be positive, seconds must not
/// overflow when turned into ms, and a relative time must not overflow when added to
/// `now_ms`. Errors: not an integer, or (zero, negative, overflowing) an invalid
/// expire time in `cmd`.
fn expire_at_ms(kind: ExpireKind, arg: &[u8], now_ms: i64, cmd: &'static str) -> OpResult<i64> {
    let v = parse_i64(arg).ok_or(OpStatus::NotInteger)?;
    let seconds = matches!(kind, ExpireKind::Ex | ExpireKind::ExAt);
    let invalid = OpStatus::InvalidExpireTime(cmd);
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return Err(invalid);
    }
    let ms = if seconds { v * 1000 } else { v };
    let at = match kind {
        ExpireKind::Ex | ExpireKind::Px => ms.checked_add(now_ms).ok_or(invalid)?,
        ExpireKind::ExAt | ExpireKind::PxAt => ms,
    };
    Ok(at)
}

// ------------------------------------------------------------------ GET / SET

/// GET: the string value of `key`, if any (WrongType for another type). Counts a
/// keyspace hit or miss.
#[inline]
pub fn op_get<'a>(ctx: &'a mut ShardCtx, key: &[u8]) -> OpResult<Option<&'a Value>> {
    let now = ctx.now_ms;
    Ok(ctx.db().lookup_read_typed(key, now, ObjType::String)?.map(|e| e.value))
}

/// Replies with the value of `key` (or nil); Ok(true) if it exists. Err if it is not
/// a string (WRONGTYPE was replied).
fn get_generic(ctx: &mut ShardCtx, key: &[u8], out: &mut ReplyBuf) -> OpResult<bool> {
    match op_get(ctx, key) {
        Ok(None) => {
            out.null();
            Ok(false)
        }
        Ok(Some(v)) => {
            reply_str(v, out);
            Ok(true)
        }
        Err(status) => {
            status.reply(out);
            Err(status)
        }
    }
}

fn get(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let _ = get_generic(ctx, args[1], out);
}

/// What SET-like commands answer when they set (`Ok`: +OK, `One`: :1) and when NX/XX
/// stops them (nil, or :0 for SETNX).
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetReply {
    Ok,
    One,
}

/// How a SET stores: only if absent (NX) or present (XX), keeping the key's deadline
/// (KEEPTTL) or setting `deadline` (unix ms, 0 = none).
#[derive(Clone, Copy, Default)]
pub struct SetMode {
    pub nx: bool,
    pub xx: bool,
    pub keepttl: bool,
    pub deadline: i64,
}

/// SET's store step: Ok(true) if it stored `val`, Ok(false) if NX/XX stopped it.
#[inline]
pub fn op_set(ctx: &mut ShardCtx, key: &[u8], val: &[u8], m: SetMode) -> OpResult<bool> {
    let now = ctx.now_ms;
    let db = ctx.db();
    // The lookup deletes a key past its deadline (passive expiry, as Redis's
    // lookupKeyWrite does for every SET), so KEEPTTL keeps only a live key's deadline.
    let found = (m.nx || m.xx || m.keepttl) && db.lookup(key, now).is_some();
    if (m.nx && found) || (m.xx && !found) {
        return Ok(false);
    }
    if m.keepttl {
        db.set_keep_ttl(key, Value::from_bytes(val));
    } else {
        db.set_bytes(key, val, m.deadline);
    }
    Ok(true)
}

/// Redis `setGenericCommand`.
fn set_generic(
    ctx: &mut ShardCtx,
    key: &[u8],
    val: &[u8],
    o: &StrOpts,
    cmd: &'static str,
    reply: SetReply,
    out: &mut ReplyBuf,
) {
    let now = ctx.now_ms;
    let mut deadline = 0;
    if let Some((kind, arg)) = o.expire {
        match expire_at_ms(kind, arg, now, cmd) {
            Ok(at) => deadline = at,
            Err(status) => return status.reply(out),
        }
    }
    if o.get && get_generic(ctx, key, out).is_err() {
        return;
    }
    let mode = SetMode { nx: o.nx, xx: o.xx, keepttl: o.keepttl, deadline };
    let stored = match op_set(ctx, key, val, mode) {
        Ok(stored) => stored,
        Err(status) => return status.reply(out),
    };
    if !o.get {
        match (reply, stored) {
            (SetReply::Ok, true) => out.ok(),
            (SetReply::Ok, false) => out.null(),
            (SetReply::One, stored) => out.int(stored as i64),
        }
    }
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL]
fn set(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let Ok(o) = parse_opts(&args[3..], true) else {
        return OpStatus::Syntax.reply(out);
    };
    set_generic(ctx, args[1], args[2], &o, "set", SetReply::Ok, out);
}

fn setnx(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let o = StrOpts { nx: true, ..Default::default() };
    set_generic(ctx, args[1], args[2], &o, "setnx", SetReply::One, out);
}

fn setex(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let o = StrOpts { expire: Some((ExpireKind::Ex, args[2])), ..Default::default() };
    set_generic(ctx, args[1], args[3], &o, "setex", SetReply::Ok, out);
}

fn psetex(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let o = StrOpts { expire: Some((ExpireKind::Px, args[2])), ..Default::default() };
    set_generic(ctx, args[1], args[3], &o, "psetex", SetReply::Ok, out);
}

fn getset(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    if get_generic(ctx, args[1], out).is_err() {
        return;
    }
    ctx.db().set(args[1], Value::from_bytes(args[2]), 0);
}

fn getdel(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    if let Ok(true) = get_generic(ctx, args[1], out) {
        ctx.db().remove(args[1]);
    }
}

/// GETEX key [EX s | PX ms | EXAT ts | PXAT ms-ts | PERSIST]
fn getex(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let Ok(o) = parse_opts(&args[2..], false) else {
        return OpStatus::Syntax.reply(out);
    };
    let now = ctx.now_ms;
    let key = args[1];
    let db = ctx.db();
    let e = match db.lookup_read_typed(key, now, ObjType::String) {
        Ok(Some(e)) => e,
        Ok(None) => return out.null(),
        Err(status) => return status.reply(out),
    };
    let bytes = str_bytes(e.value);
    // Redis validates the expire time only once it knows the key is a string.
    let mut deadline = None;
    if let Some((kind, arg)) = o.expire {
        match expire_at_ms(kind, arg, now, "getex") {
            Ok(at) => deadline = Some((kind, at)),
            Err(status) => return status.reply(out),
        }
    }
    out.bulk(&bytes);
    match deadline {
        // An absolute time already past deletes the key.
        Some((ExpireKind::ExAt | ExpireKind::PxAt, at)) if at <= now => {
            db.remove(key);
        }
        Some((_, at)) => {
            db.set_expire(key, at);
        }
        None if o.persist => {
            db.set_expire(key, 0);
        }
        None => {}
    }
}

/// MGET: each shard reads its keys; values of other types read as nil, not WRONGTYPE.
pub struct Mget;

impl SplitOp for Mget {
    /// The shard's keys' values, in its argument order.
    type Part = Vec<Option<Vec<u8>>>;

    fn run(ctx: &mut ShardCtx, args: &[&[u8]]) -> Self::Part {
        let now = ctx.now_ms;
        let db = ctx.db();
        args[1..]
            .iter()
            .map(|k| match db.lookup_read_typed(k, now, ObjType::String) {
                Ok(Some(e)) => Some(str_bytes(e.value).into_owned()),
                Ok(None) | Err(_) => None,
            })
            .collect()
    }

    /// The values put back in key order.
    fn reduce(parts: Vec<Part<Self::Part>>, nkeys: usize, out: &mut ReplyBuf) {
        let mut values: Vec<Option<Vec<u8>>> = vec![None; nkeys];
        for p in parts {
            for (ord, v) in p.ordinals.into_iter().zip(p.value) {
                values[ord] = v;
            }
        }
        out.array(nkeys);
        for v in values {
            match v {
                Some(b) => out.bulk(&b),
                None => out.null(),
            }
        }
    }
}

// ------------------------------------------------------------------ MSET / MSETNX

/// MSET and MSETNX need whole key/value pairs (an even count after the name).
fn check_pairs(name: &str, args: &[&[u8]]) -> Result<(), String> {
    if args.len().is_multiple_of(2) { Err(super::arity_error(name)) } else { Ok(()) }
}

/// Sets every `key value` pair of `pairs` (no deadline).
fn op_mset(ctx: &mut ShardCtx, pairs: &[&[u8]]) {
    for kv in pairs.chunks(2) {
        ctx.db().set(kv[0], Value::from_bytes(kv[1]), 0);
    }
}

/// Whether any key of the `key value` pairs exists.
fn op_any_exists(ctx: &mut ShardCtx, pairs: &[&[u8]]) -> bool {
    let now = ctx.now_ms;
    pairs.chunks(2).any(|kv| ctx.db().lookup(kv[0], now).is_some())
}

/// MSET: each shard sets its pairs.
pub struct Mset;

impl SplitOp for Mset {
    type Part = ();
    const STEP: usize = 2;

    fn check(args: &[&[u8]]) -> Result<(), String> {
        check_pairs("mset", args)
    }

    fn run(ctx: &mut ShardCtx, args: &[&[u8]]) {
        op_mset(ctx, &args[1..]);
    }

    fn reduce(_parts: Vec<Part<()>>, _nkeys: usize, out: &mut ReplyBuf) {
        out.ok();
    }
}

/// MSETNX with every key in this shard.
fn msetnx(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    if let Err(e) = check_pairs("msetnx", args) {
        return out.error(&e);
    }
    if op_any_exists(ctx, &args[1..]) {
        return out.int(0);
    }
    op_mset(ctx, &args[1..]);
    out.int(1);
}

/// MSETNX over several shards, under exclusive locks on every key: hop 0 runs
/// `op_any_exists` on every shard, hop 1 `op_mset` on every shard if no key exists.
struct MsetNx {
    shares: Vec<Share>,
    exists: Slots<bool>,
    set: Slots<()>,
}

impl Program for MsetNx {
    fn step(&mut self, hop: u32, out: &mut ReplyBuf) -> Plan {
        match hop {
            0 => {
                let jobs = self
                    .shares
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p.shard, p.job(&self.exists, i, |ctx, args| op_any_exists(ctx, &args[1..]))))
                    .collect();
                Plan::Jobs { jobs, last: false }
            }
            1 => {
                let any = msetnx_any(&self.exists, self.shares.len());
                if any {
                    out.int(0);
                    return Plan::Done;
                }
                let jobs = self
                    .shares
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p.shard, p.job(&self.set, i, |ctx, args| op_mset(ctx, &args[1..]))))
                    .collect();
                Plan::Jobs { jobs, last: true }
            }
            _ => {
                out.int(1);
                Plan::Done
            }
        }
    }
}

/// MSETNX's reduce of the existence checks: all or nothing, so any key anywhere stops it.
fn msetnx_any(exists: &Slots<bool>, n: usize) -> bool {
    (0..n).map(|i| exists.take(i)).fold(false, |any, e| any | e)
}

fn msetnx_plan(cmd: &'static Command, args: &[&[u8]], db: usize, nshards: usize) -> TxPlan {
    if let Err(e) = check_pairs(cmd.name, args) {
        return program::error(e);
    }
    let (locks, shares) = program::split_shares(cmd, args, db, nshards);
    let n = shares.len();
    (locks, Box::new(MsetNx { shares, exists: Slots::new(n), set: Slots::new(n) }))
}

// ------------------------------------------------------------------ counters

/// Replies with an integer result, or its status's error.
fn reply_int(r: OpResult<i64>, out: &mut ReplyBuf) {
    match r {
        Ok(n) => out.int(n),
        Err(status) => status.reply(out),
    }
}

/// Redis `incrDecrCommand`: the value (0 if missing) must be a canonical integer; the
/// result is stored as an integer and the TTL is kept. Returns the new value.
pub fn op_incr(ctx: &mut ShardCtx, key: &[u8], by: i64) -> OpResult<i64> {
    let now = ctx.now_ms;
    let db = ctx.db();
    let cur = match db.lookup_typed(key, now, ObjType::String)? {
        None => 0,
        Some(e) => match e.value().as_int() {
            Some(n) => n,
            None => parse_i64(&str_bytes(e.value())).ok_or(OpStatus::NotInteger)?,
        },
    };
    let new = cur.checked_add(by).ok_or(OpStatus::Overflow)?;
    db.set_keep_ttl(key, Value::from_int(new));
    Ok(new)
}

fn incr_generic(ctx: &mut ShardCtx, key: &[u8], by: i64, out: &mut ReplyBuf) {
    reply_int(op_incr(ctx, key, by), out);
}

fn incr(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    incr_generic(ctx, args[1], 1, out);
}

fn decr(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    incr_generic(ctx, args[1], -1, out);
}

fn incrby(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    match parse_i64(args[2]) {
        Some(by) => incr_generic(ctx, args[1], by, out),
        None => OpStatus::NotInteger.reply(out),
    }
}

fn decrby(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    match parse_i64(args[2]) {
        None => OpStatus::NotInteger.reply(out),
        // Negating i64::MIN overflows.
        Some(i64::MIN) => OpStatus::DecrementOverflow.reply(out),
        Some(by) => incr_generic(ctx, args[1], -by, out),
    }
}

/// INCRBYFLOAT: long-double arithmetic; the stored result is the reply's text (a string,
/// never an integer encoding) and the TTL is kept.
/// Returns the new value's text (what is stored and replied).
pub fn op_incrbyfloat(ctx: &mut ShardCtx, key: &[u8], incr: &[u8]) -> OpResult<Vec<u8>> {
    let now = ctx.now_ms;
    let db = ctx.db();
    let result = match db.lookup_typed(key, now, ObjType::String)? {
        None => incr_by_float(b"0", incr),
        Some(e) => incr_by_float(&str_bytes(e.value()), incr),
    };
    let text = result.map_err(|e| match e {
        FloatErr::InvalidCurrent | FloatErr::InvalidIncrement => OpStatus::NotValidFloat,
        FloatErr::NanOrInfinity => OpStatus::NanOrInfinity,
    })?;
    db.set_keep_ttl(key, Value::from_text(&text));
    Ok(text)
}

fn incrbyfloat(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    match op_incrbyfloat(ctx, args[1], args[2]) {
        Ok(text) => out.bulk(&text),
        Err(status) => status.reply(out),
    }
}

// ------------------------------------------------------------------ APPEND / PREPEND / STRLEN

/// APPEND (and memcached's prepend): adds `arg` at the end (or the start) of the
/// string, creating it if missing. Returns the new length.
pub fn op_append(ctx: &mut ShardCtx, key: &[u8], arg: &[u8], prepend: bool) -> OpResult<usize> {
    let now = ctx.now_ms;
    let db = ctx.db();
    if let Some(mut e) = db.lookup_typed(key, now, ObjType::String)? {
        if e.value().len() as u64 + arg.len() as u64 > MAX_STRING {
            return Err(OpStatus::StringTooBig);
        }
        let new_len = e.value_mut().modify_raw(|bytes| {
            if prepend {
                bytes.splice(0..0, arg.iter().copied());
            } else {
                bytes.extend_from_slice(arg);
            }
            bytes.len()
        });
        return Ok(new_len);
    }
    // A new key, stored once the lookup's guard is gone.
    db.set(key, Value::from_bytes(arg), 0);
    Ok(arg.len())
}

fn append(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    reply_int(op_append(ctx, args[1], args[2], false).map(|n| n as i64), out);
}

fn prepend(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    reply_int(op_append(ctx, args[1], args[2], true).map(|n| n as i64), out);
}

/// The string's length (0 if missing), without formatting an integer.
pub fn op_strlen(ctx: &mut ShardCtx, key: &[u8]) -> OpResult<usize> {
    let now = ctx.now_ms;
    Ok(ctx.db().lookup_read_typed(key, now, ObjType::String)?.map_or(0, |e| e.value.len()))
}

fn strlen(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    reply_int(op_strlen(ctx, args[1]).map(|n| n as i64), out);
}

// ------------------------------------------------------------------ GETRANGE / SETRANGE

/// The byte range `start..end` GETRANGE returns for inclusive indexes `start`, `end`
/// (negative from the end) of a string of `len` bytes, or None for an empty reply.
/// Follows Redis 7.0 exactly, including that two negative indexes with start > end
/// are empty before clamping.
fn getrange_bounds(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize + 1))
}

fn getrange(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let (Some(start), Some(end)) = (parse_i64(args[2]), parse_i64(args[3])) else {
        return OpStatus::NotInteger.reply(out);
    };
    let now = ctx.now_ms;
    let e = match ctx.db().lookup_read_typed(args[1], now, ObjType::String) {
        Ok(Some(e)) => e,
        Ok(None) => return out.bulk(b""),
        Err(status) => return status.reply(out),
    };
    let bytes = str_bytes(e.value);
    match getrange_bounds(bytes.len(), start, end) {
        Some((s, e)) => out.bulk(&bytes[s..e]),
        None => out.bulk(b""),
    }
}

/// SETRANGE: overwrites the string from byte `offset` on with `val` (zero-padding a
/// shorter or missing string). Returns the new length; an empty `val` changes nothing.
pub fn op_setrange(ctx: &mut ShardCtx, key: &[u8], offset: i64, val: &[u8]) -> OpResult<usize> {
    if offset < 0 {
        return Err(OpStatus::OffsetOutOfRange);
    }
    // offset + len, or None if it is over the limit (or overflows).
    let total = (offset as u64).checked_add(val.len() as u64).filter(|&t| t <= MAX_STRING).map(|t| t as usize);
    let now = ctx.now_ms;
    let db = ctx.db();
    if let Some(mut e) = db.lookup_typed(key, now, ObjType::String)? {
        if val.is_empty() {
            return Ok(e.value().len());
        }
        let total = total.ok_or(OpStatus::StringTooBig)?;
        let new_len = e.value_mut().modify_raw(|bytes| {
            if bytes.len() < total {
                bytes.resize(total, 0);
            }
            bytes[offset as usize..total].copy_from_slice(val);
            bytes.len()
        });
        return Ok(new_len);
    }
    // A new key, stored once the lookup's guard is gone.
    if val.is_empty() {
        return Ok(0);
    }
    let total = total.ok_or(OpStatus::StringTooBig)?;
    let mut bytes = vec![0u8; total];
    bytes[offset as usize..].copy_from_slice(val);
    db.set(key, Value::from_raw_vec(bytes), 0);
    Ok(total)
}

fn setrange(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let Some(offset) = parse_i64(args[2]) else {
        return OpStatus::NotInteger.reply(out);
    };
    reply_int(op_setrange(ctx, args[1], offset, args[3]).map(|n| n as i64), out);
}

// ------------------------------------------------------------------ LCS

/// One matching range of an LCS: inclusive byte ranges in each string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LcsMatch {
    a: (u32, u32),
    b: (u32, u32),
    len: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LcsResult {
    /// The common subsequence itself.
    lcs: Vec<u8>,
    /// Matching ranges, last first, as Redis lists them.
    matches: Vec<LcsMatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LcsErr {
    TooLong,
    TableTooBig,
    NoMemory,
}

impl LcsErr {
    fn message(self) -> &'static str {
        match self {
            LcsErr::TooLong => "ERR String too long for LCS",
            LcsErr::TableTooBig => "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
            LcsErr::NoMemory => "ERR Insufficient memory, failed allocating transient memory for LCS",
        }
    }
}

/// The longest common subsequence of `a` and `b` by Redis's dynamic programming table
/// (`(|a|+1) x (|b|+1)` u32 cells, refused above proto-max-bulk-len bytes), walked back
/// from the end exactly as Redis walks it, so that ties and ranges come out the same.
fn lcs_compute(a: &[u8], b: &[u8]) -> Result<LcsResult, LcsErr> {
    if a.len() as u64 >= u32::MAX as u64 - 1 || b.len() as u64 >= u32::MAX as u64 - 1 {
        return Err(LcsErr::TooLong);
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells * 4 > MAX_STRING {
        return Err(LcsErr::TableTooBig);
    }
    let cells = cells as usize;
    let mut table: Vec<u32> = Vec::new();
    table.try_reserve_exact(cells).map_err(|_| LcsErr::NoMemory)?;
    table.resize(cells, 0);
    let w = blen + 1;
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * w + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * w + j - 1] + 1
            } else {
                table[(i - 1) * w + j].max(table[i * w + j - 1])
            };
        }
    }
    let total = table[alen * w + blen] as usize;
    let mut lcs = vec![0u8; total];
    let mut matches = Vec::new();
    let mut idx = total;
    let (mut i, mut j) = (alen, blen);
    // `a_start == alen` means no range is open.
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0usize, 0usize, 0usize);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            lcs[idx - 1] = a[i - 1];
            if a_start == alen {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            // A range that reached the start of either string is complete.
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * w + j] > table[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        if emit {
            let len = (a_end - a_start + 1) as u32;
            matches.push(LcsMatch { a: (a_start as u32, a_end as u32), b: (b_start as u32, b_end as u32), len });
            a_start = alen;
        }
    }
    Ok(LcsResult { lcs, matches })
}

/// Parses LCS's options (after the two keys), computes and replies. `a`, `b` are the
/// two values (missing keys are empty strings).
fn lcs_reply(a: &[u8], b: &[u8], opts: &[&[u8]], out: &mut ReplyBuf) {
    let (mut get_len, mut get_idx, mut with_len, mut min_len) = (false, false, false, 0i64);
    let mut j = 0;
    while j < opts.len() {
        let opt = opts[j];
        let more = j + 1 < opts.len();
        if opt_is(opt, "idx") {
            get_idx = true;
        } else if opt_is(opt, "len") {
            get_len = true;
        } else if opt_is(opt, "withmatchlen") {
            with_len = true;
        } else if opt_is(opt, "minmatchlen") && more {
            let Some(n) = parse_i64(opts[j + 1]) else {
                return OpStatus::NotInteger.reply(out);
            };
            min_len = n.max(0);
            j += 1;
        } else {
            return OpStatus::Syntax.reply(out);
        }
        j += 1;
    }
    if get_len && get_idx {
        return out.error("ERR If you want both the length and indexes, please just use IDX.");
    }
    let r = match lcs_compute(a, b) {
        Ok(r) => r,
        Err(e) => return out.error(e.message()),
    };
    if get_idx {
        let shown: Vec<&LcsMatch> = r.matches.iter().filter(|m| min_len == 0 || m.len as i64 >= min_len).collect();
        out.map(2);
        out.bulk(b"matches");
        out.array(shown.len());
        for m in shown {
            out.array(2 + with_len as usize);
            out.array(2);
            out.int(m.a.0 as i64);
            out.int(m.a.1 as i64);
            out.array(2);
            out.int(m.b.0 as i64);
            out.int(m.b.1 as i64);
            if with_len {
                out.int(m.len as i64);
            }
        }
        out.bulk(b"len");
        out.int(r.lcs.len() as i64);
    } else if get_len {
        out.int(r.lcs.len() as i64);
    } else {
        out.bulk(&r.lcs);
    }
}

/// A key's value for LCS: None if missing, `LcsNotStrings` for another type.
fn lcs_fetch(shard: &mut Shard, db: usize, key: &[u8], now: i64) -> Fetched {
    match shard.dbs[db].lookup_read_typed(key, now, ObjType::String) {
        Ok(e) => Ok(e.map(|e| str_bytes(e.value).into_owned())),
        Err(OpStatus::WrongType) => Err(OpStatus::LcsNotStrings),
        Err(status) => Err(status),
    }
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
fn lcs(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let now = ctx.now_ms;
    let db = ctx.db;
    let a = lcs_fetch(ctx.shard, db, args[1], now);
    let b = lcs_fetch(ctx.shard, db, args[2], now);
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(status), _) | (_, Err(status)) => return status.reply(out),
    };
    lcs_reply(&a.unwrap_or_default(), &b.unwrap_or_default(), &args[3..], out);
}

/// LCS with its keys on two shards: fetch both values in one hop under shared locks,
/// then compute on the coordinator.
struct LcsProgram {
    db: usize,
    /// (shard, key) of the first and second key.
    keys: [(usize, Box<[u8]>); 2],
    opts: Vec<Box<[u8]>>,
    /// The fetched values, first key then second.
    fetched: Slots<Fetched>,
}

type Fetched = OpResult<Option<Vec<u8>>>;

impl Program for LcsProgram {
    fn step(&mut self, hop: u32, out: &mut ReplyBuf) -> Plan {
        if hop == 0 {
            let db = self.db;
            let jobs = self
                .keys
                .iter()
                .enumerate()
                .map(|(i, (s, k))| {
                    let k = k.clone();
                    (*s, self.fetched.job(i, move |sh: &mut Shard| lcs_fetch(sh, db, &k, unix_ms())))
                })
                .collect();
            return Plan::Jobs { jobs, last: true };
        }
        let (a, b) = (self.fetched.take(0), self.fetched.take(1));
        let (a, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(status), _) | (_, Err(status)) => {
                status.reply(out);
                return Plan::Done;
            }
        };
        let opts: Vec<&[u8]> = self.opts.iter().map(|o| &o[..]).collect();
        lcs_reply(&a.unwrap_or_default(), &b.unwrap_or_default(), &opts, out);
        Plan::Done
    }
}

fn lcs_plan(cmd: &'static Command, args: &[&[u8]], db: usize, nshards: usize) -> TxPlan {
    let (s1, s2) = (shard_of(args[1], nshards), shard_of(args[2], nshards));
    // The dispatcher only comes here when the two keys are on different shards.
    debug_assert_ne!(s1, s2);
    let locks =
        vec![(s1, super::lock_keys(cmd, &[args[0], args[1]])), (s2, super::lock_keys(cmd, &[args[0], args[2]]))];
    let prog = LcsProgram {
        db,
        keys: [(s1, args[1].into()), (s2, args[2].into())],
        opts: args[3..].iter().map(|&o| o.into()).collect(),
        fetched: Slots::new(2),
    };
    (locks, Box::new(prog))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts<'a>(v: &[&'a str]) -> Vec<&'a [u8]> {
        v.iter().map(|s| s.as_bytes()).collect()
    }

    /// A one-shard shard to run handlers on directly.
    fn test_shard() -> Shard {
        let cfg = crate::config::Config::from_args(["darter".to_string()]).unwrap();
        let runtime = crate::cmd::config::initial(&cfg);
        let g = std::sync::Arc::new(crate::shard::Globals::new(cfg, vec![-1]));
        Shard::new(0, g, runtime, crate::cmd::table().len())
    }

    /// Runs one command on the shard (db 0) and returns its RESP2 reply.
    fn run(s: &mut Shard, args: &[&str]) -> String {
        let cmd = crate::cmd::table().lookup(args[0].as_bytes()).unwrap();
        let a: Vec<&[u8]> = args.iter().map(|x| x.as_bytes()).collect();
        let mut out = ReplyBuf::new(false);
        crate::cmd::run_shard_handler(s, cmd, 0, &a, &mut out);
        String::from_utf8(out.buf).unwrap()
    }

    fn encoding(s: &mut Shard, key: &str) -> &'static str {
        s.dbs[0].lookup(key.as_bytes(), unix_ms()).expect("key exists").value.encoding()
    }

    fn deadline(s: &mut Shard, key: &str) -> i64 {
        s.dbs[0].lookup(key.as_bytes(), unix_ms()).expect("key exists").expire_at_ms
    }

    // OBJECT ENCODING after each command, as redis-server 7.0.15 reports it.
    #[test]
    fn encodings_follow_redis() {
        let mut s = test_shard();
        let x45 = "x".repeat(45);
        let digits50 = "12345678901234567890123456789012345678901234567890";
        let cases: &[(&[&str], &str, &str)] = &[
            (&["set", "k", "123"], "k", "int"),
            (&["set", "k", "0123"], "k", "embstr"),
            (&["set", "k", &x45], "k", "raw"),
            (&["append", "a", "123"], "a", "int"),
            (&["append", "a", "4"], "a", "raw"),
            (&["append", "b", "xyz"], "b", "embstr"),
            (&["set", "c", "123"], "c", "int"),
            (&["append", "c", ""], "c", "raw"),
            (&["prepend", "p", "12"], "p", "int"),
            (&["prepend", "p", "x"], "p", "raw"),
            (&["setrange", "r", "5", "ab"], "r", "raw"),
            (&["set", "i", "12345"], "i", "int"),
            (&["setrange", "i", "0", "9"], "i", "raw"),
            (&["set", "j", "123"], "j", "int"),
            (&["setrange", "j", "0", ""], "j", "int"),
            (&["incr", "n"], "n", "int"),
            (&["set", "h", "10"], "h", "int"),
            (&["incrbyfloat", "h", "1"], "h", "embstr"),
            (&["set", "big", digits50], "big", "raw"),
            (&["incrbyfloat", "big", "1"], "big", "raw"),
            (&["getset", "g", "5"], "g", "int"),
            (&["mset", "m", "abc", "m2", "7"], "m2", "int"),
            (&["setnx", "sn", "abc"], "sn", "embstr"),
            (&["setex", "se", "100", "42"], "se", "int"),
        ];
        for (cmd, key, want) in cases {
            run(&mut s, cmd);
            assert_eq!(encoding(&mut s, key), *want, "after {cmd:?}");
        }
        assert_eq!(run(&mut s, &["get", "i"]), "$5\r\n92345\r\n");
        assert_eq!(run(&mut s, &["get", "p"]), "$3\r\nx12\r\n");
        assert_eq!(run(&mut s, &["get", "r"]), "$7\r\n\0\0\0\0\0ab\r\n");
        assert_eq!(run(&mut s, &["get", "big"]), "$50\r\n12345678901234567890019423336468287027557880037376\r\n");
    }

    // Commands that change a value in place keep its TTL; SET (without KEEPTTL),
    // GETSET and MSET drop it. (Checked against PTTL on redis-server 7.0.15.)
    #[test]
    fn ttl_kept_or_dropped() {
        let mut s = test_shard();
        run(&mut s, &["set", "k", "5", "px", "100000"]);
        let d = deadline(&mut s, "k");
        assert!(d > unix_ms());
        for cmd in [
            &["incr", "k"][..],
            &["decrby", "k", "2"],
            &["append", "k", "1"],
            &["prepend", "k", "1"],
            &["setrange", "k", "0", "7"],
            &["incrbyfloat", "k", "1"],
            &["set", "k", "v", "keepttl"],
            &["getex", "k"],
        ] {
            run(&mut s, cmd);
            assert_eq!(deadline(&mut s, "k"), d, "after {cmd:?}");
        }
        for cmd in [&["set", "k", "v"][..], &["getset", "k", "x"], &["mset", "k", "1"], &["set", "k", "v", "xx", "get"]]
        {
            run(&mut s, &["set", "k", "v", "ex", "100"]);
            assert_ne!(deadline(&mut s, "k"), 0);
            run(&mut s, cmd);
            assert_eq!(deadline(&mut s, "k"), 0, "after {cmd:?}");
        }
        run(&mut s, &["getex", "k", "px", "5000"]);
        assert!(deadline(&mut s, "k") > unix_ms());
        run(&mut s, &["getex", "k", "persist"]);
        assert_eq!(deadline(&mut s, "k"), 0);
        assert_eq!(run(&mut s, &["getex", "k", "exat", "1"]), "$1\r\nv\r\n");
        assert_eq!(run(&mut s, &["exists", "k"]), ":0\r\n");
    }

    // Reads (GET, SET GET, MGET, STRLEN, GETRANGE, LCS) count keyspace hits and misses;
    // writes (INCR, APPEND, SETRANGE, INCRBYFLOAT) do not.
    #[test]
    fn keyspace_hits() {
        let mut s = test_shard();
        run(&mut s, &["set", "k", "1"]);
        run(&mut s, &["get", "k"]);
        run(&mut s, &["get", "nokey"]);
        run(&mut s, &["incr", "k"]);
        run(&mut s, &["set", "k", "2", "get"]);
        run(&mut s, &["mget", "k", "nokey"]);
        assert_eq!((s.dbs[0].stats().keyspace_hits, s.dbs[0].stats().keyspace_misses), (3, 2));
        for cmd in [
            &["append", "k", "1"][..],
            &["strlen", "k"],
            &["getrange", "k", "0", "1"],
            &["lcs", "k", "nokey"],
            &["setrange", "k", "0", "x"],
            &["incrbyfloat", "k", "1"],
        ] {
            run(&mut s, cmd);
        }
        // Same counts as redis-server 7.0.15's INFO stats for this sequence.
        assert_eq!((s.dbs[0].stats().keyspace_hits, s.dbs[0].stats().keyspace_misses), (6, 3));
    }

    // SET's option grammar: conflicts are syntax errors, repeats are allowed, the last
    // expire value wins, options are case-insensitive and end at a NUL byte.
    #[test]
    fn set_options() {
        let ok = |v: &[&str]| parse_opts(&opts(v), true).is_ok();
        for bad in [
            &["nx", "xx"][..],
            &["xx", "nx"],
            &["ex", "10", "px", "10"],
            &["px", "10", "exat", "10"],
            &["keepttl", "ex", "1"],
            &["ex", "1", "keepttl"],
            &["ex"],
            &["persist"],
            &["foo"],
            &["get", "pxat"],
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
        for good in [
            &["nx", "nx"][..],
            &["GeT", "get"],
            &["ex", "1", "ex", "2"],
            &["keepttl", "keepttl", "xx"],
            &["NX", "GET", "PXAT", "5"],
        ] {
            assert!(ok(good), "{good:?}");
        }
        let o = parse_opts(&opts(&["EX", "1", "get", "ex", "2"]), true).unwrap();
        assert_eq!(o.expire, Some((ExpireKind::Ex, &b"2"[..])));
        assert!(o.get);
        let o = parse_opts(&[b"nx\0junk"], true).unwrap();
        assert!(o.nx);
    }

    // GETEX takes only the expire options and PERSIST, never both.
    #[test]
    fn getex_options() {
        let ok = |v: &[&str]| parse_opts(&opts(v), false).is_ok();
        assert!(ok(&["persist", "persist"]));
        assert!(ok(&["px", "5", "px", "6"]));
        for bad in
            [&["persist", "ex", "1"][..], &["ex", "1", "persist"], &["nx"], &["xx"], &["get"], &["keepttl"], &["ex"]]
        {
            assert!(!ok(bad), "{bad:?}");
        }
    }

    // Expire times: positive only; seconds that overflow ms, or relative times that
    // overflow when added to now, are invalid; absolute times are taken as they are.
    #[test]
    fn expire_times() {
        let now = 1_700_000_000_000;
        assert_eq!(expire_at_ms(ExpireKind::Ex, b"10", now, "set"), Ok(now + 10_000));
        assert_eq!(expire_at_ms(ExpireKind::Px, b"10", now, "set"), Ok(now + 10));
        assert_eq!(expire_at_ms(ExpireKind::ExAt, b"10", now, "set"), Ok(10_000));
        assert_eq!(expire_at_ms(ExpireKind::PxAt, b"1", now, "set"), Ok(1));
        assert_eq!(expire_at_ms(ExpireKind::PxAt, b"9223372036854775807", now, "set"), Ok(i64::MAX));
        assert_eq!(expire_at_ms(ExpireKind::ExAt, b"9223372036854775", now, "set"), Ok(9_223_372_036_854_775_000));
        for (k, v) in [
            (ExpireKind::Ex, "0"),
            (ExpireKind::Px, "-1"),
            (ExpireKind::ExAt, "9223372036854776"),
            (ExpireKind::Ex, "9223372036854774"),
            (ExpireKind::Px, "9223372036854775807"),
        ] {
            assert_eq!(expire_at_ms(k, v.as_bytes(), now, "set"), Err(OpStatus::InvalidExpireTime("set")), "{k:?} {v}");
        }
        assert_eq!(expire_at_ms(ExpireKind::Ex, b"1.5", now, "set"), Err(OpStatus::NotInteger));
        assert_eq!(expire_at_ms(ExpireKind::Ex, b" 1", now, "set"), Err(OpStatus::NotInteger));
    }

    // GETRANGE index arithmetic, checked against redis-server 7.0.15 on "Hello World".
    #[test]
    fn getrange_indexes() {
        let s = b"Hello World";
        let r = |a, b| getrange_bounds(s.len(), a, b).map(|(x, y)| &s[x..y]);
        assert_eq!(r(0, 4), Some(&b"Hello"[..]));
        assert_eq!(r(-3, -1), Some(&b"rld"[..]));
        assert_eq!(r(-1, -3), None);
        assert_eq!(r(5, 2), None);
        assert_eq!(r(0, 100), Some(&s[..]));
        assert_eq!(r(100, 200), None);
        assert_eq!(r(-100, -50), Some(&b"H"[..]));
        assert_eq!(r(-200, -100), Some(&b"H"[..]));
        assert_eq!(r(-100, -200), None);
        assert_eq!(r(i64::MAX, i64::MIN), None);
        assert_eq!(r(i64::MIN, i64::MAX), Some(&s[..]));
        assert_eq!(getrange_bounds(0, 0, -1), None);
        assert_eq!(getrange_bounds(0, 0, 0), None);
    }

    /// (a start, a end, b start, b end, length) of one match.
    type Range = (u32, u32, u32, u32, u32);

    fn lcs_ranges(a: &str, b: &str) -> (String, Vec<Range>) {
        let r = lcs_compute(a.as_bytes(), b.as_bytes()).unwrap();
        (String::from_utf8(r.lcs).unwrap(), r.matches.iter().map(|m| (m.a.0, m.a.1, m.b.0, m.b.1, m.len)).collect())
    }

    // The LCS string and its ranges, as redis-server 7.0.15 answers them (the first is
    // the example of the LCS documentation).
    #[test]
    fn lcs_algorithm() {
        assert_eq!(lcs_ranges("ohmytext", "mynewtext"), ("mytext".into(), vec![(4, 7, 5, 8, 4), (2, 3, 0, 1, 2)]));
        assert_eq!(lcs_ranges("ABCBDAB", "BDCABA"), ("BDAB".into(), vec![(5, 6, 3, 4, 2), (3, 4, 0, 1, 2)]));
        assert_eq!(lcs_ranges("12345", "2345"), ("2345".into(), vec![(1, 4, 0, 3, 4)]));
        assert_eq!(lcs_ranges("", "abc"), (String::new(), vec![]));
        assert_eq!(lcs_ranges("abc", "xyz"), (String::new(), vec![]));
        assert_eq!(lcs_ranges("abc", "abc"), ("abc".into(), vec![(0, 2, 0, 2, 3)]));
    }

    // The DP table is refused when it would exceed proto-max-bulk-len bytes.
    #[test]
    fn lcs_table_limit() {
        // (11584+1)^2 * 4 fits in 512MB, (11585+1)^2 * 4 does not (as in Redis). Only
        // the refusal is run here; the accepted size would allocate 512MB.
        let a = vec![b'a'; 11_585];
        assert_eq!(lcs_compute(&a, &a), Err(LcsErr::TableTooBig));
        const _: () = assert!(11_585u64 * 11_585 * 4 <= MAX_STRING);
    }

    // Replies in RESP2 and RESP3 have Redis's shapes.
    #[test]
    fn lcs_reply_shapes() {
        let run = |resp3: bool, o: &[&str]| {
            let mut out = ReplyBuf::new(resp3);
            lcs_reply(b"ohmytext", b"mynewtext", &opts(o), &mut out);
            String::from_utf8(out.buf).unwrap()
        };
        assert_eq!(run(false, &[]), "$6\r\nmytext\r\n");
        assert_eq!(run(false, &["LEN", "withmatchlen"]), ":6\r\n");
        assert_eq!(
            run(false, &["idx", "minmatchlen", "4", "withmatchlen"]),
            "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"
        );
        assert_eq!(
            run(true, &["idx", "minmatchlen", "-5"]),
            "%2\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"
        );
        assert_eq!(
            run(false, &["len", "idx"]),
            "-ERR If you want both the length and indexes, please just use IDX.\r\n"
        );
        assert_eq!(run(false, &["minmatchlen"]), "-ERR syntax error\r\n");
        assert_eq!(run(false, &["minmatchlen", "x"]), "-ERR value is not an integer or out of range\r\n");
    }
}
