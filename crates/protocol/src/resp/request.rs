//! Decoding requests: `*<n>\r\n` followed by n `$<len>\r\n<bytes>\r\n`, or one inline line.

use bytes::{Bytes, BytesMut};

use super::ProtocolError;
use super::inline::split_args;

/// Limits on what one request may claim, with Redis 7's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// Longest single argument (`proto-max-bulk-len`, 512 MiB).
    pub max_bulk_len: usize,
    /// Most arguments in one request (Redis accepts up to `INT_MAX`).
    pub max_args: usize,
    /// Most bytes buffered for one incomplete request (`client-query-buffer-limit`, 1 GiB).
    pub max_query_buffer: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_bulk_len: 512 * 1024 * 1024,
            max_args: i32::MAX as usize,
            max_query_buffer: 1024 * 1024 * 1024,
        }
    }
}

/// A request found at the front of the buffer: how many bytes it spans, and its arguments.
type Spanned<A> = (usize, Vec<A>);

/// Longest inline request, and longest `*<n>` / `$<len>` header line (Redis's PROTO_INLINE_MAX_SIZE).
const INLINE_MAX: usize = 64 * 1024;
/// Arguments reserved up front, whatever the request claims; more space grows with real bytes.
const PREALLOCATE_ARGS: usize = 1024;

/// Most arguments a client that has not authenticated may announce (Redis's limit).
pub const UNAUTHENTICATED_MAX_ARGS: usize = 10;
/// Longest argument a client that has not authenticated may announce (Redis's limit).
pub const UNAUTHENTICATED_MAX_BULK: usize = 16 * 1024;

/// Decodes requests from a connection's read buffer. It remembers how far it got into a
/// partly received multibulk request, so a large request arriving in many reads is scanned once.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    limits: RequestLimits,
    partial: Option<Partial>,
    /// The client has not authenticated: only small requests are accepted, so it cannot make
    /// the server hold much.
    unauthenticated: bool,
}

/// Progress through a multibulk request whose bytes have not all arrived.
#[derive(Debug)]
struct Partial {
    /// Arguments the request announced.
    expected: usize,
    /// Where each argument found so far lies in the buffer, as (start, end) offsets: 8 bytes
    /// each, since a request never spans more than `max_query_buffer` (at most 4 GiB) bytes.
    args: Vec<(u32, u32)>,
    /// Where parsing resumes.
    pos: usize,
}

impl RequestDecoder {
    pub fn new(limits: RequestLimits) -> Self {
        Self {
            limits,
            partial: None,
            unauthenticated: false,
        }
    }

    /// Whether the client has authenticated; until it has, requests of more than
    /// [`UNAUTHENTICATED_MAX_ARGS`] arguments or with an argument over
    /// [`UNAUTHENTICATED_MAX_BULK`] bytes are refused as soon as their header arrives.
    pub fn set_authenticated(&mut self, authenticated: bool) {
        self.unauthenticated = !authenticated;
    }

    /// Takes the next complete request off the front of `buf`. `Ok(None)`: more bytes are needed
    /// (nothing is consumed). An empty request (`*0`, `*-1`, a blank inline line) is consumed and
    /// skipped. Multibulk arguments share `buf`'s memory: none is copied.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            if first == b'*' {
                let Some((consumed, ranges)) = self.multibulk(buf)? else {
                    return self.need_more(buf);
                };
                let frame = buf.split_to(consumed).freeze();
                if !ranges.is_empty() {
                    return Ok(Some(
                        ranges
                            .into_iter()
                            .map(|(start, end)| frame.slice(start as usize..end as usize))
                            .collect(),
                    ));
                }
            } else {
                let Some((consumed, args)) = inline(buf)? else {
                    return self.need_more(buf);
                };
                let _ = buf.split_to(consumed);
                if !args.is_empty() {
                    return Ok(Some(args.into_iter().map(Bytes::from).collect()));
                }
            }
        }
    }

    /// Bytes the request being received holds: the buffer, and the record of each argument
    /// found in it so far. A request claiming millions of one-byte arguments is counted at what
    /// it costs in memory, not at its size on the wire.
    pub fn held(&self, buf: &[u8]) -> usize {
        let args = self
            .partial
            .as_ref()
            .map_or(0, |p| p.args.capacity() * size_of::<(u32, u32)>());
        buf.len() + args
    }

    fn need_more(&self, buf: &[u8]) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.held(buf) > self.limits.max_query_buffer {
            return Err(ProtocolError::QueryBufferLimit(
                self.limits.max_query_buffer,
            ));
        }
        Ok(None)
    }

    /// Parses one multibulk request at the front of `buf`: (bytes it spans, argument ranges).
    fn multibulk(&mut self, buf: &[u8]) -> Result<Option<Spanned<(u32, u32)>>, ProtocolError> {
        let mut state = match self.partial.take() {
            Some(p) => p,
            None => {
                let Some((count, next)) = header_line(buf, 0, ProtocolError::TooBigMultibulkCount)?
                else {
                    return Ok(None);
                };
                let count = parse_int(&count[1..]).ok_or(ProtocolError::InvalidMultibulkLength)?;
                if self.unauthenticated && count > UNAUTHENTICATED_MAX_ARGS as i64 {
                    return Err(ProtocolError::UnauthenticatedMultibulkLength);
                }
                if count > self.limits.max_args as i64 {
                    return Err(ProtocolError::InvalidMultibulkLength);
                }
                if count <= 0 {
                    return Ok(Some((next, Vec::new())));
                }
                let expected = count as usize;
                Partial {
                    expected,
                    args: Vec::with_capacity(expected.min(PREALLOCATE_ARGS)),
                    pos: next,
                }
            }
        };
        while state.args.len() < state.expected {
            let pos = state.pos;
            let Some(&marker) = buf.get(pos) else {
                self.partial = Some(state);
                return Ok(None);
            };
            if marker != b'$' {
                return Err(ProtocolError::ExpectedBulk(char::from(marker)));
            }
            let Some((len, data_start)) = header_line(buf, pos, ProtocolError::TooBigBulkCount)?
            else {
                self.partial = Some(state);
                return Ok(None);
            };
            let len = parse_int(&len[1..]).ok_or(ProtocolError::InvalidBulkLength)?;
            if self.unauthenticated && len > UNAUTHENTICATED_MAX_BULK as i64 {
                return Err(ProtocolError::UnauthenticatedBulkLength);
            }
            if len < 0 || len as u64 > self.limits.max_bulk_len as u64 {
                return Err(ProtocolError::InvalidBulkLength);
            }
            let data_end = data_start + len as usize;
            // The bytes and their CRLF must all be here; until then nothing is allocated for them.
            if buf.len() < data_end + 2 {
                self.partial = Some(state);
                return Ok(None);
            }
            // Offsets past u32 cannot happen under the query buffer limit; refuse rather than wrap.
            let (Ok(start), Ok(end)) = (u32::try_from(data_start), u32::try_from(data_end)) else {
                return Err(ProtocolError::QueryBufferLimit(
                    self.limits.max_query_buffer,
                ));
            };
            state.args.push((start, end));
            state.pos = data_end + 2;
        }
        Ok(Some((state.pos, state.args)))
    }
}

/// The header line starting at `start` (without its CRLF) and where the next byte is.
/// A header line longer than Redis allows is `too_big`.
fn header_line(
    buf: &[u8],
    start: usize,
    too_big: ProtocolError,
) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let rest = &buf[start..];
    match memchr::memchr(b'\r', rest) {
        Some(cr) if cr > INLINE_MAX => Err(too_big),
        Some(cr) if rest.len() > cr + 1 => {
            if rest[cr + 1] != b'\n' {
                return Err(match too_big {
                    ProtocolError::TooBigMultibulkCount => ProtocolError::InvalidMultibulkLength,
                    _ => ProtocolError::InvalidBulkLength,
                });
            }
            Ok(Some((&rest[..cr], start + cr + 2)))
        }
        Some(_) => Ok(None),
        None if rest.len() > INLINE_MAX => Err(too_big),
        None => Ok(None),
    }
}

/// One inline request: a line ending in `\n` (a `\r` before it is dropped), split like a shell
/// line. Returns the bytes it spans and its arguments (owned: quotes and escapes are resolved).
fn inline(buf: &[u8]) -> Result<Option<Spanned<Vec<u8>>>, ProtocolError> {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        if buf.len() > INLINE_MAX {
            return Err(ProtocolError::TooBigInline);
        }
        return Ok(None);
    };
    if nl > INLINE_MAX {
        return Err(ProtocolError::TooBigInline);
    }
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    Ok(Some((nl + 1, split_args(line)?)))
}

/// Parses a decimal `i64` the way Redis's `string2ll` does: optional `-`, digits, no `+`, no
/// spaces, no leading zeros (except `0` itself).
fn parse_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(i64::from(d - b'0'))?
        } else {
            value.checked_add(i64::from(d - b'0'))?
        };
    }
    if negative && value == 0 {
        return None;
    }
    Some(value)
}
