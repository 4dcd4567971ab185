//! SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO and LCS answer exactly as redis-server 7.0 does: the same
//! random sequence of requests goes to both, and every answer (errors included) must match.

mod common;

use common::redis_server::redis_server;
use common::{Rng, TestServer, connect_redis as connect};
use redis::Value;

fn request(r: &mut Rng) -> Vec<String> {
    let key = |r: &mut Rng| r.pick(&["a", "b", "c", "s", "missing"]).to_owned();
    let index = |r: &mut Rng| (r.below(90) as i64 - 45).to_string();
    let unit = |r: &mut Rng, words: &mut Vec<String>| match r.below(3) {
        0 => {}
        1 => words.push("BYTE".into()),
        _ => words.push("BIT".into()),
    };
    let field = |r: &mut Rng| {
        let kind = format!(
            "{}{}",
            r.pick(&["i", "u", "i", "u", "I"]),
            r.pick(&["1", "3", "8", "13", "32", "63", "64", "65", "0"])
        );
        let offset = if r.below(4) == 0 {
            format!("#{}", r.below(6))
        } else {
            r.below(120).to_string()
        };
        (kind, offset)
    };
    let number = |r: &mut Rng| -> String {
        match r.below(5) {
            0 => i64::MAX.to_string(),
            1 => i64::MIN.to_string(),
            2 => (r.below(600) as i64 - 300).to_string(),
            3 => "x".into(),
            _ => r.below(100_000).to_string(),
        }
    };
    if r.below(8) == 0 {
        // LCS over short strings of a small alphabet, so they share a lot.
        if r.below(2) == 0 {
            let len = r.below(12);
            let text: String = (0..len).map(|_| r.pick(&["a", "b", "c"])).collect();
            return vec!["SET".into(), key(r), text];
        }
        let mut words = vec!["LCS".into(), key(r), key(r)];
        for _ in 0..r.below(4) {
            match r.below(5) {
                0 => words.push("LEN".into()),
                1 => words.push("IDX".into()),
                2 => words.push("WITHMATCHLEN".into()),
                3 => words.extend(["MINMATCHLEN".into(), (r.below(5) as i64 - 1).to_string()]),
                _ => words.push("NOPE".into()),
            }
        }
        return words;
    }
    if r.below(6) == 0 {
        let mut words = vec![
            r.pick(&["BITFIELD", "BITFIELD", "BITFIELD_RO"]).to_owned(),
            key(r),
        ];
        for _ in 0..r.below(5) {
            match r.below(5) {
                0 | 1 => {
                    let (k, o) = field(r);
                    words.extend(["GET".into(), k, o]);
                }
                2 => {
                    let (k, o) = field(r);
                    words.extend(["SET".into(), k, o, number(r)]);
                }
                3 => {
                    let (k, o) = field(r);
                    words.extend(["INCRBY".into(), k, o, number(r)]);
                }
                _ => words.extend([
                    "OVERFLOW".into(),
                    r.pick(&["WRAP", "SAT", "FAIL", "sat", "nope"]).into(),
                ]),
            }
        }
        return words;
    }
    match r.below(9) {
        0 | 1 => vec![
            "SETBIT".into(),
            key(r),
            r.below(200).to_string(),
            r.pick(&["0", "1", "1", "2"]).into(),
        ],
        2 => vec!["GETBIT".into(), key(r), r.below(220).to_string()],
        3 | 4 => {
            let mut words = vec!["BITCOUNT".into(), key(r)];
            if r.below(3) > 0 {
                words.push(index(r));
                words.push(index(r));
                unit(r, &mut words);
            }
            words
        }
        5 | 6 => {
            let mut words = vec!["BITPOS".into(), key(r), r.pick(&["0", "1"]).into()];
            match r.below(3) {
                0 => {}
                1 => words.push(index(r)),
                _ => {
                    words.push(index(r));
                    words.push(index(r));
                    unit(r, &mut words);
                }
            }
            words
        }
        7 => {
            let op = r.pick(&["AND", "OR", "XOR", "NOT"]);
            let mut words = vec!["BITOP".into(), op.into(), key(r), key(r)];
            if op != "NOT" || r.below(4) == 0 {
                words.push(key(r));
            }
            words
        }
        _ => vec![
            "SET".into(),
            "s".into(),
            r.pick(&["foobar", "", "\u{ff}\u{f0}", "x"]).into(),
        ],
    }
}

async fn ask(c: &mut redis::aio::MultiplexedConnection, words: &[String]) -> String {
    let mut cmd = redis::cmd(&words[0]);
    for w in &words[1..] {
        cmd.arg(w);
    }
    match cmd.query_async::<Value>(c).await {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error: {}", e.detail().unwrap_or_default()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bit_commands_answer_as_redis_server_does() {
    let kvs = TestServer::start().await;
    let redis = redis_server(&[]).await;
    let mut ours = connect(&kvs.resp.to_string()).await;
    let mut theirs = connect(&redis.addr()).await;
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..6000 {
        let words = request(&mut r);
        let (a, b) = (ask(&mut ours, &words).await, ask(&mut theirs, &words).await);
        assert_eq!(a, b, "request {i}: {words:?}");
    }
    for key in ["a", "b", "c", "s"] {
        let words = vec!["GET".to_owned(), key.to_owned()];
        assert_eq!(ask(&mut ours, &words).await, ask(&mut theirs, &words).await);
    }
    kvs.stop().await;
}
