//! Errors a command answers with. The texts are Redis's own, word for word: client libraries and
//! their users match on them.

use std::fmt;

/// Why a command was refused. The store and the server are unchanged by a refused command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// The command name is not known.
    UnknownCommand {
        name: String,
        args: Vec<String>,
    },
    /// Too many or too few arguments for the named (lowercase) command.
    WrongArity(String),
    Syntax,
    NotInteger,
    NotFloat,
    Overflow,
    /// `INCRBYFLOAT` would produce NaN or infinity.
    NanOrInfinity,
    /// A non-positive or overflowing expire time, in the named command.
    InvalidExpire(String),
    /// `NX` together with `XX`, `GT` or `LT`.
    NxWithOthers,
    /// `GT` and `LT` together in EXPIRE and its kin.
    GtAndLt,
    /// A write would make a value longer than the value size limit.
    StringTooLong,
    /// `SETRANGE` with a negative offset.
    OffsetOutOfRange,
    /// An option the command does not know.
    UnsupportedOption(String),
    /// RENAME of a key that does not exist.
    NoSuchKey,
    /// COPY onto itself.
    SameObject,
    /// A database other than 0.
    DbIndexOutOfRange,
    /// OBJECT FREQ without an LFU eviction policy.
    NoLfuPolicy,
    /// OBJECT IDLETIME under an LFU eviction policy.
    NoLruPolicy,
    /// Over the memory limit, a command that needs memory is refused.
    OutOfMemory,
    /// A SCAN cursor that is not a number.
    InvalidCursor,
    /// A subcommand the command does not have.
    UnknownSubcommand {
        sub: String,
        command: String,
    },
    /// A command for one type used on a key holding another.
    WrongType,
    /// The server cannot record changes durably (its log failed), so it refuses writes.
    LogUnavailable(String),
    /// A bit offset that is not a whole number below 2^32 (and within the value size limit).
    BitOffset,
    /// SETBIT's bit is not 0 or 1.
    BitValue,
    /// BITPOS's bit is not 0 or 1.
    BitArgument,
    /// BITOP NOT with other than one source.
    BitopNot,
    /// An argument a command refuses, in Redis's words (after `ERR `).
    Invalid(&'static str),
    /// The same, for a text that names the command or a number (after `ERR `).
    Other(String),
    /// An error with its own code word instead of `ERR` (`NOGROUP ...`), the whole text.
    Coded(String),
}

impl CommandError {
    /// The error for an unknown command, quoting its name and first arguments as Redis does.
    pub fn unknown(name: &[u8], args: &[bytes::Bytes]) -> Self {
        let show = |b: &[u8]| {
            let s = String::from_utf8_lossy(b);
            s.chars().take(128).collect::<String>()
        };
        CommandError::UnknownCommand {
            name: show(name),
            args: args.iter().take(16).map(|a| show(a)).collect(),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::UnknownCommand { name, args } => {
                write!(
                    f,
                    "ERR unknown command '{name}', with args beginning with: "
                )?;
                for a in args {
                    write!(f, "'{a}' ")?;
                }
                Ok(())
            }
            CommandError::LogUnavailable(why) => write!(
                f,
                "MISCONF kvs cannot write its log, so it refuses writes until restarted; reads still work ({why})"
            ),
            CommandError::WrongArity(cmd) => {
                write!(f, "ERR wrong number of arguments for '{cmd}' command")
            }
            CommandError::Syntax => f.write_str("ERR syntax error"),
            CommandError::WrongType => f.write_str(
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            CommandError::NotInteger => f.write_str("ERR value is not an integer or out of range"),
            CommandError::NotFloat => f.write_str("ERR value is not a valid float"),
            CommandError::Overflow => f.write_str("ERR increment or decrement would overflow"),
            CommandError::NanOrInfinity => {
                f.write_str("ERR increment would produce NaN or Infinity")
            }
            CommandError::InvalidExpire(cmd) => {
                write!(f, "ERR invalid expire time in '{cmd}' command")
            }
            CommandError::NxWithOthers => {
                f.write_str("ERR NX and XX, GT or LT options at the same time are not compatible")
            }
            CommandError::GtAndLt => {
                f.write_str("ERR GT and LT options at the same time are not compatible")
            }
            CommandError::StringTooLong => {
                f.write_str("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
            }
            CommandError::OffsetOutOfRange => f.write_str("ERR offset is out of range"),
            CommandError::BitOffset => {
                f.write_str("ERR bit offset is not an integer or out of range")
            }
            CommandError::BitValue => f.write_str("ERR bit is not an integer or out of range"),
            CommandError::Invalid(why) => write!(f, "ERR {why}"),
            CommandError::Other(why) => write!(f, "ERR {why}"),
            CommandError::Coded(text) => f.write_str(text),
            CommandError::BitArgument => f.write_str("ERR The bit argument must be 1 or 0."),
            CommandError::BitopNot => {
                f.write_str("ERR BITOP NOT must be called with a single source key.")
            }
            CommandError::UnsupportedOption(o) => write!(f, "ERR Unsupported option {o}"),
            CommandError::NoSuchKey => f.write_str("ERR no such key"),
            CommandError::InvalidCursor => f.write_str("ERR invalid cursor"),
            CommandError::SameObject => {
                f.write_str("ERR source and destination objects are the same")
            }
            CommandError::DbIndexOutOfRange => f.write_str("ERR DB index is out of range"),
            CommandError::NoLfuPolicy => f.write_str(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ),
            CommandError::NoLruPolicy => f.write_str(
                "ERR An LRU maxmemory policy is not selected, access time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ),
            CommandError::OutOfMemory => {
                f.write_str("OOM command not allowed when used memory > 'maxmemory'.")
            }
            CommandError::UnknownSubcommand { sub, command } => write!(
                f,
                "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {command} HELP."
            ),
        }
    }
}

impl std::error::Error for CommandError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_redis() {
        let e = CommandError::unknown(b"foo", &[bytes::Bytes::from("a"), bytes::Bytes::from("b")]);
        assert_eq!(
            e.to_string(),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            CommandError::WrongArity("get".into()).to_string(),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            CommandError::GtAndLt.to_string(),
            "ERR GT and LT options at the same time are not compatible"
        );
        assert_eq!(
            CommandError::NxWithOthers.to_string(),
            "ERR NX and XX, GT or LT options at the same time are not compatible"
        );
        assert_eq!(
            CommandError::InvalidExpire("set".into()).to_string(),
            "ERR invalid expire time in 'set' command"
        );
    }
}
