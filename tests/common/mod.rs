//! Shared helpers for Darter's integration tests: boot real server processes on
//! loopback, talk to them with the `redis` crate or with a raw RESP client.
//!
//! ```text
//!   test thread ──spawn──> darter --port P --bind 127.0.0.1 --logtostderr <extra>
//!        │                   (or redis-server --port P --bind 127.0.0.1 --save '' --appendonly no)
//!        ├── Server::client()  -> redis::Connection       (typed, high level)
//!        └── Server::raw()     -> RawConn over TcpStream  (exact bytes of one reply)
//! ```
//!
//! What it owns:
//! - [`Server`]: a child process on a free loopback port. The port is picked by binding
//!   port 0 and closing it (never handed out twice in one test process); if the child
//!   dies with "address in use" the start is retried on a fresh port. The constructor
//!   returns once the server answers `PING` (any complete reply counts, so `-NOAUTH`
//!   from a password-protected server does too) and panics after 10 s with the
//!   server's log. `Drop` kills the child; if the test is panicking, the tail of the
//!   server's log is printed first. On Linux the child also gets `PR_SET_PDEATHSIG`
//!   so an interrupted test run (Ctrl-C) leaves no orphan servers behind; note this
//!   fires when the *thread* that started the server exits, so start servers on the
//!   test's own thread. [`Server::darter_with`] / [`Server::redis_with`] take
//!   [`StartOptions`]: start without `--bind 127.0.0.1` (the server's own default bind,
//!   for protected-mode tests) or with SIGINT ignored in the child.
//! - [`RawConn`]: sends a command as a RESP array of byte strings (or raw bytes) and
//!   reads exactly one complete reply of any RESP2/RESP3 type
//!   (`+ - : $ * _ , # ! = ( % ~ > |`), returning its raw bytes; [`Resp`] is the parsed
//!   form. Bytes after the reply stay buffered for the next read (pipelining).
//!
//! Environment:
//! - `DARTER_TEST_SERVER_BIN=/path/to/bin` replaces the darter binary that
//!   [`Server::darter`] starts (default: the `darter` binary Cargo built for this
//!   test, `env!("CARGO_BIN_EXE_darter")`). If the file name contains `redis-server`
//!   (or `DARTER_TEST_SERVER_KIND=redis` is set), it is started with Redis-style
//!   arguments, and Darter-only flags in `extra_args` (see [`DARTER_ONLY_FLAGS`]) are
//!   dropped. This is how the harness is proven redis-vs-redis:
//!   `DARTER_TEST_SERVER_BIN=$(which redis-server) cargo test --test differential`.
//! - `REDIS_SERVER_BIN` overrides the oracle binary (default `redis-server` in PATH).
//!   The oracle is required: tests fail loudly if it is missing (CI installs it with
//!   `apt-get install -y redis-server redis-tools`).
//!
//! Non-goals: cluster mode, TLS, Unix sockets.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a server has to answer its first PING.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default read timeout of [`RawConn`] and of `redis::Connection`s from [`Server::client`].
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Darter flags that Redis does not know; dropped (with their value, if any) when the
/// "darter" side is really a redis-server. `(name, takes_value)`.
pub const DARTER_ONLY_FLAGS: &[(&str, bool)] = &[
    ("proactor_threads", true),
    ("logtostderr", false),
    ("alsologtostderr", false),
    ("cache_mode", false),
    ("v", true),
    ("vmodule", true),
    ("memcached_port", true),
    ("admin_port", true),
];

/// How to start a server, beyond its extra arguments ([`Server::darter_with`],
/// [`Server::redis_with`]). `StartOptions::default()` is what [`Server::darter`] and
/// [`Server::redis`] do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartOptions {
    /// Pass `--bind 127.0.0.1` (true by default). Without it the server binds its own
    /// default (Darter 0.0.0.0, Redis `* -::*`) unless `extra_args` has a `--bind`; the
    /// readiness PING still goes to 127.0.0.1. For protected-mode tests.
    pub bind_loopback: bool,
    /// Start the child with SIGINT ignored (SIG_IGN set before exec), as a shell does
    /// for background jobs.
    pub ignore_sigint: bool,
}

impl Default for StartOptions {
    fn default() -> StartOptions {
        StartOptions { bind_loopback: true, ignore_sigint: false }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    Darter,
    Redis,
}

/// A server process on 127.0.0.1:`port`, killed on drop.
pub struct Server {
    pub port: u16,
    pub kind: ServerKind,
    /// The binary that was started (for messages).
    pub bin: String,
    child: Child,
    dir: PathBuf,
    log_path: PathBuf,
}

static PORTS_HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
static SERVER_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A loopback port that was free a moment ago and that this process has not used yet.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut guard = PORTS_HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("could not find a free loopback port in 100 tries");
}

fn darter_bin() -> (String, ServerKind) {
    match std::env::var("DARTER_TEST_SERVER_BIN") {
        Ok(bin) if !bin.is_empty() => {
            let forced = std::env::var("DARTER_TEST_SERVER_KIND").unwrap_or_default();
            let name =
                std::path::Path::new(&bin).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let kind = if forced.eq_ignore_ascii_case("redis") || (forced.is_empty() && name.contains("redis-server")) {
                ServerKind::Redis
            } else {
                ServerKind::Darter
            };
            (bin, kind)
        }
        _ => (env!("CARGO_BIN_EXE_darter").to_string(), ServerKind::Darter),
    }
}

fn redis_bin() -> String {
    std::env::var("REDIS_SERVER_BIN").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "redis-server".to_string())
}

/// Drops Darter-only flags (and their values) so a redis-server accepts the rest;
/// also splits `--name=value` into `--name value`, which is the form Redis parses.
fn filter_for_redis(extra: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < extra.len() {
        let arg = extra[i];
        i += 1;
        let Some(flag) = arg.strip_prefix("--") else {
            out.push(arg.to_string());
            continue;
        };
        let (name, inline_value) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (flag, None),
        };
        if let Some(&(_, takes_value)) = DARTER_ONLY_FLAGS.iter().find(|(n, _)| *n == name) {
            if takes_value && inline_value.is_none() && i < extra.len() {
                i += 1; // skip the value
            }
            continue;
        }
        out.push(format!("--{name}"));
        if let Some(v) = inline_value {
            out.push(v.to_string());
        }
    }
    out
}

impl Server {
    /// Starts Darter (or the `DARTER_TEST_SERVER_BIN` override) as
    /// `darter --port P --bind 127.0.0.1 --logtostderr <extra_args>`.
    pub fn darter(extra_args: &[&str]) -> Server {
        Server::darter_with(extra_args, StartOptions::default())
    }

    /// [`Server::darter`] with [`StartOptions`].
    pub fn darter_with(extra_args: &[&str], opts: StartOptions) -> Server {
        let (bin, kind) = darter_bin();
        Server::start(bin, kind, extra_args, opts)
    }

    /// Starts the oracle: `redis-server --port P --bind 127.0.0.1 --save '' --appendonly no <extra_args>`.
    pub fn redis(extra_args: &[&str]) -> Server {
        Server::redis_with(extra_args, StartOptions::default())
    }

    /// [`Server::redis`] with [`StartOptions`].
    pub fn redis_with(extra_args: &[&str], opts: StartOptions) -> Server {
        Server::start(redis_bin(), ServerKind::Redis, extra_args, opts)
    }

    fn args_for(kind: ServerKind, port: u16, extra: &[&str], bind_loopback: bool) -> Vec<String> {
        let port = port.to_string();
        let mut v = Server::base_args(kind, &port, extra);
        if !bind_loopback {
            let i = v.iter().position(|a| a == "--bind").expect("base args bind");
            v.drain(i..i + 2);
        }
        v
    }

    fn base_args(kind: ServerKind, port: &str, extra: &[&str]) -> Vec<String> {
        match kind {
            ServerKind::Darter => {
                let mut v: Vec<String> =
                    ["--port", port, "--bind", "127.0.0.1", "--logtostderr"].iter().map(|s| s.to_string()).collect();
                v.extend(extra.iter().map(|s| s.to_string()));
                v
            }
            ServerKind::Redis => {
                let mut v: Vec<String> = ["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                v.extend(filter_for_redis(extra));
                v
            }
        }
    }

    fn start(bin: String, kind: ServerKind, extra_args: &[&str], opts: StartOptions) -> Server {
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let seq = SERVER_SEQ.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("darter-test-{}-{}-{}", std::process::id(), seq, port));
            std::fs::create_dir_all(&dir).expect("create server work dir");
            let log_path = dir.join("server.log");
            let log = File::create(&log_path).expect("create server log");
            let args = Server::args_for(kind, port, extra_args, opts.bind_loopback);
            let mut cmd = Command::new(&bin);
            cmd.args(&args)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log));
            set_parent_death_signal(&mut cmd);
            if opts.ignore_sigint {
                ignore_sigint_in_child(&mut cmd);
            }
            let child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    panic!(
                        "cannot start {kind:?} server {bin:?}: {e}.{}",
                        if kind == ServerKind::Redis {
                            " redis-server is required by these tests: \
                             apt-get install -y redis-server redis-tools"
                        } else {
                            ""
                        }
                    );
                }
            };
            let mut server = Server { port, kind, bin: bin.clone(), child, dir, log_path };
            match server.wait_ready(&args) {
                Ok(()) => return server,
                Err(StartError::Retry(log)) => {
                    last_log = log;
                    continue; // `server` drops here: child killed, dir removed
                }
                Err(StartError::Fatal(msg)) => {
                    drop(server); // kill the child first (quietly: not yet panicking)
                    panic!("{msg}");
                }
            }
        }
        panic!("{kind:?} server {bin:?} failed to bind a free port 5 times; last log:\n{last_log}");
    }

    fn wait_ready(&mut self, args: &[String]) -> Result<(), StartError> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let log = self.log();
                let lower = log.to_lowercase();
                if lower.contains("address already in use") || lower.contains("addrinuse") {
                    return Err(StartError::Retry(log));
                }
                return Err(StartError::Fatal(format!(
                    "{:?} server {:?} exited during startup ({status}); args: {args:?}\n--- server log ---\n{log}",
                    self.kind, self.bin
                )));
            }
            if Instant::now() > deadline {
                let log = self.log();
                return Err(StartError::Fatal(format!(
                    "{:?} server {:?} did not answer PING on 127.0.0.1:{} within {:?}; args: {args:?}\n--- server log ---\n{log}",
                    self.kind, self.bin, self.port, STARTUP_TIMEOUT
                )));
            }
            if self.ping_once() {
                // Guard against answering for someone else's server on a reused port.
                std::thread::sleep(Duration::from_millis(5));
                if self.child.try_wait().expect("try_wait").is_none() {
                    return Ok(());
                }
                continue;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn ping_once(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
            return false;
        }
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            match parse_reply(&buf) {
                Ok(Some(_)) => return true,
                Ok(None) => continue,
                Err(_) => return false,
            }
        }
    }

    /// The server's stdout+stderr so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process has not exited.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait()
    }

    /// A `redis` crate connection with a 30 s read/write timeout.
    pub fn client(&self) -> redis::Connection {
        self.client_url(&format!("redis://127.0.0.1:{}/", self.port))
    }

    /// Like [`Server::client`], authenticating with `password` (default user).
    pub fn client_with_password(&self, password: &str) -> redis::Connection {
        self.client_url(&format!("redis://:{password}@127.0.0.1:{}/", self.port))
    }

    fn client_url(&self, url: &str) -> redis::Connection {
        let client = redis::Client::open(url).expect("redis client url");
        let conn = client
            .get_connection_with_timeout(IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {:?} on port {}: {e}", self.kind, self.port));
        conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        conn.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        conn
    }

    /// A raw RESP connection.
    pub fn raw(&self) -> RawConn {
        RawConn::connect(self.port)
    }
}

enum StartError {
    /// The port was taken after all: try another.
    Retry(String),
    /// Give up with this message.
    Fatal(String),
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail_start = log.len().saturating_sub(4000);
            let tail_start = (tail_start..log.len()).find(|&i| log.is_char_boundary(i)).unwrap_or(0);
            eprintln!(
                "--- last lines of {:?} server log (port {}, {}) ---\n{}\n--- end of server log ---",
                self.kind,
                self.port,
                self.bin,
                &log[tail_start..]
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(target_os = "linux")]
fn set_parent_death_signal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl(2), which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_cmd: &mut Command) {}

fn ignore_sigint_in_child(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs in the forked child before exec and only calls signal(2), which is
    // async-signal-safe; the disposition SIG_IGN survives exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
}

// ---------------------------------------------------------------------------------
// RESP
// ---------------------------------------------------------------------------------

/// One parsed RESP2/RESP3 reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Resp {
    /// `+...`
    Simple(Vec<u8>),
    /// `-...`
    Error(Vec<u8>),
    /// `:...`
    Integer(i64),
    /// `$n` (`None` for `$-1`)
    Bulk(Option<Vec<u8>>),
    /// `*n` (`None` for `*-1`)
    Array(Option<Vec<Resp>>),
    /// `_`
    Null,
    /// `,` (text as sent, e.g. `1.5`, `inf`)
    Double(String),
    /// `#t` / `#f`
    Boolean(bool),
    /// `!n`
    BulkError(Vec<u8>),
    /// `=n` with its 3-byte format (`txt`, `mkd`)
    Verbatim { format: Vec<u8>, text: Vec<u8> },
    /// `(` (text as sent)
    BigNumber(String),
    /// `%n`
    Map(Vec<(Resp, Resp)>),
    /// `~n`
    Set(Vec<Resp>),
    /// `>n`
    Push(Vec<Resp>),
    /// `|n` attributes, followed by the reply they describe
    Attribute(Vec<(Resp, Resp)>, Box<Resp>),
}

impl Resp {
    pub fn is_error(&self) -> bool {
        matches!(self, Resp::Error(_) | Resp::BulkError(_))
    }
    /// Bytes of a simple string, bulk string, verbatim text or error.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Resp::Simple(b) | Resp::Error(b) | Resp::BulkError(b) => Some(b),
            Resp::Bulk(Some(b)) => Some(b),
            Resp::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Resp::Integer(i) => Some(*i),
            _ => None,
        }
    }
    /// Elements of an array, set or push.
    pub fn as_items(&self) -> Option<&[Resp]> {
        match self {
            Resp::Array(Some(v)) | Resp::Set(v) | Resp::Push(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resp::Simple(b) => write!(f, "+{}", escape(b)),
            Resp::Error(b) => write!(f, "-{}", escape(b)),
            Resp::Integer(i) => write!(f, "(integer) {i}"),
            Resp::Bulk(None) | Resp::Array(None) | Resp::Null => write!(f, "(nil)"),
            Resp::Bulk(Some(b)) => write!(f, "\"{}\"", escape(b)),
            Resp::Double(d) => write!(f, "(double) {d}"),
            Resp::Boolean(b) => write!(f, "(boolean) {b}"),
            Resp::BulkError(b) => write!(f, "!{}", escape(b)),
            Resp::Verbatim { format, text } => write!(f, "={}:{}", escape(format), escape(text)),
            Resp::BigNumber(n) => write!(f, "(big number) {n}"),
            Resp::Array(Some(items)) | Resp::Set(items) | Resp::Push(items) => {
                let (open, close) = match self {
                    Resp::Set(_) => ("~[", "]"),
                    Resp::Push(_) => (">[", "]"),
                    _ => ("[", "]"),
                };
                write!(f, "{open}")?;
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{it}")?;
                }
                write!(f, "{close}")
            }
            Resp::Map(pairs) | Resp::Attribute(pairs, _) => {
                if let Resp::Attribute(_, inner) = self {
                    write!(f, "|")?;
                    fmt_pairs(f, pairs)?;
                    return write!(f, " {inner}");
                }
                fmt_pairs(f, pairs)
            }
        }
    }
}

fn fmt_pairs(f: &mut fmt::Formatter<'_>, pairs: &[(Resp, Resp)]) -> fmt::Result {
    write!(f, "{{")?;
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            write!(f, ", ")?;
        }
        write!(f, "{k}: {v}")?;
    }
    write!(f, "}}")
}

/// Printable form of arbitrary bytes: ASCII as is, `\r \n \t \\ \"`, else `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// Like [`escape`], but cuts long inputs to `max` bytes and says how long they were.
pub fn escape_trunc(bytes: &[u8], max: usize) -> String {
    if bytes.len() <= max { escape(bytes) } else { format!("{}...({} bytes)", escape(&bytes[..max]), bytes.len()) }
}

/// A command as a RESP array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses one complete reply at the start of `buf`.
/// `Ok(Some((reply, bytes_consumed)))`, `Ok(None)` if incomplete, `Err` if malformed.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Resp, usize)>, String> {
    let mut pos = 0;
    match parse_at(buf, &mut pos)? {
        Some(r) => Ok(Some((r, pos))),
        None => Ok(None),
    }
}

fn read_line<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, String> {
    let start = *pos;
    let Some(i) = buf[start..].windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    *pos = start + i + 2;
    Ok(Some(&buf[start..start + i]))
}

fn line_int(line: &[u8], what: char) -> Result<i64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| format!("bad length/integer after '{what}': {:?}", escape(line)))
}

fn read_blob(buf: &[u8], pos: &mut usize, len: i64) -> Result<Option<Vec<u8>>, String> {
    if len < 0 {
        return Err(format!("negative blob length {len}"));
    }
    let len = len as usize;
    if buf.len() < *pos + len + 2 {
        return Ok(None);
    }
    if &buf[*pos + len..*pos + len + 2] != b"\r\n" {
        return Err("blob not terminated by CRLF".into());
    }
    let v = buf[*pos..*pos + len].to_vec();
    *pos += len + 2;
    Ok(Some(v))
}

macro_rules! some_or_incomplete {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

fn parse_items(buf: &[u8], pos: &mut usize, n: usize) -> Result<Option<Vec<Resp>>, String> {
    let mut items = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        items.push(some_or_incomplete!(parse_at(buf, pos)?));
    }
    Ok(Some(items))
}

fn parse_pairs(buf: &[u8], pos: &mut usize, n: usize) -> Result<Option<Vec<(Resp, Resp)>>, String> {
    let mut pairs = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let k = some_or_incomplete!(parse_at(buf, pos)?);
        let v = some_or_incomplete!(parse_at(buf, pos)?);
        pairs.push((k, v));
    }
    Ok(Some(pairs))
}

fn parse_at(buf: &[u8], pos: &mut usize) -> Result<Option<Resp>, String> {
    if *pos >= buf.len() {
        return Ok(None);
    }
    let tag = buf[*pos];
    *pos += 1;
    let line = some_or_incomplete!(read_line(buf, pos)?);
    let text = || String::from_utf8_lossy(line).into_owned();
    let r = match tag {
        b'+' => Resp::Simple(line.to_vec()),
        b'-' => Resp::Error(line.to_vec()),
        b':' => Resp::Integer(line_int(line, ':')?),
        b'_' => {
            if !line.is_empty() {
                return Err("'_' followed by data".into());
            }
            Resp::Null
        }
        b',' => Resp::Double(text()),
        b'(' => Resp::BigNumber(text()),
        b'#' => match line {
            b"t" => Resp::Boolean(true),
            b"f" => Resp::Boolean(false),
            _ => return Err(format!("bad boolean {:?}", escape(line))),
        },
        b'$' => {
            let n = line_int(line, '$')?;
            if n == -1 { Resp::Bulk(None) } else { Resp::Bulk(Some(some_or_incomplete!(read_blob(buf, pos, n)?))) }
        }
        b'!' => Resp::BulkError(some_or_incomplete!(read_blob(buf, pos, line_int(line, '!')?)?)),
        b'=' => {
            let blob = some_or_incomplete!(read_blob(buf, pos, line_int(line, '=')?)?);
            if blob.len() < 4 || blob[3] != b':' {
                return Err("verbatim string without 'fmt:' prefix".into());
            }
            Resp::Verbatim { format: blob[..3].to_vec(), text: blob[4..].to_vec() }
        }
        b'*' => {
            let n = line_int(line, '*')?;
            if n == -1 {
                Resp::Array(None)
            } else if n < 0 {
                return Err(format!("bad array length {n}"));
            } else {
                Resp::Array(Some(some_or_incomplete!(parse_items(buf, pos, n as usize)?)))
            }
        }
        b'~' | b'>' => {
            let n = line_int(line, tag as char)?;
            if n < 0 {
                return Err(format!("bad aggregate length {n}"));
            }
            let items = some_or_incomplete!(parse_items(buf, pos, n as usize)?);
            if tag == b'~' { Resp::Set(items) } else { Resp::Push(items) }
        }
        b'%' | b'|' => {
            let n = line_int(line, tag as char)?;
            if n < 0 {
                return Err(format!("bad map length {n}"));
            }
            let pairs = some_or_incomplete!(parse_pairs(buf, pos, n as usize)?);
            if tag == b'%' {
                Resp::Map(pairs)
            } else {
                let inner = some_or_incomplete!(parse_at(buf, pos)?);
                Resp::Attribute(pairs, Box::new(inner))
            }
        }
        other => {
            return Err(format!("unknown RESP type byte {:?}", escape(&[other])));
        }
    };
    Ok(Some(r))
}

// ---------------------------------------------------------------------------------
// RawConn
// ---------------------------------------------------------------------------------

/// Why a raw read did not produce a reply.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed (EOF or reset) before a complete reply; holds the partial bytes.
    Closed(Vec<u8>),
    /// No complete reply within the timeout; holds the partial bytes.
    Timeout(Vec<u8>),
    /// The bytes are not RESP.
    Malformed(String, Vec<u8>),
}

/// A raw RESP client over a blocking `TcpStream` (TCP_NODELAY on).
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pub timeout: Duration,
}

impl RawConn {
    pub fn connect(port: u16) -> RawConn {
        let stream =
            TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("raw connect to 127.0.0.1:{port}: {e}"));
        stream.set_nodelay(true).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        RawConn { stream, buf: Vec::new(), timeout: IO_TIMEOUT }
    }

    /// Sends a command as a RESP array of bulk strings.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        let bytes = encode_command(args);
        self.send_raw(&bytes);
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap_or_else(|e| panic!("raw write failed: {e}"));
    }

    /// Sends bytes, returning the write error instead of panicking.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends a command and returns the raw bytes of its one reply.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.send(args);
        self.read_reply()
    }

    /// Sends a command and returns its parsed reply.
    pub fn cmd_resp<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Resp {
        self.send(args);
        self.read_resp()
    }

    /// Raw bytes of exactly one complete reply; panics on timeout, close or garbage.
    pub fn read_reply(&mut self) -> Vec<u8> {
        match self.try_read_reply() {
            Ok(b) => b,
            Err(e) => panic!("raw read failed: {}", describe_read_error(&e)),
        }
    }

    /// One parsed reply; panics like [`RawConn::read_reply`].
    pub fn read_resp(&mut self) -> Resp {
        let bytes = self.read_reply();
        parse_reply(&bytes).unwrap().unwrap().0
    }

    /// Raw bytes of exactly one complete reply; leftover bytes stay buffered.
    pub fn try_read_reply(&mut self) -> Result<Vec<u8>, ReadError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match parse_reply(&self.buf) {
                Ok(Some((_, used))) => {
                    let rest = self.buf.split_off(used);
                    return Ok(std::mem::replace(&mut self.buf, rest));
                }
                Ok(None) => {}
                Err(e) => return Err(ReadError::Malformed(e, self.buf.clone())),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ReadError::Timeout(self.buf.clone()));
            }
            self.stream.set_read_timeout(Some(deadline - now)).unwrap();
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Closed(self.buf.clone())),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ReadError::Timeout(self.buf.clone()));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(ReadError::Closed(self.buf.clone())),
            }
        }
    }

    /// Reads everything until the peer closes or `timeout` passes.
    /// Returns the bytes (including any still buffered) and whether the peer closed.
    pub fn read_until_close(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + timeout;
        let mut out = std::mem::take(&mut self.buf);
        loop {
            let now = Instant::now();
            if now >= deadline {
                return (out, false);
            }
            self.stream.set_read_timeout(Some(deadline - now)).unwrap();
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return (out, true),
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return (out, false);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return (out, true), // reset counts as closed
            }
        }
    }

    /// Reads `n` replies and returns their concatenated raw bytes.
    pub fn read_replies(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.extend(self.read_reply());
        }
        out
    }

    /// Half-closes the write side.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

pub fn describe_read_error(e: &ReadError) -> String {
    match e {
        ReadError::Closed(b) => format!("connection closed; partial reply {:?}", escape_trunc(b, 300)),
        ReadError::Timeout(b) => format!("timed out; partial reply {:?}", escape_trunc(b, 300)),
        ReadError::Malformed(m, b) => format!("malformed reply ({m}): {:?}", escape_trunc(b, 300)),
    }
}

/// One field of `INFO <section>` over a raw connection; panics if it is missing.
pub fn info_field(c: &mut RawConn, section: &str, field: &str) -> String {
    let reply = c.cmd(&["INFO", section]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}: {text}"))
}

/// INFO memory's used_memory.
pub fn used_memory(c: &mut RawConn) -> i64 {
    info_field(c, "memory", "used_memory").parse().expect("used_memory is a number")
}

/// SETs `n` keys `key:<i>` with `size`-byte values, pipelined 1000 at a time; every
/// reply must be +OK.
pub fn load(c: &mut RawConn, n: usize, size: usize) {
    load_with(c, n, size, &[]);
}

/// Like [`load`], with extra SET arguments (e.g. `["PX", "1000"]`).
pub fn load_with(c: &mut RawConn, n: usize, size: usize, extra: &[&str]) {
    let value = vec![b'v'; size];
    let mut i = 0;
    while i < n {
        let batch = (n - i).min(1000);
        let mut buf = Vec::new();
        for j in i..i + batch {
            let key = format!("key:{j}");
            let mut args: Vec<&[u8]> = vec![b"SET", key.as_bytes(), &value];
            args.extend(extra.iter().map(|a| a.as_bytes()));
            buf.extend(encode_command(&args));
        }
        c.send_raw(&buf);
        let replies = c.read_replies(batch);
        assert_eq!(replies, b"+OK\r\n".repeat(batch), "loading keys {i}..{}", i + batch);
        i += batch;
    }
}

/// Every reply in `buf` (complete replies only), parsed.
pub fn parse_all(mut buf: &[u8]) -> Vec<Resp> {
    let mut out = Vec::new();
    while let Ok(Some((r, used))) = parse_reply(buf) {
        out.push(r);
        buf = &buf[used..];
    }
    out
}

#[cfg(test)]
mod resp_tests {
    use super::*;

    // Pins: every RESP3 type parses, incomplete input is not an error, and the
    // consumed length is exact so pipelined replies can be split.
    #[test]
    fn parses_all_types() {
        let cases: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":-5\r\n",
            b"$3\r\nabc\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*2\r\n$1\r\na\r\n:1\r\n",
            b"_\r\n",
            b",1.5\r\n",
            b"#t\r\n",
            b"!3\r\nbad\r\n",
            b"=7\r\ntxt:abc\r\n",
            b"(123456789012345678901234567890\r\n",
            b"%1\r\n+k\r\n:1\r\n",
            b"~2\r\n:1\r\n:2\r\n",
            b">2\r\n+message\r\n$1\r\nx\r\n",
            b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
        ];
        for c in cases {
            let (_, used) = parse_reply(c).unwrap().unwrap();
            assert_eq!(used, c.len(), "{}", escape(c));
            for cut in 0..c.len() {
                assert!(parse_reply(&c[..cut]).unwrap().is_none(), "{} cut {cut}", escape(c));
            }
        }
        assert!(parse_reply(b"?x\r\n").is_err());
    }

    #[test]
    fn filters_darter_flags_for_redis() {
        assert_eq!(
            filter_for_redis(&["--proactor_threads", "4", "--requirepass=pw", "--logtostderr", "--maxmemory", "1mb"]),
            vec!["--requirepass", "pw", "--maxmemory", "1mb"]
        );
    }
}
