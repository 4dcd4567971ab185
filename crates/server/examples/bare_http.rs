//! The floor for kvs's HTTP front door: the least a hyper 1 server on tokio must do to store and
//! serve `/kvs/{key}` — a sharded `HashMap` behind read-write locks, `GET` answering the bytes,
//! `PUT` storing the body — with none of kvs's metadata, limits, conditional requests, routing
//! or error bodies. `bench/http.sh` runs it beside kvs so the cost of everything kvs adds on top
//! of hyper shows as a ratio.
//!
//! Usage: `cargo run --release -p kvs-server --example bare_http -- 127.0.0.1:0`; prints
//! `listening on http://ADDR` on standard output.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::RwLock;
use tokio::net::TcpListener;

const SHARDS: usize = 64;

struct Map {
    hasher: RandomState,
    shards: Vec<RwLock<HashMap<Bytes, Bytes>>>,
}

impl Map {
    fn shard(&self, key: &[u8]) -> &RwLock<HashMap<Bytes, Bytes>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

async fn handle(
    map: Arc<Map>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(key) = req.uri().path().strip_prefix("/kvs/") else {
        return Ok(status(StatusCode::NOT_FOUND));
    };
    let key = Bytes::copy_from_slice(key.as_bytes());
    match *req.method() {
        Method::GET => Ok(match map.shard(&key).read().get(&key) {
            Some(value) => Response::new(Full::new(value.clone())),
            None => status(StatusCode::NOT_FOUND),
        }),
        Method::PUT => {
            let Ok(body) = req.into_body().collect().await else {
                return Ok(status(StatusCode::BAD_REQUEST));
            };
            map.shard(&key).write().insert(key, body.to_bytes());
            Ok(status(StatusCode::NO_CONTENT))
        }
        _ => Ok(status(StatusCode::METHOD_NOT_ALLOWED)),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let map = Arc::new(Map {
        hasher: RandomState::new(),
        shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let map = map.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(map.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
