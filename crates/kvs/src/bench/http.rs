//! HTTP/1.1 as `kvs bench` speaks it: `GET /kvs/{key}` and `PUT /kvs/{key}` on keep-alive
//! connections, and responses parsed (with `httparse`) only far enough to read the status and
//! find where the body ends. Pure functions over bytes.

use bytes::{BufMut, BytesMut};

use super::codec::{BadReply, Decoded, Outcome};
use super::workload::Op;

/// Most headers a response may carry; kvs sends fewer than ten.
const MAX_HEADERS: usize = 32;
/// A response head longer than this is garbage, not a slow server.
const MAX_HEAD: usize = 64 * 1024;

/// The fixed parts of every request to one server.
#[derive(Clone, Debug)]
pub struct Requests {
    /// `\r\nHost: host:port\r\n`, shared by GET and PUT.
    host: Vec<u8>,
}

impl Requests {
    /// Requests to `authority` (`host:port`, as the `Host` header names it).
    pub fn new(authority: &str) -> Self {
        Requests {
            host: format!(" HTTP/1.1\r\nHost: {authority}\r\n").into_bytes(),
        }
    }

    /// `key` must already be percent-encoded for a path.
    pub fn encode_get(&self, key: &[u8], out: &mut BytesMut) {
        out.put_slice(b"GET /kvs/");
        out.put_slice(key);
        out.put_slice(&self.host);
        out.put_slice(b"\r\n");
    }

    /// `key` must already be percent-encoded for a path.
    pub fn encode_put(&self, key: &[u8], value: &[u8], out: &mut BytesMut) {
        out.put_slice(b"PUT /kvs/");
        out.put_slice(key);
        out.put_slice(&self.host);
        out.put_slice(b"Content-Type: application/octet-stream\r\nContent-Length: ");
        out.put_slice(itoa::Buffer::new().format(value.len()).as_bytes());
        out.put_slice(b"\r\n\r\n");
        out.put_slice(value);
    }
}

/// The first response in `buf`: what it means for `op` (2xx done, 404 on a GET a miss, anything
/// else an error named by its status), and its length in bytes. Interim 1xx responses are skipped.
pub fn decode(buf: &[u8], op: Op) -> Decoded {
    let mut start = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(&buf[start..]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() - start > MAX_HEAD => {
                return Err(BadReply(format!("a response head over {MAX_HEAD} bytes")));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(BadReply(format!("a malformed response: {e}"))),
        };
        let status = response.code.unwrap_or_default();
        let body = start + head;
        if (100..200).contains(&status) {
            start = body;
            continue;
        }
        let end = if matches!(status, 204 | 304) {
            Some(body)
        } else {
            body_end(buf, body, response.headers)?
        };
        let Some(end) = end else {
            return Ok(None);
        };
        let outcome = match (status, op) {
            (200..=299, Op::Get) => Outcome::Hit,
            (200..=299, Op::Set) => Outcome::Stored,
            (404, Op::Get) => Outcome::Miss,
            (status, _) => Outcome::Failed(format!("HTTP {status}")),
        };
        return Ok(Some((outcome, end)));
    }
}

/// Where the body starting at `at` ends, from `Content-Length` or chunked framing.
fn body_end(
    buf: &[u8],
    at: usize,
    headers: &[httparse::Header<'_>],
) -> Result<Option<usize>, BadReply> {
    let mut length = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            length = Some(
                std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or_else(|| BadReply("an invalid Content-Length".into()))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            && h.value.trim_ascii().eq_ignore_ascii_case(b"chunked")
        {
            return chunked_end(buf, at);
        }
    }
    let length = length.ok_or_else(|| BadReply("a response without Content-Length".into()))?;
    let end = at
        .checked_add(length)
        .ok_or_else(|| BadReply("an invalid Content-Length".into()))?;
    Ok((buf.len() >= end).then_some(end))
}

/// The end of a chunked body starting at `at`: chunks, the last (empty) chunk and any trailers.
fn chunked_end(buf: &[u8], mut at: usize) -> Result<Option<usize>, BadReply> {
    let bad = || BadReply("a malformed chunked body".into());
    loop {
        let Some(nl) = memchr::memchr(b'\n', &buf[at..]).map(|i| at + i) else {
            return Ok(None);
        };
        let line = buf[at..nl].strip_suffix(b"\r").ok_or_else(bad)?;
        let size = line.split(|&c| c == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(bad)?;
        at = nl + 1;
        if size == 0 {
            // Trailer lines, then an empty line.
            loop {
                let Some(nl) = memchr::memchr(b'\n', &buf[at..]).map(|i| at + i) else {
                    return Ok(None);
                };
                let empty = nl == at || (nl == at + 1 && buf[at] == b'\r');
                at = nl + 1;
                if empty {
                    return Ok(Some(at));
                }
            }
        }
        let end = at
            .checked_add(size)
            .and_then(|e| e.checked_add(2))
            .ok_or_else(bad)?;
        if buf.len() < end {
            return Ok(None);
        }
        if &buf[end - 2..end] != b"\r\n" {
            return Err(bad());
        }
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8], op: Op) -> Option<(Outcome, usize)> {
        decode(bytes, op).expect("a valid response")
    }

    #[test]
    fn requests_are_keep_alive_http_1_1() {
        let requests = Requests::new("127.0.0.1:9000");
        let mut out = BytesMut::new();
        requests.encode_get(b"bench%3A1", &mut out);
        requests.encode_put(b"k", b"abc", &mut out);
        assert_eq!(
            std::str::from_utf8(&out).expect("ascii"),
            "GET /kvs/bench%3A1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n\r\n\
             PUT /kvs/k HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: 3\r\n\r\nabc"
        );
    }

    #[test]
    fn classifies_responses_by_status() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabcHTTP/1.1";
        assert_eq!(one(ok, Op::Get), Some((Outcome::Hit, 41)));
        let created = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(
            one(created, Op::Set),
            Some((Outcome::Stored, created.len()))
        );
        let missing = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(one(missing, Op::Get), Some((Outcome::Miss, missing.len())));
        let busy = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(
            one(busy, Op::Set),
            Some((Outcome::Failed("HTTP 503".into()), busy.len()))
        );
        let interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(
            one(interim, Op::Set),
            Some((Outcome::Stored, interim.len()))
        );
    }

    #[test]
    fn chunked_bodies_end_after_the_last_chunk() {
        let chunked =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n1;x=y\r\nd\r\n0\r\n\r\n";
        assert_eq!(one(chunked, Op::Get), Some((Outcome::Hit, chunked.len())));
        for cut in 0..chunked.len() {
            assert_eq!(one(&chunked[..cut], Op::Get), None, "cut at {cut}");
        }
    }

    #[test]
    fn incomplete_and_bad_responses() {
        assert_eq!(
            one(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab", Op::Get),
            None
        );
        assert_eq!(
            one(
                b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999\r\n\r\n",
                Op::Get
            ),
            None
        );
        for bad in [
            &b"SMTP ready\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(decode(bad, Op::Get).is_err(), "{bad:?}");
        }
    }
}
