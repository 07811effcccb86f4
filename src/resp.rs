//! RESP request parser: the server side of the Redis protocol.
//!
//! Owns the translation of a connection's input bytes into one command's
//! argument vector. It is a pure function of `&[u8]`: no socket, no state kept
//! between calls, no allocation outside the caller's `bumpalo` arena. It runs on
//! whichever thread owns the connection, inside the `Parsing` state.
//!
//! ```text
//!  input buffer (owned by the connection)
//!  ┌──────────────────────────────────────────────┬─────────────────┐
//!  │ *3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n    │ *2\r\n$3\r\nGE… │
//!  └──────────────────────────────────────────────┴─────────────────┘
//!  parse(buf) ─► Complete { args: [SET, k, v], consumed: 27 }
//!                      args are slices of buf (multibulk) or of the arena
//!  parse(&buf[27..]) ─► Incomplete { need: 0 }     read more, call again
//! ```
//!
//! The caller keeps calling [`parse`] on the unconsumed tail: `Complete` hands
//! out one command and how many bytes it took, `Incomplete` asks for more input
//! (not an error), `Error` carries the reason the connection must be closed
//! after replying `-ERR Protocol error: <reason>`. A `Complete` with no
//! arguments (`*0`, `*-1`, an empty inline line) is consumed and skipped.
//!
//! Two request forms, chosen by the first byte as Redis does:
//! * **multibulk** (`*`): `*<count>\r\n` then `count` times
//!   `$<len>\r\n<len bytes>\r\n`. Arguments are zero-copy slices of the input.
//! * **inline** (anything else): one line ending in `\n` (a `\r` before it is
//!   dropped), split like Redis's `sdssplitargs`: blanks separate words;
//!   `"..."` understands `\n \r \t \b \a \\ \" \xHH` (any other escaped char
//!   stands for itself); `'...'` understands only `\'`; a closing quote must be
//!   followed by a blank or the end of the line. Words without quotes are
//!   slices of the input; quoted words are unescaped into the arena.
//!
//! # Limits (see [`Limits`]; defaults are Redis 7.0's)
//!
//! | limit | default | Redis name | error |
//! |---|---|---|---|
//! | arguments per multibulk | 2^31-1 | `INT_MAX` in `processMultibulkBuffer` | `invalid multibulk length` |
//! | bytes per argument | 512 MiB | `proto-max-bulk-len` | `invalid bulk length` |
//! | header or inline line without its terminator | 64 KiB | `PROTO_INLINE_MAX_SIZE` | `too big mbulk count string`, `too big bulk count string`, `too big inline request` |
//! | arguments before AUTH | 10 | (hard-coded) | `unauthenticated multibulk length` |
//! | bytes per argument before AUTH | 16384 | (hard-coded) | `unauthenticated bulk length` |
//!
//! The claimed argument count never sizes an allocation beyond
//! [`ARGV_PREALLOC_MAX`] slots; the vector grows with the arguments actually
//! present, so `*2147483647\r\n` costs nothing up front.
//!
//! # Cost
//!
//! Each call re-parses the current command from its first byte, but only its
//! headers: payloads are skipped by length, never scanned. A large argument
//! arriving in many reads therefore costs a few header bytes per read, not
//! O(bytes so far), and the `need` of [`Parsed::Incomplete`] gives a lower
//! bound of the command's size (exact for its last argument), so the caller's
//! last growth step can be exact instead of a power of two. The one case
//! that grows with input is a command with a great many arguments split over
//! many reads: each retry walks all headers received so far (O(arguments) per
//! read); a caller that meets it can retry only after the buffer has grown by
//! a good fraction.
//!
//! # Goals and non-goals
//!
//! Goals: byte-for-byte the same acceptance, argument vectors and error texts as
//! Redis 7.0's `processMultibulkBuffer` / `processInlineBuffer` for the same
//! buffer contents, including their leniencies (the two bytes after a bulk
//! payload and the byte after a header's `\r` are skipped, not checked).
//!
//! Non-goals: RESP3 request types (clients only send arrays of bulks), the
//! query-buffer limit (`client-query-buffer-limit`, the caller's job), the
//! master-client exemptions, and Redis's stalls on NUL bytes: Redis searches
//! header and inline terminators with `strchr`, which stops at a NUL byte, so a
//! NUL inside a header line or an inline line makes Redis wait for more data
//! (then fail with a `too big ...` error). Here terminators are found with
//! `memchr` across NUL bytes. Inside an inline line a NUL ends the line's
//! content, as it does for `sdssplitargs`.

use std::fmt;

use bumpalo::Bump;
use bumpalo::collections::Vec as BumpVec;

use crate::util::parse_i64;

/// Longest header or inline line accepted without its terminator
/// (Redis `PROTO_INLINE_MAX_SIZE`).
pub const PROTO_INLINE_MAX_SIZE: usize = 64 * 1024;
/// Default largest single argument (Redis `proto-max-bulk-len`).
pub const PROTO_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// Largest multibulk count Redis 7.0 accepts (`INT_MAX`).
pub const PROTO_MAX_MULTIBULK_LEN: usize = i32::MAX as usize;
/// Largest multibulk count accepted before the client authenticated.
pub const UNAUTHENTICATED_MAX_MULTIBULK_LEN: i64 = 10;
/// Largest bulk length accepted before the client authenticated.
pub const UNAUTHENTICATED_MAX_BULK_LEN: i64 = 16384;
/// Most argument slots allocated before the arguments are actually seen.
pub const ARGV_PREALLOC_MAX: usize = 1024;
/// Argument slots an inline command starts with (it grows past them).
const INLINE_ARGS_PREALLOC: usize = 4;
/// The fewest bytes an argument takes: `$0\r\n` and the two bytes after the
/// empty payload.
pub const MIN_ARG_BYTES: u64 = 6;
/// What precedes [`ProtocolError`]'s text in the error reply.
pub const ERROR_REPLY_PREFIX: &str = "ERR Protocol error: ";

/// Per-connection parser limits. `Default` gives Redis 7.0's defaults for a
/// server without `requirepass` (so `authenticated` is `true`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest `*<count>` accepted; more is `invalid multibulk length`.
    pub max_multibulk_len: usize,
    /// Largest `$<len>` accepted (`proto-max-bulk-len`); more is
    /// `invalid bulk length`.
    pub max_bulk_len: usize,
    /// Longest header or inline line allowed to sit in the buffer without its
    /// terminator (`PROTO_INLINE_MAX_SIZE`).
    pub max_inline_len: usize,
    /// `false` while the connection still has to AUTH: then at most
    /// [`UNAUTHENTICATED_MAX_MULTIBULK_LEN`] arguments of at most
    /// [`UNAUTHENTICATED_MAX_BULK_LEN`] bytes each.
    pub authenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_multibulk_len: PROTO_MAX_MULTIBULK_LEN,
            max_bulk_len: PROTO_MAX_BULK_LEN,
            max_inline_len: PROTO_INLINE_MAX_SIZE,
            authenticated: true,
        }
    }
}

/// Outcome of one [`parse`] call.
#[derive(Debug, PartialEq)]
pub enum Parsed<'a> {
    /// One command. `args` may be empty (`*0`, `*-1`, blank inline line): the
    /// caller skips it. `consumed` (always > 0) bytes of the input are used up.
    Complete { args: BumpVec<'a, &'a [u8]>, consumed: usize },
    /// The command is not all there yet; nothing is consumed. `need` is a
    /// lower bound of the total bytes (from the start of the input) required,
    /// known once the length of the argument being read is known, else 0: that
    /// argument's end, plus [`MIN_ARG_BYTES`] for each argument after it. It is
    /// a claim of the client (`*2147483647` makes it ~12 GB): a caller must not
    /// allocate it up front, only cap its growth with it (so the last step of a
    /// big argument is exact, while a command of many small arguments, whose
    /// `need` is always a few bytes ahead, keeps doubling).
    Incomplete { need: usize },
    /// The input violates the protocol; reply with the error and close.
    Error(ProtocolError),
}

/// Why the input is not a valid request. `Display` gives Redis's text after
/// `-ERR Protocol error: `; [`ProtocolError::write_reply`] the whole reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// `*<count>` is not a number or is above `max_multibulk_len`.
    InvalidMultibulkLength,
    /// `*<count>` above 10 before AUTH.
    UnauthenticatedMultibulkLength,
    /// `$<len>` is not a number, is negative or is above `max_bulk_len`.
    InvalidBulkLength,
    /// `$<len>` above 16384 before AUTH.
    UnauthenticatedBulkLength,
    /// An argument header did not start with `$`; holds the byte found.
    ExpectedDollar(u8),
    /// No `\r` within `max_inline_len` bytes while reading `*<count>`.
    TooBigMbulkCountString,
    /// No `\r` within `max_inline_len` bytes while reading `$<len>`.
    TooBigBulkCountString,
    /// No `\n` within `max_inline_len` bytes of an inline request.
    TooBigInlineRequest,
    /// An inline request has an unclosed quote, or a closing quote followed
    /// by something other than a blank.
    UnbalancedQuotes,
}

impl ProtocolError {
    /// Redis's text, except for the byte and closing quote that follow
    /// `expected '$', got '`.
    fn text_head(self) -> &'static str {
        match self {
            ProtocolError::InvalidMultibulkLength => "invalid multibulk length",
            ProtocolError::UnauthenticatedMultibulkLength => "unauthenticated multibulk length",
            ProtocolError::InvalidBulkLength => "invalid bulk length",
            ProtocolError::UnauthenticatedBulkLength => "unauthenticated bulk length",
            ProtocolError::ExpectedDollar(_) => "expected '$', got '",
            ProtocolError::TooBigMbulkCountString => "too big mbulk count string",
            ProtocolError::TooBigBulkCountString => "too big bulk count string",
            ProtocolError::TooBigInlineRequest => "too big inline request",
            ProtocolError::UnbalancedQuotes => "unbalanced quotes in request",
        }
    }

    /// Appends the complete error reply exactly as Redis 7.0 sends it:
    /// `-ERR Protocol error: <text>\r\n`, the offending byte of
    /// `expected '$', got 'X'` written raw except that `\r` and `\n` become
    /// spaces (Redis's `addReplyErrorFormat` does the same).
    pub fn write_reply(&self, out: &mut Vec<u8>) {
        out.push(b'-');
        out.extend_from_slice(ERROR_REPLY_PREFIX.as_bytes());
        out.extend_from_slice(self.text_head().as_bytes());
        if let ProtocolError::ExpectedDollar(byte) = *self {
            out.push(if byte == b'\r' || byte == b'\n' { b' ' } else { byte });
            out.push(b'\'');
        }
        out.extend_from_slice(b"\r\n");
    }
}

impl fmt::Display for ProtocolError {
    /// Redis's text. For `ExpectedDollar` with a byte above 0x7f the byte is
    /// shown as the Latin-1 character (Redis sends the raw byte, as
    /// [`ProtocolError::write_reply`] does).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text_head())?;
        if let ProtocolError::ExpectedDollar(byte) = *self {
            write!(f, "{}'", char::from(byte))?;
        }
        Ok(())
    }
}

impl std::error::Error for ProtocolError {}

/// Parses the first request in `buf`. See the module docs for the contract.
pub fn parse<'a>(buf: &'a [u8], arena: &'a Bump, limits: &Limits) -> Parsed<'a> {
    match buf.first() {
        None => Parsed::Incomplete { need: 0 },
        Some(b'*') => parse_multibulk(buf, arena, limits),
        Some(_) => parse_inline(buf, arena, limits),
    }
}

/// `value > limit`, for a limit that may exceed `i64::MAX`.
fn exceeds(value: i64, limit: usize) -> bool {
    value > 0 && value as u64 > limit as u64
}

/// A header line (`*<count>` or `$<len>`) starting at some offset.
enum Line {
    /// The line's content, between the type byte and the `\r`, spans
    /// `content_end` (exclusive, absolute); the next line starts at `next`.
    Found { content_end: usize, next: usize },
    /// No `\r` yet, or nothing after it yet.
    Incomplete,
    /// No `\r` and more than `max_inline_len` bytes waiting.
    TooBig,
}

/// Finds the header line starting at `start` the way Redis does: the first
/// `\r` anywhere after `start`, which must not be the last byte; the byte after
/// it is skipped without being checked.
fn header_line(buf: &[u8], start: usize, max_inline_len: usize) -> Line {
    let rest = &buf[start..];
    match memchr::memchr(b'\r', rest) {
        None if rest.len() > max_inline_len => Line::TooBig,
        None => Line::Incomplete,
        Some(offset) if offset + 2 > rest.len() => Line::Incomplete,
        Some(offset) => Line::Found { content_end: start + offset, next: start + offset + 2 },
    }
}

/// Fast path for the usual header: `kind`, 1 to 18 digits forming a valid
/// string2ll number, `\r`, and at least one byte after it. Returns the value
/// and where the next line starts. When it answers, the answer is the one the
/// general path would give: no `\r` can come before the one found, because
/// only `kind` and digits precede it. Anything else (a sign, too many digits,
/// an incomplete line) returns `None` and takes the general path.
#[inline]
fn quick_header(buf: &[u8], start: usize, kind: u8) -> Option<(i64, usize)> {
    let line = buf.get(start..)?;
    // kind, a digit, '\r' and the skipped byte: the shortest complete header.
    if line.len() < 4 || line[0] != kind {
        return None;
    }
    let first = line[1].wrapping_sub(b'0');
    if first > 9 {
        return None;
    }
    if line[2] == b'\r' {
        return Some((i64::from(first), start + 4));
    }
    if first == 0 {
        return None; // a leading zero: string2ll refuses it
    }
    let mut value = i64::from(first);
    let mut end = 2;
    // Digits at line[1..=18] at most: 18 digits cannot overflow i64, and a
    // 19th digit fails the '\r' test below.
    while end <= 18 && end < line.len() {
        let digit = line[end].wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        value = value * 10 + i64::from(digit);
        end += 1;
    }
    // The '\r' and the byte Redis skips after it must both be there.
    if line.get(end) == Some(&b'\r') && line.len() > end + 1 { Some((value, start + end + 2)) } else { None }
}

/// For prefetching: calls `f` with the second argument (the key, for most commands)
/// of each complete multibulk command at the start of `buf`, at most `max` commands,
/// and returns how many commands it looked at. Stops at the first command that is
/// incomplete, inline, has fewer than 2 arguments or anything unusual (what
/// [`quick_header`] does not take). A hint only: [`parse`] still decides everything.
pub fn peek_keys<'a>(buf: &'a [u8], max: usize, mut f: impl FnMut(&'a [u8])) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while n < max {
        let Some((argc, mut p)) = quick_header(buf, pos, b'*') else { break };
        if !(2..=1024).contains(&argc) {
            break;
        }
        let mut key: &'a [u8] = &[];
        for i in 0..argc {
            let Some((len, start)) = quick_header(buf, p, b'$') else { return n };
            let end = start + len as usize;
            if end + 2 > buf.len() {
                return n;
            }
            if i == 1 {
                key = &buf[start..end];
            }
            p = end + 2;
        }
        f(key);
        n += 1;
        pos = p;
    }
    n
}

fn parse_multibulk<'a>(buf: &'a [u8], arena: &'a Bump, limits: &Limits) -> Parsed<'a> {
    let (count, mut pos) = match quick_header(buf, 0, b'*') {
        Some(header) => header,
        None => {
            let (count_end, next) = match header_line(buf, 0, limits.max_inline_len) {
                Line::Found { content_end, next } => (content_end, next),
                Line::Incomplete => return Parsed::Incomplete { need: 0 },
                Line::TooBig => return Parsed::Error(ProtocolError::TooBigMbulkCountString),
            };
            match parse_i64(&buf[1..count_end]) {
                Some(count) => (count, next),
                None => return Parsed::Error(ProtocolError::InvalidMultibulkLength),
            }
        }
    };
    if exceeds(count, limits.max_multibulk_len) {
        return Parsed::Error(ProtocolError::InvalidMultibulkLength);
    }
    if count > UNAUTHENTICATED_MAX_MULTIBULK_LEN && !limits.authenticated {
        return Parsed::Error(ProtocolError::UnauthenticatedMultibulkLength);
    }
    if count <= 0 {
        return Parsed::Complete { args: BumpVec::new_in(arena), consumed: pos };
    }
    // `count` is positive and at most max_multibulk_len, so it fits usize.
    let count = count as usize;
    // On an early return `args` is dropped, and bumpalo takes back the
    // memory of its last allocation, so a retried partial command does not
    // pile up in the arena.
    let mut args = BumpVec::with_capacity_in(count.min(ARGV_PREALLOC_MAX), arena);
    for i in 0..count {
        let (len, payload_start) = match quick_header(buf, pos, b'$') {
            Some(header) => header,
            None => {
                let (len_end, next) = match header_line(buf, pos, limits.max_inline_len) {
                    Line::Found { content_end, next } => (content_end, next),
                    Line::Incomplete => return Parsed::Incomplete { need: 0 },
                    Line::TooBig => return Parsed::Error(ProtocolError::TooBigBulkCountString),
                };
                if buf[pos] != b'$' {
                    return Parsed::Error(ProtocolError::ExpectedDollar(buf[pos]));
                }
                match parse_i64(&buf[pos + 1..len_end]) {
                    Some(len) => (len, next),
                    None => return Parsed::Error(ProtocolError::InvalidBulkLength),
                }
            }
        };
        if len < 0 || exceeds(len, limits.max_bulk_len) {
            return Parsed::Error(ProtocolError::InvalidBulkLength);
        }
        if len > UNAUTHENTICATED_MAX_BULK_LEN && !limits.authenticated {
            return Parsed::Error(ProtocolError::UnauthenticatedBulkLength);
        }
        // Payload plus the two bytes Redis skips after it (meant as \r\n,
        // never checked). u64 arithmetic: len <= i64::MAX cannot overflow it.
        let available = (buf.len() - payload_start) as u64;
        let wanted = len as u64 + 2;
        if available < wanted {
            let later_args = (count - 1 - i) as u64 * MIN_ARG_BYTES;
            let need = (payload_start as u64).saturating_add(wanted).saturating_add(later_args);
            return Parsed::Incomplete { need: usize::try_from(need).unwrap_or(usize::MAX) };
        }
        // wanted <= available, so both fit usize.
        let payload_end = payload_start + len as usize;
        args.push(&buf[payload_start..payload_end]);
        pos = payload_end + 2;
    }
    Parsed::Complete { args, consumed: pos }
}

fn parse_inline<'a>(buf: &'a [u8], arena: &'a Bump, limits: &Limits) -> Parsed<'a> {
    let Some(newline) = memchr::memchr(b'\n', buf) else {
        if buf.len() > limits.max_inline_len {
            return Parsed::Error(ProtocolError::TooBigInlineRequest);
        }
        return Parsed::Incomplete { need: 0 };
    };
    let line_end = if newline > 0 && buf[newline - 1] == b'\r' { newline - 1 } else { newline };
    match split_args(&buf[..line_end], arena) {
        Ok(args) => Parsed::Complete { args, consumed: newline + 1 },
        Err(error) => Parsed::Error(error),
    }
}

/// C's `isspace` in the "C" locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Bytes that stop a plain word in `sdssplitargs`: its blanks (not `\v` or
/// `\f`), NUL, and the quotes that start a quoted section.
const STOPS_PLAIN_WORD: [bool; 256] = {
    let mut table = [false; 256];
    let stops = [b' ', b'\n', b'\r', b'\t', 0, b'"', b'\''];
    let mut index = 0;
    while index < stops.len() {
        table[stops[index] as usize] = true;
        index += 1;
    }
    table
};

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Redis's `sdssplitargs` over one inline line (without its line ending).
fn split_args<'a>(line: &'a [u8], arena: &'a Bump) -> Result<BumpVec<'a, &'a [u8]>, ProtocolError> {
    // sdssplitargs reads a C string: the line's content ends at its first
    // NUL. A byte past the end reads as NUL too, like the C terminator, so
    // every test below treats an embedded NUL as the end.
    let at = |index: usize| line.get(index).copied().unwrap_or(0);
    // Most commands have few words: start with room for some.
    let mut args = BumpVec::with_capacity_in(INLINE_ARGS_PREALLOC, arena);
    let mut pos = 0;
    loop {
        while is_c_space(at(pos)) {
            pos += 1;
        }
        if at(pos) == 0 {
            return Ok(args);
        }
        let word_start = pos;
        while pos < line.len() && !STOPS_PLAIN_WORD[usize::from(line[pos])] {
            pos += 1;
        }
        let quote = at(pos);
        if quote != b'"' && quote != b'\'' {
            // Plain word: a slice of the input. What stopped it (a blank, a
            // NUL or the end) is dealt with by the next round.
            args.push(&line[word_start..pos]);
            continue;
        }
        // A quoted section ends the word: copy the unquoted prefix, then
        // unescape up to the closing quote.
        let mut word = BumpVec::with_capacity_in(pos - word_start + 16, arena);
        word.extend_from_slice(&line[word_start..pos]);
        pos += 1;
        loop {
            let byte = at(pos);
            if byte == 0 {
                return Err(ProtocolError::UnbalancedQuotes);
            }
            if quote == b'"' {
                if byte == b'\\'
                    && at(pos + 1) == b'x'
                    && let (Some(high), Some(low)) = (hex_value(at(pos + 2)), hex_value(at(pos + 3)))
                {
                    word.push(high * 16 + low);
                    pos += 4;
                    continue;
                }
                if byte == b'\\' && at(pos + 1) != 0 {
                    word.push(match at(pos + 1) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    pos += 2;
                    continue;
                }
            } else if byte == b'\\' && at(pos + 1) == b'\'' {
                word.push(b'\'');
                pos += 2;
                continue;
            }
            if byte == quote {
                let after = at(pos + 1);
                if after != 0 && !is_c_space(after) {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                pos += 1;
                break;
            }
            word.push(byte);
            pos += 1;
        }
        args.push(word.into_bump_slice());
    }
}

/// Straight port of Redis 7.0 `sdssplitargs` (C-string semantics: the line
/// ends at its first NUL; always copying); `None` for unbalanced quotes. The
/// oracle for the zero-copy [`split_args`], written line by line after the C
/// rather than after the Rust, so the two can disagree. Built only for the
/// unit tests and for the fuzz crate (feature `oracle`), which both compare
/// the parser with it.
#[cfg(any(test, feature = "oracle"))]
#[doc(hidden)]
pub fn reference_split(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let end = line.iter().position(|&b| b == 0).unwrap_or(line.len());
    let line = &line[..end];
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut p = 0;
    let mut out = Vec::new();
    loop {
        while at(p) != 0 && is_c_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Some(out);
        }
        let (mut inq, mut insq, mut done) = (false, false, false);
        let mut current = Vec::new();
        while !done {
            if inq {
                if at(p) == b'\\'
                    && at(p + 1) == b'x'
                    && hex_value(at(p + 2)).is_some()
                    && hex_value(at(p + 3)).is_some()
                {
                    current.push(hex_value(at(p + 2)).unwrap() * 16 + hex_value(at(p + 3)).unwrap());
                    p += 3;
                } else if at(p) == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    current.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if at(p) == b'"' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if at(p) == 0 {
                    return None;
                } else {
                    current.push(at(p));
                }
            } else if insq {
                if at(p) == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if at(p) == b'\'' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if at(p) == 0 {
                    return None;
                } else {
                    current.push(at(p));
                }
            } else {
                match at(p) {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => current.push(c),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        out.push(current);
    }
}

#[cfg(test)]
mod tests {

    // peek_keys: the second argument of each complete multibulk command, up to
    // `max`; stops at an incomplete, inline or one-argument command.
    #[test]
    fn peek_keys_hints() {
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$3\r\nSET\r\n$2\r\nbc\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n";
        let mut keys: Vec<&[u8]> = Vec::new();
        assert_eq!(peek_keys(buf, 16, |k| keys.push(k)), 2);
        assert_eq!(keys, vec![&b"a"[..], b"bc"]);
        keys.clear();
        assert_eq!(peek_keys(buf, 1, |k| keys.push(k)), 1);
        assert_eq!(keys, vec![&b"a"[..]]);
        for cut in 0..48 {
            let n = peek_keys(&buf[..cut], 16, |_| {});
            assert_eq!(n, usize::from(cut >= 20), "cut {cut}");
        }
        assert_eq!(peek_keys(b"GET a\r\n", 16, |_| panic!("inline")), 0);
        assert_eq!(peek_keys(b"*2\r\n$-1\r\n", 16, |_| panic!("odd")), 0);
    }
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    /// Parses with default limits and returns owned args + consumed.
    fn complete(buf: &[u8]) -> (Vec<Vec<u8>>, usize) {
        complete_with(buf, &limits())
    }

    fn complete_with(buf: &[u8], limits: &Limits) -> (Vec<Vec<u8>>, usize) {
        let arena = Bump::new();
        match parse(buf, &arena, limits) {
            Parsed::Complete { args, consumed } => (args.iter().map(|a| a.to_vec()).collect(), consumed),
            other => panic!("expected Complete for {:?}, got {:?}", String::from_utf8_lossy(buf), other),
        }
    }

    fn incomplete(buf: &[u8]) -> usize {
        let arena = Bump::new();
        match parse(buf, &arena, &limits()) {
            Parsed::Incomplete { need } => need,
            other => panic!("expected Incomplete for {:?}, got {:?}", String::from_utf8_lossy(buf), other),
        }
    }

    fn error_with(buf: &[u8], limits: &Limits) -> ProtocolError {
        let arena = Bump::new();
        match parse(buf, &arena, limits) {
            Parsed::Error(error) => error,
            other => panic!("expected Error for {:?}, got {:?}", String::from_utf8_lossy(buf), other),
        }
    }

    fn error(buf: &[u8]) -> ProtocolError {
        error_with(buf, &limits())
    }

    fn words(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    /// Feeds `buf` through the parse loop a caller would run and returns every
    /// non-empty command, or the error that stopped it.
    fn drain(buf: &[u8], limits: &Limits) -> (Vec<Vec<Vec<u8>>>, Option<ProtocolError>, usize) {
        let mut commands = Vec::new();
        let mut pos = 0;
        let mut arena = Bump::new();
        loop {
            let outcome = match parse(&buf[pos..], &arena, limits) {
                Parsed::Complete { args, consumed } => {
                    assert!(consumed > 0, "Complete must consume");
                    if !args.is_empty() {
                        commands.push(args.iter().map(|a| a.to_vec()).collect());
                    }
                    Some(consumed)
                }
                Parsed::Incomplete { .. } => None,
                Parsed::Error(error) => return (commands, Some(error), pos),
            };
            match outcome {
                Some(consumed) => pos += consumed,
                None => return (commands, None, pos),
            }
            arena.reset();
        }
    }

    // ---- multibulk ----

    // A single multibulk command yields its arguments and consumes exactly it.
    #[test]
    fn multibulk_single_command() {
        let buf = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        assert_eq!(complete(buf), (words(&["SET", "key", "value"]), buf.len()));
    }

    // Multibulk arguments are zero-copy: they point into the input buffer.
    #[test]
    fn multibulk_args_borrow_input() {
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let arena = Bump::new();
        let Parsed::Complete { args, .. } = parse(buf, &arena, &limits()) else { panic!() };
        let range = buf.as_ptr_range();
        for arg in args.iter() {
            assert!(range.contains(&arg.as_ptr()));
        }
    }

    // Pipelined commands are returned one per call, in order, each consuming
    // only its own bytes; inline and multibulk may be mixed.
    #[test]
    fn pipelined_commands() {
        let buf = b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nECHO hi\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n";
        let (commands, error, pos) = drain(buf, &limits());
        assert_eq!(error, None);
        assert_eq!(pos, buf.len());
        assert_eq!(
            commands,
            vec![words(&["PING"]), words(&["GET", "a"]), words(&["ECHO", "hi"]), words(&["ECHO", ""])]
        );
    }

    // Binary data (NUL, CR, LF, '$', '*', high bytes) passes through a bulk
    // argument untouched: only the length matters.
    #[test]
    fn binary_safe_args() {
        let payload: Vec<u8> = (0u8..=255).collect();
        let mut buf = b"*2\r\n$3\r\nSET\r\n$256\r\n".to_vec();
        buf.extend_from_slice(&payload);
        buf.extend_from_slice(b"\r\n");
        let (args, consumed) = complete(&buf);
        assert_eq!(consumed, buf.len());
        assert_eq!(args[1], payload);
        let (args, _) = complete(b"*1\r\n$6\r\n\r\n\0*$\n\r\n");
        assert_eq!(args, vec![b"\r\n\0*$\n".to_vec()]);
    }

    // Every strict prefix of a pipeline is Incomplete or yields only the
    // commands wholly inside it; feeding the pipeline one split at a time
    // produces exactly the commands of parsing it whole.
    #[test]
    fn partial_at_every_split_point() {
        let sample: &[u8] =
            b"*3\r\n$3\r\nSET\r\n$4\r\nkey1\r\n$10\r\n0123456789\r\n*0\r\nPING\r\n*2\r\n$3\r\nGET\r\n$4\r\nkey1\r\n";
        let (whole, error, pos) = drain(sample, &limits());
        assert_eq!(error, None);
        assert_eq!(pos, sample.len());
        assert_eq!(whole.len(), 3);
        for split in 0..sample.len() {
            // Parse the first `split` bytes, then append the rest and resume
            // from what was consumed, like a connection reading twice.
            let (mut first, error, consumed) = drain(&sample[..split], &limits());
            assert_eq!(error, None, "split {split}");
            let (rest, error, pos) = drain(&sample[consumed..], &limits());
            assert_eq!(error, None, "split {split}");
            assert_eq!(consumed + pos, sample.len(), "split {split}");
            first.extend(rest);
            assert_eq!(first, whole, "split {split}");
        }
    }

    // Every strict prefix of one command is Incomplete (nothing consumed).
    #[test]
    fn every_prefix_of_one_command_is_incomplete() {
        let cmd = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
        for split in 0..cmd.len() {
            incomplete(&cmd[..split]);
        }
        assert_eq!(complete(cmd).1, cmd.len());
    }

    // `need` is 0 until the length of the argument being read is known, then
    // the total size of the buffer that argument requires, plus 6 bytes (the
    // shortest argument) for each argument after it.
    #[test]
    fn incomplete_need_estimates() {
        assert_eq!(incomplete(b""), 0);
        assert_eq!(incomplete(b"*2\r"), 0);
        assert_eq!(incomplete(b"*2\r\n$3\r\nGET\r\n$100"), 0);
        // 19 bytes before the payload + 100 payload + 2.
        assert_eq!(incomplete(b"*2\r\n$3\r\nGET\r\n$100\r\n"), 19 + 100 + 2);
        assert_eq!(incomplete(b"*2\r\n$3\r\nGET\r\n$100\r\nabc"), 19 + 100 + 2);
        // The trailing CRLF of a payload is part of the need.
        assert_eq!(incomplete(b"*1\r\n$3\r\nGET"), 13);
        assert_eq!(incomplete(b"*1\r\n$3\r\nGET\r"), 13);
        // A big argument: the need lets the caller size the buffer once.
        let buf = b"*1\r\n$536870912\r\n";
        assert_eq!(incomplete(buf), buf.len() + 536870912 + 2);
        // Not the last argument: 17 bytes before the payload, 3 + 2, and at
        // least 6 for the one after it.
        assert_eq!(incomplete(b"*3\r\n$3\r\nSET\r\n$3\r\nke"), 17 + 3 + 2 + 6);
        // A claimed two billion arguments: a big lower bound, never allocated.
        assert_eq!(incomplete(b"*2147483647\r\n$1\r\n"), 13 + 4 + 1 + 2 + 6 * (i32::MAX as usize - 1));
    }

    // A huge claimed count allocates no more than ARGV_PREALLOC_MAX slots up
    // front; the arguments actually present are still parsed.
    #[test]
    fn huge_count_does_not_preallocate() {
        let arena = Bump::new();
        let buf = b"*2147483647\r\n$1\r\na\r\n";
        assert!(matches!(parse(buf, &arena, &limits()), Parsed::Incomplete { need: 0 }));
        assert!(arena.allocated_bytes() < 64 * 1024);
    }

    // `*0` and `*-1` (and any count <= 0) are consumed as an empty command.
    #[test]
    fn empty_and_null_multibulk_are_consumed() {
        assert_eq!(complete(b"*0\r\n"), (vec![], 4));
        assert_eq!(complete(b"*-1\r\n"), (vec![], 5));
        assert_eq!(complete(b"*-5\r\nPING\r\n"), (vec![], 5));
    }

    // Redis skips the byte after a header's '\r' and the two bytes after a
    // payload without checking that they are "\n" / "\r\n".
    #[test]
    fn terminators_are_skipped_not_checked() {
        assert_eq!(complete(b"*1\rX$3\r\nfoo\r\n"), (words(&["foo"]), 13));
        assert_eq!(complete(b"*2\r\n$3\r\nfooXY$3\r\nbarZZ"), (words(&["foo", "bar"]), 22));
    }

    // A header's '\r' as the last byte is not enough: the skipped byte must
    // be there too.
    #[test]
    fn header_needs_byte_after_cr() {
        assert_eq!(incomplete(b"*1\r"), 0);
        assert_eq!(incomplete(b"*1\r\n$3\r"), 0);
    }

    // Counts and lengths follow string2ll: no '+', no leading zero, no blank,
    // not empty, no "-0", at most 20 bytes.
    #[test]
    fn multibulk_count_uses_string2ll_rules() {
        for bad in [
            &b"*abc\r\n"[..],
            b"*\r\n",
            b"*+1\r\n",
            b"*01\r\n",
            b"* 1\r\n",
            b"*1 \r\n",
            b"*-0\r\n",
            b"*-\r\n",
            b"*1a\r\n",
        ] {
            assert_eq!(error(bad), ProtocolError::InvalidMultibulkLength, "{:?}", String::from_utf8_lossy(bad));
        }
        for bad in [&b"*1\r\n$abc\r\n"[..], b"*1\r\n$\r\n", b"*1\r\n$+1\r\n", b"*1\r\n$01\r\n", b"*1\r\n$-0\r\n"] {
            assert_eq!(error(bad), ProtocolError::InvalidBulkLength, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    // The header fast path, whenever it answers, answers exactly as the
    // general path (first '\r' anywhere, then string2ll) does.
    #[test]
    fn quick_header_agrees_with_general_path() {
        let alphabet = b"$*0123456789-+\r\nx";
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut answered = 0;
        for _ in 0..300_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 26) as usize;
            let mut state = seed;
            let mut header: Vec<u8> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    alphabet[(state >> 33) as usize % alphabet.len()]
                })
                .collect();
            // Bias towards well-formed headers so the fast path answers often.
            if seed & 1 == 0 && !header.is_empty() {
                header[0] = b'$';
            }
            if let Some((value, next)) = quick_header(&header, 0, b'$') {
                answered += 1;
                let Line::Found { content_end, next: general_next } = header_line(&header, 0, usize::MAX) else {
                    panic!("general path finds no line in {:?}", String::from_utf8_lossy(&header));
                };
                assert_eq!(next, general_next);
                assert_eq!(parse_i64(&header[1..content_end]), Some(value));
            }
        }
        assert!(answered > 1000, "fast path answered only {answered} times");
    }

    // Count above max_multibulk_len (default INT_MAX) is invalid.
    #[test]
    fn multibulk_count_limit() {
        assert_eq!(error(b"*2147483648\r\n"), ProtocolError::InvalidMultibulkLength);
        assert_eq!(error(b"*9223372036854775808\r\n"), ProtocolError::InvalidMultibulkLength);
        assert_eq!(incomplete(b"*2147483647\r\n"), 0);
        let small = Limits { max_multibulk_len: 2, ..limits() };
        assert_eq!(error_with(b"*3\r\n", &small), ProtocolError::InvalidMultibulkLength);
        assert_eq!(complete_with(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n", &small).0, words(&["a", "b"]));
    }

    // Bulk length: negative or above max_bulk_len (512 MiB) is invalid; the
    // limit itself is accepted.
    #[test]
    fn bulk_length_limit() {
        assert_eq!(error(b"*1\r\n$-1\r\n"), ProtocolError::InvalidBulkLength);
        assert_eq!(error(b"*1\r\n$536870913\r\n"), ProtocolError::InvalidBulkLength);
        assert_eq!(error(b"*1\r\n$9223372036854775807\r\n"), ProtocolError::InvalidBulkLength);
        assert!(incomplete(b"*1\r\n$536870912\r\n") > 0);
        let small = Limits { max_bulk_len: 3, ..limits() };
        assert_eq!(error_with(b"*1\r\n$4\r\nabcd\r\n", &small), ProtocolError::InvalidBulkLength);
        assert_eq!(complete_with(b"*1\r\n$3\r\nabc\r\n", &small).0, words(&["abc"]));
    }

    // Before AUTH: more than 10 arguments or more than 16384 bytes in one is
    // refused with Redis's "unauthenticated" texts; up to the limits is fine.
    // The invalid checks come first.
    #[test]
    fn unauthenticated_limits() {
        let unauth = Limits { authenticated: false, ..limits() };
        assert_eq!(error_with(b"*11\r\n", &unauth), ProtocolError::UnauthenticatedMultibulkLength);
        assert_eq!(error_with(b"*1\r\n$16385\r\n", &unauth), ProtocolError::UnauthenticatedBulkLength);
        assert_eq!(error_with(b"*abc\r\n", &unauth), ProtocolError::InvalidMultibulkLength);
        assert_eq!(error_with(b"*1\r\n$536870913\r\n", &unauth), ProtocolError::InvalidBulkLength);
        let mut ten = b"*10\r\n".to_vec();
        for _ in 0..10 {
            ten.extend_from_slice(b"$1\r\nx\r\n");
        }
        assert_eq!(complete_with(&ten, &unauth).0.len(), 10);
        let mut big = b"*1\r\n$16384\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 16384));
        big.extend_from_slice(b"\r\n");
        assert_eq!(complete_with(&big, &unauth).0[0].len(), 16384);
        // *-1 is not above 10: consumed as empty.
        assert_eq!(complete_with(b"*-1\r\n", &unauth), (vec![], 5));
    }

    // A bulk header must start with '$'; the error names the byte found,
    // even a blank or a '\r'. It is only reported once the header line
    // (up to a '\r') is complete.
    #[test]
    fn expected_dollar() {
        assert_eq!(error(b"*1\r\n:3\r\nfoo\r\n"), ProtocolError::ExpectedDollar(b':'));
        assert_eq!(error(b"*2\r\n$1\r\na\r\n*1\r\n"), ProtocolError::ExpectedDollar(b'*'));
        assert_eq!(error(b"*1\r\n\r\n"), ProtocolError::ExpectedDollar(b'\r'));
        assert_eq!(incomplete(b"*1\r\nfoo"), 0);
    }

    // No '\r' within max_inline_len bytes while reading a header: too big
    // count string. At exactly max_inline_len bytes it is still Incomplete.
    #[test]
    fn too_big_count_strings() {
        let tight = Limits { max_inline_len: 8, ..limits() };
        assert_eq!(error_with(b"*123456789", &tight), ProtocolError::TooBigMbulkCountString);
        assert!(matches!(parse(b"*1234567", &Bump::new(), &tight), Parsed::Incomplete { .. }));
        // The bulk header check counts from that header's first byte.
        assert_eq!(error_with(b"*1\r\n$123456789", &tight), ProtocolError::TooBigBulkCountString);
        assert!(matches!(parse(b"*1\r\n$1234567", &Bump::new(), &tight), Parsed::Incomplete { .. }));
        // Default limit: 64 KiB.
        let mut buf = b"*".to_vec();
        buf.extend(std::iter::repeat_n(b'1', PROTO_INLINE_MAX_SIZE));
        assert_eq!(error(&buf), ProtocolError::TooBigMbulkCountString);
        // A '\r' far away still ends the line: then the count is invalid.
        buf.extend_from_slice(b"\r\n");
        assert_eq!(error(&buf), ProtocolError::InvalidMultibulkLength);
    }

    // Error texts are exactly Redis 7.0's, and write_reply frames them.
    #[test]
    fn error_texts() {
        let cases = [
            (ProtocolError::InvalidMultibulkLength, "invalid multibulk length"),
            (ProtocolError::UnauthenticatedMultibulkLength, "unauthenticated multibulk length"),
            (ProtocolError::InvalidBulkLength, "invalid bulk length"),
            (ProtocolError::UnauthenticatedBulkLength, "unauthenticated bulk length"),
            (ProtocolError::ExpectedDollar(b'X'), "expected '$', got 'X'"),
            (ProtocolError::TooBigMbulkCountString, "too big mbulk count string"),
            (ProtocolError::TooBigBulkCountString, "too big bulk count string"),
            (ProtocolError::TooBigInlineRequest, "too big inline request"),
            (ProtocolError::UnbalancedQuotes, "unbalanced quotes in request"),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
            let mut reply = Vec::new();
            error.write_reply(&mut reply);
            assert_eq!(reply, format!("-ERR Protocol error: {text}\r\n").into_bytes());
        }
        // CR/LF in the reported byte become spaces; other bytes stay raw.
        let mut reply = Vec::new();
        ProtocolError::ExpectedDollar(b'\r').write_reply(&mut reply);
        assert_eq!(reply, b"-ERR Protocol error: expected '$', got ' '\r\n");
        reply.clear();
        ProtocolError::ExpectedDollar(0xff).write_reply(&mut reply);
        assert_eq!(reply, b"-ERR Protocol error: expected '$', got '\xff'\r\n");
    }

    // A protocol error after good commands: the good ones are returned first,
    // then the error, with the position of the bad command.
    #[test]
    fn error_after_pipelined_commands() {
        let buf = b"*1\r\n$4\r\nPING\r\n*x\r\n";
        let (commands, error, pos) = drain(buf, &limits());
        assert_eq!(commands, vec![words(&["PING"])]);
        assert_eq!(error, Some(ProtocolError::InvalidMultibulkLength));
        assert_eq!(pos, 14);
    }

    // ---- inline ----

    // Inline words are split on blanks; \r\n or \n ends the line.
    #[test]
    fn inline_basic() {
        assert_eq!(complete(b"PING\r\n"), (words(&["PING"]), 6));
        assert_eq!(complete(b"PING\n"), (words(&["PING"]), 5));
        assert_eq!(complete(b"  SET\tk   v \r\n"), (words(&["SET", "k", "v"]), 14));
        assert_eq!(incomplete(b"PING\r"), 0);
        assert_eq!(incomplete(b"PING"), 0);
    }

    // Unquoted inline words are slices of the input, not copies.
    #[test]
    fn inline_plain_words_borrow_input() {
        let buf = b"SET key value\r\n";
        let arena = Bump::new();
        let Parsed::Complete { args, .. } = parse(buf, &arena, &limits()) else { panic!() };
        let range = buf.as_ptr_range();
        assert!(args.iter().all(|arg| range.contains(&arg.as_ptr())));
    }

    // Empty or blank-only lines are consumed with no arguments.
    #[test]
    fn inline_empty_lines() {
        assert_eq!(complete(b"\r\n"), (vec![], 2));
        assert_eq!(complete(b"\n"), (vec![], 1));
        assert_eq!(complete(b"   \t \r\n"), (vec![], 7));
        assert_eq!(complete(b"\x0b\x0c\r\n"), (vec![], 4));
    }

    // Double quotes: C escapes, \xHH, any other escaped char stands for
    // itself, an invalid \x is a literal 'x'; quoted blanks are kept; an
    // empty quoted word is an (empty) argument.
    #[test]
    fn inline_double_quotes() {
        let (args, _) = complete(b"SET \"a b\" \"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\r\n");
        assert_eq!(args, vec![b"SET".to_vec(), b"a b".to_vec(), b"\n\r\t\x08\x07\\\"q".to_vec()]);
        let (args, _) = complete(b"\"\\x41\\xff\\x0\\xzz\\X41\"\r\n");
        assert_eq!(args, vec![b"A\xffx0xzzX41".to_vec()]);
        assert_eq!(complete(b"\"\" x\r\n").0, vec![b"".to_vec(), b"x".to_vec()]);
        // A quote inside an unquoted word starts a quoted section.
        assert_eq!(complete(b"ab\"c d\"\r\n").0, words(&["abc d"]));
    }

    // Single quotes: only \' is an escape; backslashes are literal.
    #[test]
    fn inline_single_quotes() {
        let (args, _) = complete(b"'it\\'s' 'a\\nb' '\"'\r\n");
        assert_eq!(args, vec![b"it's".to_vec(), b"a\\nb".to_vec(), b"\"".to_vec()]);
    }

    // A closing quote followed by anything but a blank, or a quote never
    // closed, is "unbalanced quotes in request".
    #[test]
    fn inline_unbalanced_quotes() {
        for bad in [
            &b"SET \"foo\r\n"[..],
            b"SET 'foo\r\n",
            b"SET \"foo\"bar\r\n",
            b"SET 'foo'bar\r\n",
            b"SET \"foo\\\"\r\n",
            b"\"\\\r\n",
            b"\"abc\\x4\r\n",
        ] {
            assert_eq!(error(bad), ProtocolError::UnbalancedQuotes, "{:?}", String::from_utf8_lossy(bad));
        }
        // A vertical tab after the closing quote counts as a blank (isspace).
        assert_eq!(complete(b"\"a\"\x0bb\r\n").0, words(&["a", "b"]));
        // ...but it does not end an unquoted word.
        assert_eq!(complete(b"a\x0bb\r\n").0, vec![b"a\x0bb".to_vec()]);
    }

    // Only a '\r' directly before the '\n' is dropped; a '\r' elsewhere ends
    // an unquoted word and is kept inside quotes.
    #[test]
    fn inline_inner_cr() {
        assert_eq!(complete(b"a\rb\r\n").0, words(&["a", "b"]));
        assert_eq!(complete(b"\"a\rb\"\n").0, vec![b"a\rb".to_vec()]);
        // Quote closed right before "\r\n": the \r is the line end, fine.
        assert_eq!(complete(b"\"x\"\r\n").0, words(&["x"]));
    }

    // sdssplitargs reads a C string: a NUL ends the line's content.
    #[test]
    fn inline_nul_ends_content() {
        assert_eq!(complete(b"GET a\0b c\r\n"), (words(&["GET", "a"]), 11));
        assert_eq!(error(b"GET \"a\0\"\r\n"), ProtocolError::UnbalancedQuotes);
    }

    // An inline request with no '\n' within max_inline_len bytes is too big;
    // once the '\n' is there, the line may be any length.
    #[test]
    fn inline_too_big() {
        let tight = Limits { max_inline_len: 4, ..limits() };
        assert_eq!(error_with(b"PINGX", &tight), ProtocolError::TooBigInlineRequest);
        assert!(matches!(parse(b"PING", &Bump::new(), &tight), Parsed::Incomplete { .. }));
        assert_eq!(complete_with(b"PINGPONG\n", &tight).0, words(&["PINGPONG"]));
        let mut buf = vec![b'a'; PROTO_INLINE_MAX_SIZE + 1];
        assert_eq!(error(&buf), ProtocolError::TooBigInlineRequest);
        buf.push(b'\n');
        assert_eq!(complete(&buf).0.len(), 1);
    }

    // The zero-copy splitter agrees with a literal port of sdssplitargs on
    // many pseudo-random lines over a quote-heavy alphabet.
    #[test]
    fn inline_split_matches_reference() {
        let alphabet = b"ab \t\"'\\xF0\r\x0b\0n";
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 12) as usize;
            let mut state = seed;
            let line: Vec<u8> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    alphabet[(state >> 33) as usize % alphabet.len()]
                })
                .collect();
            let arena = Bump::new();
            let ours = split_args(&line, &arena).ok().map(|args| args.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
            assert_eq!(ours, reference_split(&line), "line {:?}", String::from_utf8_lossy(&line));
        }
    }

    // Retrying an incomplete command does not grow the arena: the partial
    // argument vector is handed back to bumpalo when dropped.
    #[test]
    fn incomplete_retries_do_not_leak_arena() {
        let arena = Bump::new();
        let buf = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nval";
        let _ = parse(buf, &arena, &limits());
        let after_first = arena.allocated_bytes();
        for _ in 0..1000 {
            assert!(matches!(parse(buf, &arena, &limits()), Parsed::Incomplete { need: 33 }));
        }
        assert_eq!(arena.allocated_bytes(), after_first);
    }
}
