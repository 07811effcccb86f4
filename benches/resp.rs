//! Throughput of the RESP request parser and the reply builder, in commands
//! (or replies) per second.
//!
//! * `resp_parse/set_pipeline_16`: 16 pipelined `SET key:000123 <32-byte value>`
//!   multibulk commands parsed from one buffer, arena reset per batch.
//! * `resp_parse/get_pipeline_16`: 16 pipelined `GET key:000123`.
//! * `resp_parse/inline_ping_16`: 16 pipelined inline `PING\r\n`.
//! * `reply/bulk_32B_16`, `reply/int_16`, `reply/double_16`: 16 replies
//!   appended to a cleared RESP2 buffer.
//!
//! Run: `cargo bench --bench resp`.

use std::hint::black_box;
use std::time::Duration;

use bumpalo::Bump;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use darter::reply::ReplyBuf;
use darter::resp::{Limits, Parsed, parse};

const PIPELINE: usize = 16;
const VALUE: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

fn set_pipeline() -> Vec<u8> {
    let mut buf = Vec::new();
    for i in 0..PIPELINE {
        buf.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n$10\r\nkey:{:06}\r\n$32\r\n", 123 + i).as_bytes());
        buf.extend_from_slice(VALUE);
        buf.extend_from_slice(b"\r\n");
    }
    buf
}

fn get_pipeline() -> Vec<u8> {
    let mut buf = Vec::new();
    for i in 0..PIPELINE {
        buf.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n$10\r\nkey:{:06}\r\n", 123 + i).as_bytes());
    }
    buf
}

fn inline_ping_pipeline() -> Vec<u8> {
    b"PING\r\n".repeat(PIPELINE)
}

/// Parses every command in `buf` the way a connection would; returns the
/// number of arguments seen so the work cannot be optimised away.
fn parse_all(buf: &[u8], arena: &Bump, limits: &Limits) -> usize {
    let mut pos = 0;
    let mut args_seen = 0;
    while pos < buf.len() {
        match parse(&buf[pos..], arena, limits) {
            Parsed::Complete { args, consumed } => {
                args_seen += args.len();
                pos += consumed;
            }
            other => panic!("benchmark input must parse whole: {other:?}"),
        }
    }
    args_seen
}

fn bench_parse(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("resp_parse");
    group.throughput(Throughput::Elements(PIPELINE as u64));
    for (name, buf, expected_args) in [
        ("set_pipeline_16", set_pipeline(), 3 * PIPELINE),
        ("get_pipeline_16", get_pipeline(), 2 * PIPELINE),
        ("inline_ping_16", inline_ping_pipeline(), PIPELINE),
    ] {
        let mut arena = Bump::with_capacity(64 * 1024);
        assert_eq!(parse_all(&buf, &arena, &limits), expected_args);
        arena.reset();
        group.bench_function(name, |b| {
            b.iter(|| {
                let seen = parse_all(black_box(&buf), &arena, &limits);
                arena.reset();
                seen
            })
        });
    }
    group.finish();
}

fn bench_reply(c: &mut Criterion) {
    let mut group = c.benchmark_group("reply");
    group.throughput(Throughput::Elements(PIPELINE as u64));
    let mut reply = ReplyBuf::with_capacity(64 * 1024, false);
    group.bench_function("bulk_32B_16", |b| {
        b.iter(|| {
            reply.clear();
            for _ in 0..PIPELINE {
                reply.bulk(black_box(VALUE));
            }
            reply.len()
        })
    });
    group.bench_function("int_16", |b| {
        b.iter(|| {
            reply.clear();
            for i in 0..PIPELINE as i64 {
                reply.int(black_box(1_234_567 * i));
            }
            reply.len()
        })
    });
    group.bench_function("double_16", |b| {
        b.iter(|| {
            reply.clear();
            for i in 0..PIPELINE {
                reply.double(black_box(1.5 + i as f64 / 7.0));
            }
            reply.len()
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_parse, bench_reply
}
criterion_main!(benches);
