//! Smoke test: the real binary serves PING/SET/GET and multi-shard MSET/MGET/DEL.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use common::Server;

// PING, SET and GET answer with Redis's replies, through the redis crate.
#[test]
fn ping_set_get() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = d.client();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
    let none: Option<String> = redis::cmd("GET").arg("missing").query(&mut c).unwrap();
    assert_eq!(none, None);
}

// Keys spread over two shards: MSET/MGET keep key order, DEL/EXISTS sum over shards.
#[test]
fn multi_shard_keys() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = d.client();
    let keys: Vec<String> = (0..20).map(|i| format!("key:{i}")).collect();
    let mut mset = redis::cmd("MSET");
    for (i, k) in keys.iter().enumerate() {
        mset.arg(k).arg(i);
    }
    let _: () = mset.query(&mut c).unwrap();
    let vals: Vec<Option<i64>> = redis::cmd("MGET").arg(&keys).arg("nokey").query(&mut c).unwrap();
    let mut want: Vec<Option<i64>> = (0..20).map(Some).collect();
    want.push(None);
    assert_eq!(vals, want);
    let n: i64 = redis::cmd("EXISTS").arg(&keys).query(&mut c).unwrap();
    assert_eq!(n, 20);
    let n: i64 = redis::cmd("DEL").arg(&keys[..10]).query(&mut c).unwrap();
    assert_eq!(n, 10);
    let n: i64 = redis::cmd("EXISTS").arg(&keys).query(&mut c).unwrap();
    assert_eq!(n, 10);
}

// A protocol error gets Redis's error text and closes only that connection.
#[test]
fn protocol_error_closes_connection() {
    let d = Server::darter(&["--proactor_threads", "1"]);
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(b"*abc\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "-ERR Protocol error: invalid multibulk length\r\n");
    line.clear();
    assert_eq!(r.read_line(&mut line).unwrap(), 0, "connection closed");
    let mut c = d.client();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

// Pipelined commands for several shards are squashed into per-shard batches; replies
// still come back in command order, per-key order holds, and a SELECT in the middle
// (a barrier) applies only to the commands after it.
#[test]
fn pipelined_squash_keeps_order() {
    let d = Server::darter(&["--proactor_threads", "4"]);
    let mut c = d.client();
    let mut p = redis::pipe();
    let mut want: Vec<redis::Value> = Vec::new();
    for round in 0..50 {
        for k in 0..10 {
            let key = format!("ctr:{k}");
            p.cmd("INCR").arg(&key);
            want.push(redis::Value::Int(round + 1));
            p.cmd("SET").arg(format!("s:{k}")).arg(format!("{round}"));
            want.push(redis::Value::Okay);
            p.cmd("GET").arg(format!("s:{k}"));
            want.push(redis::Value::BulkString(format!("{round}").into_bytes()));
        }
        if round == 25 {
            p.cmd("SELECT").arg(1);
            want.push(redis::Value::Okay);
            p.cmd("DBSIZE");
            want.push(redis::Value::Int(0));
            p.cmd("SELECT").arg(0);
            want.push(redis::Value::Okay);
        }
    }
    let got: Vec<redis::Value> = p.query(&mut c).unwrap();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "reply {i}");
    }
}
