//! Hashing for [`DashTable`](super::DashTable): the [`DashHash`] trait and a
//! fast seeded 64-bit hash for byte slices ([`hash_bytes`]).
//!
//! The byte hash follows the structure of wyhash (64x64->128 bit
//! "multiply and fold" mixing over 16/48-byte strides); it is not meant to be
//! bit-compatible with any published wyhash version (e.g. 8..=16 bytes are
//! read as two overlapping 8-byte words, not four 4-byte ones). Keys of up
//! to 16 bytes, the common case, hash inline in a few instructions (two
//! loads, two multiplies); longer ones call out of line. It is a
//! non-cryptographic hash: the per-table random seed chosen by
//! [`DashTable::new`](super::DashTable::new) is what keeps clients from
//! predicting which keys collide.

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
    let seed = seed ^ mum(seed ^ P0, P1);
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

/// Seeded hash of a `u64` (same mixing as [`hash_bytes`] on its 8
/// little-endian bytes, with the reads folded away).
#[inline(always)]
pub fn hash_u64(x: u64, seed: u64) -> u64 {
    finish(x, x, seed ^ mum(seed ^ P0, P1), 8)
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

    // Pins: u64 fast path equals the byte hash of its little-endian bytes,
    // so the two impls can never silently diverge.
    #[test]
    fn u64_matches_bytes() {
        for (i, x) in [0u64, 1, 42, u64::MAX, 0xdead_beef_0123_4567]
            .into_iter()
            .enumerate()
        {
            let seed = i as u64 * 0x9e37_79b9;
            assert_eq!(hash_u64(x, seed), hash_bytes(&x.to_le_bytes(), seed));
        }
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
