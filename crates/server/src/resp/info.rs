//! `INFO [section ...]` as Redis 7 answers it: the sections, their order, their field names and
//! `all`, `default` and `everything`.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use kvs_protocol::resp::Frame;

use super::Shared;
use crate::engine::now_millis;
use crate::memory::{Report, human};
use crate::pubsub::Kind;
use crate::stats::Door;

/// Every section, in Redis's order, and whether `INFO` without arguments shows it.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

type Lines = Vec<(String, String)>;

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_owned(), v.to_string())
}

/// The sections `args` ask for, in Redis's order.
fn wanted(args: &[Bytes]) -> Vec<&'static str> {
    let names: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let has = |n: &str| names.iter().any(|w| w == n);
    SECTIONS
        .iter()
        .filter(|(name, default)| {
            (names.is_empty() && *default)
                || has("everything")
                || has("all")
                || (has("default") && *default)
                || has(name)
        })
        .map(|(name, _)| *name)
        .collect()
}

pub(crate) fn info(shared: &Shared, args: &[Bytes]) -> Frame {
    let mut out = String::new();
    for name in wanted(args) {
        let (title, lines) = match name {
            "server" => ("Server", server(shared)),
            "clients" => ("Clients", clients(shared)),
            "memory" => ("Memory", memory(shared)),
            "persistence" => ("Persistence", super::persistence::info(&shared.engine)),
            "stats" => ("Stats", stats(shared)),
            "replication" => ("Replication", replication(shared)),
            "cpu" => ("CPU", cpu(shared)),
            "modules" => ("Modules", Vec::new()),
            "commandstats" => ("Commandstats", commandstats(shared)),
            "errorstats" => ("Errorstats", errorstats(shared)),
            "latencystats" => ("Latencystats", latencystats(shared)),
            "cluster" => ("Cluster", vec![kv("cluster_enabled", 0)]),
            _ => ("Keyspace", keyspace(shared)),
        };
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str(&format!("# {title}\r\n"));
        for (k, v) in lines {
            out.push_str(&format!("{k}:{v}\r\n"));
        }
    }
    Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(out),
    }
}

fn server(shared: &Shared) -> Lines {
    let engine = &shared.engine;
    let uptime = engine.uptime().as_secs();
    let now_ms = now_millis();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    vec![
        kv("redis_version", super::REDIS_VERSION),
        kv("redis_git_sha1", "00000000"),
        kv("redis_git_dirty", 0),
        kv("redis_build_id", "0"),
        kv("redis_mode", "standalone"),
        kv(
            "os",
            format!(
                "{} {} {}",
                std::env::consts::OS,
                kernel.trim(),
                std::env::consts::ARCH
            ),
        ),
        kv("arch_bits", usize::BITS),
        kv("monotonic_clock", "POSIX clock_gettime"),
        kv("multiplexing_api", "epoll"),
        kv("atomicvar_api", "c11-builtin"),
        kv("gcc_version", "0.0.0"),
        kv("process_id", std::process::id()),
        kv("process_supervised", "no"),
        kv("run_id", &engine.stats().run_id),
        kv("tcp_port", shared.config.resp.port()),
        kv("server_time_usec", now_ms * 1000),
        kv("uptime_in_seconds", uptime),
        kv("uptime_in_days", uptime / 86_400),
        kv("hz", 10),
        kv("configured_hz", 10),
        kv("lru_clock", (now_ms / 1000) & ((1 << 24) - 1)),
        kv(
            "executable",
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        kv("config_file", ""),
        kv("io_threads_active", 0),
        kv("kvs_version", env!("CARGO_PKG_VERSION")),
        kv("kvs_http_port", shared.config.http.port()),
        kv("kvs_line_port", shared.config.line.port()),
    ]
}

fn clients(shared: &Shared) -> Lines {
    let stats = shared.engine.stats();
    let open = |d: Door| stats.connections[d as usize].open.load(Ordering::Relaxed);
    vec![
        kv("connected_clients", shared.clients.count()),
        kv("cluster_connections", 0),
        kv("maxclients", shared.config.limits.max_connections),
        kv("blocked_clients", shared.engine.blocking().blocked()),
        kv("tracking_clients", 0),
        kv("clients_in_timeout_table", 0),
        kv("kvs_http_connections", open(Door::Http)),
        kv("kvs_line_connections", open(Door::Line)),
    ]
}

fn memory(shared: &Shared) -> Lines {
    let m = Report::now(&shared.engine, Some(shared.clients.memory() as u64));
    let percent = |part: u64, whole: u64| {
        if whole == 0 {
            "0.00%".to_owned()
        } else {
            format!("{:.2}%", part as f64 * 100.0 / whole as f64)
        }
    };
    vec![
        kv("used_memory", m.used_memory),
        kv("used_memory_human", human(m.used_memory)),
        kv("used_memory_rss", m.used_memory_rss),
        kv("used_memory_rss_human", human(m.used_memory_rss)),
        kv("used_memory_peak", m.used_memory_peak),
        kv("used_memory_peak_human", human(m.used_memory_peak)),
        kv(
            "used_memory_peak_perc",
            percent(m.used_memory, m.used_memory_peak),
        ),
        kv("used_memory_dataset", m.used_memory_dataset),
        kv(
            "used_memory_dataset_perc",
            percent(m.used_memory_dataset, m.used_memory),
        ),
        kv("allocator_allocated", m.allocator_allocated),
        kv("allocator_active", m.allocator_active),
        kv("allocator_resident", m.allocator_resident),
        kv("used_memory_lua", shared.engine.script().lua_bytes()),
        kv(
            "used_memory_lua_human",
            human(shared.engine.script().lua_bytes()),
        ),
        kv("number_of_cached_scripts", shared.scripts.count()),
        kv("number_of_functions", {
            let libraries = shared.scripts.libraries();
            let n: usize = libraries.iter().map(|l| l.functions.len()).sum();
            n
        }),
        kv("number_of_libraries", shared.scripts.libraries().len()),
        kv(
            "used_memory_vm_functions",
            shared.engine.script().function_bytes(),
        ),
        kv("maxmemory", m.maxmemory),
        kv("maxmemory_human", human(m.maxmemory)),
        kv("maxmemory_policy", &m.maxmemory_policy),
        kv(
            "mem_fragmentation_ratio",
            format!("{:.2}", m.mem_fragmentation_ratio),
        ),
        kv(
            "mem_fragmentation_bytes",
            m.used_memory_rss as i64 - m.used_memory as i64,
        ),
        kv("mem_not_counted_for_evict", m.mem_not_counted_for_evict),
        kv("mem_clients_normal", m.mem_clients_normal.unwrap_or(0)),
        kv("maxmemory_clients", shared.config.limits.maxmemory_clients),
        kv("mem_allocator", "jemalloc-5.3.0"),
        kv(
            "lazyfree_pending_objects",
            shared.engine.store().pending_free(),
        ),
    ]
}

fn stats(shared: &Shared) -> Lines {
    let engine = &shared.engine;
    let stats = engine.stats();
    let clients = &shared.clients;
    let pubsub = engine.pubsub();
    let acl = shared.acl.log.lock();
    let refused: u64 = stats
        .connections
        .iter()
        .map(|c| c.refused.load(Ordering::Relaxed))
        .sum();
    vec![
        kv(
            "total_connections_received",
            clients.connections_received.load(Ordering::Relaxed),
        ),
        kv(
            "total_commands_processed",
            clients.commands_processed.load(Ordering::Relaxed),
        ),
        kv("instantaneous_ops_per_sec", stats.history.ops_per_sec()),
        kv("rejected_connections", refused),
        kv("expired_keys", engine.store().expired_keys()),
        kv("evicted_keys", engine.store().evicted_keys()),
        kv("evicted_clients", clients.evicted.load(Ordering::Relaxed)),
        kv("keyspace_hits", stats.hits()),
        kv("keyspace_misses", stats.misses()),
        kv("pubsub_channels", pubsub.distinct(Kind::Channel)),
        kv("pubsub_patterns", pubsub.distinct(Kind::Pattern)),
        kv("pubsubshard_channels", pubsub.distinct(Kind::Shard)),
        kv("latest_fork_usec", 0),
        kv("total_forks", 0),
        kv("total_error_replies", stats.errors()),
        kv("oom_rejected_commands", engine.memory().rejected()),
        kv("acl_access_denied_auth", acl.denied("auth")),
        kv("acl_access_denied_cmd", acl.denied("command")),
        kv("acl_access_denied_key", acl.denied("key")),
        kv("acl_access_denied_channel", acl.denied("channel")),
        kv("pubsub_messages_published", pubsub.published()),
        kv(
            "client_output_buffer_limit_disconnections",
            pubsub.disconnected(),
        ),
        kv("watchers", engine.feed().listeners()),
        kv("watchers_dropped_slow", engine.feed().dropped_listeners()),
    ]
}

fn replication(shared: &Shared) -> Lines {
    vec![
        kv("role", "master"),
        kv("connected_slaves", 0),
        kv("master_failover_state", "no-failover"),
        kv("master_replid", &shared.engine.stats().run_id),
        kv("master_replid2", "0".repeat(40)),
        kv("master_repl_offset", 0),
        kv("second_repl_offset", -1),
        kv("repl_backlog_active", 0),
        kv("repl_backlog_size", 1_048_576),
        kv("repl_backlog_first_byte_offset", 0),
        kv("repl_backlog_histlen", 0),
    ]
}

fn cpu(shared: &Shared) -> Lines {
    let t = shared.engine.stats().cpu.now();
    let secs = |s: f64| format!("{s:.6}");
    vec![
        kv("used_cpu_sys", secs(t.sys)),
        kv("used_cpu_user", secs(t.user)),
        kv("used_cpu_sys_children", secs(t.sys_children)),
        kv("used_cpu_user_children", secs(t.user_children)),
        kv("used_cpu_sys_main_thread", secs(t.sys_main_thread)),
        kv("used_cpu_user_main_thread", secs(t.user_main_thread)),
    ]
}

fn commandstats(shared: &Shared) -> Lines {
    shared
        .engine
        .stats()
        .commands()
        .iter()
        .map(|t| t.commandstats_line())
        .collect()
}

fn errorstats(shared: &Shared) -> Lines {
    shared
        .engine
        .stats()
        .error_codes()
        .into_iter()
        .map(|(code, n)| (format!("errorstat_{code}"), format!("count={n}")))
        .collect()
}

fn latencystats(shared: &Shared) -> Lines {
    let stats = shared.engine.stats();
    let percentiles = stats.percentiles.read().clone();
    stats
        .commands()
        .iter()
        .filter_map(|t| t.latencystats_line(&percentiles))
        .collect()
}

fn keyspace(shared: &Shared) -> Lines {
    let store = shared.engine.store();
    let now = now_millis();
    let keys = store.len(now);
    if keys == 0 {
        return Vec::new();
    }
    vec![kv(
        "db0",
        format!(
            "keys={keys},expires={},avg_ttl={}",
            store.expiring(),
            store.average_ttl(now)
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(args: &[&str]) -> Vec<&'static str> {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::from(a.to_string())).collect();
        wanted(&args)
    }

    #[test]
    fn sections_are_chosen_as_redis_chooses_them() {
        let default = names(&[]);
        assert!(default.contains(&"server") && default.contains(&"errorstats"));
        assert!(!default.contains(&"commandstats") && !default.contains(&"latencystats"));
        assert_eq!(names(&["default"]), default);
        assert_eq!(names(&["all"]).len(), SECTIONS.len());
        assert_eq!(names(&["everything"]).len(), SECTIONS.len());
        assert_eq!(names(&["KEYSPACE", "server"]), vec!["server", "keyspace"]);
        assert_eq!(names(&["commandstats", "default"]).len(), default.len() + 1);
        assert!(names(&["nosuchsection"]).is_empty());
    }
}
