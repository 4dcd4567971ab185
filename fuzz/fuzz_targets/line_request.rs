//! The line-protocol decoder on arbitrary bytes: never a panic, progress on every request, and
//! escaping any value then unescaping it gives the value back.
#![no_main]

use bytes::BytesMut;
use kvs_protocol::line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let mut rounds = 0;
    loop {
        let before = buf.len();
        match line::decode(&mut buf, 4096, true) {
            // A bad line is answered and skipped: it must be consumed too.
            Ok(Some(_)) | Err(line::LineError::Empty | line::LineError::NotAField(_)) => {
                assert!(buf.len() < before, "a line consumed nothing")
            }
            Ok(None) | Err(line::LineError::TooLong(_)) => break,
        }
        rounds += 1;
        assert!(rounds <= data.len() + 1);
    }
    let mut escaped = Vec::new();
    line::escape(data, &mut escaped);
    assert!(!escaped.contains(&b'\n') && !escaped.contains(&b'\r'));
    assert_eq!(line::unescape(&escaped), data);
});
