//! Server-level commands: COMMAND (the command table redis-cli and client libraries read),
//! INFO, CONFIG, and the CLIENT LIST / KILL formats.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{CommandError, glob_match};

use super::Shared;
use super::clients::ClientInfo;
use crate::engine::now_millis;

/// The Redis version whose command semantics kvs follows; clients read it to pick features.
pub(crate) const REDIS_VERSION: &str = "7.0.0";

/// name, arity (negative: at least), flags, first key, last key, key step — as `COMMAND` shows.
type Spec = (&'static str, i64, &'static [&'static str], i64, i64, i64);

const COMMANDS: &[Spec] = &[
    ("append", 3, &["write", "denyoom"], 1, 1, 1),
    ("bgsave", -1, &["admin", "noscript"], 0, 0, 0),
    (
        "auth",
        -2,
        &["noscript", "loading", "stale", "fast"],
        0,
        0,
        0,
    ),
    (
        "client",
        -2,
        &["admin", "noscript", "loading", "stale"],
        0,
        0,
        0,
    ),
    ("command", -1, &["loading", "stale"], 0, 0, 0),
    (
        "config",
        -2,
        &["admin", "noscript", "loading", "stale"],
        0,
        0,
        0,
    ),
    ("dbsize", 1, &["readonly", "fast"], 0, 0, 0),
    ("decr", 2, &["write", "denyoom", "fast"], 1, 1, 1),
    ("decrby", 3, &["write", "denyoom", "fast"], 1, 1, 1),
    ("del", -2, &["write"], 1, -1, 1),
    (
        "discard",
        1,
        &["noscript", "loading", "stale", "fast"],
        0,
        0,
        0,
    ),
    ("echo", 2, &["fast"], 0, 0, 0),
    ("exists", -2, &["readonly", "fast"], 1, -1, 1),
    (
        "exec",
        1,
        &["noscript", "loading", "stale", "skip_slowlog"],
        0,
        0,
        0,
    ),
    ("expire", -3, &["write", "fast"], 1, 1, 1),
    ("expireat", -3, &["write", "fast"], 1, 1, 1),
    ("expiretime", 2, &["readonly", "fast"], 1, 1, 1),
    ("flushall", -1, &["write"], 0, 0, 0),
    ("flushdb", -1, &["write"], 0, 0, 0),
    ("get", 2, &["readonly", "fast"], 1, 1, 1),
    ("getdel", 2, &["write", "fast"], 1, 1, 1),
    ("getex", -2, &["write", "fast"], 1, 1, 1),
    ("getrange", 4, &["readonly"], 1, 1, 1),
    ("getset", 3, &["write", "denyoom", "fast"], 1, 1, 1),
    (
        "hello",
        -1,
        &["noscript", "loading", "stale", "fast"],
        0,
        0,
        0,
    ),
    ("incr", 2, &["write", "denyoom", "fast"], 1, 1, 1),
    ("incrby", 3, &["write", "denyoom", "fast"], 1, 1, 1),
    ("incrbyfloat", 3, &["write", "denyoom", "fast"], 1, 1, 1),
    ("info", -1, &["loading", "stale"], 0, 0, 0),
    ("keys", 2, &["readonly"], 0, 0, 0),
    ("lastsave", 1, &["loading", "stale", "fast"], 0, 0, 0),
    ("mget", -2, &["readonly", "fast"], 1, -1, 1),
    ("mset", -3, &["write", "denyoom"], 1, -1, 2),
    (
        "multi",
        1,
        &["noscript", "loading", "stale", "fast"],
        0,
        0,
        0,
    ),
    ("msetnx", -3, &["write", "denyoom"], 1, -1, 2),
    ("object", -2, &["readonly"], 2, 2, 1),
    ("persist", 2, &["write", "fast"], 1, 1, 1),
    ("pexpire", -3, &["write", "fast"], 1, 1, 1),
    ("pexpireat", -3, &["write", "fast"], 1, 1, 1),
    ("pexpiretime", 2, &["readonly", "fast"], 1, 1, 1),
    ("ping", -1, &["fast"], 0, 0, 0),
    ("psetex", 4, &["write", "denyoom"], 1, 1, 1),
    ("pttl", 2, &["readonly", "fast"], 1, 1, 1),
    (
        "quit",
        -1,
        &["noscript", "loading", "stale", "fast"],
        0,
        0,
        0,
    ),
    (
        "reset",
        1,
        &["noscript", "loading", "stale", "fast"],
        0,
        0,
        0,
    ),
    ("save", 1, &["admin", "noscript"], 0, 0, 0),
    ("scan", -2, &["readonly"], 0, 0, 0),
    ("select", 2, &["loading", "stale", "fast"], 0, 0, 0),
    ("set", -3, &["write", "denyoom"], 1, 1, 1),
    ("setex", 4, &["write", "denyoom"], 1, 1, 1),
    ("setnx", 3, &["write", "denyoom", "fast"], 1, 1, 1),
    ("setrange", 4, &["write", "denyoom"], 1, 1, 1),
    ("strlen", 2, &["readonly", "fast"], 1, 1, 1),
    ("substr", 4, &["readonly"], 1, 1, 1),
    ("time", 1, &["loading", "stale", "fast"], 0, 0, 0),
    ("touch", -2, &["readonly", "fast"], 1, -1, 1),
    ("ttl", 2, &["readonly", "fast"], 1, 1, 1),
    ("type", 2, &["readonly", "fast"], 1, 1, 1),
    ("unlink", -2, &["write", "fast"], 1, -1, 1),
    (
        "unwatch",
        1,
        &["noscript", "loading", "stale", "fast"],
        0,
        0,
        0,
    ),
    (
        "watch",
        -2,
        &["noscript", "loading", "stale", "fast"],
        1,
        -1,
        1,
    ),
];

fn spec_frame(s: &Spec) -> Frame {
    let (name, arity, flags, first, last, step) = *s;
    Frame::Array(vec![
        Frame::bulk(name),
        Frame::Integer(arity),
        Frame::Set(
            flags
                .iter()
                .map(|f| Frame::Simple((*f).to_owned()))
                .collect(),
        ),
        Frame::Integer(first),
        Frame::Integer(last),
        Frame::Integer(step),
        Frame::Set(vec![]),
        Frame::Set(vec![]),
        Frame::Array(vec![]),
        Frame::Array(vec![]),
    ])
}

/// `COMMAND`, `COMMAND COUNT`, `COMMAND INFO name...`, `COMMAND DOCS [name...]`, `COMMAND LIST`.
pub(crate) fn command(args: &[Bytes]) -> Frame {
    let find = |name: &[u8]| {
        COMMANDS
            .iter()
            .find(|s| s.0.as_bytes().eq_ignore_ascii_case(name))
    };
    let Some((sub, rest)) = args.split_first() else {
        return Frame::Array(COMMANDS.iter().map(spec_frame).collect());
    };
    let sub = String::from_utf8_lossy(sub).to_ascii_lowercase();
    match sub.as_str() {
        "count" if rest.is_empty() => Frame::Integer(COMMANDS.len() as i64),
        "list" if rest.is_empty() => {
            Frame::Array(COMMANDS.iter().map(|s| Frame::bulk(s.0)).collect())
        }
        "info" if rest.is_empty() => Frame::Array(COMMANDS.iter().map(spec_frame).collect()),
        "info" => Frame::Array(
            rest.iter()
                .map(|n| find(n).map_or(Frame::Null, spec_frame))
                .collect(),
        ),
        // Documentation is not served; an empty map tells redis-cli to show no hints.
        "docs" => Frame::Map(vec![]),
        _ => Frame::err(format!(
            "unknown subcommand or wrong number of arguments for '{sub}'. Try COMMAND HELP."
        )),
    }
}

/// Resident memory of the process in bytes (Linux), for INFO memory.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// `INFO [section ...]`: server, clients, memory, persistence, stats, keyspace.
pub(crate) fn info(shared: &Shared, args: &[Bytes]) -> Frame {
    let wanted: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let show = |s: &str| {
        wanted.is_empty()
            || wanted
                .iter()
                .any(|w| w == s || w == "all" || w == "default" || w == "everything")
    };
    let clients = &shared.clients;
    let store = shared.engine.store();
    let now = now_millis();
    let mut out = String::new();
    let mut section = |name: &str, lines: Vec<(String, String)>| {
        if !show(&name.to_ascii_lowercase()) {
            return;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str(&format!("# {name}\r\n"));
        for (k, v) in lines {
            out.push_str(&format!("{k}:{v}\r\n"));
        }
    };
    let kv = |k: &str, v: String| (k.to_owned(), v);
    section(
        "Server",
        vec![
            kv("redis_version", REDIS_VERSION.to_owned()),
            kv("kvs_version", env!("CARGO_PKG_VERSION").to_owned()),
            kv("redis_mode", "standalone".to_owned()),
            kv("os", std::env::consts::OS.to_owned()),
            kv("arch_bits", (usize::BITS).to_string()),
            kv("process_id", std::process::id().to_string()),
            kv("tcp_port", shared.config.resp.port().to_string()),
            kv(
                "uptime_in_seconds",
                shared.engine.uptime().as_secs().to_string(),
            ),
        ],
    );
    section(
        "Clients",
        vec![
            kv("connected_clients", clients.count().to_string()),
            kv(
                "maxclients",
                shared.config.limits.max_connections.to_string(),
            ),
        ],
    );
    let rss = resident_bytes();
    section(
        "Memory",
        vec![
            kv("used_memory", rss.to_string()),
            kv("used_memory_rss", rss.to_string()),
            kv("maxmemory", "0".to_owned()),
            kv("maxmemory_policy", "noeviction".to_owned()),
        ],
    );
    section("Persistence", super::persistence::info(&shared.engine));
    section(
        "Stats",
        vec![
            kv(
                "total_connections_received",
                clients
                    .connections_received
                    .load(Ordering::Relaxed)
                    .to_string(),
            ),
            kv(
                "total_commands_processed",
                clients
                    .commands_processed
                    .load(Ordering::Relaxed)
                    .to_string(),
            ),
        ],
    );
    let keys = store.len(now);
    let mut keyspace = Vec::new();
    if keys > 0 {
        keyspace.push(kv(
            "db0",
            format!("keys={keys},expires={},avg_ttl=0", store.expiring()),
        ));
    }
    section("Keyspace", keyspace);
    Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(out),
    }
}

/// `CONFIG GET pattern...` over the settings kvs has; `CONFIG SET` (nothing is settable at run
/// time yet); `CONFIG RESETSTAT`.
pub(crate) fn config(shared: &Shared, args: &[Bytes]) -> Frame {
    let c = &shared.config;
    let params: Vec<(&str, String)> = vec![
        ("bind", c.resp.ip().to_string()),
        ("port", c.resp.port().to_string()),
        ("maxclients", c.limits.max_connections.to_string()),
        ("proto-max-bulk-len", c.limits.max_value_size.to_string()),
        (
            "client-query-buffer-limit",
            (1024u64 * 1024 * 1024).to_string(),
        ),
        ("databases", "1".to_owned()),
        ("timeout", "0".to_owned()),
        ("save", String::new()),
        (
            "appendonly",
            if shared.engine.durability().is_some() {
                "yes"
            } else {
                "no"
            }
            .to_owned(),
        ),
        (
            "appendfsync",
            shared
                .engine
                .durability()
                .map_or("no".to_owned(), |d| d.log().policy().to_string()),
        ),
        ("maxmemory", "0".to_owned()),
        ("maxmemory-policy", "noeviction".to_owned()),
    ];
    let Some((sub, rest)) = args.split_first() else {
        return Frame::Error(CommandError::WrongArity("config".into()).to_string());
    };
    match String::from_utf8_lossy(sub).to_ascii_lowercase().as_str() {
        "get" if !rest.is_empty() => Frame::Map(
            params
                .iter()
                .filter(|(name, _)| rest.iter().any(|p| glob_match(p, name.as_bytes(), true)))
                .map(|(name, value)| (Frame::bulk(*name), Frame::bulk(value.clone())))
                .collect(),
        ),
        "set" if rest.len() >= 2 && rest.len().is_multiple_of(2) => {
            let name = String::from_utf8_lossy(&rest[0]).to_ascii_lowercase();
            if params.iter().any(|(p, _)| *p == name) {
                Frame::err(format!(
                    "CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
                ))
            } else {
                Frame::err(format!(
                    "Unknown option or number of arguments for CONFIG SET - '{name}'"
                ))
            }
        }
        "resetstat" if rest.is_empty() => {
            shared
                .clients
                .commands_processed
                .store(0, Ordering::Relaxed);
            shared
                .clients
                .connections_received
                .store(0, Ordering::Relaxed);
            Frame::ok()
        }
        other => Frame::err(format!(
            "unknown subcommand or wrong number of arguments for '{other}'. Try CONFIG HELP."
        )),
    }
}

/// One line of `CLIENT LIST` / `CLIENT INFO`.
pub(crate) fn client_line(id: u64, c: &ClientInfo) -> String {
    format!(
        "id={id} addr={} laddr={} name={} age={} db=0 flags=N user=default resp={}\n",
        c.addr,
        c.local,
        c.name,
        c.since.elapsed().as_secs(),
        c.resp
    )
}

/// `CLIENT KILL ip:port` (old form: OK or an error) or `CLIENT KILL <filter value> ...` with
/// ID, ADDR, LADDR, SKIPME (new form: how many were killed).
pub(crate) fn client_kill(shared: &Shared, me: u64, filters: &[Bytes]) -> Frame {
    if let [addr] = filters {
        let addr = String::from_utf8_lossy(addr).into_owned();
        let n = shared.clients.kill(|_, c| c.addr.to_string() == addr);
        return if n > 0 {
            Frame::ok()
        } else {
            Frame::err("No such client")
        };
    }
    if filters.is_empty() || !filters.len().is_multiple_of(2) {
        return Frame::Error(CommandError::Syntax.to_string());
    }
    let (mut id, mut addr, mut laddr, mut skip_me) = (None, None, None, true);
    for pair in filters.chunks_exact(2) {
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        match String::from_utf8_lossy(&pair[0])
            .to_ascii_lowercase()
            .as_str()
        {
            "id" => match value.parse::<u64>() {
                Ok(v) => id = Some(v),
                Err(_) => return Frame::err("client-id should be greater than 0"),
            },
            "addr" => addr = Some(value),
            "laddr" => laddr = Some(value),
            "skipme" => match value.to_ascii_lowercase().as_str() {
                "yes" => skip_me = true,
                "no" => skip_me = false,
                _ => return Frame::Error(CommandError::Syntax.to_string()),
            },
            _ => return Frame::Error(CommandError::Syntax.to_string()),
        }
    }
    let n = shared.clients.kill(|cid, c| {
        !(skip_me && cid == me)
            && id.is_none_or(|v| v == cid)
            && addr.as_ref().is_none_or(|a| *a == c.addr.to_string())
            && laddr.as_ref().is_none_or(|a| *a == c.local.to_string())
    });
    Frame::Integer(n as i64)
}
