//! One interface over the three protocols `kvs bench` speaks: encode a GET or a SET, and decode
//! the next reply into what it means for the request it answers.

use bytes::BytesMut;
use percent_encoding::utf8_percent_encode;

use crate::client::PATH;

use super::workload::Op;
use super::{http, line, resp};

/// The front door being measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// The Redis protocol (GET / SET).
    Resp,
    /// The HTTP API (GET / PUT /kvs/{key}).
    Http,
    /// The line protocol (cmd=get / cmd=create).
    Line,
}

impl Protocol {
    /// The port `kvs serve` listens on for this protocol by default.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Resp => 6379,
            Protocol::Http => 9000,
            Protocol::Line => 9001,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Resp => "resp",
            Protocol::Http => "http",
            Protocol::Line => "line",
        }
    }
}

/// What a reply meant for the request it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A GET found its key.
    Hit,
    /// A GET found no such key (not an error).
    Miss,
    /// A write was acknowledged.
    Stored,
    /// The server refused the request; the kind names the error (`ERR`, `HTTP 503`, ...).
    Failed(String),
}

/// Bytes that are no reply of the protocol: the connection cannot be trusted any further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadReply(pub String);

/// `Ok(None)`: the reply is not complete yet. `Ok(Some((outcome, length)))` otherwise.
pub type Decoded = Result<Option<(Outcome, usize)>, BadReply>;

/// A protocol with what it needs to encode requests to one server.
#[derive(Clone, Debug)]
pub enum Codec {
    Resp,
    Http(http::Requests),
    Line,
}

impl Codec {
    /// `authority` is `host:port`, for HTTP's `Host` header.
    pub fn new(protocol: Protocol, authority: &str) -> Self {
        match protocol {
            Protocol::Resp => Codec::Resp,
            Protocol::Http => Codec::Http(http::Requests::new(authority)),
            Protocol::Line => Codec::Line,
        }
    }

    /// The key prefix as this protocol sends it (percent-encoded in an HTTP path).
    pub fn key_prefix(&self, prefix: &str) -> Vec<u8> {
        match self {
            Codec::Http(_) => utf8_percent_encode(prefix, PATH).to_string().into_bytes(),
            Codec::Resp | Codec::Line => prefix.as_bytes().to_vec(),
        }
    }

    pub fn encode(&self, op: Op, key: &[u8], value: &[u8], out: &mut BytesMut) {
        match (self, op) {
            (Codec::Resp, Op::Get) => resp::encode_get(key, out),
            (Codec::Resp, Op::Set) => resp::encode_set(key, value, out),
            (Codec::Http(r), Op::Get) => r.encode_get(key, out),
            (Codec::Http(r), Op::Set) => r.encode_put(key, value, out),
            (Codec::Line, Op::Get) => line::encode_get(key, out),
            (Codec::Line, Op::Set) => line::encode_set(key, value, out),
        }
    }

    /// The next reply in `buf`, which answers a request of kind `op`.
    pub fn decode(&self, buf: &[u8], op: Op) -> Decoded {
        match self {
            Codec::Resp => resp::decode(buf, op),
            Codec::Http(_) => http::decode(buf, op),
            Codec::Line => line::decode(buf, op),
        }
    }
}
