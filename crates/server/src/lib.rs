//! `kvs-server` runs kvs: the [`Engine`] that owns the keyspace, the network front doors (HTTP,
//! RESP and the line protocol, all accepted by one listener), configuration, the background
//! expiry sweep and graceful shutdown.
//!
//! It is not the command line: the `kvs` binary parses flags and signals and calls [`Server`].
//! Tests start a real server the same way, on `127.0.0.1:0`, and stop it with a future.

pub mod acl;
pub mod blocking;
mod commit;
pub mod config;
mod connection_threads;
mod engine;
mod expiry;
pub mod feed;
pub mod http;
mod line;
mod listener;
pub mod memory;
pub mod persistence;
pub mod pubsub;
pub mod resp;
mod script;
mod server;
pub mod stats;
pub mod tls;

/// jemalloc, for every program that runs a kvs server (the `kvs` binary and the tests alike):
/// small entries are packed into exactly-sized allocations (see kvs-store), and jemalloc's size
/// classes carry no per-allocation header, where glibc's malloc adds 8 bytes and rounds to 16
/// (measured: 131 against 115 bytes of RSS per key of 1M keys with 64-byte values). Its own
/// statistics are what `used_memory` and the memory limit count (see [`memory`]).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub use acl::{Acl, User};
pub use commit::{Committed, Uncommitted};
pub use config::{Config, ConfigError, FsyncPolicy, Limits, Persistence, Security};
pub use engine::{Engine, SnapshotRefused};
pub use feed::{Feed, FeedError, FeedItem, FeedLimits, Start, Subscription};
pub use server::{ServeError, Server, run};
