//! Access times of keys (OBJECT IDLETIME) in 8 bits per key, at no memory cost.
//!
//! Every key object holds an 8-bit **access stamp** in spare bits
//! (`CompactObj::access`; see `crate::compact`). Redis keeps 24 bits of seconds per
//! object; 8 bits cannot both count seconds and reach months, so a stamp has two
//! ranges, and a background walk (`store::Db::age_step`, one pass over a db's keys
//! every [`AGE_PASS_MS`]) moves keys from the first to the second:
//!
//! ```text
//!   stamp 0..128    RECENT: the unix second of the last touch, mod 128.
//!                   idle = (now - stamp) mod 128: exact to the second.
//!   stamp 128..256  AGED: generation g = stamp - 128 of the db's Generations table,
//!                   idle = now - time_ms[g] (the mean access time of its keys).
//!
//!   touch (GET, SET, TOUCH, ...) ──▶ RECENT stamp of now
//!   walk visit, RECENT and idle ≥ 64 s ──▶ AGED: this pass's generation
//!   walk visit, AGED in a retired generation ──▶ the generation it was merged into
//!
//!   Generations (per db, 128 ids, allocated on the first walk step: ~6.3 KB)
//!   oldest ─────────────────────────────────────────────────────────▶ newest
//!   [g17: t=-40 d][g3: t=-31 d] ... [g90: t=-9 min][g12: t=-2 min][g40: t=-70 s]
//!   A pass opens one generation for the keys it converts; when fewer than 4 ids are
//!   free, the two neighbours with the smallest gap relative to their age merge
//!   (key-weighted mean time) and the younger id retires: the walk rewrites its keys
//!   during the next pass, after which the id is free again.
//! ```
//!
//! Precision: a recent stamp is exact while idle < 128 s; the walk sees every key at
//! least once per pass (16 s) and converts it at 64..80 s, so the 128 s wrap is never
//! reached unless the thread stalls for a minute (then such a key reads younger by a
//! multiple of 128 s). An aged key's idle time is its generation's mean access time:
//! its error is at most the generation's span, which the merges keep to a roughly
//! constant share of the age (~120 generations spread geometrically over the oldest
//! key's age: ~6% steps when it is a day, ~11% for a year). Deterministic: two keys
//! untouched since the same second read the same idle time.
//!
//! Only the owning shard thread touches a db's generations. Goals: OBJECT IDLETIME
//! and DEBUG OBJECT's lru_seconds_idle that tell the truth, at no memory per key and
//! ~1 µs of walk per 1,000 keys per pass. Non-goal: an LRU eviction ranking (cache
//! mode ranks by position in the bucket, `store::Db::set_cache_mode`).

/// Stamps from here on are aged (a generation id plus this).
pub const AGED: u8 = 128;

/// Idle time past which the walk turns a recent stamp into an aged one.
pub const AGE_FROM_S: u64 = 64;

/// The walk visits every key once per this many milliseconds.
pub const AGE_PASS_MS: i64 = 16_000;

/// Most keys one walk step visits (a step after a long stall stays short).
pub const AGE_STEP_MAX_KEYS: usize = 4096;

/// Generation ids (aged stamps 128..256).
const GENS: usize = (u8::MAX - AGED) as usize + 1;

/// Free ids kept in reserve at the start of a pass (merging retires an id only for two
/// passes, so a few spare ones mean a pass never lacks one).
const SPARE_GENS: usize = 4;

/// The recent stamp of a touch at `now_ms`: the unix second mod 128.
#[inline(always)]
pub fn stamp(now_ms: i64) -> u8 {
    // Unsigned: a multiply and a shift (clock times are positive; a negative one only
    // gives a wrong stamp).
    ((now_ms as u64 / 1000) & (AGED as u64 - 1)) as u8
}

/// Idle seconds of a recent stamp at `now_ms` (exact while under 128).
#[inline]
pub fn recent_idle_s(stamp_now: u8, stamp: u8) -> u64 {
    (stamp_now.wrapping_sub(stamp) & (AGED - 1)) as u64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    Live,
    /// Merged into `into` at the start of pass `since_pass`; its keys are rewritten
    /// during that pass, and the id is free from pass `since_pass + 2` on.
    Retiring {
        into: u8,
        since_pass: u64,
    },
}

/// The aged generations of one db (see the module doc).
pub struct Generations {
    /// The access time each generation stands for (unix ms): the mean of its keys'.
    time_ms: [i64; GENS],
    /// The earliest and latest access time of its keys: its span, which merges keep
    /// small relative to its age.
    lo_ms: [i64; GENS],
    hi_ms: [i64; GENS],
    /// Keys converted into each generation: the weights of merges (a touch does not
    /// take a key out; the weights are only approximate, like the times).
    keys: [u64; GENS],
    state: [State; GENS],
    /// Live generations, oldest first.
    live: Vec<u8>,
    /// The generation this pass converts keys into, once it has one.
    current: Option<u8>,
    /// Passes begun.
    pass: u64,
}

impl Generations {
    pub fn new() -> Box<Generations> {
        Box::new(Generations {
            time_ms: [0; GENS],
            lo_ms: [0; GENS],
            hi_ms: [0; GENS],
            keys: [0; GENS],
            state: [State::Free; GENS],
            live: Vec::with_capacity(GENS),
            current: None,
            pass: 0,
        })
    }

    /// Idle seconds an aged stamp stands for at `now_ms`.
    pub fn aged_idle_s(&self, stamp: u8, now_ms: i64) -> u64 {
        debug_assert!(stamp >= AGED);
        let g = (stamp - AGED) as usize;
        ((now_ms - self.time_ms[g]).max(0) / 1000) as u64
    }

    /// The start of a walk pass: frees the ids retired two passes ago, then merges
    /// neighbours until [`SPARE_GENS`] ids are free or retiring.
    pub fn begin_pass(&mut self, now_ms: i64) {
        self.pass += 1;
        self.current = None;
        for s in &mut self.state {
            if let State::Retiring { since_pass, .. } = *s
                && self.pass >= since_pass + 2
            {
                *s = State::Free;
            }
        }
        // Retiring ids count as spare: each is free two passes after its merge.
        while GENS - self.live.len() < SPARE_GENS && self.merge_one(now_ms) {}
    }

    /// The stamp the walk should give a key that has `stamp`, or None to leave it:
    /// a recent stamp idle for [`AGE_FROM_S`] or more joins this pass's generation; a
    /// stamp of a retired generation moves to the one it was merged into.
    #[inline]
    pub fn visit(&mut self, stamp: u8, stamp_now: u8, now_ms: i64) -> Option<u8> {
        if stamp < AGED {
            let idle_s = recent_idle_s(stamp_now, stamp);
            if idle_s < AGE_FROM_S {
                return None;
            }
            // The touch happened within second `now_s - idle_s`: take its middle.
            let access_ms = (now_ms.div_euclid(1000) - idle_s as i64) * 1000 + 500;
            let g = self.current_gen();
            self.add(g, access_ms);
            return Some(AGED + g);
        }
        match self.state[(stamp - AGED) as usize] {
            State::Retiring { .. } => Some(AGED + self.resolve(stamp - AGED)),
            _ => None,
        }
    }

    /// This pass's generation, opened on first use (in the newest live one if no id is
    /// free, which the spare ids make a corner case).
    fn current_gen(&mut self) -> u8 {
        if let Some(g) = self.current {
            return g;
        }
        let g = match self.state.iter().position(|&s| s == State::Free) {
            Some(g) => {
                self.state[g] = State::Live;
                self.time_ms[g] = 0;
                self.keys[g] = 0;
                self.live.push(g as u8);
                g as u8
            }
            None => *self.live.last().expect("no free generation id, so some are live"),
        };
        self.current = Some(g);
        g
    }

    /// Adds a key last touched at `access_ms` to generation `g` (running mean).
    fn add(&mut self, g: u8, access_ms: i64) {
        let g = g as usize;
        let k = self.keys[g];
        if k == 0 {
            (self.time_ms[g], self.lo_ms[g], self.hi_ms[g]) = (access_ms, access_ms, access_ms);
        } else {
            self.time_ms[g] += (access_ms - self.time_ms[g]) / (k as i64 + 1);
            self.lo_ms[g] = self.lo_ms[g].min(access_ms);
            self.hi_ms[g] = self.hi_ms[g].max(access_ms);
        }
        self.keys[g] = k + 1;
    }

    /// Merges the two neighbouring live generations whose merged span is the smallest
    /// share of the age of its latest access into the older one. False if fewer than
    /// two are live.
    fn merge_one(&mut self, now_ms: i64) -> bool {
        if self.live.len() < 2 {
            return false;
        }
        let mut best = (f64::INFINITY, 0);
        for i in 0..self.live.len() - 1 {
            let (a, b) = (self.live[i] as usize, self.live[i + 1] as usize);
            let (lo, hi) = (self.lo_ms[a].min(self.lo_ms[b]), self.hi_ms[a].max(self.hi_ms[b]));
            let share = (hi - lo) as f64 / (now_ms - hi).max(1) as f64;
            if share < best.0 {
                best = (share, i);
            }
        }
        let i = best.1;
        let (a, b) = (self.live[i] as usize, self.live[i + 1] as usize);
        let (ka, kb) = (self.keys[a].max(1) as i128, self.keys[b].max(1) as i128);
        let (ta, tb) = (self.time_ms[a] as i128, self.time_ms[b] as i128);
        self.time_ms[a] = (ta + (tb - ta) * kb / (ka + kb)) as i64;
        self.keys[a] = self.keys[a].saturating_add(self.keys[b]);
        self.lo_ms[a] = self.lo_ms[a].min(self.lo_ms[b]);
        self.hi_ms[a] = self.hi_ms[a].max(self.hi_ms[b]);
        self.state[b] = State::Retiring { into: a as u8, since_pass: self.pass };
        self.live.remove(i + 1);
        true
    }

    /// The live generation a retired one's keys belong to now (merges can chain).
    fn resolve(&self, mut g: u8) -> u8 {
        for _ in 0..GENS {
            match self.state[g as usize] {
                State::Retiring { into, .. } => g = into,
                _ => return g,
            }
        }
        unreachable!("generation merges form no cycle: each retires into a live one")
    }

    /// Live generation count (tests).
    #[cfg(test)]
    pub fn live_len(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recent stamps: the second mod 128, read back exactly under 128 s.
    #[test]
    fn recent_stamps() {
        let t = 1_700_000_000_000i64;
        let s = stamp(t);
        assert!(s < AGED);
        for idle in [0i64, 1, 63, 64, 127] {
            assert_eq!(recent_idle_s(stamp(t + idle * 1000 + 999), s), idle as u64);
        }
        assert_eq!(recent_idle_s(stamp(t + 128_000), s), 0, "wraps at 128 s");
    }

    // Simulated keys, each touched once at a time spread over the first two days and
    // left alone, walked pass after pass (16 s passes for the two days, then hourly to
    // a year): every key reads its idle time within 12% (+ one pass) throughout, ids
    // never run out, and retired ids come back.
    #[test]
    fn generations_keep_relative_precision() {
        let t0 = 1_700_000_000_000i64;
        let two_days = 2 * 86_400_000i64;
        // (touch time, stamp once touched).
        let mut keys: Vec<(i64, Option<u8>)> = (0..2000i64).map(|i| (t0 + (i * i * 43) % two_days, None)).collect();
        let mut g = Generations::new();
        let mut now = t0;
        let mut passes = 0u64;
        let mut worst_ever = 0.0f64;
        while now < t0 + 365 * 86_400_000 {
            g.begin_pass(now);
            let stamp_now = stamp(now);
            for k in keys.iter_mut() {
                if k.0 > now {
                    continue;
                }
                let st = *k.1.get_or_insert(stamp(k.0)); // touched since the last pass
                if let Some(s) = g.visit(st, stamp_now, now) {
                    k.1 = Some(s);
                }
            }
            passes += 1;
            now += if now < t0 + two_days { AGE_PASS_MS } else { 3_600_000 };
            if passes.is_multiple_of(97) {
                let mut worst = 0.0f64;
                for k in keys.iter().filter(|k| k.0 <= now && k.1.is_some()) {
                    let (true_idle, st) = (((now - k.0) / 1000) as f64, k.1.unwrap());
                    let read = if st < AGED { recent_idle_s(stamp(now), st) } else { g.aged_idle_s(st, now) } as f64;
                    let err = ((read - true_idle).abs() - 17.0).max(0.0);
                    worst = worst.max(err / true_idle.max(1.0));
                }
                assert!(worst < 0.08, "pass {passes}: worst relative error {worst:.3}");
                worst_ever = worst_ever.max(worst);
            }
        }
        eprintln!("worst relative error {worst_ever:.3} over {passes} passes");
        assert!(g.live_len() > GENS - 3 * SPARE_GENS, "ids are reused: {} live", g.live_len());
    }
}
