//! Wire protocols: what a listener speaks, and so every connection it accepts.
//!
//! ```text
//!   listener (fd, Protocol) ──accept──▶ Conn { proto, .. }
//!   Worker::process ──▶ c.proto.parse(unparsed input) ──▶ Request::Command { args }
//!                                                          │  admission, execution
//!                                                          ▼  (cmd, tx: protocol-blind)
//!                       replies written into c.out (the protocol's reply builder)
//! ```
//!
//! A protocol is a module here plus a variant of [`Protocol`]: the compiler then asks,
//! at each `match` below, for its request parser (bytes → an argument vector of the
//! command table, or "incomplete", or a protocol error already answered), its key
//! peek for prefetching, its refusal of a connection (maxclients, protected mode) and
//! its reply builder. The event loop and the pipeline (`tx::pipeline`) only call these
//! methods; they never name a protocol. Today there is one, RESP ([`resp`]); its reply
//! builder is [`ReplyBuf`] (RESP2, or RESP3 after `HELLO 3`).

pub mod resp;

use bumpalo::Bump;
use bumpalo::collections::Vec as BumpVec;

use crate::reply::ReplyBuf;

/// The protocol of a listener and of the connections it accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Redis's RESP: RESP2, or RESP3 after `HELLO 3`.
    Resp,
}

/// A listening socket and the protocol of the connections it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    pub fd: i32,
    pub proto: Protocol,
}

/// What a protocol's parser found at the start of a connection's unparsed input.
pub enum Request<'a> {
    /// One request as an argument vector of the command table (name first; empty for
    /// a request that does nothing, which the caller skips), and the bytes it took
    /// (always > 0).
    Command { args: BumpVec<'a, &'a [u8]>, consumed: usize },
    /// Not all there yet; nothing consumed. `need`: a lower bound of the bytes the
    /// request takes in all (0 if unknown), which caps the read buffer's growth.
    Incomplete { need: usize },
    /// The input violates the protocol: its error reply has been written; the
    /// connection is closed once the replies are sent.
    Malformed,
}

/// Why a just-accepted connection is turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `maxclients` connections are open.
    MaxClients,
    /// Protected mode is on, no password is set and the peer is not on loopback.
    ProtectedMode,
}

impl Protocol {
    /// Parses the request at the start of `buf` (argument copies, if any, go into
    /// `arena`); a protocol error's reply goes into `out`. `authed`: the connection has
    /// authenticated (a protocol may limit what an unauthenticated client may send).
    #[inline]
    pub fn parse<'a>(self, buf: &'a [u8], arena: &'a Bump, authed: bool, out: &mut ReplyBuf) -> Request<'a> {
        match self {
            Protocol::Resp => resp::parse(buf, arena, authed, out),
        }
    }

    /// Calls `f` with the keys of the next (at most `max`) complete requests in `buf`,
    /// for prefetching; returns how many requests it looked at. A cheap scan, not a
    /// parse: it may stop early, and may see fewer keys than the requests have.
    #[inline]
    pub fn peek_keys<'a>(self, buf: &'a [u8], max: usize, f: impl FnMut(&'a [u8])) -> usize {
        match self {
            Protocol::Resp => crate::resp::peek_keys(buf, max, f),
        }
    }

    /// The bytes sent to a connection turned away at accept, before it is closed.
    pub fn refusal(self, why: Refused) -> &'static [u8] {
        match self {
            Protocol::Resp => resp::refusal(why),
        }
    }

    /// A new connection's reply builder.
    pub fn reply_buf(self) -> ReplyBuf {
        match self {
            Protocol::Resp => ReplyBuf::new(false),
        }
    }
}
