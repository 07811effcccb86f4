//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP and the run-time configuration every
//! thread keeps a copy of.
//!
//! ```text
//!   PARAMS (static table, Redis 7.0's standardConfig list + Darter's flags)
//!     name, alias, flags (immutable, protected, hidden...), kind (bool, string, enum,
//!     numeric with memory/percent/octal parsing, or special)
//!   RuntimeConfig (one copy per thread)
//!     values[i]  : parameter i as CONFIG GET shows it (canonical text)
//!     seq[i]     : CONFIG SET sequence number that last wrote values[i]
//!     typed fields derived from values (maxmemory, requirepass, maxmemory_policy...)
//!
//!   CONFIG SET a 1 b 2 ──▶ validate every pair on the calling thread (Redis's order of
//!                          checks and error texts) ──▶ broadcast the canonical values
//!                          to every shard ──▶ each applies those with a newer seq ──▶ OK
//! ```
//!
//! The sequence number makes concurrent CONFIG SETs from different threads converge on
//! the same values everywhere (the later SET wins on every thread).
//!
//! Parameters that Darter acts on: requirepass (new connections, AUTH), maxmemory,
//! maxmemory-policy, maxclients, keys_output_limit, cache_mode, hz (capped like Redis),
//! notify-keyspace-events (parsed flags), protected-mode, port and bind (new listeners on
//! every thread, all or nothing, before anything is applied). The rest are validated
//! like Redis, stored and echoed. Read-only in Darter: databases/dbnum,
//! proactor_threads, plus Redis's immutable ones; dir and dbfilename are "protected" as
//! in a default Redis. dbnum and proactor_threads are Darter-only start-up flags, so
//! they are hidden from CONFIG GET patterns (exact names still work).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Command, Handler};
use crate::config::Config;
use crate::op::OpStatus;
use crate::shard::{RuntimeConfig, Shard};
use crate::tx::Ctx;

/// Cannot be changed at run time.
const IMMUTABLE: u8 = 1;
/// Refused unless enable-protected-configs allows it (it never does in Darter).
const PROTECTED: u8 = 2;
/// Not matched by CONFIG GET patterns, only by its exact name.
const HIDDEN: u8 = 4;
/// The value is split on spaces into several arguments.
const MULTI_ARG: u8 = 8;
/// A Darter parameter: booleans also accept true/false.
const DARTER: u8 = 16;

/// Numeric value syntaxes (Redis's INTEGER/MEMORY/PERCENT/OCTAL_CONFIG).
#[derive(Clone, Copy, PartialEq)]
enum NumFmt {
    Plain,
    Memory,
    MemoryPercent,
    Octal,
}

type SpecialFn = fn(&[&str]) -> Result<String, String>;
type Validator = fn(&str) -> Result<(), &'static str>;

#[derive(Clone, Copy)]
enum Kind {
    Bool(bool),
    /// A string, with an optional validity check.
    Str(&'static str, Option<Validator>),
    /// (accepted names, value id) and the default name. Names that share an id show as
    /// the first of them.
    Enum(&'static [(&'static str, u8)], &'static str),
    /// Bounds (inclusive), default, syntax.
    Num {
        min: i128,
        max: i128,
        default: i128,
        fmt: NumFmt,
    },
    /// A parser of the (split) arguments to the canonical value, and the default.
    Special(SpecialFn, &'static str),
}

pub struct Param {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    flags: u8,
    kind: Kind,
}

const INT_MAX: i128 = i32::MAX as i128;
const INT_MIN: i128 = i32::MIN as i128;
const UINT_MAX: i128 = u32::MAX as i128;
const LONG_MAX: i128 = i64::MAX as i128;
const ULLONG_MAX: i128 = u64::MAX as i128;
const MB: i128 = 1024 * 1024;

const fn p(name: &'static str, alias: Option<&'static str>, flags: u8, kind: Kind) -> Param {
    Param { name, alias, flags, kind }
}
const fn b(name: &'static str, default: bool) -> Param {
    p(name, None, 0, Kind::Bool(default))
}
const fn s(name: &'static str, default: &'static str) -> Param {
    p(name, None, 0, Kind::Str(default, None))
}
const fn n(name: &'static str, min: i128, max: i128, default: i128) -> Param {
    p(name, None, 0, Kind::Num { min, max, default, fmt: NumFmt::Plain })
}
const fn mem(name: &'static str, min: i128, max: i128, default: i128) -> Param {
    p(name, None, 0, Kind::Num { min, max, default, fmt: NumFmt::Memory })
}
const fn flags(mut param: Param, flags: u8) -> Param {
    param.flags |= flags;
    param
}
const fn alias(mut param: Param, alias: &'static str) -> Param {
    param.alias = Some(alias);
    param
}

const MAXMEMORY_POLICIES: &[(&str, u8)] = &[
    ("volatile-lru", 0),
    ("volatile-lfu", 1),
    ("volatile-random", 2),
    ("volatile-ttl", 3),
    ("allkeys-lru", 4),
    ("allkeys-lfu", 5),
    ("allkeys-random", 6),
    ("noeviction", 7),
];
const SYSLOG_FACILITIES: &[(&str, u8)] = &[
    ("user", 0),
    ("local0", 1),
    ("local1", 2),
    ("local2", 3),
    ("local3", 4),
    ("local4", 5),
    ("local5", 6),
    ("local6", 7),
    ("local7", 8),
];
const LOGLEVELS: &[(&str, u8)] = &[("debug", 0), ("verbose", 1), ("notice", 2), ("warning", 3)];
const SUPERVISED: &[(&str, u8)] = &[("upstart", 0), ("systemd", 1), ("auto", 2), ("no", 3)];
const AOF_FSYNC: &[(&str, u8)] = &[("everysec", 0), ("always", 1), ("no", 2)];
const DISKLESS_LOAD: &[(&str, u8)] = &[("disabled", 0), ("on-empty-db", 1), ("swapdb", 2)];
const TLS_AUTH_CLIENTS: &[(&str, u8)] = &[("no", 0), ("yes", 1), ("optional", 2)];
const OOM_SCORE_ADJ: &[(&str, u8)] = &[("no", 0), ("yes", 1), ("relative", 1), ("absolute", 2)];
const ACL_PUBSUB_DEFAULT: &[(&str, u8)] = &[("allchannels", 0), ("resetchannels", 1)];
const SANITIZE_DUMP: &[(&str, u8)] = &[("no", 0), ("yes", 1), ("clients", 2)];
const PROTECTED_ACTION: &[(&str, u8)] = &[("no", 0), ("yes", 1), ("local", 2)];
const ENDPOINT_TYPE: &[(&str, u8)] = &[("ip", 0), ("hostname", 1), ("unknown-endpoint", 2)];
const PROPAGATION_ERROR: &[(&str, u8)] = &[("ignore", 0), ("panic", 1), ("panic-on-replicas", 2)];

const fn e(name: &'static str, values: &'static [(&'static str, u8)], default: &'static str) -> Param {
    p(name, None, 0, Kind::Enum(values, default))
}
const fn sp(name: &'static str, f: SpecialFn, default: &'static str) -> Param {
    p(name, None, MULTI_ARG, Kind::Special(f, default))
}

/// Every parameter, in Redis 7.0.15's table order, then Darter's own.
pub static PARAMS: &[Param] = &[
    // Bool configs.
    flags(b("rdbchecksum", true), IMMUTABLE),
    flags(b("daemonize", false), IMMUTABLE),
    flags(b("io-threads-do-reads", false), IMMUTABLE),
    flags(b("always-show-logo", false), IMMUTABLE),
    b("protected-mode", true),
    b("rdbcompression", true),
    b("rdb-del-sync-files", false),
    b("activerehashing", true),
    b("stop-writes-on-bgsave-error", true),
    flags(b("set-proc-title", true), IMMUTABLE),
    b("dynamic-hz", true),
    b("lazyfree-lazy-eviction", false),
    b("lazyfree-lazy-expire", false),
    b("lazyfree-lazy-server-del", false),
    b("lazyfree-lazy-user-del", false),
    b("lazyfree-lazy-user-flush", false),
    b("repl-disable-tcp-nodelay", false),
    b("repl-diskless-sync", true),
    b("aof-rewrite-incremental-fsync", true),
    b("no-appendfsync-on-rewrite", false),
    b("cluster-require-full-coverage", true),
    b("rdb-save-incremental-fsync", true),
    b("aof-load-truncated", true),
    b("aof-use-rdb-preamble", true),
    b("aof-timestamp-enabled", false),
    alias(b("cluster-replica-no-failover", false), "cluster-slave-no-failover"),
    alias(b("replica-lazy-flush", false), "slave-lazy-flush"),
    alias(b("replica-serve-stale-data", true), "slave-serve-stale-data"),
    alias(b("replica-read-only", true), "slave-read-only"),
    alias(b("replica-ignore-maxmemory", true), "slave-ignore-maxmemory"),
    b("jemalloc-bg-thread", true),
    b("activedefrag", false),
    flags(b("syslog-enabled", false), IMMUTABLE),
    flags(b("cluster-enabled", false), IMMUTABLE),
    b("appendonly", false),
    b("cluster-allow-reads-when-down", false),
    b("cluster-allow-pubsubshard-when-down", true),
    b("crash-log-enabled", true),
    b("crash-memcheck-enabled", true),
    flags(b("use-exit-on-panic", false), HIDDEN),
    flags(b("disable-thp", true), IMMUTABLE),
    b("cluster-allow-replica-migration", true),
    b("replica-announced", true),
    b("latency-tracking", true),
    b("aof-disable-auto-gc", false),
    b("replica-ignore-disk-write-errors", false),
    // String configs.
    flags(s("aclfile", ""), IMMUTABLE),
    flags(s("unixsocket", ""), IMMUTABLE),
    flags(s("pidfile", ""), IMMUTABLE),
    alias(s("replica-announce-ip", ""), "slave-announce-ip"),
    s("masteruser", ""),
    s("cluster-announce-ip", ""),
    flags(s("cluster-config-file", "nodes.conf"), IMMUTABLE),
    p("cluster-announce-hostname", None, 0, Kind::Str("", Some(valid_hostname))),
    flags(s("syslog-ident", "redis"), IMMUTABLE),
    p("dbfilename", None, PROTECTED, Kind::Str("dump.rdb", Some(valid_dbfilename))),
    flags(s("appendfilename", "appendonly.aof"), IMMUTABLE),
    flags(s("appenddirname", "appendonlydir"), IMMUTABLE),
    flags(s("server_cpulist", ""), IMMUTABLE),
    flags(s("bio_cpulist", ""), IMMUTABLE),
    flags(s("aof_rewrite_cpulist", ""), IMMUTABLE),
    flags(s("bgsave_cpulist", ""), IMMUTABLE),
    s("ignore-warnings", ""),
    s("proc-title-template", "{title} {listen-addr} {server-mode}"),
    s("bind-source-addr", ""),
    flags(s("logfile", ""), IMMUTABLE),
    s("masterauth", ""),
    s("requirepass", ""),
    // Enum configs.
    flags(e("supervised", SUPERVISED, "no"), IMMUTABLE),
    flags(e("syslog-facility", SYSLOG_FACILITIES, "local0"), IMMUTABLE),
    e("repl-diskless-load", DISKLESS_LOAD, "disabled"),
    e("loglevel", LOGLEVELS, "notice"),
    e("maxmemory-policy", MAXMEMORY_POLICIES, "noeviction"),
    e("appendfsync", AOF_FSYNC, "everysec"),
    e("oom-score-adj", OOM_SCORE_ADJ, "no"),
    e("acl-pubsub-default", ACL_PUBSUB_DEFAULT, "resetchannels"),
    e("sanitize-dump-payload", SANITIZE_DUMP, "no"),
    flags(e("enable-protected-configs", PROTECTED_ACTION, "no"), IMMUTABLE),
    // Set at start with --enable_debug_command (default "no", as Redis 7).
    flags(e("enable-debug-command", PROTECTED_ACTION, "no"), IMMUTABLE),
    flags(e("enable-module-command", PROTECTED_ACTION, "no"), IMMUTABLE),
    e("cluster-preferred-endpoint-type", ENDPOINT_TYPE, "ip"),
    e("propagation-error-behavior", PROPAGATION_ERROR, "ignore"),
    p("shutdown-on-sigint", None, MULTI_ARG, Kind::Special(set_shutdown_on_signal, "default")),
    p("shutdown-on-sigterm", None, MULTI_ARG, Kind::Special(set_shutdown_on_signal, "default")),
    // Integer configs.
    flags(n("databases", 1, INT_MAX, 16), IMMUTABLE),
    n("port", 0, 65535, 6379),
    flags(n("io-threads", 1, 128, 1), IMMUTABLE),
    n("auto-aof-rewrite-percentage", 0, INT_MAX, 100),
    alias(n("cluster-replica-validity-factor", 0, INT_MAX, 10), "cluster-slave-validity-factor"),
    alias(n("list-max-listpack-size", INT_MIN, INT_MAX, -2), "list-max-ziplist-size"),
    n("tcp-keepalive", 0, INT_MAX, 300),
    n("cluster-migration-barrier", 0, INT_MAX, 1),
    n("active-defrag-cycle-min", 1, 99, 1),
    n("active-defrag-cycle-max", 1, 99, 25),
    n("active-defrag-threshold-lower", 0, 1000, 10),
    n("active-defrag-threshold-upper", 0, 1000, 100),
    n("lfu-log-factor", 0, INT_MAX, 10),
    n("lfu-decay-time", 0, INT_MAX, 1),
    alias(n("replica-priority", 0, INT_MAX, 100), "slave-priority"),
    n("repl-diskless-sync-delay", 0, INT_MAX, 5),
    n("maxmemory-samples", 1, INT_MAX, 5),
    n("maxmemory-eviction-tenacity", 0, 100, 10),
    n("timeout", 0, INT_MAX, 0),
    alias(n("replica-announce-port", 0, 65535, 0), "slave-announce-port"),
    flags(n("tcp-backlog", 0, INT_MAX, 511), IMMUTABLE),
    flags(n("cluster-port", 0, 65535, 0), IMMUTABLE),
    n("cluster-announce-bus-port", 0, 65535, 0),
    n("cluster-announce-port", 0, 65535, 0),
    n("cluster-announce-tls-port", 0, 65535, 0),
    n("repl-timeout", 1, INT_MAX, 60),
    alias(n("repl-ping-replica-period", 1, INT_MAX, 10), "repl-ping-slave-period"),
    n("list-compress-depth", 0, INT_MAX, 0),
    flags(n("rdb-key-save-delay", INT_MIN, INT_MAX, 0), HIDDEN),
    flags(n("key-load-delay", INT_MIN, INT_MAX, 0), HIDDEN),
    n("active-expire-effort", 1, 10, 1),
    n("hz", 0, INT_MAX, 10),
    alias(n("min-replicas-to-write", 0, INT_MAX, 0), "min-slaves-to-write"),
    alias(n("min-replicas-max-lag", 0, INT_MAX, 10), "min-slaves-max-lag"),
    flags(n("watchdog-period", 0, INT_MAX, 0), HIDDEN),
    n("shutdown-timeout", 0, INT_MAX, 10),
    n("repl-diskless-sync-max-replicas", 0, INT_MAX, 0),
    n("maxclients", 1, UINT_MAX, 10000),
    flags(n("socket-mark-id", 0, UINT_MAX, 0), IMMUTABLE),
    p("unixsocketperm", None, IMMUTABLE, Kind::Num { min: 0, max: 0o777, default: 0, fmt: NumFmt::Octal }),
    n("active-defrag-max-scan-fields", 1, LONG_MAX, 1000),
    n("slowlog-max-len", 0, LONG_MAX, 128),
    n("acllog-max-len", 0, LONG_MAX, 128),
    alias(n("busy-reply-threshold", 0, LONG_MAX, 5000), "lua-time-limit"),
    n("cluster-node-timeout", 0, LONG_MAX, 15000),
    n("slowlog-log-slower-than", -1, LONG_MAX, 10000),
    n("latency-monitor-threshold", 0, LONG_MAX, 0),
    mem("proto-max-bulk-len", MB, LONG_MAX, 512 * MB),
    n("stream-node-max-entries", 0, LONG_MAX, 100),
    mem("repl-backlog-size", 1, LONG_MAX, MB),
    mem("maxmemory", 0, ULLONG_MAX, 0),
    mem("cluster-link-sendbuf-limit", 0, ULLONG_MAX, 0),
    alias(n("hash-max-listpack-entries", 0, LONG_MAX, 512), "hash-max-ziplist-entries"),
    n("set-max-intset-entries", 0, LONG_MAX, 512),
    alias(n("zset-max-listpack-entries", 0, LONG_MAX, 128), "zset-max-ziplist-entries"),
    mem("active-defrag-ignore-bytes", 1, LONG_MAX, 100 * MB),
    alias(mem("hash-max-listpack-value", 0, LONG_MAX, 64), "hash-max-ziplist-value"),
    mem("stream-node-max-bytes", 0, LONG_MAX, 4096),
    alias(mem("zset-max-listpack-value", 0, LONG_MAX, 64), "zset-max-ziplist-value"),
    mem("hll-sparse-max-bytes", 0, LONG_MAX, 3000),
    n("tracking-table-max-keys", 0, LONG_MAX, 1_000_000),
    mem("client-query-buffer-limit", MB, LONG_MAX, 1024 * MB),
    p("maxmemory-clients", None, 0, Kind::Num { min: -100, max: LONG_MAX, default: 0, fmt: NumFmt::MemoryPercent }),
    n("repl-backlog-ttl", 0, LONG_MAX, 3600),
    mem("auto-aof-rewrite-min-size", 0, LONG_MAX, 64 * MB),
    flags(n("loading-process-events-interval-bytes", 1024, INT_MAX, 2 * MB), HIDDEN),
    // TLS configs (stored and echoed; Darter has no TLS listener).
    n("tls-port", 0, 65535, 0),
    n("tls-session-cache-size", 0, INT_MAX, 20 * 1024),
    n("tls-session-cache-timeout", 0, INT_MAX, 300),
    b("tls-cluster", false),
    b("tls-replication", false),
    e("tls-auth-clients", TLS_AUTH_CLIENTS, "yes"),
    b("tls-prefer-server-ciphers", false),
    b("tls-session-caching", true),
    s("tls-cert-file", ""),
    s("tls-key-file", ""),
    s("tls-key-file-pass", ""),
    s("tls-client-cert-file", ""),
    s("tls-client-key-file", ""),
    s("tls-client-key-file-pass", ""),
    s("tls-dh-params-file", ""),
    s("tls-ca-cert-file", ""),
    s("tls-ca-cert-dir", ""),
    s("tls-protocols", ""),
    s("tls-ciphers", ""),
    s("tls-ciphersuites", ""),
    // Special configs.
    p("dir", None, PROTECTED, Kind::Special(set_dir, ".")),
    sp("save", set_save, "3600 1 300 100 60 10000"),
    sp(
        "client-output-buffer-limit",
        set_client_output_buffer_limit,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    sp("oom-score-adj-values", set_oom_score_adj_values, "0 200 800"),
    p("notify-keyspace-events", None, 0, Kind::Special(set_notify_keyspace_events, "")),
    p("bind", None, MULTI_ARG, Kind::Special(set_bind, "* -::*")),
    p("replicaof", Some("slaveof"), IMMUTABLE | MULTI_ARG, Kind::Special(set_replicaof, "")),
    sp("latency-tracking-info-percentiles", set_latency_percentiles, "50 99 99.9"),
    // Darter's own flags. The start-up-only ones are hidden from CONFIG GET patterns
    // (still gettable by exact name): a tool that does CONFIG GET * and then CONFIG SET
    // of every pair must not trip over parameters Redis does not have.
    flags(n("dbnum", 1, 1024, 16), IMMUTABLE | DARTER | HIDDEN),
    flags(n("proactor_threads", 0, 1024, 0), IMMUTABLE | DARTER | HIDDEN),
    flags(n("keys_output_limit", 0, LONG_MAX, 8192), DARTER),
    flags(b("cache_mode", false), DARTER),
];

/// Parameter names (and aliases), lower-case, to (index in PARAMS, is alias).
fn by_name() -> &'static HashMap<&'static str, (usize, bool)> {
    static MAP: OnceLock<HashMap<&'static str, (usize, bool)>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut m = HashMap::new();
        for (i, p) in PARAMS.iter().enumerate() {
            assert!(m.insert(p.name, (i, false)).is_none(), "config {} listed twice", p.name);
            if let Some(a) = p.alias {
                assert!(m.insert(a, (i, true)).is_none(), "config alias {a} listed twice");
            }
        }
        m
    })
}

/// Finds a parameter by name or alias, case-insensitively: (index, name as registered).
pub fn lookup(name: &[u8]) -> Option<(usize, &'static str)> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    let &(i, is_alias) = by_name().get(lower.as_str())?;
    let p = &PARAMS[i];
    Some((i, if is_alias { p.alias.expect("alias entry has an alias") } else { p.name }))
}

/// Index of a parameter by its exact primary name (for Darter's own code).
pub fn index(name: &str) -> usize {
    by_name().get(name).map(|&(i, _)| i).unwrap_or_else(|| panic!("unknown config {name}"))
}

// ------------------------------------------------------------------ values and parsing

/// Redis's `memtoull`: digits and an optional unit (b, k, kb, m, mb, g, gb).
pub fn memtoull(s: &str) -> Option<u64> {
    if s.starts_with('-') {
        return None;
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.len() >= 128 {
        return None;
    }
    // strtoull of an empty string is 0 without an error, as in Redis.
    let v: u64 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    v.checked_mul(mul)
}

/// C `strtoll` over the whole string (leading blanks and a sign allowed), as Redis uses
/// for `save` and buffer-limit seconds.
fn strtoll_full(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() {
        // No digits: strtoll converts nothing and the end pointer is the start.
        return if s.is_empty() { Some(0) } else { None };
    }
    if !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v: i128 = digits.parse::<i128>().unwrap_or(i128::MAX).min(i64::MAX as i128 + 1);
    let v = if neg { -v } else { v };
    Some(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

fn format_num(v: i128, fmt: NumFmt) -> String {
    match fmt {
        NumFmt::MemoryPercent if v < 0 => format!("{}%", -v),
        NumFmt::Octal => format!("{v:o}"),
        _ => v.to_string(),
    }
}

fn parse_num(s: &str, fmt: NumFmt) -> Result<i128, &'static str> {
    let memory = matches!(fmt, NumFmt::Memory | NumFmt::MemoryPercent);
    if let Some(v) = memtoull(s).filter(|_| memory) {
        return Ok(v as i128);
    }
    let percent = s.strip_suffix('%').filter(|d| fmt == NumFmt::MemoryPercent && !d.is_empty());
    if let Some(v) = percent.and_then(|d| crate::util::parse_i64(d.as_bytes())).filter(|v| *v >= 0) {
        return Ok(-(v as i128));
    }
    if let Some(v) = i64::from_str_radix(s, 8).ok().filter(|_| fmt == NumFmt::Octal) {
        return Ok(v as i128);
    }
    if let Some(v) = crate::util::parse_i64(s.as_bytes()).filter(|_| fmt == NumFmt::Plain) {
        return Ok(v as i128);
    }
    Err(match fmt {
        NumFmt::MemoryPercent => "argument must be a memory or percent value",
        NumFmt::Memory => "argument must be a memory value",
        NumFmt::Octal => "argument couldn't be parsed as an octal number",
        NumFmt::Plain => "argument couldn't be parsed into an integer",
    })
}

/// Validates `value` for `param` and returns its canonical form (as CONFIG GET shows it).
fn parse_value(param: &Param, value: &[u8]) -> Result<String, String> {
    let value = String::from_utf8_lossy(value);
    let value = value.as_ref();
    match param.kind {
        Kind::Bool(_) => match value.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            "true" if param.flags & DARTER != 0 => Ok("yes".into()),
            "false" if param.flags & DARTER != 0 => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Str(_, check) => {
            if let Some(check) = check {
                check(value)?;
            }
            Ok(value.to_string())
        }
        Kind::Enum(values, _) => {
            let lower = value.to_ascii_lowercase();
            match values.iter().find(|(name, _)| *name == lower) {
                Some((_, id)) => Ok(values.iter().find(|(_, i)| i == id).expect("the id itself").0.to_string()),
                None => {
                    let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
                    let mut msg = format!("argument(s) must be one of the following: {}", names.join(", "));
                    msg.truncate(255);
                    Err(msg)
                }
            }
        }
        Kind::Num { min, max, fmt, .. } => {
            let v = parse_num(value, fmt)?;
            if fmt == NumFmt::MemoryPercent && v < 0 {
                if v < min {
                    return Err(format!("percentage argument must be less or equal to {}", -min));
                }
            } else if v < min || v > max {
                return Err(if fmt == NumFmt::Octal {
                    format!("argument must be between {min:o} and {max:o} inclusive")
                } else {
                    format!("argument must be between {min} and {max} inclusive")
                });
            }
            // hz is a hint: Redis accepts any value and caps it to 1..500.
            if param.name == "hz" {
                return Ok(v.clamp(1, 500).to_string());
            }
            Ok(format_num(v, fmt))
        }
        Kind::Special(f, _) => {
            let args: Vec<&str> = if param.flags & MULTI_ARG != 0 {
                if value.is_empty() { Vec::new() } else { value.split(' ').collect() }
            } else {
                vec![value]
            };
            f(&args)
        }
    }
}

fn valid_dbfilename(v: &str) -> Result<(), &'static str> {
    if v.contains('/') {
        return Err("dbfilename can't be a path, just a filename");
    }
    Ok(())
}

fn valid_hostname(v: &str) -> Result<(), &'static str> {
    if v.len() >= 256 {
        return Err("Hostnames must be less than 256 characters");
    }
    if !v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') {
        return Err("Hostnames may only contain alphanumeric characters, hyphens or dots");
    }
    Ok(())
}

fn set_dir(args: &[&str]) -> Result<String, String> {
    // Protected, so CONFIG SET never reaches this; kept for completeness.
    if args.len() != 1 {
        return Err("wrong number of arguments".into());
    }
    Ok(args[0].to_string())
}

fn set_save(args: &[&str]) -> Result<String, String> {
    if args.len() % 2 == 1 {
        return Err("Invalid save parameters".into());
    }
    let mut vals = Vec::with_capacity(args.len());
    for (j, a) in args.iter().enumerate() {
        match strtoll_full(a) {
            Some(v) if (j % 2 == 0 && v >= 1) || (j % 2 == 1 && v >= 0) => vals.push(v),
            _ => return Err("Invalid save parameters".into()),
        }
    }
    Ok(vals.chunks(2).map(|c| format!("{} {}", c[0], c[1] as i32)).collect::<Vec<_>>().join(" "))
}

/// Client classes of client-output-buffer-limit, in CONFIG GET order.
const OBUF_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

fn set_client_output_buffer_limit(args: &[&str]) -> Result<String, String> {
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut updates: Vec<(usize, u64, u64, i64)> = Vec::new();
    for c in args.chunks(4) {
        let class = match c[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let hard = memtoull(c[1]);
        let soft = memtoull(c[2]);
        let secs = strtoll_full(c[3]).filter(|s| *s >= 0 && !c[3].is_empty());
        match (hard, soft, secs) {
            (Some(h), Some(s), Some(t)) => updates.push((class, h, s, t)),
            _ => return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into()),
        }
    }
    // Classes not named keep their value: the caller merges with the current one.
    let mut out = String::new();
    for (class, h, s, t) in updates {
        out.push_str(&format!("{} {} {} {} ", OBUF_CLASSES[class], h, s, t));
    }
    Ok(out)
}

/// Merges a partial client-output-buffer-limit update into the current value.
fn merge_obuf(current: &str, update: &str) -> String {
    let mut classes: Vec<[String; 3]> = vec![Default::default(); 3];
    for (src, _) in [(current, 0), (update, 1)] {
        let t: Vec<&str> = src.split_whitespace().collect();
        for c in t.chunks(4) {
            if let Some(i) = OBUF_CLASSES.iter().position(|n| c.len() == 4 && *n == c[0]) {
                classes[i] = [c[1].to_string(), c[2].to_string(), c[3].to_string()];
            }
        }
    }
    OBUF_CLASSES
        .iter()
        .zip(&classes)
        .map(|(n, v)| format!("{n} {} {} {}", v[0], v[1], v[2]))
        .collect::<Vec<_>>()
        .join(" ")
}

fn set_oom_score_adj_values(args: &[&str]) -> Result<String, String> {
    if args.len() != 3 {
        return Err("wrong number of arguments".into());
    }
    let mut v = Vec::new();
    for a in args {
        match strtoll_full(a) {
            Some(x) if (-2000..=2000).contains(&x) && !a.is_empty() => v.push(x.to_string()),
            _ => return Err("Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into()),
        }
    }
    Ok(v.join(" "))
}

pub const NOTIFY_KEYSPACE: u32 = 1 << 0;
pub const NOTIFY_KEYEVENT: u32 = 1 << 1;
pub const NOTIFY_GENERIC: u32 = 1 << 2;
pub const NOTIFY_STRING: u32 = 1 << 3;
pub const NOTIFY_LIST: u32 = 1 << 4;
pub const NOTIFY_SET: u32 = 1 << 5;
pub const NOTIFY_HASH: u32 = 1 << 6;
pub const NOTIFY_ZSET: u32 = 1 << 7;
pub const NOTIFY_EXPIRED: u32 = 1 << 8;
pub const NOTIFY_EVICTED: u32 = 1 << 9;
pub const NOTIFY_STREAM: u32 = 1 << 10;
pub const NOTIFY_KEY_MISS: u32 = 1 << 11;
pub const NOTIFY_MODULE: u32 = 1 << 12;
pub const NOTIFY_NEW: u32 = 1 << 13;
pub const NOTIFY_ALL: u32 = NOTIFY_GENERIC
    | NOTIFY_STRING
    | NOTIFY_LIST
    | NOTIFY_SET
    | NOTIFY_HASH
    | NOTIFY_ZSET
    | NOTIFY_EXPIRED
    | NOTIFY_EVICTED
    | NOTIFY_STREAM
    | NOTIFY_MODULE;

/// Redis's `keyspaceEventsStringToFlags`.
pub fn notify_flags(s: &str) -> Option<u32> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => NOTIFY_ALL,
            'g' => NOTIFY_GENERIC,
            '$' => NOTIFY_STRING,
            'l' => NOTIFY_LIST,
            's' => NOTIFY_SET,
            'h' => NOTIFY_HASH,
            'z' => NOTIFY_ZSET,
            'x' => NOTIFY_EXPIRED,
            'e' => NOTIFY_EVICTED,
            'K' => NOTIFY_KEYSPACE,
            'E' => NOTIFY_KEYEVENT,
            't' => NOTIFY_STREAM,
            'm' => NOTIFY_KEY_MISS,
            'd' => NOTIFY_MODULE,
            'n' => NOTIFY_NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// Redis's `keyspaceEventsFlagsToString`.
pub fn notify_string(f: u32) -> String {
    let mut s = String::new();
    if f & NOTIFY_ALL == NOTIFY_ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (NOTIFY_GENERIC, 'g'),
            (NOTIFY_STRING, '$'),
            (NOTIFY_LIST, 'l'),
            (NOTIFY_SET, 's'),
            (NOTIFY_HASH, 'h'),
            (NOTIFY_ZSET, 'z'),
            (NOTIFY_EXPIRED, 'x'),
            (NOTIFY_EVICTED, 'e'),
            (NOTIFY_STREAM, 't'),
            (NOTIFY_MODULE, 'd'),
            (NOTIFY_NEW, 'n'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(NOTIFY_KEYSPACE, 'K'), (NOTIFY_KEYEVENT, 'E'), (NOTIFY_KEY_MISS, 'm')] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

fn set_notify_keyspace_events(args: &[&str]) -> Result<String, String> {
    if args.len() != 1 {
        return Err("wrong number of arguments".into());
    }
    match notify_flags(args[0]) {
        Some(f) => Ok(notify_string(f)),
        None => Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
    }
}

fn set_bind(args: &[&str]) -> Result<String, String> {
    if args.len() > 16 {
        return Err("Too many bind addresses specified.".into());
    }
    Ok(args.join(" "))
}

fn set_replicaof(args: &[&str]) -> Result<String, String> {
    if args.len() != 2 {
        return Err("wrong number of arguments".into());
    }
    Ok(args.join(" "))
}

fn set_shutdown_on_signal(args: &[&str]) -> Result<String, String> {
    const NAMES: [&str; 5] = ["default", "save", "nosave", "now", "force"];
    let mut out = Vec::new();
    for a in args {
        let l = a.to_ascii_lowercase();
        if !NAMES.contains(&l.as_str()) {
            return Err(format!("argument(s) must be one of the following: {}", NAMES.join(", ")));
        }
        out.push(l);
    }
    if out.is_empty() {
        return Err(format!("argument(s) must be one of the following: {}", NAMES.join(", ")));
    }
    Ok(out.join(" "))
}

fn set_latency_percentiles(args: &[&str]) -> Result<String, String> {
    let mut out = Vec::new();
    for a in args {
        let Some(v) = crate::util::parse_f64_strict(a.as_bytes()) else {
            return Err("Invalid latency-tracking-info-percentiles parameters".into());
        };
        if !(0.0..=100.0).contains(&v) {
            return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
        }
        // "%f" then trailing zeros (and a trailing dot) trimmed.
        let mut t = format!("{v:.6}");
        while t.ends_with('0') {
            t.pop();
        }
        if t.ends_with('.') {
            t.pop();
        }
        out.push(t);
    }
    Ok(out.join(" "))
}

fn default_value(param: &Param) -> String {
    match param.kind {
        Kind::Bool(v) => (if v { "yes" } else { "no" }).into(),
        Kind::Str(v, _) => v.into(),
        Kind::Enum(_, v) => v.into(),
        Kind::Num { default, fmt, .. } => format_num(default, fmt),
        Kind::Special(_, v) => v.into(),
    }
}

// ------------------------------------------------------------------ runtime copy

/// The run-time configuration at start-up, from the flags.
pub fn initial(cfg: &Config) -> RuntimeConfig {
    let mut values: Vec<String> = PARAMS.iter().map(default_value).collect();
    let mut set = |name: &str, v: String| values[index(name)] = v;
    set("port", cfg.port.to_string());
    set("bind", cfg.bind.clone());
    set("requirepass", cfg.requirepass.clone());
    set("maxmemory", cfg.maxmemory.to_string());
    let dir =
        std::fs::canonicalize(&cfg.dir).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| cfg.dir.clone());
    set("dir", dir);
    set("dbfilename", cfg.dbfilename.clone());
    set("databases", cfg.dbnum.to_string());
    set("dbnum", cfg.dbnum.to_string());
    set("maxclients", cfg.maxclients.to_string());
    set("keys_output_limit", cfg.keys_output_limit.to_string());
    set("proactor_threads", cfg.threads().to_string());
    set("cache_mode", (if cfg.cache_mode { "yes" } else { "no" }).into());
    set("loglevel", cfg.loglevel.clone());
    set("enable-debug-command", cfg.enable_debug_command.clone());
    set("protected-mode", (if cfg.protected_mode { "yes" } else { "no" }).into());
    let mut rc = RuntimeConfig {
        values,
        seq: vec![0; PARAMS.len()],
        maxmemory: 0,
        requirepass: String::new(),
        keys_output_limit: 0,
        maxmemory_policy: "noeviction",
        maxclients: 0,
        cache_mode: false,
        hz: 10,
        notify_keyspace_events: 0,
        active_expire: true,
        debug_command: 0,
        protected_mode: true,
    };
    refresh(&mut rc);
    rc
}

/// Re-derives the typed fields from the values.
fn refresh(rc: &mut RuntimeConfig) {
    let get = |name: &str| rc.values[index(name)].as_str();
    rc.maxmemory = get("maxmemory").parse().unwrap_or(0);
    rc.requirepass = get("requirepass").to_string();
    rc.keys_output_limit = get("keys_output_limit").parse().unwrap_or(8192);
    let policy = get("maxmemory-policy").to_string();
    rc.maxmemory_policy =
        MAXMEMORY_POLICIES.iter().find(|(n, _)| *n == policy).map(|(n, _)| *n).unwrap_or("noeviction");
    rc.maxclients = get("maxclients").parse().unwrap_or(10000);
    rc.cache_mode = get("cache_mode") == "yes";
    rc.hz = get("hz").parse().unwrap_or(10);
    rc.notify_keyspace_events = notify_flags(get("notify-keyspace-events")).unwrap_or(0);
    let debug = get("enable-debug-command");
    rc.debug_command = PROTECTED_ACTION.iter().find(|(n, _)| *n == debug).map_or(0, |(_, v)| *v);
    rc.protected_mode = get("protected-mode") == "yes";
}

/// CONFIG SET sequence numbers (later SETs win on every thread).
static SET_SEQ: AtomicU64 = AtomicU64::new(1);

/// Applies validated values on one thread's copy, skipping those a later SET already wrote.
fn apply(rc: &mut RuntimeConfig, seq: u64, updates: &[(usize, String)]) {
    for (i, v) in updates {
        if rc.seq[*i] > seq {
            continue;
        }
        rc.seq[*i] = seq;
        rc.values[*i] =
            if PARAMS[*i].name == "client-output-buffer-limit" { merge_obuf(&rc.values[*i], v) } else { v.clone() };
    }
    refresh(rc);
}

// ------------------------------------------------------------------ the command

pub fn command() -> Command {
    Command::new("config", -2, 0, (0, 0, 0), Handler::Conn(config), "@slow")
}

const HELP: &[&str] = &[
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
];

fn config(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(sub) = super::server::find_sub(&mut ctx.conn.out, "config", args) else { return };
    ctx.conn.last_cmd = sub.name;
    match &sub.name[7..] {
        "get" => config_get(ctx, args),
        "set" => config_set(ctx, args),
        "resetstat" => resetstat(ctx),
        "rewrite" => ctx.conn.out.error("ERR The server is running without a config file"),
        _ => super::server::help_reply(&mut ctx.conn.out, "config", HELP),
    }
}

fn config_get(ctx: &mut Ctx, args: &[&[u8]]) {
    let values = &ctx.shard.cfg.values;
    let mut matches: Vec<(Vec<u8>, usize)> = Vec::new();
    for pat in &args[2..] {
        if !pat.iter().any(|b| matches!(b, b'[' | b'*' | b'?')) {
            if matches.iter().any(|(n, _)| n == pat) {
                continue;
            }
            if let Some((i, _)) = lookup(pat) {
                matches.push((pat.to_vec(), i));
            }
            continue;
        }
        for (i, p) in PARAMS.iter().enumerate() {
            if p.flags & HIDDEN != 0 {
                continue;
            }
            for name in std::iter::once(p.name).chain(p.alias) {
                if matches.iter().any(|(n, _)| n == name.as_bytes()) {
                    continue;
                }
                if crate::util::glob_match(pat, name.as_bytes(), true) {
                    matches.push((name.as_bytes().to_vec(), i));
                }
            }
        }
    }
    ctx.conn.out.map(matches.len());
    for (name, i) in matches {
        ctx.conn.out.bulk(&name);
        ctx.conn.out.bulk(values[i].as_bytes());
    }
}

fn config_set(ctx: &mut Ctx, args: &[&[u8]]) {
    if args.len() % 2 == 1 {
        OpStatus::Syntax.reply(&mut ctx.conn.out);
        return;
    }
    let pairs: Vec<(&[u8], &[u8])> = args[2..].chunks(2).map(|p| (p[0], p[1])).collect();
    // Find every parameter first; the first problem found is the one reported.
    let mut found: Vec<(usize, &'static str)> = Vec::with_capacity(pairs.len());
    for (name, _) in &pairs {
        let Some((i, reg_name)) = lookup(name) else {
            ctx.conn.out.error(&format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                String::from_utf8_lossy(name)
            ));
            return;
        };
        let p = &PARAMS[i];
        if p.flags & (IMMUTABLE | PROTECTED) != 0 {
            let why =
                if p.flags & IMMUTABLE != 0 { "can't set immutable config" } else { "can't set protected config" };
            ctx.conn.out.error(&format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - {why}",
                String::from_utf8_lossy(name)
            ));
            return;
        }
        if found.iter().any(|(j, _)| *j == i) {
            ctx.conn.out.error(&format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - duplicate parameter",
                String::from_utf8_lossy(name)
            ));
            return;
        }
        found.push((i, reg_name));
    }
    // Then parse every value; nothing changes unless all are valid.
    let mut updates: Vec<(usize, String)> = Vec::with_capacity(pairs.len());
    for ((i, reg_name), (_, value)) in found.iter().zip(&pairs) {
        match parse_value(&PARAMS[*i], value) {
            Ok(v) => updates.push((*i, v)),
            Err(e) => {
                ctx.conn.out.error(&format!("ERR CONFIG SET failed (possibly related to argument '{reg_name}') - {e}"));
                return;
            }
        }
    }
    // Side effects that can fail, checked before anything changes: the open file limit
    // for maxclients, then the new listeners for port/bind (Redis's rollback: on
    // failure the old ones stay and nothing is applied).
    if let Some((_, v)) = updates.iter().find(|(i, _)| *i == index("maxclients"))
        && let Err(e) = fit_maxclients(ctx.shard, v)
    {
        ctx.conn.out.error(&format!("ERR CONFIG SET failed (possibly related to argument 'maxclients') - {e}"));
        return;
    }
    let mut listeners = match open_listeners(ctx.shard, &updates) {
        Ok(l) => l.map(|per_thread| per_thread.into_iter().map(Some).collect::<Vec<_>>()),
        Err((arg, e)) => {
            ctx.conn.out.error(&format!("ERR CONFIG SET failed (possibly related to argument '{arg}') - {e}"));
            return;
        }
    };
    let seq = SET_SEQ.fetch_add(1, Ordering::Relaxed);
    let updates = std::sync::Arc::new(updates);
    ctx.broadcast(
        move |shard| {
            let updates = updates.clone();
            let fds = listeners.as_mut().and_then(|l| l[shard].take());
            move |s: &mut Shard| {
                apply(&mut s.cfg, seq, &updates);
                if let Some(fds) = fds {
                    crate::runtime::install_listeners(s, seq, fds);
                }
                s.refresh_memory();
            }
        },
        |_, out| out.ok(),
    );
}

/// `CONFIG SET maxclients`: Redis's `updateMaxclients` — raise the open file limit to
/// fit, or fail with the number of clients the limit can hold.
fn fit_maxclients(shard: &Shard, value: &str) -> Result<(), String> {
    use crate::net::{FdLimit, adjust_open_files_limit, reserved_fds};
    let maxclients: usize = value.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    let naddrs = shard.cfg.values[index("bind")].split_whitespace().count();
    let reserved = reserved_fds(shard.nshards, naddrs);
    let fits = match adjust_open_files_limit(maxclients, reserved) {
        FdLimit::Fits { .. } => return Ok(()),
        FdLimit::Reduced { maxclients, .. } => maxclients,
        FdLimit::TooLow { limit, .. } => limit.saturating_sub(reserved) as usize,
    };
    log::warn!(
        "Failed applying new configuration. Possibly related to new maxclients setting. Restoring previous settings."
    );
    Err(format!("The operating system is not able to handle the specified number of clients, try with {fits}"))
}

/// `CONFIG SET port|bind`: opens one listening socket per thread for the new address
/// set, all or nothing. `Ok(None)`: neither changes. On failure returns the argument to
/// blame and Redis's text (config.c `updatePort` / `applyBind`).
#[allow(clippy::type_complexity)]
fn open_listeners(
    shard: &Shard,
    updates: &[(usize, String)],
) -> Result<Option<Vec<Vec<i32>>>, (&'static str, &'static str)> {
    let (port_i, bind_i) = (index("port"), index("bind"));
    let values = &shard.cfg.values;
    let new = |i: usize| updates.iter().find(|(j, _)| *j == i).map(|(_, v)| v.as_str());
    let port_changed = new(port_i).is_some_and(|v| v != values[port_i]);
    let bind_changed = new(bind_i).is_some_and(|v| v != values[bind_i]);
    if !port_changed && !bind_changed {
        return Ok(None);
    }
    let port: u16 = new(port_i).unwrap_or(&values[port_i]).parse().unwrap_or(0);
    let bind = new(bind_i).unwrap_or(&values[bind_i]);
    // Keeping the port: our current sockets on it may be shared (see net::listeners).
    let ours = if port_changed { Vec::new() } else { crate::net::bind_addrs(&values[bind_i]) };
    match crate::net::listeners(bind, port, shard.nshards, &ours) {
        Ok(l) => Ok(Some(l)),
        Err(e) => {
            log::warn!("Warning: {e}");
            if port_changed {
                Err(("port", "Unable to listen on this port. Check server logs."))
            } else {
                Err(("bind", "Failed to bind to specified addresses."))
            }
        }
    }
}

/// CONFIG RESETSTAT: zeroes every thread's counters.
fn resetstat(ctx: &mut Ctx) {
    ctx.broadcast(|_| reset_stats, |_, out| out.ok());
}

/// Zeroes the counters INFO reports (Redis's resetServerStats + command stats).
pub fn reset_stats(s: &mut Shard) {
    let n = s.stats.cmd.len();
    s.stats = crate::shard::ThreadStats { cmd: vec![Default::default(); n], ..Default::default() };
    for db in &mut s.dbs {
        db.reset_stats();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, v: &str) -> Result<String, String> {
        let (i, _) = lookup(name.as_bytes()).unwrap();
        parse_value(&PARAMS[i], v.as_bytes())
    }

    // Memory values take Redis's units; other integers are strict; bounds are checked.
    #[test]
    fn numeric_values() {
        assert_eq!(set("maxmemory", "10mb").unwrap(), "10485760");
        assert_eq!(set("maxmemory", "1k").unwrap(), "1000");
        assert_eq!(set("maxmemory", "abc").unwrap_err(), "argument must be a memory value");
        assert_eq!(set("hz", "abc").unwrap_err(), "argument couldn't be parsed into an integer");
        assert_eq!(set("hz", "-1").unwrap_err(), "argument must be between 0 and 2147483647 inclusive");
        assert_eq!(set("hz", "1000").unwrap(), "500");
        assert_eq!(set("maxclients", "0").unwrap_err(), "argument must be between 1 and 4294967295 inclusive");
        assert_eq!(set("maxmemory-clients", "10%").unwrap(), "10%");
        assert_eq!(set("maxmemory-clients", "abc").unwrap_err(), "argument must be a memory or percent value");
        assert_eq!(set("list-max-ziplist-size", "-1").unwrap(), "-1");
    }

    // Enums, booleans and the special parameters validate and normalise like Redis.
    #[test]
    fn other_values() {
        assert_eq!(set("maxmemory-policy", "ALLKEYS-LRU").unwrap(), "allkeys-lru");
        assert!(
            set("maxmemory-policy", "foo")
                .unwrap_err()
                .starts_with("argument(s) must be one of the following: volatile-lru,")
        );
        assert_eq!(set("appendonly", "YES").unwrap(), "yes");
        assert_eq!(set("appendonly", "maybe").unwrap_err(), "argument must be 'yes' or 'no'");
        assert_eq!(set("notify-keyspace-events", "KEA").unwrap(), "AKE");
        assert_eq!(set("notify-keyspace-events", "Kx$").unwrap(), "$xK");
        assert!(set("notify-keyspace-events", "xyz").is_err());
        assert_eq!(set("save", "").unwrap(), "");
        assert_eq!(set("save", "100 2 300 4").unwrap(), "100 2 300 4");
        assert_eq!(set("save", "1 2 3").unwrap_err(), "Invalid save parameters");
        assert_eq!(set("oom-score-adj", "yes").unwrap(), "yes");
        assert_eq!(set("oom-score-adj", "relative").unwrap(), "yes");
        assert_eq!(set("latency-tracking-info-percentiles", "50 99.90").unwrap(), "50 99.9");
        assert_eq!(set("cache_mode", "true").unwrap(), "yes");
    }

    // A partial client-output-buffer-limit keeps the other classes.
    #[test]
    fn obuf_merge() {
        let up = set("client-output-buffer-limit", "normal 1mb 2 3").unwrap();
        let cur = default_value(&PARAMS[index("client-output-buffer-limit")]);
        assert_eq!(merge_obuf(&cur, &up), "normal 1048576 2 3 slave 268435456 67108864 60 pubsub 33554432 8388608 60");
        assert!(set("client-output-buffer-limit", "normal 1 2").is_err());
        assert!(set("client-output-buffer-limit", "master 1 2 3").is_err());
    }

    // Later sequence numbers win whatever order the updates arrive in.
    #[test]
    fn seq_order() {
        let cfg = Config::from_args(["darter".to_string()]).unwrap();
        let mut rc = initial(&cfg);
        let i = index("maxmemory");
        apply(&mut rc, 5, &[(i, "5".into())]);
        apply(&mut rc, 3, &[(i, "3".into())]);
        assert_eq!(rc.maxmemory, 5);
    }
}
