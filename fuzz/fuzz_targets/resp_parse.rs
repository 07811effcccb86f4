//! Fuzz target for `darter::resp::parse`.
//!
//! Input layout: two control bytes choose the limits (and a split point),
//! the rest is fed to the parser the way a connection does: parse, consume,
//! repeat until `Incomplete` or `Error`. Besides "no panic", it checks:
//!
//! * `Complete`: 0 < consumed <= input; multibulk args lie inside the consumed
//!   bytes and respect the limits; parsing exactly the consumed bytes gives the
//!   same result; inline args equal a literal port of Redis's `sdssplitargs`;
//!   every shorter prefix is `Incomplete` or a `too big` error.
//! * `Incomplete`: `need` is 0 or more than the input; a shorter prefix is
//!   also `Incomplete` (or a `too big` error); an inline request has no `\n`
//!   yet.
//! * `Error`: the reply is one `-ERR Protocol error: ...\r\n` line; `too big`
//!   errors only once more than `max_inline_len` bytes wait.
//!
//! The inline oracle is the library's `resp::reference_split` (feature
//! `oracle`), a line-by-line port of the C original, the same one the unit
//! tests of `resp.rs` use; it is written independently of the optimised
//! `split_args`, so a divergence between them shows up here.
//!
//! Run: `cargo +nightly fuzz run resp_parse -- -max_total_time=120`.

#![no_main]

use bumpalo::Bump;
use darter::resp::{Limits, Parsed, ProtocolError, parse, reference_split};
use libfuzzer_sys::fuzz_target;

/// Pattern of the errors that depend on how much input has arrived.
macro_rules! TOO_BIG {
    () => {
        ProtocolError::TooBigInlineRequest
            | ProtocolError::TooBigMbulkCountString
            | ProtocolError::TooBigBulkCountString
    };
}

const INLINE_LIMITS: [usize; 8] = [0, 1, 2, 5, 16, 64, 1024, 64 * 1024];
const BULK_LIMITS: [usize; 4] = [0, 3, 16384, usize::MAX];
const MULTIBULK_LIMITS: [usize; 8] = [0, 1, 2, 3, 10, 1024, i32::MAX as usize, usize::MAX];

fuzz_target!(|data: &[u8]| {
    let &[first, second, ref input @ ..] = data else {
        return;
    };
    let limits = Limits {
        authenticated: first & 1 == 0,
        max_inline_len: INLINE_LIMITS[usize::from(first >> 1) & 7],
        max_bulk_len: BULK_LIMITS[usize::from(first >> 4) & 3],
        max_multibulk_len: MULTIBULK_LIMITS[usize::from(second) & 7],
    };
    let split_selector = usize::from(second >> 3);
    let mut arena = Bump::new();
    let mut pos = 0;
    while pos < input.len() {
        let rest = &input[pos..];
        let consumed = match parse(rest, &arena, &limits) {
            Parsed::Complete { args, consumed } => {
                let args: Vec<&[u8]> = args.iter().copied().collect();
                check_complete(rest, &args, consumed, &limits, split_selector);
                consumed
            }
            Parsed::Incomplete { need } => {
                check_incomplete(rest, need, &limits);
                break;
            }
            Parsed::Error(error) => {
                check_error(rest, error, &limits);
                break;
            }
        };
        pos += consumed;
        arena.reset();
    }
});

fn check_complete(
    rest: &[u8],
    args: &[&[u8]],
    consumed: usize,
    limits: &Limits,
    split_selector: usize,
) {
    assert!(consumed > 0, "Complete made no progress");
    assert!(
        consumed <= rest.len(),
        "consumed {consumed} > len {}",
        rest.len()
    );
    let taken = &rest[..consumed];

    // Parsing exactly the consumed bytes gives the same command.
    let arena = Bump::new();
    match parse(taken, &arena, limits) {
        Parsed::Complete {
            args: again,
            consumed: again_consumed,
        } => {
            assert_eq!(again_consumed, consumed);
            assert!(
                again.iter().eq(args.iter()),
                "args differ when reparsed from the consumed bytes"
            );
        }
        other => panic!("consumed bytes alone give {other:?}"),
    }

    if rest[0] == b'*' {
        let range = taken.as_ptr_range();
        let total: usize = args.iter().map(|arg| arg.len()).sum();
        assert!(total <= consumed);
        assert!(args.len() <= limits.max_multibulk_len);
        for arg in args {
            assert!(
                arg.is_empty()
                    || (range.contains(&arg.as_ptr()) && arg.as_ptr_range().end <= range.end)
            );
            assert!(arg.len() <= limits.max_bulk_len);
            if !limits.authenticated {
                assert!(arg.len() <= 16384);
            }
        }
        if !limits.authenticated {
            assert!(args.len() <= 10);
        }
    } else {
        // One line: the first '\n' is the last consumed byte.
        let newline = taken.iter().position(|&b| b == b'\n');
        assert_eq!(newline, Some(consumed - 1));
        let mut line = &taken[..consumed - 1];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        let expected = reference_split(line).expect("Complete inline line must split");
        assert!(
            expected.iter().map(Vec::as_slice).eq(args.iter().copied()),
            "inline split differs from sdssplitargs"
        );
    }

    // Shorter prefixes are not complete: they wait, or (Redis reads the same
    // way) fail because too much is waiting without a terminator.
    for prefix_len in [consumed - 1, split_selector % consumed] {
        match parse(&rest[..prefix_len], &arena, limits) {
            Parsed::Incomplete { .. } => {}
            Parsed::Error(TOO_BIG!()) => {}
            other => panic!("prefix {prefix_len} of a {consumed}-byte command gives {other:?}"),
        }
    }
}

fn check_incomplete(rest: &[u8], need: usize, limits: &Limits) {
    assert!(
        need == 0 || need > rest.len(),
        "need {need} but {} bytes are there",
        rest.len()
    );
    if rest[0] != b'*' {
        assert!(!rest.contains(&b'\n'));
        assert!(rest.len() <= limits.max_inline_len);
    }
    let arena = Bump::new();
    let half = &rest[..rest.len() / 2];
    assert!(
        matches!(
            parse(half, &arena, limits),
            Parsed::Incomplete { .. } | Parsed::Error(TOO_BIG!())
        ),
        "a prefix of an incomplete request must be incomplete"
    );
}

fn check_error(rest: &[u8], error: ProtocolError, limits: &Limits) {
    let mut reply = Vec::new();
    error.write_reply(&mut reply);
    assert!(reply.starts_with(b"-ERR Protocol error: "));
    assert!(reply.ends_with(b"\r\n"));
    let body = &reply[..reply.len() - 2];
    assert!(!body.contains(&b'\r') && !body.contains(&b'\n'));
    assert!(!error.to_string().is_empty());
    if matches!(error, TOO_BIG!()) {
        assert!(rest.len() > limits.max_inline_len);
    }
    if error == ProtocolError::UnbalancedQuotes {
        assert_ne!(rest[0], b'*');
    }
}
