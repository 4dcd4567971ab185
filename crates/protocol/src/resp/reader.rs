//! Reading reply frames, for clients (the `kvs` command line, tests): RESP2 and RESP3.

use bytes::Bytes;

use super::{Frame, ProtocolError};

/// Deepest nesting of aggregates accepted, so a hostile peer cannot exhaust the stack.
const MAX_DEPTH: usize = 128;
/// Elements reserved up front for an aggregate, whatever it claims.
const PREALLOCATE: usize = 1024;

/// Reads one frame from the front of `buf`: the frame and how many bytes it spans, or `Ok(None)`
/// when more bytes are needed. Attributes (`|`) are read and dropped.
pub fn read_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, ProtocolError> {
    let mut pos = 0;
    match frame(buf, &mut pos, 0)? {
        Some(f) => Ok(Some((f, pos))),
        None => Ok(None),
    }
}

fn bad(what: &'static str) -> ProtocolError {
    ProtocolError::InvalidFrame(what)
}

/// The line at `*pos` without CRLF; advances `pos` past it.
fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, ProtocolError> {
    let rest = &buf[*pos..];
    let Some(cr) = memchr::memchr(b'\r', rest) else {
        return Ok(None);
    };
    match rest.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') if memchr::memchr(b'\n', &rest[..cr]).is_some() => Err(bad("LF inside a line")),
        Some(b'\n') => {
            *pos += cr + 2;
            Ok(Some(&rest[..cr]))
        }
        Some(_) => Err(bad("CR without LF")),
    }
}

fn int(text: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(bad("invalid integer"))
}

fn text(bytes: &[u8]) -> Result<String, ProtocolError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| bad("text is not UTF-8"))
}

fn frame(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Frame>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(bad("nested too deeply"));
    }
    let Some(&marker) = buf.get(*pos) else {
        return Ok(None);
    };
    *pos += 1;
    let Some(head) = line(buf, pos)? else {
        return Ok(None);
    };
    let f = match marker {
        b'+' => Frame::Simple(text(head)?),
        b'-' => Frame::Error(text(head)?),
        b':' => Frame::Integer(int(head)?),
        b'_' if head.is_empty() => Frame::Null,
        b'#' => match head {
            b"t" => Frame::Boolean(true),
            b"f" => Frame::Boolean(false),
            _ => return Err(bad("invalid boolean")),
        },
        b',' => Frame::Double(parse_double(head)?),
        b'(' => Frame::BigNumber(text(head)?),
        b'$' | b'!' | b'=' => {
            let len = int(head)?;
            if len == -1 && marker == b'$' {
                return Ok(Some(Frame::Null));
            }
            let len = usize::try_from(len).map_err(|_| bad("negative length"))?;
            let start = *pos;
            let Some(end) = start.checked_add(len) else {
                return Err(bad("length overflows"));
            };
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(bad("bulk not followed by CRLF"));
            }
            *pos = end + 2;
            let data = &buf[start..end];
            match marker {
                b'$' => Frame::Bulk(Bytes::copy_from_slice(data)),
                b'!' => Frame::Error(text(data)?),
                _ => {
                    if data.len() < 4 || data[3] != b':' {
                        return Err(bad("verbatim string without format"));
                    }
                    Frame::Verbatim {
                        format: [data[0], data[1], data[2]],
                        text: Bytes::copy_from_slice(&data[4..]),
                    }
                }
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = int(head)?;
            if count == -1 && marker == b'*' {
                return Ok(Some(Frame::NullArray));
            }
            let count = usize::try_from(count).map_err(|_| bad("negative count"))?;
            let per = if matches!(marker, b'%' | b'|') { 2 } else { 1 };
            let mut items = Vec::with_capacity(count.saturating_mul(per).min(PREALLOCATE));
            for _ in 0..count.saturating_mul(per) {
                match frame(buf, pos, depth + 1)? {
                    Some(f) => items.push(f),
                    None => return Ok(None),
                }
            }
            match marker {
                b'*' => Frame::Array(items),
                b'~' => Frame::Set(items),
                b'>' => Frame::Push(items),
                b'%' => Frame::Map(pairs(items)),
                _ => return frame(buf, pos, depth),
            }
        }
        _ => return Err(bad("unknown type marker")),
    };
    Ok(Some(f))
}

fn pairs(items: Vec<Frame>) -> Vec<(Frame, Frame)> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

fn parse_double(text: &[u8]) -> Result<f64, ProtocolError> {
    match text {
        b"inf" => Ok(f64::INFINITY),
        b"-inf" => Ok(f64::NEG_INFINITY),
        b"nan" => Ok(f64::NAN),
        _ => std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(bad("invalid double")),
    }
}
