//! Exact ports of the Redis 7.0 string/number helpers that decide what the
//! server accepts and how it prints numbers.
//!
//! Clients observe these byte for byte (which strings INCR accepts, what
//! INCRBYFLOAT replies, which keys KEYS/SCAN MATCH select), so each function
//! here follows the C original in Redis 7.0 rather than Rust's own parsers:
//!
//! | here | Redis 7.0 |
//! | --- | --- |
//! | [`parse_i64`] | `string2ll` (util.c), used by `getLongLongFromObject` |
//! | [`write_i64`], [`write_u64`], [`format_u64`], [`i64_len`], [`u64_len`] | `ll2string`, `ull2string`, `sdigits10`, `digits10` |
//! | [`parse_f64_strict`] | `string2d` / `getDoubleFromObject` (object.c) |
//! | [`parse_long_double_ok`], [`long_double_is_finite`] | `string2ld` / `getLongDoubleFromObject` |
//! | [`incr_by_float`] | `incrbyfloatCommand` (t_string.c) + `ld2string(LD_STR_HUMAN)` |
//!
//! Doubles are printed (`%.17g`, `addReplyDouble`) by [`crate::reply::write_double`].
//! | [`glob_match`] | `stringmatchlen` (util.c), with its nesting limit and `skipLongerMatches` pruning |
//!
//! The `long double` arithmetic, its `%.17Lf` printing and `strtod`/`strtold`
//! parsing are delegated to the small C shim `csrc/longdouble.c` (built by
//! `build.rs`), because Rust has no 80-bit `long double` and no `strtod` with
//! C's exact syntax. Results therefore match a Redis built for the same
//! platform (x86-64: x87 80-bit `long double`). Parsing assumes the "C" locale, which a Rust program has unless
//! something calls `setlocale`.
//!
//! Functions that call into C do not run under Miri; their tests are
//! compiled out there.

use std::mem::MaybeUninit;
use std::os::raw::{c_char, c_int};

unsafe extern "C" {
    fn darter_string2ld_ok(s: *const c_char, len: usize, finite: *mut c_int) -> c_int;
    fn darter_ld_add(
        cur: *const c_char,
        curlen: usize,
        incr: *const c_char,
        incrlen: usize,
        out: *mut c_char,
        outcap: usize,
    ) -> c_int;
    fn darter_string2d(s: *const c_char, len: usize, out: *mut f64) -> c_int;
}

/// Redis' `MAX_LONG_DOUBLE_CHARS`: the longest string `string2ld` accepts is
/// one byte shorter, and `ld2string` formats into a buffer of this size.
pub const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// Redis' `LONG_STR_SIZE`: strings of this length or longer are never
/// integers for `string2ll`.
const LONG_STR_SIZE: usize = 21;

// ---------------------------------------------------------------------------
// Integers
// ---------------------------------------------------------------------------

/// Parses `s` exactly like Redis `string2ll`: optional `-`, then digits with
/// no leading zero (the only string starting with `0` is `"0"` itself), no
/// `+`, no white space anywhere, no `"-0"`, at most 20 bytes, and no
/// overflow of `i64`.
#[inline]
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= LONG_STR_SIZE {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut v = u64::from(first - b'0');
    for &c in rest {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        // -(2^63) is the one magnitude beyond i64::MAX that still fits.
        (v <= 1 << 63).then(|| (v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// "00" .. "99", for writing two digits per division.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Longest decimal `u64`: `u64::MAX` has 20 digits.
pub const MAX_U64_DIGITS: usize = 20;

/// Writes `v` in decimal at the end of `digits`, two digits per division, and
/// returns where the digits start. For callers that need the digits before
/// they can place them (the reply builder's length headers); others use
/// [`write_u64`] / [`write_i64`].
#[inline]
pub fn format_u64(mut v: u64, digits: &mut [u8; MAX_U64_DIGITS]) -> usize {
    let mut start = MAX_U64_DIGITS;
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        start -= 2;
        digits[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        start -= 2;
        digits[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        start -= 1;
        digits[start] = b'0' + v as u8;
    }
    start
}

/// Appends the decimal form of `v` to `buf` (Redis `ull2string`).
#[inline]
pub fn write_u64(buf: &mut Vec<u8>, v: u64) {
    let mut digits = [0u8; MAX_U64_DIGITS];
    let start = format_u64(v, &mut digits);
    buf.extend_from_slice(&digits[start..]);
}

/// Appends the decimal form of `v` to `buf` (Redis `ll2string`).
#[inline]
pub fn write_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    write_u64(buf, v.unsigned_abs());
}

/// Number of bytes [`write_u64`] writes for `v` (Redis `digits10`).
#[inline]
pub fn u64_len(v: u64) -> usize {
    match v.checked_ilog10() {
        Some(d) => d as usize + 1,
        None => 1,
    }
}

/// Number of bytes [`write_i64`] writes for `v`, sign included (Redis
/// `sdigits10`).
#[inline]
pub fn i64_len(v: i64) -> usize {
    u64_len(v.unsigned_abs()) + usize::from(v < 0)
}

// ---------------------------------------------------------------------------
// Floating point
// ---------------------------------------------------------------------------

/// Parses `s` as Redis `string2d` / `getDoubleFromObject` do (ZADD scores,
/// ZINCRBY, ZRANGEBYSCORE bounds after their `(` prefix, ...): `strtod` must
/// consume the whole string; leading white space, NaN, and overflow or
/// underflow to ±inf / 0 are rejected. `strtod` syntax is otherwise accepted:
/// a leading `+`, `"5."`, `".5"`, exponents, hex floats (`"0x1p3"`), and
/// `"inf"`, `"-inf"`, `"+Infinity"` (any case).
pub fn parse_f64_strict(s: &[u8]) -> Option<f64> {
    if let Some(v) = parse_plain_decimal(s) {
        return Some(v);
    }
    let mut out = 0.0f64;
    // SAFETY: `s` is valid for `s.len()` bytes (the C side reads exactly
    // that many and copies them before parsing); `out` is a valid `f64`
    // destination for the duration of the call.
    let ok = unsafe { darter_string2d(s.as_ptr().cast(), s.len(), &mut out) };
    (ok == 1).then_some(out)
}

/// Fast path of [`parse_f64_strict`] for the common shape `-?D+(\.D+)?` of
/// at most 300 bytes. In that range the value can neither overflow nor
/// underflow (it lies within 1e-299 ..= 1e300 or is 0), so `strtod` would
/// not set `ERANGE`, and Rust's correctly rounded parser gives the same
/// double as glibc's correctly rounded `strtod`.
#[inline]
fn parse_plain_decimal(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() > 300 {
        return None;
    }
    let body = s.strip_prefix(b"-").unwrap_or(s);
    let (int, frac) = match body.iter().position(|&c| c == b'.') {
        Some(dot) => (&body[..dot], Some(&body[dot + 1..])),
        None => (body, None),
    };
    if int.is_empty() || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if let Some(frac) = frac
        && (frac.is_empty() || !frac.iter().all(u8::is_ascii_digit))
    {
        return None;
    }
    // The shape check above guarantees ASCII, and Rust accepts this grammar.
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// True when `s` is a valid `long double` for Redis `string2ld` (the check
/// INCRBYFLOAT and HINCRBYFLOAT apply): non-empty, shorter than
/// [`MAX_LONG_DOUBLE_CHARS`], no leading white space, fully consumed by
/// `strtold` (no trailing bytes, no embedded NUL), not NaN, and not an
/// overflow/underflow to ±inf or 0. `strtold` accepts a leading `+`, hex
/// floats and `"inf"`/`"infinity"`, so those pass.
pub fn parse_long_double_ok(s: &[u8]) -> bool {
    long_double_is_finite(s).is_some()
}

/// `None` when `s` is not a valid `long double` (see
/// [`parse_long_double_ok`]), otherwise whether its value is finite: the
/// literal `"inf"` forms parse but are infinite, which HINCRBYFLOAT rejects
/// up front with "value is NaN or Infinity".
pub fn long_double_is_finite(s: &[u8]) -> Option<bool> {
    let mut finite: c_int = 0;
    // SAFETY: `s` is valid for `s.len()` bytes, which the C side copies into
    // its own NUL-terminated buffer (after rejecting lengths that do not
    // fit); `finite` is a valid `int` destination.
    let ok = unsafe { darter_string2ld_ok(s.as_ptr().cast(), s.len(), &mut finite) };
    (ok == 1).then_some(finite == 1)
}

/// Why [`incr_by_float`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatErr {
    /// The current value is not a valid float (checked first, as Redis does).
    InvalidCurrent,
    /// The increment is not a valid float.
    InvalidIncrement,
    /// The sum is NaN or ±infinity (e.g. an `"inf"` operand, or overflow).
    NanOrInfinity,
}

/// INCRBYFLOAT arithmetic: parses `cur` and `incr` with `string2ld`, adds
/// them in C `long double`, rejects a NaN/infinite sum, and returns the sum
/// formatted as Redis stores and replies it (`ld2string` in `LD_STR_HUMAN`
/// mode: `"%.17Lf"`, trailing zeros and then a trailing `.` removed, `"-0"`
/// turned into `"0"`; never exponent notation).
///
/// A missing key counts as 0 in Redis: pass `b"0"` for `cur`. A current value
/// stored as an integer is parsed from its decimal form, which yields the
/// same `long double` Redis gets from the integer.
///
/// ```
/// use darter::util::incr_by_float;
/// assert_eq!(incr_by_float(b"0.1", b"0.2").unwrap(), b"0.3");
/// assert_eq!(incr_by_float(b"5.0e3", b"2.0e2").unwrap(), b"5200");
/// ```
pub fn incr_by_float(cur: &[u8], incr: &[u8]) -> Result<Vec<u8>, FloatErr> {
    let mut out = [MaybeUninit::<u8>::uninit(); MAX_LONG_DOUBLE_CHARS];
    // SAFETY: `cur` and `incr` are valid for their lengths (the C side
    // copies them into NUL-terminated buffers before parsing) and `out` is
    // writable for `out.len()` bytes, which the C side never exceeds.
    let n = unsafe {
        darter_ld_add(
            cur.as_ptr().cast(),
            cur.len(),
            incr.as_ptr().cast(),
            incr.len(),
            out.as_mut_ptr().cast(),
            out.len(),
        )
    };
    match n {
        -1 => Err(FloatErr::InvalidCurrent),
        -3 => Err(FloatErr::InvalidIncrement),
        -2 => Err(FloatErr::NanOrInfinity),
        n if n >= 0 && n as usize <= out.len() => {
            // SAFETY: a non-negative return is the number of bytes the C
            // side wrote at the start of `out`, and it is within `out`.
            let bytes = unsafe { std::slice::from_raw_parts(out.as_ptr().cast::<u8>(), n as usize) };
            Ok(bytes.to_vec())
        }
        // -4 (does not fit) cannot happen with a MAX_LONG_DOUBLE_CHARS
        // buffer; Redis would store "" in that case, so mirror it.
        _ => Ok(Vec::new()),
    }
}

// ---------------------------------------------------------------------------
// Glob matching
// ---------------------------------------------------------------------------

/// Compares a secret with a candidate in time that depends only on the candidate's
/// length, never on where they first differ or on the secret's bytes (password checks:
/// AUTH, HELLO AUTH). Redis hashes both sides first; Darter reads the secret cyclically
/// instead, so the loop count is the candidate's length whatever the secret is.
pub fn constant_time_eq(secret: &[u8], candidate: &[u8]) -> bool {
    if secret.is_empty() {
        return candidate.is_empty();
    }
    let mut diff = (secret.len() ^ candidate.len()) as u64;
    for (i, &b) in candidate.iter().enumerate() {
        diff |= (secret[i % secret.len()] ^ b) as u64;
    }
    // Keeps the compiler from turning the loop into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

/// Redis `stringmatchlen`: glob-style match of the whole of `s` against
/// `pattern`, as used by KEYS, SCAN MATCH, PSUBSCRIBE and friends.
///
/// * `*` matches any run of bytes, `?` exactly one byte;
/// * `[abc]`, `[^abc]` (negated), `[a-z]` ranges (reversed ranges like
///   `[z-a]` work too), `\x` inside a class for a literal `x`; an unclosed
///   class extends to the end of the pattern; a `-` is literal only where it
///   cannot form a range (`[-a]`, `[a-`), so `[a-]` is the range `]`..`a` in a
///   class that is still open;
/// * `\x` outside a class matches `x` literally; a trailing lone `\` matches
///   a `\`;
/// * `nocase` folds ASCII letters only (C locale `tolower`), except that an
///   escaped byte inside a class is compared case-sensitively, as in Redis.
///
/// Quirks kept from the original: range bounds compare as C `char`, which is
/// signed on x86-64, so bytes >= 0x80 sort before ASCII in ranges; `*` (or
/// any pattern) never matches the empty string unless the pattern is empty;
/// and recursion deeper than 1000 `*`s gives up with "no match". The
/// `skipLongerMatches` pruning keeps patterns like `a*a*a*a*b` polynomial.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let mut skip_longer_matches = false;
    glob_impl(pattern, s, nocase, &mut skip_longer_matches, 0)
}

/// A pattern byte as the C code sees it: the NUL terminator past the end of
/// the (sds) pattern reads as 0.
#[inline]
fn pat_at(pattern: &[u8], i: usize) -> u8 {
    pattern.get(i).copied().unwrap_or(0)
}

/// A byte as a (signed, on x86-64) C `char` promoted to `int`.
#[inline]
fn as_c_char(b: u8) -> i32 {
    i32::from(b as i8)
}

/// C-locale `tolower` on a promoted `char`.
#[inline]
fn c_tolower(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) { c + 32 } else { c }
}

/// `stringmatchlen_impl`. `pattern.len() - p` is the C `patternLen` and
/// `s.len() - si` the C `stringLen` throughout.
fn glob_impl(pattern: &[u8], s: &[u8], nocase: bool, skip_longer: &mut bool, nesting: u32) -> bool {
    // Protection against abusive patterns.
    if nesting > 1000 {
        return false;
    }
    let plen = pattern.len();
    let slen = s.len();
    let mut p = 0;
    let mut si = 0;
    while p < plen && si < slen {
        match pattern[p] {
            b'*' => {
                while p < plen && pat_at(pattern, p + 1) == b'*' {
                    p += 1;
                }
                if plen - p == 1 {
                    return true; // A trailing star matches the rest.
                }
                while si < slen {
                    if glob_impl(&pattern[p + 1..], &s[si..], nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    si += 1;
                }
                // The rest of the pattern matches nowhere in the rest of the
                // string, so no earlier star can help by eating more: a
                // longer match for it would need the rest to match later.
                *skip_longer = true;
                return false;
            }
            b'?' => si += 1,
            b'[' => {
                let c = s[si];
                p += 1;
                let not = pat_at(pattern, p) == b'^';
                if not {
                    p += 1;
                }
                let mut matched = false;
                loop {
                    let rem = plen - p;
                    if pat_at(pattern, p) == b'\\' && rem >= 2 {
                        p += 1;
                        if pattern[p] == c {
                            matched = true;
                        }
                    } else if pat_at(pattern, p) == b']' {
                        break;
                    } else if rem == 0 {
                        // Unclosed class: step back so the outer advance
                        // lands exactly on the end of the pattern.
                        p -= 1;
                        break;
                    } else if rem >= 3 && pattern[p + 1] == b'-' {
                        let mut start = as_c_char(pattern[p]);
                        let mut end = as_c_char(pattern[p + 2]);
                        let mut ch = as_c_char(c);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = c_tolower(start);
                            end = c_tolower(end);
                            ch = c_tolower(ch);
                        }
                        p += 2;
                        if ch >= start && ch <= end {
                            matched = true;
                        }
                    } else if nocase {
                        if pattern[p].eq_ignore_ascii_case(&c) {
                            matched = true;
                        }
                    } else if pattern[p] == c {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                si += 1;
            }
            first => {
                let lit = if first == b'\\' && plen - p >= 2 {
                    p += 1;
                    pattern[p]
                } else {
                    first
                };
                let eq = if nocase { lit.eq_ignore_ascii_case(&s[si]) } else { lit == s[si] };
                if !eq {
                    return false;
                }
                si += 1;
            }
        }
        p += 1;
        if si == slen {
            while pat_at(pattern, p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p == plen && si == slen
}

// The tests call into the C shim, which Miri cannot execute.
#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    fn g(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }

    fn gi(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), true)
    }

    fn inc(a: &str, b: &str) -> Result<String, FloatErr> {
        incr_by_float(a.as_bytes(), b.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    // --- parse_i64 ---------------------------------------------------------

    /// Pins the accepted forms of string2ll, including both i64 extremes.
    #[test]
    fn parse_i64_accepts_canonical_integers() {
        for (s, v) in [
            ("0", 0),
            ("1", 1),
            ("-1", -1),
            ("99", 99),
            ("-99", -99),
            ("1234567890", 1234567890),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ] {
            assert_eq!(parse_i64(s.as_bytes()), Some(v), "{s}");
        }
    }

    /// Pins the rejections of string2ll: signs, spaces, leading zeros, -0,
    /// overflow by one in each direction, over-long input, non-digits.
    #[test]
    fn parse_i64_rejects_non_canonical() {
        for s in [
            "",
            "-",
            "+1",
            " 1",
            "1 ",
            "01",
            "00",
            "-0",
            "-01",
            "1.0",
            "1e3",
            "0x10",
            "12a",
            "9223372036854775808",
            "-9223372036854775809",
            "18446744073709551616",
            "99999999999999999999",
            "000000000000000000001",
            // 21 bytes is rejected by length alone, even with a leading '-'.
            "-92233720368547758080",
            "1\0",
            "\u{0661}",
        ] {
            assert_eq!(parse_i64(s.as_bytes()), None, "{s:?}");
        }
    }

    /// Pins agreement with i64's own formatting: every write_i64 output
    /// parses back to the same value, and nothing else near it does.
    #[test]
    fn parse_i64_round_trips_write_i64() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x as i64) >> (x % 64);
            let mut buf = Vec::new();
            write_i64(&mut buf, v);
            assert_eq!(buf, v.to_string().as_bytes());
            assert_eq!(parse_i64(&buf), Some(v));
            assert_eq!(i64_len(v), buf.len());
        }
    }

    // --- integer formatting -------------------------------------------------

    // The integer formatter agrees with Rust's Display at every digit-count
    // boundary and on a spread of values.
    #[test]
    fn write_i64_matches_display() {
        let mut values = vec![0i64, 1, -1, 9, 10, 99, 100, 101, i64::MAX, i64::MIN, i64::MIN + 1];
        let mut power = 1i64;
        while let Some(next) = power.checked_mul(10) {
            values.extend([power - 1, power, power + 1, -power, -(power - 1), next / 3]);
            power = next;
        }
        let mut seed = 0x243F_6A88_85A3_08D3u64;
        for _ in 0..100_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            values.push(seed as i64 >> (seed % 64));
        }
        for value in values {
            let mut out = Vec::new();
            write_i64(&mut out, value);
            assert_eq!(out, value.to_string().into_bytes());
        }
    }

    // bulk(): "$len" + bytes, binary safe, empty allowed.
    /// Pins write_i64/write_u64 and their lengths at digit-count boundaries
    /// and extremes (the two-digit table must not drop or double digits).
    #[test]
    fn write_integers_at_boundaries() {
        let mut cases: Vec<i64> = vec![0, 1, -1, 9, 10, -10, 99, 100, i64::MAX, i64::MIN, i64::MIN + 1];
        for e in 1..19 {
            let p = 10i64.pow(e);
            cases.extend([p - 1, p, p + 1, -(p - 1), -p]);
        }
        for v in cases {
            let mut buf = b"x".to_vec();
            write_i64(&mut buf, v);
            assert_eq!(&buf[1..], v.to_string().as_bytes());
            assert_eq!(i64_len(v), v.to_string().len(), "{v}");
        }
        for v in [0u64, 9, 10, u64::MAX, u64::MAX / 10, 10_000_000_000_000_000_000] {
            let mut buf = Vec::new();
            write_u64(&mut buf, v);
            assert_eq!(buf, v.to_string().as_bytes());
            assert_eq!(u64_len(v), buf.len());
        }
    }

    // --- parse_f64_strict -----------------------------------------------------

    /// Pins what string2d accepts: strtod syntax over the whole string,
    /// including '+', bare dot forms, exponents, hex and infinities.
    #[test]
    fn parse_f64_accepts_strtod_syntax() {
        for (s, v) in [
            ("0", 0.0),
            ("-0", -0.0),
            ("1.5", 1.5),
            ("-1.5", -1.5),
            ("+1.5", 1.5),
            ("5.", 5.0),
            (".5", 0.5),
            ("-.5", -0.5),
            ("1e3", 1000.0),
            ("1E-3", 0.001),
            ("007", 7.0),
            ("0x10", 16.0),
            ("0x1p-2", 0.25),
            ("inf", f64::INFINITY),
            ("+inf", f64::INFINITY),
            ("-inf", f64::NEG_INFINITY),
            ("Infinity", f64::INFINITY),
            ("-INF", f64::NEG_INFINITY),
            ("1.7976931348623157e308", f64::MAX),
            ("4.9e-324", 5e-324), // subnormal: ERANGE but non-zero, accepted
        ] {
            let got = parse_f64_strict(s.as_bytes());
            assert_eq!(got.map(f64::to_bits), Some(v.to_bits()), "{s}");
        }
    }

    /// Pins what string2d rejects: empty, spaces, trailing bytes, embedded
    /// NUL, NaN in any spelling, overflow and underflow to zero.
    #[test]
    fn parse_f64_rejects() {
        for s in [
            "", " 1", "1 ", "\t1", "1x", "1\0", "-", ".", "e5", "1e", "nan", "NaN", "-nan", "nan(123)", "1e309",
            "-1e309", "1e-400", "0x", "--1", "1..2", "1,5",
        ] {
            assert_eq!(parse_f64_strict(s.as_bytes()), None, "{s:?}");
        }
    }

    /// Pins that the pure-Rust fast path agrees bit for bit with strtod on
    /// the shapes it handles, including long and tie-prone digit strings.
    #[test]
    fn parse_f64_fast_path_matches_strtod() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..50_000 {
            let int_len = 1 + next() % if i % 10 == 0 { 120 } else { 20 };
            let frac_len = next() % if i % 7 == 0 { 150 } else { 20 };
            let mut s = String::new();
            if next() % 2 == 0 {
                s.push('-');
            }
            for _ in 0..int_len {
                s.push(char::from(b'0' + (next() % 10) as u8));
            }
            if frac_len > 0 {
                s.push('.');
                for _ in 0..frac_len {
                    s.push(char::from(b'0' + (next() % 10) as u8));
                }
            }
            let fast = parse_plain_decimal(s.as_bytes()).expect("shape");
            let mut slow = 0.0;
            // SAFETY: test-only direct call with a valid buffer.
            let ok = unsafe { darter_string2d(s.as_ptr().cast(), s.len(), &mut slow) };
            assert_eq!(ok, 1, "{s}");
            assert_eq!(fast.to_bits(), slow.to_bits(), "{s}");
        }
    }

    // --- long double validation -------------------------------------------------

    /// Pins string2ld: strtold syntax accepted (hex, inf, '+'), while
    /// spaces, trailing bytes, NUL, NaN, overflow/underflow and over-long
    /// inputs are rejected.
    #[test]
    fn long_double_validation() {
        for s in ["1", "-1.5", "+3", ".5", "5.", "1e4000", "0x1p-3", "inf", "-Infinity", "1e-4940"] {
            assert!(parse_long_double_ok(s.as_bytes()), "{s}");
        }
        for s in ["", " 1", "1 ", "abc", "1\0", "nan", "-nan", "1e5000", "1e-5000", "--1"] {
            assert!(!parse_long_double_ok(s.as_bytes()), "{s:?}");
        }
        let long = "1".repeat(MAX_LONG_DOUBLE_CHARS);
        assert!(!parse_long_double_ok(long.as_bytes()), "5120 bytes is too long");
        assert!(!parse_long_double_ok(&long.as_bytes()[..MAX_LONG_DOUBLE_CHARS - 1]), "overflows");
        let ok = format!("0.{}", "1".repeat(MAX_LONG_DOUBLE_CHARS - 3));
        assert!(parse_long_double_ok(ok.as_bytes()), "5119 bytes is fine");
        assert_eq!(long_double_is_finite(b"inf"), Some(false));
        assert_eq!(long_double_is_finite(b"1e4000"), Some(true));
        assert_eq!(long_double_is_finite(b"x"), None);
    }

    // --- incr_by_float -------------------------------------------------------------

    /// Pins INCRBYFLOAT results that need 80-bit long double plus "%.17Lf"
    /// and trailing-zero stripping to come out as Redis prints them.
    #[test]
    fn incr_by_float_vectors() {
        for (a, b, want) in [
            ("10.5", "0.1", "10.6"),
            ("0.1", "0.2", "0.3"),
            ("5.0e3", "2.0e2", "5200"),
            ("3", "1.5", "4.5"),
            ("1", "-1", "0"),
            ("0", "0", "0"),
            ("-0", "-0", "0"),    // "-0" is printed as "0"
            ("0", "-1e-30", "0"), // rounds to -0.000.. and prints "0"
            ("0", "1e-17", "0.00000000000000001"),
            ("0", "1e-18", "0"),
            ("1e18", "1", "1000000000000000001"),   // 64-bit mantissa: exact
            ("1e20", "1", "100000000000000000000"), // 67 bits: the 1 is lost
            ("0x10", "0", "16"),
            ("+1", ".5", "1.5"),
            // 2^34 leaves ~30 fraction bits: the x87 rounding error shows
            // at 17 decimals, exactly as Redis on x86-64 replies.
            ("17179869184", "0.1", "17179869184.09999999962747097"),
            ("-3.5", "1", "-2.5"),
        ] {
            assert_eq!(inc(a, b).as_deref(), Ok(want), "{a} + {b}");
        }
    }

    /// Pins that huge values print in full positional form (no exponent),
    /// as "%.17Lf" does.
    #[test]
    fn incr_by_float_huge_values_have_no_exponent() {
        // The long double nearest 1e4000 is just below it: 4000 digits.
        let r = inc("1e4000", "0").unwrap();
        assert_eq!(r.len(), 4000);
        assert!(r.bytes().all(|c| c.is_ascii_digit()));
        assert!(r.starts_with("99999999999999999999"), "exact binary value");
    }

    /// Pins error classification and order: current value is checked before
    /// the increment; "inf" operands and overflow give NanOrInfinity.
    #[test]
    fn incr_by_float_errors() {
        assert_eq!(inc("abc", "1"), Err(FloatErr::InvalidCurrent));
        assert_eq!(inc("abc", "xyz"), Err(FloatErr::InvalidCurrent));
        assert_eq!(inc("1", "xyz"), Err(FloatErr::InvalidIncrement));
        assert_eq!(inc("1", ""), Err(FloatErr::InvalidIncrement));
        assert_eq!(inc("1", " 1"), Err(FloatErr::InvalidIncrement));
        assert_eq!(inc("1", "nan"), Err(FloatErr::InvalidIncrement));
        assert_eq!(inc("1", "inf"), Err(FloatErr::NanOrInfinity));
        assert_eq!(inc("inf", "-inf"), Err(FloatErr::NanOrInfinity));
        assert_eq!(inc("1e4932", "1e4932"), Err(FloatErr::NanOrInfinity));
    }

    // --- glob_match ---------------------------------------------------------------

    /// Pins the basic wildcards and that the match is anchored at both ends.
    #[test]
    fn glob_basics() {
        assert!(g("", ""));
        assert!(!g("", "a"));
        assert!(g("abc", "abc"));
        assert!(!g("abc", "abcd"));
        assert!(!g("abcd", "abc"));
        assert!(g("*", "anything"));
        assert!(g("a*", "a"));
        assert!(g("a*", "abc"));
        assert!(g("*c", "abc"));
        assert!(g("a*c", "abbbc"));
        assert!(!g("a*c", "abbbd"));
        assert!(g("h?llo", "hello"));
        assert!(!g("h?llo", "hllo"));
        assert!(g("*?", "x"));
        assert!(!g("?", ""));
        assert!(g("a**b", "ab"));
        assert!(g("user:*:name", "user:42:name"));
    }

    /// Pins the empty-string quirk of Redis 7.0: the main loop only runs
    /// while both sides are non-empty, so no non-empty pattern (not even
    /// "*") matches "" (KEYS/SCAN special-case a lone "*" before calling).
    #[test]
    fn glob_empty_string_quirk() {
        assert!(!g("*", ""));
        assert!(!g("**", ""));
        assert!(!g("[a]", ""));
        assert!(g("a*", "a"), "trailing stars after the last byte are skipped");
        assert!(g("a***", "a"));
    }

    /// Pins character classes: sets, negation, ranges in both orders, a
    /// literal '-' that cannot form a range, escapes inside classes.
    #[test]
    fn glob_classes() {
        assert!(g("h[ae]llo", "hello") && g("h[ae]llo", "hallo"));
        assert!(!g("h[ae]llo", "hillo"));
        assert!(g("h[^e]llo", "hallo"));
        assert!(!g("h[^e]llo", "hello"));
        assert!(g("h[a-b]llo", "hbllo"));
        assert!(g("h[b-a]llo", "hallo"), "reversed range");
        assert!(!g("h[a-b]llo", "hcllo"));
        // "[a-]" is the range a..']' (swapped to ']'..'a') in an unclosed
        // class, not a set with a literal '-'.
        assert!(g("[a-]", "a") && g("[a-]", "]") && g("[a-]", "_"));
        assert!(!g("[a-]", "-"));
        assert!(g("[a-]]", "a"), "the class is still open: ']' is then literal");
        assert!(g("[-a]", "-"), "leading '-' is literal");
        assert!(g("[\\]]", "]"), "escaped ']' inside a class");
        assert!(g("[\\-]", "-"));
        assert!(g("[\\^]", "^"));
        assert!(!g("[]", "]") && !g("[]]", "]"), "']' right after '[' closes it");
        assert!(g("[^]", "x"), "empty negated class matches any one byte");
        assert!(!g("[]", "x"));
        assert!(g("[^a-c]x", "dx"));
        assert!(g("[a-c0-9]", "5"));
    }

    /// Pins unclosed classes: the class runs to the end of the pattern and
    /// then still consumes one string byte.
    #[test]
    fn glob_unclosed_class() {
        assert!(g("[abc", "b"));
        assert!(!g("[abc", "d"));
        assert!(!g("[", "["), "lone '[' is an empty class");
        assert!(g("[^", "x"), "lone '[^' matches one byte");
        assert!(!g("[^", "xy"));
        assert!(g("[a-", "-") && g("[a-", "a"));
        assert!(g("[\\", "\\"), "trailing backslash in a class is literal");
    }

    /// Pins escapes outside classes and the trailing lone backslash.
    #[test]
    fn glob_escapes() {
        assert!(g("\\*", "*"));
        assert!(!g("\\*", "a"));
        assert!(g("\\?x", "?x"));
        assert!(g("a\\[b", "a[b"));
        assert!(g("\\\\", "\\"));
        assert!(g("a\\", "a\\"), "trailing lone '\\' matches itself");
        assert!(g("\\a", "a"));
    }

    /// Pins nocase: ASCII letters fold in literals, sets and ranges, but an
    /// escaped byte in a class still compares case-sensitively.
    #[test]
    fn glob_nocase() {
        assert!(gi("HeLLo", "hello"));
        assert!(!g("HeLLo", "hello"));
        assert!(gi("h[A-C]llo", "hbllo"));
        assert!(gi("h[a-c]llo", "hBllo"));
        assert!(gi("[X]", "x"));
        assert!(!gi("[\\X]", "x"), "escaped class byte is case-sensitive");
        assert!(gi("\\X", "x"), "escaped literal outside a class folds");
        assert!(!gi("é", "É"), "non-ASCII does not fold");
    }

    /// Pins ranges comparing bytes as signed C chars (x86-64): bytes >= 0x80
    /// are negative, so [\x01-\xff] swaps to [\xff-\x01].
    #[test]
    fn glob_signed_char_ranges() {
        let m = |p: &[u8], s: &[u8]| glob_match(p, s, false);
        assert!(m(b"[\x80-\xff]", b"\x90"));
        assert!(m(b"[\x01-\xff]", b"\xff"), "swapped to -1..=1");
        assert!(m(b"[\x01-\xff]", b"\x00"));
        assert!(!m(b"[\x01-\xff]", b"a"), "'a' is above 1");
        assert!(m(b"[a-\x80]", b"\x90"), "-128..=97");
        assert!(m(b"[a-\x80]", b"A"));
        assert!(!m(b"[a-\x80]", b"b"));
    }

    /// Pins binary safety: NUL bytes in pattern and string are ordinary.
    #[test]
    fn glob_binary() {
        assert!(glob_match(b"a\0*", b"a\0bc", false));
        assert!(!glob_match(b"a\0", b"a", false));
        assert!(glob_match(b"[\0]", b"\0", false));
        assert!(glob_match(b"*\0", b"xyz\0", false));
    }

    /// Pins the skipLongerMatches pruning: classic exponential patterns
    /// finish quickly on long non-matching inputs.
    #[test]
    fn glob_pathological_patterns_are_fast() {
        let t = std::time::Instant::now();
        let s = "a".repeat(10_000);
        assert!(!g("a*a*a*a*a*a*a*a*a*a*a*a*b", &s));
        assert!(!g("*a*a*a*a*a*a*a*a*a*a*a*a*a*b", &s));
        assert!(g("a*a*a*a*a*a*a*a*a*a*a*a*a", &s));
        let s2 = format!("{}c", "ab".repeat(5_000));
        assert!(!g("*a*b*a*b*a*b*a*b*a*b*d", &s2));
        assert!(g("*a*b*a*b*a*b*c", &s2));
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "{:?}", t.elapsed());
    }

    /// Pins the nesting limit: more than 1000 nested stars give up with
    /// "no match" even when a match exists, and 1000 still match.
    #[test]
    fn glob_nesting_limit() {
        let s = "a".repeat(1100);
        let ok = format!("{}*", "*a".repeat(1000));
        assert!(g(&ok, &s), "1000 nested stars are fine");
        let too_deep = format!("{}*", "*a".repeat(1001));
        assert!(!g(&too_deep, &s), "1001 nested stars give up");
    }

    // The constant-time compare agrees with == on equal, shorter, longer, prefix and
    // cyclic-repeat candidates (a repeat of the secret must not pass).
    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"secret", b"secretsecret"));
        assert!(!constant_time_eq(b"secret", b""));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
