//! Connection and server commands (placeholder slice: PING, ECHO, QUIT, SELECT; the
//! full family follows).

use super::{Command, Handler, FAST, NO_AUTH, STALE, LOADING};
use crate::conn::Conn;
use crate::server::{Origin, Worker};

pub fn commands() -> Vec<Command> {
    vec![
        Command::new("ping", -1, FAST | STALE, (0, 0, 0), Handler::Conn(ping), "@fast @connection"),
        Command::new("echo", 2, FAST | STALE, (0, 0, 0), Handler::Conn(echo), "@fast @connection"),
        Command::new("quit", -1, NO_AUTH | FAST | STALE | LOADING, (0, 0, 0), Handler::Conn(quit), "@fast @connection"),
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
