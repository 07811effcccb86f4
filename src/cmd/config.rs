//! CONFIG GET / SET / RESETSTAT and the run-time configuration every thread keeps a copy of.

use crate::config::Config;
use crate::shard::RuntimeConfig;

/// The run-time configuration at start-up, from the flags.
pub fn initial(cfg: &Config) -> RuntimeConfig {
    let params: Vec<(String, String)> = vec![
        ("port".into(), cfg.port.to_string()),
        ("bind".into(), cfg.bind.clone()),
        ("requirepass".into(), cfg.requirepass.clone()),
        ("maxmemory".into(), cfg.maxmemory.to_string()),
        ("dir".into(), cfg.dir.clone()),
        ("dbfilename".into(), cfg.dbfilename.clone()),
        ("databases".into(), cfg.dbnum.to_string()),
        ("maxclients".into(), cfg.maxclients.to_string()),
    ];
    RuntimeConfig {
        params,
        maxmemory: cfg.maxmemory,
        requirepass: cfg.requirepass.clone(),
        keys_output_limit: cfg.keys_output_limit,
    }
}
