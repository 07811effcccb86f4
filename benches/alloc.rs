//! Cost of the counting allocator (`darter::alloc::Counting`) over the system one.
//!
//! * `alloc/system/<size>`: `System.alloc` + `System.dealloc` of one block.
//! * `alloc/counting/<size>`: the same through `Counting` (adds two updates of the
//!   thread's own counter: a TLS read, a Relaxed load and a Relaxed store each).
//! * `alloc/sum_slots`: `alloc::net_allocated()`, what INFO and the maxmemory check's
//!   exact path pay (here with the few slots the bench process registered).
//!
//! The bench binary keeps the system allocator as its global one; both sides are
//! called directly. Run with `cargo bench --bench alloc`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use darter::alloc::{Counting, net_allocated};

fn pair<A: GlobalAlloc>(a: &A, layout: Layout) {
    // SAFETY: a valid non-zero layout; the block is freed once with the same layout.
    unsafe {
        let p = a.alloc(layout);
        black_box(p);
        a.dealloc(p, layout);
    }
}

fn alloc_free(c: &mut Criterion) {
    let mut group = c.benchmark_group("alloc");
    for size in [32usize, 1024] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        group.bench_function(format!("system/{size}"), |b| b.iter(|| pair(&System, black_box(layout))));
        group.bench_function(format!("counting/{size}"), |b| b.iter(|| pair(&Counting, black_box(layout))));
    }
    group.bench_function("sum_slots", |b| b.iter(|| black_box(net_allocated())));
    group.finish();
}

criterion_group!(benches, alloc_free);
criterion_main!(benches);
