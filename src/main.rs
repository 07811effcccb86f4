//! The `darter` binary: parses flags, sets up logging and signals, fits the open file
//! limit to maxclients, runs the shard threads.

/// Counts every heap byte for used_memory and maxmemory (see `darter::alloc`).
#[global_allocator]
static ALLOC: darter::alloc::Counting = darter::alloc::Counting;

fn main() {
    // Before any thread exists, so every thread inherits the blocked mask.
    darter::signals::block_shutdown_signals();
    darter::alloc::tune_allocator();
    let mut cfg = match darter::config::Config::from_args(std::env::args()) {
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
    fit_open_files_limit(&mut cfg);
    log::info!("darter starting on {}:{} with {} threads", cfg.bind, cfg.port, cfg.threads());
    if let Err(e) = darter::runtime::run(cfg) {
        eprintln!("darter: {e}");
        std::process::exit(1);
    }
    log::warn!("Darter is now ready to exit, bye bye...");
}

/// Redis's start-up `adjustOpenFilesLimit`, with its log lines: raise RLIMIT_NOFILE to
/// hold maxclients plus the reserve, else lower maxclients, else exit 1.
fn fit_open_files_limit(cfg: &mut darter::config::Config) {
    use darter::net::{FdLimit, adjust_open_files_limit, reserved_fds};
    let reserved = reserved_fds(cfg.threads(), cfg.bind.split_whitespace().count());
    match adjust_open_files_limit(cfg.maxclients, reserved) {
        FdLimit::Fits { raised: None } => {}
        FdLimit::Fits { raised: Some((from, to)) } => {
            log::info!("Increased maximum number of open files to {to} (it was originally set to {from}).")
        }
        FdLimit::Reduced { maxclients, wanted, limit, os_error } => {
            log::warn!(
                "You requested maxclients of {} requiring at least {wanted} max file descriptors.",
                cfg.maxclients
            );
            log::warn!("Server can't set maximum open files to {wanted} because of OS error: {os_error}.");
            log::warn!(
                "Current maximum open files is {limit}. maxclients has been reduced to {maxclients} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
            );
            cfg.maxclients = maxclients;
        }
        FdLimit::TooLow { limit, wanted } => {
            log::warn!(
                "Your current 'ulimit -n' of {limit} is not enough for the server to start. Please increase your open file limit to at least {wanted}. Exiting."
            );
            std::process::exit(1);
        }
    }
}
