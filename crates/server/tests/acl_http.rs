//! Users and permissions over HTTP: Basic and Bearer authentication, 401 with
//! `WWW-Authenticate`, 403 `no_permission` per route (keys read or written, listings filtered,
//! the person API, the admin routes), and the same answer as the Redis protocol for the same user.

mod common;

use std::process::Command;

use common::{TestServer, client};
use redis::aio::MultiplexedConnection;
use reqwest::StatusCode;

async fn resp(s: &TestServer, user: Option<(&str, &str)>) -> MultiplexedConnection {
    let url = match user {
        Some((u, p)) => format!("redis://{u}:{p}@{}/", s.resp),
        None => format!("redis://{}/", s.resp),
    };
    redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

async fn acl(con: &mut MultiplexedConnection, args: &[&str]) {
    let mut c = redis::cmd("ACL");
    for a in args {
        c.arg(*a);
    }
    let _: () = c.query_async(con).await.expect("ACL");
}

/// The status and the JSON `error` code of an answer.
async fn answer(r: reqwest::RequestBuilder) -> (StatusCode, String) {
    let response = r.send().await.expect("request");
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_protects_every_route_but_health_and_the_document() {
    let s = TestServer::with(|c| c.security.requirepass = Some("s3cret".into())).await;
    let http = client();
    let response = http.get(s.url("/kvs/k")).send().await.expect("get");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"kvs\""
    );
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized");
    for path in ["/kvs", "/admin/persistence", "/person/get?id=1"] {
        assert_eq!(
            answer(http.get(s.url(path))).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(
        answer(http.get(s.url("/kvs/k")).bearer_auth("wrong")).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    assert_eq!(
        answer(
            http.get(s.url("/kvs/k"))
                .basic_auth("default", Some("wrong"))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        answer(
            http.get(s.url("/kvs/k"))
                .header("authorization", "Digest x")
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let put = http
        .put(s.url("/kvs/k"))
        .bearer_auth("s3cret")
        .body("v")
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::CREATED);
    let got = http
        .get(s.url("/kvs/k"))
        .basic_auth("default", Some("s3cret"))
        .send()
        .await
        .expect("get");
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.text().await.expect("body"), "v");
    // Open without credentials.
    for path in ["/healthz", "/openapi.json"] {
        let r = http.get(s.url(path)).send().await.expect("get");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    // curl, as a user types it.
    let out = Command::new("curl")
        .args(["-s", "-u", "default:s3cret", &s.url("/kvs/k")])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v");
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &s.url("/kvs/k"),
        ])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    // Failed attempts are in the ACL log.
    let mut admin = resp(&s, Some(("default", "s3cret"))).await;
    let log: Vec<redis::Value> = redis::cmd("ACL")
        .arg("LOG")
        .query_async(&mut admin)
        .await
        .expect("log");
    assert!(!log.is_empty(), "the failures are logged");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_route_is_checked_as_the_command_it_performs() {
    let s = TestServer::start().await;
    let mut admin = resp(&s, None).await;
    acl(
        &mut admin,
        &["SETUSER", "alice", "on", ">pw", "~app:*", "+@read"],
    )
    .await;
    acl(
        &mut admin,
        &["SETUSER", "writer", "on", ">pw", "%W~*", "+@all"],
    )
    .await;
    for key in ["app:1", "app:2", "other", "person/1"] {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("{\"Name\":\"x\"}")
            .query_async(&mut admin)
            .await
            .expect("set");
    }
    let http = client();
    let as_alice = |r: reqwest::RequestBuilder| r.basic_auth("alice", Some("pw"));
    assert_eq!(
        answer(as_alice(http.get(s.url("/kvs/app:1")))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        answer(as_alice(http.get(s.url("/kvs/other")))).await,
        (StatusCode::FORBIDDEN, "no_permission".into())
    );
    assert_eq!(
        answer(as_alice(http.put(s.url("/kvs/app:1")).body("x"))).await,
        (StatusCode::FORBIDDEN, "no_permission".into()),
        "alice may not run SET"
    );
    assert_eq!(
        answer(as_alice(http.delete(s.url("/kvs/app:1")))).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        answer(as_alice(http.patch(s.url("/kvs/app:1?ttl=1")))).await,
        (StatusCode::FORBIDDEN, "no_permission".into()),
        "changing an expiry is a write"
    );
    // A listing shows only the keys alice may read.
    let listing: serde_json::Value = as_alice(http.get(s.url("/kvs")))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let keys: Vec<&str> = listing["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["key"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(keys, ["app:1", "app:2"]);
    assert_eq!(
        answer(as_alice(http.get(s.url("/person/get?id=1"))))
            .await
            .0,
        StatusCode::FORBIDDEN,
        "person/1 is not alice's"
    );
    assert_eq!(
        answer(as_alice(http.post(s.url("/admin/snapshot"))))
            .await
            .0,
        StatusCode::FORBIDDEN,
        "admin routes need @admin"
    );
    // A write-only pattern: writes pass, reads do not.
    let as_writer = |r: reqwest::RequestBuilder| r.basic_auth("writer", Some("pw"));
    assert_eq!(
        answer(as_writer(http.put(s.url("/kvs/w")).body("x")))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        answer(as_writer(http.get(s.url("/kvs/w")))).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        answer(as_writer(http.patch(s.url("/kvs/w?ttl=1h"))))
            .await
            .0,
        StatusCode::OK,
        "a write-only pattern may change an expiry"
    );
    // The same user gets the same answer over the Redis protocol.
    let mut alice = resp(&s, Some(("alice", "pw"))).await;
    let other: redis::RedisResult<Option<String>> =
        redis::cmd("GET").arg("other").query_async(&mut alice).await;
    let e = other.expect_err("refused");
    assert!(e.to_string().contains("NOPERM"), "{e}");
    let mine: Option<String> = redis::cmd("GET")
        .arg("app:1")
        .query_async(&mut alice)
        .await
        .expect("get");
    assert!(mine.is_some());
    // Each refusal is in the log, from the HTTP door too.
    let log: Vec<redis::Value> = redis::cmd("ACL")
        .arg("LOG")
        .query_async(&mut admin)
        .await
        .expect("log");
    let text = format!("{log:?}");
    assert!(text.contains("door=http"), "{text}");
    s.stop().await;
}
