//! Reply frames and their encoding in RESP2 or RESP3.

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol version a connection speaks; `HELLO 3` switches to RESP3.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    #[default]
    Resp2,
    Resp3,
}

/// One reply. RESP3-only types are written in their RESP2 form on a RESP2 connection, as Redis
/// does: maps and sets as flat arrays, doubles as bulk strings, booleans as 0/1, null as `$-1`.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`: a short status without CR or LF.
    Simple(String),
    /// `-ERR ...`: the full error text, including its code word.
    Error(String),
    Integer(i64),
    Bulk(Bytes),
    /// The absent value (`_` in RESP3, `$-1` in RESP2).
    Null,
    /// The absent array (`_` in RESP3, `*-1` in RESP2), as `EXEC` answers an aborted transaction.
    NullArray,
    Array(Vec<Frame>),
    Map(Vec<(Frame, Frame)>),
    /// Pairs that may repeat (ZRANGE WITHSCORES, HRANDFIELD WITHVALUES): an array of two-element
    /// arrays in RESP3, one flat array in RESP2. Never read from the wire.
    Pairs(Vec<(Frame, Frame)>),
    /// Keys each with its group of items (XREAD's streams with their entries): a map in RESP3,
    /// an array of two-element arrays in RESP2. Never read from the wire.
    Grouped(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Double(f64),
    Boolean(bool),
    /// Text with a three-letter format such as `txt`.
    Verbatim {
        format: [u8; 3],
        text: Bytes,
    },
    BigNumber(String),
    Push(Vec<Frame>),
    /// Several replies, sent one after another: how a command that answers more than once
    /// (SUBSCRIBE confirms each channel on its own) gives its answer. Never read from the wire.
    Many(Vec<Frame>),
}

impl Frame {
    pub fn ok() -> Self {
        Frame::Simple("OK".to_owned())
    }

    /// An error reply with Redis's generic `ERR` code.
    pub fn err(message: impl AsRef<str>) -> Self {
        Frame::Error(format!("ERR {}", message.as_ref()))
    }

    pub fn bulk(data: impl Into<Bytes>) -> Self {
        Frame::Bulk(data.into())
    }

    /// Appends this frame, encoded for `version`, to `out`.
    pub fn encode(&self, version: Version, out: &mut BytesMut) {
        let resp3 = version == Version::Resp3;
        match self {
            Frame::Simple(s) => line(out, b'+', clean(s).as_bytes()),
            // RESP3 has blob errors for text with line breaks; RESP2 can only flatten them.
            Frame::Error(s) if resp3 && s.contains(['\r', '\n']) => bulk(out, b'!', s.as_bytes()),
            Frame::Error(s) => line(out, b'-', clean(s).as_bytes()),
            Frame::Integer(n) => line(out, b':', itoa::Buffer::new().format(*n).as_bytes()),
            Frame::Bulk(b) => bulk(out, b'$', b),
            Frame::Null if resp3 => out.put_slice(b"_\r\n"),
            Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::NullArray if resp3 => out.put_slice(b"_\r\n"),
            Frame::NullArray => out.put_slice(b"*-1\r\n"),
            Frame::Array(items) => aggregate(out, b'*', items, version),
            Frame::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, version),
            Frame::Push(items) => aggregate(out, if resp3 { b'>' } else { b'*' }, items, version),
            Frame::Many(frames) => {
                for frame in frames {
                    frame.encode(version, out);
                }
            }
            Frame::Pairs(pairs) => {
                let count = if resp3 { pairs.len() } else { pairs.len() * 2 };
                line(out, b'*', itoa::Buffer::new().format(count).as_bytes());
                for (k, v) in pairs {
                    if resp3 {
                        out.put_slice(b"*2\r\n");
                    }
                    k.encode(version, out);
                    v.encode(version, out);
                }
            }
            Frame::Grouped(pairs) if !resp3 => {
                line(
                    out,
                    b'*',
                    itoa::Buffer::new().format(pairs.len()).as_bytes(),
                );
                for (k, v) in pairs {
                    out.put_slice(b"*2\r\n");
                    k.encode(version, out);
                    v.encode(version, out);
                }
            }
            Frame::Map(pairs) | Frame::Grouped(pairs) => {
                let (marker, count) = if resp3 {
                    (b'%', pairs.len())
                } else {
                    (b'*', pairs.len() * 2)
                };
                line(out, marker, itoa::Buffer::new().format(count).as_bytes());
                for (k, v) in pairs {
                    k.encode(version, out);
                    v.encode(version, out);
                }
            }
            Frame::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, b'$', text.as_bytes());
                }
            }
            Frame::Boolean(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Boolean(b) => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
            Frame::Verbatim { format, text } if resp3 => {
                let mut body = Vec::with_capacity(text.len() + 4);
                body.extend_from_slice(format);
                body.push(b':');
                body.extend_from_slice(text);
                bulk(out, b'=', &body);
            }
            Frame::Verbatim { text, .. } => bulk(out, b'$', text),
            Frame::BigNumber(n) if resp3 => line(out, b'(', clean(n).as_bytes()),
            Frame::BigNumber(n) => bulk(out, b'$', n.as_bytes()),
        }
    }

    /// This frame encoded for `version`, as one buffer.
    pub fn to_bytes(&self, version: Version) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(version, &mut out);
        out.freeze()
    }
}

/// Simple strings and errors cannot hold CR or LF; they become spaces rather than break framing.
fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\r', '\n']) {
        std::borrow::Cow::Owned(s.replace(['\r', '\n'], " "))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn line(out: &mut BytesMut, marker: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(marker);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, marker: u8, data: &[u8]) {
    line(
        out,
        marker,
        itoa::Buffer::new().format(data.len()).as_bytes(),
    );
    out.reserve(data.len() + 2);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, marker: u8, items: &[Frame], version: Version) {
    line(
        out,
        marker,
        itoa::Buffer::new().format(items.len()).as_bytes(),
    );
    for item in items {
        item.encode(version, out);
    }
}

/// Doubles as Redis 7.0 writes them (C's `%.17g`), `inf`, `-inf`, `nan`.
pub(crate) fn format_double(d: f64) -> String {
    kvs_store::format_double(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: Frame, v: Version) -> Vec<u8> {
        f.to_bytes(v).to_vec()
    }

    #[test]
    fn scalar_frames() {
        use Version::*;
        assert_eq!(enc(Frame::ok(), Resp2), b"+OK\r\n");
        assert_eq!(enc(Frame::err("boom"), Resp2), b"-ERR boom\r\n");
        assert_eq!(enc(Frame::Integer(-42), Resp3), b":-42\r\n");
        assert_eq!(enc(Frame::bulk("hi"), Resp2), b"$2\r\nhi\r\n");
        assert_eq!(enc(Frame::bulk(""), Resp2), b"$0\r\n\r\n");
        assert_eq!(enc(Frame::Null, Resp2), b"$-1\r\n");
        assert_eq!(enc(Frame::Null, Resp3), b"_\r\n");
        assert_eq!(enc(Frame::NullArray, Resp2), b"*-1\r\n");
        assert_eq!(enc(Frame::Boolean(true), Resp3), b"#t\r\n");
        assert_eq!(enc(Frame::Boolean(false), Resp2), b":0\r\n");
        assert_eq!(enc(Frame::Double(1.5), Resp3), b",1.5\r\n");
        assert_eq!(enc(Frame::Double(f64::INFINITY), Resp2), b"$3\r\ninf\r\n");
        assert_eq!(enc(Frame::Simple("a\r\nb".into()), Resp2), b"+a  b\r\n");
        assert_eq!(
            enc(Frame::Error("ERR a\nb".into()), Resp3),
            b"!7\r\nERR a\nb\r\n"
        );
        assert_eq!(enc(Frame::Error("ERR a\nb".into()), Resp2), b"-ERR a b\r\n");
    }

    #[test]
    fn aggregates_downgrade_on_resp2() {
        let map = Frame::Map(vec![(Frame::bulk("k"), Frame::Integer(1))]);
        assert_eq!(enc(map.clone(), Version::Resp3), b"%1\r\n$1\r\nk\r\n:1\r\n");
        assert_eq!(enc(map, Version::Resp2), b"*2\r\n$1\r\nk\r\n:1\r\n");
        let set = Frame::Set(vec![Frame::bulk("a")]);
        assert_eq!(enc(set.clone(), Version::Resp3), b"~1\r\n$1\r\na\r\n");
        assert_eq!(enc(set, Version::Resp2), b"*1\r\n$1\r\na\r\n");
        let v = Frame::Verbatim {
            format: *b"txt",
            text: Bytes::from("hi"),
        };
        assert_eq!(enc(v.clone(), Version::Resp3), b"=6\r\ntxt:hi\r\n");
        assert_eq!(enc(v, Version::Resp2), b"$2\r\nhi\r\n");
    }
}
