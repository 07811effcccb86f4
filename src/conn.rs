//! One client connection: buffers and the state that drives it.
//!
//! A connection lives in its thread's `Slab<ConnSlot>`; the slot's generation goes into
//! every SQE's `user_data` so that a completion for a recycled slot is dropped.
//!
//! ```text
//!            recv done                     all parsed commands done
//!  Reading ───────────▶ Parsing/Executing ─────────────────────────▶ Reading
//!     ▲                     │  │ command needs another shard               │
//!     │                     │  ▼                                           │
//!     │                     │ Waiting (Wait::Single / Wait::Tx) ── result ─┘
//!     │                     ▼
//!     │                  Closing (protocol error, QUIT, kill, EOF): no new recv;
//!     └── send done ──   slot freed once no SQE and no transaction is in flight
//! ```
//!
//! Sending runs beside this: replies accumulate in `out`; when no send is in flight,
//! `out` becomes `sending` and goes to the kernel in one SQE.

use crate::reply::ReplyBuf;
use crate::server::Coord;

/// Initial read buffer size; it grows to fit large arguments.
pub const READ_BUF_INITIAL: usize = 16 * 1024;
/// Replies waiting to be sent above which the connection stops reading (back-pressure).
pub const OUTPUT_SOFT_LIMIT: usize = 1 << 20;
/// Hard cap on a client's query buffer (Redis `client-query-buffer-limit`).
pub const QUERY_BUFFER_LIMIT: usize = 1 << 30;

/// What a connection waits for, if anything.
pub enum Wait {
    None,
    /// The reply bytes of a single-shard command run on another thread or queued locally.
    Single,
    /// A multi-shard transaction this connection coordinates.
    Tx(Box<Coord>),
    /// A squashed run of pipelined single-shard commands sent to other shards.
    Squash(Box<Squash>),
}

/// Pipelined single-shard commands for other shards, sent as one message per shard
/// and answered in one reply message per shard. Replies of commands run locally in
/// between are already in `out`; remote replies are spliced in at their positions.
#[derive(Default)]
pub struct Squash {
    /// (position in `out.buf`, shard, index in that shard's batch), in command order.
    pub slots: Vec<(usize, u16, u32)>,
    /// Commands not yet sent, by shard.
    pub batches: Vec<Vec<crate::server::OwnedCmd>>,
    /// Replies received, by shard.
    pub results: Vec<Vec<Vec<u8>>>,
    pub outstanding: usize,
}

impl Squash {
    pub fn new(nshards: usize) -> Squash {
        Squash {
            slots: Vec::new(),
            batches: (0..nshards).map(|_| Vec::new()).collect(),
            results: (0..nshards).map(|_| Vec::new()).collect(),
            outstanding: 0,
        }
    }

    /// Adds a command for `shard` whose reply goes at `pos` of the output.
    pub fn add(&mut self, pos: usize, shard: usize, cmd: crate::server::OwnedCmd) {
        let idx = self.batches[shard].len();
        self.batches[shard].push(cmd);
        self.slots.push((pos, shard as u16, idx as u32));
    }

    /// Splices the remote replies into `out` at their positions.
    pub fn assemble(&mut self, out: &mut Vec<u8>) {
        let extra: usize = self.results.iter().flatten().map(|r| r.len()).sum();
        let first = self.slots.first().map_or(out.len(), |s| s.0);
        let tail = out.split_off(first);
        out.reserve(tail.len() + extra);
        let mut from = 0usize;
        for &(pos, shard, idx) in &self.slots {
            out.extend_from_slice(&tail[from..pos - first]);
            from = pos - first;
            out.extend_from_slice(&self.results[shard as usize][idx as usize]);
        }
        out.extend_from_slice(&tail[from..]);
    }
}

pub struct Conn {
    pub fd: i32,
    pub id: u64,
    pub peer: String,
    pub local: String,
    pub rbuf: Vec<u8>,
    /// Bytes of `rbuf` holding received data.
    pub rlen: usize,
    /// Bytes of `rbuf` already parsed and executed.
    pub rpos: usize,
    pub out: ReplyBuf,
    pub sending: Vec<u8>,
    pub sent: usize,
    pub recv_inflight: bool,
    pub send_inflight: bool,
    pub wait: Wait,
    /// Stop reading and close once `out` is flushed (protocol error, QUIT).
    pub close_after_reply: bool,
    /// Being torn down: no new SQEs; freed when nothing is in flight.
    pub closing: bool,
    pub shutdown_done: bool,
    pub db: usize,
    pub authed: bool,
    pub name: Vec<u8>,
    pub lib_name: Vec<u8>,
    pub lib_ver: Vec<u8>,
    pub created_ms: i64,
    pub last_interaction_ms: i64,
    pub last_cmd: &'static str,
}

impl Conn {
    pub fn new(fd: i32, id: u64, peer: String, local: String, authed: bool, now_ms: i64) -> Conn {
        Conn {
            fd,
            id,
            peer,
            local,
            rbuf: vec![0; READ_BUF_INITIAL],
            rlen: 0,
            rpos: 0,
            out: ReplyBuf::new(false),
            sending: Vec::new(),
            sent: 0,
            recv_inflight: false,
            send_inflight: false,
            wait: Wait::None,
            close_after_reply: false,
            closing: false,
            shutdown_done: false,
            db: 0,
            authed,
            name: Vec::new(),
            lib_name: Vec::new(),
            lib_ver: Vec::new(),
            created_ms: now_ms,
            last_interaction_ms: now_ms,
            last_cmd: "NULL",
        }
    }

    pub fn is_waiting(&self) -> bool {
        !matches!(self.wait, Wait::None)
    }

    /// True for a client on a loopback address (Redis's `islocalClient`).
    pub fn peer_is_loopback(&self) -> bool {
        crate::net::is_loopback_peer(&self.peer)
    }

    /// Bytes of replies not yet acknowledged by the kernel.
    pub fn pending_output(&self) -> usize {
        self.out.buf.len() + self.sending.len() - self.sent
    }

    /// One line of CLIENT LIST / CLIENT INFO.
    pub fn info_line(&self, now_ms: i64) -> String {
        let flags = if self.is_waiting() { "b" } else { "N" };
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 multi=-1 qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs={} rbp={} obl=0 oll=0 omem=0 tot-mem={} events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.peer,
            self.local,
            self.fd,
            String::from_utf8_lossy(&self.name),
            (now_ms - self.created_ms).max(0) / 1000,
            (now_ms - self.last_interaction_ms).max(0) / 1000,
            flags,
            self.db,
            self.rlen.saturating_sub(self.rpos),
            self.rbuf.len().saturating_sub(self.rlen),
            self.rbuf.len(),
            self.rbuf.len(),
            self.rbuf.len() + self.out.buf.capacity() + self.sending.capacity(),
            self.last_cmd,
            if self.out.resp3 { 3 } else { 2 },
            String::from_utf8_lossy(&self.lib_name),
            String::from_utf8_lossy(&self.lib_ver),
        )
    }
}

/// A slab slot: the connection (absent while its thread is processing it) and the
/// generation stamped into its SQEs.
pub struct ConnSlot {
    pub generation: u32,
    pub conn: Option<Box<Conn>>,
}
