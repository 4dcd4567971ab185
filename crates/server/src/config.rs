//! Server configuration: embedded defaults, optionally overridden by a TOML file, then by flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use kvs_wal::FsyncPolicy;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Everything `kvs serve` can be told. Every field has a default, so an empty file is valid.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the HTTP listener.
    pub http: SocketAddr,
    /// Address of the Redis-protocol (RESP2/RESP3) listener.
    pub resp: SocketAddr,
    /// Address of the line-protocol listener (`cmd=get | key=1`).
    pub line: SocketAddr,
    /// Limits that protect the server from oversized or slow clients.
    pub limits: Limits,
    /// Where and how durably kvs keeps its data.
    pub persistence: Persistence,
    /// How much of the change feed's history is kept for listeners that resume.
    pub feed: crate::feed::FeedLimits,
    /// Users and passwords.
    pub security: Security,
    /// TLS addresses, certificate and key.
    pub tls: crate::tls::TlsSettings,
    /// The memory limit and the eviction policy (README, "kvs as a cache").
    pub memory: crate::memory::MemorySettings,
    /// Keyspace notifications and the output limit of subscribers.
    pub pubsub: crate::pubsub::PubSubSettings,
    /// The console and the slow log.
    pub observability: crate::stats::ObservabilitySettings,
}

/// Who may connect (README, "Securing kvs").
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// The `default` user's password (Redis's `requirepass`). Unset: the default user needs none.
    pub requirepass: Option<String>,
    /// Users in Redis's `users.acl` format, read at startup; `ACL SAVE` writes it and `ACL LOAD`
    /// reads it again. Cannot be combined with `requirepass`.
    pub aclfile: Option<PathBuf>,
    /// Refuse to start when a door listens beyond the loopback interface and the default user
    /// needs no password (and there is no ACL file). Default true; `--protected-mode no`.
    pub protected_mode: bool,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            requirepass: None,
            aclfile: None,
            protected_mode: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([127, 0, 0, 1], 9000)),
            resp: SocketAddr::from(([127, 0, 0, 1], 6379)),
            line: SocketAddr::from(([127, 0, 0, 1], 9001)),
            limits: Limits::default(),
            persistence: Persistence::default(),
            feed: crate::feed::FeedLimits::default(),
            security: Security::default(),
            tls: crate::tls::TlsSettings::default(),
            memory: crate::memory::MemorySettings::default(),
            pubsub: crate::pubsub::PubSubSettings::default(),
            observability: crate::stats::ObservabilitySettings::default(),
        }
    }
}

/// Durability settings (README, "Durability").
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Persistence {
    /// Keep nothing on disk: every key is lost when the process stops.
    pub in_memory: bool,
    /// The data directory: log segments, snapshots and a lock file. Default `kvs-data`, relative
    /// to the directory the server is started in.
    pub data_dir: PathBuf,
    /// `always` (acknowledge a write after the fsync that covers it), `everysec` (default:
    /// acknowledge once written to the OS, fsync every second) or `no` (leave fsync to the OS).
    #[serde(deserialize_with = "fsync_policy")]
    pub fsync: FsyncPolicy,
    /// A snapshot starts by itself once this many bytes of log were written since the last one.
    /// Default 64 MiB.
    pub snapshot_after: u64,
    /// Size at which the log moves on to a new segment file. Default 64 MiB.
    pub segment_size: u64,
    /// At startup, cut the log at the first damaged record instead of refusing to start; the
    /// records after it are lost. Default false.
    pub truncate_corrupt_log: bool,
}

impl Default for Persistence {
    fn default() -> Self {
        Self {
            in_memory: false,
            data_dir: PathBuf::from("kvs-data"),
            fsync: FsyncPolicy::EverySecond,
            snapshot_after: 64 << 20,
            segment_size: 64 << 20,
            truncate_corrupt_log: false,
        }
    }
}

impl Persistence {
    /// No persistence at all.
    pub fn in_memory() -> Self {
        Self {
            in_memory: true,
            ..Self::default()
        }
    }

    /// Persistence in `dir` with `fsync`.
    pub fn in_dir(dir: impl Into<PathBuf>, fsync: FsyncPolicy) -> Self {
        Self {
            data_dir: dir.into(),
            fsync,
            ..Self::default()
        }
    }
}

fn fsync_policy<'de, D: Deserializer<'de>>(d: D) -> Result<FsyncPolicy, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

/// Limits on what one client may send. Each has a documented default (see the README).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest key in bytes (after percent-decoding). Default 4096; longer keys get 414.
    pub max_key_len: usize,
    /// Largest value in bytes, on every front door. Default 64 MiB; larger HTTP bodies get 413
    /// before they are buffered, larger RESP bulk strings a protocol error.
    pub max_value_size: usize,
    /// Most open client connections per listener. Default 10,000 (Redis's `maxclients`); further
    /// connections get HTTP 503 or `-ERR max number of clients reached`, and are closed.
    pub max_connections: usize,
    /// Largest request head (request line and headers) in bytes. Default 16 KiB; larger get 431.
    pub max_header_size: usize,
    /// Most headers in one HTTP request. Default 100; more get 431.
    pub max_headers: usize,
    /// Most memory one RESP request may hold while it arrives, counting each argument's record
    /// as well as its bytes (Redis's `client-query-buffer-limit`). Default 1 GiB, at most 4 GiB;
    /// past it the connection gets an error and is closed.
    pub client_query_buffer_limit: usize,
    /// Most memory all RESP clients together may hold in their buffers (Redis 7's
    /// `maxmemory-clients`). Past it, the clients holding the most are disconnected first, and
    /// counted. Default 2 GiB; 0 means no limit.
    pub maxmemory_clients: usize,
    /// Time a client has to send a complete request head. Default 10 s.
    #[serde(deserialize_with = "duration")]
    pub header_timeout: Duration,
    /// Time a client has to send a complete request body. Default 60 s; slower bodies get 408.
    #[serde(deserialize_with = "duration")]
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_key_len: 4096,
            max_value_size: 64 * 1024 * 1024,
            max_connections: 10_000,
            max_header_size: 16 * 1024,
            max_headers: 100,
            client_query_buffer_limit: 1 << 30,
            maxmemory_clients: 2 << 30,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("invalid config file {path}: {cause}")]
    Parse {
        path: String,
        cause: Box<toml::de::Error>,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML file; fields it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: shown.clone(),
            cause,
        })?;
        Self::from_toml(&text).map_err(|cause| ConfigError::Parse {
            path: shown,
            cause: Box::new(cause),
        })
    }

    /// Parses TOML text; fields it leaves out keep their defaults.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Rejects settings the server cannot run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let bad = |what: &str| Err(ConfigError::Invalid(what.to_owned()));
        if l.max_key_len == 0 {
            return bad("max_key_len must be at least 1");
        }
        if l.max_connections == 0 {
            return bad("max_connections must be at least 1");
        }
        if l.client_query_buffer_limit < 1 << 20 || l.client_query_buffer_limit > u32::MAX as usize
        {
            return bad("client_query_buffer_limit must be from 1 MiB to 4 GiB");
        }
        if l.max_headers == 0 {
            return bad("max_headers must be at least 1");
        }
        if l.max_header_size < 8192 {
            return bad("max_header_size must be at least 8192 bytes");
        }
        if l.header_timeout.is_zero() || l.body_timeout.is_zero() {
            return bad("timeouts must be longer than zero");
        }
        self.memory.validate().map_err(ConfigError::Invalid)?;
        self.pubsub.resolve().map_err(ConfigError::Invalid)?;
        let p = &self.persistence;
        if p.segment_size < 4096 || p.snapshot_after < 4096 {
            return bad("segment_size and snapshot_after must be at least 4096 bytes");
        }
        Ok(())
    }
}

/// Reads a duration written as "10s", "500ms", "2m" (or a bare number of seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::from_toml("").ok(), Some(Config::default()));
    }

    #[test]
    fn file_overrides_some_fields() {
        let c = Config::from_toml(
            "http = \"127.0.0.1:8080\"\n[limits]\nmax_key_len = 10\nheader_timeout = \"500ms\"\nbody_timeout = 3\n",
        )
        .expect("valid config");
        assert_eq!(c.http, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(c.limits.max_key_len, 10);
        assert_eq!(c.limits.header_timeout, Duration::from_millis(500));
        assert_eq!(c.limits.body_timeout, Duration::from_secs(3));
        assert_eq!(c.limits.max_connections, Limits::default().max_connections);
    }

    #[test]
    fn persistence_settings() {
        let c =
            Config::from_toml("[persistence]\ndata_dir = \"/var/lib/kvs\"\nfsync = \"always\"\n")
                .expect("valid config");
        assert_eq!(c.persistence.data_dir, PathBuf::from("/var/lib/kvs"));
        assert_eq!(c.persistence.fsync, FsyncPolicy::Always);
        assert!(!c.persistence.in_memory);
        let err =
            Config::from_toml("[persistence]\nfsync = \"sometimes\"").expect_err("bad policy");
        assert!(err.to_string().contains("always, everysec or no"), "{err}");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_errors() {
        assert!(Config::from_toml("htp = \"127.0.0.1:1\"").is_err());
        assert!(Config::from_toml("[limits]\nheader_timeout = \"soon\"").is_err());
        let mut c = Config::default();
        c.limits.max_connections = 0;
        assert!(c.validate().is_err());
    }
}
