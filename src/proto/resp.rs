//! RESP, the Redis protocol, as a [`Protocol`](super::Protocol): the request parser is
//! [`crate::resp`] (with Redis's limits on unauthenticated clients), the reply builder
//! [`ReplyBuf`], and the refusals at accept are Redis's texts.

use bumpalo::Bump;

use super::{Refused, Request};
use crate::reply::ReplyBuf;
use crate::resp::{Limits, Parsed};

/// One request of a RESP connection (multibulk or inline); a protocol error is
/// answered with Redis's `-ERR Protocol error: ...`.
#[inline]
pub fn parse<'a>(buf: &'a [u8], arena: &'a Bump, authed: bool, out: &mut ReplyBuf) -> Request<'a> {
    let limits = Limits { authenticated: authed, ..Default::default() };
    match crate::resp::parse(buf, arena, &limits) {
        Parsed::Complete { args, consumed } => Request::Command { args, consumed },
        Parsed::Incomplete { need } => Request::Incomplete { need },
        Parsed::Error(e) => {
            e.write_reply(&mut out.buf);
            Request::Malformed
        }
    }
}

/// Redis's texts for a connection turned away at accept.
pub fn refusal(why: Refused) -> &'static [u8] {
    match why {
        Refused::MaxClients => b"-ERR max number of clients reached\r\n",
        Refused::ProtectedMode => PROTECTED_MODE_DENIED.as_bytes(),
    }
}

/// Redis's protected-mode refusal (networking.c, 7.0), sent to a non-loopback client
/// when protected mode is on and no password is set.
pub const PROTECTED_MODE_DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";
