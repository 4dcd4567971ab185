//! Request decoding: exact framing, pipelines split at every byte, limits and Redis's errors.

use bytes::{Bytes, BytesMut};
use kvs_protocol::resp::{ProtocolError, RequestDecoder, RequestLimits};
use proptest::prelude::*;

fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Everything `bytes` decodes to when it arrives in one piece.
fn decode_all(bytes: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
    let mut d = RequestDecoder::default();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(args) = d.decode(&mut buf)? {
        out.push(args);
    }
    Ok(out)
}

fn strs(reqs: &[Vec<Bytes>]) -> Vec<Vec<String>> {
    reqs.iter()
        .map(|r| {
            r.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .collect()
}

#[test]
fn multibulk_and_inline_requests() {
    let got = decode_all(
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\n*0\r\n*-1\r\n\r\n*1\r\n$0\r\n\r\n",
    )
    .expect("valid");
    assert_eq!(
        strs(&got),
        vec![
            vec!["GET", "k"],
            vec!["PING"],
            vec!["set", "a", "b c"],
            vec![""]
        ]
    );
}

#[test]
fn incomplete_requests_consume_nothing() {
    let mut d = RequestDecoder::default();
    let full = b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
    for cut in 0..full.len() {
        let mut buf = BytesMut::from(&full[..cut]);
        assert_eq!(d.decode(&mut buf), Ok(None), "cut at {cut}");
        assert_eq!(buf.len(), cut);
        d = RequestDecoder::default();
    }
}

#[test]
fn a_claimed_gigabyte_allocates_nothing_until_it_arrives() {
    let mut d = RequestDecoder::default();
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$500000000\r\nabc"[..]);
    let cap = buf.capacity();
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert_eq!(
        buf.capacity(),
        cap,
        "the decoder must not reserve the claimed length"
    );
    // Over proto-max-bulk-len is refused outright.
    let mut buf = BytesMut::from(&b"*1\r\n$1000000000\r\n"[..]);
    assert_eq!(
        RequestDecoder::default().decode(&mut buf),
        Err(ProtocolError::InvalidBulkLength)
    );
}

#[test]
fn malformed_requests_get_redis_errors() {
    let cases: [(&[u8], ProtocolError); 8] = [
        (b"*abc\r\n", ProtocolError::InvalidMultibulkLength),
        (b"*1\r\n:3\r\n", ProtocolError::ExpectedBulk(':')),
        (b"*1\r\n$-5\r\n", ProtocolError::InvalidBulkLength),
        (b"*1\r\n$x\r\n", ProtocolError::InvalidBulkLength),
        (b"*1\r\n$+1\r\n", ProtocolError::InvalidBulkLength),
        (b"*3000000000\r\n", ProtocolError::InvalidMultibulkLength),
        (b"set \"open\n", ProtocolError::UnbalancedQuotes),
        (b"*1\rX", ProtocolError::InvalidMultibulkLength),
    ];
    for (input, want) in cases {
        assert_eq!(
            decode_all(input),
            Err(want.clone()),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(
        ProtocolError::ExpectedBulk(':').to_string(),
        "Protocol error: expected '$', got ':'"
    );
}

#[test]
fn oversized_headers_and_inline_lines_are_refused() {
    let long = vec![b'a'; 70 * 1024];
    assert_eq!(decode_all(&long), Err(ProtocolError::TooBigInline));
    let mut mb = b"*".to_vec();
    mb.extend(std::iter::repeat_n(b'1', 70 * 1024));
    assert_eq!(decode_all(&mb), Err(ProtocolError::TooBigMultibulkCount));
    let mut bulk = b"*1\r\n$".to_vec();
    bulk.extend(std::iter::repeat_n(b'1', 70 * 1024));
    assert_eq!(decode_all(&bulk), Err(ProtocolError::TooBigBulkCount));
}

#[test]
fn limits_are_configurable() {
    let limits = RequestLimits {
        max_bulk_len: 4,
        max_args: 2,
        max_query_buffer: 64,
    };
    let run = |input: &[u8]| {
        let mut buf = BytesMut::from(input);
        RequestDecoder::new(limits).decode(&mut buf)
    };
    assert_eq!(
        run(&encode(&[b"abcde".to_vec()])),
        Err(ProtocolError::InvalidBulkLength)
    );
    assert!(matches!(run(&encode(&[b"abcd".to_vec()])), Ok(Some(_))));
    assert_eq!(
        run(&encode(&[vec![], vec![], vec![]])),
        Err(ProtocolError::InvalidMultibulkLength)
    );
    // A request still incomplete past the query buffer limit is refused.
    let roomy = RequestLimits {
        max_bulk_len: 1000,
        ..limits
    };
    let mut big = b"*1\r\n$500\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 60));
    let mut buf = BytesMut::from(&big[..]);
    assert_eq!(
        RequestDecoder::new(roomy).decode(&mut buf),
        Err(ProtocolError::QueryBufferLimit(64))
    );
}

fn arb_args() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6)
}

proptest! {
    /// A pipeline of requests, fed to one decoder in arbitrary pieces, decodes to exactly the
    /// requests that were encoded, in order.
    #[test]
    fn pipelines_survive_any_split(reqs in prop::collection::vec(arb_args(), 1..6), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let wire: Vec<u8> = reqs.iter().flat_map(|r| encode(r)).collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        points.push(wire.len());
        points.sort_unstable();
        let mut d = RequestDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut from = 0;
        for p in points {
            buf.extend_from_slice(&wire[from..p]);
            from = p;
            while let Some(args) = d.decode(&mut buf).expect("valid") {
                got.push(args.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
            }
        }
        prop_assert_eq!(got, reqs);
        prop_assert!(buf.is_empty());
    }

    /// Arbitrary bytes never panic the decoder: it returns requests, asks for more, or errors.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut d = RequestDecoder::new(RequestLimits { max_bulk_len: 1 << 20, max_args: 1000, max_query_buffer: 1 << 20 });
        let mut buf = BytesMut::from(&bytes[..]);
        let mut rounds = 0;
        while let Ok(Some(_)) = d.decode(&mut buf) {
            rounds += 1;
            prop_assert!(rounds <= bytes.len());
        }
    }
}
