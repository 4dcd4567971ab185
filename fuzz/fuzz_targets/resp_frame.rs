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

/// RESP3 has one null: RESP2's null array (`*-1`) reads back from RESP3 as the plain null.
fn resp3_view(f: Frame) -> Frame {
    match f {
        Frame::NullArray => Frame::Null,
        Frame::Array(v) => Frame::Array(v.into_iter().map(resp3_view).collect()),
        Frame::Set(v) => Frame::Set(v.into_iter().map(resp3_view).collect()),
        Frame::Push(v) => Frame::Push(v.into_iter().map(resp3_view).collect()),
        Frame::Map(p) => Frame::Map(
            p.into_iter()
                .map(|(k, v)| (resp3_view(k), resp3_view(v)))
                .collect(),
        ),
        other => other,
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
                assert_eq!(back, resp3_view(frame));
            }
            other => panic!("re-encoded frame does not read back: {other:?}"),
        }
    }
});
