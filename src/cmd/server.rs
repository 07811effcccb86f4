//! Connection and server commands (placeholder slice: PING, ECHO, QUIT, SELECT; the
//! full family follows).

use super::{Command, Handler, FAST, LOADING, NO_AUTH, READONLY, STALE};
use crate::server::{Job, Out};
use crate::shard::Shard;
use crate::conn::Conn;
use crate::server::{Origin, Worker};

pub fn commands() -> Vec<Command> {
    vec![
        Command::new("ping", -1, FAST | STALE, (0, 0, 0), Handler::Conn(ping), "@fast @connection"),
        Command::new("echo", 2, FAST | STALE, (0, 0, 0), Handler::Conn(echo), "@fast @connection"),
        Command::new("quit", -1, NO_AUTH | FAST | STALE | LOADING, (0, 0, 0), Handler::Conn(quit), "@fast @connection"),
        Command::new("dbsize", 1, READONLY | FAST, (0, 0, 0), Handler::Conn(dbsize), "@keyspace @read @fast"),
        Command::new("select", 2, FAST | STALE | LOADING, (0, 0, 0), Handler::Conn(select), "@fast @connection"),
    ]
}

fn ping(_w: &mut Worker, c: &mut Conn, _o: Origin, args: &[&[u8]]) {
    match args.len() {
        1 => c.out.simple("PONG"),
        2 => c.out.bulk(args[1]),
        _ => c.out.error(&super::arity_error("ping")),
    }
}

fn echo(_w: &mut Worker, c: &mut Conn, _o: Origin, args: &[&[u8]]) {
    c.out.bulk(args[1]);
}

fn quit(_w: &mut Worker, c: &mut Conn, _o: Origin, _args: &[&[u8]]) {
    c.out.ok();
    c.close_after_reply = true;
}

fn select(w: &mut Worker, c: &mut Conn, _o: Origin, args: &[&[u8]]) {
    match crate::util::parse_i64(args[1]) {
        None => c.out.error("ERR value is not an integer or out of range"),
        Some(n) if n < 0 || n as usize >= w.shard.dbs.len() => c.out.error("ERR DB index is out of range"),
        Some(n) => {
            c.db = n as usize;
            c.out.ok();
        }
    }
}

/// DBSIZE: the sum of every shard's key count for the selected db.
fn dbsize(w: &mut Worker, c: &mut Conn, o: Origin, _args: &[&[u8]]) {
    let db = c.db;
    super::broadcast(
        w,
        c,
        o,
        move |_| -> Job { Box::new(move |s: &mut Shard| Box::new(s.dbs[db].len()) as Out) },
        |outs, out| out.int(outs.into_iter().map(|o| *o.downcast::<usize>().expect("usize")).sum::<usize>() as i64),
    );
}
