//! Hashing for [`DashTable`](super::DashTable): the [`DashHash`] trait, a
//! fast seeded 64-bit hash for byte slices ([`hash_bytes`]) and a cheaper
//! one for `u64` keys ([`hash_u64`]).
//!
//! The byte hash follows the structure of wyhash (64x64->128 bit
//! "multiply and fold" mixing over 16/48-byte strides); it is not meant to be
//! bit-compatible with any published wyhash version (e.g. 8..=16 bytes are
//! read as two overlapping 8-byte words, not four 4-byte ones). Keys of up
//! to 16 bytes, the common case, hash inline in a few instructions (two
//! loads, two multiplies); longer ones call out of line.
//!
//! The `u64` hash is one folded 64x64->128 multiply whose two factors both
//! depend on the key, `fold((x ^ k) * (x * PU ^ k))` with `k = s ^ P2`
//! (`fold` xors the product's halves, `x * PU` is a wrapping 64-bit
//! multiply by an odd constant, `s` the seed). `PU` is a sign-extended
//! 32-bit constant, so the premultiply is one `imul` with an immediate, and
//! both factors share `k`: a loop of lookups keeps one register for the
//! hash rather than three (with three, LLVM spilled the loop's state on
//! every u64 lookup). Five operations (an `imul` and one 128-bit `mul`, 6
//! uops on x86_64, ~8 cycles of latency) against seven for the byte hash of
//! 8 bytes (two dependent 128-bit `mul`s, 9 uops, ~9 cycles). It is *not* the byte hash of the
//! key's 8 bytes (nothing relies on that). Cheaper single-multiply forms
//! were measured and rejected for quality, not speed: foldhash's `fold((x ^ s) * K)` (what
//! hashbrown uses) maps keys in arithmetic progression (`i << 32`,
//! `i * 4096`) to a lattice, so the top bits that pick Dash's segment and
//! the bucket bits come out uneven (e.g. 15% of 1.65M `i * 4096` keys away
//! from their home bucket against 9.6% for random keys, 40x the chi-square
//! of the top 16 bits for `i << 20`); a product with a rotated copy
//! (`x.rotate_left(32)`) leaves output bits 4.5 points off balance for 16K
//! sequential keys. With the premultiplied factor every tested pattern
//! behaves like random keys, and flipping any input bit flips 32 of the 64
//! output bits on average and nearly every output bit with probability
//! 1/2 +- 0.1 (the tests pin balance, avalanche, the segment/bucket/
//! fingerprint fields and seed sensitivity).
//!
//! The seed is applied by xor, with no per-call mixing: `seed ^ constant`
//! depends only on the table, so a lookup loop computes it once. With
//! random seeds (what [`DashTable::new`](super::DashTable::new) uses) that
//! loses nothing; with fixed seeds two tables' layouts are related (for
//! 16-byte keys, seed `s` hashes key `(a, b)` as seed `t` hashes
//! `(a, b ^ s ^ t)`), which only matters to someone who can pick the seed.
//! It is a non-cryptographic hash: the per-table random seed is what keeps
//! clients from predicting which keys collide.

/// Hash a key for a [`DashTable`](super::DashTable).
///
/// The table passes its seed; implementations must be deterministic for a
/// given `(value, seed)` pair. If `K: Borrow<Q>`, then `K` and `Q` must hash
/// identically (as with `std::hash::Hash`), e.g. `Vec<u8>`, `Box<[u8]>` and
/// `[u8]` all hash through [`hash_bytes`]. The table uses every bit of the
/// result (high bits pick the segment, low bits the bucket, bits 32..40 the
/// fingerprint), so the output must be well mixed.
pub trait DashHash {
    /// 64-bit hash of `self` under `seed`.
    fn dash_hash(&self, seed: u64) -> u64;
}

/// Lookup-key equivalence for [`DashTable`](super::DashTable) (as in
/// hashbrown's `Equivalent`): a table of `K` can be searched with any `Q`
/// that compares with a stored `K` and hashes like it. Every `Q` that `K`
/// borrows as is one; a key type with its own encoding (the server's packed
/// keys) implements it for `[u8]` directly.
pub trait Equivalent<K: ?Sized> {
    /// True if `self` and the stored `key` are the same key.
    fn equivalent(&self, key: &K) -> bool;
}

impl<Q: ?Sized + Eq, K: std::borrow::Borrow<Q> + ?Sized> Equivalent<K> for Q {
    #[inline(always)]
    fn equivalent(&self, key: &K) -> bool {
        self == key.borrow()
    }
}

const P0: u64 = 0x2d35_8dcc_aa6c_78a5;
/// The `u64` hash's premultiplier: odd, and a sign-extended 32-bit value
/// (an `imul` immediate on x86_64).
const PU: u64 = 0xffff_ffff_aa6c_78a5;
const P1: u64 = 0x8bb8_4b93_962e_acc9;
const P2: u64 = 0x4b33_a62e_d433_d4a3;
const P3: u64 = 0x4d5a_2da5_1de1_aa47;

/// 64x64 -> 128 multiply, folded by xor of the halves.
#[inline(always)]
fn mum(a: u64, b: u64) -> u64 {
    let r = (a as u128) * (b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn r8(d: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(d[i..i + 8].try_into().unwrap())
}

#[inline(always)]
fn r4(d: &[u8], i: usize) -> u64 {
    u32::from_le_bytes(d[i..i + 4].try_into().unwrap()) as u64
}

/// Seeded 64-bit hash of a byte slice (wyhash-style, little-endian reads,
/// so results are identical on every platform).
///
/// Keys of up to 16 bytes (most keys: `key:000000012345` is 16) hash
/// inline, branching only on the length; longer ones call out of line.
#[inline(always)]
pub fn hash_bytes(data: &[u8], seed: u64) -> u64 {
    let len = data.len();
    // A constant, not a per-call multiply: `seed ^ P2` is loop-invariant
    // for a table's lookups, and it keeps the multiplier `b ^ seed` of
    // `finish` away from 0 for seed 0 and short (b = 0) keys.
    let seed = seed ^ P2;
    if len > 16 {
        return hash_long(data, seed);
    }
    let (a, b);
    if len >= 8 {
        // Two (possibly overlapping) 8-byte reads cover 8..=16 bytes.
        a = r8(data, 0);
        b = r8(data, len - 8);
    } else if len >= 4 {
        a = (r4(data, 0) << 32) | r4(data, 0);
        b = (r4(data, len - 4) << 32) | r4(data, len - 4);
    } else if len > 0 {
        a = ((data[0] as u64) << 16) | ((data[len >> 1] as u64) << 8) | data[len - 1] as u64;
        b = 0;
    } else {
        a = 0;
        b = 0;
    }
    finish(a, b, seed, len)
}

/// The last mixing step shared by every length.
#[inline(always)]
fn finish(a: u64, b: u64, seed: u64, len: usize) -> u64 {
    let r = ((a ^ P1) as u128) * ((b ^ seed) as u128);
    mum((r as u64) ^ P0 ^ len as u64, ((r >> 64) as u64) ^ P1)
}

/// [`hash_bytes`] of more than 16 bytes (`seed` already mixed).
#[inline(never)]
fn hash_long(data: &[u8], mut seed: u64) -> u64 {
    let len = data.len();
    let mut i = 0;
    let mut rem = len;
    if rem > 48 {
        let (mut s1, mut s2) = (seed, seed);
        while rem > 48 {
            seed = mum(r8(data, i) ^ P1, r8(data, i + 8) ^ seed);
            s1 = mum(r8(data, i + 16) ^ P2, r8(data, i + 24) ^ s1);
            s2 = mum(r8(data, i + 32) ^ P3, r8(data, i + 40) ^ s2);
            i += 48;
            rem -= 48;
        }
        seed ^= s1 ^ s2;
    }
    while rem > 16 {
        seed = mum(r8(data, i) ^ P1, r8(data, i + 8) ^ seed);
        i += 16;
        rem -= 16;
    }
    finish(r8(data, len - 16), r8(data, len - 8), seed, len)
}

/// Seeded hash of a `u64`: one folded 64x64->128 multiply of two
/// key-dependent factors, the second premultiplied by an odd constant (the
/// `hash` module docs say why). All 64 bits are mixed (the table uses the top
/// bits, bits 32..40 and the low 32); it is not [`hash_bytes`] of the key's
/// bytes.
#[inline(always)]
pub fn hash_u64(x: u64, seed: u64) -> u64 {
    mum(x ^ seed ^ P2, x.wrapping_mul(PU) ^ seed ^ P2)
}

impl DashHash for [u8] {
    #[inline]
    fn dash_hash(&self, seed: u64) -> u64 {
        hash_bytes(self, seed)
    }
}

impl<const N: usize> DashHash for [u8; N] {
    #[inline]
    fn dash_hash(&self, seed: u64) -> u64 {
        hash_bytes(self, seed)
    }
}

impl DashHash for Vec<u8> {
    #[inline]
    fn dash_hash(&self, seed: u64) -> u64 {
        hash_bytes(self, seed)
    }
}

impl DashHash for Box<[u8]> {
    #[inline]
    fn dash_hash(&self, seed: u64) -> u64 {
        hash_bytes(self, seed)
    }
}

impl DashHash for str {
    #[inline]
    fn dash_hash(&self, seed: u64) -> u64 {
        hash_bytes(self.as_bytes(), seed)
    }
}

impl DashHash for String {
    #[inline]
    fn dash_hash(&self, seed: u64) -> u64 {
        hash_bytes(self.as_bytes(), seed)
    }
}

impl DashHash for u64 {
    #[inline]
    fn dash_hash(&self, seed: u64) -> u64 {
        hash_u64(*self, seed)
    }
}

impl<T: DashHash + ?Sized> DashHash for &T {
    #[inline]
    fn dash_hash(&self, seed: u64) -> u64 {
        (**self).dash_hash(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splitmix64(i: u64) -> u64 {
        let mut z = i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    type Pattern = (&'static str, fn(u64) -> u64);

    /// Key sets with structure a multiplicative hash can trip on:
    /// sequential, random, power-of-two and decimal strides, high bits.
    fn u64_patterns() -> Vec<Pattern> {
        vec![
            ("i", |i| i),
            ("splitmix(i)", splitmix64),
            ("i << 20", |i| i << 20),
            ("i << 40", |i| i << 40),
            ("i << 31", |i| i << 31),
            ("i * 1000", |i| i.wrapping_mul(1000)),
            ("i * 4096", |i| i * 4096),
            ("-i", |i| 0u64.wrapping_sub(i)),
        ]
    }

    const SEEDS: [u64; 3] = [0, 1, 0x1234_5678_9abc_def1];

    // Pins: every output bit of hash_u64 is set for 50% (+-3%) of the keys
    // of each pattern, whatever the seed.
    #[test]
    fn u64_bit_balance() {
        let n = if cfg!(miri) { 256 } else { 1 << 14 };
        let tol = if cfg!(miri) { 0.2 } else { 0.03 };
        for seed in SEEDS {
            for (name, key) in u64_patterns() {
                let mut counts = [0u32; 64];
                for i in 0..n {
                    let h = hash_u64(key(i), seed);
                    for (b, c) in counts.iter_mut().enumerate() {
                        *c += ((h >> b) & 1) as u32;
                    }
                }
                for (b, &c) in counts.iter().enumerate() {
                    let f = c as f64 / n as f64;
                    assert!((f - 0.5).abs() < tol, "{name} seed {seed}: bit {b}: {f}");
                }
            }
        }
    }

    // Pins: avalanche. Flipping any one input bit flips 32 +- 2 of the 64
    // output bits on average, and each (input bit, output bit) pair flips
    // with probability 1/2 +- 0.1, except a handful of pairs from the top
    // input bits (at most 16, none beyond 1/2 +- 0.3; the worst, input bit
    // 63 -> output bit 0, is ~1/4).
    #[test]
    fn u64_avalanche() {
        let trials = if cfg!(miri) { 16 } else { 2000 };
        let mut x = 0x0123_4567_89ab_cdefu64;
        let mut off = 0;
        for seed in [0, 7] {
            for ib in 0..64 {
                let mut flipped = 0u64;
                let mut per_out = [0u32; 64];
                for _ in 0..trials {
                    x = splitmix64(x);
                    let d = hash_u64(x, seed) ^ hash_u64(x ^ (1 << ib), seed);
                    flipped += d.count_ones() as u64;
                    for (ob, c) in per_out.iter_mut().enumerate() {
                        *c += ((d >> ob) & 1) as u32;
                    }
                }
                let avg = flipped as f64 / trials as f64;
                let tol = if cfg!(miri) { 12.0 } else { 2.0 };
                assert!((avg - 32.0).abs() < tol, "input bit {ib}: {avg} output bits flip");
                if cfg!(miri) {
                    continue;
                }
                for (ob, &c) in per_out.iter().enumerate() {
                    let p = c as f64 / trials as f64;
                    assert!((p - 0.5).abs() < 0.3, "bit {ib} -> bit {ob}: p = {p}");
                    off += usize::from((p - 0.5).abs() > 0.1);
                }
            }
            assert!(off <= 16, "seed {seed}: {off} (input, output) bit pairs off 1/2 by > 0.1");
            off = 0;
        }
    }

    // Pins: the fields the table reads are evenly spread for each pattern:
    // (top 8 bits, home bucket `lo32 * 56 >> 32`) cells, the fingerprint
    // byte (bits 32..40) and the top 12 bits have chi-square per degree of
    // freedom < 1.5 (~1 for a random function; foldhash's multiply by a
    // constant gives ~9 for the top bits of `i * 4096`-style keys).
    #[test]
    fn u64_table_fields_spread() {
        if cfg!(miri) {
            return; // statistics need more keys than Miri runs quickly
        }
        let n = 1u64 << 16;
        let chi = |counts: &[u32]| {
            let e = n as f64 / counts.len() as f64;
            let s: f64 = counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum();
            s / (counts.len() - 1) as f64
        };
        for seed in SEEDS {
            for (name, key) in u64_patterns() {
                let mut cells = vec![0u32; 256 * 56];
                let mut fps = vec![0u32; 256];
                let mut top = vec![0u32; 1 << 12];
                for i in 0..n {
                    let h = hash_u64(key(i), seed);
                    let bucket = ((h as u32 as u64 * 56) >> 32) as usize;
                    cells[(h >> 56) as usize * 56 + bucket] += 1;
                    fps[(h >> 32) as u8 as usize] += 1;
                    top[(h >> 52) as usize] += 1;
                }
                for (field, c) in [("cells", chi(&cells)), ("fp", chi(&fps)), ("top", chi(&top))] {
                    assert!(c < 1.5, "{name} seed {seed}: {field} chi2/dof {c:.2}");
                }
            }
        }
    }

    // Pins: no 64-bit collisions within a pattern, and distinct seeds give
    // distinct hashes of the same key (u64 and bytes).
    #[test]
    fn distinct_keys_and_seeds() {
        let n = if cfg!(miri) { 64 } else { 1 << 14 };
        for (name, key) in u64_patterns() {
            let hs: std::collections::HashSet<u64> = (0..n).map(|i| hash_u64(key(i), 3)).collect();
            assert_eq!(hs.len(), n as usize, "{name}: collisions");
        }
        for x in [0u64, 1, 42, u64::MAX] {
            let hs: std::collections::HashSet<u64> = (0..256).map(|s| hash_u64(x, s)).collect();
            assert_eq!(hs.len(), 256, "hash_u64({x}) repeats across seeds");
            let b = x.to_le_bytes();
            let hs: std::collections::HashSet<u64> = (0..256).map(|s| hash_bytes(&b, s)).collect();
            assert_eq!(hs.len(), 256, "hash_bytes({x}) repeats across seeds");
            let k = *b"key:000000012345";
            let hs: std::collections::HashSet<u64> = (0..256).map(|s| hash_bytes(&k, s)).collect();
            assert_eq!(hs.len(), 256, "hash_bytes(key16) repeats across seeds");
        }
    }

    // Pins: hash_u64 is a function of (key, seed) only and differs from
    // the identity/seed on zero (seed 0 must not make key 0 hash to 0).
    #[test]
    fn u64_zero_key_and_seed() {
        assert_eq!(hash_u64(12345, 9), hash_u64(12345, 9));
        assert_ne!(hash_u64(0, 0), 0);
        assert_ne!(hash_bytes(&[], 0), hash_bytes(&[0], 0));
        // Short keys with seed 0 must not collapse (b = 0 in `finish`).
        let hs: std::collections::HashSet<u64> = (0..=255u8).map(|c| hash_bytes(&[c], 0)).collect();
        assert_eq!(hs.len(), 256);
    }

    // Pins: borrowed and owned byte keys hash identically (required by the
    // `K: Borrow<Q>` lookups), and the seed changes the result.
    #[test]
    fn owned_and_borrowed_agree() {
        let v: Vec<u8> = b"hello world".to_vec();
        let b: Box<[u8]> = v.clone().into_boxed_slice();
        let s: &[u8] = &v;
        assert_eq!(v.dash_hash(7), s.dash_hash(7));
        assert_eq!(b.dash_hash(7), s.dash_hash(7));
        assert_eq!(String::from("hello world").dash_hash(7), s.dash_hash(7));
        assert_ne!(s.dash_hash(7), s.dash_hash(8));
    }

    // Pins: every length path (0, 1..3, 4..16, 17..48, >48) reads all
    // bytes: flipping any single bit of the input changes the hash.
    #[test]
    fn every_byte_matters() {
        let n = if cfg!(miri) { 70 } else { 200 };
        for len in 0..n {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let h = hash_bytes(&data, 1);
            for i in 0..len {
                for bit in [0u8, 7] {
                    let mut d2 = data.clone();
                    d2[i] ^= 1 << bit;
                    assert_ne!(h, hash_bytes(&d2, 1), "len {len} byte {i} bit {bit}");
                }
            }
            // Length is mixed in: a zero-extended input hashes differently.
            let mut longer = data.clone();
            longer.push(0);
            assert_ne!(h, hash_bytes(&longer, 1));
        }
    }

    // Pins: output bits are roughly balanced for sequential keys (each of
    // the 64 bits set in 50% +- 5% of 4096 hashes), so segment/bucket/
    // fingerprint selection is well distributed for "key:N"-style keys.
    #[test]
    fn bit_balance() {
        let n = if cfg!(miri) { 256 } else { 4096 };
        let mut counts = [0u32; 64];
        for i in 0..n {
            let k = format!("key:{i}");
            let h = hash_bytes(k.as_bytes(), 0);
            for (b, c) in counts.iter_mut().enumerate() {
                *c += ((h >> b) & 1) as u32;
            }
        }
        let tol = if cfg!(miri) { 0.2 } else { 0.05 };
        for (b, &c) in counts.iter().enumerate() {
            let f = c as f64 / n as f64;
            assert!((f - 0.5).abs() < tol, "bit {b}: {f}");
        }
    }
}
