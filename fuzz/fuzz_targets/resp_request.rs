//! The RESP request decoder on arbitrary bytes, fed in arbitrary pieces: it must never panic,
//! never consume more than it was given, and decode the same requests however the bytes are cut.
#![no_main]

use bytes::BytesMut;
use kvs_protocol::resp::{RequestDecoder, RequestLimits};
use libfuzzer_sys::fuzz_target;

const LIMITS: RequestLimits = RequestLimits {
    max_bulk_len: 1 << 16,
    max_args: 1 << 12,
    max_query_buffer: 1 << 20,
};

/// Every request `bytes` decodes to, fed `step` bytes at a time, and the error that ended it.
fn decode_all(bytes: &[u8], step: usize) -> (Vec<Vec<Vec<u8>>>, bool) {
    let mut decoder = RequestDecoder::new(LIMITS);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in bytes.chunks(step.max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Some(args)) => {
                    assert!(buf.len() < before, "a request consumed nothing");
                    out.push(args.iter().map(|a| a.to_vec()).collect());
                }
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else {
        return;
    };
    let (whole, whole_failed) = decode_all(bytes, bytes.len());
    let (pieces, pieces_failed) = decode_all(bytes, usize::from(step % 16) + 1);
    assert_eq!(whole_failed, pieces_failed);
    assert_eq!(
        whole, pieces,
        "the requests depend on how the bytes arrived"
    );
});
