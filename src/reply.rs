//! Reply builder: encodes command results as RESP2 or RESP3 into one buffer.
//!
//! Owns the wire encoding of every reply type. A [`ReplyBuf`] belongs to one
//! connection and is touched only by the thread that owns that connection;
//! pipelined commands append their replies to the same buffer, which is then
//! sent with one write. Handlers call typed methods (`bulk`, `int`, `map`...)
//! and never write protocol bytes themselves, so one switch (`resp3`, set by
//! `HELLO`) picks the encoding for all of them.
//!
//! ```text
//!  handler                    ReplyBuf { buf, resp3 }
//!  ───────                    ───────────────────────────────────────────
//!  map(1)                     RESP2: *2\r\n        RESP3: %1\r\n
//!  bulk(b"k")                 $1\r\nk\r\n          $1\r\nk\r\n
//!  double(1.5)                $3\r\n1.5\r\n        ,1.5\r\n
//!  let p = deferred_len()     (nothing written; p = buf.len())
//!  ... elements ...
//!  set_deferred_array(p, n)   *n\r\n inserted at p, elements shifted right
//! ```
//!
//! Encodings follow Redis 7.0 (`networking.c`): maps are flat arrays of
//! 2 x len in RESP2, sets and pushes plain arrays, booleans integers 1/0,
//! doubles and big numbers and verbatim strings bulk strings; `null` and
//! `null_array` are `$-1` / `*-1` in RESP2 and `_` in RESP3. Doubles use
//! `%.17g` (`inf` / `-inf` spelled out), implemented here exactly (the one
//! `%.17g` formatter of the crate). Integers use [`crate::util::format_u64`],
//! two digits at a time.
//!
//! Goals: exact Redis bytes, no allocation beyond the buffer's own growth, no
//! intermediate strings. Non-goals: output-buffer limits and chunking (the
//! connection's job), RESP3 attributes and streamed aggregates.
//!
//! Limits: none of its own; the caller bounds the buffer
//! (`client-output-buffer-limit`) by looking at [`ReplyBuf::len`].

use std::io::Write as _;

use crate::util::{MAX_U64_DIGITS, format_u64, write_i64};

/// Appends `value` as C's `printf("%.17g")` does with glibc: 17 significant
/// digits, correctly rounded (ties to even), trailing zeros and a trailing
/// point removed, exponent form (`1e+20`, at least two exponent digits) when
/// the decimal exponent is below -4 or at least 17; `inf`, `-inf`, `nan`,
/// `-nan` for the special values.
pub fn write_double(out: &mut Vec<u8>, value: f64) {
    if value.is_sign_negative() {
        out.push(b'-');
    }
    if value.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if value.is_infinite() {
        out.extend_from_slice(b"inf");
        return;
    }
    if value == 0.0 {
        out.push(b'0');
        return;
    }
    // Whole numbers below 1e17 (scores, counters) print all their digits in
    // fixed form, and have at most 17 of them, so `%.17g` is exact: skip the
    // float formatter. Below 2^63, so the conversion is exact too.
    if value.abs() < 1e17 && value.fract() == 0.0 {
        write_i64(out, value.abs() as i64);
        return;
    }
    // Rust's `{:.16e}` is exact: the 17 significant digits of the correctly
    // rounded decimal value, then the exponent after rounding, as `%.17g`
    // needs. Longest output: "d." + 16 digits + "e-324" = 23 bytes.
    let mut scientific = [0u8; 32];
    let written = {
        let mut cursor = &mut scientific[..];
        write!(cursor, "{:.16e}", value.abs()).expect("a {:.16e} f64 fits 32 bytes");
        32 - cursor.len()
    };
    let scientific = &scientific[..written];
    let mut digits = [0u8; 17];
    digits[0] = scientific[0];
    digits[1..].copy_from_slice(&scientific[2..18]);
    debug_assert_eq!(scientific[18], b'e');
    let exponent_text = std::str::from_utf8(&scientific[19..]).expect("ASCII exponent");
    let exponent: i32 = exponent_text.parse().expect("decimal exponent");
    let significant = digits.iter().rposition(|&d| d != b'0').map_or(1, |last| last + 1);
    let digits = &digits[..significant];

    if !(-4..17).contains(&exponent) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exponent < 0 { b'-' } else { b'+' });
        if exponent.abs() < 10 {
            out.push(b'0');
        }
        write_i64(out, i64::from(exponent.abs()));
    } else if exponent >= 0 {
        let integer_digits = exponent as usize + 1;
        if digits.len() <= integer_digits {
            out.extend_from_slice(digits);
            out.resize(out.len() + integer_digits - digits.len(), b'0');
        } else {
            out.extend_from_slice(&digits[..integer_digits]);
            out.push(b'.');
            out.extend_from_slice(&digits[integer_digits..]);
        }
    } else {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-exponent - 1) as usize, b'0');
        out.extend_from_slice(digits);
    }
}

/// Appends `text` with every `\r` and `\n` turned into a space, so a status
/// or error line cannot break the framing.
fn extend_single_line(out: &mut Vec<u8>, text: &[u8]) {
    if memchr::memchr2(b'\r', b'\n', text).is_none() {
        out.extend_from_slice(text);
        return;
    }
    out.extend(text.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
}

/// One connection's output buffer plus the protocol version it speaks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplyBuf {
    /// Encoded replies, ready to send.
    pub buf: Vec<u8>,
    /// `true` after `HELLO 3`: RESP3 encodings.
    pub resp3: bool,
    /// CLIENT NO-TOUCH of the connection these replies go to: the commands it runs
    /// leave keys' access times alone (TOUCH excepted). It travels with the replies,
    /// as `resp3` does, to whichever shard runs the command (`ShardCtx::no_touch`).
    pub no_touch: bool,
}

impl ReplyBuf {
    /// An empty buffer speaking RESP2 (`resp3 == false`) or RESP3.
    pub fn new(resp3: bool) -> Self {
        ReplyBuf { buf: Vec::new(), resp3, no_touch: false }
    }

    /// An empty buffer with room for `capacity_bytes`.
    pub fn with_capacity(capacity_bytes: usize, resp3: bool) -> Self {
        ReplyBuf { buf: Vec::with_capacity(capacity_bytes), resp3, no_touch: false }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets every reply (keeps the capacity and the protocol).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Drops everything after the first `len_bytes` bytes, e.g. to take back
    /// a partly written reply.
    pub fn truncate(&mut self, len_bytes: usize) {
        self.buf.truncate(len_bytes);
    }

    /// `prefix`, `value` in decimal, CRLF: every length header and integer.
    fn header(&mut self, prefix: u8, value: i64) {
        self.buf.push(prefix);
        write_i64(&mut self.buf, value);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An aggregate length; lengths above `i64::MAX` cannot exist in memory.
    fn aggregate(&mut self, prefix: u8, len: usize) {
        self.header(prefix, i64::try_from(len).expect("aggregate length fits i64"));
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A status reply `+text`; `\r` and `\n` in `text` become spaces.
    pub fn simple(&mut self, text: impl AsRef<[u8]>) {
        self.buf.push(b'+');
        extend_single_line(&mut self.buf, text.as_ref());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error reply: `-` then `text` (which starts with its code, as in
    /// `"ERR syntax error"` or `"WRONGTYPE ..."`), `\r` and `\n` turned into
    /// spaces. A `text` that already starts with `-` is not given a second one.
    pub fn error(&mut self, text: &str) {
        self.error_bytes(text.as_bytes());
    }

    /// [`ReplyBuf::error`] for text that need not be UTF-8 (it may quote
    /// client bytes).
    pub fn error_bytes(&mut self, text: &[u8]) {
        let text = text.strip_prefix(b"-").unwrap_or(text);
        self.buf.push(b'-');
        extend_single_line(&mut self.buf, text);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An integer reply `:value`.
    pub fn int(&mut self, value: i64) {
        self.header(b':', value);
    }

    /// A bulk string `$len` + bytes; binary safe.
    pub fn bulk(&mut self, bytes: &[u8]) {
        self.buf.reserve(bytes.len() + MAX_U64_DIGITS + 5);
        self.aggregate(b'$', bytes.len());
        self.buf.extend_from_slice(bytes);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `value` in decimal as a bulk string (Redis's `addReplyBulkLongLong`).
    pub fn bulk_int(&mut self, value: i64) {
        let mut digits = [0u8; MAX_U64_DIGITS];
        let start = format_u64(value.unsigned_abs(), &mut digits);
        let negative = usize::from(value < 0);
        self.aggregate(b'$', MAX_U64_DIGITS - start + negative);
        if value < 0 {
            self.buf.push(b'-');
        }
        self.buf.extend_from_slice(&digits[start..]);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A missing value: RESP2 null bulk `$-1`, RESP3 `_`.
    pub fn null(&mut self) {
        self.buf.extend_from_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }

    /// A missing aggregate (e.g. BLPOP timeout): RESP2 `*-1`, RESP3 `_`.
    pub fn null_array(&mut self) {
        self.buf.extend_from_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
    }

    /// Header of an array of `len` elements, which must follow.
    pub fn array(&mut self, len: usize) {
        self.aggregate(b'*', len);
    }

    /// Header of a map of `len` key/value pairs (2 x `len` elements follow):
    /// RESP3 `%len`, RESP2 `*` 2 x `len`.
    pub fn map(&mut self, len: usize) {
        if self.resp3 {
            self.aggregate(b'%', len);
        } else {
            self.aggregate(b'*', len.checked_mul(2).expect("map length fits usize"));
        }
    }

    /// Header of a set of `len` elements: RESP3 `~len`, RESP2 `*len`.
    pub fn set(&mut self, len: usize) {
        self.aggregate(if self.resp3 { b'~' } else { b'*' }, len);
    }

    /// Header of an out-of-band push (pub/sub message...): RESP3 `>len`,
    /// RESP2 `*len`.
    pub fn push(&mut self, len: usize) {
        self.aggregate(if self.resp3 { b'>' } else { b'*' }, len);
    }

    /// A double, formatted as Redis's `addReplyDouble` (`%.17g`): RESP3
    /// `,1.5`, RESP2 the same text as a bulk string.
    pub fn double(&mut self, value: f64) {
        if self.resp3 {
            self.buf.push(b',');
            write_double(&mut self.buf, value);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            // "-0.00012345678901234567" is the longest fixed form (24 bytes);
            // exponent forms are shorter.
            let mut text = Vec::with_capacity(32);
            write_double(&mut text, value);
            self.bulk(&text);
        }
    }

    /// A boolean: RESP3 `#t` / `#f`, RESP2 `:1` / `:0`.
    pub fn bool(&mut self, value: bool) {
        let bytes: &[u8] = match (self.resp3, value) {
            (true, true) => b"#t\r\n",
            (true, false) => b"#f\r\n",
            (false, true) => b":1\r\n",
            (false, false) => b":0\r\n",
        };
        self.buf.extend_from_slice(bytes);
    }

    /// A verbatim string with a three-letter format (`"txt"`, `"mkd"`):
    /// RESP3 `=len` + `fmt:` + text, RESP2 a bulk string of `text` alone.
    pub fn verbatim(&mut self, format: &str, text: &[u8]) {
        assert_eq!(format.len(), 3, "verbatim format must be 3 bytes");
        if self.resp3 {
            self.aggregate(b'=', text.len() + 4);
            self.buf.extend_from_slice(format.as_bytes());
            self.buf.push(b':');
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// An integer too big for i64, given as its decimal digits: RESP3
    /// `(digits`, RESP2 a bulk string.
    pub fn big_number(&mut self, digits: &[u8]) {
        if self.resp3 {
            self.buf.push(b'(');
            extend_single_line(&mut self.buf, digits);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(digits);
        }
    }

    /// Reserves the place of an aggregate header whose length is not known
    /// yet (Redis's `addReplyDeferredLen`): nothing is written, the returned
    /// position is handed to `set_deferred_array` / `_map` / `_set` once the
    /// elements are written. Nested slots must be filled innermost (latest)
    /// first, because filling one shifts everything after it.
    pub fn deferred_len(&self) -> usize {
        self.buf.len()
    }

    /// Fills a [`ReplyBuf::deferred_len`] slot with an array header of `len`.
    pub fn set_deferred_array(&mut self, position: usize, len: usize) {
        self.insert_aggregate(position, b'*', len);
    }

    /// Fills a slot with a map header of `len` pairs (RESP2: `*` 2 x `len`).
    pub fn set_deferred_map(&mut self, position: usize, len: usize) {
        if self.resp3 {
            self.insert_aggregate(position, b'%', len);
        } else {
            let elements = len.checked_mul(2).expect("map length fits usize");
            self.insert_aggregate(position, b'*', elements);
        }
    }

    /// Fills a slot with a set header of `len` (RESP2: an array header).
    pub fn set_deferred_set(&mut self, position: usize, len: usize) {
        self.insert_aggregate(position, if self.resp3 { b'~' } else { b'*' }, len);
    }

    /// Inserts `prefix len \r\n` at `position`, moving what follows.
    fn insert_aggregate(&mut self, position: usize, prefix: u8, len: usize) {
        assert!(position <= self.buf.len(), "deferred position {position} past the end {}", self.buf.len());
        let mut header = [0u8; 1 + MAX_U64_DIGITS + 2];
        let mut digits = [0u8; MAX_U64_DIGITS];
        let start = format_u64(len as u64, &mut digits);
        let digit_count = MAX_U64_DIGITS - start;
        header[0] = prefix;
        header[1..1 + digit_count].copy_from_slice(&digits[start..]);
        header[1 + digit_count..3 + digit_count].copy_from_slice(b"\r\n");
        let header = &header[..3 + digit_count];
        let old_len = self.buf.len();
        self.buf.extend_from_slice(header);
        self.buf.copy_within(position..old_len, position + header.len());
        self.buf[position..position + header.len()].copy_from_slice(header);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `build` against a RESP2 and a RESP3 buffer; returns both outputs.
    fn both(build: impl Fn(&mut ReplyBuf)) -> (Vec<u8>, Vec<u8>) {
        let mut resp2 = ReplyBuf::new(false);
        let mut resp3 = ReplyBuf::new(true);
        build(&mut resp2);
        build(&mut resp3);
        (resp2.buf, resp3.buf)
    }

    fn assert_both(build: impl Fn(&mut ReplyBuf), resp2: &[u8], resp3: &[u8]) {
        let (got2, got3) = both(build);
        assert_eq!(String::from_utf8_lossy(&got2), String::from_utf8_lossy(resp2), "RESP2");
        assert_eq!(got2, resp2, "RESP2 bytes");
        assert_eq!(String::from_utf8_lossy(&got3), String::from_utf8_lossy(resp3), "RESP3");
        assert_eq!(got3, resp3, "RESP3 bytes");
    }

    fn double_text(value: f64) -> String {
        let mut out = Vec::new();
        write_double(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    // ok(): +OK in both protocols.
    #[test]
    fn ok() {
        assert_both(|r| r.ok(), b"+OK\r\n", b"+OK\r\n");
    }

    // simple(): status line from str or bytes; CR/LF become spaces.
    #[test]
    fn simple() {
        assert_both(|r| r.simple("PONG"), b"+PONG\r\n", b"+PONG\r\n");
        assert_both(|r| r.simple(b"a\r\nb"), b"+a  b\r\n", b"+a  b\r\n");
    }

    // error(): "-" + text, CR/LF become spaces, no doubled '-'.
    #[test]
    fn error() {
        assert_both(|r| r.error("ERR syntax error"), b"-ERR syntax error\r\n", b"-ERR syntax error\r\n");
        assert_both(|r| r.error("ERR bad\r\nthing\n"), b"-ERR bad  thing \r\n", b"-ERR bad  thing \r\n");
        assert_both(|r| r.error("-WRONGTYPE x"), b"-WRONGTYPE x\r\n", b"-WRONGTYPE x\r\n");
        assert_both(|r| r.error_bytes(b"ERR \xff"), b"-ERR \xff\r\n", b"-ERR \xff\r\n");
    }

    // int(): ":n" in both protocols, including the i64 extremes.
    #[test]
    fn int() {
        assert_both(|r| r.int(0), b":0\r\n", b":0\r\n");
        assert_both(|r| r.int(-42), b":-42\r\n", b":-42\r\n");
        assert_both(|r| r.int(i64::MAX), b":9223372036854775807\r\n", b":9223372036854775807\r\n");
        assert_both(|r| r.int(i64::MIN), b":-9223372036854775808\r\n", b":-9223372036854775808\r\n");
    }

    #[test]
    fn bulk() {
        assert_both(|r| r.bulk(b"hello"), b"$5\r\nhello\r\n", b"$5\r\nhello\r\n");
        assert_both(|r| r.bulk(b""), b"$0\r\n\r\n", b"$0\r\n\r\n");
        assert_both(|r| r.bulk(b"\r\n\0"), b"$3\r\n\r\n\0\r\n", b"$3\r\n\r\n\0\r\n");
    }

    // bulk_int(): the decimal text as a bulk string.
    #[test]
    fn bulk_int() {
        assert_both(|r| r.bulk_int(12345), b"$5\r\n12345\r\n", b"$5\r\n12345\r\n");
        assert_both(|r| r.bulk_int(-7), b"$2\r\n-7\r\n", b"$2\r\n-7\r\n");
        assert_both(|r| r.bulk_int(i64::MIN), b"$20\r\n-9223372036854775808\r\n", b"$20\r\n-9223372036854775808\r\n");
    }

    // null(): $-1 vs _; null_array(): *-1 vs _.
    #[test]
    fn nulls() {
        assert_both(|r| r.null(), b"$-1\r\n", b"_\r\n");
        assert_both(|r| r.null_array(), b"*-1\r\n", b"_\r\n");
    }

    // Aggregate headers: array same in both; map doubles its count in RESP2;
    // set and push are plain arrays in RESP2.
    #[test]
    fn aggregates() {
        assert_both(|r| r.array(3), b"*3\r\n", b"*3\r\n");
        assert_both(|r| r.array(0), b"*0\r\n", b"*0\r\n");
        assert_both(|r| r.map(2), b"*4\r\n", b"%2\r\n");
        assert_both(|r| r.set(5), b"*5\r\n", b"~5\r\n");
        assert_both(|r| r.push(3), b"*3\r\n", b">3\r\n");
    }

    // A map with nested values encodes as Redis does (HELLO-like shape).
    #[test]
    fn nested_map() {
        assert_both(
            |r| {
                r.map(2);
                r.bulk(b"proto");
                r.int(3);
                r.bulk(b"modules");
                r.array(0);
            },
            b"*4\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n",
            b"%2\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n",
        );
    }

    // double(): RESP3 ",text"; RESP2 the text as a bulk; inf spelled out.
    #[test]
    fn double() {
        assert_both(|r| r.double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n");
        assert_both(|r| r.double(0.1), b"$19\r\n0.10000000000000001\r\n", b",0.10000000000000001\r\n");
        assert_both(|r| r.double(f64::INFINITY), b"$3\r\ninf\r\n", b",inf\r\n");
        assert_both(|r| r.double(f64::NEG_INFINITY), b"$4\r\n-inf\r\n", b",-inf\r\n");
        assert_both(|r| r.double(1e20), b"$5\r\n1e+20\r\n", b",1e+20\r\n");
    }

    // %.17g: 17 significant digits, trailing zeros stripped, exponent form
    // below 1e-4 and from 1e17, at least two exponent digits.
    #[test]
    fn double_g17_format() {
        let cases: &[(f64, &str)] = &[
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (1e20, "1e+20"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-2.0, "-2"),
            (100.0, "100"),
            (3.0e16, "30000000000000000"),
            (1e17, "1e+17"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (1.0 / 3.0, "0.33333333333333331"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "4.9406564584124654e-324"),
            (1e100, "1e+100"),
            (1e300, "1.0000000000000001e+300"),
            (1e16, "10000000000000000"),
            (9007199254740992.0, "9007199254740992"),
            (-42.0, "-42"),
            // Exact ties at the 18th digit (1000000000000000.25 and .75):
            // glibc rounds half to even.
            (4_000_000_000_000_001.0 / 4.0, "1000000000000000.2"),
            (4_000_000_000_000_003.0 / 4.0, "1000000000000000.8"),
            (f64::NAN, "nan"),
            (-f64::NAN, "-nan"),
        ];
        for &(value, text) in cases {
            assert_eq!(double_text(value), text, "{value:e}");
        }
    }

    // write_double agrees byte for byte with glibc's snprintf("%.17g") on
    // special values and a million pseudo-random bit patterns.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn double_matches_glibc_printf() {
        use std::ffi::{c_char, c_int};
        unsafe extern "C" {
            fn snprintf(buf: *mut c_char, size: usize, format: *const c_char, ...) -> c_int;
        }
        fn glibc(value: f64) -> String {
            let mut buf = [0u8; 64];
            // SAFETY: `buf` is writable for `buf.len()` bytes, the format is
            // a NUL-terminated literal whose one conversion takes a double,
            // and snprintf writes at most `size` bytes including the NUL.
            let written = unsafe { snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.17g".as_ptr(), value) };
            let written = usize::try_from(written).expect("snprintf succeeded");
            assert!(written < buf.len());
            String::from_utf8(buf[..written].to_vec()).unwrap()
        }
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            0.1,
            1.5,
            1e20,
            1e16,
            1e17,
            9.999999999999999e16,
            99999999999999999.0,
            0.0001,
            0.00009999999999999999,
            1e-5,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::EPSILON,
            f64::NAN,
            -f64::NAN,
            0.5,
            2.5,
            1e300,
            123.456,
        ];
        // Whole numbers around the fast path's bound and digit counts.
        for exponent in 0..=17 {
            let power = 10f64.powi(exponent);
            values.extend([power, power - 1.0, power + 1.0, -power, 3.0 * power, 99999999999999984.0]);
        }
        // Ties at the 18th significant digit: k/4 with k odd near 2^52.
        for k in (4_000_000_000_000_001u64..4_000_000_000_000_201).step_by(2) {
            values.push(k as f64 / 4.0);
        }
        let mut seed = 0x1319_8A2E_0370_7344u64;
        for _ in 0..1_000_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let value = f64::from_bits(seed);
            // Random NaN payloads: glibc prints them all as "nan"/"-nan" too,
            // but one of each (above) is enough.
            if !value.is_nan() {
                values.push(value);
            }
            // Also short decimals, which hit the fixed form and trailing zeros.
            values.push((seed % 2_000_000) as f64 / 1000.0 - 1000.0);
        }
        for value in values {
            assert_eq!(double_text(value), glibc(value), "bits {:#x}", value.to_bits());
        }
    }

    // bool(): #t/#f vs :1/:0.
    #[test]
    fn bool() {
        assert_both(|r| r.bool(true), b":1\r\n", b"#t\r\n");
        assert_both(|r| r.bool(false), b":0\r\n", b"#f\r\n");
    }

    // verbatim(): RESP3 "=len\r\nfmt:text", length counting "fmt:"; RESP2 a
    // bulk of the text alone.
    #[test]
    fn verbatim() {
        assert_both(|r| r.verbatim("txt", b"Some string"), b"$11\r\nSome string\r\n", b"=15\r\ntxt:Some string\r\n");
        assert_both(|r| r.verbatim("mkd", b""), b"$0\r\n\r\n", b"=4\r\nmkd:\r\n");
    }

    // A verbatim format other than 3 bytes is a programming error.
    #[test]
    #[should_panic(expected = "verbatim format")]
    fn verbatim_bad_format() {
        ReplyBuf::new(true).verbatim("text", b"x");
    }

    // big_number(): RESP3 "(digits"; RESP2 bulk.
    #[test]
    fn big_number() {
        let digits = b"3492890328409238509324850943850943825024385";
        let mut resp2 = b"$43\r\n".to_vec();
        resp2.extend_from_slice(digits);
        resp2.extend_from_slice(b"\r\n");
        let mut resp3 = b"(".to_vec();
        resp3.extend_from_slice(digits);
        resp3.extend_from_slice(b"\r\n");
        assert_both(|r| r.big_number(digits), &resp2, &resp3);
    }

    // len/is_empty/clear/truncate/as_bytes manage the buffer, not the protocol.
    #[test]
    fn buffer_helpers() {
        let mut r = ReplyBuf::with_capacity(64, true);
        assert!(r.is_empty());
        r.ok();
        let mark = r.len();
        r.int(5);
        assert_eq!(r.len(), 9);
        r.truncate(mark);
        assert_eq!(r.as_bytes(), b"+OK\r\n");
        r.clear();
        assert!(r.is_empty());
        assert!(r.resp3);
        assert!(r.buf.capacity() >= 64);
    }

    // Deferred array: the header is inserted at the reserved position, before
    // the elements written after it, and after what came before.
    #[test]
    fn deferred_array() {
        assert_both(
            |r| {
                r.ok();
                let slot = r.deferred_len();
                for i in 0..12 {
                    r.int(i);
                }
                r.set_deferred_array(slot, 12);
                r.null();
            },
            b"+OK\r\n*12\r\n:0\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n:6\r\n:7\r\n:8\r\n:9\r\n:10\r\n:11\r\n$-1\r\n",
            b"+OK\r\n*12\r\n:0\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n:6\r\n:7\r\n:8\r\n:9\r\n:10\r\n:11\r\n_\r\n",
        );
    }

    // Deferred map counts pairs (RESP2 doubles it); deferred set is ~ / *.
    // Nested slots filled innermost first stay correct.
    #[test]
    fn deferred_map_and_set() {
        assert_both(
            |r| {
                let outer = r.deferred_len();
                r.bulk(b"k");
                let inner = r.deferred_len();
                r.bulk(b"a");
                r.bulk(b"b");
                r.set_deferred_set(inner, 2);
                r.set_deferred_map(outer, 1);
            },
            b"*2\r\n$1\r\nk\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n",
            b"%1\r\n$1\r\nk\r\n~2\r\n$1\r\na\r\n$1\r\nb\r\n",
        );
        // An empty deferred aggregate at the end of the buffer.
        assert_both(
            |r| {
                let slot = r.deferred_len();
                r.set_deferred_array(slot, 0);
            },
            b"*0\r\n",
            b"*0\r\n",
        );
    }

    // Filling a slot past the end of the buffer is a programming error.
    #[test]
    #[should_panic(expected = "deferred position")]
    fn deferred_position_past_end() {
        let mut r = ReplyBuf::new(false);
        r.set_deferred_array(1, 0);
    }
}
