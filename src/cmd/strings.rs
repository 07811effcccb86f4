//! String commands (placeholder slice: GET, SET, MGET, MSET; the full family follows).

use super::{Command, Handler, Merge, Multi, DENYOOM, FAST, READONLY, WRITE};
use crate::reply::ReplyBuf;
use crate::shard::ShardCtx;
use crate::store::Value;

pub fn commands() -> Vec<Command> {
    vec![
        Command::new("get", 2, READONLY | FAST, (1, 1, 1), Handler::Shard(get, Multi::None), "@read @string @fast"),
        Command::new("set", -3, WRITE | DENYOOM, (1, 1, 1), Handler::Shard(set, Multi::None), "@write @string @slow"),
        Command::new("mget", -2, READONLY | FAST, (1, -1, 1), Handler::Shard(mget, Multi::Split(Merge::Reorder)), "@read @string @fast"),
        Command::new("mset", -3, WRITE | DENYOOM, (1, -1, 2), Handler::Shard(mset, Multi::Split(Merge::Ok)), "@write @string @slow"),
    ]
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn get(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let now = ctx.now_ms;
    match ctx.db().lookup_read(args[1], now) {
        None => out.null(),
        Some(e) => match &e.value {
            Value::Str { bytes, .. } => out.bulk(bytes),
            Value::Int(n) => out.bulk_int(*n),
        },
    }
}

fn set(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    ctx.db().set(args[1], Value::from_bytes(args[2]), 0);
    out.ok();
}

fn mget(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let now = ctx.now_ms;
    out.array(args.len() - 1);
    for k in &args[1..] {
        match ctx.db().lookup_read(k, now).map(|e| &e.value) {
            Some(Value::Str { bytes, .. }) => out.bulk(bytes),
            Some(Value::Int(n)) => out.bulk_int(*n),
            None => out.null(),
        }
    }
    let _ = WRONGTYPE;
}

fn mset(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    if args.len() % 2 == 0 {
        out.error(&super::arity_error("mset"));
        return;
    }
    for kv in args[1..].chunks(2) {
        ctx.db().set(kv[0], Value::from_bytes(kv[1]), 0);
    }
    out.ok();
}
