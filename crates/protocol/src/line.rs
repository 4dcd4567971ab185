//! The line protocol of kvs's first users (`nc`, `telnet`, shell scripts): one request per line,
//! `|`-separated `name=value` fields in any order, one reply line per request.
//!
//! ```text
//! cmd=get | key=1
//! cmd=create | key=1 | body={"name":"mob"}
//! ```
//!
//! Framing never breaks: inside a value, `\n`, `\r`, `\|` and `\\` stand for a line feed, a
//! carriage return, a pipe and a backslash, both in requests and in replies (any other backslash
//! is kept as it is). So a stored value holding line breaks comes back on one line, escaped, and
//! a body may contain `|` as `\|`. A name is split from its value at the first `=`, so `=` may
//! appear in values. Spaces around fields are ignored; `\r\n` ends a line as well as `\n`.

use bytes::{Bytes, BytesMut};

/// One parsed request line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineRequest {
    /// The fields in the order given, names lowercased, values unescaped.
    pub fields: Vec<(String, Bytes)>,
}

impl LineRequest {
    /// The value of field `name` (the first, if repeated).
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Why a line could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// A field without `=`.
    #[error("field {0:?} is not name=value")]
    NotAField(String),
    /// More bytes than the limit without a line end; the connection must close.
    #[error("the request line exceeds {0} bytes")]
    TooLong(usize),
    /// A line holding nothing but spaces: answered with an error line, like any bad request,
    /// so a client always gets one reply per line it sends.
    #[error("the request line is empty")]
    Empty,
}

/// Takes the next line off `buf`. `Ok(None)`: no complete line yet (nothing consumed); at end of
/// input pass `at_eof` so a last line without a newline is still read. A blank line is an
/// [`LineError::Empty`], since every line sent gets its reply; only blank bytes left at the end of
/// input with no line end are dropped.
pub fn decode(
    buf: &mut BytesMut,
    max_line: usize,
    at_eof: bool,
) -> Result<Option<LineRequest>, LineError> {
    let (line, ended) = match memchr::memchr(b'\n', buf) {
        Some(nl) if nl > max_line => return Err(LineError::TooLong(max_line)),
        Some(nl) => {
            let mut line = buf.split_to(nl + 1);
            line.truncate(nl);
            (line, true)
        }
        None if buf.len() > max_line => return Err(LineError::TooLong(max_line)),
        None if at_eof && !buf.is_empty() => (buf.split(), false),
        None => return Ok(None),
    };
    let line = line.strip_suffix(b"\r").unwrap_or(&line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return if ended {
            Err(LineError::Empty)
        } else {
            Ok(None)
        };
    }
    parse(line).map(Some)
}

fn parse(line: &[u8]) -> Result<LineRequest, LineError> {
    let mut fields = Vec::new();
    for raw in split_unescaped_pipes(line) {
        let field = raw.trim_ascii();
        if field.is_empty() {
            continue;
        }
        let Some(eq) = memchr::memchr(b'=', field) else {
            return Err(LineError::NotAField(
                String::from_utf8_lossy(field).into_owned(),
            ));
        };
        let name = String::from_utf8_lossy(field[..eq].trim_ascii()).to_ascii_lowercase();
        let value = unescape(field[eq + 1..].trim_ascii());
        fields.push((name, Bytes::from(value)));
    }
    Ok(LineRequest { fields })
}

/// Splits at `|` that is not escaped as `\|` (an escaped backslash `\\` does not escape).
fn split_unescaped_pipes(line: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'\\' => i += 2,
            b'|' => {
                parts.push(&line[start..i]);
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    parts.push(&line[start.min(line.len())..]);
    parts
}

/// Resolves `\n`, `\r`, `\|`, `\\`; any other backslash is kept.
pub fn unescape(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match (value[i], value.get(i + 1)) {
            (b'\\', Some(b'n')) => out.push(b'\n'),
            (b'\\', Some(b'r')) => out.push(b'\r'),
            (b'\\', Some(b'|')) => out.push(b'|'),
            (b'\\', Some(b'\\')) => out.push(b'\\'),
            (c, _) => {
                out.push(c);
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    out
}

/// Escapes a value for a reply line: `\n`, `\r`, `\` become `\n`, `\r`, `\\`, so the value can
/// never end the line early.
pub fn escape(value: &[u8], out: &mut Vec<u8>) {
    for &c in value {
        match c {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            c => out.push(c),
        }
    }
}

/// A reply line holding `value`, escaped, and the line end.
pub fn value_line(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 2);
    escape(value, &mut out);
    out.push(b'\n');
    out
}

/// An error reply line in the seed's JSON shape: `{"error":"…","errorcode":N,"errors":{}}`.
pub fn error_line(message: &str, code: u32) -> Vec<u8> {
    let mut text = String::with_capacity(message.len() + 40);
    text.push_str("{\"error\":\"");
    for c in message.chars() {
        match c {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            c if (c as u32) < 0x20 => text.push_str(&format!("\\u{:04x}", c as u32)),
            c => text.push(c),
        }
    }
    text.push_str(&format!("\",\"errorcode\":{code},\"errors\":{{}}}}\n"));
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &str) -> Result<Option<LineRequest>, LineError> {
        decode(&mut BytesMut::from(input.as_bytes()), 1024, false)
    }

    fn fields(input: &str) -> Vec<(String, String)> {
        one(input)
            .expect("valid")
            .expect("complete")
            .fields
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
            .collect()
    }

    #[test]
    fn fields_in_any_order_with_spaces_and_crlf() {
        assert_eq!(
            fields("cmd=get | key=1\n"),
            [("cmd".into(), "get".into()), ("key".into(), "1".into())]
        );
        assert_eq!(
            fields("  key = 1|CMD=get  \r\n"),
            [("key".into(), "1".into()), ("cmd".into(), "get".into())]
        );
        assert_eq!(
            fields("cmd=create|key=k|body=a=b=c\n")[2],
            ("body".into(), "a=b=c".into())
        );
    }

    #[test]
    fn escapes_keep_framing() {
        assert_eq!(
            fields("cmd=create|key=k|body=line1\\nline2\\|pipe\\\\back\\x\n")[2].1,
            "line1\nline2|pipe\\back\\x"
        );
        let mut out = Vec::new();
        escape(b"a\nb\r\\c|", &mut out);
        assert_eq!(out, b"a\\nb\\r\\\\c|");
        assert_eq!(unescape(&out), b"a\nb\r\\c|");
    }

    #[test]
    fn incomplete_blank_and_final_lines() {
        assert_eq!(one("cmd=get | key=1"), Ok(None));
        let mut buf = BytesMut::from(&b"\r\n\n  \ncmd=get|key=2"[..]);
        // Every blank line is a request of its own and gets its error, one per line.
        for _ in 0..3 {
            assert_eq!(decode(&mut buf, 1024, false), Err(LineError::Empty));
        }
        assert_eq!(decode(&mut buf, 1024, false), Ok(None));
        assert_eq!(buf.len(), 13);
        let last = decode(&mut buf, 1024, true)
            .expect("valid")
            .expect("the last line is read at EOF");
        assert_eq!(last.get("key").map(|v| &v[..]), Some(&b"2"[..]));
        assert!(buf.is_empty());
        // Blank bytes at the end of input with no line end are no request.
        let mut tail = BytesMut::from(&b"  "[..]);
        assert_eq!(decode(&mut tail, 1024, true), Ok(None));
        assert!(tail.is_empty());
    }

    #[test]
    fn errors() {
        assert_eq!(
            one("cmd=get | oops\n"),
            Err(LineError::NotAField("oops".into()))
        );
        let long = "x".repeat(2000);
        assert_eq!(one(&long), Err(LineError::TooLong(1024)));
        assert_eq!(
            String::from_utf8(error_line("key \"1\" not found", 10)).expect("utf8"),
            "{\"error\":\"key \\\"1\\\" not found\",\"errorcode\":10,\"errors\":{}}\n"
        );
    }
}
