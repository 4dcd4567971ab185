//! `GET /kvs?prefix=&limit=&cursor=` end to end.

mod common;

use std::collections::BTreeSet;

use common::{TestServer, client};
use reqwest::StatusCode;

async fn page(c: &reqwest::Client, s: &TestServer, query: &str) -> serde_json::Value {
    let r = c
        .get(s.url(&format!("/kvs?{query}")))
        .send()
        .await
        .expect("list");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}

fn keys_of(page: &serde_json::Value) -> Vec<String> {
    page["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .map(|k| k["key"].as_str().expect("key").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_through_ten_thousand_keys_returns_each_once_in_order() {
    let s = TestServer::start().await;
    let c = client();
    let mut expected = BTreeSet::new();
    // Written concurrently in a scrambled order, so shard and insertion order are not key order.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let c = c.clone();
            let base = s.url("/kvs/item/");
            tokio::spawn(async move {
                for i in (w..10_000).step_by(8) {
                    let n = (i * 7919) % 10_000;
                    let r = c
                        .put(format!("{base}{n:05}"))
                        .body(n.to_string())
                        .send()
                        .await
                        .expect("put");
                    assert_eq!(r.status(), StatusCode::CREATED);
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    for n in 0..10_000 {
        expected.insert(format!("item/{n:05}"));
    }
    c.put(s.url("/kvs/itemz"))
        .body("outside the prefix")
        .send()
        .await
        .expect("put");
    c.put(s.url("/kvs/another"))
        .body("outside the prefix")
        .send()
        .await
        .expect("put");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("prefix=item%2F&limit=37&cursor={c}"),
            None => "prefix=item%2F&limit=37".to_owned(),
        };
        let p = page(&c, &s, &q).await;
        let keys = keys_of(&p);
        assert!(keys.len() <= 37);
        seen.extend(keys);
        pages += 1;
        match p["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 1000, "the listing does not end");
    }
    assert_eq!(pages, 10_000_usize.div_ceil(37));
    assert_eq!(seen.len(), 10_000, "every key exactly once");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing order"
    );
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_carry_metadata() {
    let s = TestServer::start().await;
    let c = client();
    c.put(s.url("/kvs/m/a?ttl=60"))
        .header("content-type", "text/plain")
        .body("four")
        .send()
        .await
        .expect("put");
    c.put(s.url("/kvs/m/b")).body("").send().await.expect("put");
    let p = page(&c, &s, "prefix=m/").await;
    assert_eq!(keys_of(&p), ["m/a", "m/b"]);
    let a = &p["keys"][0];
    assert_eq!(a["size"], 4);
    assert_eq!(a["content_type"], "text/plain");
    assert!(a["version"].as_u64().is_some_and(|v| v > 0));
    assert!(a["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(a["modified_at"].is_string());
    let b = &p["keys"][1];
    assert_eq!(b["size"], 0);
    assert_eq!(b["content_type"], "application/octet-stream");
    assert!(b["expires_at"].is_null());
    assert!(p["next_cursor"].is_null());

    // The default page size is 100 and the cursor continues after the last key.
    for i in 0..150 {
        c.put(s.url(&format!("/kvs/d/{i:03}")))
            .body("x")
            .send()
            .await
            .expect("put");
    }
    let first = page(&c, &s, "prefix=d/").await;
    assert_eq!(keys_of(&first).len(), 100);
    let next = first["next_cursor"].as_str().expect("more to come");
    let second = page(&c, &s, &format!("prefix=d/&cursor={next}")).await;
    assert_eq!(keys_of(&second).first().map(String::as_str), Some("d/100"));
    assert_eq!(keys_of(&second).len(), 50);
    // `/kvs/` lists too.
    let r = c.get(s.url("/kvs/?prefix=m/")).send().await.expect("list");
    assert_eq!(keys_of(&r.json().await.expect("json")), ["m/a", "m/b"]);
    s.stop().await;
}
