//! The bodies of INFO and CONFIG, and the CLIENT LIST / KILL formats.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{CommandError, glob_match};

use super::Shared;
use super::clients::ClientInfo;
use crate::engine::now_millis;

/// The Redis version whose command semantics kvs follows; clients read it to pick features.
pub(crate) const REDIS_VERSION: &str = "7.0.0";

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
            kv("mem_clients_normal", clients.memory().to_string()),
            kv(
                "maxmemory_clients",
                shared.config.limits.maxmemory_clients.to_string(),
            ),
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
            kv(
                "evicted_clients",
                clients.evicted.load(Ordering::Relaxed).to_string(),
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

/// `CONFIG GET pattern...` over the settings kvs has; `CONFIG SET` (only `requirepass` is
/// settable at run time yet); `CONFIG RESETSTAT`.
pub(crate) fn config(shared: &Shared, args: &[Bytes]) -> Frame {
    let c = &shared.config;
    let params: Vec<(&str, String)> = vec![
        ("bind", c.resp.ip().to_string()),
        ("port", c.resp.port().to_string()),
        ("maxclients", c.limits.max_connections.to_string()),
        ("proto-max-bulk-len", c.limits.max_value_size.to_string()),
        (
            "client-query-buffer-limit",
            c.limits.client_query_buffer_limit.to_string(),
        ),
        ("maxmemory-clients", c.limits.maxmemory_clients.to_string()),
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
            if name == "requirepass" && rest.len() == 2 {
                // The default user's password alone (empty: none), as Redis sets it.
                shared
                    .acl
                    .set_requirepass(&String::from_utf8_lossy(&rest[1]));
                return Frame::ok();
            }
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
        "id={id} addr={} laddr={} name={} age={} db=0 flags=N user={} resp={}\n",
        c.addr,
        c.local,
        c.name,
        c.since.elapsed().as_secs(),
        c.user,
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
