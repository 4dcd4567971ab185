//! The line protocol as `kvs bench` speaks it: `cmd=get|key=K` and `cmd=create|key=K|body=V`
//! (create stores whether or not the key exists), one reply line each: the value, or a JSON error
//! line whose `errorcode` 10 means "not found". Pure functions over bytes.

use bytes::{BufMut, BytesMut};

use super::codec::{BadReply, Decoded, Outcome};
use super::workload::Op;

/// The line protocol's "not found" error code.
const NOT_FOUND: u32 = 10;

/// `key` must hold no `|`, `\`, line break or surrounding space (see [`usable_key_prefix`]).
pub fn encode_get(key: &[u8], out: &mut BytesMut) {
    out.put_slice(b"cmd=get|key=");
    out.put_slice(key);
    out.put_u8(b'\n');
}

/// `value` must hold no `|`, `\` or line break: `kvs bench` sends `[a-z0-9]` only.
pub fn encode_set(key: &[u8], value: &[u8], out: &mut BytesMut) {
    out.put_slice(b"cmd=create|key=");
    out.put_slice(key);
    out.put_slice(b"|body=");
    out.put_slice(value);
    out.put_u8(b'\n');
}

/// Whether a key prefix can be sent as it is: the line protocol splits fields at `|`, ends
/// requests at line breaks, resolves `\` escapes and trims spaces around a value.
pub fn usable_key_prefix(prefix: &str) -> bool {
    !prefix.starts_with(|c: char| c.is_ascii_whitespace())
        && !prefix.contains(['|', '\\', '\n', '\r'])
}

/// The first reply line in `buf`: what it means for `op`, and its length with the line end.
pub fn decode(buf: &[u8], op: Op) -> Decoded {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        return Ok(None);
    };
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let outcome = if line.starts_with(b"{\"error\":") {
        match (error_code(line), op) {
            (Some(NOT_FOUND), Op::Get) => Outcome::Miss,
            (Some(code), _) => Outcome::Failed(format!("line error {code}")),
            (None, _) => return Err(BadReply("an error line without errorcode".into())),
        }
    } else if op == Op::Get {
        Outcome::Hit
    } else {
        Outcome::Stored
    };
    Ok(Some((outcome, nl + 1)))
}

/// The `errorcode` of an error line: `{"error":"…","errorcode":10,"errors":{}}`.
fn error_code(line: &[u8]) -> Option<u32> {
    const FIELD: &[u8] = b"\"errorcode\":";
    let at = memchr::memmem::rfind(line, FIELD)? + FIELD.len();
    let digits = &line[at..];
    let len = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    std::str::from_utf8(&digits[..len]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8], op: Op) -> Option<(Outcome, usize)> {
        decode(bytes, op).expect("a valid reply")
    }

    #[test]
    fn requests_are_one_line_each() {
        let mut out = BytesMut::new();
        encode_get(b"bench:1", &mut out);
        encode_set(b"bench:2", b"ab1", &mut out);
        assert_eq!(
            &out[..],
            b"cmd=get|key=bench:1\ncmd=create|key=bench:2|body=ab1\n"
        );
    }

    #[test]
    fn classifies_reply_lines() {
        assert_eq!(one(b"abc\nxyz", Op::Get), Some((Outcome::Hit, 4)));
        assert_eq!(one(b"\n", Op::Get), Some((Outcome::Hit, 1)));
        assert_eq!(one(b"abc\r\n", Op::Set), Some((Outcome::Stored, 5)));
        let missing = b"{\"error\":\"key \\\"k\\\" not found\",\"errorcode\":10,\"errors\":{}}\n";
        assert_eq!(one(missing, Op::Get), Some((Outcome::Miss, missing.len())));
        let refused = b"{\"error\":\"read only\",\"errorcode\":20,\"errors\":{}}\n";
        assert_eq!(
            one(refused, Op::Set),
            Some((Outcome::Failed("line error 20".into()), refused.len()))
        );
        assert_eq!(one(b"abc", Op::Get), None);
        assert!(decode(b"{\"error\":\"?\"}\n", Op::Get).is_err());
    }

    #[test]
    fn prefixes_that_would_break_framing_are_refused() {
        assert!(usable_key_prefix("bench:"));
        assert!(usable_key_prefix(""));
        for bad in ["a|b", "a\\b", "a\nb", " a", "a\r"] {
            assert!(!usable_key_prefix(bad), "{bad:?}");
        }
    }
}
