//! Darter: a Redis- and Memcached-compatible in-memory datastore.
//!
//! See DESIGN.md for the thread model, the connection state machine, VLL transactions
//! and the key → shard rule.

pub mod access;
pub mod alloc;
pub mod cmd;
pub mod compact;
pub mod config;
pub mod conn;
pub mod container;
pub mod dash;
pub mod net;
pub mod op;
pub mod proto;
pub mod reply;
pub mod resp;
pub mod runtime;
pub mod shard;
pub mod signals;
pub mod spsc;
pub mod store;
pub mod tx;
pub mod util;
pub mod vll;
