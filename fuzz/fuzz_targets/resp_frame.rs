//! The RESP reply reader on arbitrary bytes: never a panic, and any frame it reads encodes back
//! (in RESP3) to bytes that read as the same frame.
#![no_main]

use kvs_protocol::resp::{Frame, Version, read_frame};
use libfuzzer_sys::fuzz_target;

fn has_nan(f: &Frame) -> bool {
    match f {
        Frame::Double(d) => d.is_nan(),
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => v.iter().any(has_nan),
        Frame::Map(p) => p.iter().any(|(k, v)| has_nan(k) || has_nan(v)),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((frame, used))) = read_frame(data) {
        assert!(used <= data.len());
        if has_nan(&frame) {
            return;
        }
        let again = frame.to_bytes(Version::Resp3);
        match read_frame(&again) {
            Ok(Some((back, n))) => {
                assert_eq!(n, again.len());
                assert_eq!(back, frame);
            }
            other => panic!("re-encoded frame does not read back: {other:?}"),
        }
    }
});
