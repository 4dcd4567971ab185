//! `/kvs/{key}` end to end: a real server, a real HTTP client, every row of the API table.

mod common;

use common::{TestServer, client};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};

fn etag_of(headers: &HeaderMap) -> String {
    headers
        .get(header::ETAG)
        .expect("ETag present")
        .to_str()
        .expect("ascii")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn put_get_head_delete_round_trip() {
    let s = TestServer::start().await;
    let c = client();
    let url = s.url("/kvs/greeting");

    let r = c
        .put(&url)
        .header("content-type", "text/plain; charset=utf-8")
        .body("hello")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()[header::LOCATION], "/kvs/greeting");
    let created_tag = etag_of(r.headers());
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["key"], "greeting");
    assert_eq!(format!("\"{}\"", body["version"]), created_tag);

    let r = c.get(&url).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(etag_of(r.headers()), created_tag);
    assert!(r.headers().contains_key(header::LAST_MODIFIED));
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
    assert!(!r.headers().contains_key(header::EXPIRES));
    assert_eq!(r.text().await.expect("body"), "hello");

    let r = c.head(&url).send().await.expect("head");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_LENGTH], "5");
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(etag_of(r.headers()), created_tag);
    assert_eq!(r.bytes().await.expect("empty").len(), 0);

    // POST is an upsert too: replacing answers 200 without Location and with a newer ETag.
    let r = c.post(&url).body("again").send().await.expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!r.headers().contains_key(header::LOCATION));
    let replaced_tag = etag_of(r.headers());
    assert_ne!(replaced_tag, created_tag);
    let r = c.get(&url).send().await.expect("get");
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    assert_eq!(r.text().await.expect("body"), "again");

    let r = c.delete(&url).send().await.expect("delete");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(&url).send().await.expect("get").status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.head(&url).send().await.expect("head").status(),
        StatusCode::NOT_FOUND
    );
    let r = c.delete(&url).send().await.expect("delete");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let e: serde_json::Value = r.json().await.expect("json error");
    assert_eq!(e["error"], "not_found");
    assert!(e["message"].is_string());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conditional_requests() {
    let s = TestServer::start().await;
    let c = client();
    let url = s.url("/kvs/cas");

    // If-None-Match: * creates only when absent.
    let r = c
        .put(&url)
        .header("if-none-match", "*")
        .body("1")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    let v1 = etag_of(r.headers());
    let r = c
        .put(&url)
        .header("if-none-match", "*")
        .body("2")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["error"],
        "precondition_failed"
    );

    // GET with a matching If-None-Match is 304 with no body; a stale one gets the value.
    let r = c
        .get(&url)
        .header("if-none-match", &v1)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(etag_of(r.headers()), v1);
    assert!(r.bytes().await.expect("body").is_empty());
    let r = c
        .get(&url)
        .header("if-none-match", "\"0\", W/\"12345\"")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(&url)
        .header("if-none-match", "*")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // If-Match compares strongly: a weak tag never matches.
    let weak = format!("W/{v1}");
    let r = c
        .put(&url)
        .header("if-match", &weak)
        .body("2")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);

    // If-Match succeeds on the current version only.
    let r = c
        .put(&url)
        .header("if-match", &v1)
        .body("2")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::OK);
    let v2 = etag_of(r.headers());
    let r = c
        .put(&url)
        .header("if-match", &v1)
        .body("3")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        c.get(&url)
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("t"),
        "2"
    );

    // If-Match: * requires the key to exist.
    let r = c
        .put(s.url("/kvs/absent"))
        .header("if-match", "*")
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        c.get(s.url("/kvs/absent"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::NOT_FOUND
    );

    // Conditional delete.
    let r = c
        .delete(&url)
        .header("if-match", &v1)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let r = c
        .delete(&url)
        .header("if-match", &v2)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = c
        .delete(&url)
        .header("if-match", &v2)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);

    // Malformed tags are a client error, not a silent success.
    let r = c
        .put(&url)
        .header("if-match", "7")
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_and_expires() {
    let s = TestServer::start().await;
    let c = client();

    let r = c
        .put(s.url("/kvs/short?ttl=300ms"))
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c.get(s.url("/kvs/short")).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let expires = httpdate::parse_http_date(r.headers()[header::EXPIRES].to_str().expect("ascii"))
        .expect("date");
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(
        left <= std::time::Duration::from_secs(1),
        "expires too late: {left:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(
        c.get(s.url("/kvs/short"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::NOT_FOUND
    );
    let listing: serde_json::Value = c
        .get(s.url("/kvs?prefix=short"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listing["keys"].as_array().map(Vec::len), Some(0));

    // Seconds, and the Expires header.
    let r = c
        .put(s.url("/kvs/long?ttl=30"))
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c.get(s.url("/kvs/long")).send().await.expect("get");
    assert!(r.headers().contains_key(header::EXPIRES));
    let later = httpdate::fmt_http_date(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    );
    let r = c
        .put(s.url("/kvs/dated"))
        .header("expires", &later)
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c.get(s.url("/kvs/dated")).send().await.expect("get");
    assert_eq!(r.headers()[header::EXPIRES], later.as_str());

    // A plain write clears the TTL.
    c.put(s.url("/kvs/long"))
        .body("y")
        .send()
        .await
        .expect("put");
    assert!(
        !c.get(s.url("/kvs/long"))
            .send()
            .await
            .expect("get")
            .headers()
            .contains_key(header::EXPIRES)
    );

    for bad in ["/kvs/k?ttl=0", "/kvs/k?ttl=soon", "/kvs/k?ttl=-5"] {
        let r = c.put(s.url(bad)).body("x").send().await.expect("put");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let r = c
        .put(s.url("/kvs/k"))
        .header("expires", "yesterday")
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        c.get(s.url("/kvs/k")).send().await.expect("get").status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_with_slashes_and_percent_encoded_utf8() {
    let s = TestServer::start().await;
    let c = client();
    let cases = [
        ("/kvs/a/b/c", "a/b/c"),
        ("/kvs/a%2Fb", "a/b"),
        ("/kvs/caf%C3%A9/%E2%9C%93", "café/✓"),
        ("/kvs/with%20space", "with space"),
        ("/kvs/plus+sign", "plus+sign"),
        ("/kvs/k0_", "k0_"),
    ];
    for (i, (path, key)) in cases.iter().enumerate() {
        let r = c
            .put(s.url(path))
            .body(format!("v{i}"))
            .send()
            .await
            .expect("put");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["key"], *key, "{path}");
    }
    // a%2Fb and a/b name the same key; a/b/c is a different one.
    assert_eq!(
        c.get(s.url("/kvs/a/b"))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("t"),
        "v1"
    );
    assert_eq!(
        c.get(s.url("/kvs/a/b/c"))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("t"),
        "v0"
    );
    assert_eq!(
        c.get(s.url("/kvs/caf%C3%A9/%E2%9C%93"))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("t"),
        "v2"
    );

    // A key that is not UTF-8 is still a key; its listing row says how it is encoded.
    let r = c
        .put(s.url("/kvs/raw%FF%00"))
        .body("bin")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()[header::LOCATION], "/kvs/raw%FF%00");
    let listing: serde_json::Value = c
        .get(s.url("/kvs?prefix=raw"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listing["keys"][0]["key"], "raw%FF%00");
    assert_eq!(listing["keys"][0]["key_encoding"], "percent");
    assert_eq!(
        c.get(s.url("/kvs/raw%ff%00"))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("t"),
        "bin"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_megabyte_binary_value_is_byte_identical() {
    let s = TestServer::start().await;
    let c = client();
    // Every byte value, in a pattern that a truncation or an offset error would break.
    let value: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let r = c
        .put(s.url("/kvs/blob"))
        .header("content-type", "image/png")
        .body(value.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c.get(s.url("/kvs/blob")).send().await.expect("get");
    assert_eq!(r.headers()[header::CONTENT_TYPE], "image/png");
    assert_eq!(
        r.headers()[header::CONTENT_LENGTH],
        value.len().to_string().as_str()
    );
    let got = r.bytes().await.expect("body");
    assert!(got == value, "the value changed on the way through");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_have_the_right_status_and_a_json_body() {
    let s = TestServer::with(|c| {
        c.limits.max_key_len = 16;
        c.limits.max_value_size = 1024;
    })
    .await;
    let c = client();
    let check = |r: reqwest::Response, status: StatusCode, code: &'static str| async move {
        assert_eq!(r.status(), status, "for {code}");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let e: serde_json::Value = r.json().await.expect("json error");
        assert_eq!(e["error"], code);
        assert!(!e["message"].as_str().unwrap_or_default().is_empty());
    };

    let r = c
        .get(s.url(&format!("/kvs/{}", "k".repeat(17))))
        .send()
        .await
        .expect("get");
    check(r, StatusCode::URI_TOO_LONG, "key_too_long").await;
    let r = c
        .put(s.url("/kvs/big"))
        .body(vec![0u8; 1025])
        .send()
        .await
        .expect("put");
    check(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(
        c.get(s.url("/kvs/big")).send().await.expect("get").status(),
        StatusCode::NOT_FOUND
    );
    let r = c
        .put(s.url("/kvs/fits"))
        .body(vec![0u8; 1024])
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);

    let r = c
        .request(reqwest::Method::TRACE, s.url("/kvs/k"))
        .send()
        .await
        .expect("trace");
    assert_eq!(
        r.headers()[header::ALLOW],
        "GET, HEAD, PUT, POST, PATCH, DELETE"
    );
    check(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let r = c.delete(s.url("/kvs")).send().await.expect("delete");
    assert_eq!(r.headers()[header::ALLOW], "GET, HEAD");
    check(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let r = c.get(s.url("/nothing/here")).send().await.expect("get");
    check(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = c.get(s.url("/kvs?limit=0")).send().await.expect("get");
    check(r, StatusCode::BAD_REQUEST, "bad_request").await;
    let r = c
        .get(s.url("/kvs?cursor=not-hex"))
        .send()
        .await
        .expect("get");
    check(r, StatusCode::BAD_REQUEST, "bad_request").await;

    let health = c.get(s.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);
    s.stop().await;
}
