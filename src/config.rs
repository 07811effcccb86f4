//! Start-up flags.
//!
//! Darter takes Redis-style flag names (`--port 6379`, `--port=6379`) and, for booleans,
//! `--flag`, `--flag=true|false` and `--noflag`. An unknown flag or a bad value stops the
//! process at start-up with a clear message (clap's error).
//!
//! The parsed [`Config`] is shared read-only by every thread; values that `CONFIG SET`
//! can change at run time live in [`crate::cmd::config`]'s per-thread copy instead.

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(name = "darter", version, about = "Darter: a Redis- and Memcached-compatible in-memory datastore")]
pub struct Config {
    /// TCP port to listen on.
    #[arg(long, default_value_t = 6379)]
    pub port: u16,

    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: String,

    /// Password clients must give with AUTH before any other command.
    #[arg(long, default_value = "")]
    pub requirepass: String,

    /// Memory limit in bytes; accepts Redis units (100mb, 4gb, 1k...). 0 means no limit.
    #[arg(long, default_value = "0", value_parser = parse_memory)]
    pub maxmemory: u64,

    /// Directory for snapshots.
    #[arg(long, default_value = ".")]
    pub dir: String,

    /// Snapshot file name.
    #[arg(long, default_value = "dump.rdb")]
    pub dbfilename: String,

    /// Number of logical databases (SELECT 0..dbnum-1).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub dbnum: u32,

    /// Maximum number of keys KEYS returns.
    #[arg(long = "keys_output_limit", default_value_t = 8192)]
    pub keys_output_limit: usize,

    /// Number of threads (each owns one shard); 0 means one per core (at most 1024).
    #[arg(long = "proactor_threads", default_value_t = 0, value_parser = parse_threads)]
    pub proactor_threads: usize,

    /// Maximum number of connected clients (at least 1). The process raises its open
    /// file limit to fit, or lowers this with a warning if it cannot (as Redis does).
    #[arg(long, default_value_t = 10000, value_parser = parse_maxclients)]
    pub maxclients: usize,

    /// Protected mode (Redis's `protected-mode`): with no password set, only loopback
    /// clients are served; others get `-DENIED ...` and are disconnected. Takes
    /// yes/no/true/false; `--protected_mode` alone is yes, `--noprotected_mode` no.
    #[arg(long = "protected_mode", alias = "protected-mode", default_value_t = true, value_parser = parse_yes_no, num_args = 0..=1, default_missing_value = "yes", action = clap::ArgAction::Set)]
    pub protected_mode: bool,

    /// With --maxmemory: evict the least recently read keys instead of refusing writes
    /// (see DESIGN.md, "Cache mode").
    #[arg(long = "cache_mode", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub cache_mode: bool,

    /// Log to standard error.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub logtostderr: bool,

    /// Log to standard error as well as to the log file.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub alsologtostderr: bool,

    /// Who may run DEBUG: yes (everyone), local (loopback clients only) or no (Redis 7's
    /// default: `DEBUG SLEEP` would otherwise let any client stall a thread).
    #[arg(long = "enable_debug_command", alias = "enable-debug-command", default_value = "no", value_parser = ["yes", "local", "no"])]
    pub enable_debug_command: String,

    /// Log level: debug, verbose, notice or warning (Redis names).
    #[arg(long, default_value = "notice", value_parser = ["debug", "verbose", "notice", "warning"])]
    pub loglevel: String,
}

/// Most threads (= shards) Darter runs: SCAN cursors hold the shard index in the 12 bits
/// the Dash traverse cursor leaves free (`store::SCAN_MAX_SHARDS` = 4096), and CONFIG
/// reports `proactor_threads` in 0..=1024.
pub const MAX_THREADS: usize = 1024;

fn parse_threads(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if n > MAX_THREADS {
        return Err(format!("{n} is not in 0..={MAX_THREADS}"));
    }
    Ok(n)
}

/// Redis's maxclients range: 1..=4294967295.
fn parse_maxclients(s: &str) -> Result<usize, String> {
    let n: u64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(1..=u32::MAX as u64).contains(&n) {
        return Err(format!("maxclients must be between 1 and {} inclusive", u32::MAX));
    }
    Ok(n as usize)
}

/// A Redis-style boolean (yes/no) that also takes true/false.
fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("'{s}' is not yes, no, true or false")),
    }
}

/// Boolean flags that accept the `--noflag` spelling.
const BOOL_FLAGS: &[&str] = &["cache_mode", "logtostderr", "alsologtostderr", "protected_mode"];

impl Config {
    /// Parses the process arguments, rewriting `--noflag` to `--flag=false` first.
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Config, clap::Error> {
        let rewritten = args.into_iter().map(|a| {
            if let Some(name) = a.strip_prefix("--no")
                && BOOL_FLAGS.contains(&name)
            {
                return format!("--{name}=false");
            }
            a
        });
        Config::try_parse_from(rewritten)
    }

    /// Number of threads to run: the flag, or one per core (at most [`MAX_THREADS`]).
    pub fn threads(&self) -> usize {
        if self.proactor_threads > 0 {
            return self.proactor_threads;
        }
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(MAX_THREADS)
    }
}

/// Parses a Redis memory size: a plain number of bytes or a number with one of the
/// units k, kb, m, mb, g, gb (case-insensitive; `k` is 1000, `kb` is 1024).
pub fn parse_memory(s: &str) -> Result<u64, String> {
    // The same rules as CONFIG SET (Redis's `memtoull`).
    crate::cmd::config::memtoull(s.trim()).ok_or_else(|| format!("invalid memory size '{s}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::from_args(std::iter::once("darter".to_string()).chain(args.iter().map(|s| s.to_string())))
    }

    // Both `--flag value` and `--flag=value` spellings are accepted.
    #[test]
    fn both_spellings() {
        let c = parse(&["--port", "7000", "--dbnum=4"]).unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.dbnum, 4);
    }

    // `--noflag` turns a boolean off, `--flag` turns it on.
    #[test]
    fn noflag() {
        let c = parse(&["--cache_mode", "--nologtostderr"]).unwrap();
        assert!(c.cache_mode);
        assert!(!c.logtostderr);
        let c = parse(&["--cache_mode=false"]).unwrap();
        assert!(!c.cache_mode);
    }

    // Unknown flags and bad values are start-up errors.
    #[test]
    fn bad_flags() {
        assert!(parse(&["--no_such_flag"]).is_err());
        assert!(parse(&["--port", "abc"]).is_err());
        assert!(parse(&["--maxmemory", "4zb"]).is_err());
        assert!(parse(&["--dbnum", "0"]).is_err());
        assert!(parse(&["--enable_debug_command", "maybe"]).is_err());
        assert!(parse(&["--maxclients", "0"]).is_err());
        assert!(parse(&["--maxclients", "4294967296"]).is_err());
        assert!(parse(&["--protected_mode", "maybe"]).is_err());
    }

    // DEBUG is off unless asked for, as in Redis 7; both spellings of the flag work.
    #[test]
    fn debug_command_flag() {
        assert_eq!(parse(&[]).unwrap().enable_debug_command, "no");
        assert_eq!(parse(&["--enable_debug_command", "local"]).unwrap().enable_debug_command, "local");
        assert_eq!(parse(&["--enable-debug-command=yes"]).unwrap().enable_debug_command, "yes");
    }

    // protected mode: on by default; yes/no/true/false, bare flag and --noflag.
    #[test]
    fn protected_mode_spellings() {
        assert!(parse(&[]).unwrap().protected_mode);
        assert!(!parse(&["--protected_mode", "no"]).unwrap().protected_mode);
        assert!(!parse(&["--protected_mode=false"]).unwrap().protected_mode);
        assert!(!parse(&["--noprotected_mode"]).unwrap().protected_mode);
        assert!(!parse(&["--protected-mode", "no"]).unwrap().protected_mode);
        assert!(parse(&["--protected_mode=yes"]).unwrap().protected_mode);
    }

    // Redis memory units: k=1000, kb=1024, and so on.
    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("100").unwrap(), 100);
        assert_eq!(parse_memory("1k").unwrap(), 1000);
        assert_eq!(parse_memory("1kb").unwrap(), 1024);
        assert_eq!(parse_memory("4GB").unwrap(), 4 << 30);
        assert!(parse_memory("-1").is_err());
        assert!(parse_memory("99999999999999gb").is_err());
    }
}
