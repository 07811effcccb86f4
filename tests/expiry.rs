//! Active expiry against the real binary: a million keys with a 1 s TTL that no
//! client touches are gone within 10 s, used_memory returns to where it started, and
//! a client talking to the server meanwhile sees a p99 latency under 2 ms (the
//! expiry work runs in ~1 ms time boxes on each thread's timer).
//!
//! This binary holds one test, so nothing else of this crate runs beside it. The
//! server runs one thread, so on a 2-core machine the client has a core of its own
//! (with two server threads, a busy machine's scheduling shows in the p99).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{RawConn, Server, info_field, load_with, used_memory};

fn dbsize(c: &mut RawConn) -> i64 {
    c.cmd_resp(&["DBSIZE"]).as_int().expect("DBSIZE is an integer")
}

#[test]
fn million_keys_with_ttl_expire_in_the_background() {
    // Everything but the latency bound is checked on every run. A p99 over the bound is
    // measured once more with a fresh server: on a shared VM a burst of other work can
    // land in the few seconds the keys take to expire (seen: an idle p99 of 0.75 ms and
    // a p99 of 4 ms in one run, 0.1 ms and 0.5 ms in the next ten). A server whose
    // expiry work stalls requests misses the bound both times.
    let Err(first) = expire_million_once() else { return };
    eprintln!("expiry: over the bound ({first}); measuring again");
    if let Err(second) = expire_million_once() {
        panic!("{second} (first run: {first})");
    }
}

/// One run of the scenario; `Err` carries the p99 over the bound (all other checks
/// panic).
fn expire_million_once() -> Result<(), String> {
    const N: usize = 1_000_000;
    let s = Server::darter(&["--proactor_threads", "1"]);
    let mut c = s.raw();
    c.cmd(&["SET", "persistent", "here"]);
    let mut p = s.raw();
    p.cmd(&["GET", "persistent"]);
    let baseline = used_memory(&mut c);

    // A client that keeps reading a key (one request at a time, ~2000 a second) and
    // records every latency, from before the load until the probe is stopped.
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut samples: Vec<(Instant, Duration)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = p.cmd(&["GET", "persistent"]);
                samples.push((t, t.elapsed()));
                assert_eq!(r, b"$4\r\nhere\r\n");
                std::thread::sleep(Duration::from_micros(500));
            }
            samples
        })
    };

    // One quiet second first: the probe's latency on this machine with no expiry work,
    // the noise floor the bound below allows for (a shared or loaded machine's
    // scheduling is not the server's doing).
    std::thread::sleep(Duration::from_secs(1));
    let load_start = Instant::now();
    let mut loader = s.raw();
    load_with(&mut loader, N, 16, &["PX", "1000"]);
    drop(loader);
    let loaded = Instant::now();

    // Everything is due one second after it was set; give it 10 s from the end of
    // the load (the first keys were due long before).
    let deadline = loaded + Duration::from_secs(10);
    let mut size = dbsize(&mut c);
    while size > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        size = dbsize(&mut c);
    }
    let emptied = loaded.elapsed();
    assert_eq!(size, 1, "keys left {emptied:?} after the load");
    // "Back at the baseline" allows SLACK bytes: reusable scratch buffers (the expiry
    // step's key list, the slab of connection slots) keep their capacity; the tables,
    // keys and values are all returned.
    const SLACK: i64 = 64 * 1024;
    let mut used = used_memory(&mut c);
    while used > baseline + SLACK && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        used = used_memory(&mut c);
    }
    stop.store(true, Ordering::Relaxed);
    let samples = probe.join().expect("probe thread");

    // Memory back at the baseline (the freed tables included).
    assert!(used <= baseline + SLACK, "used_memory {used} > baseline {baseline} after {:?}", loaded.elapsed());
    let expired: u64 = info_field(&mut c, "stats", "expired_keys").parse().unwrap();
    assert_eq!(expired, N as u64);

    // The probe's latencies while the keys were expiring (from the end of the load).
    let p99_of = |from: Instant, to: Instant| {
        let mut v: Vec<Duration> = samples.iter().filter(|(t, _)| *t >= from && *t < to).map(|&(_, d)| d).collect();
        assert!(v.len() > 100, "only {} probe samples", v.len());
        v.sort();
        (v[v.len() * 99 / 100], *v.last().unwrap(), v.len())
    };
    let (idle_p99, _, _) = p99_of(load_start - Duration::from_secs(1), load_start);
    let (p99, max, n) = p99_of(loaded, Instant::now());
    eprintln!(
        "expiry: {N} keys gone {emptied:?} after the load; used_memory {used} (baseline {baseline}); \
         probe p99 {p99:?} max {max:?} over {n} requests (idle p99 {idle_p99:?})"
    );
    // The bound is a p99 under 2 ms; on a noisy machine, on top of its idle p99.
    if p99 < Duration::from_millis(2) + idle_p99 {
        Ok(())
    } else {
        Err(format!("p99 {p99:?} (max {max:?}, idle p99 {idle_p99:?})"))
    }
}
