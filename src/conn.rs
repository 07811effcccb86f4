//! One client connection: buffers and the state that drives it.
//!
//! A connection lives in its thread's `Slab<ConnSlot>`; the slot's generation goes into
//! every SQE's `user_data` so that a completion for a recycled slot is dropped.
//!
//! Two things drive a connection: what it is doing with commands (reading, running,
//! waiting for another shard: [`Wait`]) and where it is in its life ([`Life`]):
//!
//! ```text
//!            recv done                     all parsed commands done
//!  Reading ───────────▶ Parsing/Executing ─────────────────────────▶ Reading
//!     ▲                     │ command needs another shard                 │
//!     │                     ▼                                             │
//!     │                 Waiting (Wait::Single / Tx / Squash) ── result ───┘
//!     └── send done ──
//!
//!  Life:  Open ──QUIT, protocol error, SHUTDOWN, CLIENT KILL of itself──▶ CloseAfterReply
//!          │                                                                    │ replies sent,
//!          │ EOF, I/O error, CLIENT KILL, query buffer full                     │ nothing awaited
//!          ▼                                                                    ▼
//!        Closing ◀───────────────────────────────────────────────────────────────┘
//!          │ reap: shutdown(2) the socket, so in-flight I/O completes
//!          ▼
//!        ShutDown ── no recv, no send, no transaction in flight ──▶ fd closed, slot freed
//! ```
//!
//! Only `Open` reads and parses. `CloseAfterReply` runs nothing more but still sends.
//! In-flight I/O is kept beside the life state, not inside it: a recv ([`Recv`]) and a
//! send (`send_inflight`) can be in flight at the same time and in every life state
//! (a closing connection waits for both to complete), so folding them into `Life`
//! would multiply its variants without removing a single check.
//!
//! Sending runs beside this: replies accumulate in `out`; when no send is in flight,
//! `out` becomes `sending` and goes to the kernel in one SQE.
//!
//! # The read buffer
//!
//! ```text
//!  rbuf: Vec<u8>
//!  ┌───────────────┬──────────────────────┬─────────────────────────────┐
//!  │ parsed + run  │ unparsed (partial)   │ spare capacity (not init.)  │
//!  └───────────────┴──────────────────────┴─────────────────────────────┘
//!  0            rpos                rbuf.len()                  rbuf.capacity()
//!                                              ▲ a posted recv writes here
//! ```
//!
//! - **The kernel owns the spare capacity while a recv is in flight.** The recv SQE
//!   points at `rbuf.as_ptr() + rbuf.len()` with length `capacity - len`: memory that
//!   was never initialised and is never read by us until the completion says how many
//!   bytes the kernel wrote (`set_len(len + res)`). So the buffer must not move,
//!   shrink, grow or be compacted while a recv is in flight (`Recv::InFlight`): every place that changes
//!   `rbuf`'s allocation ([`Conn::prepare_read_buf`], [`Conn::shrink_read_buf`]) asserts
//!   it. Parsing may run meanwhile (a send completion restarts it): it only reads
//!   `[rpos, len)`, which the kernel does not touch.
//! - **Growth follows the data** ([`grown_read_capacity`]): only a full buffer grows,
//!   to twice its size, and the last step goes to exactly what the parser says the
//!   command needs (`need`). A client that declares a 512 MB argument and sends 4 KiB
//!   costs 16 KiB, not 512 MB; a 100 MB argument costs 12 doublings and one exact step
//!   (a copy each, not a copy per recv) and ends in a 100 MB buffer, not 128 MiB.
//! - **Shrinking** (Redis's `clientsCronResizeQueryBuffer`): the 10 ms tick visits a
//!   bounded number of connections; a buffer wasting more than 4 KiB is shrunk when the
//!   client has been idle over 2 s, or when it is over 32 KiB and more than twice the
//!   peak use since the last visit (`rbuf_peak`). It never shrinks below what is
//!   unparsed plus 16 KiB of room for the next read, nor, unless idle, below the
//!   parser's `need` (a paused upload gives back its slack and grows again when it
//!   resumes). With no recv in flight it shrinks at once;
//!   an idle connection always has one, so the tick cancels it (`IORING_OP_ASYNC_CANCEL`,
//!   `Recv::Cancelling`), and the `-ECANCELED` completion shrinks and posts a new recv
//!   into the smaller buffer. If data won the race instead, it is processed as usual
//!   and the shrink happens before the next recv.

use crate::proto::Protocol;
use crate::reply::ReplyBuf;
use crate::tx::coord::Coord;
use crate::tx::pipeline::Squash;

/// Initial read buffer capacity; it grows as large commands arrive. Also the size the
/// buffer is never shrunk below.
pub const READ_BUF_INITIAL: usize = 16 * 1024;
/// Read buffers above this may shrink while the client is active, when twice their
/// recent peak use is still less than their size (Redis `PROTO_RESIZE_THRESHOLD`).
pub const READ_BUF_SHRINK_THRESHOLD: usize = 32 * 1024;
/// A buffer is shrunk only if it wastes more than this (Redis: 4 KiB).
pub const READ_BUF_MIN_WASTE: usize = 4 * 1024;
/// A client idle for longer than this gets its read buffer shrunk to what it holds
/// (Redis: `idletime > 2` seconds).
pub const READ_BUF_IDLE_SHRINK_MS: i64 = 2000;
/// Output buffers (`out`, `sending`) that are empty and larger than this are given back
/// when the tick visits the connection.
pub const OUTPUT_BUF_KEEP: usize = 16 * 1024;
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

/// Where a connection is in its life (see the module docs for the transitions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Life {
    /// Reading and running commands.
    Open,
    /// Reads and runs nothing more; becomes `Closing` once the replies produced so far
    /// are sent and nothing is awaited (QUIT, a protocol error, SHUTDOWN, CLIENT KILL
    /// of the connection itself).
    CloseAfterReply,
    /// To be torn down: no new SQEs; the next [`reap`](crate::runtime::io::reap) shuts
    /// the socket down.
    Closing,
    /// The socket is shut down (`shutdown(2)`), so pending I/O completes; the fd is
    /// closed and the slot freed once no recv, send or transaction is in flight.
    ShutDown,
}

/// The connection's recv, if one is in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recv {
    /// None in flight: `rbuf` may be compacted, grown or shrunk.
    Idle,
    /// The kernel owns `rbuf`'s spare capacity until the completion.
    InFlight,
    /// In flight, and the tick submitted an `ASYNC_CANCEL` for it (to shrink the
    /// buffer), so a `-ECANCELED` completion is ours.
    Cancelling,
}

/// The read buffer is past [`QUERY_BUFFER_LIMIT`]: the connection must be closed.
#[derive(Debug, PartialEq, Eq)]
pub struct QueryBufferFull;

/// The capacity the read buffer needs before the next recv, given `len` bytes in it
/// (compacted: they start at the unparsed command), `cap` allocated, and `need`, the
/// parser's total for the command being read (0 if not known yet).
///
/// A buffer with room left keeps its size: the recv reads into the room. A full one
/// doubles — so it never holds more than twice what the client has sent, plus the
/// initial 16 KiB — but never past `need` when that is known: the last step of a
/// 512 MB argument is 512 MB + its header, not 1 GiB.
pub fn grown_read_capacity(len: usize, cap: usize, need: usize) -> Result<usize, QueryBufferFull> {
    if len < cap {
        return Ok(cap);
    }
    // Headroom for the header of an argument of the largest allowed size.
    let limit = QUERY_BUFFER_LIMIT + crate::resp::PROTO_INLINE_MAX_SIZE;
    if len >= limit {
        return Err(QueryBufferFull);
    }
    let mut new_cap = cap.saturating_mul(2).max(READ_BUF_INITIAL);
    if need > len {
        new_cap = new_cap.min(need);
    }
    Ok(new_cap.min(limit))
}

pub struct Conn {
    pub fd: i32,
    /// The protocol of the listener that accepted it: how its input is parsed and its
    /// replies built.
    pub proto: Protocol,
    pub id: u64,
    pub peer: String,
    pub local: String,
    /// Received bytes (`len`) and the room the next recv reads into (`capacity`); see
    /// the module docs for who may touch it when.
    pub rbuf: Vec<u8>,
    /// Bytes of `rbuf` already parsed and executed.
    pub rpos: usize,
    /// The parser's last `Incomplete { need }` for the command starting at `rpos`:
    /// bytes it needs in all (0 when unknown or when nothing is partial).
    pub need: usize,
    /// Most bytes `rbuf` held since the tick last visited (Redis `querybuf_peak`).
    pub rbuf_peak: usize,
    /// The tick decided to shrink the read buffer to this (0: no); applied before the
    /// next recv is posted.
    pub shrink_rbuf_to: usize,
    /// While `process` has lent `rbuf` to the parser: its (len, capacity), for CLIENT
    /// INFO/LIST of the connection itself.
    pub rbuf_lent: Option<(usize, usize)>,
    pub out: ReplyBuf,
    pub sending: Vec<u8>,
    pub sent: usize,
    /// The recv into `rbuf`'s spare capacity, if one is in flight.
    pub recv: Recv,
    /// A send of `sending` is in flight.
    pub send_inflight: bool,
    pub wait: Wait,
    /// Open, closing after the replies, or being torn down (see the module docs).
    pub life: Life,
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
    pub fn new(fd: i32, proto: Protocol, id: u64, peer: String, local: String, authed: bool, now_ms: i64) -> Conn {
        Conn {
            fd,
            proto,
            id,
            peer,
            local,
            // Not zero-filled: only bytes the kernel reports are ever read.
            rbuf: Vec::with_capacity(READ_BUF_INITIAL),
            rpos: 0,
            need: 0,
            rbuf_peak: 0,
            shrink_rbuf_to: 0,
            rbuf_lent: None,
            out: proto.reply_buf(),
            sending: Vec::new(),
            sent: 0,
            recv: Recv::Idle,
            send_inflight: false,
            wait: Wait::None,
            life: Life::Open,
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

    /// Reading and running commands (neither closing nor closing after the replies).
    pub fn is_open(&self) -> bool {
        self.life == Life::Open
    }

    /// Being torn down (`Closing` or `ShutDown`): replies go nowhere, no new SQEs.
    pub fn is_closing(&self) -> bool {
        matches!(self.life, Life::Closing | Life::ShutDown)
    }

    /// Tears the connection down (EOF, I/O error, CLIENT KILL, query buffer full): the
    /// next reap shuts the socket down. No effect if already closing.
    pub fn close(&mut self) {
        if !self.is_closing() {
            self.life = Life::Closing;
        }
    }

    /// Stops reading and running commands; the connection closes once the replies
    /// produced so far are sent (QUIT, protocol error, SHUTDOWN). No effect unless open.
    pub fn close_after_reply(&mut self) {
        if self.life == Life::Open {
            self.life = Life::CloseAfterReply;
        }
    }

    /// A connection closing after its replies becomes `Closing` once no send is in
    /// flight and it awaits nothing (its last replies are out).
    pub fn close_if_replied(&mut self) {
        if self.life == Life::CloseAfterReply && !self.send_inflight && !self.is_waiting() {
            self.life = Life::Closing;
        }
    }

    /// A recv is in flight (the kernel owns `rbuf`'s spare capacity).
    pub fn recv_inflight(&self) -> bool {
        self.recv != Recv::Idle
    }

    /// True for a client on a loopback address (Redis's `islocalClient`).
    pub fn peer_is_loopback(&self) -> bool {
        crate::net::is_loopback_peer(&self.peer)
    }

    /// Bytes of replies not yet acknowledged by the kernel.
    pub fn pending_output(&self) -> usize {
        self.out.buf.len() + self.sending.len() - self.sent
    }

    /// (bytes held, capacity) of the read buffer, also while `process` has lent it out.
    pub fn read_buf_figures(&self) -> (usize, usize) {
        self.rbuf_lent.unwrap_or((self.rbuf.len(), self.rbuf.capacity()))
    }

    /// Heap bytes of the output buffers (`out` filling, `sending` with the kernel).
    pub fn output_buf_bytes(&self) -> usize {
        self.out.buf.capacity() + self.sending.capacity()
    }

    /// Moves the unparsed bytes to the front of the read buffer.
    fn compact_read_buf(&mut self) {
        assert!(!self.recv_inflight(), "read buffer compacted under a recv in flight");
        if self.rpos > 0 {
            let len = self.rbuf.len();
            self.rbuf.copy_within(self.rpos..len, 0);
            self.rbuf.truncate(len - self.rpos);
            self.rpos = 0;
        }
    }

    /// Before a recv is posted: compacts the buffer, applies a shrink the tick asked
    /// for, and grows a full buffer (see [`grown_read_capacity`]).
    pub fn prepare_read_buf(&mut self) -> Result<(), QueryBufferFull> {
        self.compact_read_buf();
        if self.shrink_rbuf_to != 0 {
            let target = std::mem::take(&mut self.shrink_rbuf_to);
            self.shrink_read_buf(target);
        }
        let (len, cap) = (self.rbuf.len(), self.rbuf.capacity());
        let new_cap = grown_read_capacity(len, cap, self.need)?;
        if new_cap > cap {
            // Exact: the policy above decides the size, not Vec's own doubling.
            self.rbuf.reserve_exact(new_cap - len);
        }
        Ok(())
    }

    /// Shrinks the read buffer towards `target` bytes, never below what it holds
    /// unparsed plus 16 KiB of room for the next read (a buffer shrunk to exactly what
    /// it holds would be full, and the next recv would double it again). Only with no
    /// recv in flight.
    pub fn shrink_read_buf(&mut self, target: usize) {
        self.compact_read_buf();
        let target = target.max(self.rbuf.len() + READ_BUF_INITIAL);
        if self.rbuf.capacity() > target + READ_BUF_MIN_WASTE {
            self.rbuf.shrink_to(target);
        }
    }

    /// The tick's visit (Redis `clientsCronResizeQueryBuffer`): returns the size the
    /// read buffer should shrink to, if it should, and starts a new peak period.
    pub fn read_buf_shrink_target(&mut self, now_ms: i64) -> Option<usize> {
        let cap = self.rbuf.capacity();
        let held = self.rbuf.len() - self.rpos;
        let peak = std::mem::replace(&mut self.rbuf_peak, held.max(self.need));
        // Room for the next read on top of what is held (see `shrink_read_buf`).
        let floor = held + READ_BUF_INITIAL;
        let target = if now_ms - self.last_interaction_ms > READ_BUF_IDLE_SHRINK_MS {
            // Idle: down to what it holds, even in the middle of an argument (Redis's
            // sdsRemoveFreeSpace); it grows again as the bytes come.
            floor
        } else if cap > READ_BUF_SHRINK_THRESHOLD && cap / 2 > peak {
            // Active: not below the recent peak, nor below the argument being read.
            floor.max(self.need).max(peak)
        } else {
            return None;
        };
        (cap > target + READ_BUF_MIN_WASTE).then_some(target)
    }

    /// The tick's visit: gives back empty output buffers above [`OUTPUT_BUF_KEEP`].
    /// `sending` only when no send is in flight (the kernel reads it then); `out` only
    /// when nothing waits to be spliced into it.
    pub fn shrink_output_bufs(&mut self) {
        if !self.send_inflight && self.sending.is_empty() && self.sending.capacity() > OUTPUT_BUF_KEEP {
            self.sending = Vec::new();
        }
        if !self.is_waiting() && self.out.buf.is_empty() && self.out.buf.capacity() > OUTPUT_BUF_KEEP {
            self.out.buf.shrink_to(OUTPUT_BUF_KEEP);
        }
    }

    /// One line of CLIENT LIST / CLIENT INFO, Redis 7.0's fields. `argv_mem`: the bytes
    /// of the arguments of the command this connection is running (its own CLIENT
    /// INFO/LIST), else 0 — as in Redis, whose argv is freed between commands.
    ///
    /// Buffers: `qbuf` is what the read buffer holds (while the connection runs a
    /// command, the command itself included, as Redis's `sdslen(querybuf)`),
    /// `qbuf-free` its room left; `rbs` is the capacity of the buffer replies are
    /// written into and `rbp` what it holds (Darter keeps no reply-buffer peak);
    /// `omem` is all output buffer memory (`out` and the one being sent); `tot-mem` is
    /// the connection's struct, read buffer, arguments and output buffers.
    pub fn info_line(&self, now_ms: i64, argv_mem: usize) -> String {
        let flags = if self.is_waiting() { "b" } else { "N" };
        let (qbuf, qbuf_cap) = self.read_buf_figures();
        let omem = self.output_buf_bytes();
        let tot_mem = std::mem::size_of::<Conn>() + qbuf_cap + argv_mem + omem;
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 multi=-1 qbuf={} qbuf-free={} argv-mem={} multi-mem=0 rbs={} rbp={} obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.peer,
            self.local,
            self.fd,
            String::from_utf8_lossy(&self.name),
            (now_ms - self.created_ms).max(0) / 1000,
            (now_ms - self.last_interaction_ms).max(0) / 1000,
            flags,
            self.db,
            qbuf,
            qbuf_cap - qbuf,
            argv_mem,
            self.out.buf.capacity(),
            self.out.buf.len(),
            omem,
            tot_mem,
            self.last_cmd,
            if self.out.resp3 { 3 } else { 2 },
            String::from_utf8_lossy(&self.lib_name),
            String::from_utf8_lossy(&self.lib_ver),
        )
    }
}

/// Seconds of history of [`RecentClientPeaks`] (Redis `CLIENTS_PEAK_MEM_USAGE_SLOTS`).
pub const CLIENT_PEAK_SLOTS: usize = 8;

/// The largest client input and output buffers the tick saw in each of the last
/// [`CLIENT_PEAK_SLOTS`] seconds, one slot per second (Redis's
/// `clientsCronTrackExpansiveClients`): INFO's `client_recent_max_input_buffer` and
/// `client_recent_max_output_buffer` are the maxima over the slots (and threads).
#[derive(Clone, Default)]
pub struct RecentClientPeaks {
    input: [usize; CLIENT_PEAK_SLOTS],
    output: [usize; CLIENT_PEAK_SLOTS],
}

impl RecentClientPeaks {
    /// Called on every tick before the visits: zeroes the next second's slot, so that
    /// when that second comes it holds only what is seen in it.
    pub fn tick(&mut self, unix_secs: i64) {
        let next = (unix_secs as usize + 1) % CLIENT_PEAK_SLOTS;
        self.input[next] = 0;
        self.output[next] = 0;
    }

    /// Records one connection's buffer bytes in the current second's slot.
    pub fn record(&mut self, unix_secs: i64, input: usize, output: usize) {
        let slot = unix_secs as usize % CLIENT_PEAK_SLOTS;
        self.input[slot] = self.input[slot].max(input);
        self.output[slot] = self.output[slot].max(output);
    }

    /// (input, output) maxima over the recent seconds.
    pub fn max(&self) -> (usize, usize) {
        (self.input.iter().copied().max().unwrap_or(0), self.output.iter().copied().max().unwrap_or(0))
    }
}

/// A slab slot: the connection (absent while its thread is processing it) and the
/// generation stamped into its SQEs.
pub struct ConnSlot {
    pub generation: u32,
    pub conn: Option<Box<Conn>>,
}

/// A thread's connections: the slab (slot index = the `idx` of `user_data` and
/// [`crate::tx::Origin`]) and what the tick keeps about them. Owned by the runtime's
/// `Worker`, not by the `Shard` (the keyspace): commands reach it only through a
/// thread-level job ([`crate::tx::Job::Thread`]: CLIENT LIST/KILL, INFO clients).
pub struct Conns {
    pub slab: slab::Slab<ConnSlot>,
    /// Live connections of this thread (INFO connected_clients sums them).
    pub count: usize,
    /// Largest client buffers of the last seconds (INFO clients), kept by the tick.
    pub peaks: RecentClientPeaks,
    /// The slot the tick's client housekeeping visits next.
    pub cron_cursor: usize,
}

impl Default for Conns {
    fn default() -> Conns {
        Conns { slab: slab::Slab::with_capacity(64), count: 0, peaks: Default::default(), cron_cursor: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A buffer with room left keeps its size; a full one doubles.
    #[test]
    fn read_buffer_grows_only_when_full() {
        assert_eq!(grown_read_capacity(0, READ_BUF_INITIAL, 0), Ok(READ_BUF_INITIAL));
        assert_eq!(grown_read_capacity(100, READ_BUF_INITIAL, 1 << 29), Ok(READ_BUF_INITIAL));
        assert_eq!(grown_read_capacity(READ_BUF_INITIAL, READ_BUF_INITIAL, 0), Ok(2 * READ_BUF_INITIAL));
    }

    // The parser's `need` caps the last step: a 512 MB argument ends in a buffer of
    // exactly its size, not 1 GiB; a claim far ahead of the data only doubles.
    #[test]
    fn read_buffer_last_step_is_exact() {
        let need = 34 + 536_870_912 + 2;
        let mut cap = READ_BUF_INITIAL;
        let mut steps = 0;
        while cap < need {
            // The client filled the buffer: it never holds more than twice what came.
            let next = grown_read_capacity(cap, cap, need).unwrap();
            assert!(next <= 2 * cap);
            cap = next;
            steps += 1;
        }
        assert_eq!(cap, need);
        assert_eq!(steps, 16, "16 KiB doubled 15 times is 512 MiB, then the exact step");
    }

    // The query buffer limit closes the connection instead of growing further.
    #[test]
    fn read_buffer_has_a_limit() {
        let limit = QUERY_BUFFER_LIMIT + crate::resp::PROTO_INLINE_MAX_SIZE;
        assert_eq!(grown_read_capacity(limit, limit, 0), Err(QueryBufferFull));
        assert_eq!(grown_read_capacity(limit / 2 + 1, limit / 2 + 1, 0), Ok(limit));
    }

    fn conn() -> Conn {
        Conn::new(-1, Protocol::Resp, 1, String::new(), String::new(), true, 0)
    }

    // Redis's clientsCronResizeQueryBuffer: idle over 2 s, or over 32 KiB and more
    // than twice the peak since the last visit; never below the unparsed bytes plus
    // 16 KiB, nor below the parser's need unless idle; not when less than 4 KiB would
    // be saved.
    #[test]
    fn shrink_targets_follow_redis() {
        let mut c = conn();
        c.rbuf.reserve_exact(1 << 20);
        c.rbuf_peak = 1 << 20;
        // Busy at its peak: kept; the peak period restarts at what it holds (0).
        assert_eq!(c.read_buf_shrink_target(1000), None);
        assert_eq!(c.rbuf_peak, 0);
        // Next visit, peak under half: shrunk to the 16 KiB floor.
        assert_eq!(c.read_buf_shrink_target(1000), Some(READ_BUF_INITIAL));
        c.shrink_read_buf(READ_BUF_INITIAL);
        assert!(c.rbuf.capacity() < READ_BUF_INITIAL + READ_BUF_MIN_WASTE);
        // An active buffer mid-argument is not shrunk below what the argument needs.
        let mut c = conn();
        c.rbuf.reserve_exact(8 << 20);
        c.rbuf.extend_from_slice(&[b'x'; 3 << 20]);
        c.need = 8 << 20;
        assert_eq!(c.read_buf_shrink_target(1000), None);
        assert_eq!(c.read_buf_shrink_target(1000), None);
        // Idle for over 2 s with 3 MiB unparsed: down to 3 MiB and room for a read,
        // need or not; the next recv does not grow it at once.
        let target = (3 << 20) + READ_BUF_INITIAL;
        assert_eq!(c.read_buf_shrink_target(10_000), Some(target));
        c.shrink_read_buf(target);
        assert_eq!(c.rbuf.len(), 3 << 20);
        assert!(c.rbuf.capacity() < target + READ_BUF_MIN_WASTE);
        c.prepare_read_buf().unwrap();
        assert!(c.rbuf.capacity() < target + READ_BUF_MIN_WASTE);
    }

    // INFO's recent maxima cover the last 7 seconds (the 8th slot is the one being
    // cleared for the next second) and forget older ones.
    #[test]
    fn recent_client_peaks_expire() {
        let mut p = RecentClientPeaks::default();
        p.tick(100);
        p.record(100, 5000, 70);
        assert_eq!(p.max(), (5000, 70));
        for s in 101..=106 {
            p.tick(s);
            p.record(s, 10, 1);
        }
        assert_eq!(p.max(), (5000, 70));
        p.tick(107);
        assert_eq!(p.max(), (10, 1));
    }
}
