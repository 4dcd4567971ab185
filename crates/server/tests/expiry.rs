//! Expired keys vanish from every read at once and are reclaimed in the background.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, client};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn the_background_sweep_reclaims_expired_keys() {
    let s = TestServer::start().await;
    let c = client();
    for i in 0..600 {
        let r = c
            .put(s.url(&format!("/kvs/tmp/{i}?ttl=2s")))
            .body("x")
            .send()
            .await
            .expect("put");
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    c.put(s.url("/kvs/keep"))
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(s.engine.store().held(), 601);

    // Nobody reads the expired keys: only the sweep can free them.
    let deadline = Instant::now() + Duration::from_secs(8);
    while s.engine.store().held() > 1 {
        assert!(
            Instant::now() < deadline,
            "still holding {} keys",
            s.engine.store().held()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        c.get(s.url("/kvs/keep"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        c.get(s.url("/kvs/tmp/1"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}
