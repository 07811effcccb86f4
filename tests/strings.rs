//! STRING commands against the real binary: every reply and error text as Redis 7.0
//! gives it (checked against redis-server 7.0.15), millisecond-exact expiry, and the
//! multi-shard programs of MSET, MSETNX, MGET and LCS with 4 threads.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;
use darter::shard::shard_of;

/// A raw RESP client: sends commands, returns each reply's exact bytes as text.
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn new(d: &Server) -> Client {
        Client::connect(d.port)
    }

    fn connect(port: u16) -> Client {
        let w = TcpStream::connect(("127.0.0.1", port)).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Client { r: BufReader::new(w.try_clone().unwrap()), w }
    }

    fn send(&mut self, args: &[&[u8]]) {
        self.w.write_all(&common::encode_command(args)).unwrap();
    }

    fn read_reply(&mut self, into: &mut Vec<u8>) {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).unwrap();
        assert!(line.ends_with(b"\r\n"), "truncated reply {line:?}");
        into.extend_from_slice(&line);
        let n = || std::str::from_utf8(&line[1..line.len() - 2]).unwrap().parse::<i64>().unwrap();
        match line[0] {
            b'$' if n() >= 0 => {
                let mut body = vec![0; n() as usize + 2];
                self.r.read_exact(&mut body).unwrap();
                into.extend_from_slice(&body);
            }
            b'*' => {
                for _ in 0..n().max(0) {
                    self.read_reply(into);
                }
            }
            _ => {}
        }
    }

    fn raw(&mut self, args: &[&[u8]]) -> String {
        self.send(args);
        let mut out = Vec::new();
        self.read_reply(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// Runs a command given as words and returns the raw reply.
    fn q(&mut self, args: &[&str]) -> String {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.raw(&a)
    }
}

const OK: &str = "+OK\r\n";
const NIL: &str = "$-1\r\n";
const EMPTY: &str = "$0\r\n\r\n";
const SYNTAX: &str = "-ERR syntax error\r\n";
const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

fn int(n: i64) -> String {
    format!(":{n}\r\n")
}

fn invalid_expire(cmd: &str) -> String {
    format!("-ERR invalid expire time in '{cmd}' command\r\n")
}

fn arity(cmd: &str) -> String {
    format!("-ERR wrong number of arguments for '{cmd}' command\r\n")
}

/// `n` keys that all live on different shards of `nshards` (n <= nshards).
fn keys_on_distinct_shards(prefix: &str, n: usize, nshards: usize) -> Vec<String> {
    let mut seen = vec![false; nshards];
    let mut keys = Vec::new();
    for i in 0.. {
        let k = format!("{prefix}:{i}");
        let s = shard_of(k.as_bytes(), nshards);
        if !seen[s] {
            seen[s] = true;
            keys.push(k);
            if keys.len() == n {
                break;
            }
        }
    }
    keys
}

// SET: options, their conflicts, NX/XX/GET replies and every error text.
#[test]
fn set_options_and_errors() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Client::new(&d);
    assert_eq!(c.q(&["set", "k", "v"]), OK);
    assert_eq!(c.q(&["get", "k"]), bulk("v"));
    for bad in [
        &["ex", "10", "px", "10"][..],
        &["nx", "xx"],
        &["xx", "nx"],
        &["keepttl", "ex", "10"],
        &["ex", "10", "keepttl"],
        &["exat", "10", "pxat", "10"],
        &["ex"],
        &["foo"],
        &["persist"],
        &["ex", "abc", "foo"],
    ] {
        let mut args = vec!["set", "k", "v"];
        args.extend_from_slice(bad);
        assert_eq!(c.q(&args), SYNTAX, "{args:?}");
    }
    for bad in ["0", "-1", "9223372036854775807", "9223372036854774"] {
        assert_eq!(c.q(&["set", "k", "v", "ex", bad]), invalid_expire("set"), "EX {bad}");
    }
    assert_eq!(c.q(&["set", "k", "v", "px", "9223372036854775807"]), invalid_expire("set"));
    assert_eq!(c.q(&["set", "k", "v", "exat", "9223372036854776"]), invalid_expire("set"));
    assert_eq!(c.q(&["set", "k", "v", "px", "0", "get"]), invalid_expire("set"));
    assert_eq!(c.q(&["set", "k", "v", "ex", "abc"]), NOT_INT);
    assert_eq!(c.q(&["set", "k", "v", "ex", "1.5"]), NOT_INT);
    // Far-future absolute times are accepted as they are.
    assert_eq!(c.q(&["set", "k", "v", "pxat", "9223372036854775807"]), OK);
    assert_eq!(c.q(&["set", "k", "v", "exat", "9223372036854775"]), OK);
    // Repeats are allowed; the last expire value counts.
    assert_eq!(c.q(&["set", "k", "v", "NX", "nx"]), NIL);
    assert_eq!(c.q(&["set", "k", "v2", "Get", "GET"]), bulk("v"));
    assert_eq!(c.q(&["set", "k", "v", "ex", "10", "ex", "20"]), OK);

    // NX / XX without and with GET.
    assert_eq!(c.q(&["del", "k"]), int(1));
    assert_eq!(c.q(&["set", "k", "v", "xx"]), NIL);
    assert_eq!(c.q(&["exists", "k"]), int(0));
    assert_eq!(c.q(&["set", "k", "v", "nx", "get"]), NIL);
    assert_eq!(c.q(&["set", "k", "w", "nx", "get"]), bulk("v"));
    assert_eq!(c.q(&["get", "k"]), bulk("v"));
    assert_eq!(c.q(&["set", "k", "w", "xx", "get"]), bulk("v"));
    assert_eq!(c.q(&["get", "k"]), bulk("w"));
    assert_eq!(c.q(&["set", "k2", "v", "xx", "get"]), NIL);
    assert_eq!(c.q(&["exists", "k2"]), int(0));
    assert_eq!(c.q(&["set", "k2", "v", "get"]), NIL);
    assert_eq!(c.q(&["set", "k2", "v2", "keepttl", "get"]), bulk("v"));
    // An absolute time in the past sets a key that is already gone.
    assert_eq!(c.q(&["set", "k2", "v", "pxat", "1"]), OK);
    assert_eq!(c.q(&["get", "k2"]), NIL);
    assert_eq!(c.q(&["set", "k2", "v", "exat", "1", "get"]), NIL);
    assert_eq!(c.q(&["exists", "k2"]), int(0));

    // Binary-safe values.
    assert_eq!(c.raw(&[b"set", b"bin", b"a\0b\r\nc"]), OK);
    assert_eq!(c.raw(&[b"get", b"bin"]), "$6\r\na\0b\r\nc\r\n");

    assert_eq!(c.q(&["set", "k"]), arity("set"));
    assert_eq!(c.q(&["get"]), arity("get"));
    assert_eq!(c.q(&["get", "a", "b"]), arity("get"));
}

// SETNX, SETEX, PSETEX, GETSET, GETDEL.
#[test]
fn set_variants() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Client::new(&d);
    assert_eq!(c.q(&["setnx", "k", "v"]), int(1));
    assert_eq!(c.q(&["setnx", "k", "w"]), int(0));
    assert_eq!(c.q(&["get", "k"]), bulk("v"));
    for cmd in ["setex", "psetex"] {
        assert_eq!(c.q(&[cmd, "k", "0", "v"]), invalid_expire(cmd));
        assert_eq!(c.q(&[cmd, "k", "-1", "v"]), invalid_expire(cmd));
        assert_eq!(c.q(&[cmd, "k", "9223372036854775807", "v"]), invalid_expire(cmd));
        assert_eq!(c.q(&[cmd, "k", "abc", "v"]), NOT_INT);
        assert_eq!(c.q(&[cmd, "k", "100000", "x"]), OK);
        assert_eq!(c.q(&["get", "k"]), bulk("x"));
        assert_eq!(c.q(&[cmd, "k", "1"]), arity(cmd));
    }
    assert_eq!(c.q(&["getset", "k", "new"]), bulk("x"));
    assert_eq!(c.q(&["getset", "nokey", "val"]), NIL);
    assert_eq!(c.q(&["get", "nokey"]), bulk("val"));
    assert_eq!(c.q(&["getdel", "nokey"]), bulk("val"));
    assert_eq!(c.q(&["getdel", "nokey"]), NIL);
    assert_eq!(c.q(&["exists", "nokey"]), int(0));
    assert_eq!(c.q(&["setnx", "k"]), arity("setnx"));
    assert_eq!(c.q(&["getdel", "k", "x"]), arity("getdel"));
}

// GETEX: option grammar, error order (syntax, then lookup, then expire value), and
// its effect on the TTL.
#[test]
fn getex() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Client::new(&d);
    assert_eq!(c.q(&["getex", "k", "foo"]), SYNTAX);
    // A missing key answers nil before the expire value is checked.
    assert_eq!(c.q(&["getex", "k", "ex", "-1"]), NIL);
    assert_eq!(c.q(&["set", "k", "v"]), OK);
    assert_eq!(c.q(&["getex", "k", "ex", "-1"]), invalid_expire("getex"));
    assert_eq!(c.q(&["getex", "k", "ex", "0"]), invalid_expire("getex"));
    assert_eq!(c.q(&["getex", "k", "px", "9223372036854775807"]), invalid_expire("getex"));
    assert_eq!(c.q(&["getex", "k", "ex", "abc"]), NOT_INT);
    for bad in [
        &["persist", "ex", "10"][..],
        &["ex", "10", "persist"],
        &["nx"],
        &["xx"],
        &["get"],
        &["keepttl"],
        &["ex"],
        &["ex", "10", "px", "10"],
    ] {
        let mut args = vec!["getex", "k"];
        args.extend_from_slice(bad);
        assert_eq!(c.q(&args), SYNTAX, "{args:?}");
    }
    assert_eq!(c.q(&["getex", "k", "persist", "persist"]), bulk("v"));
    assert_eq!(c.q(&["getex", "k", "ex", "10", "ex", "10"]), bulk("v"));
    assert_eq!(c.q(&["getex", "k"]), bulk("v"));
    // An absolute time in the past deletes the key (after replying its value).
    assert_eq!(c.q(&["getex", "k", "exat", "1"]), bulk("v"));
    assert_eq!(c.q(&["exists", "k"]), int(0));
    assert_eq!(c.q(&["set", "k", "v"]), OK);
    assert_eq!(c.q(&["getex", "k", "pxat", "1"]), bulk("v"));
    assert_eq!(c.q(&["exists", "k"]), int(0));
    assert_eq!(c.q(&["getex"]), arity("getex"));
}

/// Sleeps until `at`.
fn sleep_until(at: Instant) {
    if let Some(d) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

/// Runs `cmds` (each with its expected reply; the first gives `key` a 100ms lifetime,
/// the others must keep it) and checks that the key exists at 80ms and is gone at 120ms,
/// measured from before the first command was sent and after the last reply came back.
/// Returns false, without judging, if the machine was too slow to look before 100ms.
fn lives_100ms(c: &mut Client, key: &str, cmds: &[(&[&str], &str)]) -> bool {
    let before = Instant::now();
    for (cmd, want) in cmds {
        assert_eq!(c.q(cmd), *want, "{cmd:?}");
    }
    let after = Instant::now();
    sleep_until(before + Duration::from_millis(80));
    let exists = c.q(&["exists", key]);
    if before.elapsed() >= Duration::from_millis(100) {
        return false;
    }
    assert_eq!(exists, int(1), "{cmds:?} at 80ms");
    sleep_until(after + Duration::from_millis(120));
    assert_eq!(c.q(&["exists", key]), int(0), "{cmds:?} at 120ms");
    assert_eq!(c.q(&["get", key]), NIL);
    true
}

fn check_100ms(c: &mut Client, key: &str, cmds: &[(&[&str], &str)]) {
    assert!((0..5).any(|_| lives_100ms(c, key, cmds)), "too slow to check {cmds:?}");
}

fn now_plus_100ms() -> String {
    (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 100).to_string()
}

// Expiry is exact to the millisecond: a 100ms key exists at 80ms and is gone at 120ms,
// whichever command gave it its deadline; commands that change a value keep its TTL.
#[test]
fn millisecond_expiry() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Client::new(&d);
    check_100ms(&mut c, "k", &[(&["set", "k", "v", "px", "100"], OK)]);
    check_100ms(&mut c, "k", &[(&["psetex", "k", "100", "v"], OK)]);
    // (A fresh absolute time for each attempt.)
    assert!((0..5).any(|_| lives_100ms(&mut c, "k", &[(&["set", "k", "v", "pxat", &now_plus_100ms()], OK)])));
    check_100ms(&mut c, "k", &[(&["set", "k", "v"], OK), (&["getex", "k", "px", "100"], &bulk("v"))]);
    // INCR, APPEND, SETRANGE, INCRBYFLOAT and SET KEEPTTL keep the deadline.
    check_100ms(
        &mut c,
        "k",
        &[
            (&["set", "k", "1", "px", "100"], OK),
            (&["incr", "k"], &int(2)),
            (&["append", "k", "0"], &int(2)),
            (&["setrange", "k", "0", "3"], &int(2)),
            (&["incrbyfloat", "k", "0.5"], &bulk("30.5")),
            (&["set", "k", "v", "keepttl"], OK),
        ],
    );
    // GETEX PERSIST and a plain SET drop it.
    assert_eq!(c.q(&["set", "k", "v", "px", "100"]), OK);
    assert_eq!(c.q(&["getex", "k", "persist"]), bulk("v"));
    assert_eq!(c.q(&["set", "k2", "v", "px", "100"]), OK);
    assert_eq!(c.q(&["set", "k2", "v"]), OK);
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(c.q(&["exists", "k", "k2"]), int(2));
}

// INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT.
#[test]
fn counters() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Client::new(&d);
    assert_eq!(c.q(&["incr", "n"]), int(1));
    assert_eq!(c.q(&["incrby", "n", "10"]), int(11));
    assert_eq!(c.q(&["decr", "n"]), int(10));
    assert_eq!(c.q(&["decrby", "n", "-5"]), int(15));
    assert_eq!(c.q(&["incrby", "n", "abc"]), NOT_INT);
    assert_eq!(c.q(&["incrby", "n", "1.0"]), NOT_INT);
    assert_eq!(c.q(&["decrby", "n", "-9223372036854775808"]), "-ERR decrement would overflow\r\n");
    assert_eq!(c.q(&["set", "n", "9223372036854775807"]), OK);
    assert_eq!(c.q(&["incr", "n"]), "-ERR increment or decrement would overflow\r\n");
    assert_eq!(c.q(&["set", "n", "-9223372036854775808"]), OK);
    assert_eq!(c.q(&["decr", "n"]), "-ERR increment or decrement would overflow\r\n");
    assert_eq!(c.q(&["incrby", "n", "9223372036854775807"]), int(-1));
    for v in ["010", " 10", "abc", "12345678901234567890", "1.5", ""] {
        assert_eq!(c.q(&["set", "q", v]), OK);
        assert_eq!(c.q(&["incr", "q"]), NOT_INT, "INCR of {v:?}");
    }

    assert_eq!(c.q(&["incrbyfloat", "f", "1.5"]), bulk("1.5"));
    assert_eq!(c.q(&["incrbyfloat", "f", "0.1"]), bulk("1.6"));
    assert_eq!(c.q(&["incrbyfloat", "f", "5.0e3"]), bulk("5001.60000000000000009"));
    assert_eq!(c.q(&["get", "f"]), bulk("5001.60000000000000009"));
    assert_eq!(c.q(&["incrbyfloat", "f", "abc"]), "-ERR value is not a valid float\r\n");
    assert_eq!(c.q(&["incrbyfloat", "f", "inf"]), "-ERR increment would produce NaN or Infinity\r\n");
    assert_eq!(c.q(&["incr", "f"]), NOT_INT);
    assert_eq!(c.q(&["set", "g", "abc"]), OK);
    assert_eq!(c.q(&["incrbyfloat", "g", "1"]), "-ERR value is not a valid float\r\n");
    assert_eq!(c.q(&["set", "h", "10"]), OK);
    assert_eq!(c.q(&["incrbyfloat", "h", "1"]), bulk("11"));
    assert_eq!(c.q(&["incr", "h"]), int(12));
    assert_eq!(c.q(&["incrbyfloat", "x", "-0"]), bulk("0"));
    assert_eq!(c.q(&["incrbyfloat", "y", "1.0e20"]), bulk("100000000000000000000"));
    assert_eq!(c.q(&["incrbyfloat", "y", "0x10"]), bulk("100000000000000000016"));
    for cmd in ["incr", "decr"] {
        assert_eq!(c.q(&[cmd]), arity(cmd));
    }
    for cmd in ["incrby", "decrby", "incrbyfloat"] {
        assert_eq!(c.q(&[cmd, "n"]), arity(cmd));
    }
}

// APPEND, PREPEND, STRLEN.
#[test]
fn append_prepend_strlen() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Client::new(&d);
    assert_eq!(c.q(&["append", "a", "123"]), int(3));
    assert_eq!(c.q(&["append", "a", "4"]), int(4));
    assert_eq!(c.q(&["append", "a", ""]), int(4));
    assert_eq!(c.q(&["get", "a"]), bulk("1234"));
    assert_eq!(c.q(&["prepend", "a", "0"]), int(5));
    assert_eq!(c.q(&["prepend", "p", "world"]), int(5));
    assert_eq!(c.q(&["prepend", "p", "hello "]), int(11));
    assert_eq!(c.q(&["get", "p"]), bulk("hello world"));
    assert_eq!(c.q(&["strlen", "a"]), int(5));
    assert_eq!(c.q(&["get", "a"]), bulk("01234"));
    assert_eq!(c.q(&["strlen", "nokey"]), int(0));
    assert_eq!(c.q(&["set", "i", "-12345"]), OK);
    assert_eq!(c.q(&["strlen", "i"]), int(6));
    assert_eq!(c.q(&["append", "a"]), arity("append"));
    assert_eq!(c.q(&["prepend", "a"]), arity("prepend"));
    assert_eq!(c.q(&["strlen"]), arity("strlen"));
}

// GETRANGE / SUBSTR index rules and SETRANGE's limits.
#[test]
fn ranges() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Client::new(&d);
    assert_eq!(c.q(&["getrange", "nokey", "0", "-1"]), EMPTY);
    assert_eq!(c.q(&["set", "s", "Hello World"]), OK);
    for (a, b, want) in [
        ("0", "4", "Hello"),
        ("-3", "-1", "rld"),
        ("-1", "-3", ""),
        ("5", "2", ""),
        ("0", "100", "Hello World"),
        ("100", "200", ""),
        ("-100", "-50", "H"),
        ("-100", "-200", ""),
        ("9223372036854775807", "-9223372036854775808", ""),
        ("-9223372036854775808", "9223372036854775807", "Hello World"),
    ] {
        assert_eq!(c.q(&["getrange", "s", a, b]), bulk(want), "GETRANGE {a} {b}");
    }
    assert_eq!(c.q(&["getrange", "s", "abc", "1"]), NOT_INT);
    assert_eq!(c.q(&["getrange", "s", "0", "9223372036854775808"]), NOT_INT);
    assert_eq!(c.q(&["substr", "s", "0", "2"]), bulk("Hel"));
    assert_eq!(c.q(&["set", "i", "12345"]), OK);
    assert_eq!(c.q(&["getrange", "i", "1", "2"]), bulk("23"));
    assert_eq!(c.q(&["set", "e", ""]), OK);
    assert_eq!(c.q(&["getrange", "e", "0", "-1"]), EMPTY);
    assert_eq!(c.q(&["substr", "s", "0"]), arity("substr"));

    assert_eq!(c.q(&["setrange", "s", "-1", "x"]), "-ERR offset is out of range\r\n");
    assert_eq!(c.q(&["setrange", "s", "abc", "x"]), NOT_INT);
    let too_big = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
    assert_eq!(c.q(&["setrange", "s", "536870912", "x"]), too_big);
    assert_eq!(c.q(&["setrange", "s", "536870911", "xx"]), too_big);
    assert_eq!(c.q(&["setrange", "s", "9223372036854775807", "x"]), too_big);
    assert_eq!(c.q(&["setrange", "nokey", "536870912", "x"]), too_big);
    assert_eq!(c.q(&["setrange", "s", "6", "Redis"]), int(11));
    assert_eq!(c.q(&["get", "s"]), bulk("Hello Redis"));
    assert_eq!(c.q(&["setrange", "s", "0", ""]), int(11));
    assert_eq!(c.q(&["setrange", "s", "13", "!"]), int(14));
    assert_eq!(c.q(&["get", "s"]), bulk("Hello Redis\0\0!"));
    // Nothing to write on a missing key creates nothing.
    assert_eq!(c.q(&["setrange", "nokey", "0", ""]), int(0));
    assert_eq!(c.q(&["setrange", "nokey", "536870912", ""]), int(0));
    assert_eq!(c.q(&["exists", "nokey"]), int(0));
    assert_eq!(c.q(&["setrange", "nokey", "3", "ab"]), int(5));
    assert_eq!(c.q(&["get", "nokey"]), bulk("\0\0\0ab"));
    assert_eq!(c.q(&["setrange", "i", "0", "9"]), int(5));
    assert_eq!(c.q(&["get", "i"]), bulk("92345"));
    assert_eq!(c.q(&["setrange", "i", "0"]), arity("setrange"));
}

/// The LCS cases of the Redis documentation and more, on keys `a` and `b`.
fn check_lcs(c: &mut Client, a: &str, b: &str) {
    assert_eq!(c.q(&["mset", a, "ohmytext", b, "mynewtext"]), OK);
    assert_eq!(c.q(&["lcs", a, b]), bulk("mytext"));
    assert_eq!(c.q(&["lcs", a, b, "LEN"]), int(6));
    assert_eq!(
        c.q(&["lcs", a, b, "idx"]),
        "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"
    );
    assert_eq!(
        c.q(&["lcs", a, b, "idx", "minmatchlen", "4", "withmatchlen"]),
        "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"
    );
    assert_eq!(
        c.q(&["lcs", a, b, "len", "idx"]),
        "-ERR If you want both the length and indexes, please just use IDX.\r\n"
    );
    assert_eq!(c.q(&["lcs", a, b, "minmatchlen"]), SYNTAX);
    assert_eq!(c.q(&["lcs", a, b, "foo"]), SYNTAX);
    assert_eq!(c.q(&["lcs", a, b, "minmatchlen", "abc"]), NOT_INT);
    assert_eq!(c.q(&["lcs", a, b, "withmatchlen"]), bulk("mytext"));
    // A missing key is an empty string.
    assert_eq!(c.q(&["del", b]), int(1));
    assert_eq!(c.q(&["lcs", a, b]), EMPTY);
    assert_eq!(c.q(&["lcs", a, b, "idx"]), "*4\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n");
    assert_eq!(c.q(&["mset", a, "12345", b, "2345"]), OK);
    assert_eq!(
        c.q(&["lcs", a, b, "idx", "withmatchlen"]),
        "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:1\r\n:4\r\n*2\r\n:0\r\n:3\r\n:4\r\n$3\r\nlen\r\n:4\r\n"
    );
    // The DP table may not exceed proto-max-bulk-len bytes.
    let big = "a".repeat(11_585);
    assert_eq!(c.q(&["mset", a, &big, b, &big]), OK);
    assert_eq!(
        c.q(&["lcs", a, b, "len"]),
        "-ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len\r\n"
    );
}

// LCS on one shard and with its keys on two shards (fetched in one hop, computed on
// the coordinator) gives the same replies.
#[test]
fn lcs_single_and_multi_shard() {
    let d = Server::darter(&["--proactor_threads", "4"]);
    let mut c = Client::new(&d);
    check_lcs(&mut c, "{t}a", "{t}b");
    let ks = keys_on_distinct_shards("lcs", 2, 4);
    check_lcs(&mut c, &ks[0], &ks[1]);
    assert_eq!(c.q(&["lcs", "a"]), arity("lcs"));
}

// MGET keeps key order across shards; MSET and MSETNX set everything or (MSETNX)
// nothing; an odd argument count is the arity error, also when the keys span shards.
#[test]
fn multi_key_commands_multi_shard() {
    let d = Server::darter(&["--proactor_threads", "4"]);
    let mut c = Client::new(&d);
    let ks = keys_on_distinct_shards("mk", 4, 4);
    let (k0, k1, k2, k3) = (&ks[0][..], &ks[1][..], &ks[2][..], &ks[3][..]);
    assert_eq!(c.q(&["mset", k0, "1", k1, "2", k2]), arity("mset"));
    assert_eq!(c.q(&["msetnx", k0, "1", k1, "2", k2]), arity("msetnx"));
    assert_eq!(c.q(&["mset", k0]), arity("mset"));
    assert_eq!(c.q(&["exists", k0, k1, k2]), int(0));
    assert_eq!(c.q(&["mset", k0, "a", k1, "b", k0, "c"]), OK);
    assert_eq!(c.q(&["mget", k1, "nokey", k0, k2]), format!("*4\r\n{}{NIL}{}{NIL}", bulk("b"), bulk("c")));
    // One existing key on any shard stops the whole MSETNX.
    assert_eq!(c.q(&["msetnx", k2, "x", k3, "y", k1, "z"]), int(0));
    assert_eq!(c.q(&["exists", k2, k3]), int(0));
    assert_eq!(c.q(&["get", k1]), bulk("b"));
    assert_eq!(c.q(&["msetnx", k2, "x", k3, "y"]), int(1));
    assert_eq!(c.q(&["mget", k0, k1, k2, k3]), format!("*4\r\n{}{}{}{}", bulk("c"), bulk("b"), bulk("x"), bulk("y")));
    // Single-shard forms.
    assert_eq!(c.q(&["msetnx", "{t}1", "a", "{t}2", "b"]), int(1));
    assert_eq!(c.q(&["msetnx", "{t}3", "a", "{t}2", "b"]), int(0));
    assert_eq!(c.q(&["mget", "{t}1", "{t}2", "{t}3"]), format!("*3\r\n{}{}{NIL}", bulk("a"), bulk("b")));
    assert_eq!(c.q(&["msetnx", "{t}1", "a", "{t}2"]), arity("msetnx"));
    // The server is still there.
    assert_eq!(c.q(&["ping"]), "+PONG\r\n");
}

// Racing MSETNX calls over the same keys on two shards: exactly one wins each round,
// and both keys hold the winner's value (the existence check and the sets are one
// isolated transaction).
#[test]
fn msetnx_is_atomic_across_shards() {
    let d = Server::darter(&["--proactor_threads", "4"]);
    let ks = keys_on_distinct_shards("race", 2, 4);
    for round in 0..20 {
        // Fresh keys each round, kept on the two shards by hashtags.
        let (a, b) = (format!("{{{}}}:{round}", ks[0]), format!("{{{}}}:{round}", ks[1]));
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (a, b, port) = (a.clone(), b.clone(), d.port);
                std::thread::spawn(move || {
                    let mut c = Client::connect(port);
                    c.q(&["msetnx", &a, &i.to_string(), &b, &i.to_string()])
                })
            })
            .collect();
        let replies: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(replies.iter().filter(|r| *r == &int(1)).count(), 1, "{replies:?}");
        let mut c = Client::new(&d);
        let (va, vb) = (c.q(&["get", &a]), c.q(&["get", &b]));
        assert_eq!(va, vb);
    }
}

/// Every `OpStatus` (src/op.rs) a client can reach without maxmemory, each from one
/// command, gives Redis 7.0.15's exact error bytes: the texts now come from one
/// function, so this pins that each status renders as the errors it replaced.
#[test]
fn op_status_texts_match_redis() {
    let (d, r) = (Server::darter(&[]), Server::redis(&[]));
    let cases: &[&[&str]] = &[
        &["set", "s", "abc"],
        &["set", "n", "10"],
        // Syntax, NotInteger, invalid expire times.
        &["set", "k", "v", "nx", "xx"],
        &["set", "k", "v", "ex", "x"],
        &["set", "k", "v", "ex", "0"],
        &["getex", "s", "px", "-5"],
        &["getex", "s", "bogus"],
        &["expire", "s", "x"],
        &["pexpire", "s", "9223372036854775807"],
        &["expire", "s", "9223372036854775807"],
        // Counters.
        &["incr", "s"],
        &["incrby", "n", "x"],
        &["incrby", "n", "9223372036854775807"],
        &["decrby", "n", "-9223372036854775808"],
        &["incrbyfloat", "s", "1"],
        &["incrbyfloat", "n", "x"],
        &["incrbyfloat", "n", "inf"],
        // Ranges and sizes.
        &["setrange", "s", "-1", "x"],
        &["setrange", "s", "x", "x"],
        &["setrange", "s", "536870911", "xx"],
        &["getrange", "s", "a", "1"],
        &["append", "s", ""],
        // Keyspace commands.
        &["rename", "missing", "x"],
        &["copy", "s", "s"],
        &["copy", "s", "t", "db", "99"],
        &["copy", "s", "t", "db", "x"],
        &["copy", "s", "t", "bogus"],
        &["move", "s", "0"],
        &["move", "s", "x"],
        &["scan", "x"],
        &["scan", "0", "count", "0"],
        &["scan", "0", "count", "x"],
        &["swapdb", "x", "0"],
        &["swapdb", "0", "x"],
        &["swapdb", "0", "99"],
        &["flushdb", "bogus"],
        &["select", "x"],
        &["lcs", "s", "n", "minmatchlen", "x"],
        &["lcs", "s", "n", "bogus"],
    ];
    let (mut dc, mut rc) = (d.raw(), r.raw());
    let mut errors = 0;
    for args in cases {
        let (got, want) = (dc.cmd(args), rc.cmd(args));
        assert_eq!(common::escape(&got), common::escape(&want), "{args:?}");
        errors += usize::from(got.starts_with(b"-"));
    }
    // All but the two setup SETs and APPEND of nothing are errors.
    assert_eq!(errors, cases.len() - 3);
}
