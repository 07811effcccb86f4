//! The `darter` binary: parses flags, sets up logging, runs the shard threads.

/// Counts every heap byte for used_memory and maxmemory (see `darter::alloc`).
#[global_allocator]
static ALLOC: darter::alloc::Counting = darter::alloc::Counting;

fn main() {
    darter::alloc::tune_allocator();
    let cfg = match darter::config::Config::from_args(std::env::args()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let level = match cfg.loglevel.as_str() {
        "debug" => "debug",
        "verbose" => "info",
        "notice" => "info",
        _ => "warn",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    // SAFETY: ignoring SIGPIPE before any thread starts; writes to closed sockets then
    // fail with EPIPE instead of killing the process.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    log::info!("darter starting on {}:{} with {} threads", cfg.bind, cfg.port, cfg.threads());
    if let Err(e) = darter::server::run(cfg) {
        eprintln!("darter: {e}");
        std::process::exit(1);
    }
}
