//! Typed results of shard-local operations: [`OpStatus`] and [`OpResult`].
//!
//! ```text
//!   command code ──▶ OpResult<T> = Result<T, OpStatus>
//!                                        │
//!                                        ▼  OpStatus::reply (the one place)
//!                       "-WRONGTYPE Operation against a key holding ...\r\n"
//! ```
//!
//! Commands and store lookups say *what* went wrong as an `OpStatus`; the text a client
//! sees is written in one place, [`OpStatus::reply`], with Redis 7.0's exact wording
//! (the reply builder of another protocol, e.g. memcached, will map the same statuses
//! to its own replies). The variants are exactly the errors the string and generic
//! commands produce today; a new family adds the ones it needs here, and the exhaustive
//! match in `reply` makes it write their text.
//!
//! Errors that quote client bytes (`ERR Unsupported option <arg>`) or belong to one
//! command's own algorithm (LCS's memory limits) are still written where they arise.

use crate::reply::ReplyBuf;

/// Why an operation did not happen (each renders to one Redis error text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpStatus {
    /// The key holds a value of another type.
    WrongType,
    /// An argument or the stored value is not a 64-bit integer (or a db index not a C int).
    NotInteger,
    /// An unknown, misplaced or conflicting option.
    Syntax,
    /// RENAME's source key does not exist.
    NoSuchKey,
    /// COPY/MOVE/RENAME onto the same key in the same db.
    SameObject,
    /// A db index outside `0..databases`.
    DbIndexOutOfRange,
    /// SWAPDB's first or second index is not an integer.
    InvalidFirstDbIndex,
    InvalidSecondDbIndex,
    /// A negative SETRANGE offset.
    OffsetOutOfRange,
    /// INCRBY/DECRBY result outside i64.
    Overflow,
    /// DECRBY by i64::MIN (its negation overflows).
    DecrementOverflow,
    /// INCRBYFLOAT: the value or the increment is not a float.
    NotValidFloat,
    /// INCRBYFLOAT: the sum is NaN or infinite.
    NanOrInfinity,
    /// A string would grow past proto-max-bulk-len.
    StringTooBig,
    /// A zero, negative or overflowing expire time; the command's name (lowercase, as
    /// Redis prints it) goes in the text.
    InvalidExpireTime(&'static str),
    /// LCS on a key of another type.
    LcsNotStrings,
    /// A DENYOOM command while used memory is over maxmemory.
    Oom,
    /// SCAN's cursor is not an unsigned integer.
    InvalidCursor,
}

/// The result of an operation: a value, or why not.
pub type OpResult<T> = Result<T, OpStatus>;

impl OpStatus {
    /// Writes the error reply Redis sends for this status.
    pub fn reply(self, out: &mut ReplyBuf) {
        let text = match self {
            OpStatus::WrongType => "WRONGTYPE Operation against a key holding the wrong kind of value",
            OpStatus::NotInteger => "ERR value is not an integer or out of range",
            OpStatus::Syntax => "ERR syntax error",
            OpStatus::NoSuchKey => "ERR no such key",
            OpStatus::SameObject => "ERR source and destination objects are the same",
            OpStatus::DbIndexOutOfRange => "ERR DB index is out of range",
            OpStatus::InvalidFirstDbIndex => "ERR invalid first DB index",
            OpStatus::InvalidSecondDbIndex => "ERR invalid second DB index",
            OpStatus::OffsetOutOfRange => "ERR offset is out of range",
            OpStatus::Overflow => "ERR increment or decrement would overflow",
            OpStatus::DecrementOverflow => "ERR decrement would overflow",
            OpStatus::NotValidFloat => "ERR value is not a valid float",
            OpStatus::NanOrInfinity => "ERR increment would produce NaN or Infinity",
            OpStatus::StringTooBig => "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
            OpStatus::InvalidExpireTime(cmd) => {
                return out.error(&format!("ERR invalid expire time in '{cmd}' command"));
            }
            OpStatus::LcsNotStrings => "ERR The specified keys must contain string values",
            OpStatus::Oom => "OOM command not allowed when used memory > 'maxmemory'.",
            OpStatus::InvalidCursor => "ERR invalid cursor",
        };
        out.error(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: OpStatus) -> Vec<u8> {
        let mut out = ReplyBuf::new(false);
        s.reply(&mut out);
        out.as_bytes().to_vec()
    }

    // Each status is one RESP error line with Redis's text (the integration suites
    // compare them with a real redis-server byte for byte).
    #[test]
    fn renders_redis_text() {
        assert_eq!(
            text(OpStatus::WrongType),
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        );
        assert_eq!(text(OpStatus::NotInteger), b"-ERR value is not an integer or out of range\r\n");
        assert_eq!(text(OpStatus::Syntax), b"-ERR syntax error\r\n");
        assert_eq!(text(OpStatus::InvalidExpireTime("getex")), b"-ERR invalid expire time in 'getex' command\r\n");
        assert_eq!(text(OpStatus::Oom), b"-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    }
}
