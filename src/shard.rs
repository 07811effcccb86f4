//! Thread-local state of one shard thread, and the read-only state all threads share.
//!
//! ```text
//!   Globals (Arc, read-only after start + atomics)      Shard (one per thread, !Sync)
//!   ├── config, thread count                             ├── dbs[dbnum]: Db
//!   ├── txid counter (multi-shard tx ids)                │   (connections: runtime's Conns)
//!   ├── ring fds + "notified" flags (wake-ups)           ├── stats, per-command stats
//!   ├── client id counter, start time                    ├── runtime config (CONFIG SET)
//!   └── connected clients (maxclients), shutdown flags   └── listeners to swap in
//! ```
//!
//! Everything in a [`Shard`] is touched only by its own thread. Work for another shard
//! travels as a [`crate::tx::Job`] through the SPSC rings and runs on the owner.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::store::{Db, Dbs};

/// An `AtomicBool` alone on its cache line.
#[repr(align(64))]
#[derive(Default)]
pub struct PaddedFlag(pub AtomicBool);

/// State shared by all threads. Only atomics change after start-up.
pub struct Globals {
    pub cfg: Config,
    pub nthreads: usize,
    /// Next global transaction id for multi-shard transactions.
    pub next_txid: AtomicU64,
    /// Next client id (CLIENT ID).
    pub next_client_id: AtomicU64,
    /// Each thread's io_uring fd, the target of MSG_RING wake-ups.
    pub ring_fds: Vec<i32>,
    /// Set by a producer that woke thread i; cleared by thread i before it drains.
    pub notified: Vec<PaddedFlag>,
    pub started: Instant,
    pub started_unix_ms: i64,
    pub shutdown: AtomicBool,
    pub run_id: String,
    /// Shard threads that have finished setting up; the last one records
    /// `startup_memory`.
    pub threads_ready: AtomicUsize,
    /// used_memory once every shard thread was set up (INFO used_memory_startup).
    pub startup_memory: AtomicU64,
    /// Connected clients over all threads: incremented at accept (and given back at
    /// once if that passes maxclients), decremented when a slot is freed. Makes
    /// maxclients exact across threads.
    pub clients: AtomicUsize,
    /// Threads that finished draining after a shutdown request (see
    /// `runtime::Worker::drain_step`); all exit once it reaches `nthreads`.
    pub threads_drained: AtomicUsize,
    /// Bytes of the cross-thread rings created so far (`runtime::mesh::Mesh`, created on a
    /// pair's first message): messaging overhead, not counted against maxmemory.
    pub ring_bytes: AtomicU64,
}

impl Globals {
    pub fn new(cfg: Config, ring_fds: Vec<i32>) -> Globals {
        let nthreads = ring_fds.len();
        let started_unix_ms = unix_ms();
        let run_id = {
            let mut x = started_unix_ms as u64 ^ ((std::process::id() as u64) << 32) ^ 0x9e37_79b9_7f4a_7c15;
            let mut s = String::with_capacity(40);
            for _ in 0..40 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(char::from_digit((x % 16) as u32, 16).expect("digit < 16"));
            }
            s
        };
        Globals {
            cfg,
            nthreads,
            next_txid: AtomicU64::new(1),
            next_client_id: AtomicU64::new(1),
            notified: (0..nthreads).map(|_| PaddedFlag::default()).collect(),
            ring_fds,
            started: Instant::now(),
            started_unix_ms,
            shutdown: AtomicBool::new(false),
            run_id,
            threads_ready: AtomicUsize::new(0),
            startup_memory: AtomicU64::new(0),
            clients: AtomicUsize::new(0),
            threads_drained: AtomicUsize::new(0),
            ring_bytes: AtomicU64::new(0),
        }
    }

    pub fn new_txid(&self) -> u64 {
        self.next_txid.fetch_add(1, Ordering::Relaxed)
    }
}

/// Wall-clock time in unix milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Wall-clock time in unix microseconds.
pub fn unix_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Per-command counters for INFO commandstats.
#[derive(Default, Clone, Copy, Debug)]
pub struct CmdStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
}

/// Counters a thread keeps; INFO sums them over all threads.
#[derive(Default, Clone, Debug)]
pub struct ThreadStats {
    pub connections_received: u64,
    pub commands_processed: u64,
    pub rejected_connections: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub expired_keys_active: u64,
    pub evicted_keys: u64,
    pub tx_schedule_refusals: u64,
    pub cmd: Vec<CmdStat>,
}

/// Values CONFIG SET can change. Every thread keeps its own copy; CONFIG SET updates all
/// (see `cmd::config`).
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Every parameter's value as CONFIG GET shows it, indexed like `cmd::config::PARAMS`.
    pub values: Vec<String>,
    /// The CONFIG SET sequence number that last wrote each value.
    pub seq: Vec<u64>,
    pub maxmemory: u64,
    pub requirepass: String,
    pub keys_output_limit: usize,
    /// maxmemory-policy, e.g. "noeviction", "allkeys-lru".
    pub maxmemory_policy: &'static str,
    pub maxclients: usize,
    pub cache_mode: bool,
    /// Configured hz (1..=500).
    pub hz: u32,
    /// notify-keyspace-events as `cmd::config::NOTIFY_*` flags.
    pub notify_keyspace_events: u32,
    /// Background expiry on (DEBUG SET-ACTIVE-EXPIRE).
    pub active_expire: bool,
    /// enable-debug-command: 0 no, 1 yes, 2 local (loopback clients only).
    pub debug_command: u8,
    /// protected-mode: without requirepass, non-loopback clients are refused.
    pub protected_mode: bool,
}

/// The state one shard thread owns.
pub struct Shard {
    pub id: usize,
    pub nshards: usize,
    /// The dbs: every write to them goes through a `Db` method and fires the db's
    /// write hooks (`store::Dbs`, `store::WriteHooks`).
    pub dbs: Dbs,
    pub stats: ThreadStats,
    pub cfg: RuntimeConfig,
    pub g: Arc<Globals>,
    /// This thread's listening sockets, one per bind address and protocol (multishot
    /// accepts); an accept's `user_data` carries its index here.
    pub listeners: Vec<crate::proto::Listener>,
    /// Generation of `listeners`, carried in their accepts' `user_data`: bumped when
    /// `CONFIG SET port|bind` or shutdown replaces or closes them.
    pub listen_gen: u32,
    /// CONFIG SET sequence number of the installed listeners (0: from start-up).
    pub listen_seq: u64,
    /// New listeners were installed: the loop must arm their accepts.
    pub arm_accepts: bool,
    /// The other threads' allocation counters summed at the last
    /// [`Shard::refresh_memory`] (every tick): with this thread's own counter, read
    /// live, the estimate of used_memory that the maxmemory check starts from.
    mem_others: i64,
    /// The db cache-mode eviction starts from next.
    evict_db: usize,
    /// Cache mode, from the last tick: tables may grow / inserts must evict.
    cache_grow: bool,
    cache_over: bool,
    rng: u64,
}

/// Cache mode: tables stop growing once used memory is over this share of maxmemory
/// (per mille; inserts into full segments then evict). Below 1000 because RSS is
/// used memory plus the allocator's overhead and the process's fixed memory: with
/// 92 %, RSS stayed within 1.1 × maxmemory in `perf/hitrate.sh` (64 MiB, churning
/// 64-byte values). (An RSS-driven share was tried: RSS hardly falls after evictions
/// — freed blocks stay in partly used pages — so it kept lowering the share.)
pub const CACHE_GROW_LIMIT: i128 = 920;
/// Eviction (background, and before each insert) starts this far (per mille of
/// maxmemory) over the share...
pub const CACHE_EVICT_START: i128 = 30;
/// ...and the background step stops under the share plus this.
pub const CACHE_EVICT_STOP: i128 = 20;

impl Shard {
    pub fn new(id: usize, g: Arc<Globals>, cfg: RuntimeConfig, ncommands: usize) -> Shard {
        let dbnum = g.cfg.dbnum as usize;
        Shard {
            id,
            nshards: g.nthreads,
            dbs: Dbs::new(dbnum),
            stats: ThreadStats { cmd: vec![CmdStat::default(); ncommands], ..Default::default() },
            cfg,
            g,
            listeners: Vec::new(),
            listen_gen: 0,
            listen_seq: 0,
            arm_accepts: false,
            mem_others: crate::alloc::net_allocated() - crate::alloc::this_thread(),
            evict_db: 0,
            cache_grow: true,
            cache_over: false,
            rng: 0x2545_f491_4f6c_dd1d ^ (id as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        }
    }

    /// Sums every thread's allocation counter (exact used_memory, see `crate::alloc`),
    /// raises the recorded peak, remembers the other threads' part for
    /// [`Shard::over_maxmemory`]'s estimate, and returns the memory that counts against
    /// maxmemory: used_memory minus the cross-thread rings (`Globals::ring_bytes`).
    /// Runs on every tick (10 ms) and when the estimate says "over".
    pub fn refresh_memory(&mut self) -> u64 {
        let total = crate::alloc::net_allocated();
        crate::alloc::note_peak(total.max(0) as u64);
        // The rings between threads are not the dataset (Redis has no such overhead;
        // like its replication buffers they stay out of the limit): with many threads
        // they would otherwise eat the budget of the data.
        let rings = self.g.ring_bytes.load(Ordering::Relaxed) as i64;
        self.mem_others = total - crate::alloc::this_thread() - rings;
        (total - rings).max(0) as u64
    }

    /// Whether used_memory may be over maxmemory (> 0): this thread's own counter now
    /// plus the others' as of the last refresh. Reads no other thread's cache line.
    /// Lower than the truth only by what other threads allocated in the last tick.
    /// In cache mode writes are never refused (the keyspace evicts instead): false.
    #[inline]
    pub fn maybe_over_maxmemory(&self) -> bool {
        let max = self.cfg.maxmemory;
        max > 0 && !self.cfg.cache_mode && self.mem_estimate() as i128 > max as i128
    }

    /// used_memory as this thread sees it without reading other threads' counters.
    #[inline(always)]
    fn mem_estimate(&self) -> i64 {
        self.mem_others + crate::alloc::this_thread()
    }

    /// Cache mode: whether the tables may still grow (split segments), i.e. used memory
    /// is below [`CACHE_GROW_LIMIT`] of maxmemory: at the last tick, and by this
    /// thread's live estimate (a fast writer can double a table between two ticks).
    /// Past it, inserts into full segments evict instead. True without a maxmemory.
    #[inline]
    pub fn cache_may_grow(&self) -> bool {
        let max = self.cfg.maxmemory as i128;
        self.cache_grow && (max == 0 || (self.mem_estimate() as i128) * 1000 <= max * CACHE_GROW_LIMIT)
    }

    /// Cache mode: whether used memory was over the eviction threshold at the last
    /// tick (inserts then evict first, see `Db::set_cache_mode`).
    #[inline]
    pub fn cache_over(&self) -> bool {
        self.cache_over
    }

    /// Cache mode's per-tick step. Decides from the exact used memory (all threads'
    /// counters summed, as `refresh_memory` does) whether tables may grow and whether
    /// inserts must evict, for every shard alike: a thread's own counter drifts with
    /// memory freed on other threads (the connection thread allocates what the key's
    /// shard frees), and deciding from it let one shard evict nearly all its keys while
    /// the other kept growing. Then, while used memory is over [`CACHE_EVICT_START`] of
    /// the share, evicts this shard's part of the excess (1/nshards of it, counted by
    /// its own counter, which only this thread's frees move during the loop) or until
    /// `budget` is spent. Returns how many keys went.
    pub fn cache_evict(&mut self, budget: std::time::Duration) -> usize {
        let max = self.cfg.maxmemory as i128;
        if !self.cfg.cache_mode || max == 0 {
            self.cache_grow = true;
            self.cache_over = false;
            return 0;
        }
        let used = self.refresh_memory() as i128;
        self.cache_grow = used * 1000 <= max * CACHE_GROW_LIMIT;
        self.cache_over = used * 1000 > max * (CACHE_GROW_LIMIT + CACHE_EVICT_START);
        let (grow, over) = (self.cache_grow, self.cache_over);
        for d in &mut self.dbs {
            d.set_cache_mode(true, grow, over);
        }
        if !over {
            return 0;
        }
        let goal = (used - max * (CACHE_GROW_LIMIT + CACHE_EVICT_STOP) / 1000) / self.nshards as i128;
        let mine = crate::alloc::this_thread() as i128;
        let start = std::time::Instant::now();
        let mut evicted = 0;
        let ndb = self.dbs.len();
        while mine - (crate::alloc::this_thread() as i128) < goal && start.elapsed() < budget {
            let mut any = 0;
            for i in 0..ndb {
                let db = (self.evict_db + i) % ndb;
                any += self.dbs[db].evict_some(64);
            }
            self.evict_db = (self.evict_db + 1) % ndb;
            evicted += any;
            if any == 0 {
                break; // nothing left to evict in this shard
            }
        }
        evicted
    }

    /// Whether used_memory is over maxmemory (> 0), for the DENYOOM check: the estimate,
    /// confirmed by an exact sum when it says "over" (so a FLUSHALL on other threads
    /// lets writes through at once).
    pub fn over_maxmemory(&mut self) -> bool {
        self.maybe_over_maxmemory() && self.refresh_memory() > self.cfg.maxmemory
    }

    /// A cheap pseudo-random number (xorshift), for sampling.
    pub fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// What a shard-side command handler works on: the shard, the selected db, the
/// command's clock reading (one per command, as Redis does), and whether the client
/// asked not to touch keys (CLIENT NO-TOUCH).
pub struct ShardCtx<'a> {
    pub shard: &'a mut Shard,
    pub db: usize,
    pub now_ms: i64,
    pub no_touch: bool,
}

impl ShardCtx<'_> {
    /// The selected db, whose lookups touch the keys they find (their access time,
    /// OBJECT IDLETIME) unless the client is in CLIENT NO-TOUCH mode; in cache mode,
    /// told first whether its table may grow.
    #[inline]
    pub fn db(&mut self) -> &mut Db {
        let touch = !self.no_touch;
        self.db_touching(touch)
    }

    /// The selected db, whose lookups leave access times alone: the commands Redis
    /// runs with `LOOKUP_NOTOUCH` (TTL, TYPE, EXISTS, OBJECT, MEMORY USAGE...).
    #[inline]
    pub fn db_peek(&mut self) -> &mut Db {
        self.db_touching(false)
    }

    /// The selected db, touching even in CLIENT NO-TOUCH mode (TOUCH itself, as in
    /// Redis 7.2).
    #[inline]
    pub fn db_touch(&mut self) -> &mut Db {
        self.db_touching(true)
    }

    #[inline(always)]
    fn db_touching(&mut self, touch: bool) -> &mut Db {
        if self.shard.cfg.cache_mode {
            let (may_grow, over) = (self.shard.cache_may_grow(), self.shard.cache_over());
            self.shard.dbs[self.db].set_cache_mode(true, may_grow, over);
        }
        let db = &mut self.shard.dbs[self.db];
        db.set_access(self.now_ms, touch);
        db
    }
}

/// The shard that owns `key`: a hash of the key, or of its `{hashtag}` when it has a
/// non-empty one (Redis Cluster's rule), modulo the number of shards.
pub fn shard_of(key: &[u8], nshards: usize) -> usize {
    if nshards == 1 {
        return 0;
    }
    let tagged = hashtag(key);
    (hash_bytes(tagged) % nshards as u64) as usize
}

/// The part of a key that decides its shard: the text between the first `{` and the
/// next `}` if non-empty, else the whole key.
pub fn hashtag(key: &[u8]) -> &[u8] {
    if let Some(open) = memchr::memchr(b'{', key)
        && let Some(len) = memchr::memchr(b'}', &key[open + 1..])
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// A fast 64-bit hash of bytes (FNV-1a folded with a final avalanche), used only to
/// pick a shard. Tables use their own hash so shard bits don't bias bucket choice.
pub fn hash_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("chunk of 8"));
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
    for &x in chunks.remainder() {
        h = (h ^ x as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= b.len() as u64;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Keys with the same non-empty {tag} land on the same shard; `{}` is not a tag.
    #[test]
    fn hashtags() {
        assert_eq!(hashtag(b"user:{42}:name"), b"42");
        assert_eq!(hashtag(b"{}x"), b"{}x");
        assert_eq!(hashtag(b"a{b"), b"a{b");
        assert_eq!(hashtag(b"{a}{b}"), b"a");
        for n in 2..8 {
            assert_eq!(shard_of(b"{t}1", n), shard_of(b"x{t}2", n));
        }
    }

    // Keys spread over shards roughly evenly (worked example for DESIGN.md: 4 shards).
    #[test]
    fn spread() {
        let mut counts = [0usize; 4];
        for i in 0..40_000 {
            counts[shard_of(format!("key:{i}").as_bytes(), 4)] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }
}
