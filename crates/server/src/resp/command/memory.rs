//! MEMORY: how much memory a key takes (`MEMORY USAGE`), the server's memory figures
//! (`MEMORY STATS`), a plain-words reading of them (`MEMORY DOCTOR`) and the allocator's own
//! report (`MEMORY MALLOC-STATS`).

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{Access, Category, CommandError, Flag, KeyAccess, KeySpec, Spec};

use super::SessionCommand;
use crate::engine::now_millis;
use crate::memory::{Report, human};
use crate::resp::session::Session;

const STATS_FLAGS: &[Flag] = &[];
const SLOW: &[Category] = &[Category::Slow];

/// A MEMORY subcommand's spec.
const fn sub(name: &'static str, arity: i32, summary: &'static str, ex: &'static str) -> Spec {
    Spec {
        name,
        arity,
        flags: STATS_FLAGS,
        categories: SLOW,
        group: "server",
        summary,
        example: ex,
        ..Spec::BLANK
    }
}

pub(super) const COMMANDS: &[SessionCommand] = &[SessionCommand {
    spec: Spec {
        name: "memory",
        arity: -2,
        categories: SLOW,
        group: "server",
        summary: "A container for memory diagnostics commands",
        example: "MEMORY USAGE k",
        subcommands: &[
            sub(
                "memory|doctor",
                2,
                "Outputs memory problems report",
                "MEMORY DOCTOR",
            ),
            sub(
                "memory|malloc-stats",
                2,
                "Show allocator internal stats",
                "MEMORY MALLOC-STATS",
            ),
            sub(
                "memory|stats",
                2,
                "Show memory usage details",
                "MEMORY STATS",
            ),
            Spec {
                flags: &[Flag::Readonly],
                categories: &[Category::Read, Category::Slow],
                keys: KeySpec::Range {
                    first: 2,
                    last: 2,
                    step: 1,
                },
                access: KeyAccess::Each(Access::NONE),
                ..sub(
                    "memory|usage",
                    -3,
                    "Estimate the memory usage of a key",
                    "MEMORY USAGE k",
                )
            },
            Spec {
                flags: &[Flag::Loading, Flag::Stale],
                ..sub(
                    "memory|help",
                    2,
                    "Show helpful text about the different subcommands",
                    "MEMORY HELP",
                )
            },
        ],
        ..Spec::BLANK
    },
    run: memory,
}];

fn memory(session: &mut Session, args: &[Bytes]) -> Frame {
    let Some((sub, rest)) = args.split_first() else {
        return Frame::Error(CommandError::WrongArity("memory".into()).to_string());
    };
    let shared = &session.shared;
    match sub.to_ascii_lowercase().as_slice() {
        b"usage" => usage(session, rest),
        b"stats" => stats(&Report::now(
            &shared.engine,
            Some(shared.clients.memory() as u64),
        )),
        b"doctor" => Frame::Verbatim {
            format: *b"txt",
            text: Bytes::from(doctor(&Report::now(
                &shared.engine,
                Some(shared.clients.memory() as u64),
            ))),
        },
        b"malloc-stats" => {
            let mut text = Vec::new();
            let written =
                tikv_jemalloc_ctl::stats_print::stats_print(&mut text, Default::default());
            match written {
                Ok(()) => Frame::Verbatim {
                    format: *b"txt",
                    text: Bytes::from(text),
                },
                Err(_) => Frame::Verbatim {
                    format: *b"txt",
                    text: Bytes::from_static(b"Stats not supported for the current allocator"),
                },
            }
        }
        b"help" => super::help(&COMMANDS[0].spec),
        _ => Frame::Error(
            CommandError::UnknownSubcommand {
                sub: String::from_utf8_lossy(sub).into_owned(),
                command: "MEMORY".into(),
            }
            .to_string(),
        ),
    }
}

/// `MEMORY USAGE key [SAMPLES count]`: bytes the key and its entry take, or nil. Every byte is
/// counted exactly, so SAMPLES is accepted and has nothing to change.
fn usage(session: &Session, rest: &[Bytes]) -> Frame {
    let Some((key, options)) = rest.split_first() else {
        return Frame::Error(CommandError::WrongArity("memory|usage".into()).to_string());
    };
    match options {
        [] => {}
        [word, count] if word.eq_ignore_ascii_case(b"samples") => {
            if kvs_store::parse_integer(count).is_err() {
                return Frame::Error(CommandError::NotInteger.to_string());
            }
        }
        _ => return Frame::Error(CommandError::Syntax.to_string()),
    }
    match session.shared.engine.store().usage_of(key, now_millis()) {
        Some(bytes) => Frame::Integer(bytes as i64),
        None => Frame::Null,
    }
}

/// `MEMORY STATS`, with Redis's field names where kvs has the figure.
fn stats(m: &Report) -> Frame {
    let int = |name: &str, v: u64| (Frame::bulk(name.to_owned()), Frame::Integer(v as i64));
    let real = |name: &str, v: f64| (Frame::bulk(name.to_owned()), Frame::Double(v));
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let overhead = m.used_memory.saturating_sub(m.used_memory_dataset);
    Frame::Map(vec![
        int("peak.allocated", m.used_memory_peak),
        int("total.allocated", m.used_memory),
        int("clients.normal", m.mem_clients_normal.unwrap_or(0)),
        int("overhead.total", overhead),
        int("keys.count", m.keys),
        int(
            "keys.bytes-per-key",
            m.used_memory.checked_div(m.keys).unwrap_or(0),
        ),
        int("dataset.bytes", m.used_memory_dataset),
        real(
            "dataset.percentage",
            ratio(m.used_memory_dataset, m.used_memory) * 100.0,
        ),
        real(
            "peak.percentage",
            ratio(m.used_memory, m.used_memory_peak) * 100.0,
        ),
        int("allocator.allocated", m.allocator_allocated),
        int("allocator.active", m.allocator_active),
        int("allocator.resident", m.allocator_resident),
        real(
            "allocator-fragmentation.ratio",
            ratio(m.allocator_active, m.allocator_allocated),
        ),
        int(
            "allocator-fragmentation.bytes",
            m.allocator_active.saturating_sub(m.allocator_allocated),
        ),
        real(
            "allocator.rss-ratio",
            ratio(m.allocator_resident, m.allocator_active),
        ),
        int(
            "allocator.rss-bytes",
            m.allocator_resident.saturating_sub(m.allocator_active),
        ),
        real(
            "rss-overhead.ratio",
            ratio(m.used_memory_rss, m.allocator_resident),
        ),
        int(
            "rss-overhead.bytes",
            m.used_memory_rss.saturating_sub(m.allocator_resident),
        ),
        real("fragmentation", m.mem_fragmentation_ratio),
        int(
            "fragmentation.bytes",
            m.used_memory_rss.saturating_sub(m.used_memory),
        ),
        int("maxmemory", m.maxmemory),
        int("evicted.keys", m.evicted_keys),
    ])
}

/// `MEMORY DOCTOR`: the figures that call for attention, in words.
fn doctor(m: &Report) -> String {
    let mut findings = Vec::new();
    if m.maxmemory > 0 && m.used_memory_counted > m.maxmemory {
        findings.push(format!(
            " * Over the limit: {} counted against a maxmemory of {}. With maxmemory-policy {}, {}.",
            human(m.used_memory_counted),
            human(m.maxmemory),
            m.maxmemory_policy,
            if m.maxmemory_policy == "noeviction" {
                "writes that need memory are refused"
            } else {
                "keys are being evicted"
            }
        ));
    }
    if m.used_memory > 64 << 20 && m.mem_fragmentation_ratio > 1.4 {
        findings.push(format!(
            " * High fragmentation: the process holds {} of memory for {} in use (ratio {:.2}). Memory freed by deleted or evicted keys is kept for new ones.",
            human(m.used_memory_rss),
            human(m.used_memory),
            m.mem_fragmentation_ratio
        ));
    }
    if m.used_memory_peak > 64 << 20 && m.used_memory_peak > m.used_memory.saturating_mul(2) {
        findings.push(format!(
            " * Peak memory: {} at its peak, twice or more what is in use now ({}).",
            human(m.used_memory_peak),
            human(m.used_memory)
        ));
    }
    if findings.is_empty() {
        "No memory issue found: memory is within its limit, and fragmentation and peak usage are unremarkable.".to_owned()
    } else {
        format!("Memory issues found:\n\n{}\n", findings.join("\n\n"))
    }
}
