//! From a Redis-protocol request (name and arguments) to a [`Command`]. Each command's own file
//! parses its arguments; this file finds the file by name and checks arity.

use bytes::Bytes;

use super::{Command, table};
use crate::error::CommandError;

impl Command {
    /// Parses a request by its command's entry in the table: the name (any case), the arity its
    /// spec declares, then the command's own parse. Connection commands (PING, HELLO, ...)
    /// belong to the server's session and are unknown here, like any other unknown name.
    pub fn from_argv(argv: &[Bytes]) -> Result<Command, CommandError> {
        let Some((name, args)) = argv.split_first() else {
            return Err(CommandError::unknown(b"", &[]));
        };
        let mut lower = [0u8; 16];
        if name.len() > lower.len() {
            return Err(CommandError::unknown(name, args));
        }
        for (l, c) in lower.iter_mut().zip(name.iter()) {
            *l = c.to_ascii_lowercase();
        }
        let Some(entry) = table::find(&lower[..name.len()]) else {
            return Err(CommandError::unknown(name, args));
        };
        if !entry.spec.arity_allows(argv.len()) {
            return Err(CommandError::WrongArity(entry.spec.name.to_owned()));
        }
        (entry.parse)(&Args {
            cmd: entry.spec.name,
            args,
        })
    }
}

/// A request's arguments (after the name) and its lowercase name, for error messages.
#[derive(Debug)]
pub(crate) struct Args<'a> {
    pub(crate) cmd: &'a str,
    pub(crate) args: &'a [Bytes],
}

impl<'a> Args<'a> {
    /// Exactly `n` arguments.
    pub(crate) fn exactly(&self, n: usize) -> Result<&'a [Bytes], CommandError> {
        if self.args.len() == n {
            Ok(self.args)
        } else {
            Err(self.arity())
        }
    }

    /// At least `n` arguments.
    pub(crate) fn at_least(&self, n: usize) -> Result<&'a [Bytes], CommandError> {
        if self.args.len() >= n {
            Ok(self.args)
        } else {
            Err(self.arity())
        }
    }

    pub(crate) fn arity(&self) -> CommandError {
        CommandError::WrongArity(self.cmd.to_owned())
    }
}

/// A signed 64-bit integer written exactly as Redis accepts it: optional `-`, digits, no sign
/// `+`, no spaces, no leading zeros.
pub fn int(text: &[u8]) -> Result<i64, CommandError> {
    let bad = CommandError::NotInteger;
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some(_) => (false, text),
        None => return Err(bad),
    };
    if digits.is_empty()
        || digits.len() > 19
        || (digits[0] == b'0' && (digits.len() > 1 || negative))
    {
        return Err(bad);
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(bad);
        }
        let d = i64::from(d - b'0');
        value = value.checked_mul(10).ok_or(CommandError::NotInteger)?;
        value = if negative {
            value.checked_sub(d)
        } else {
            value.checked_add(d)
        }
        .ok_or(CommandError::NotInteger)?;
    }
    Ok(value)
}

/// A finite or infinite double as Redis reads one (`inf`, `-inf` allowed; no spaces, no NaN).
pub(crate) fn float(text: &[u8]) -> Result<f64, CommandError> {
    let s = std::str::from_utf8(text).map_err(|_| CommandError::NotFloat)?;
    if s.is_empty()
        || s.starts_with(|c: char| c.is_whitespace())
        || s.ends_with(|c: char| c.is_whitespace())
    {
        return Err(CommandError::NotFloat);
    }
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => s.parse().map_err(|_| CommandError::NotFloat)?,
    };
    if v.is_nan() {
        return Err(CommandError::NotFloat);
    }
    Ok(v)
}

/// Whether `arg` is the option `name` (any case).
pub(crate) fn is(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Get;

    fn argv(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(int(b"42"), Ok(42));
        assert_eq!(int(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(int(b"9223372036854775807"), Ok(i64::MAX));
        for bad in [
            &b""[..],
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"9223372036854775808",
            b"1.0",
            b"-",
        ] {
            assert_eq!(
                int(bad),
                Err(CommandError::NotInteger),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn names_are_case_insensitive_and_arity_is_checked() {
        assert_eq!(
            Command::from_argv(&argv(&["gEt", "k"])),
            Ok(Command::Get(Get::new("k")))
        );
        assert_eq!(
            Command::from_argv(&argv(&["GET"])),
            Err(CommandError::WrongArity("get".into()))
        );
        assert_eq!(
            Command::from_argv(&argv(&["NOPE", "x"])).map_err(|e| e.to_string()),
            Err("ERR unknown command 'NOPE', with args beginning with: 'x' ".into())
        );
        assert!(Command::from_argv(&argv(&["averyveryverylongcommandname"])).is_err());
    }
}
