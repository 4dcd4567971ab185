//! 32 concurrent clients doing mixed PUT/GET/DELETE on their own keys (10,240 requests); every
//! reply is checked against what that client knows it wrote. kvs must answer none wrongly.

mod common;

use std::collections::HashMap;

use common::{TestServer, client};
use reqwest::StatusCode;

const CLIENTS: usize = 32;
const OPS: usize = 320;
const KEYS: usize = 8;

#[tokio::test(flavor = "multi_thread")]
async fn every_reply_is_right_under_load() {
    let s = TestServer::start().await;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let c = client();
            let base = s.url(&format!("/kvs/load/{id}/"));
            tokio::spawn(async move {
                let mut model: HashMap<usize, (String, String)> = HashMap::new();
                let mut wrong = Vec::new();
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (id as u64);
                for op in 0..OPS {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let k = (rng % KEYS as u64) as usize;
                    let url = format!("{base}{k}");
                    match (rng >> 8) % 3 {
                        0 => {
                            let value =
                                format!("client {id} op {op} key {k} {}", "x".repeat(op % 50));
                            let ctype = if op % 2 == 0 {
                                "text/plain"
                            } else {
                                "application/x-kvs-test"
                            };
                            let r = c
                                .put(&url)
                                .header("content-type", ctype)
                                .body(value.clone())
                                .send()
                                .await
                                .expect("put");
                            let want = if model.contains_key(&k) {
                                StatusCode::OK
                            } else {
                                StatusCode::CREATED
                            };
                            if r.status() != want {
                                wrong.push(format!("PUT {url}: {} want {want}", r.status()));
                            }
                            model.insert(k, (value, ctype.to_owned()));
                        }
                        1 => {
                            let r = c.get(&url).send().await.expect("get");
                            match model.get(&k) {
                                Some((value, ctype)) => {
                                    let got_type = r
                                        .headers()
                                        .get("content-type")
                                        .and_then(|v| v.to_str().ok())
                                        .unwrap_or("")
                                        .to_owned();
                                    let status = r.status();
                                    let body = r.text().await.expect("body");
                                    if status != StatusCode::OK
                                        || &body != value
                                        || &got_type != ctype
                                    {
                                        wrong.push(format!(
                                            "GET {url}: {status} {body:?} {got_type}"
                                        ));
                                    }
                                }
                                None => {
                                    if r.status() != StatusCode::NOT_FOUND {
                                        wrong.push(format!("GET {url}: {} want 404", r.status()));
                                    }
                                }
                            }
                        }
                        _ => {
                            let r = c.delete(&url).send().await.expect("delete");
                            let want = if model.remove(&k).is_some() {
                                StatusCode::NO_CONTENT
                            } else {
                                StatusCode::NOT_FOUND
                            };
                            if r.status() != want {
                                wrong.push(format!("DELETE {url}: {} want {want}", r.status()));
                            }
                        }
                    }
                }
                (model, wrong)
            })
        })
        .collect();
    let mut finals = Vec::new();
    for (id, t) in tasks.into_iter().enumerate() {
        let (model, wrong) = t.await.expect("client task");
        assert!(
            wrong.is_empty(),
            "client {id} got {} wrong answers: {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
        finals.push(model);
    }
    // The final keyspace is exactly the union of what each client believes it holds.
    let c = client();
    for (id, model) in finals.iter().enumerate() {
        let listing: serde_json::Value = c
            .get(s.url(&format!("/kvs?prefix=load/{id}/")))
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        let mut listed: Vec<String> = listing["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["key"].as_str().expect("key").to_owned())
            .collect();
        let mut want: Vec<String> = model.keys().map(|k| format!("load/{id}/{k}")).collect();
        listed.sort();
        want.sort();
        assert_eq!(listed, want, "client {id}");
    }
    s.stop().await;
}
