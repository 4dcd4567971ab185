//! The Redis protocol as `kvs bench` speaks it: GET and SET requests, and just enough of RESP2 and
//! RESP3 to classify a reply and find where it ends. Pure functions over bytes.

use bytes::{BufMut, BytesMut};

use super::codec::{BadReply, Decoded, Outcome};
use super::workload::Op;

/// Nesting deeper than this in a reply is treated as garbage rather than followed.
const MAX_DEPTH: usize = 32;

pub fn encode_get(key: &[u8], out: &mut BytesMut) {
    out.put_slice(b"*2\r\n$3\r\nGET\r\n");
    bulk(key, out);
}

pub fn encode_set(key: &[u8], value: &[u8], out: &mut BytesMut) {
    out.put_slice(b"*3\r\n$3\r\nSET\r\n");
    bulk(key, out);
    bulk(value, out);
}

fn bulk(bytes: &[u8], out: &mut BytesMut) {
    out.put_u8(b'$');
    out.put_slice(itoa::Buffer::new().format(bytes.len()).as_bytes());
    out.put_slice(b"\r\n");
    out.put_slice(bytes);
    out.put_slice(b"\r\n");
}

/// The first reply in `buf`: what it means for `op`, and its length in bytes.
pub fn decode(buf: &[u8], op: Op) -> Decoded {
    let Some(end) = reply_end(buf, 0, 0)? else {
        return Ok(None);
    };
    let done = match op {
        Op::Get => Outcome::Hit,
        Op::Set => Outcome::Stored,
    };
    let outcome = match buf[0] {
        b'-' => Outcome::Failed(error_kind(&buf[1..end])),
        b'!' => Outcome::Failed(error_kind(blob_text(&buf[1..end]))),
        b'_' => Outcome::Miss,
        b'$' | b'*' if buf.get(1) == Some(&b'-') => Outcome::Miss,
        _ => done,
    };
    Ok(Some((outcome, end)))
}

/// The text of a blob error (`!len\r\ntext\r\n`), after its length line.
fn blob_text(rest: &[u8]) -> &[u8] {
    memchr::memchr(b'\n', rest).map_or(rest, |nl| &rest[nl + 1..])
}

/// An error's kind is its first word, as Redis clients report it (`ERR`, `MISCONF`, `OOM`).
fn error_kind(text: &[u8]) -> String {
    let word = text
        .split(|c| c.is_ascii_whitespace())
        .next()
        .unwrap_or_default();
    let word: String = String::from_utf8_lossy(word).chars().take(32).collect();
    if word.is_empty() {
        "error reply".to_owned()
    } else {
        word
    }
}

/// Where the header line starting at `at` ends (just past its `\r\n`), and its text without the
/// type byte.
fn header(buf: &[u8], at: usize) -> Result<Option<(usize, &[u8])>, BadReply> {
    let Some(nl) = memchr::memchr(b'\n', &buf[at..]).map(|i| at + i) else {
        return Ok(None);
    };
    if nl == at || buf[nl - 1] != b'\r' {
        return Err(BadReply("a reply line without \\r\\n".into()));
    }
    Ok(Some((nl + 1, &buf[at + 1..nl - 1])))
}

fn number(text: &[u8]) -> Result<i64, BadReply> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            BadReply(format!(
                "{:?} is not a length",
                String::from_utf8_lossy(text)
            ))
        })
}

/// The end of the reply that starts at `at`, `None` if it is not complete yet.
fn reply_end(buf: &[u8], at: usize, depth: usize) -> Result<Option<usize>, BadReply> {
    if depth > MAX_DEPTH {
        return Err(BadReply("a reply nested too deeply".into()));
    }
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((after, text)) = header(buf, at)? else {
        return Ok(None);
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(after)),
        b'$' | b'!' | b'=' => {
            let len = number(text)?;
            if len < 0 {
                return Ok(Some(after));
            }
            let end = usize::try_from(len)
                .ok()
                .and_then(|n| after.checked_add(n)?.checked_add(2))
                .ok_or_else(|| BadReply(format!("a bulk reply of {len} bytes")))?;
            if buf.len() < end {
                return Ok(None);
            }
            if &buf[end - 2..end] != b"\r\n" {
                return Err(BadReply("a bulk reply not ended by \\r\\n".into()));
            }
            Ok(Some(end))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = number(text)?;
            let items = if matches!(kind, b'%' | b'|') {
                count.saturating_mul(2)
            } else {
                count
            };
            let mut end = after;
            for _ in 0..items.max(0) {
                match reply_end(buf, end, depth + 1)? {
                    Some(next) => end = next,
                    None => return Ok(None),
                }
            }
            if kind == b'|' {
                // An attribute precedes the reply it describes.
                return reply_end(buf, end, depth + 1);
            }
            Ok(Some(end))
        }
        other => Err(BadReply(format!(
            "a reply starting with {:?}",
            char::from(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8], op: Op) -> Option<(Outcome, usize)> {
        decode(bytes, op).expect("a valid reply")
    }

    #[test]
    fn requests_are_resp_arrays() {
        let mut out = BytesMut::new();
        encode_get(b"bench:1", &mut out);
        encode_set(b"k", b"", &mut out);
        assert_eq!(
            &out[..],
            b"*2\r\n$3\r\nGET\r\n$7\r\nbench:1\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn classifies_replies() {
        assert_eq!(one(b"+OK\r\n", Op::Set), Some((Outcome::Stored, 5)));
        assert_eq!(one(b"$3\r\nabc\r\n+OK", Op::Get), Some((Outcome::Hit, 9)));
        assert_eq!(one(b"$-1\r\n", Op::Get), Some((Outcome::Miss, 5)));
        assert_eq!(one(b"_\r\n", Op::Get), Some((Outcome::Miss, 3)));
        assert_eq!(one(b"*-1\r\n", Op::Get), Some((Outcome::Miss, 5)));
        assert_eq!(one(b":12\r\n", Op::Set), Some((Outcome::Stored, 5)));
        assert_eq!(
            one(b"-MISCONF cannot write\r\n", Op::Set),
            Some((Outcome::Failed("MISCONF".into()), 23))
        );
        assert_eq!(
            one(b"!9\r\nOOM full!\r\n", Op::Set),
            Some((Outcome::Failed("OOM".into()), 15))
        );
        assert_eq!(
            one(b"*2\r\n$1\r\na\r\n%1\r\n+k\r\n:1\r\n", Op::Get),
            Some((Outcome::Hit, 23))
        );
    }

    #[test]
    fn incomplete_replies_wait_for_more() {
        for partial in [
            &b""[..],
            b"+OK",
            b"+OK\r",
            b"$3\r\nab",
            b"$3\r\nabc\r",
            b"*2\r\n:1\r\n",
        ] {
            assert_eq!(one(partial, Op::Get), None, "{partial:?}");
        }
        // A huge claimed length asks for more bytes; nothing is allocated for it.
        assert_eq!(one(b"$9000000000000\r\nab", Op::Get), None);
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            &b"?\r\n"[..],
            b"$x\r\n",
            b"+OK\n",
            b"$2\r\nabcd",
            b"$99999999999999999999\r\n",
        ] {
            assert!(decode(bad, Op::Get).is_err(), "{bad:?}");
        }
        let deep = b"*1\r\n".repeat(100);
        assert!(decode(&deep, Op::Get).is_err());
    }
}
