//! INFO [section ...]: Redis 7.0's sections and field names.
//!
//! ```text
//!   parse sections ──▶ broadcast: each shard reports its connections, counters,
//!                      per-db key counts (and client buffer bytes if Memory is asked for)
//!                  ──▶ sum ──▶ "# Section\r\nfield:value\r\n..." joined by "\r\n"
//!                  ──▶ bulk string (RESP3: verbatim "txt")
//! ```
//!
//! used_memory is the counting allocator's exact sum (`crate::alloc`), peak included.
//! Process-wide values (uptime, RSS, CPU) come from the OS; values Darter does not
//! track (latency percentiles, error counts, replication) are Redis's idle defaults.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::cmd::{WRITE, table};
use crate::conn::Conns;
use crate::shard::{Globals, RuntimeConfig, Shard, ThreadStats, unix_us};
use crate::tx::Ctx;

/// Every section, in output order.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// Sections INFO shows without arguments (or with "default").
const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Which sections the arguments ask for (Redis's genInfoSectionDict).
fn wanted(args: &[&[u8]]) -> Vec<&'static str> {
    let mut want: Vec<&'static str> = Vec::new();
    if args.is_empty() {
        want.extend(DEFAULT);
    }
    for a in args {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "default" => want.extend(DEFAULT),
            "all" | "everything" => want.extend(SECTIONS),
            "module_list" => want.push("modules"),
            s => {
                if let Some(&name) = SECTIONS.iter().find(|n| **n == s) {
                    want.push(name);
                }
            }
        }
    }
    SECTIONS.iter().copied().filter(|s| want.contains(s)).collect()
}

/// One shard's contribution.
struct ShardInfo {
    nconns: usize,
    conn_bytes: usize,
    /// Largest client (input, output) buffers of the last seconds.
    client_peaks: (usize, usize),
    stats: ThreadStats,
    /// (keys, keys with a deadline) per db.
    dbs: Vec<(usize, usize)>,
    hits: u64,
    misses: u64,
    expired: u64,
}

fn gather(s: &Shard, conns: &Conns, with_memory: bool) -> ShardInfo {
    let mut info = ShardInfo {
        nconns: conns.count,
        conn_bytes: 0,
        client_peaks: conns.peaks.max(),
        stats: s.stats.clone(),
        dbs: s.dbs.iter().map(|d| (d.len(), d.expires_len())).collect(),
        hits: 0,
        misses: 0,
        expired: 0,
    };
    for d in &s.dbs {
        let stats = d.stats();
        info.hits += stats.keyspace_hits;
        info.misses += stats.keyspace_misses;
        info.expired += stats.expired_keys;
        info.stats.evicted_keys += stats.evicted_keys;
    }
    if with_memory {
        for (_, slot) in conns.slab.iter() {
            if let Some(c) = &slot.conn {
                info.conn_bytes += c.read_buf_figures().1 + c.output_buf_bytes();
            }
        }
    }
    info
}

pub fn info(ctx: &mut Ctx, args: &[&[u8]]) {
    let sections = wanted(&args[1..]);
    let with_memory = sections.contains(&"memory");
    let g = ctx.shard.g.clone();
    let cfg = ctx.shard.cfg.clone();
    ctx.broadcast_threads(
        move |_| move |s: &mut Shard, conns: &mut Conns| gather(s, conns, with_memory),
        move |shards: Vec<ShardInfo>, out| {
            let text = render(&sections, &shards, &g, &cfg);
            out.verbatim("txt", text.as_bytes());
        },
    );
}

/// Redis's bytesToHuman.
pub fn human_bytes(n: u64) -> String {
    let d = n as f64;
    const K: f64 = 1024.0;
    if n < 1024 {
        format!("{n}B")
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else if d < K * K * K * K * K {
        format!("{:.2}T", d / (K * K * K * K))
    } else if d < K * K * K * K * K * K {
        format!("{:.2}P", d / (K * K * K * K * K))
    } else {
        format!("{n}B")
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

use crate::alloc::rss_bytes;

fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    if pages > 0 { pages as u64 * page_size() } else { 0 }
}

/// (sys, user) CPU seconds of `who` (RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD).
fn cpu_times(who: libc::c_int) -> (String, String) {
    // SAFETY: a zeroed rusage is valid; getrusage fills it.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    };
    let f = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    (f(ru.ru_stime), f(ru.ru_utime))
}

/// "Linux 6.1.0 x86_64", like Redis's `os` field.
fn os_name() -> String {
    // SAFETY: a zeroed utsname is valid; uname fills it with NUL-terminated strings.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "Linux".into();
        }
        let s = |f: &[libc::c_char]| std::ffi::CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned();
        format!("{} {} {}", s(&u.sysname), s(&u.release), s(&u.machine))
    }
}

/// A stable replication id derived from the run id (Darter has no replication).
fn replid(run_id: &str) -> String {
    run_id.chars().rev().collect()
}

fn render(sections: &[&str], shards: &[ShardInfo], g: &Arc<Globals>, cfg: &RuntimeConfig) -> String {
    let get = |name: &str| cfg.values[crate::cmd::config::index(name)].clone();
    let nconns: usize = shards.iter().map(|s| s.nconns).sum();
    let sum = |f: fn(&ThreadStats) -> u64| shards.iter().map(|s| f(&s.stats)).sum::<u64>();
    let ncmds = table().len();
    let mut cmdstats = vec![(0u64, 0u64, 0u64, 0u64); ncmds];
    for s in shards {
        for (i, st) in s.stats.cmd.iter().enumerate().take(ncmds) {
            cmdstats[i].0 += st.calls;
            cmdstats[i].1 += st.usec;
            cmdstats[i].2 += st.rejected;
            cmdstats[i].3 += st.failed;
        }
    }
    let now_us = unix_us();
    let uptime = g.started.elapsed().as_secs();
    let mut out = String::new();
    for (n, section) in sections.iter().enumerate() {
        if n > 0 {
            out.push_str("\r\n");
        }
        let mut lines: Vec<String> = Vec::new();
        let mut kv = |k: &str, v: String| lines.push(format!("{k}:{v}"));
        let title = match *section {
            "server" => {
                kv("redis_version", super::REDIS_VERSION.into());
                kv("darter_version", env!("CARGO_PKG_VERSION").into());
                kv("redis_git_sha1", "00000000".into());
                kv("redis_git_dirty", "0".into());
                kv("redis_build_id", "0".into());
                kv("redis_mode", "standalone".into());
                kv("os", os_name());
                kv("arch_bits", (usize::BITS).to_string());
                kv("monotonic_clock", "POSIX clock_gettime".into());
                kv("multiplexing_api", "io_uring".into());
                kv("atomicvar_api", "c11-builtin".into());
                kv("gcc_version", "0.0.0".into());
                kv("process_id", std::process::id().to_string());
                kv("process_supervised", "no".into());
                kv("run_id", g.run_id.clone());
                kv("tcp_port", cfg.values[crate::cmd::config::index("port")].clone());
                kv("server_time_usec", now_us.to_string());
                kv("uptime_in_seconds", uptime.to_string());
                kv("uptime_in_days", (uptime / 86400).to_string());
                kv("hz", cfg.hz.to_string());
                kv("configured_hz", cfg.hz.to_string());
                kv("lru_clock", ((now_us / 1_000_000) & ((1 << 24) - 1)).to_string());
                kv("executable", std::env::current_exe().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default());
                kv("config_file", String::new());
                kv("io_threads_active", "0".into());
                kv("thread_count", g.nthreads.to_string());
                "Server"
            }
            "clients" => {
                kv("connected_clients", nconns.to_string());
                kv("cluster_connections", "0".into());
                kv("maxclients", cfg.maxclients.to_string());
                let max_in = shards.iter().map(|s| s.client_peaks.0).max().unwrap_or(0);
                let max_out = shards.iter().map(|s| s.client_peaks.1).max().unwrap_or(0);
                kv("client_recent_max_input_buffer", max_in.to_string());
                kv("client_recent_max_output_buffer", max_out.to_string());
                kv("blocked_clients", "0".into());
                kv("tracking_clients", "0".into());
                kv("clients_in_timeout_table", "0".into());
                "Clients"
            }
            "memory" => {
                // Exact heap bytes in use (crate::alloc), not a walk over the keys.
                let used = crate::alloc::used_memory();
                let peak = crate::alloc::note_peak(used);
                let startup = g.startup_memory.load(Ordering::Relaxed);
                let clients: u64 = shards.iter().map(|s| s.conn_bytes as u64).sum();
                // Rings between threads, created on each pair's first message (after
                // start-up): overhead, not dataset, and not counted against maxmemory.
                let rings = g.ring_bytes.load(Ordering::Relaxed);
                let overhead = startup + rings + clients;
                let dataset = used.saturating_sub(overhead);
                let net = if used > startup { used - startup } else { 1 };
                let rss = rss_bytes();
                let total = total_system_memory();
                let pct = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 * 100.0 / b as f64 };
                let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
                kv("used_memory", used.to_string());
                kv("used_memory_human", human_bytes(used));
                kv("used_memory_rss", rss.to_string());
                kv("used_memory_rss_human", human_bytes(rss));
                kv("used_memory_peak", peak.to_string());
                kv("used_memory_peak_human", human_bytes(peak));
                kv("used_memory_peak_perc", format!("{:.2}%", pct(used, peak)));
                kv("used_memory_overhead", overhead.to_string());
                kv("used_memory_startup", startup.to_string());
                kv("used_memory_dataset", dataset.to_string());
                kv("used_memory_dataset_perc", format!("{:.2}%", pct(dataset, net)));
                kv("allocator_allocated", used.to_string());
                kv("allocator_active", used.to_string());
                kv("allocator_resident", rss.to_string());
                kv("total_system_memory", total.to_string());
                kv("total_system_memory_human", human_bytes(total));
                kv("used_memory_lua", "0".into());
                kv("used_memory_vm_eval", "0".into());
                kv("used_memory_lua_human", "0B".into());
                kv("used_memory_scripts_eval", "0".into());
                kv("number_of_cached_scripts", "0".into());
                kv("number_of_functions", "0".into());
                kv("number_of_libraries", "0".into());
                kv("used_memory_vm_functions", "0".into());
                kv("used_memory_vm_total", "0".into());
                kv("used_memory_vm_total_human", "0B".into());
                kv("used_memory_functions", "0".into());
                kv("used_memory_scripts", "0".into());
                kv("used_memory_scripts_human", "0B".into());
                kv("maxmemory", cfg.maxmemory.to_string());
                kv("maxmemory_human", human_bytes(cfg.maxmemory));
                kv("maxmemory_policy", cfg.maxmemory_policy.into());
                kv("allocator_frag_ratio", "1.00".into());
                kv("allocator_frag_bytes", "0".into());
                kv("allocator_rss_ratio", format!("{:.2}", ratio(rss, used)));
                kv("allocator_rss_bytes", (rss as i64 - used as i64).to_string());
                kv("rss_overhead_ratio", "1.00".into());
                kv("rss_overhead_bytes", "0".into());
                kv("mem_fragmentation_ratio", format!("{:.2}", ratio(rss, used)));
                kv("mem_fragmentation_bytes", (rss as i64 - used as i64).to_string());
                kv("mem_not_counted_for_evict", rings.to_string());
                kv("mem_replication_backlog", "0".into());
                kv("mem_total_replication_buffers", "0".into());
                kv("mem_clients_slaves", "0".into());
                kv("mem_clients_normal", clients.to_string());
                kv("mem_thread_rings", rings.to_string());
                kv("mem_cluster_links", "0".into());
                kv("mem_aof_buffer", "0".into());
                kv("mem_allocator", "libc".into());
                kv("active_defrag_running", "0".into());
                kv("lazyfree_pending_objects", "0".into());
                kv("lazyfreed_objects", "0".into());
                "Memory"
            }
            "persistence" => {
                // Writes since start stand in for Redis's dirty counter (Darter never saves).
                let changes: u64 = table()
                    .commands
                    .iter()
                    .filter(|c| c.flags & WRITE != 0)
                    .map(|c| cmdstats.get(c.index).map(|s| s.0).unwrap_or(0))
                    .sum();
                for (k, v) in [
                    ("loading", "0".to_string()),
                    ("async_loading", "0".into()),
                    ("current_cow_peak", "0".into()),
                    ("current_cow_size", "0".into()),
                    ("current_cow_size_age", "0".into()),
                    ("current_fork_perc", "0.00".into()),
                    ("current_save_keys_processed", "0".into()),
                    ("current_save_keys_total", "0".into()),
                    ("rdb_changes_since_last_save", changes.to_string()),
                    ("rdb_bgsave_in_progress", "0".into()),
                    ("rdb_last_save_time", (g.started_unix_ms / 1000).to_string()),
                    ("rdb_last_bgsave_status", "ok".into()),
                    ("rdb_last_bgsave_time_sec", "-1".into()),
                    ("rdb_current_bgsave_time_sec", "-1".into()),
                    ("rdb_saves", "0".into()),
                    ("rdb_last_cow_size", "0".into()),
                    ("rdb_last_load_keys_expired", "0".into()),
                    ("rdb_last_load_keys_loaded", "0".into()),
                    ("aof_enabled", "0".into()),
                    ("aof_rewrite_in_progress", "0".into()),
                    ("aof_rewrite_scheduled", "0".into()),
                    ("aof_last_rewrite_time_sec", "-1".into()),
                    ("aof_current_rewrite_time_sec", "-1".into()),
                    ("aof_last_bgrewrite_status", "ok".into()),
                    ("aof_rewrites", "0".into()),
                    ("aof_rewrites_consecutive_failures", "0".into()),
                    ("aof_last_write_status", "ok".into()),
                    ("aof_last_cow_size", "0".into()),
                    ("module_fork_in_progress", "0".into()),
                    ("module_fork_last_cow_size", "0".into()),
                ] {
                    kv(k, v);
                }
                "Persistence"
            }
            "stats" => {
                let expired: u64 = shards.iter().map(|s| s.expired).sum();
                let hits: u64 = shards.iter().map(|s| s.hits).sum();
                let misses: u64 = shards.iter().map(|s| s.misses).sum();
                for (k, v) in [
                    ("total_connections_received", sum(|s| s.connections_received).to_string()),
                    ("total_commands_processed", sum(|s| s.commands_processed).to_string()),
                    ("instantaneous_ops_per_sec", "0".into()),
                    ("total_net_input_bytes", sum(|s| s.net_input_bytes).to_string()),
                    ("total_net_output_bytes", sum(|s| s.net_output_bytes).to_string()),
                    ("total_net_repl_input_bytes", "0".into()),
                    ("total_net_repl_output_bytes", "0".into()),
                    ("instantaneous_input_kbps", "0.00".into()),
                    ("instantaneous_output_kbps", "0.00".into()),
                    ("instantaneous_input_repl_kbps", "0.00".into()),
                    ("instantaneous_output_repl_kbps", "0.00".into()),
                    ("rejected_connections", sum(|s| s.rejected_connections).to_string()),
                    ("sync_full", "0".into()),
                    ("sync_partial_ok", "0".into()),
                    ("sync_partial_err", "0".into()),
                    ("expired_keys", expired.to_string()),
                    ("expired_stale_perc", "0.00".into()),
                    ("expired_time_cap_reached_count", "0".into()),
                    ("expire_cycle_cpu_milliseconds", "0".into()),
                    ("evicted_keys", sum(|s| s.evicted_keys).to_string()),
                    ("evicted_clients", "0".into()),
                    ("total_eviction_exceeded_time", "0".into()),
                    ("current_eviction_exceeded_time", "0".into()),
                    ("keyspace_hits", hits.to_string()),
                    ("keyspace_misses", misses.to_string()),
                    ("pubsub_channels", "0".into()),
                    ("pubsub_patterns", "0".into()),
                    ("pubsubshard_channels", "0".into()),
                    ("latest_fork_usec", "0".into()),
                    ("total_forks", "0".into()),
                    ("migrate_cached_sockets", "0".into()),
                    ("slave_expires_tracked_keys", "0".into()),
                    ("active_defrag_hits", "0".into()),
                    ("active_defrag_misses", "0".into()),
                    ("active_defrag_key_hits", "0".into()),
                    ("active_defrag_key_misses", "0".into()),
                    ("total_active_defrag_time", "0".into()),
                    ("current_active_defrag_time", "0".into()),
                    ("tracking_total_keys", "0".into()),
                    ("tracking_total_items", "0".into()),
                    ("tracking_total_prefixes", "0".into()),
                    ("unexpected_error_replies", "0".into()),
                    ("total_error_replies", "0".into()),
                    ("dump_payload_sanitizations", "0".into()),
                    ("total_reads_processed", "0".into()),
                    ("total_writes_processed", "0".into()),
                    ("io_threaded_reads_processed", "0".into()),
                    ("io_threaded_writes_processed", "0".into()),
                    ("reply_buffer_shrinks", "0".into()),
                    ("reply_buffer_expands", "0".into()),
                    // Darter's own: multi-shard transactions a shard refused to schedule
                    // (a higher global id was already queued there); each was cancelled
                    // where accepted and retried with a fresh id (DESIGN, Transactions).
                    ("tx_schedule_refusals", sum(|s| s.tx_schedule_refusals).to_string()),
                ] {
                    kv(k, v);
                }
                "Stats"
            }
            "replication" => {
                for (k, v) in [
                    ("role", "master".to_string()),
                    ("connected_slaves", "0".into()),
                    ("master_failover_state", "no-failover".into()),
                    ("master_replid", replid(&g.run_id)),
                    ("master_replid2", "0".repeat(40)),
                    ("master_repl_offset", "0".into()),
                    ("second_repl_offset", "-1".into()),
                    ("repl_backlog_active", "0".into()),
                    ("repl_backlog_size", get("repl-backlog-size")),
                    ("repl_backlog_first_byte_offset", "0".into()),
                    ("repl_backlog_histlen", "0".into()),
                ] {
                    kv(k, v);
                }
                "Replication"
            }
            "cpu" => {
                let (sys, user) = cpu_times(libc::RUSAGE_SELF);
                let (csys, cuser) = cpu_times(libc::RUSAGE_CHILDREN);
                let (tsys, tuser) = cpu_times(libc::RUSAGE_THREAD);
                kv("used_cpu_sys", sys);
                kv("used_cpu_user", user);
                kv("used_cpu_sys_children", csys);
                kv("used_cpu_user_children", cuser);
                kv("used_cpu_sys_main_thread", tsys);
                kv("used_cpu_user_main_thread", tuser);
                "CPU"
            }
            "modules" => "Modules",
            "commandstats" => {
                for cmd in &table().commands {
                    let (calls, usec, rejected, failed) = cmdstats[cmd.index];
                    if calls == 0 && rejected == 0 && failed == 0 {
                        continue;
                    }
                    let per = if calls == 0 { 0.0 } else { usec as f64 / calls as f64 };
                    kv(
                        &format!("cmdstat_{}", cmd.name),
                        format!(
                            "calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}"
                        ),
                    );
                }
                "Commandstats"
            }
            "errorstats" => "Errorstats",
            "latencystats" => "Latencystats",
            "cluster" => {
                kv("cluster_enabled", "0".into());
                "Cluster"
            }
            _ => {
                let ndb = shards.first().map(|s| s.dbs.len()).unwrap_or(0);
                for db in 0..ndb {
                    let keys: usize = shards.iter().map(|s| s.dbs[db].0).sum();
                    let expires: usize = shards.iter().map(|s| s.dbs[db].1).sum();
                    if keys > 0 {
                        kv(&format!("db{db}"), format!("keys={keys},expires={expires},avg_ttl=0"));
                    }
                }
                "Keyspace"
            }
        };
        let _ = write!(out, "# {title}\r\n");
        for l in lines {
            out.push_str(&l);
            out.push_str("\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Section selection follows Redis: defaults, all/everything, names in fixed order.
    #[test]
    fn section_selection() {
        assert_eq!(wanted(&[]), DEFAULT.to_vec());
        assert_eq!(wanted(&[b"KEYSPACE", b"server"]), vec!["server", "keyspace"]);
        assert_eq!(wanted(&[b"everything"]), SECTIONS.to_vec());
        assert!(wanted(&[b"nosuch"]).is_empty());
        assert_eq!(wanted(&[b"default", b"commandstats"]).len(), DEFAULT.len() + 1);
    }

    // Sizes print like Redis's bytesToHuman.
    #[test]
    fn human() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1024), "1.00K");
        assert_eq!(human_bytes(1388152), "1.32M");
    }
}
