//! Reply frames: encode → read round trips in RESP3, and RESP2's downgraded forms.

use bytes::Bytes;
use kvs_protocol::resp::{Frame, Version, read_frame};
use proptest::prelude::*;

fn arb_frame() -> impl Strategy<Value = Frame> {
    let text = "[a-zA-Z0-9 _:.-]{0,20}";
    let leaf = prop_oneof![
        text.prop_map(Frame::Simple),
        text.prop_map(|t| Frame::Error(format!("ERR {t}"))),
        any::<i64>().prop_map(Frame::Integer),
        prop::collection::vec(any::<u8>(), 0..50).prop_map(|b| Frame::Bulk(Bytes::from(b))),
        Just(Frame::Null),
        any::<bool>().prop_map(Frame::Boolean),
        (-1e12f64..1e12).prop_map(Frame::Double),
        "[0-9]{1,30}".prop_map(Frame::BigNumber),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(|b| Frame::Verbatim {
            format: *b"txt",
            text: Bytes::from(b)
        }),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Frame::Array),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Frame::Set),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Frame::Push),
            prop::collection::vec((inner.clone(), inner), 0..3).prop_map(Frame::Map),
        ]
    })
}

proptest! {
    #[test]
    fn resp3_round_trips(frame in arb_frame()) {
        let wire = frame.to_bytes(Version::Resp3);
        let (back, used) = read_frame(&wire).expect("valid").expect("complete");
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(back, frame);
        // Every proper prefix asks for more bytes.
        for cut in 0..wire.len() {
            prop_assert!(read_frame(&wire[..cut]).expect("valid prefix").is_none());
        }
    }

    #[test]
    fn resp2_output_is_pure_resp2(frame in arb_frame()) {
        let wire = frame.to_bytes(Version::Resp2);
        let (back, used) = read_frame(&wire).expect("valid").expect("complete");
        prop_assert_eq!(used, wire.len());
        fn resp2_only(f: &Frame) -> bool {
            match f {
                Frame::Simple(_) | Frame::Error(_) | Frame::Integer(_) | Frame::Bulk(_) | Frame::Null | Frame::NullArray => true,
                Frame::Array(items) => items.iter().all(resp2_only),
                _ => false,
            }
        }
        prop_assert!(resp2_only(&back), "{:?}", back);
    }

    #[test]
    fn arbitrary_reply_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = read_frame(&bytes);
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let wire = "*1\r\n".repeat(100_000);
    assert!(read_frame(wire.as_bytes()).is_err());
}

#[test]
fn a_line_break_inside_a_simple_string_is_refused() {
    // Found by fuzzing: a bare LF before the CRLF must not be read as part of the text.
    assert!(read_frame(b"+a\nb\r\n").is_err());
}

#[test]
fn resp2_nulls_read_back() {
    assert_eq!(read_frame(b"$-1\r\n"), Ok(Some((Frame::Null, 5))));
    assert_eq!(read_frame(b"*-1\r\n"), Ok(Some((Frame::NullArray, 5))));
}
