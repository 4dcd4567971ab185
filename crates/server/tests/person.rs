//! The person API of the first seed: `PUT /person/update`, `GET /person/get`.

mod common;

use common::{TestServer, client};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn update_then_get_by_body_and_by_query() {
    let s = TestServer::start().await;
    let c = client();
    let before = std::time::SystemTime::now();
    let r = c
        .put(s.url("/person/update"))
        .header("content-type", "application/json")
        .body("{\n    \"id\": 100,\n    \"name\": \"mob\"\n}")
        .send()
        .await
        .expect("update");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let p: serde_json::Value = r.json().await.expect("json");
    assert_eq!(p["Name"], "mob");
    let stamp =
        humantime::parse_rfc3339(p["UpdatedAt"].as_str().expect("UpdatedAt")).expect("rfc3339");
    assert!(stamp + std::time::Duration::from_millis(1) >= before);

    let r = c
        .get(s.url("/person/get"))
        .header("content-type", "application/json")
        .body("{\"id\": 100}")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let got: serde_json::Value = r.json().await.expect("json");
    assert_eq!(got, p);
    let by_query: serde_json::Value = c
        .get(s.url("/person/get?id=100"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(by_query, p);

    // The record is an ordinary key.
    let r = c.get(s.url("/kvs/person/100")).send().await.expect("get");
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.json::<serde_json::Value>().await.expect("json"), p);

    // An update replaces the name and moves UpdatedAt forward.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = c
        .put(s.url("/person/update"))
        .body("{\"id\":100,\"name\":\"bob\"}")
        .send()
        .await
        .expect("update");
    let q: serde_json::Value = r.json().await.expect("json");
    assert_eq!(q["Name"], "bob");
    assert!(q["UpdatedAt"].as_str() > p["UpdatedAt"].as_str());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_ids_and_bad_input() {
    let s = TestServer::start().await;
    let c = client();
    let r = c
        .get(s.url("/person/get"))
        .body("{\"id\": 7}")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["error"],
        "not_found"
    );

    for bad in [
        "{\"id\": 7",
        "not json",
        "{\"name\":\"x\"}",
        "{\"id\":\"seven\",\"name\":\"x\"}",
        "{\"id\":1.5,\"name\":\"x\"}",
        "{\"id\":1}",
    ] {
        let r = c
            .put(s.url("/person/update"))
            .body(bad)
            .send()
            .await
            .expect("update");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            r.json::<serde_json::Value>().await.expect("json")["error"],
            "bad_request"
        );
    }
    let r = c
        .get(s.url("/person/get"))
        .body("{oops")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = c.get(s.url("/person/get")).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = c
        .get(s.url("/person/get?id=abc"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = c
        .delete(s.url("/person/update"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "PUT, POST");
    // Nothing was stored by the failed attempts.
    let listing: serde_json::Value = c
        .get(s.url("/kvs?prefix=person/"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listing["keys"].as_array().map(Vec::len), Some(0));
    s.stop().await;
}
