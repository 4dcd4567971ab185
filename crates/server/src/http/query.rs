//! Query strings and keys in URLs, read as bytes: keys need not be UTF-8.

use axum::http::Uri;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode};

/// The percent-decoded value of query parameter `name` (the first one, if repeated). `+` is kept
/// as a plus sign: keys may contain it.
pub(crate) fn param(uri: &Uri, name: &str) -> Option<Vec<u8>> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k.as_bytes()).collect::<Vec<u8>>() == name.as_bytes())
            .then(|| percent_decode(v.as_bytes()).collect())
    })
}

/// Like [`param`], for parameters that must be text.
pub(crate) fn text_param(uri: &Uri, name: &str) -> Option<String> {
    param(uri, name).map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Everything but unreserved characters and `/` is escaped in a key put back into a path.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// The path of the resource for `key`: `/kvs/` and the key percent-encoded.
pub(crate) fn key_path(key: &[u8]) -> String {
    let mut out = String::from("/kvs/");
    for chunk in percent_encoding::percent_encode(key, PATH) {
        out.push_str(chunk);
    }
    out
}

/// A key for a JSON body: the key itself when it is UTF-8, otherwise its percent-encoding with
/// `"key_encoding":"percent"` beside it.
pub(crate) fn key_fields(key: &[u8], object: &mut serde_json::Map<String, serde_json::Value>) {
    match std::str::from_utf8(key) {
        Ok(text) => {
            object.insert("key".into(), text.into());
        }
        Err(_) => {
            let encoded: String = percent_encoding::percent_encode(key, PATH).collect();
            object.insert("key".into(), encoded.into());
            object.insert("key_encoding".into(), "percent".into());
        }
    }
}

/// Encodes a listing cursor (a key) as lowercase hex: opaque and safe in any URL, encoded or not.
pub(crate) fn encode_cursor(key: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(key.len() * 2);
    for b in key {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// Reverses [`encode_cursor`].
pub(crate) fn decode_cursor(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_percent_decoded_to_bytes() {
        let uri: Uri = "/kvs?prefix=a%2Fb%FF&limit=5&x".parse().expect("uri");
        assert_eq!(param(&uri, "prefix"), Some(b"a/b\xff".to_vec()));
        assert_eq!(text_param(&uri, "limit").as_deref(), Some("5"));
        assert_eq!(param(&uri, "x"), Some(vec![]));
        assert_eq!(param(&uri, "cursor"), None);
    }

    #[test]
    fn cursors_round_trip() {
        for key in [&b""[..], b"a", b"\x00\xff/x y"] {
            let c = encode_cursor(key);
            assert_eq!(decode_cursor(c.as_bytes()).as_deref(), Some(key));
        }
        assert_eq!(decode_cursor(b"abc"), None);
        assert_eq!(decode_cursor(b"zz"), None);
    }

    #[test]
    fn key_paths_escape_all_but_slashes_and_unreserved() {
        assert_eq!(key_path(b"a/b c%\xff"), "/kvs/a/b%20c%25%FF");
    }
}
