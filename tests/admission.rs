//! One admission path (issue 18, item 2): a command is admitted by the same checks —
//! lookup, arity, DEBUG's gate, NOAUTH, OOM, key → shard — whether it runs alone (slow
//! path), inline in a pipeline, or squashed into a pipeline batch for another shard.
//!
//! ```text
//!   script ──one command at a time──▶ darter --proactor_threads 2   ┐
//!   script ──one pipelined burst────▶ darter --proactor_threads 2   ├ same replies,
//!   script ──one command at a time──▶ redis-server 7.0               ┘ byte for byte
//! ```
//!
//! The keys `k0`..`k15` land on both shards of a 2-thread server, so the burst mixes
//! inline commands, squashed runs and barriers (refusals, AUTH, SELECT, multi-key
//! commands). The two Darter runs also count the same calls and rejected calls in
//! `INFO commandstats`.

mod common;

use common::{RawConn, Server, encode_command, escape};

const KEYS: usize = 16;

fn owned(cmd: &[&str]) -> Vec<String> {
    cmd.iter().map(|s| s.to_string()).collect()
}

/// Commands every script mixes in on the keys of both shards: single-key reads and
/// writes, refusals of each kind that does not depend on the server's state, and
/// multi-key commands.
fn mixed(script: &mut Vec<Vec<String>>, round: usize) {
    for i in 0..KEYS {
        script.push(owned(&["SET", &format!("k{i}"), &format!("v{i}-{round}")]));
        script.push(owned(&["GET", &format!("k{}", (i + 7) % KEYS)]));
        match i % 4 {
            0 => script.push(owned(&["GET"])),                    // wrong arity
            1 => script.push(owned(&["DEBUG", "SLEEP", "0"])),    // enable-debug-command no
            2 => script.push(owned(&["NOSUCHCMD", "a", "b"])),    // unknown command
            _ => script.push(owned(&["INCR", &format!("k{i}")])), // a shard-side error
        }
    }
    // Eight keys: before AUTH a request of more than 10 arguments closes the connection.
    let mut mget = vec!["MGET".to_string()];
    mget.extend((0..8).map(|i| format!("k{i}")));
    script.push(mget);
    script.push(owned(&["INCR", "counter"]));
    script.push(owned(&["APPEND", "k3", "-more"]));
    script.push(owned(&["EXISTS", "k1", "k2", "k3", "nosuch"]));
}

/// Sends `script` one command at a time; returns each raw reply.
fn one_by_one(c: &mut RawConn, script: &[Vec<String>]) -> Vec<Vec<u8>> {
    script.iter().map(|cmd| c.cmd(cmd)).collect()
}

/// Sends `script` as one write (one pipelined burst); returns each raw reply.
fn pipelined(c: &mut RawConn, script: &[Vec<String>]) -> Vec<Vec<u8>> {
    let burst: Vec<u8> = script.iter().flat_map(|cmd| encode_command(cmd)).collect();
    c.send_raw(&burst);
    script.iter().map(|_| c.read_reply()).collect()
}

fn assert_same(what: &str, script: &[Vec<String>], want: &[Vec<u8>], got: &[Vec<u8>]) {
    for (i, cmd) in script.iter().enumerate() {
        assert_eq!(
            escape(&got[i]),
            escape(&want[i]),
            "{what}: reply {i} to {:?} differs (left: got, right: wanted)",
            cmd.join(" ")
        );
    }
}

/// `cmdstat_<name>` lines of INFO commandstats, reduced to their call counters
/// (`calls`, `rejected_calls`, `failed_calls`; the timings differ run to run).
fn call_counts(c: &mut RawConn) -> Vec<String> {
    let info = String::from_utf8(c.cmd(&["INFO", "commandstats"])).unwrap();
    let mut lines: Vec<String> = info
        .lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info:"))
        .map(|l| {
            let (name, fields) = l.split_once(':').unwrap();
            let kept: Vec<&str> = fields
                .split(',')
                .filter(|f| {
                    f.starts_with("calls=") || f.starts_with("rejected_calls=") || f.starts_with("failed_calls=")
                })
                .collect();
            format!("{name}:{}", kept.join(","))
        })
        .collect();
    lines.sort();
    lines
}

/// Runs `script` (after `setup`, one command at a time) on a fresh Darter one command
/// at a time, on another fresh Darter as one burst, and on redis-server: the replies
/// must be identical, and the two Darters' call counters too.
fn check(darter_args: &[&str], redis_args: &[&str], setup: &[Vec<String>], script: &[Vec<String>]) {
    let run = |s: &Server, burst: bool| {
        let mut c = s.raw();
        for cmd in setup {
            c.cmd(cmd);
        }
        if burst { pipelined(&mut c, script) } else { one_by_one(&mut c, script) }
    };
    let darter_alone = Server::darter(darter_args);
    let darter_burst = Server::darter(darter_args);
    let redis = Server::redis(redis_args);
    let want = run(&redis, false);
    let alone = run(&darter_alone, false);
    assert_same("darter, one by one, vs redis", script, &want, &alone);
    let burst = run(&darter_burst, true);
    assert_same("darter, pipelined, vs one by one", script, &alone, &burst);
    let admin = |s: &Server| {
        let mut c = s.raw();
        for cmd in setup.iter().filter(|c| c[0] == "AUTH") {
            c.cmd(cmd);
        }
        call_counts(&mut c)
    };
    assert_eq!(admin(&darter_burst), admin(&darter_alone), "call counters, pipelined vs one by one");
}

// Before AUTH every command but AUTH is refused with NOAUTH (after the unknown-command,
// arity and DEBUG checks, in Redis's order); after it, the refusals are the same in a
// burst as alone; SELECT in the middle of a squashed run applies to what follows.
#[test]
fn pipelined_refusals_and_auth_match_one_by_one() {
    let args = ["--proactor_threads", "2", "--requirepass", "pw", "--enable-debug-command", "no"];
    let redis_args = ["--requirepass", "pw", "--enable-debug-command", "no"];
    let mut script: Vec<Vec<String>> = Vec::new();
    mixed(&mut script, 0); // all refused: NOAUTH or an earlier check
    script.push(owned(&["AUTH", "pw"]));
    mixed(&mut script, 1);
    script.push(owned(&["SELECT", "1"]));
    mixed(&mut script, 2);
    script.push(owned(&["SELECT", "0"]));
    for i in 0..KEYS {
        script.push(owned(&["GET", &format!("k{i}")]));
    }
    check(&args, &redis_args, &[], &script);
}

// Over maxmemory, every DENYOOM command is refused with the OOM error whether it is
// alone, inline or squashed for the other shard, while reads, DEL and refusals that
// come first (arity, unknown) are unchanged.
#[test]
fn pipelined_oom_matches_one_by_one() {
    let args = ["--proactor_threads", "2", "--enable-debug-command", "no"];
    let redis_args = ["--enable-debug-command", "no"];
    let mut setup: Vec<Vec<String>> = (0..KEYS).map(|i| owned(&["SET", &format!("k{i}"), "before"])).collect();
    setup.push(owned(&["CONFIG", "SET", "maxmemory", "1"]));
    let mut script: Vec<Vec<String>> = Vec::new();
    mixed(&mut script, 0);
    script.push(owned(&["DEL", "k0", "k1", "k2"]));
    script.push(owned(&["MSET", "k4", "a", "k5", "b", "k6", "c"]));
    mixed(&mut script, 1);
    script.push(owned(&["DBSIZE"]));
    check(&args, &redis_args, &setup, &script);
}
