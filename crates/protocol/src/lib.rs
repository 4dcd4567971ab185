//! `kvs-protocol` holds the wire codecs of kvs as pure functions over bytes: the Redis protocol
//! (RESP2 and RESP3) and the line protocol (`cmd=get | key=1`). Decoders return `Ok(None)` when they need more bytes, never allocate
//! on a length the peer merely claims, and report malformed input in Redis's own words.
//!
//! It does no I/O and knows nothing of the keyspace: the server feeds it the bytes a socket gave
//! and writes out the bytes it produces, so every codec is testable and fuzzable without sockets.

pub mod line;
pub mod resp;
