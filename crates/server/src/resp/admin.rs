//! The body of CONFIG.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{CommandError, glob_match};

use super::Shared;
use crate::memory::parse_memory;

/// The Redis version whose command semantics kvs follows; clients read it to pick features.
pub(crate) const REDIS_VERSION: &str = "7.0.0";

/// `CONFIG GET pattern...` over the settings kvs has; `CONFIG SET` (only `requirepass` is
/// settable at run time yet); `CONFIG RESETSTAT`.
pub(crate) fn config(shared: &Shared, args: &[Bytes]) -> Frame {
    let c = &shared.config;
    let limits = shared.engine.store().collection_limits();
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
        ("maxmemory", shared.engine.memory().limit().to_string()),
        (
            "busy-reply-threshold",
            shared.engine.script().busy_after().as_millis().to_string(),
        ),
        (
            "lua-time-limit",
            shared.engine.script().busy_after().as_millis().to_string(),
        ),
        ("hash-max-listpack-entries", limits.hash_entries.to_string()),
        ("hash-max-listpack-value", limits.hash_value.to_string()),
        ("hash-max-ziplist-entries", limits.hash_entries.to_string()),
        ("hash-max-ziplist-value", limits.hash_value.to_string()),
        (
            "set-max-intset-entries",
            limits.set_intset_entries.to_string(),
        ),
        ("zset-max-listpack-entries", limits.zset_entries.to_string()),
        ("zset-max-listpack-value", limits.zset_value.to_string()),
        ("zset-max-ziplist-entries", limits.zset_entries.to_string()),
        ("zset-max-ziplist-value", limits.zset_value.to_string()),
        ("list-max-listpack-size", limits.list_size.to_string()),
        ("list-max-ziplist-size", limits.list_size.to_string()),
        ("list-compress-depth", "0".to_owned()),
        (
            "stream-node-max-entries",
            limits.stream_node_entries.to_string(),
        ),
        (
            "stream-node-max-bytes",
            limits.stream_node_bytes.to_string(),
        ),
        (
            "maxmemory-policy",
            shared.engine.store().tracking().policy().name().to_owned(),
        ),
        (
            "maxmemory-samples",
            shared.engine.memory().samples().to_string(),
        ),
        (
            "lfu-log-factor",
            shared.engine.store().tracking().log_factor().to_string(),
        ),
        (
            "lfu-decay-time",
            shared.engine.store().tracking().decay_minutes().to_string(),
        ),
        (
            "notify-keyspace-events",
            crate::pubsub::notify_flags_text(shared.engine.pubsub().notify_flags()),
        ),
        (
            "slowlog-log-slower-than",
            shared.engine.stats().slowlog.slower_than().to_string(),
        ),
        (
            "latency-tracking",
            if shared
                .engine
                .stats()
                .latency_tracking
                .load(Ordering::Relaxed)
            {
                "yes"
            } else {
                "no"
            }
            .to_owned(),
        ),
        (
            "latency-tracking-info-percentiles",
            shared
                .engine
                .stats()
                .percentiles
                .read()
                .iter()
                .map(f64::to_string)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "slowlog-max-len",
            shared.engine.stats().slowlog.max_len().to_string(),
        ),
        (
            "client-output-buffer-limit",
            format!(
                "normal 0 0 0 slave 0 0 0 pubsub {}",
                shared.engine.pubsub().limit()
            ),
        ),
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
            config_set(shared, rest, &params)
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
            shared.engine.stats().reset();
            shared.acl.log.lock().reset_counters();
            Frame::ok()
        }
        other => Frame::err(format!(
            "unknown subcommand or wrong number of arguments for '{other}'. Try CONFIG HELP."
        )),
    }
}

/// A setting `CONFIG SET` can change at run time, with its new value checked.
enum Change {
    RequirePass(String),
    MaxMemory(u64),
    Policy(kvs_store::Policy),
    Samples(usize),
    LogFactor(u32),
    DecayTime(u32),
    NotifyKeyspaceEvents(u32),
    SlowerThan(i64),
    LatencyTracking(bool),
    Percentiles(Vec<f64>),
    SlowlogMaxLen(usize),
    PubsubLimit(Option<crate::pubsub::OutputLimit>),
    /// A collection encoding threshold (`hash-max-listpack-entries`, ...).
    Encoding(&'static str, i64),
    /// `busy-reply-threshold` (alias `lua-time-limit`), in milliseconds.
    BusyAfter(u64),
}

/// `CONFIG SET name value [name value ...]`: every value is checked before any is applied, so
/// the settings change all together or not at all, as in Redis 7.
fn config_set(shared: &Shared, pairs: &[Bytes], params: &[(&str, String)]) -> Frame {
    let mut changes = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for pair in pairs.chunks_exact(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        let failed = |why: &str| {
            Frame::err(format!(
                "CONFIG SET failed (possibly related to argument '{name}') - {why}"
            ))
        };
        if names.contains(&name) {
            return failed("duplicate parameter");
        }
        let int = |max: u64, min: u64| match value.trim().parse::<i64>() {
            Err(_) => Err(failed("argument couldn't be parsed into an integer")),
            Ok(n) if n < min as i64 || n as u64 > max => Err(failed(&format!(
                "argument must be between {min} and {max} inclusive"
            ))),
            Ok(n) => Ok(n as u64),
        };
        let change = match name.as_str() {
            "requirepass" => Change::RequirePass(value.clone()),
            "maxmemory" => match parse_memory(&value) {
                Ok(bytes) => Change::MaxMemory(bytes),
                Err(_) => return failed("argument must be a memory value"),
            },
            "maxmemory-policy" => match value.parse() {
                Ok(policy) => Change::Policy(policy),
                Err(_) => {
                    return failed(
                        "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction, allkeys-s3fifo",
                    );
                }
            },
            "maxmemory-samples" => match int(i32::MAX as u64, 1) {
                Ok(n) => Change::Samples(n as usize),
                Err(e) => return e,
            },
            "lfu-log-factor" => match int(i32::MAX as u64, 0) {
                Ok(n) => Change::LogFactor(n as u32),
                Err(e) => return e,
            },
            "lfu-decay-time" => match int(i32::MAX as u64, 0) {
                Ok(n) => Change::DecayTime(n as u32),
                Err(e) => return e,
            },
            "notify-keyspace-events" => match crate::pubsub::parse_notify_flags(&value) {
                Some(flags) => Change::NotifyKeyspaceEvents(flags),
                None => return failed("Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
            },
            "latency-tracking" => match value.to_ascii_lowercase().as_str() {
                "yes" => Change::LatencyTracking(true),
                "no" => Change::LatencyTracking(false),
                _ => return failed("argument must be 'yes' or 'no'"),
            },
            "latency-tracking-info-percentiles" => {
                let parsed: Option<Vec<f64>> = value
                    .split_whitespace()
                    .map(|p| p.parse::<f64>().ok().filter(|p| (0.0..=100.0).contains(p)))
                    .collect();
                match parsed {
                    Some(list) => Change::Percentiles(list),
                    None => {
                        return failed("percentile must be a number between 0 and 100");
                    }
                }
            }
            "slowlog-log-slower-than" => match value.trim().parse::<i64>() {
                Ok(n) => Change::SlowerThan(n),
                Err(_) => return failed("argument couldn't be parsed into an integer"),
            },
            "slowlog-max-len" => match int(i64::MAX as u64, 0) {
                Ok(n) => Change::SlowlogMaxLen(usize::try_from(n).unwrap_or(usize::MAX)),
                Err(e) => return e,
            },
            "hash-max-listpack-entries"
            | "hash-max-ziplist-entries"
            | "hash-max-listpack-value"
            | "hash-max-ziplist-value"
            | "set-max-intset-entries"
            | "zset-max-listpack-entries"
            | "zset-max-ziplist-entries"
            | "zset-max-listpack-value"
            | "zset-max-ziplist-value" => match int(i64::MAX as u64, 0) {
                Ok(n) => {
                    let kind = if name.starts_with("hash") {
                        "hash"
                    } else if name.starts_with("set") {
                        "set"
                    } else {
                        "zset"
                    };
                    Change::Encoding(kind, 0).with(&name, n as i64)
                }
                Err(e) => return e,
            },
            "list-max-listpack-size" | "list-max-ziplist-size" => {
                match value.trim().parse::<i64>() {
                    Ok(n) if (-5..=i64::from(i32::MAX)).contains(&n) && n != 0 => {
                        Change::Encoding("list", n)
                    }
                    _ => return failed("argument must be between -5 and 2147483647 inclusive"),
                }
            }
            "stream-node-max-entries" => match int(i64::MAX as u64, 0) {
                Ok(n) => Change::Encoding("stream-entries", n as i64),
                Err(e) => return e,
            },
            "stream-node-max-bytes" => match parse_memory(&value) {
                Ok(n) => Change::Encoding("stream-bytes", i64::try_from(n).unwrap_or(i64::MAX)),
                Err(_) => return failed("argument must be a memory value"),
            },
            "busy-reply-threshold" | "lua-time-limit" => match int(i64::MAX as u64, 0) {
                Ok(ms) => Change::BusyAfter(ms),
                Err(e) => return e,
            },
            "list-compress-depth" => match int(i32::MAX as u64, 0) {
                // kvs does not compress lists: the setting is accepted and has no effect.
                Ok(_) => Change::Encoding("none", 0),
                Err(e) => return e,
            },
            "client-output-buffer-limit" => match pubsub_limit(&value) {
                Ok(limit) => Change::PubsubLimit(limit),
                Err(why) => return failed(why),
            },
            _ if params.iter().any(|(p, _)| *p == name) => {
                return failed("can't set immutable config");
            }
            _ => {
                return Frame::err(format!(
                    "Unknown option or number of arguments for CONFIG SET - '{name}'"
                ));
            }
        };
        names.push(name);
        changes.push(change);
    }
    let memory = shared.engine.memory();
    let tracking = shared.engine.store().tracking();
    for change in changes {
        match change {
            // The default user's password alone (empty: none), as Redis sets it.
            Change::RequirePass(password) => shared.acl.set_requirepass(&password),
            Change::MaxMemory(bytes) => {
                memory.set_limit(bytes);
                let used = memory.used(shared.engine.store());
                if bytes > 0 && used > bytes {
                    tracing::warn!(
                        "the new maxmemory ({bytes}) is below the memory in use ({used}): keys will be evicted, or writes that need memory refused, as maxmemory-policy says"
                    );
                }
            }
            Change::Policy(policy) => tracking.set_policy(policy),
            Change::Samples(n) => memory.set_samples(n),
            Change::LogFactor(n) => tracking.set_log_factor(n),
            Change::DecayTime(n) => tracking.set_decay_minutes(n),
            Change::NotifyKeyspaceEvents(flags) => shared.engine.set_notify_flags(flags),
            Change::LatencyTracking(on) => shared
                .engine
                .stats()
                .latency_tracking
                .store(on, Ordering::Relaxed),
            Change::Percentiles(list) => *shared.engine.stats().percentiles.write() = list,
            Change::SlowerThan(n) => shared.engine.stats().slowlog.set_slower_than(n),
            Change::SlowlogMaxLen(n) => shared.engine.stats().slowlog.set_max_len(n),
            Change::PubsubLimit(Some(limit)) => shared.engine.pubsub().set_limit(limit),
            Change::PubsubLimit(None) => {}
            Change::BusyAfter(ms) => shared.engine.script().set_busy_after(ms),
            Change::Encoding(which, n) => {
                let store = shared.engine.store();
                let mut limits = store.collection_limits();
                let n_usize = usize::try_from(n).unwrap_or(0);
                match which {
                    "hash-entries" => limits.hash_entries = n_usize,
                    "hash-value" => limits.hash_value = n_usize,
                    "set-entries" => limits.set_intset_entries = n_usize,
                    "zset-entries" => limits.zset_entries = n_usize,
                    "zset-value" => limits.zset_value = n_usize,
                    "list" => limits.list_size = n,
                    "stream-entries" => limits.stream_node_entries = n_usize,
                    "stream-bytes" => limits.stream_node_bytes = n_usize,
                    _ => {}
                }
                store.set_collection_limits(limits);
            }
        }
    }
    Frame::ok()
}

impl Change {
    /// An encoding threshold named by its setting `name`, set to `n`.
    fn with(self, name: &str, n: i64) -> Change {
        let Change::Encoding(kind, _) = self else {
            return self;
        };
        let what = if name.ends_with("-value") {
            "value"
        } else {
            "entries"
        };
        let which = match (kind, what) {
            ("hash", "value") => "hash-value",
            ("hash", _) => "hash-entries",
            ("set", _) => "set-entries",
            ("zset", "value") => "zset-value",
            _ => "zset-entries",
        };
        Change::Encoding(which, n)
    }
}

/// `client-output-buffer-limit` as `CONFIG SET` takes it: `<class> <hard> <soft> <seconds>`
/// groups. kvs bounds the `pubsub` class; `normal` and `replica` may only be set to no limit,
/// which is what they are.
/// The new pubsub limit, or `None` when the value names only the other classes.
fn pubsub_limit(value: &str) -> Result<Option<crate::pubsub::OutputLimit>, &'static str> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.");
    }
    let mut pubsub = None;
    for group in words.chunks_exact(4) {
        let limit = crate::pubsub::OutputLimit::parse(&group[1..].join(" ")).map_err(
            |_| "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
        )?;
        match group[0].to_ascii_lowercase().as_str() {
            "pubsub" => pubsub = Some(limit),
            "normal" | "replica" | "slave" if limit.hard == 0 && limit.soft == 0 => {}
            "normal" | "replica" | "slave" => {
                return Err(
                    "kvs limits the output of pubsub clients only: normal and replica limits must be 0 0 0",
                );
            }
            _ => return Err("Invalid client class specified in buffer limit configuration."),
        }
    }
    Ok(pubsub)
}
