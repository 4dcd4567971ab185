//! The memory limit on a real server: Redis's OOM refusal on every door under `noeviction`,
//! `volatile-*` evicting only keys with an expiry (and refusing once none are left), LFU keeping
//! a hot set, CONFIG SET taking effect at run time, the figures in INFO, MEMORY and
//! `/admin/memory`, and evictions that a restart does not undo.

mod common;

use common::{TestServer, client};
use kvs_server::{FsyncPolicy, Persistence};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Memory is counted for the whole process, and every test of this file runs its server in this
/// process: one at a time, so no test's limit counts another's keys.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn resp(s: &TestServer) -> MultiplexedConnection {
    redis::Client::open(format!("redis://{}", s.resp))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

async fn config_set(c: &mut MultiplexedConnection, name: &str, value: &str) {
    let ok: String = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query_async(c)
        .await
        .unwrap_or_else(|e| panic!("CONFIG SET {name} {value}: {e}"));
    assert_eq!(ok, "OK");
}

async fn info_field(c: &mut MultiplexedConnection, section: &str, field: &str) -> String {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(c)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{info}"))
        .to_owned()
}

/// The full error text of a refused command.
fn error_text(e: &redis::RedisError) -> String {
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
}

/// One line-protocol request and its reply line, without the newline.
async fn line(s: &TestServer, request: &str) -> String {
    common::line_request(s, request).await.trim_end().to_owned()
}

/// A value of `n` bytes that differs per key.
fn value(key: u64, n: usize) -> Vec<u8> {
    let mut v = format!("{key:020}").into_bytes();
    v.resize(n, b'v');
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn noeviction_refuses_writes_on_every_door_and_reads_and_deletes_still_work() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let s = TestServer::start().await;
    let mut c = resp(&s).await;
    for i in 0..100u64 {
        let _: () = c.set(format!("k{i}"), value(i, 1000)).await.expect("SET");
    }
    // A limit below what the server already uses: every write that needs memory is over it.
    config_set(&mut c, "maxmemory", "1kb").await;
    let limit: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query_async(&mut c)
        .await
        .expect("CONFIG GET");
    assert_eq!(limit, ["maxmemory", "1024"]);

    // RESP: Redis's words; the store is unchanged.
    let e = c
        .set::<_, _, ()>("new", "v")
        .await
        .expect_err("over the limit");
    assert_eq!(error_text(&e), OOM);
    let e = c
        .append::<_, _, i64>("k1", "more")
        .await
        .expect_err("APPEND");
    assert_eq!(error_text(&e), OOM);
    let exists: bool = c.exists("new").await.expect("EXISTS");
    assert!(!exists);
    // Reads, deletes, expiry changes and plain bookkeeping work.
    let v: Vec<u8> = c.get("k1").await.expect("GET");
    assert_eq!(v, value(1, 1000));
    let n: i64 = c.del("k2").await.expect("DEL");
    assert_eq!(n, 1);
    let set: bool = c.expire("k3", 100).await.expect("EXPIRE");
    assert!(set);

    // MULTI: queueing is refused, and the transaction with it.
    let mut pipe = redis::pipe();
    pipe.atomic().set("m", "v").get("k1");
    let e = pipe.query_async::<()>(&mut c).await.expect_err("EXECABORT");
    assert!(error_text(&e).contains("OOM"), "{}", error_text(&e));

    // HTTP: 507 with its JSON code; GET and DELETE work.
    let http = client();
    let r = http
        .put(s.url("/kvs/new"))
        .body("v")
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status().as_u16(), 507);
    let body: serde_json::Value = r.json().await.expect("JSON");
    assert_eq!(body["error"], "out_of_memory");
    let r = http.get(s.url("/kvs/k1")).send().await.expect("GET");
    assert_eq!(r.status().as_u16(), 200);
    let r = http.delete(s.url("/kvs/k4")).send().await.expect("DELETE");
    assert_eq!(r.status().as_u16(), 204);
    let memory: serde_json::Value = http
        .get(s.url("/admin/memory"))
        .send()
        .await
        .expect("GET /admin/memory")
        .json()
        .await
        .expect("JSON");
    assert_eq!(memory["maxmemory"], 1024);
    assert_eq!(memory["maxmemory_policy"], "noeviction");
    assert!(memory["rejected_commands"].as_u64() >= Some(3), "{memory}");
    assert!(memory["used_memory"].as_u64() > Some(100_000), "{memory}");

    // The line protocol: code 23 with Redis's words; get and delete work.
    let refused: serde_json::Value =
        serde_json::from_str(&line(&s, "cmd=create | key=new | body=v").await).expect("JSON");
    assert_eq!(refused["errorcode"], 23);
    assert_eq!(refused["error"], OOM);
    assert_eq!(line(&s, "cmd=get | key=k5").await.len(), 1000);
    assert_eq!(line(&s, "cmd=delete | key=k5").await.len(), 1000);

    // FLUSHALL works, and raising the limit lets writes through again at once.
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut c)
        .await
        .expect("FLUSHALL");
    config_set(&mut c, "maxmemory", "0").await;
    let _: () = c.set("new", "v").await.expect("SET without a limit");
    let rejected: u64 = info_field(&mut c, "stats", "oom_rejected_commands")
        .await
        .parse()
        .expect("a number");
    assert!(rejected >= 5, "{rejected} refusals counted");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn volatile_policies_evict_only_keys_with_an_expiry_then_refuse() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let s = TestServer::with(|c| {
        c.memory.maxmemory_policy = "volatile-lru".parse().expect("policy");
    })
    .await;
    let mut c = resp(&s).await;
    for i in 0..500u64 {
        let _: () = c.set(format!("p{i}"), value(i, 500)).await.expect("SET");
        let _: () = c
            .set_ex(format!("t{i}"), value(i, 500), 3_600)
            .await
            .expect("SETEX");
    }
    config_set(&mut c, "maxmemory", "1").await;
    // Every write now evicts keys with an expiry first, and is refused once there are none.
    let mut refused = None;
    for i in 0..100 {
        if let Err(e) = c.set::<_, _, ()>(format!("n{i}"), "v").await {
            refused = Some(error_text(&e));
            break;
        }
    }
    assert_eq!(refused.as_deref(), Some(OOM));
    let kept: i64 = redis::cmd("DBSIZE")
        .query_async(&mut c)
        .await
        .expect("DBSIZE");
    for i in 0..500u64 {
        let v: Option<Vec<u8>> = c.get(format!("p{i}")).await.expect("GET");
        assert_eq!(v, Some(value(i, 500)), "p{i} has no expiry and must stay");
        let t: bool = c.exists(format!("t{i}")).await.expect("EXISTS");
        assert!(!t, "t{i} should have been evicted");
    }
    assert!((500..=600).contains(&kept), "{kept} keys left");
    let evicted: u64 = info_field(&mut c, "stats", "evicted_keys")
        .await
        .parse()
        .expect("a number");
    assert!(evicted >= 500, "{evicted} evictions counted");

    // Switching to an allkeys policy at run time lets writes through again, by evicting.
    config_set(&mut c, "maxmemory-policy", "allkeys-random").await;
    let _: () = c.set("after", "v").await.expect("SET under allkeys-random");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allkeys_lfu_keeps_a_hot_set_that_is_read_constantly() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let s = TestServer::with(|c| {
        c.memory.maxmemory_policy = "allkeys-lfu".parse().expect("policy");
    })
    .await;
    let mut c = resp(&s).await;
    for i in 0..100u64 {
        let _: () = c.set(format!("hot{i}"), value(i, 1000)).await.expect("SET");
    }
    for _ in 0..20 {
        for i in 0..100u64 {
            let _: Vec<u8> = c.get(format!("hot{i}")).await.expect("GET");
        }
    }
    // Room for about 8 MB more; 32 MB of cold keys follow, with the hot set read in between.
    // (The room leaves space for what the test's own client holds: memory is the process's.)
    let used: u64 = info_field(&mut c, "memory", "used_memory")
        .await
        .parse()
        .expect("a number");
    config_set(&mut c, "maxmemory", &(used + (8 << 20)).to_string()).await;
    for batch in 0..160u64 {
        let mut pipe = redis::pipe();
        for i in 0..200u64 {
            let key = batch * 200 + i;
            pipe.set(format!("cold{key}"), value(key, 1000)).ignore();
        }
        let _: () = pipe.query_async(&mut c).await.expect("cold writes");
        for i in 0..100u64 {
            let _: Option<Vec<u8>> = c.get(format!("hot{i}")).await.expect("GET");
        }
    }
    let mut kept = 0;
    for i in 0..100u64 {
        let exists: bool = c.exists(format!("hot{i}")).await.expect("EXISTS");
        kept += usize::from(exists);
    }
    let evicted: u64 = info_field(&mut c, "stats", "evicted_keys")
        .await
        .parse()
        .expect("a number");
    assert!(
        evicted > 20_000,
        "only {evicted} evictions: the limit did not bite"
    );
    assert!(
        kept >= 95,
        "only {kept} of 100 hot keys kept under allkeys-lfu"
    );
    let freq: i64 = redis::cmd("OBJECT")
        .arg("FREQ")
        .arg("hot1")
        .query_async(&mut c)
        .await
        .expect("OBJECT FREQ");
    assert!(freq > 5, "a hot key's counter is {freq}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn info_memory_usage_and_config_report_the_limit_and_the_figures() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let s = TestServer::with(|c| {
        c.memory.maxmemory = 512 << 20;
        c.memory.maxmemory_policy = "allkeys-lru".parse().expect("policy");
    })
    .await;
    let mut c = resp(&s).await;
    let _: () = c.set("k", value(1, 100)).await.expect("SET");
    let usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("k")
        .query_async(&mut c)
        .await
        .expect("MEMORY USAGE");
    assert!((100..300).contains(&usage), "MEMORY USAGE {usage}");
    let with_samples: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("k")
        .arg("SAMPLES")
        .arg("0")
        .query_async(&mut c)
        .await
        .expect("MEMORY USAGE SAMPLES");
    assert_eq!(with_samples, usage);
    let missing: Option<i64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("nope")
        .query_async(&mut c)
        .await
        .expect("MEMORY USAGE of nothing");
    assert_eq!(missing, None);
    for (field, expected) in [
        ("maxmemory", "536870912"),
        ("maxmemory_human", "512.00M"),
        ("maxmemory_policy", "allkeys-lru"),
    ] {
        assert_eq!(info_field(&mut c, "memory", field).await, expected);
    }
    let used: u64 = info_field(&mut c, "memory", "used_memory")
        .await
        .parse()
        .expect("used_memory");
    let rss: u64 = info_field(&mut c, "memory", "used_memory_rss")
        .await
        .parse()
        .expect("used_memory_rss");
    let peak: u64 = info_field(&mut c, "memory", "used_memory_peak")
        .await
        .parse()
        .expect("used_memory_peak");
    assert!(
        used > 0 && rss > used / 2 && peak >= used,
        "{used} {rss} {peak}"
    );
    let ratio: f64 = info_field(&mut c, "memory", "mem_fragmentation_ratio")
        .await
        .parse()
        .expect("a ratio");
    assert!(ratio > 0.0);
    let stats: redis::Value = redis::cmd("MEMORY")
        .arg("STATS")
        .query_async(&mut c)
        .await
        .expect("MEMORY STATS");
    let text = format!("{stats:?}");
    for field in [
        "peak.allocated",
        "total.allocated",
        "dataset.bytes",
        "keys.count",
    ] {
        assert!(text.contains(field), "MEMORY STATS lacks {field}: {text}");
    }
    // Each setting changes at run time and reads back; bad values get Redis's words.
    for (name, v) in [
        ("maxmemory-policy", "volatile-ttl"),
        ("maxmemory-samples", "10"),
        ("lfu-log-factor", "20"),
        ("lfu-decay-time", "0"),
    ] {
        config_set(&mut c, name, v).await;
        let got: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(&mut c)
            .await
            .expect("CONFIG GET");
        assert_eq!(got, [name, v]);
    }
    let e = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("lots")
        .query_async::<()>(&mut c)
        .await
        .expect_err("not a memory value");
    assert_eq!(
        error_text(&e),
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
    );
    let e = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .arg("maxmemory-policy")
        .arg("lru")
        .query_async::<()>(&mut c)
        .await
        .expect_err("unknown policy");
    assert!(error_text(&e).contains("must be one of the following"));
    assert_eq!(
        info_field(&mut c, "memory", "maxmemory").await,
        "536870912",
        "a refused CONFIG SET changes nothing"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn evicted_keys_stay_gone_after_a_restart() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let persistence = Persistence::in_dir(dir.path(), FsyncPolicy::Always);
    let keys = 3_000u64;
    let gone: Vec<u64>;
    {
        let p = persistence.clone();
        let s = TestServer::with(move |c| {
            c.persistence = p;
            c.memory.maxmemory_policy = "allkeys-random".parse().expect("policy");
        })
        .await;
        let mut c = resp(&s).await;
        let used: u64 = info_field(&mut c, "memory", "used_memory")
            .await
            .parse()
            .expect("a number");
        config_set(&mut c, "maxmemory", &(used + (1 << 20)).to_string()).await;
        for i in 0..keys {
            let _: () = c.set(format!("k{i}"), value(i, 1000)).await.expect("SET");
        }
        // No more evictions from here on, so what is missing now is what must stay missing.
        config_set(&mut c, "maxmemory", "0").await;
        let mut missing = Vec::new();
        for i in 0..keys {
            let exists: bool = c.exists(format!("k{i}")).await.expect("EXISTS");
            if !exists {
                missing.push(i);
            }
        }
        assert!(
            missing.len() > 1_000,
            "only {} of {keys} keys evicted under a 1 MB margin",
            missing.len()
        );
        gone = missing;
        s.stop().await;
    }
    let s = TestServer::with(move |c| c.persistence = persistence).await;
    let mut c = resp(&s).await;
    let size: u64 = redis::cmd("DBSIZE")
        .query_async(&mut c)
        .await
        .expect("DBSIZE");
    assert_eq!(size, keys - gone.len() as u64);
    for i in gone {
        let exists: bool = c.exists(format!("k{i}")).await.expect("EXISTS");
        assert!(!exists, "evicted key k{i} came back after the restart");
    }
    s.stop().await;
}
