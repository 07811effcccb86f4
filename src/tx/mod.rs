//! The transaction layer: messages between threads, the coordinator of multi-shard
//! transactions ([`coord`]), the shard side of VLL ([`shard_side`]) and the pipeline
//! that parses a connection's commands, runs them inline or squashes them into
//! per-shard batches ([`pipeline`]).
//!
//! ```text
//!   pipeline ──▶ admit ▶ dispatch ──▶ one shard, local and free: run inline
//!                               ├─ one shard elsewhere:   Msg::Exec ──▶ shard_side ──▶ Msg::Reply
//!                               └─ several shards:        coord: Schedule ▶ Hop* ▶ conclude
//!                                                         (each hop answered by Msg::Done)
//! ```
//!
//! Commands reach this layer through [`Ctx`] ([`ctx`]); multi-shard commands are
//! [`Program`]s built from the typed pieces of [`program`].

pub mod coord;
pub mod ctx;
pub mod pipeline;
pub mod program;
pub mod shard_side;

pub use ctx::Ctx;
pub use program::{Job, LockSets, Plan, Program, TxPlan};

use crate::cmd::{self, Command};
use crate::reply::ReplyBuf;
use crate::shard::Shard;
use crate::vll::LockKey;

/// Who gets a job's result: a connection on some thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub thread: u32,
    pub idx: u32,
    pub generation: u32,
}

/// Messages between threads (and from a thread to itself).
pub enum Msg {
    /// A single-shard command: run now if its keys are unlocked, else queue it.
    Exec { origin: Origin, cmd: Box<OwnedCmd> },
    /// Pipelined single-shard commands, run in order; answered with `Replies`.
    ExecBatch { origin: Origin, cmds: Vec<OwnedCmd> },
    /// Schedule a multi-shard transaction's locks in this shard.
    Schedule { origin: Origin, txid: u64, keys: Vec<LockKey> },
    /// Run one hop of a scheduled transaction (None: only conclude); `last` releases the locks.
    Hop { origin: Origin, txid: u64, job: Option<Job>, last: bool },
    /// Drop a scheduled transaction that another shard refused.
    Cancel { txid: u64 },
    /// Run a job at once, without locks (broadcasts: DBSIZE, INFO, KEYS...).
    Run { origin: Origin, job: Job },
    /// A hop's job ran on `shard` (its result, if any, is in its program's slots).
    Done { origin: Origin, shard: u32 },
    /// The reply of a single-shard command (`Exec`).
    Reply { origin: Origin, bytes: Vec<u8> },
    /// The replies of a batch (`ExecBatch`), in order.
    Replies { origin: Origin, shard: u32, replies: Vec<Vec<u8>> },
    /// Answer to `Schedule`.
    Scheduled { origin: Origin, shard: u32, ok: bool },
}

/// A command with its arguments copied out of the connection's buffer, to run elsewhere.
pub struct OwnedCmd {
    pub cmd: &'static Command,
    pub data: Vec<u8>,
    pub ends: Vec<u32>,
    pub db: u16,
    pub resp3: bool,
    /// CLIENT NO-TOUCH of the sending connection (`ReplyBuf::no_touch`).
    pub no_touch: bool,
}

impl OwnedCmd {
    pub fn new(cmd: &'static Command, args: &[&[u8]], db: usize, resp3: bool) -> OwnedCmd {
        let total = args.iter().map(|a| a.len()).sum();
        let mut data = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(args.len());
        for a in args {
            data.extend_from_slice(a);
            ends.push(data.len() as u32);
        }
        OwnedCmd { cmd, data, ends, db: db as u16, resp3, no_touch: false }
    }

    /// Marks the command as sent by a client in CLIENT NO-TOUCH mode.
    pub fn with_no_touch(mut self, no_touch: bool) -> OwnedCmd {
        self.no_touch = no_touch;
        self
    }

    /// The arguments as slices.
    pub fn args(&self) -> Vec<&[u8]> {
        let mut v = Vec::with_capacity(self.ends.len());
        let mut start = 0usize;
        for &e in &self.ends {
            v.push(&self.data[start..e as usize]);
            start = e as usize;
        }
        v
    }

    /// Runs the command's shard handler here and returns its reply bytes.
    pub fn run(&self, shard: &mut Shard) -> Vec<u8> {
        let args = self.args();
        let mut out = ReplyBuf::new(self.resp3);
        out.no_touch = self.no_touch;
        cmd::run_shard_handler(shard, self.cmd, self.db as usize, &args, &mut out);
        out.buf
    }
}
