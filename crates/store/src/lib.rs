//! `kvs-store` owns the keyspace of kvs: keys and values as bytes, each value with its content
//! type, version, last-modified time and optional expiry, and the `Command`/`Reply` language that
//! every front door (HTTP, RESP, the line protocol) translates to and from.
//!
//! It is not a server: it opens no sockets or files, starts no threads and never reads the clock.
//! Every operation is given the current time (`now`, milliseconds since the Unix epoch) by its
//! caller, so tests control time exactly and the log can replay writes deterministically.
//!
//! Concurrency contract: the keyspace is split into shards, each behind its own reader-writer lock.
//! Readers never wait for readers; writers wait only for operations on the same shard. Every
//! per-key operation runs entirely under its shard's lock and is therefore linearizable.
//!
//! The crate is four layers; a module uses only its own layer and the ones below it (a test in
//! this file checks every `use crate::` line):
//!
//! ```text
//! commands   command/ (one file per command, the command table), reply
//!    │
//! handle     access (Keyspace, Call, Transaction, Writer: locking, effects, submission), listing
//!    │
//! shards     keyspace (Store: shards, revision, sweep), shard, replay, snapshot, evict, s3fifo
//!    │
//! records    entry, packed (the compact layout), effects (Change, Effects, Ticket, Commit),
//!            change (the record codec), error, pattern, usage (policies, the usage word)
//! ```

mod access;
pub mod change;
pub mod collection;
mod command;
pub mod effects;
mod entry;
mod error;
mod evict;
mod keyspace;
mod listing;
mod packed;
mod pattern;
mod replay;
mod reply;
mod s3fifo;
mod shard;
mod snapshot;
mod usage;

pub use access::{Call, Keyspace, Picked, Transaction, Writer};
pub use collection::{Collection, Edit, Limits, Score, format_double};
pub use command::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
pub use command::{
    Append, Command, Condition, Copy, Count, Del, Delete, Exists, Expire, ExpireCondition,
    ExpireIf, ExpiryUpdate, Flush, Get, GetDel, GetEx, GetRange, IncrBy, IncrByFloat, Keys, List,
    MAX_VALUE_LEN, MGet, MSet, Object, ObjectQuery, Persist, RandomKey, Rename, Set, SetRange,
    SetReply, Strlen, Ttl, TtlForm, TypeOf, parse_integer,
};
pub use command::{Applied, Watched};
pub use command::{data_spec, data_spec_lowercase, data_specs};
pub use effects::{Change, Commit, Effects, Event, Removal, Ticket};
pub use entry::{DEFAULT_CONTENT_TYPE, Entry, KeyInfo, Kind, Millis, Value};
pub use error::CommandError;
pub use evict::{Evicted, POOL_SIZE};
pub use keyspace::{DEFAULT_SHARDS, Store};
pub use listing::Page;
pub use packed::{EntryRef, INLINE_MAX};
pub use pattern::glob_match;
pub use reply::Reply;
pub use shard::{Garbage, Shard};
pub use usage::{LFU_INIT_VAL, Policy, Tracking, size_class};

#[cfg(test)]
mod layering {
    /// The layer of each module, bottom first, as the crate documentation draws them.
    const LAYERS: &[&[&str]] = &[
        &[
            "entry",
            "collection",
            "packed",
            "effects",
            "change",
            "error",
            "pattern",
            "usage",
        ],
        &["keyspace", "shard", "replay", "snapshot", "evict", "s3fifo"],
        &["access", "listing"],
        &["command", "reply"],
    ];

    fn layer(module: &str) -> usize {
        LAYERS
            .iter()
            .position(|l| l.contains(&module))
            .unwrap_or_else(|| panic!("module {module} has no layer: add it to LAYERS"))
    }

    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("source dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// No module reaches up: every `crate::x` a file names is in its own layer or below.
    #[test]
    fn every_import_points_down() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let mut checked = 0;
        for file in files {
            let rel = file.strip_prefix(&root).expect("under src");
            let module = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .map(|m| m.trim_end_matches(".rs"))
                .expect("a module");
            if module == "lib" {
                continue;
            }
            let own = layer(module);
            let text = std::fs::read_to_string(&file).expect("source");
            // Code only: doc comments may name any module, and tests may use anything.
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for (i, _) in code.match_indices("crate::") {
                let used: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if used.is_empty() || used.chars().next().is_some_and(char::is_uppercase) {
                    continue;
                }
                assert!(
                    layer(&used) <= own,
                    "{} (layer {own}) uses crate::{used} (layer {})",
                    rel.display(),
                    layer(&used)
                );
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} imports seen");
    }
}
