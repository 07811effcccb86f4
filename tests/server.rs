//! Connection and server commands against the real binary: reply shapes and Redis 7.0's
//! error texts for PING/HELLO/AUTH/RESET, CLIENT (across threads), COMMAND, INFO,
//! CONFIG, OBJECT/MEMORY/DEBUG, and SHUTDOWN ending the process.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;

/// A decoded reply.
#[derive(Debug, Clone, PartialEq)]
enum R {
    Simple(String),
    Err(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Arr(Vec<R>),
    Map(Vec<(R, R)>),
    Set(Vec<R>),
    Verbatim(String, String),
    Double(String),
    Bool(bool),
    Big(String),
    Push(Vec<R>),
}

impl R {
    fn text(&self) -> String {
        match self {
            R::Simple(s) | R::Err(s) | R::Double(s) | R::Big(s) => s.clone(),
            R::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            R::Verbatim(_, t) => t.clone(),
            R::Int(n) => n.to_string(),
            other => panic!("not a string reply: {other:?}"),
        }
    }

    fn int(&self) -> i64 {
        match self {
            R::Int(n) => *n,
            other => panic!("not an integer: {other:?}"),
        }
    }

    fn items(&self) -> Vec<R> {
        match self {
            R::Arr(v) | R::Set(v) | R::Push(v) => v.clone(),
            R::Map(m) => m.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect(),
            other => panic!("not an aggregate: {other:?}"),
        }
    }

    fn err(&self) -> String {
        match self {
            R::Err(e) => e.clone(),
            other => panic!("not an error: {other:?}"),
        }
    }
}

/// A raw RESP connection that records the bytes of the last reply.
struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
    raw: Vec<u8>,
}

impl Conn {
    fn new(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn { w: s.try_clone().unwrap(), r: BufReader::new(s), raw: Vec::new() }
    }

    fn send(&mut self, args: &[&str]) {
        self.w.write_all(&common::encode_command(args)).unwrap();
    }

    fn cmd(&mut self, args: &[&str]) -> R {
        self.send(args);
        self.raw.clear();
        self.read()
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self.r.read_line(&mut l).unwrap();
        assert!(n > 0, "connection closed");
        self.raw.extend_from_slice(l.as_bytes());
        assert!(l.ends_with("\r\n"), "line without CRLF: {l:?}");
        l.truncate(l.len() - 2);
        l
    }

    fn read(&mut self) -> R {
        let l = self.line();
        let (t, rest) = l.split_at(1);
        let n = || rest.parse::<i64>().unwrap();
        match t {
            "+" => R::Simple(rest.into()),
            "-" => R::Err(rest.into()),
            ":" => R::Int(n()),
            "," => R::Double(rest.into()),
            "(" => R::Big(rest.into()),
            "#" => R::Bool(rest == "t"),
            "_" => R::Nil,
            "$" | "=" => {
                if n() < 0 {
                    return R::Nil;
                }
                let mut b = vec![0; n() as usize + 2];
                self.r.read_exact(&mut b).unwrap();
                self.raw.extend_from_slice(&b);
                b.truncate(b.len() - 2);
                if t == "=" {
                    let s = String::from_utf8(b).unwrap();
                    R::Verbatim(s[..3].into(), s[4..].into())
                } else {
                    R::Bulk(b)
                }
            }
            "*" | "~" | ">" => {
                if n() < 0 {
                    return R::Nil;
                }
                let v: Vec<R> = (0..n()).map(|_| self.read()).collect();
                match t {
                    "*" => R::Arr(v),
                    "~" => R::Set(v),
                    _ => R::Push(v),
                }
            }
            "%" => R::Map((0..n()).map(|_| (self.read(), self.read())).collect()),
            _ => panic!("unknown reply type {l:?}"),
        }
    }

    /// True once the server has closed the connection (EOF within the timeout).
    fn closed(&mut self) -> bool {
        self.r.get_ref().set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 64];
        matches!(self.r.read(&mut b), Ok(0) | Err(_))
    }
}

fn ok(r: R) {
    assert_eq!(r, R::Simple("OK".into()));
}

/// The field of an INFO text.
fn info_field(info: &str, field: &str) -> Option<String> {
    info.split("\r\n").find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.to_string()))
}

// PING/ECHO/SELECT/TIME/LASTSAVE/SAVE/DBSIZE answer like Redis.
#[test]
fn basic_server_commands() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Conn::new(d.port);
    assert_eq!(c.cmd(&["PING"]), R::Simple("PONG".into()));
    assert_eq!(c.cmd(&["PING", "hi"]), R::Bulk(b"hi".to_vec()));
    assert_eq!(c.cmd(&["PING", "a", "b"]).err(), "ERR wrong number of arguments for 'ping' command");
    assert_eq!(c.cmd(&["ECHO", "x y"]), R::Bulk(b"x y".to_vec()));
    assert_eq!(c.cmd(&["SELECT", "16"]).err(), "ERR DB index is out of range");
    assert_eq!(c.cmd(&["SELECT", "x"]).err(), "ERR value is not an integer or out of range");
    ok(c.cmd(&["SELECT", "3"]));
    ok(c.cmd(&["SET", "k", "v"]));
    assert_eq!(c.cmd(&["DBSIZE"]).int(), 1);
    ok(c.cmd(&["SELECT", "0"]));
    assert_eq!(c.cmd(&["DBSIZE"]).int(), 0);
    let t = c.cmd(&["TIME"]).items();
    assert_eq!(t.len(), 2);
    let secs: i64 = t[0].text().parse().unwrap();
    let usecs: i64 = t[1].text().parse().unwrap();
    assert!(secs > 1_600_000_000 && (0..1_000_000).contains(&usecs));
    assert!((c.cmd(&["LASTSAVE"]).int() - secs).abs() < 60);
    assert_eq!(c.cmd(&["SAVE"]).err(), "ERR snapshots are not supported yet");
    assert_eq!(c.cmd(&["FUNCTION", "FLUSH"]), R::Simple("OK".into()));
    assert_eq!(c.cmd(&["FUNCTION", "FLUSH", "ASYNC"]), R::Simple("OK".into()));
    assert_eq!(c.cmd(&["FUNCTION", "FLUSH", "x"]).err(), "ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
    assert_eq!(c.cmd(&["QUIT"]), R::Simple("OK".into()));
    assert!(c.closed());
}

// HELLO switches the protocol: maps become %, verbatim strings =; HELLO 2 goes back.
#[test]
fn hello_switches_protocol() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Conn::new(d.port);
    let r = c.cmd(&["HELLO", "3"]);
    assert!(c.raw.starts_with(
        b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n"
    ));
    assert!(
        c.raw.ends_with(b"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n")
    );
    let id = c.cmd(&["CLIENT", "ID"]).int();
    assert_eq!(r.items()[7], R::Int(id));
    let m = c.cmd(&["CONFIG", "GET", "maxmemory"]);
    assert_eq!(m, R::Map(vec![(R::Bulk(b"maxmemory".to_vec()), R::Bulk(b"0".to_vec()))]));
    assert!(
        matches!(c.cmd(&["CLIENT", "INFO"]), R::Verbatim(f, t) if f == "txt" && t.contains(" resp=3") && t.ends_with('\n'))
    );
    assert!(matches!(c.cmd(&["INFO", "server"]), R::Verbatim(..)));
    assert_eq!(c.cmd(&["GET", "nokey"]), R::Nil);
    assert_eq!(c.raw, b"_\r\n");
    assert!(matches!(c.cmd(&["COMMAND", "INFO", "get"]).items()[0].items()[2], R::Set(_)));
    // Back to RESP2, with a name.
    let r = c.cmd(&["HELLO", "2", "SETNAME", "conn-a"]);
    assert!(c.raw.starts_with(b"*14\r\n"));
    assert_eq!(r.items()[5], R::Int(2));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), R::Bulk(b"conn-a".to_vec()));
    assert_eq!(c.cmd(&["GET", "nokey"]), R::Nil);
    assert_eq!(c.raw, b"$-1\r\n");
    // HELLO without a version keeps the protocol.
    assert!(matches!(c.cmd(&["HELLO"]), R::Arr(_)));
    assert_eq!(c.cmd(&["HELLO", "4"]).err(), "NOPROTO unsupported protocol version");
    assert_eq!(c.cmd(&["HELLO", "1"]).err(), "NOPROTO unsupported protocol version");
    assert_eq!(c.cmd(&["HELLO", "x"]).err(), "ERR Protocol version is not an integer or out of range");
    assert_eq!(c.cmd(&["HELLO", "3", "foo"]).err(), "ERR Syntax error in HELLO option 'foo'");
    assert_eq!(c.cmd(&["HELLO", "3", "AUTH", "default"]).err(), "ERR Syntax error in HELLO option 'AUTH'");
    assert_eq!(
        c.cmd(&["HELLO", "2", "SETNAME", "a b"]).err(),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    // Without requirepass any password authenticates the default user.
    assert!(matches!(c.cmd(&["HELLO", "3", "AUTH", "default", "whatever"]), R::Map(_)));
    assert_eq!(
        c.cmd(&["HELLO", "2", "AUTH", "bob", "x"]).err(),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    // RESET goes back to RESP2, db 0, no name.
    ok(c.cmd(&["SELECT", "2"]));
    assert_eq!(c.cmd(&["RESET"]), R::Simple("RESET".into()));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), R::Nil);
    assert_eq!(c.raw, b"$-1\r\n");
    assert!(c.cmd(&["CLIENT", "INFO"]).text().contains(" db=0 "));
}

// AUTH with and without requirepass, NOAUTH, HELLO AUTH, RESET dropping authentication.
#[test]
fn auth_flow() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Conn::new(d.port);
    assert_eq!(
        c.cmd(&["AUTH", "x"]).err(),
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
    ok(c.cmd(&["AUTH", "default", "x"]));
    assert_eq!(c.cmd(&["AUTH", "a", "b"]).err(), "WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(c.cmd(&["AUTH", "a", "b", "c"]).err(), "ERR syntax error");
    drop(d);

    let d = Server::darter(&["--proactor_threads", "2", "--requirepass", "secret"]);
    let mut c = Conn::new(d.port);
    assert_eq!(c.cmd(&["PING"]).err(), "NOAUTH Authentication required.");
    assert_eq!(c.cmd(&["CLIENT", "ID"]).err(), "NOAUTH Authentication required.");
    assert_eq!(c.cmd(&["AUTH", "wrong"]).err(), "WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(
        c.cmd(&["AUTH", "default", "wrong"]).err(),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert!(
        c.cmd(&["HELLO", "3"]).err().starts_with("NOAUTH HELLO must be called with the client already authenticated")
    );
    assert_eq!(
        c.cmd(&["HELLO", "3", "AUTH", "default", "x"]).err(),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    ok(c.cmd(&["AUTH", "secret"]));
    assert_eq!(c.cmd(&["PING"]), R::Simple("PONG".into()));
    // A failed AUTH does not log an authenticated client out.
    assert!(c.cmd(&["AUTH", "nope"]).err().starts_with("WRONGPASS"));
    assert_eq!(c.cmd(&["PING"]), R::Simple("PONG".into()));
    assert_eq!(c.cmd(&["RESET"]), R::Simple("RESET".into()));
    assert_eq!(c.cmd(&["PING"]).err(), "NOAUTH Authentication required.");
    let r = c.cmd(&["HELLO", "3", "AUTH", "default", "secret", "SETNAME", "me"]);
    assert!(matches!(r, R::Map(_)));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), R::Bulk(b"me".to_vec()));
    ok(c.cmd(&["CONFIG", "SET", "requirepass", ""]));
    // New connections, whatever thread takes them, need no password any more.
    for _ in 0..6 {
        assert_eq!(Conn::new(d.port).cmd(&["PING"]), R::Simple("PONG".into()));
    }
    ok(c.cmd(&["CONFIG", "SET", "requirepass", "again"]));
    for _ in 0..6 {
        let mut n = Conn::new(d.port);
        assert_eq!(n.cmd(&["PING"]).err(), "NOAUTH Authentication required.");
        ok(n.cmd(&["AUTH", "again"]));
    }
    // The connection that set it stays authenticated.
    assert_eq!(c.cmd(&["PING"]), R::Simple("PONG".into()));
}

// CLIENT's per-connection subcommands and errors.
#[test]
fn client_own_connection() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Conn::new(d.port);
    let id = c.cmd(&["CLIENT", "ID"]).int();
    assert!(id > 0);
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), R::Nil);
    ok(c.cmd(&["CLIENT", "SETNAME", "worker-1"]));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), R::Bulk(b"worker-1".to_vec()));
    assert_eq!(
        c.cmd(&["CLIENT", "SETNAME", "a b"]).err(),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    assert_eq!(
        c.cmd(&["CLIENT", "SETNAME", "a\nb"]).err(),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    let info = c.cmd(&["CLIENT", "INFO"]).text();
    assert!(info.starts_with(&format!("id={id} addr=127.0.0.1:")), "{info}");
    assert!(info.contains(" name=worker-1 ") && info.contains(" cmd=client|info ") && info.ends_with('\n'), "{info}");
    ok(c.cmd(&["CLIENT", "SETNAME", ""]));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), R::Nil);
    ok(c.cmd(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]));
    ok(c.cmd(&["CLIENT", "SETINFO", "lib-ver", "5.0.0"]));
    assert!(c.cmd(&["CLIENT", "INFO"]).text().contains("lib-name=redis-py lib-ver=5.0.0"));
    assert_eq!(c.cmd(&["CLIENT", "SETINFO", "foo", "x"]).err(), "ERR Unrecognized option 'foo'");
    ok(c.cmd(&["CLIENT", "NO-EVICT", "on"]));
    ok(c.cmd(&["CLIENT", "NO-TOUCH", "off"]));
    assert_eq!(c.cmd(&["CLIENT", "NO-EVICT", "x"]).err(), "ERR syntax error");
    assert_eq!(c.cmd(&["CLIENT", "foo"]).err(), "ERR unknown subcommand 'foo'. Try CLIENT HELP.");
    assert_eq!(c.cmd(&["CLIENT"]).err(), "ERR wrong number of arguments for 'client' command");
    assert_eq!(c.cmd(&["CLIENT", "ID", "x"]).err(), "ERR wrong number of arguments for 'client|id' command");
    assert_eq!(c.cmd(&["CLIENT", "SETNAME"]).err(), "ERR wrong number of arguments for 'client|setname' command");
    assert_eq!(c.cmd(&["CLIENT", "KILL"]).err(), "ERR wrong number of arguments for 'client|kill' command");
    let help = c.cmd(&["CLIENT", "HELP"]).items();
    assert_eq!(help[0].text(), "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    assert_eq!(help.last().unwrap().text(), "    Prints this help.");
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", "abc"]).err(), "ERR client-id should be greater than 0");
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", "0"]).err(), "ERR client-id should be greater than 0");
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", "99999"]).int(), 0);
    assert_eq!(c.cmd(&["CLIENT", "KILL", "SKIPME", "maybe"]).err(), "ERR syntax error");
    assert_eq!(c.cmd(&["CLIENT", "KILL", "FOO", "bar"]).err(), "ERR syntax error");
    assert_eq!(c.cmd(&["CLIENT", "KILL", "TYPE", "foo"]).err(), "ERR Unknown client type 'foo'");
    assert_eq!(c.cmd(&["CLIENT", "KILL", "USER", "nobody"]).err(), "ERR No such user 'nobody'");
    assert_eq!(c.cmd(&["CLIENT", "KILL", "1.2.3.4:5"]).err(), "ERR No such client");
    assert_eq!(c.cmd(&["CLIENT", "LIST", "TYPE", "foo"]).err(), "ERR Unknown client type 'foo'");
    assert_eq!(c.cmd(&["CLIENT", "LIST", "ID", "abc"]).err(), "ERR Invalid client ID");
    assert_eq!(c.cmd(&["CLIENT", "LIST", "foo"]).err(), "ERR syntax error");
    assert_eq!(c.cmd(&["CLIENT", "LIST", "TYPE", "replica"]).text(), "");
    // The caller is spared by default.
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", &id.to_string()]).int(), 0);
    assert_eq!(c.cmd(&["PING"]), R::Simple("PONG".into()));
}

/// Ids of the connections CLIENT LIST shows.
fn listed_ids(list: &str) -> Vec<i64> {
    list.lines().map(|l| l.strip_prefix("id=").unwrap().split(' ').next().unwrap().parse().unwrap()).collect()
}

// CLIENT LIST sees every thread's connections; CLIENT KILL closes them on any thread.
#[test]
fn client_list_and_kill_across_threads() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut conns: Vec<Conn> = (0..8).map(|_| Conn::new(d.port)).collect();
    let mut ids = Vec::new();
    for (i, c) in conns.iter_mut().enumerate() {
        ok(c.cmd(&["CLIENT", "SETNAME", &format!("c{i}")]));
        ids.push(c.cmd(&["CLIENT", "ID"]).int());
    }
    let list = conns[0].cmd(&["CLIENT", "LIST"]).text();
    let mut listed = listed_ids(&list);
    listed.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(listed, want, "{list}");
    assert!(list.lines().all(|l| l.contains(" laddr=127.0.0.1:") && l.contains(" flags=N ")), "{list}");
    let mine = list.lines().find(|l| l.contains(" name=c0 ")).unwrap();
    assert!(mine.contains(" cmd=client|list "), "{mine}");
    assert_eq!(listed_ids(&conns[0].cmd(&["CLIENT", "LIST", "TYPE", "normal"]).text()).len(), 8);
    // ID filter: argument order, unknown ids skipped.
    let l = conns[1].cmd(&["CLIENT", "LIST", "ID", &ids[5].to_string(), "999999", &ids[2].to_string()]).text();
    assert_eq!(listed_ids(&l), vec![ids[5], ids[2]]);
    let info = conns[0].cmd(&["INFO", "clients"]).text();
    assert_eq!(info_field(&info, "connected_clients").unwrap(), "8");

    // Kill by id: every other connection, wherever it lives.
    for i in [3, 4, 5] {
        assert_eq!(conns[0].cmd(&["CLIENT", "KILL", "ID", &ids[i].to_string()]).int(), 1);
    }
    for i in [3, 4, 5] {
        assert!(conns[i].closed(), "connection {i} still open");
    }
    // Kill by address, new and old forms.
    let addr_of = |list: &str, name: &str| -> String {
        let l = list.lines().find(|l| l.contains(&format!(" name={name} "))).unwrap().to_string();
        l.split(' ').find_map(|f| f.strip_prefix("addr=")).unwrap().to_string()
    };
    let list = conns[0].cmd(&["CLIENT", "LIST"]).text();
    assert_eq!(conns[0].cmd(&["CLIENT", "KILL", "ADDR", &addr_of(&list, "c6")]).int(), 1);
    ok(conns[0].cmd(&["CLIENT", "KILL", &addr_of(&list, "c7")]));
    assert!(conns[6].closed() && conns[7].closed());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = conns[0].cmd(&["INFO", "clients"]).text();
        if info_field(&info, "connected_clients").unwrap() == "3" {
            break;
        }
        assert!(Instant::now() < deadline, "connected_clients stays {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(listed_ids(&conns[0].cmd(&["CLIENT", "LIST"]).text()).len(), 3);
    // SKIPME no: the caller goes too, after its reply.
    let laddr = conns[2].cmd(&["CLIENT", "INFO"]).text();
    let laddr = laddr.split(' ').find_map(|f| f.strip_prefix("laddr=")).unwrap().to_string();
    assert_eq!(conns[2].cmd(&["CLIENT", "KILL", "ID", &ids[2].to_string(), "SKIPME", "no"]).int(), 1);
    assert!(conns[2].closed());
    // LADDR matches everyone left; TYPE normal with SKIPME yes spares the caller.
    assert_eq!(conns[0].cmd(&["CLIENT", "KILL", "LADDR", &laddr, "TYPE", "normal"]).int(), 1);
    assert!(conns[1].closed());
    assert_eq!(conns[0].cmd(&["PING"]), R::Simple("PONG".into()));
}

// COMMAND, COMMAND COUNT/INFO/LIST/DOCS/GETKEYS in Redis 7.0's formats.
#[test]
fn command_introspection() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Conn::new(d.port);
    let all = c.cmd(&["COMMAND"]).items();
    assert_eq!(c.cmd(&["COMMAND", "COUNT"]).int(), all.len() as i64);
    assert!(all.len() >= 20);
    for e in &all {
        let f = e.items();
        assert_eq!(f.len(), 10, "{e:?}");
    }
    let get = c.cmd(&["COMMAND", "INFO", "get", "nosuch", "CONFIG|GET"]).items();
    assert_eq!(get[1], R::Nil);
    let g = get[0].items();
    assert_eq!(g[0], R::Bulk(b"get".to_vec()));
    assert_eq!(g[1], R::Int(2));
    assert_eq!(g[2].items(), vec![R::Simple("readonly".into()), R::Simple("fast".into())]);
    assert_eq!(&g[3..6], &[R::Int(1), R::Int(1), R::Int(1)]);
    assert_eq!(g[6].items(), vec![R::Simple("@read".into()), R::Simple("@string".into()), R::Simple("@fast".into())]);
    assert_eq!(g[8].items().len(), 1, "one key spec");
    let cg = get[2].items();
    assert_eq!(cg[0], R::Bulk(b"config|get".to_vec()));
    assert_eq!(cg[1], R::Int(-3));
    // Containers list their subcommands.
    let client = c.cmd(&["COMMAND", "INFO", "client"]).items()[0].items();
    assert!(client[9].items().iter().any(|s| s.items()[0] == R::Bulk(b"client|kill".to_vec())));
    let hello = c.cmd(&["COMMAND", "INFO", "hello"]).items()[0].items();
    assert!(hello[2].items().contains(&R::Simple("no_auth".into())));
    // GETKEYS.
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "set", "a", "b"]), R::Arr(vec![R::Bulk(b"a".to_vec())]));
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "mset", "a", "1", "b", "2"]),
        R::Arr(vec![R::Bulk(b"a".to_vec()), R::Bulk(b"b".to_vec())])
    );
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "object", "encoding", "k"]), R::Arr(vec![R::Bulk(b"k".to_vec())]));
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "nosuch", "a"]).err(), "ERR Invalid command specified");
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "ping", "x"]).err(), "ERR The command has no key arguments");
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "get", "a", "b"]).err(),
        "ERR Invalid number of arguments specified for command"
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "get"]).err(),
        "ERR wrong number of arguments for 'command|getkeys' command"
    );
    assert_eq!(c.cmd(&["COMMAND", "COUNT", "x"]).err(), "ERR wrong number of arguments for 'command|count' command");
    assert_eq!(c.cmd(&["COMMAND", "foo"]).err(), "ERR unknown subcommand 'foo'. Try COMMAND HELP.");
    // LIST with filters.
    let names = c.cmd(&["COMMAND", "LIST"]).items();
    assert!(names.contains(&R::Bulk(b"config|set".to_vec())) && names.contains(&R::Bulk(b"get".to_vec())));
    assert_eq!(c.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "ech*"]), R::Arr(vec![R::Bulk(b"echo".to_vec())]));
    let conn_cmds = c.cmd(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "connection"]).items();
    assert!(conn_cmds.contains(&R::Bulk(b"ping".to_vec())) && !conn_cmds.contains(&R::Bulk(b"get".to_vec())));
    assert_eq!(c.cmd(&["COMMAND", "LIST", "FILTERBY", "MODULE", "x"]), R::Arr(vec![]));
    assert_eq!(c.cmd(&["COMMAND", "LIST", "FILTERBY"]).err(), "ERR syntax error");
    // DOCS.
    let docs = c.cmd(&["COMMAND", "DOCS", "get", "nosuch"]).items();
    assert_eq!(docs.len(), 2);
    let doc = docs[1].items();
    assert_eq!(
        doc[0..6].to_vec(),
        vec![
            R::Bulk(b"summary".to_vec()),
            R::Bulk(b"Get the value of a key".to_vec()),
            R::Bulk(b"since".to_vec()),
            R::Bulk(b"1.0.0".to_vec()),
            R::Bulk(b"group".to_vec()),
            R::Bulk(b"string".to_vec()),
        ]
    );
}

// INFO: sections, field names, CRLF lines, summed counters and client count.
#[test]
fn info_sections() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Conn::new(d.port);
    let others: Vec<Conn> = (0..4).map(|_| Conn::new(d.port)).collect();
    for i in 0..20 {
        ok(c.cmd(&["SET", &format!("key:{i}"), "v"]));
    }
    ok(c.cmd(&["SELECT", "2"]));
    ok(c.cmd(&["SET", "x", "1"]));
    ok(c.cmd(&["SELECT", "0"]));
    assert_eq!(c.cmd(&["GET", "key:1"]), R::Bulk(b"v".to_vec()));
    assert_eq!(c.cmd(&["GET", "nokey"]), R::Nil);
    let info = c.cmd(&["INFO"]).text();
    assert!(!info.replace("\r\n", "").contains('\n'), "lines end in CRLF");
    let headers: Vec<&str> = info.split("\r\n").filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        headers,
        vec![
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Errorstats",
            "# Cluster",
            "# Keyspace"
        ]
    );
    assert_eq!(info_field(&info, "redis_version").unwrap(), "7.0.15");
    assert!(info_field(&info, "darter_version").is_some());
    assert_eq!(info_field(&info, "redis_mode").unwrap(), "standalone");
    assert_eq!(info_field(&info, "tcp_port").unwrap(), d.port.to_string());
    assert_eq!(info_field(&info, "process_id").unwrap(), d.pid().to_string());
    assert_eq!(info_field(&info, "run_id").unwrap().len(), 40);
    assert_eq!(info_field(&info, "connected_clients").unwrap(), (others.len() + 1).to_string());
    assert_eq!(info_field(&info, "blocked_clients").unwrap(), "0");
    assert_eq!(info_field(&info, "maxmemory").unwrap(), "0");
    assert_eq!(info_field(&info, "maxmemory_human").unwrap(), "0B");
    assert_eq!(info_field(&info, "maxmemory_policy").unwrap(), "noeviction");
    assert!(info_field(&info, "used_memory").unwrap().parse::<u64>().unwrap() > 0);
    assert!(info_field(&info, "used_memory_rss").unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(info_field(&info, "loading").unwrap(), "0");
    assert_eq!(info_field(&info, "role").unwrap(), "master");
    assert_eq!(info_field(&info, "connected_slaves").unwrap(), "0");
    assert!(info_field(&info, "used_cpu_user").unwrap().contains('.'));
    assert_eq!(info_field(&info, "keyspace_hits").unwrap(), "1");
    assert_eq!(info_field(&info, "keyspace_misses").unwrap(), "1");
    assert!(info_field(&info, "total_commands_processed").unwrap().parse::<u64>().unwrap() >= 25);
    assert!(info_field(&info, "total_connections_received").unwrap().parse::<u64>().unwrap() >= 5);
    assert_eq!(info_field(&info, "db0").unwrap(), "keys=20,expires=0,avg_ttl=0");
    assert_eq!(info_field(&info, "db2").unwrap(), "keys=1,expires=0,avg_ttl=0");
    assert_eq!(info_field(&info, "db1"), None);
    assert!(!info.contains("# Commandstats"));
    // Named sections, in Redis's order whatever the argument order; unknown ones empty.
    let two = c.cmd(&["INFO", "keyspace", "CLUSTER"]).text();
    assert!(two.starts_with("# Cluster\r\ncluster_enabled:0\r\n\r\n# Keyspace\r\ndb0:"), "{two}");
    assert_eq!(c.cmd(&["INFO", "nosuch"]).text(), "");
    let stats = c.cmd(&["INFO", "commandstats"]).text();
    assert!(
        stats.contains("cmdstat_set:calls=21,usec=0,usec_per_call=0.00,rejected_calls=0,failed_calls=0\r\n"),
        "{stats}"
    );
    let all = c.cmd(&["INFO", "all"]).text();
    assert!(all.contains("# Commandstats") && all.contains("# Keyspace"));
    let everything = c.cmd(&["INFO", "everything"]).text();
    assert!(everything.contains("# Latencystats"));
    // RESETSTAT zeroes the counters on every thread.
    ok(c.cmd(&["CONFIG", "RESETSTAT"]));
    let info = c.cmd(&["INFO", "stats", "commandstats"]).text();
    assert_eq!(info_field(&info, "keyspace_hits").unwrap(), "0");
    assert_eq!(info_field(&info, "total_commands_processed").unwrap(), "1");
    assert!(!info.contains("cmdstat_set"), "{info}");
    drop(others);
}

// CONFIG GET/SET round trips (visible from every thread), Redis's errors, atomic SET.
#[test]
fn config_get_set() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Conn::new(d.port);
    let mut others: Vec<Conn> = (0..4).map(|_| Conn::new(d.port)).collect();
    let get = |c: &mut Conn, p: &str| -> Vec<String> {
        c.cmd(&["CONFIG", "GET", p]).items().iter().map(|r| r.text()).collect()
    };
    assert_eq!(get(&mut c, "maxmemory"), vec!["maxmemory", "0"]);
    assert_eq!(get(&mut c, "MAXMEMORY"), vec!["MAXMEMORY", "0"]);
    assert_eq!(get(&mut c, "port"), vec!["port".to_string(), d.port.to_string()]);
    assert_eq!(get(&mut c, "databases"), vec!["databases", "16"]);
    assert_eq!(get(&mut c, "save"), vec!["save", "3600 1 300 100 60 10000"]);
    assert_eq!(get(&mut c, "appendonly"), vec!["appendonly", "no"]);
    assert_eq!(get(&mut c, "keys_output_limit"), vec!["keys_output_limit", "8192"]);
    assert_eq!(get(&mut c, "nosuch"), Vec::<String>::new());
    let mm = get(&mut c, "maxmemory*");
    assert_eq!(mm.len(), 10, "{mm:?}");
    assert!(mm.contains(&"maxmemory-policy".to_string()) && mm.contains(&"noeviction".to_string()));
    // Aliases match patterns and exact names.
    let ro = get(&mut c, "*read-only");
    assert!(ro.contains(&"slave-read-only".to_string()) && ro.contains(&"replica-read-only".to_string()));
    let all = get(&mut c, "*");
    assert!(all.len() > 350, "{}", all.len());
    let multi = get(&mut c, "hz");
    assert_eq!(multi, vec!["hz", "10"]);
    let two = c.cmd(&["CONFIG", "GET", "hz", "timeout"]).items();
    assert_eq!(two.len(), 4);

    ok(c.cmd(&["CONFIG", "SET", "maxmemory", "10mb"]));
    for o in others.iter_mut() {
        assert_eq!(get(o, "maxmemory"), vec!["maxmemory", "10485760"]);
        let info = o.cmd(&["INFO", "memory"]).text();
        assert_eq!(info_field(&info, "maxmemory").unwrap(), "10485760");
        assert_eq!(info_field(&info, "maxmemory_human").unwrap(), "10.00M");
    }
    ok(c.cmd(&["CONFIG", "SET", "maxmemory-policy", "ALLKEYS-LRU", "hz", "1000", "slave-read-only", "no"]));
    assert_eq!(get(&mut others[1], "maxmemory-policy"), vec!["maxmemory-policy", "allkeys-lru"]);
    assert_eq!(get(&mut others[2], "hz"), vec!["hz", "500"]);
    assert_eq!(get(&mut others[3], "replica-read-only"), vec!["replica-read-only", "no"]);
    ok(c.cmd(&["CONFIG", "SET", "save", "", "notify-keyspace-events", "KEA"]));
    assert_eq!(get(&mut c, "save"), vec!["save", ""]);
    assert_eq!(get(&mut c, "notify-keyspace-events"), vec!["notify-keyspace-events", "AKE"]);
    ok(c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 2 3"]));
    assert_eq!(
        get(&mut c, "client-output-buffer-limit")[1],
        "normal 1048576 2 3 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    ok(c.cmd(&["CONFIG", "SET", "hash-max-ziplist-entries", "64"]));
    assert_eq!(get(&mut c, "hash-max-listpack-entries"), vec!["hash-max-listpack-entries", "64"]);
    ok(c.cmd(&["CONFIG", "SET", "keys_output_limit", "100", "cache_mode", "yes"]));
    assert_eq!(get(&mut others[0], "keys_output_limit"), vec!["keys_output_limit", "100"]);

    let e = |c: &mut Conn, args: &[&str]| -> String {
        let mut v = vec!["CONFIG", "SET"];
        v.extend_from_slice(args);
        c.cmd(&v).err()
    };
    assert_eq!(e(&mut c, &["nosuch", "1"]), "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'");
    assert_eq!(e(&mut c, &["maxmemory", "1", "hz"]), "ERR syntax error");
    assert_eq!(
        e(&mut c, &["maxmemory", "abc"]),
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
    );
    assert_eq!(
        e(&mut c, &["hz", "abc"]),
        "ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer"
    );
    assert_eq!(
        e(&mut c, &["hz", "-1"]),
        "ERR CONFIG SET failed (possibly related to argument 'hz') - argument must be between 0 and 2147483647 inclusive"
    );
    assert_eq!(
        e(&mut c, &["maxmemory-policy", "foo"]),
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"
    );
    assert_eq!(
        e(&mut c, &["appendonly", "maybe"]),
        "ERR CONFIG SET failed (possibly related to argument 'appendonly') - argument must be 'yes' or 'no'"
    );
    // port and bind are settable at run time (tests/hardening_net.rs); tcp-backlog is not.
    assert_eq!(
        e(&mut c, &["tcp-backlog", "1"]),
        "ERR CONFIG SET failed (possibly related to argument 'tcp-backlog') - can't set immutable config"
    );
    assert_eq!(
        e(&mut c, &["databases", "3"]),
        "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"
    );
    assert_eq!(
        e(&mut c, &["proactor_threads", "3"]),
        "ERR CONFIG SET failed (possibly related to argument 'proactor_threads') - can't set immutable config"
    );
    assert_eq!(
        e(&mut c, &["dir", "/tmp"]),
        "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"
    );
    assert_eq!(
        e(&mut c, &["maxmemory", "1", "MAXMEMORY", "2"]),
        "ERR CONFIG SET failed (possibly related to argument 'MAXMEMORY') - duplicate parameter"
    );
    assert_eq!(
        e(&mut c, &["save", "1 2 3"]),
        "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"
    );
    assert_eq!(
        e(&mut c, &["notify-keyspace-events", "xyz"]),
        "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
    );
    assert_eq!(
        e(&mut c, &["maxclients", "0"]),
        "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive"
    );
    // Atomic: a bad value later in the list leaves the earlier ones unchanged.
    assert!(e(&mut c, &["maxmemory", "5", "hz", "abc"]).contains("'hz'"));
    assert_eq!(get(&mut others[0], "maxmemory"), vec!["maxmemory", "10485760"]);
    assert!(e(&mut c, &["maxmemory", "5", "nosuch", "1"]).contains("'nosuch'"));
    assert_eq!(get(&mut c, "maxmemory"), vec!["maxmemory", "10485760"]);

    assert_eq!(c.cmd(&["CONFIG", "SET", "port"]).err(), "ERR wrong number of arguments for 'config|set' command");
    assert_eq!(c.cmd(&["CONFIG", "GET"]).err(), "ERR wrong number of arguments for 'config|get' command");
    assert_eq!(c.cmd(&["CONFIG", "foo"]).err(), "ERR unknown subcommand 'foo'. Try CONFIG HELP.");
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]).err(), "ERR The server is running without a config file");
    let help = c.cmd(&["CONFIG", "HELP"]).items();
    assert_eq!(help.len(), 11);
    assert_eq!(help[1].text(), "GET <pattern>");
}

// OBJECT, MEMORY USAGE and DEBUG run on the key's shard and answer like Redis (MEMORY
// USAGE with Darter's own numbers).
#[test]
fn object_memory_debug() {
    let d = Server::darter(&["--proactor_threads", "2", "--enable_debug_command", "yes"]);
    let mut c = Conn::new(d.port);
    let long = "x".repeat(100);
    for i in 0..8 {
        ok(c.cmd(&["SET", &format!("int{i}"), "123"]));
        ok(c.cmd(&["SET", &format!("str{i}"), "hello"]));
        ok(c.cmd(&["SET", &format!("raw{i}"), &long]));
        ok(c.cmd(&["SET", &format!("big{i}"), "123456"]));
    }
    for i in 0..8 {
        assert_eq!(c.cmd(&["OBJECT", "ENCODING", &format!("int{i}")]), R::Bulk(b"int".to_vec()));
        assert_eq!(c.cmd(&["OBJECT", "ENCODING", &format!("str{i}")]), R::Bulk(b"embstr".to_vec()));
        assert_eq!(c.cmd(&["OBJECT", "ENCODING", &format!("raw{i}")]), R::Bulk(b"raw".to_vec()));
        assert_eq!(c.cmd(&["OBJECT", "REFCOUNT", &format!("int{i}")]), R::Int(2147483647));
        assert_eq!(c.cmd(&["OBJECT", "REFCOUNT", &format!("big{i}")]), R::Int(1));
        assert_eq!(c.cmd(&["OBJECT", "REFCOUNT", &format!("str{i}")]), R::Int(1));
        // Just written: idle 0, or 1 if a second boundary passed in between.
        assert!(matches!(c.cmd(&["OBJECT", "IDLETIME", &format!("str{i}")]), R::Int(0 | 1)));
        // Darter's own accounting: a table share plus heap bytes (100 for the long value).
        let (R::Int(small), R::Int(long)) =
            (c.cmd(&["MEMORY", "USAGE", &format!("str{i}")]), c.cmd(&["MEMORY", "USAGE", &format!("raw{i}")]))
        else {
            panic!("MEMORY USAGE answers integers")
        };
        assert!(small >= 32 && long >= 32 + 100, "{small} {long}");
        let dbg = c.cmd(&["DEBUG", "OBJECT", &format!("int{i}")]).text();
        assert!(dbg.starts_with("Value at:0x") && dbg.contains(" refcount:2147483647 encoding:int "), "{dbg}");
    }
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "nokey"]), R::Nil);
    assert_eq!(c.cmd(&["OBJECT", "FREQ", "nokey"]), R::Nil);
    assert!(
        c.cmd(&["OBJECT", "FREQ", "str0"])
            .err()
            .starts_with("ERR An LFU maxmemory policy is not selected, access frequency not tracked.")
    );
    ok(c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]));
    // Darter keeps no LFU counter (it used to answer a made-up 5).
    assert!(c.cmd(&["OBJECT", "FREQ", "str0"]).err().starts_with("ERR Darter does not track access frequency"));
    assert!(
        c.cmd(&["OBJECT", "IDLETIME", "str0"])
            .err()
            .starts_with("ERR An LFU maxmemory policy is selected, idle time not tracked.")
    );
    // Shared integers stay shared without a memory limit, whatever the policy.
    assert_eq!(c.cmd(&["OBJECT", "REFCOUNT", "int0"]), R::Int(2147483647));
    ok(c.cmd(&["CONFIG", "SET", "maxmemory", "1gb"]));
    assert_eq!(c.cmd(&["OBJECT", "REFCOUNT", "int0"]), R::Int(1));
    assert_eq!(c.cmd(&["OBJECT", "foo", "str0"]).err(), "ERR unknown subcommand 'foo'. Try OBJECT HELP.");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING"]).err(), "ERR wrong number of arguments for 'object|encoding' command");
    assert_eq!(c.cmd(&["OBJECT"]).err(), "ERR wrong number of arguments for 'object' command");
    assert_eq!(c.cmd(&["OBJECT", "HELP"]).items()[1].text(), "ENCODING <key>");
    assert_eq!(c.cmd(&["MEMORY", "USAGE", "nokey"]), R::Nil);
    // The same key with a 100-byte value instead of a 5-byte one: + its heap block
    // (mimalloc's 112-byte size class), the table share unchanged.
    ok(c.cmd(&["SET", "mu", "hello"]));
    let R::Int(a) = c.cmd(&["MEMORY", "USAGE", "mu"]) else { panic!("integer") };
    ok(c.cmd(&["SET", "mu", &long]));
    let R::Int(b) = c.cmd(&["MEMORY", "USAGE", "mu"]) else { panic!("integer") };
    assert_eq!(b - a, 112);
    assert!(matches!(c.cmd(&["MEMORY", "USAGE", "int0", "SAMPLES", "5"]), R::Int(n) if n >= 32));
    assert_eq!(c.cmd(&["MEMORY", "USAGE", "int0", "foo"]).err(), "ERR syntax error");
    assert_eq!(c.cmd(&["MEMORY", "foo"]).err(), "ERR unknown subcommand 'foo'. Try MEMORY HELP.");
    assert_eq!(c.cmd(&["DEBUG", "OBJECT", "nokey"]).err(), "ERR no such key");
    ok(c.cmd(&["DEBUG", "SLEEP", "0"]));
    ok(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]));
    ok(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]));
    assert_eq!(c.cmd(&["DEBUG", "RELOAD"]).err(), "ERR DEBUG RELOAD not supported");
    assert_eq!(
        c.cmd(&["DEBUG", "foo"]).err(),
        "ERR unknown subcommand or wrong number of arguments for 'foo'. Try DEBUG HELP."
    );
    assert_eq!(c.cmd(&["DEBUG", "PROTOCOL", "bignum"]), R::Bulk(b"1234567999999999999999999999999999999".to_vec()));
    let t = Instant::now();
    ok(c.cmd(&["DEBUG", "SLEEP", "0.2"]));
    assert!(t.elapsed() >= Duration::from_millis(200));
}

// SHUTDOWN ends the process (exit status 0) without a reply; bad arguments don't.
#[test]
fn shutdown_exits() {
    let mut d = Server::darter(&["--proactor_threads", "2"]);
    let mut c = Conn::new(d.port);
    let _idle: Vec<Conn> = (0..3).map(|_| Conn::new(d.port)).collect();
    assert_eq!(c.cmd(&["SHUTDOWN", "foo"]).err(), "ERR syntax error");
    assert_eq!(c.cmd(&["SHUTDOWN", "NOSAVE", "SAVE"]).err(), "ERR syntax error");
    assert_eq!(c.cmd(&["SHUTDOWN", "ABORT", "NOW"]).err(), "ERR syntax error");
    assert_eq!(c.cmd(&["SHUTDOWN", "ABORT"]).err(), "ERR No shutdown in progress.");
    c.send(&["SHUTDOWN", "NOSAVE"]);
    assert!(c.closed(), "no reply, connection closed");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = d.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "darter still running after SHUTDOWN");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(TcpStream::connect(("127.0.0.1", d.port)).is_err());
}

// DEBUG is refused by default with Redis 7.0's exact text (the same bytes as a default
// redis-server), before the authentication check, and counted as a rejected call;
// `--enable_debug_command local` allows it from loopback; CONFIG GET reports the mode.
#[test]
fn debug_disabled_by_default() {
    let d = Server::darter(&["--proactor_threads", "2"]);
    let r = Server::redis(&[]);
    for args in [&["DEBUG", "SLEEP", "0"][..], &["DEBUG", "SLEEP", "86400"], &["debug", "help"], &["DEBUG"]] {
        let (mut dc, mut rc) = (d.raw(), r.raw());
        assert_eq!(String::from_utf8_lossy(&dc.cmd(args)), String::from_utf8_lossy(&rc.cmd(args)), "{args:?}");
    }
    let mut c = Conn::new(d.port);
    assert_eq!(c.cmd(&["CONFIG", "GET", "enable-debug-command"]).items()[1].text(), "no");
    let info = c.cmd(&["INFO", "commandstats"]).text();
    assert!(info.contains("cmdstat_debug:calls=0,"), "{info}");
    // Three refusals and one arity error, as Redis counts them.
    assert!(info.contains("rejected_calls=4,"), "{info}");

    // Refused before NOAUTH, as Redis orders its checks.
    let p = Server::darter(&["--requirepass", "pw"]);
    let rp = Server::redis(&["--requirepass", "pw"]);
    let (mut pc, mut rpc) = (p.raw(), rp.raw());
    assert_eq!(pc.cmd(&["DEBUG", "SLEEP", "0"]), rpc.cmd(&["DEBUG", "SLEEP", "0"]));

    let l = Server::darter(&["--enable_debug_command", "local"]);
    let mut lc = Conn::new(l.port);
    ok(lc.cmd(&["DEBUG", "SLEEP", "0"]));
    assert_eq!(lc.cmd(&["CONFIG", "GET", "enable-debug-command"]).items()[1].text(), "local");
    assert!(lc.cmd(&["CONFIG", "SET", "enable-debug-command", "yes"]).err().contains("can't set immutable config"));
}
