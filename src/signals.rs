//! Process signals: SIGTERM and SIGINT shut down gracefully, SIGHUP is ignored.
//!
//! ```text
//!   main, before any thread exists:  block_shutdown_signals()
//!       sets a handler for TERM/INT/HUP (so an inherited SIG_IGN is undone) and blocks
//!       them; every thread spawned later inherits the mask, so no shard thread is ever
//!       interrupted by them mid-syscall
//!   runtime::run, once Globals exist:  spawn_signal_thread(g)
//!       "signals" thread: loop { sigwait(TERM|INT|HUP) }
//!         TERM / INT ─▶ log Redis's "Received SIGTERM scheduling shutdown..." and raise
//!                       g.shutdown; the shard loops drain and exit (exit status 0)
//!         HUP        ─▶ logged and ignored (Darter writes no log file to reopen)
//! ```
//!
//! Non-goals: Redis's second-signal "force exit" and its `shutdown-on-sig*` options
//! (stored by CONFIG, not acted on): Darter has no snapshot to save on the way out.

use std::sync::Arc;

use crate::shard::Globals;

/// The signals the signal thread handles.
const HANDLED: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Never runs while the signals are blocked everywhere; installed only so that the
/// disposition is not SIG_IGN (a child spawned with SIGINT ignored must still stop on
/// it: POSIX lets an ignored signal be discarded even while blocked).
extern "C" fn noop_handler(_: libc::c_int) {}

fn handled_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill the live local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in HANDLED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Sets the dispositions and blocks SIGTERM, SIGINT and SIGHUP in the calling thread.
/// Call from `main` before any other thread is spawned: threads inherit the mask.
pub fn block_shutdown_signals() {
    let set = handled_set();
    // SAFETY: sigaction with a zeroed struct, a valid handler address and an empty
    // mask; pthread_sigmask on a fully initialised set. No other thread exists yet.
    unsafe {
        for s in HANDLED {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = noop_handler as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(s, &sa, std::ptr::null_mut());
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Starts the thread that waits for the blocked signals and acts on them.
pub fn spawn_signal_thread(g: Arc<Globals>) -> std::io::Result<()> {
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let set = handled_set();
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: waits on a fully initialised set; writes the live local `sig`.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            match sig {
                libc::SIGTERM | libc::SIGINT => {
                    let name = if sig == libc::SIGTERM { "SIGTERM" } else { "SIGINT" };
                    log::warn!("Received {name} scheduling shutdown...");
                    crate::runtime::request_shutdown(&g);
                }
                _ => log::info!("Received SIGHUP, ignored"),
            }
        }
    })?;
    Ok(())
}
