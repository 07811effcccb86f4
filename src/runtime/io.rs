//! Connection I/O: accepting (maxclients, protected mode; the connection takes the
//! protocol of the listener that accepted it), the slab of connections
//! (take/put with generations), posting recvs into the read buffer's spare capacity,
//! sends of accumulated replies, and reaping closed connections. What the bytes mean
//! is [`crate::tx::pipeline`]'s business.

use std::sync::atomic::Ordering;

use io_uring::{opcode, types};

use super::{KIND_RECV, KIND_SEND, Worker, user_data};
use crate::conn::{self, Conn, ConnSlot, Conns, Life, Recv, Wait};
use crate::proto::{Protocol, Refused};
use crate::shard::{Globals, unix_ms};

impl Worker {
    /// A connection accepted by a listener of protocol `proto`.
    pub(crate) fn on_accept(&mut self, fd: i32, proto: Protocol) {
        // maxclients over all threads (Redis's check: admitted while fewer are connected).
        if self.shard.g.clients.fetch_add(1, Ordering::AcqRel) >= self.shard.cfg.maxclients {
            self.shard.g.clients.fetch_sub(1, Ordering::AcqRel);
            reject_connection(fd, proto.refusal(Refused::MaxClients));
            self.shard.stats.rejected_connections += 1;
            return;
        }
        crate::net::set_nodelay(fd);
        let (peer, local) = crate::net::addrs(fd);
        if self.shard.cfg.protected_mode
            && self.shard.cfg.requirepass.is_empty()
            && !crate::net::is_loopback_peer(&peer)
        {
            self.shard.g.clients.fetch_sub(1, Ordering::AcqRel);
            reject_connection(fd, proto.refusal(Refused::ProtectedMode));
            self.shard.stats.connections_received += 1;
            self.shard.stats.rejected_connections += 1;
            return;
        }
        let id = self.shard.g.next_client_id.fetch_add(1, Ordering::Relaxed);
        let authed = self.shard.cfg.requirepass.is_empty();
        let conn = Box::new(Conn::new(fd, proto, id, peer, local, authed, unix_ms()));
        let generation = self.next_gen;
        self.next_gen = (self.next_gen + 1) & 0xff_ffff;
        let idx = self.conns.slab.insert(ConnSlot { generation, conn: Some(conn) });
        self.conns.count += 1;
        self.shard.stats.connections_received += 1;
        let mut c = self.take(idx);
        self.post_recv(idx, generation, &mut c);
        self.put(idx, c);
    }

    /// Takes a connection out of its slot for processing; put it back with [`Worker::put`].
    pub(crate) fn take(&mut self, idx: usize) -> Box<Conn> {
        self.conns.slab[idx].conn.take().expect("connection is in its slot")
    }

    /// Puts a connection back, or frees the slot if it is closing and idle.
    pub(crate) fn put(&mut self, idx: usize, c: Box<Conn>) {
        self.conns.slab[idx].conn = Some(c);
        reap(&mut self.conns, &self.shard.g, idx);
    }

    /// Looks up a live slot by index and generation.
    pub(crate) fn slot_ok(&self, idx: usize, generation: u32) -> bool {
        matches!(self.conns.slab.get(idx), Some(s) if s.generation == generation && s.conn.is_some())
    }

    pub(crate) fn post_recv(&mut self, idx: usize, generation: u32, c: &mut Conn) {
        if c.recv_inflight() || !c.is_open() || c.is_waiting() || self.drain_deadline.is_some() {
            return;
        }
        if c.pending_output() > conn::OUTPUT_SOFT_LIMIT {
            return;
        }
        // Make room: move unparsed bytes to the front, shrink if the tick asked to,
        // grow if full. The only place besides the tick that changes the allocation,
        // and no recv is in flight here.
        if c.prepare_read_buf().is_err() {
            log::warn!("closing client {} that reached max query buffer length", c.id);
            c.close();
            return;
        }
        let spare = c.rbuf.spare_capacity_mut();
        // The kernel writes into the spare capacity: uninitialised memory that nothing
        // reads until `on_recv` extends the length by the bytes the kernel reported.
        // `rbuf` is neither reallocated nor compacted until then (`Recv::InFlight`).
        let e = opcode::Recv::new(
            types::Fd(c.fd),
            spare.as_mut_ptr().cast::<u8>(),
            spare.len().min(u32::MAX as usize) as u32,
        )
        .build()
        .user_data(user_data(KIND_RECV, generation, idx as u32));
        c.recv = Recv::InFlight;
        self.push_sqe(e);
    }

    pub(crate) fn on_recv(&mut self, idx: usize, generation: u32, res: i32) {
        if !self.slot_ok(idx, generation) {
            return;
        }
        let mut c = self.take(idx);
        c.recv = Recv::Idle;
        if res > 0 && self.drain_deadline.is_some() {
            // Shutting down: no new commands (see `drain_step`).
        } else if res > 0 {
            let (len, received) = (c.rbuf.len(), res as usize);
            assert!(received <= c.rbuf.capacity() - len, "recv reported more bytes than it was given room for");
            // SAFETY: the recv posted by `post_recv` pointed at `rbuf`'s spare capacity
            // (from `len` on), and the buffer has not moved since (no reallocation or
            // compaction while a recv is in flight); the kernel reports that it initialised
            // the first `received` bytes of it, which the assert keeps within capacity.
            unsafe { c.rbuf.set_len(len + received) };
            c.rbuf_peak = c.rbuf_peak.max(c.rbuf.len());
            self.shard.stats.net_input_bytes += res as u64;
            c.last_interaction_ms = unix_ms();
            self.process(idx, generation, &mut c);
        } else if res == -libc::ECANCELED {
            // The tick cancelled a recv to shrink the buffer: post_recv shrinks it and
            // reads again. (Only our ASYNC_CANCEL ends a recv this way. If a cancel sat
            // in the SQE backlog while the recv it aimed at completed with data, it can
            // hit the next recv instead, which carries the same user_data: reading
            // again is right in that case too.)
            self.post_recv(idx, generation, &mut c);
        } else if res == 0 || !(res == -libc::EAGAIN || res == -libc::EINTR || res == -libc::ENOBUFS) {
            c.close();
        } else {
            self.post_recv(idx, generation, &mut c);
        }
        self.put(idx, c);
    }

    pub(crate) fn on_send(&mut self, idx: usize, generation: u32, res: i32) {
        if !self.slot_ok(idx, generation) {
            return;
        }
        let mut c = self.take(idx);
        c.send_inflight = false;
        if res < 0 {
            if res == -libc::EAGAIN || res == -libc::EINTR {
                self.flush(idx, generation, &mut c);
            } else {
                c.close();
            }
        } else {
            c.sent += res as usize;
            self.shard.stats.net_output_bytes += res as u64;
            if c.sent == c.sending.len() {
                c.sending.clear();
                c.sent = 0;
            }
            self.flush(idx, generation, &mut c);
            c.close_if_replied();
            // Back-pressure may have held reads back; parsed-but-unexecuted input may remain.
            if c.is_open() && !c.is_waiting() {
                self.process(idx, generation, &mut c);
            }
        }
        self.put(idx, c);
    }

    /// Starts a send if none is in flight and replies are waiting.
    pub(crate) fn flush(&mut self, idx: usize, generation: u32, c: &mut Conn) {
        if c.send_inflight || c.is_closing() {
            return;
        }
        if c.sending.is_empty() {
            // Replies of a squashed batch are spliced into `out` by position: hold it.
            if c.out.buf.is_empty() || matches!(c.wait, Wait::Squash(_)) {
                return;
            }
            std::mem::swap(&mut c.sending, &mut c.out.buf);
            c.sent = 0;
        }
        let rest = &c.sending[c.sent..];
        let e = opcode::Send::new(types::Fd(c.fd), rest.as_ptr(), rest.len().min(u32::MAX as usize) as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data(KIND_SEND, generation, idx as u32));
        c.send_inflight = true;
        self.push_sqe(e);
    }
}

/// Kills connection `idx` of this shard (CLIENT KILL, possibly from another thread's
/// request): marks it closing and shuts its socket down, so its pending recv/send
/// completes and the loop frees it; frees it at once if nothing is in flight.
/// Returns false if there is no such live connection.
pub fn kill_conn(conns: &mut Conns, g: &Globals, idx: usize) -> bool {
    match conns.slab.get_mut(idx).and_then(|s| s.conn.as_mut()) {
        Some(c) if !c.is_closing() => c.close(),
        _ => return false,
    }
    reap(conns, g, idx);
    true
}

/// For a closing connection in slot `idx`: shuts its socket down (once), so pending
/// I/O completes, and once no SQE and no transaction is in flight closes the fd and
/// frees the slot.
pub(crate) fn reap(conns: &mut Conns, g: &Globals, idx: usize) {
    let Some(c) = conns.slab.get_mut(idx).and_then(|s| s.conn.as_mut()) else { return };
    match c.life {
        Life::Open | Life::CloseAfterReply => return,
        Life::Closing => {
            c.life = Life::ShutDown;
            // SAFETY: c.fd is this connection's open socket.
            unsafe { libc::shutdown(c.fd, libc::SHUT_RDWR) };
        }
        Life::ShutDown => {}
    }
    if !c.recv_inflight() && !c.send_inflight && !c.is_waiting() {
        // SAFETY: nothing refers to the fd any more; it is closed exactly once.
        unsafe { libc::close(c.fd) };
        conns.slab.remove(idx);
        conns.count -= 1;
        g.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Refuses a just-accepted connection: one best-effort send of `msg` (the socket's
/// buffer is empty, so it fits), then close.
pub(crate) fn reject_connection(fd: i32, msg: &[u8]) {
    // SAFETY: fd is a socket we own and close exactly once here; msg outlives the call.
    unsafe {
        libc::send(fd, msg.as_ptr() as *const libc::c_void, msg.len(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT);
        libc::close(fd);
    }
}
