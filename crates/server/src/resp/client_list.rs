//! `CLIENT LIST`, `CLIENT INFO` and `CLIENT KILL` in Redis 7.0's words and format, and
//! `CLIENT PAUSE`'s state.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kvs_protocol::resp::Frame;
use kvs_store::{CommandError, Flag, Spec};
use tokio::sync::Notify;

use super::Shared;
use super::clients::ClientInfo;

/// One line of `CLIENT LIST` / `CLIENT INFO`, with Redis 7.0's fields in its order.
pub(crate) fn client_line(shared: &Shared, id: u64, c: &ClientInfo) -> String {
    let stats = shared.engine.stats();
    let a = &c.activity;
    let load = |n: &std::sync::atomic::AtomicUsize| n.load(Ordering::Relaxed);
    let multi = a.multi.load(Ordering::Relaxed);
    let mut flags = String::new();
    if a.monitor.load(Ordering::Relaxed) {
        flags.push('O');
    }
    if c.pubsub.0 + c.pubsub.1 + c.pubsub.2 > 0 {
        flags.push('P');
    }
    if multi >= 0 {
        flags.push('x');
    }
    if a.no_evict.load(Ordering::Relaxed) {
        flags.push('e');
    }
    if a.blocked.load(Ordering::Relaxed) {
        flags.push('b');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let cmd = match a.cmd.load(Ordering::Relaxed) {
        0 => "NULL",
        slot => stats.command_name(slot - 1).unwrap_or("NULL"),
    };
    let idle = stats
        .clock_ms()
        .saturating_sub(a.last_ms.load(Ordering::Relaxed))
        / 1000;
    let (qbuf, qbuf_free) = (load(&a.qbuf), load(&a.qbuf_free));
    let obl = load(&a.obl);
    format!(
        "id={id} addr={} laddr={} fd={} name={} age={} idle={idle} flags={flags} db=0 sub={} psub={} ssub={} multi={multi} qbuf={qbuf} qbuf-free={qbuf_free} argv-mem={} multi-mem=0 rbs={} rbp={} obl={obl} oll=0 omem={} tot-mem={} events={} cmd={cmd} user={} redir=-1 resp={}\n",
        c.addr,
        c.local,
        c.fd,
        c.name,
        c.since.elapsed().as_secs(),
        c.pubsub.0,
        c.pubsub.1,
        c.pubsub.2,
        load(&a.argv_mem),
        qbuf + qbuf_free,
        qbuf + qbuf_free,
        load(&a.omem),
        c.memory.load(Ordering::Relaxed),
        if obl > 0 { "rw" } else { "r" },
        c.user,
        c.resp
    )
}

/// A client's type, as `CLIENT LIST TYPE` and `CLIENT KILL TYPE` name them.
fn type_matches(kind: &str, c: &ClientInfo) -> Result<bool, Frame> {
    let subscribed = c.pubsub.0 + c.pubsub.1 + c.pubsub.2 > 0;
    match kind.to_ascii_lowercase().as_str() {
        "normal" => Ok(!subscribed),
        "pubsub" => Ok(subscribed),
        // kvs has no replication yet: no client is a master or a replica.
        "master" | "replica" | "slave" => Ok(false),
        _ => Err(Frame::err(format!("Unknown client type '{kind}'"))),
    }
}

/// `CLIENT LIST [TYPE type] [ID id ...]`.
pub(crate) fn list(shared: &Shared, args: &[Bytes]) -> Frame {
    let mut kind: Option<String> = None;
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 0;
    while i < args.len() {
        let word = args[i].to_ascii_lowercase();
        match word.as_slice() {
            b"type" if i + 1 < args.len() && kind.is_none() && ids.is_none() => {
                kind = Some(String::from_utf8_lossy(&args[i + 1]).into_owned());
                i += 2;
            }
            b"id" if i + 1 < args.len() && ids.is_none() => {
                let mut wanted = Vec::new();
                for id in &args[i + 1..] {
                    match std::str::from_utf8(id)
                        .ok()
                        .and_then(|t| t.parse::<u64>().ok())
                    {
                        Some(n) => wanted.push(n),
                        None => return Frame::err("Invalid client ID"),
                    }
                }
                ids = Some(wanted);
                i = args.len();
            }
            _ => return Frame::Error(CommandError::Syntax.to_string()),
        }
    }
    let mut text = String::new();
    for (id, c) in shared.clients.snapshot() {
        if let Some(kind) = &kind {
            match type_matches(kind, &c) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => return e,
            }
        }
        if ids.as_ref().is_some_and(|ids| !ids.contains(&id)) {
            continue;
        }
        text.push_str(&client_line(shared, id, &c));
    }
    Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(text),
    }
}

/// `CLIENT KILL ip:port` (the old form: OK or an error) or `CLIENT KILL <filter> <value> ...`
/// with ID, TYPE, USER, ADDR, LADDR and SKIPME (the new form: how many were killed).
pub(crate) fn kill(shared: &Shared, me: u64, filters: &[Bytes]) -> Frame {
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
    let (mut id, mut addr, mut laddr, mut kind, mut user) = (None, None, None, None, None);
    let mut skip_me = true;
    for pair in filters.chunks_exact(2) {
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        match pair[0].to_ascii_lowercase().as_slice() {
            b"id" => match value.parse::<u64>() {
                Ok(v) if v > 0 => id = Some(v),
                _ => return Frame::err("client-id should be greater than 0"),
            },
            b"addr" => addr = Some(value),
            b"laddr" => laddr = Some(value),
            b"type" => {
                // Checked now, so an unknown type is an error even with no client to test.
                if let Err(e) = type_matches(&value, &dummy_client()) {
                    return e;
                }
                kind = Some(value);
            }
            b"user" => {
                if shared.acl.user(&value).is_none() {
                    return Frame::err(format!("No such user '{value}'"));
                }
                user = Some(value);
            }
            b"skipme" => match value.to_ascii_lowercase().as_str() {
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
            && user.as_ref().is_none_or(|u| *u == c.user)
            && kind
                .as_ref()
                .is_none_or(|k| type_matches(k, c).unwrap_or(false))
    });
    Frame::Integer(n as i64)
}

/// A client of no kind in particular, to check a type name against.
fn dummy_client() -> ClientInfo {
    ClientInfo {
        fd: -1,
        activity: Default::default(),
        addr: ([0, 0, 0, 0], 0).into(),
        local: ([0, 0, 0, 0], 0).into(),
        name: String::new(),
        since: std::time::Instant::now(),
        resp: 2,
        user: String::new(),
        memory: Default::default(),
        kill: Default::default(),
        pubsub: (0, 0, 0),
    }
}

/// `CLIENT PAUSE`: until when requests wait, and whether only writes do.
#[derive(Debug, Default)]
pub(crate) struct Pause {
    /// The end of the pause on the statistics' clock, in milliseconds; 0: not paused.
    until_ms: AtomicU64,
    /// Only commands that may write (and PUBLISH) wait; reads go on.
    writes_only: AtomicBool,
    /// Woken by `CLIENT UNPAUSE` and by a new pause.
    changed: Notify,
}

impl Pause {
    /// `CLIENT PAUSE timeout [WRITE|ALL]`, from the clock reading `now_ms`.
    pub(crate) fn pause(&self, now_ms: u64, millis: u64, writes_only: bool) {
        // With a pause already on, the later end and the stricter kind win, as in Redis.
        let current = self.until_ms.load(Ordering::Acquire);
        let active = current > now_ms;
        let until = now_ms
            .saturating_add(millis)
            .max(if active { current } else { 1 });
        let writes = writes_only && (!active || self.writes_only.load(Ordering::Acquire));
        self.writes_only.store(writes, Ordering::Release);
        self.until_ms.store(until, Ordering::Release);
        self.changed.notify_waiters();
    }

    pub(crate) fn unpause(&self) {
        self.until_ms.store(0, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Whether a pause may be on (one atomic load; [`Pause::wait_for`] says for how long).
    pub(crate) fn maybe_on(&self) -> bool {
        self.until_ms.load(Ordering::Relaxed) != 0
    }

    /// How long a request for `spec` must wait now, if at all: one atomic load when no pause
    /// is on.
    pub(crate) fn wait_for(&self, now_ms: u64, spec: Option<&Spec>) -> Option<Duration> {
        let until = self.until_ms.load(Ordering::Acquire);
        if until <= now_ms {
            // Over: back to the state that costs one load.
            let _ = self
                .until_ms
                .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Relaxed);
            return None;
        }
        if self.writes_only.load(Ordering::Acquire) {
            let writes = spec
                .is_some_and(|s| s.has(Flag::Write) || s.name == "publish" || s.name == "spublish");
            if !writes {
                return None;
            }
        }
        Some(Duration::from_millis(until - now_ms))
    }

    /// Resolves when the pause may have ended early (UNPAUSE) or changed.
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }
}
