//! Keyspace commands (placeholder slice: DEL, EXISTS; the full family follows).

use super::{Command, Handler, Merge, Multi, READONLY, WRITE, FAST};
use crate::reply::ReplyBuf;
use crate::shard::ShardCtx;

pub fn commands() -> Vec<Command> {
    vec![
        Command::new("del", -2, WRITE, (1, -1, 1), Handler::Shard(del, Multi::Split(Merge::SumInts)), "@keyspace @write @slow"),
        Command::new("exists", -2, READONLY | FAST, (1, -1, 1), Handler::Shard(exists, Multi::Split(Merge::SumInts)), "@keyspace @read @fast"),
    ]
}

fn del(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let now = ctx.now_ms;
    let mut n = 0;
    for k in &args[1..] {
        if ctx.db().lookup(k, now).is_some() {
            ctx.db().remove(k);
            n += 1;
        }
    }
    out.int(n);
}

fn exists(ctx: &mut ShardCtx, args: &[&[u8]], out: &mut ReplyBuf) {
    let now = ctx.now_ms;
    let mut n = 0;
    for k in &args[1..] {
        if ctx.db().contains(k, now) {
            n += 1;
        }
    }
    out.int(n);
}
