//! Network hardening (issue 17, items 6, 8, 9, 10, 13) against the real binary, with
//! redis-server 7.0.15 as the oracle for every text Redis has:
//!
//! - protected mode: a client from a non-loopback address (inside a network namespace
//!   joined to the host by a veth pair) is refused with Redis's exact `-DENIED ...`;
//! - a port held by another process (another Darter, or any listener) stops start-up
//!   with Redis's two log lines and a non-zero exit;
//! - maxclients is exact across threads;
//! - SIGTERM / SIGINT (even inherited as ignored) shut down gracefully with exit 0,
//!   after the replies already produced are sent; SIGHUP is ignored;
//! - CONFIG SET port / bind move the listeners at run time with Redis's rollback, and
//!   CONFIG GET * lists nothing that CONFIG SET then refuses where Redis would not.
//!
//! The namespace tests need root and `ip netns`; they fail loudly, never skip, when
//! either is missing. Traffic goes only over loopback and the test's own veth pair.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{RawConn, ReadError, Resp, Server, StartOptions, free_port};

const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

const NO_BIND: StartOptions = StartOptions { bind_loopback: false, ignore_sigint: false };

// ------------------------------------------------------------------ helpers

/// Runs a command that must succeed; panics with its output otherwise.
fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace joined to the host by a veth pair: host side `host_ip`/24,
/// namespace side `ns_ip`/24. Names and subnet are unique per test; everything is
/// removed on drop, also when the test panics.
struct NetNs {
    ns: String,
    host_if: String,
    host_ip: String,
}

/// A tiny client run inside the namespace: connects, waits up to 1 s for an unsolicited
/// reply (a refusal); if none came, sends the payload and reads the answer. Prints the
/// bytes in hex and whether the server closed the connection.
const NS_CLIENT: &str = r#"
import socket, sys
host, port, payload = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
s = socket.create_connection((host, port), timeout=5)
buf, eof = b'', False
def read(first_timeout):
    global buf, eof
    s.settimeout(first_timeout)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                eof = True
                return
            buf += d
            if buf.endswith(b'\r\n'):
                s.settimeout(0.3)
    except (socket.timeout, ConnectionResetError):
        pass
read(1.0)
if not buf and not eof:
    s.sendall(payload)
    read(5.0)
print(buf.hex(), 'eof' if eof else 'open')
"#;

impl NetNs {
    fn new() -> NetNs {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id() as usize;
        let tag = format!("{}{}", pid % 100_000, n);
        let octet = 20 + (pid * 7 + n) % 200;
        let me = NetNs { ns: format!("dnt{tag}"), host_if: format!("dvh{tag}"), host_ip: format!("10.231.{octet}.1") };
        let ns_if = format!("dvn{tag}");
        let ns_ip = format!("10.231.{octet}.2/24");
        sh(&["ip", "netns", "add", &me.ns]);
        sh(&["ip", "link", "add", &me.host_if, "type", "veth", "peer", "name", &ns_if]);
        sh(&["ip", "link", "set", &ns_if, "netns", &me.ns]);
        sh(&["ip", "addr", "add", &format!("{}/24", me.host_ip), "dev", &me.host_if]);
        sh(&["ip", "link", "set", &me.host_if, "up"]);
        sh(&["ip", "netns", "exec", &me.ns, "ip", "addr", "add", &ns_ip, "dev", &ns_if]);
        sh(&["ip", "netns", "exec", &me.ns, "ip", "link", "set", &ns_if, "up"]);
        sh(&["ip", "netns", "exec", &me.ns, "ip", "link", "set", "lo", "up"]);
        me
    }

    /// Connects from inside the namespace to `host_ip:port`; returns what came back and
    /// whether the server closed the connection (see [`NS_CLIENT`]).
    fn exchange(&self, port: u16, payload: &[u8]) -> (Vec<u8>, bool) {
        let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "python3", "-c", NS_CLIENT, &self.host_ip, &port.to_string(), &hex])
            .output()
            .expect("run the namespace client");
        assert!(out.status.success(), "namespace client failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text.split_whitespace();
        let (hex, state) = match (it.next(), it.next()) {
            (Some(h), Some(s)) => (h.to_string(), s.to_string()),
            (Some(s), None) => (String::new(), s.to_string()),
            _ => panic!("namespace client printed {text:?}"),
        };
        let bytes = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        (bytes, state == "eof")
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace destroys its veth end, which takes the host end along.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).stderr(Stdio::null()).output();
    }
}

const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Starts a process with stdout and stderr in a file and waits up to `timeout` for it
/// to exit. Returns the exit status (None: still running, then killed) and its output.
fn run_until_exit(bin: &str, args: &[&str], timeout: Duration) -> (Option<ExitStatus>, String) {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "darter-hnet-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("out.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
    let status = wait_exit(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = String::from_utf8_lossy(&std::fs::read(&log_path).unwrap_or_default()).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    (status, out)
}

fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn wait_server_exit(s: &mut Server, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(st) = s.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The rest of the first log line containing `needle`, from `needle` on (drops the
/// logger's prefix, which differs between Redis and Darter).
fn log_line(log: &str, needle: &str) -> Option<String> {
    log.lines().find_map(|l| l.find(needle).map(|i| l[i..].trim_end().to_string()))
}

/// The darter binary (honours `DARTER_TEST_SERVER_BIN`, like the harness, so these
/// tests can be pointed at an older build to see them fail).
fn darter_bin() -> String {
    std::env::var("DARTER_TEST_SERVER_BIN")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_darter").to_string())
}

fn signal(s: &Server, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    let r = unsafe { libc::kill(s.pid() as i32, sig) };
    assert_eq!(r, 0, "kill({}, {sig})", s.pid());
}

/// Polls INFO clients until connected_clients is `n` (connections closed by the test
/// are freed by the server asynchronously).
fn wait_connected(c: &mut RawConn, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v: usize = common::info_field(c, "clients", "connected_clients").parse().unwrap();
        if v == n {
            return;
        }
        assert!(Instant::now() < deadline, "connected_clients stayed {v}, wanted {n}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------ 6. protected mode

// Protected mode on (the default) and no password: a client from outside loopback gets
// Redis's exact -DENIED text and is disconnected, from Darter as from redis-server;
// loopback clients are served. Redis 7.0 does this whatever `bind` says, so an explicit
// bind to the outside address is refused the same way.
#[test]
fn protected_mode_denies_non_loopback_like_redis() {
    let ns = NetNs::new();
    let darter = Server::darter_with(&["--proactor_threads", "2"], NO_BIND);
    let redis = Server::redis_with(&[], NO_BIND);
    for s in [&darter, &redis] {
        let (bytes, closed) = ns.exchange(s.port, PING);
        assert_eq!(text(&bytes), DENIED, "{:?} from the namespace", s.kind);
        assert!(closed, "{:?} must close a denied connection", s.kind);
        assert_eq!(s.raw().cmd(&["PING"]), b"+PONG\r\n", "{:?} from loopback", s.kind);
    }
    // An explicit bind that includes the outside address changes nothing (Redis 7.0).
    let bind = format!("127.0.0.1 {}", ns.host_ip);
    let darter = Server::darter_with(&["--bind", &bind], NO_BIND);
    let redis = Server::redis_with(&["--bind", &bind], NO_BIND);
    for s in [&darter, &redis] {
        let (bytes, closed) = ns.exchange(s.port, PING);
        assert_eq!((text(&bytes), closed), (DENIED.to_string(), true), "{:?} with bind {bind}", s.kind);
    }
}

// `--protected_mode no` (both spellings), CONFIG SET protected-mode no, and a password
// each let the outside client in; with a password it gets NOAUTH, as from Redis.
#[test]
fn protected_mode_off_or_password_admits_non_loopback() {
    let ns = NetNs::new();
    for flag in [&["--protected_mode", "no"][..], &["--protected_mode=no"][..], &["--noprotected_mode"][..]] {
        let s = Server::darter_with(flag, NO_BIND);
        assert_eq!(ns.exchange(s.port, PING), (b"+PONG\r\n".to_vec(), false), "darter {flag:?}");
        assert_eq!(s.raw().cmd(&["CONFIG", "GET", "protected-mode"]), b"*2\r\n$14\r\nprotected-mode\r\n$2\r\nno\r\n");
    }
    let s = Server::darter_with(&["--proactor_threads", "2"], NO_BIND);
    let mut c = s.raw();
    assert_eq!(c.cmd(&["CONFIG", "GET", "protected-mode"]), b"*2\r\n$14\r\nprotected-mode\r\n$3\r\nyes\r\n");
    assert_eq!(ns.exchange(s.port, PING).0, DENIED.as_bytes());
    assert_eq!(c.cmd(&["CONFIG", "SET", "protected-mode", "no"]), b"+OK\r\n");
    for _ in 0..4 {
        // Several connections: both threads must have the new value.
        assert_eq!(ns.exchange(s.port, PING), (b"+PONG\r\n".to_vec(), false));
    }
    assert_eq!(c.cmd(&["CONFIG", "SET", "protected-mode", "yes"]), b"+OK\r\n");
    assert_eq!(ns.exchange(s.port, PING).0, DENIED.as_bytes());

    let darter = Server::darter_with(&["--requirepass", "pw"], NO_BIND);
    let redis = Server::redis_with(&["--requirepass", "pw"], NO_BIND);
    let d = ns.exchange(darter.port, PING);
    let r = ns.exchange(redis.port, PING);
    assert_eq!(text(&d.0), "-NOAUTH Authentication required.\r\n");
    assert_eq!((text(&d.0), d.1), (text(&r.0), r.1));
}

// ------------------------------------------------------------------ 8. busy port

// A second Darter on a port a running Darter holds exits non-zero at once with Redis's
// two log lines (same text as redis-server in the same spot); the first keeps serving
// every client from one dataset.
#[test]
fn busy_port_second_darter_refuses_to_start() {
    let first = Server::darter(&["--proactor_threads", "2"]);
    let port = first.port.to_string();
    let (status, log) = run_until_exit(
        &darter_bin(),
        &["--port", &port, "--bind", "127.0.0.1", "--proactor_threads", "2", "--logtostderr"],
        Duration::from_secs(10),
    );
    let status = status.unwrap_or_else(|| panic!("second darter kept running on a busy port; log:\n{log}"));
    assert!(!status.success(), "second darter exited {status}");
    let (rstatus, rlog) = run_until_exit(
        "redis-server",
        &["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        Duration::from_secs(10),
    );
    assert!(rstatus.is_some_and(|s| !s.success()), "redis-server on a busy port: {rstatus:?}\n{rlog}");
    for needle in ["Warning: Could not create server TCP listening socket", "Failed listening on port"] {
        let want = log_line(&rlog, needle).unwrap_or_else(|| panic!("redis log lacks {needle:?}:\n{rlog}"));
        assert_eq!(log_line(&log, needle).as_deref(), Some(want.as_str()), "darter log:\n{log}");
    }
    assert_eq!(
        log_line(&log, "Warning:").unwrap(),
        format!("Warning: Could not create server TCP listening socket 127.0.0.1:{port}: bind: Address already in use")
    );
    // Every client reaches the first server's one dataset.
    let mut conns: Vec<RawConn> = (0..20).map(|_| first.raw()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), b"+OK\r\n");
    }
    assert_eq!(first.raw().cmd(&["DBSIZE"]), b":20\r\n");
}

// A port held by any other listener (here a plain std listener) also stops start-up.
#[test]
fn busy_port_plain_listener_refuses() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let (status, log) = run_until_exit(
        &darter_bin(),
        &["--port", &port, "--bind", "127.0.0.1", "--logtostderr"],
        Duration::from_secs(10),
    );
    assert!(status.is_some_and(|s| !s.success()), "darter on a held port: {status:?}\n{log}");
    assert_eq!(
        log_line(&log, "Failed listening").unwrap(),
        format!("Failed listening on port {port} (TCP), aborting.")
    );
}

// ------------------------------------------------------------------ 9. maxclients

/// Opens `max` clients that each PING, checks the next one gets the error and is
/// closed, then frees one slot and checks a new client gets in (and the one after it
/// is refused again). Returns the refusal's bytes.
fn fill_to_maxclients(s: &Server, max: usize) -> Vec<u8> {
    let mut conns = vec![s.raw()];
    // The harness's readiness connection may not be freed yet.
    wait_connected(&mut conns[0], 1);
    while conns.len() < max {
        let mut c = s.raw();
        assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n", "client {} of {max}", conns.len() + 1);
        conns.push(c);
    }
    let refused = |s: &Server| -> Vec<u8> {
        let mut c = s.raw();
        c.timeout = Duration::from_secs(10);
        let reply = c
            .try_read_reply()
            .unwrap_or_else(|e| panic!("client {} of {max}: {}", max + 1, common::describe_read_error(&e)));
        let (rest, closed) = c.read_until_close(Duration::from_secs(10));
        assert!(rest.is_empty() && closed, "refused client must be closed");
        reply
    };
    let err = refused(s);
    drop(conns.pop());
    // The server frees the slot when it sees the close; until then new clients are
    // refused (unsolicited error) — retry until one is silent and answers PING.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = s.raw();
        c.timeout = Duration::from_millis(300);
        match c.try_read_reply() {
            Err(ReadError::Timeout(b)) if b.is_empty() => {
                c.timeout = Duration::from_secs(10);
                assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
                conns.push(c);
                break;
            }
            Ok(r) => assert_eq!(r, err),
            Err(e) => panic!("{}", common::describe_read_error(&e)),
        }
        assert!(Instant::now() < deadline, "no slot freed after closing a client");
    }
    assert_eq!(refused(s), err);
    err
}

// maxclients is exact over all threads (it was maxclients/threads per thread, off by
// one): with 2 and with 5 threads, 100 clients get in, the 101st gets Redis's error.
#[test]
fn maxclients_exact_across_threads() {
    for threads in ["2", "5"] {
        let s = Server::darter(&["--proactor_threads", threads, "--maxclients", "100"]);
        assert_eq!(fill_to_maxclients(&s, 100), b"-ERR max number of clients reached\r\n", "{threads} threads");
    }
    let r = Server::redis(&["--maxclients", "100"]);
    assert_eq!(fill_to_maxclients(&r, 100), b"-ERR max number of clients reached\r\n");
}

// `--maxclients 0` is a start-up error (Redis: maxclients >= 1).
#[test]
fn maxclients_zero_refused_at_start() {
    let port = free_port().to_string();
    let (status, log) = run_until_exit(
        &darter_bin(),
        &["--port", &port, "--bind", "127.0.0.1", "--maxclients", "0"],
        Duration::from_secs(10),
    );
    assert!(status.is_some_and(|s| !s.success()), "darter --maxclients 0: {status:?}\n{log}");
    assert!(log.contains("maxclients must be between 1 and 4294967295"), "{log}");
}

/// The soft open-files limit of a process, from /proc.
fn nofile_limit(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

// Start-up fits maxclients to the open file limit as Redis does: raised if it can be,
// else maxclients is lowered (with Redis's warning) so that maxclients plus the reserve
// fits. Either way CONFIG GET maxclients never exceeds what the limit holds.
#[test]
fn maxclients_fits_open_files_limit_at_start() {
    let s = Server::darter(&["--proactor_threads", "2", "--maxclients", "100000"]);
    let mut c = s.raw();
    let reply = c.cmd_resp(&["CONFIG", "GET", "maxclients"]);
    let Resp::Array(Some(items)) = reply else { panic!("{reply:?}") };
    let maxclients: u64 = text(items[1].as_bytes().unwrap()).parse().unwrap();
    let limit = nofile_limit(s.pid());
    // Reserve: Redis's 32, plus per thread its ring and one listener.
    assert!(maxclients + 32 + 2 * 2 <= limit, "maxclients {maxclients} does not fit the fd limit {limit}");
    if maxclients < 100000 {
        assert_eq!(limit - maxclients, 36);
        let want = format!(
            "Current maximum open files is {limit}. maxclients has been reduced to {maxclients} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
        );
        assert_eq!(log_line(&s.log(), "Current maximum open files").as_deref(), Some(want.as_str()), "{}", s.log());
    }
    assert_eq!(common::info_field(&mut c, "clients", "maxclients"), maxclients.to_string());
}

// CONFIG SET maxclients beyond what the process can open fails like Redis (the fd
// limit can never reach 2,000,032: above /proc/sys/fs/nr_open) and changes nothing.
#[test]
fn config_set_maxclients_beyond_fd_limit_fails_like_redis() {
    let prefix = "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - The operating system is not able to handle the specified number of clients, try with ";
    for s in [Server::darter(&["--proactor_threads", "2"]), Server::redis(&[])] {
        let mut c = s.raw();
        let before = c.cmd(&["CONFIG", "GET", "maxclients"]);
        let r = text(&c.cmd(&["CONFIG", "SET", "maxclients", "2000000"]));
        assert!(r.starts_with(prefix), "{:?}: {r}", s.kind);
        let n: u64 = r[prefix.len()..].trim_end().parse().unwrap_or_else(|_| panic!("{r}"));
        assert!(n < 2_000_000);
        assert_eq!(c.cmd(&["CONFIG", "GET", "maxclients"]), before);
        assert_eq!(c.cmd(&["CONFIG", "SET", "maxclients", "500"]), b"+OK\r\n");
    }
}

// ------------------------------------------------------------------ 10. signals

// SIGTERM with replies in flight: the client still receives the reply of every command
// the server had read, each complete, then EOF; the process logs Redis's line and
// exits 0.
#[test]
fn sigterm_graceful_with_replies_in_flight() {
    let mut s = Server::darter(&["--proactor_threads", "2"]);
    let value = vec![b'x'; 1 << 20];
    let mut c = s.raw();
    assert_eq!(c.cmd(&[&b"SET"[..], b"big", &value]), b"+OK\r\n");
    let expected = {
        let mut e = format!("${}\r\n", value.len()).into_bytes();
        e.extend_from_slice(&value);
        e.extend_from_slice(b"\r\n");
        e
    };
    // 8 MB of replies asked for and not read yet: the server is mid-send (the socket
    // buffers hold far less).
    let mut pipeline = Vec::new();
    for _ in 0..8 {
        pipeline.extend_from_slice(&common::encode_command(&["GET", "big"]));
    }
    c.send_raw(&pipeline);
    std::thread::sleep(Duration::from_millis(300));
    signal(&s, libc::SIGTERM);
    let mut got = 0;
    loop {
        match c.try_read_reply() {
            Ok(r) => {
                assert!(r == expected, "reply {got} is not the value ({} bytes)", r.len());
                got += 1;
            }
            Err(ReadError::Closed(partial)) => {
                assert!(partial.is_empty(), "connection closed inside a reply ({} bytes of it)", partial.len());
                break;
            }
            Err(e) => panic!("{}", common::describe_read_error(&e)),
        }
    }
    // All 8 GETs were read by the server long before the signal (one small write, 300 ms
    // earlier): each is answered, though only part of the output fit in flight.
    assert_eq!(got, 8, "replies received before EOF");
    let status = wait_server_exit(&mut s, Duration::from_secs(15)).expect("darter did not exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(s.log().contains("Received SIGTERM scheduling shutdown..."), "{}", s.log());
}

// A client that never reads its replies holds a graceful shutdown back at most
// SHUTDOWN_DRAIN (3 s), not forever: the process still exits 0.
#[test]
fn sigterm_with_a_client_that_never_reads() {
    let mut s = Server::darter(&["--proactor_threads", "2"]);
    let mut c = s.raw();
    assert_eq!(c.cmd(&[&b"SET"[..], b"big", &vec![b'x'; 1 << 20]]), b"+OK\r\n");
    let mut pipeline = Vec::new();
    for _ in 0..8 {
        pipeline.extend_from_slice(&common::encode_command(&["GET", "big"]));
    }
    c.send_raw(&pipeline);
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    signal(&s, libc::SIGTERM);
    let status = wait_server_exit(&mut s, Duration::from_secs(20)).expect("darter did not exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(start.elapsed() >= Duration::from_secs(2), "the drain should have waited for the reader");
    drop(c);
}

// SIGINT stops the server gracefully even when it was started with SIGINT ignored (a
// shell's background job); SIGHUP does not stop it.
#[test]
fn sigint_even_if_ignored_and_sighup_ignored() {
    let mut s = Server::darter_with(&[], StartOptions { ignore_sigint: true, ..StartOptions::default() });
    signal(&s, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.is_alive(), "SIGHUP killed the server");
    assert_eq!(s.raw().cmd(&["PING"]), b"+PONG\r\n");
    signal(&s, libc::SIGINT);
    let status = wait_server_exit(&mut s, Duration::from_secs(15)).expect("darter did not exit after SIGINT");
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(s.log().contains("Received SIGINT scheduling shutdown..."), "{}", s.log());
}

// ------------------------------------------------------------------ 13. CONFIG SET port/bind

// CONFIG SET port moves every thread's listener: new clients reach the new port (many,
// so every thread is hit), the old port refuses, existing connections stay up, and
// CONFIG GET / INFO show the new port. Redis answers +OK to the same.
#[test]
fn config_set_port_moves_listeners() {
    let s = Server::darter(&["--proactor_threads", "3"]);
    let mut c = s.raw();
    let new_port = free_port();
    assert_eq!(c.cmd(&["CONFIG", "SET", "port", &new_port.to_string()]), b"+OK\r\n");
    for _ in 0..12 {
        assert_eq!(RawConn::connect(new_port).cmd(&["PING"]), b"+PONG\r\n");
    }
    let err = TcpStream::connect(("127.0.0.1", s.port)).expect_err("old port still accepts");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n", "existing connection");
    let p = new_port.to_string();
    assert_eq!(c.cmd(&["CONFIG", "GET", "port"]), format!("*2\r\n$4\r\nport\r\n${}\r\n{p}\r\n", p.len()).into_bytes());
    assert_eq!(common::info_field(&mut c, "server", "tcp_port"), p);
    // Setting the same port again is a no-op, as in Redis.
    assert_eq!(c.cmd(&["CONFIG", "SET", "port", &p]), b"+OK\r\n");
    assert_eq!(RawConn::connect(new_port).cmd(&["PING"]), b"+PONG\r\n");
}

// CONFIG SET port to a port another listener holds fails with Redis's exact error and
// rolls back: the old port keeps working and CONFIG GET still shows it.
#[test]
fn config_set_port_busy_rolls_back_like_redis() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = holder.local_addr().unwrap().port().to_string();
    let mut replies = Vec::new();
    for s in [Server::darter(&["--proactor_threads", "2"]), Server::redis(&[])] {
        let mut c = s.raw();
        let before = c.cmd(&["CONFIG", "GET", "port"]);
        replies.push(c.cmd(&["CONFIG", "SET", "port", &busy]));
        assert_eq!(c.cmd(&["CONFIG", "GET", "port"]), before);
        for _ in 0..4 {
            assert_eq!(s.raw().cmd(&["PING"]), b"+PONG\r\n", "{:?} old port", s.kind);
        }
    }
    assert_eq!(
        text(&replies[0]),
        "-ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port. Check server logs.\r\n"
    );
    assert_eq!(replies[0], replies[1]);
}

// CONFIG SET bind: adding ::1 makes the server reachable over IPv6 loopback too; an
// address that is not on the host fails with Redis's error and keeps the old bind.
#[test]
fn config_set_bind_like_redis() {
    let mut bad = Vec::new();
    for s in [Server::darter(&["--proactor_threads", "2"]), Server::redis(&[])] {
        let mut c = s.raw();
        assert_eq!(c.cmd(&["CONFIG", "SET", "bind", "127.0.0.1 ::1"]), b"+OK\r\n", "{:?}", s.kind);
        assert_eq!(c.cmd(&["CONFIG", "GET", "bind"]), b"*2\r\n$4\r\nbind\r\n$13\r\n127.0.0.1 ::1\r\n");
        for _ in 0..4 {
            let mut v6 = TcpStream::connect(("::1", s.port)).expect("connect [::1]");
            std::io::Write::write_all(&mut v6, PING).unwrap();
            let mut buf = [0u8; 7];
            std::io::Read::read_exact(&mut v6, &mut buf).unwrap();
            assert_eq!(&buf, b"+PONG\r\n");
        }
        // 192.0.2.1 is TEST-NET-1: never an address of this host.
        bad.push(c.cmd(&["CONFIG", "SET", "bind", "192.0.2.1"]));
        assert_eq!(c.cmd(&["CONFIG", "GET", "bind"]), b"*2\r\n$4\r\nbind\r\n$13\r\n127.0.0.1 ::1\r\n");
        assert_eq!(s.raw().cmd(&["PING"]), b"+PONG\r\n");
        assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    }
    assert_eq!(
        text(&bad[0]),
        "-ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to specified addresses.\r\n"
    );
    assert_eq!(bad[0], bad[1]);
}

/// CONFIG GET * as name → value.
fn config_all(c: &mut RawConn) -> Vec<(String, String)> {
    let Resp::Array(Some(items)) = c.cmd_resp(&["CONFIG", "GET", "*"]) else { panic!("CONFIG GET * shape") };
    items.chunks(2).map(|p| (text(p[0].as_bytes().unwrap()), text(p[1].as_bytes().unwrap()))).collect()
}

/// The parameters of CONFIG GET * that CONFIG SET refuses to set to their own value.
fn refused_roundtrip(s: &Server) -> HashSet<String> {
    let mut c = s.raw();
    let mut refused = HashSet::new();
    for (name, value) in config_all(&mut c) {
        let r = c.cmd(&["CONFIG", "SET", &name, &value]);
        if r != b"+OK\r\n" {
            refused.insert(name);
        }
    }
    refused
}

// A Redis tool that does CONFIG GET * then CONFIG SET of each pair gets no error from
// Darter that Redis would not give: Darter-only start-up flags (dbnum,
// proactor_threads) are out of CONFIG GET * but still gettable by exact name.
#[test]
fn config_get_all_roundtrips_like_redis() {
    let darter = Server::darter(&["--proactor_threads", "2"]);
    let redis = Server::redis(&[]);
    let d = refused_roundtrip(&darter);
    let r = refused_roundtrip(&redis);
    let extra: Vec<&String> = d.difference(&r).collect();
    assert!(extra.is_empty(), "CONFIG SET refuses these from CONFIG GET * where Redis does not: {extra:?}");
    let mut c = darter.raw();
    let names: HashMap<String, String> = config_all(&mut c).into_iter().collect();
    assert!(!names.contains_key("dbnum") && !names.contains_key("proactor_threads"));
    assert_eq!(c.cmd(&["CONFIG", "GET", "proactor_threads"]), b"*2\r\n$16\r\nproactor_threads\r\n$1\r\n2\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "dbnum"]), b"*2\r\n$5\r\ndbnum\r\n$2\r\n16\r\n");
}
