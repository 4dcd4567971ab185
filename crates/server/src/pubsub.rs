//! Publish/subscribe as Redis 7 has it: channels, glob patterns and shard channels, shared by
//! every RESP connection, and the keyspace notifications that kvs publishes on them.
//!
//! **Delivery.** Each subscribed connection has a [`Mailbox`]: the encoded messages not yet
//! handed to its socket. A publisher appends to the mailboxes of the receivers (under each
//! mailbox's own short lock) and wakes their connections; it never waits for a subscriber's
//! socket. A connection drains its mailbox into its output whenever it is woken, and before
//! each reply it sends, so messages published before a command ran reach the client before the
//! command's answer.
//!
//! **Slow subscribers.** What a mailbox holds is bounded as Redis bounds a pub/sub client's
//! output buffer (`client-output-buffer-limit pubsub 32mb 8mb 60`): past the hard limit, or above
//! the soft limit for longer than its seconds, the subscriber is disconnected and counted, and
//! its mailbox is emptied, so memory cannot grow without bound.
//!
//! **Keyspace notifications** (`notify-keyspace-events`) are published by [`notify`], a task
//! that reads the change feed: every committed write, from any door, in commit order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kvs_protocol::resp::Version;
use kvs_store::{Change, Effects, Event, Removal, glob_match};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::feed::{FeedError, Start};

/// The `[pubsub]` table of the configuration file (README, "Watching keys").
#[derive(Clone, Debug, serde::Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PubSubSettings {
    /// Which keyspace events are published, in Redis's letters (`KEA`, `Ex`, ...). Default
    /// empty: none.
    pub notify_keyspace_events: String,
    /// `"hard soft seconds"` for subscribers, in Redis's units. Default `"32mb 8mb 60"`.
    pub client_output_buffer_limit: String,
}

impl Default for PubSubSettings {
    fn default() -> Self {
        Self {
            notify_keyspace_events: String::new(),
            client_output_buffer_limit: "32mb 8mb 60".into(),
        }
    }
}

impl PubSubSettings {
    /// The flags and the limit these settings give; what is wrong otherwise.
    pub fn resolve(&self) -> Result<(u32, OutputLimit), String> {
        let flags = parse_notify_flags(&self.notify_keyspace_events).ok_or_else(|| {
            format!(
                "notify_keyspace_events {:?} has a letter that is not one of K E g $ l s h z x e t m d n A",
                self.notify_keyspace_events
            )
        })?;
        let limit = OutputLimit::parse(&self.client_output_buffer_limit)
            .map_err(|e| format!("client_output_buffer_limit: {e}"))?;
        Ok((flags, limit))
    }
}

/// How much unsent output one subscriber may hold (Redis's `client-output-buffer-limit` for the
/// `pubsub` class). A zero limit is no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLimit {
    /// Disconnect at once past this many bytes. Default 32 MiB.
    pub hard: u64,
    /// Disconnect when above this many bytes for `soft_seconds` in a row. Default 8 MiB.
    pub soft: u64,
    /// Default 60.
    pub soft_seconds: u64,
}

impl Default for OutputLimit {
    fn default() -> Self {
        Self {
            hard: 32 << 20,
            soft: 8 << 20,
            soft_seconds: 60,
        }
    }
}

impl OutputLimit {
    /// Reads `"32mb 8mb 60"` (hard, soft, seconds), in Redis's memory units.
    pub fn parse(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let [hard, soft, seconds] = words[..] else {
            return Err("expected three values: hard limit, soft limit and soft seconds".into());
        };
        let bytes = |w: &str| {
            crate::memory::parse_memory(w).map_err(|_| format!("'{w}' is not a memory value"))
        };
        Ok(Self {
            hard: bytes(hard)?,
            soft: bytes(soft)?,
            soft_seconds: seconds
                .parse()
                .map_err(|_| format!("'{seconds}' is not a number of seconds"))?,
        })
    }
}

impl std::fmt::Display for OutputLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.hard, self.soft, self.soft_seconds)
    }
}

/// The three kinds of subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    /// The word of a subscribe and unsubscribe confirmation.
    pub(crate) fn words(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("subscribe", "unsubscribe"),
            Kind::Pattern => ("psubscribe", "punsubscribe"),
            Kind::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }
}

#[derive(Debug, Default)]
struct Outbox {
    buf: BytesMut,
    /// When the mailbox went above the soft limit, if it is above it.
    soft_since: Option<Instant>,
    /// Cut off: the connection is being closed and nothing more is kept.
    closed: bool,
}

/// One subscribed connection's unsent messages. See the module documentation.
#[derive(Debug)]
pub(crate) struct Mailbox {
    /// The connection's id (for the log).
    client: u64,
    resp3: AtomicBool,
    out: Mutex<Outbox>,
    ready: Notify,
    /// Closes the connection when it is cut off.
    kill: CancellationToken,
}

impl Mailbox {
    pub(crate) fn new(client: u64, version: Version, kill: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            client,
            resp3: AtomicBool::new(version == Version::Resp3),
            out: Mutex::new(Outbox::default()),
            ready: Notify::new(),
            kill,
        })
    }

    /// Messages are encoded in `version` from now on (after `HELLO`).
    pub(crate) fn set_version(&self, version: Version) {
        self.resp3
            .store(version == Version::Resp3, Ordering::Relaxed);
    }

    fn version(&self) -> Version {
        if self.resp3.load(Ordering::Relaxed) {
            Version::Resp3
        } else {
            Version::Resp2
        }
    }

    /// Resolves once messages may be waiting.
    pub(crate) async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Moves the waiting messages to `output`.
    pub(crate) fn drain_into(&self, output: &mut BytesMut) {
        let mut out = self.out.lock();
        if out.buf.is_empty() {
            return;
        }
        if output.is_empty() {
            std::mem::swap(output, &mut out.buf);
        } else {
            output.extend_from_slice(&out.buf);
            out.buf.clear();
        }
        out.soft_since = None;
    }

    /// Bytes waiting.
    pub(crate) fn pending(&self) -> usize {
        self.out.lock().buf.len()
    }

    /// Appends `line` and wakes the connection: what a monitor (`MONITOR`) is sent. Bounded like
    /// a subscriber's messages; `false` once the monitor was cut off for falling behind.
    pub(crate) fn push_now(&self, line: &[u8], limit: OutputLimit) -> bool {
        match self.deliver(line, limit, Instant::now()) {
            Delivery::CutOff => false,
            Delivery::Queued { first } => {
                if first {
                    self.ready.notify_one();
                }
                true
            }
        }
    }

    /// Appends one encoded message. The subscriber is not woken here: the caller wakes it
    /// (with [`Wakes`]) once it has published all it has to, so a pipeline of messages costs
    /// one wake-up and one write per subscriber, not one per message.
    fn deliver(&self, message: &[u8], limit: OutputLimit, now: Instant) -> Delivery {
        let mut out = self.out.lock();
        if out.closed {
            return Delivery::Queued { first: false };
        }
        let first = out.buf.is_empty();
        out.buf.extend_from_slice(message);
        let held = out.buf.len() as u64;
        let over_hard = limit.hard > 0 && held > limit.hard;
        let over_soft = limit.soft > 0 && held > limit.soft;
        let soft_expired = if over_soft {
            let since = *out.soft_since.get_or_insert(now);
            now.duration_since(since) >= Duration::from_secs(limit.soft_seconds)
        } else {
            out.soft_since = None;
            false
        };
        if over_hard || soft_expired {
            out.closed = true;
            out.buf = BytesMut::new();
            drop(out);
            tracing::warn!(
                client = self.client,
                held,
                "disconnecting a subscriber that fell behind: its unsent messages passed client-output-buffer-limit pubsub {limit}"
            );
            self.kill.cancel();
            return Delivery::CutOff;
        }
        Delivery::Queued { first }
    }
}

enum Delivery {
    /// Queued; `first` if the mailbox was empty (its connection must be woken).
    Queued { first: bool },
    /// The subscriber fell too far behind and is being disconnected.
    CutOff,
}

/// Subscribers with new messages, to wake once publishing is done.
#[derive(Debug, Default)]
pub(crate) struct Wakes(Vec<Arc<Mailbox>>);

impl Wakes {
    /// Wakes every connection with new messages.
    pub(crate) fn wake_all(&mut self) {
        for mailbox in self.0.drain(..) {
            mailbox.ready.notify_one();
        }
    }
}

impl Drop for Wakes {
    fn drop(&mut self) {
        self.wake_all();
    }
}

/// One message, encoded once per protocol version on demand.
struct Encoded<'a> {
    parts: [&'a [u8]; 4],
    count: usize,
    cached: [Option<BytesMut>; 2],
}

impl<'a> Encoded<'a> {
    fn new(parts: &[&'a [u8]]) -> Self {
        let mut all: [&'a [u8]; 4] = [b""; 4];
        all[..parts.len()].copy_from_slice(parts);
        Self {
            parts: all,
            count: parts.len(),
            cached: [None, None],
        }
    }

    fn bytes(&mut self, version: Version) -> &[u8] {
        let slot = usize::from(version == Version::Resp3);
        let (parts, count) = (self.parts, self.count);
        self.cached[slot].get_or_insert_with(|| {
            let mut buf =
                BytesMut::with_capacity(16 + parts.iter().map(|p| p.len() + 16).sum::<usize>());
            push_header(&mut buf, version, count);
            for part in &parts[..count] {
                bulk(&mut buf, part);
            }
            buf
        })
    }
}

/// `*n` in RESP2, a push frame `>n` in RESP3.
fn push_header(buf: &mut BytesMut, version: Version, n: usize) {
    buf.put_u8(if version == Version::Resp3 {
        b'>'
    } else {
        b'*'
    });
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    buf.extend_from_slice(b"\r\n");
}

fn bulk(buf: &mut BytesMut, data: &[u8]) {
    buf.put_u8(b'$');
    buf.extend_from_slice(itoa::Buffer::new().format(data.len()).as_bytes());
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(data);
    buf.extend_from_slice(b"\r\n");
}

type Receivers = HashMap<Bytes, Vec<Arc<Mailbox>>>;

/// The registry of subscriptions, and the keyspace notification settings.
#[derive(Debug)]
pub struct PubSub {
    channels: RwLock<Receivers>,
    patterns: RwLock<Receivers>,
    shard_channels: RwLock<Receivers>,
    limit: Mutex<OutputLimit>,
    /// Subscribers disconnected for falling behind.
    disconnected: AtomicU64,
    /// Messages published (PUBLISH, SPUBLISH and keyspace notifications).
    published: AtomicU64,
    /// Connections with at least one subscription.
    subscribers: AtomicU64,
    /// `notify-keyspace-events`, as flag bits.
    notify: AtomicU32,
    notify_changed: Notify,
    /// Changes of `notify-keyspace-events` the notifier has yet to reach, each with the first
    /// feed position it applies to: a write is published as the flags were when it was made,
    /// however late the notifier gets to it (see [`crate::Engine::set_notify_flags`]).
    schedule: Mutex<VecDeque<(u64, u32)>>,
    /// The notifier has published the events of every position below this; `u64::MAX` while
    /// it is idle. A write is answered only once its events are out (see
    /// [`PubSub::events_published`]).
    notified_upto: AtomicU64,
    progressed: Notify,
}

impl Default for PubSub {
    fn default() -> Self {
        Self::new(OutputLimit::default())
    }
}

impl PubSub {
    pub fn new(limit: OutputLimit) -> Self {
        Self {
            channels: RwLock::default(),
            patterns: RwLock::default(),
            shard_channels: RwLock::default(),
            limit: Mutex::new(limit),
            disconnected: AtomicU64::new(0),
            published: AtomicU64::new(0),
            subscribers: AtomicU64::new(0),
            notify: AtomicU32::new(0),
            notify_changed: Notify::new(),
            schedule: Mutex::new(VecDeque::new()),
            notified_upto: AtomicU64::new(u64::MAX),
            progressed: Notify::new(),
        }
    }

    fn table(&self, kind: Kind) -> &RwLock<Receivers> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard_channels,
        }
    }

    /// The output limit of subscribers.
    pub fn limit(&self) -> OutputLimit {
        *self.limit.lock()
    }

    /// Sets the output limit of subscribers; it applies to the next message delivered.
    pub fn set_limit(&self, limit: OutputLimit) {
        *self.limit.lock() = limit;
    }

    /// Subscribers disconnected for falling behind, since the server started.
    pub fn disconnected(&self) -> u64 {
        self.disconnected.load(Ordering::Relaxed)
    }

    /// Messages published since the server started.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Connections with at least one subscription.
    pub fn subscribers(&self) -> u64 {
        self.subscribers.load(Ordering::Relaxed)
    }

    /// Adds `mailbox` to the receivers of `name`.
    pub(crate) fn subscribe(&self, kind: Kind, name: &Bytes, mailbox: &Arc<Mailbox>) {
        self.table(kind)
            .write()
            .entry(name.clone())
            .or_default()
            .push(mailbox.clone());
    }

    /// Removes `mailbox` from the receivers of `name`. Once it returns, no publisher is still
    /// delivering to it on `name`.
    pub(crate) fn unsubscribe(&self, kind: Kind, name: &[u8], mailbox: &Arc<Mailbox>) {
        let mut table = self.table(kind).write();
        if let Some(receivers) = table.get_mut(name) {
            receivers.retain(|m| !Arc::ptr_eq(m, mailbox));
            if receivers.is_empty() {
                table.remove(name);
            }
        }
    }

    /// Publishes `message` on `channel` to its subscribers and to the patterns that match it;
    /// how many received it (Redis's PUBLISH answer). The subscribers to wake are added to
    /// `wakes`.
    pub(crate) fn publish(&self, channel: &[u8], message: &[u8], wakes: &mut Wakes) -> usize {
        self.published.fetch_add(1, Ordering::Relaxed);
        let limit = self.limit();
        let now = Instant::now();
        let mut receivers = 0;
        {
            let channels = self.channels.read();
            if let Some(subscribers) = channels.get(channel) {
                let mut encoded = Encoded::new(&[b"message", channel, message]);
                for mailbox in subscribers {
                    self.deliver(mailbox, encoded.bytes(mailbox.version()), limit, now, wakes);
                }
                receivers += subscribers.len();
            }
        }
        let patterns = self.patterns.read();
        for (pattern, subscribers) in patterns.iter() {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            let mut encoded = Encoded::new(&[b"pmessage", pattern, channel, message]);
            for mailbox in subscribers {
                self.deliver(mailbox, encoded.bytes(mailbox.version()), limit, now, wakes);
            }
            receivers += subscribers.len();
        }
        receivers
    }

    /// Publishes `message` on the shard channel `channel` (SPUBLISH).
    pub(crate) fn publish_shard(&self, channel: &[u8], message: &[u8], wakes: &mut Wakes) -> usize {
        self.published.fetch_add(1, Ordering::Relaxed);
        let limit = self.limit();
        let now = Instant::now();
        let channels = self.shard_channels.read();
        let Some(subscribers) = channels.get(channel) else {
            return 0;
        };
        let mut encoded = Encoded::new(&[b"smessage", channel, message]);
        for mailbox in subscribers {
            self.deliver(mailbox, encoded.bytes(mailbox.version()), limit, now, wakes);
        }
        subscribers.len()
    }

    fn deliver(
        &self,
        mailbox: &Arc<Mailbox>,
        message: &[u8],
        limit: OutputLimit,
        now: Instant,
        wakes: &mut Wakes,
    ) {
        match mailbox.deliver(message, limit, now) {
            Delivery::Queued { first: true } => wakes.0.push(mailbox.clone()),
            Delivery::Queued { first: false } => {}
            Delivery::CutOff => {
                self.disconnected.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The channels (or shard channels) with at least one subscriber, matching `pattern`.
    pub(crate) fn active(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.table(kind)
            .read()
            .keys()
            .filter(|name| pattern.is_none_or(|p| glob_match(p, name, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `name` (not counting patterns).
    pub(crate) fn count(&self, kind: Kind, name: &[u8]) -> usize {
        self.table(kind).read().get(name).map_or(0, Vec::len)
    }

    /// Distinct names subscribed to (PUBSUB NUMPAT for patterns; INFO's counts).
    pub(crate) fn distinct(&self, kind: Kind) -> usize {
        self.table(kind).read().len()
    }

    /// `notify-keyspace-events` as flag bits.
    pub fn notify_flags(&self) -> u32 {
        self.notify.load(Ordering::Acquire)
    }

    /// Resolves once the keyspace events of the write at feed position `position` are
    /// published, so a write is answered after its events, as Redis does: a client that makes
    /// a write and then publishes a message of its own has its subscribers see the event first.
    pub(crate) async fn events_published(&self, position: u64) {
        loop {
            let progressed = self.progressed.notified();
            tokio::pin!(progressed);
            progressed.as_mut().enable();
            if self.notified_upto.load(Ordering::Acquire) > position {
                return;
            }
            progressed.await;
        }
    }

    fn set_notified_upto(&self, position: u64) {
        self.notified_upto.store(position, Ordering::Release);
        self.progressed.notify_waiters();
    }

    /// Sets `notify-keyspace-events` for the writes from feed position `from` on (`None`: the
    /// notifier has never run and need not start).
    pub(crate) fn set_notify_flags(&self, flags: u32, from: Option<u64>) {
        if let Some(from) = from {
            self.schedule.lock().push_back((from, flags));
        }
        self.notify.store(flags, Ordering::Release);
        self.notify_changed.notify_waiters();
    }
}

/// A connection's subscriptions: what it subscribed to, and its mailbox. Dropping it ends them.
#[derive(Debug)]
pub(crate) struct Subscriptions {
    pubsub: Arc<PubSub>,
    pub(crate) mailbox: Arc<Mailbox>,
    channels: HashSet<Bytes>,
    patterns: HashSet<Bytes>,
    shard_channels: HashSet<Bytes>,
}

impl Subscriptions {
    pub(crate) fn new(pubsub: Arc<PubSub>, mailbox: Arc<Mailbox>) -> Self {
        Self {
            pubsub,
            mailbox,
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shard_channels: HashSet::new(),
        }
    }

    fn set(&mut self, kind: Kind) -> &mut HashSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// Subscribes to `name`, if not already.
    pub(crate) fn add(&mut self, kind: Kind, name: &Bytes) {
        let first = self.total() == 0;
        if self.set(kind).insert(name.clone()) {
            self.pubsub.subscribe(kind, name, &self.mailbox);
            if first {
                self.pubsub.subscribers.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Unsubscribes from `name`; whether it was subscribed.
    pub(crate) fn remove(&mut self, kind: Kind, name: &[u8]) -> bool {
        if self.set(kind).remove(name) {
            self.pubsub.unsubscribe(kind, name, &self.mailbox);
            if self.total() == 0 {
                self.pubsub.subscribers.fetch_sub(1, Ordering::Relaxed);
            }
            true
        } else {
            false
        }
    }

    /// Everything subscribed to of `kind`.
    pub(crate) fn names(&self, kind: Kind) -> Vec<Bytes> {
        match kind {
            Kind::Channel => self.channels.iter().cloned().collect(),
            Kind::Pattern => self.patterns.iter().cloned().collect(),
            Kind::Shard => self.shard_channels.iter().cloned().collect(),
        }
    }

    /// The count a (un)subscribe confirmation carries: channels and patterns together, or shard
    /// channels alone, as Redis counts them.
    pub(crate) fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
            Kind::Shard => self.shard_channels.len(),
        }
    }

    /// Subscriptions of every kind.
    pub(crate) fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }

    /// (channels, patterns, shard channels), for CLIENT LIST.
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        (
            self.channels.len(),
            self.patterns.len(),
            self.shard_channels.len(),
        )
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        if self.total() > 0 {
            self.pubsub.subscribers.fetch_sub(1, Ordering::Relaxed);
        }
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in std::mem::take(self.set(kind)) {
                self.pubsub.unsubscribe(kind, &name, &self.mailbox);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Keyspace notifications.

/// `K`: events on `__keyspace@0__:<key>`.
pub const NOTIFY_KEYSPACE: u32 = 1 << 0;
/// `E`: events on `__keyevent@0__:<event>`.
pub const NOTIFY_KEYEVENT: u32 = 1 << 1;
const NOTIFY_GENERIC: u32 = 1 << 2;
const NOTIFY_STRING: u32 = 1 << 3;
const NOTIFY_LIST: u32 = 1 << 4;
const NOTIFY_SET: u32 = 1 << 5;
const NOTIFY_HASH: u32 = 1 << 6;
const NOTIFY_ZSET: u32 = 1 << 7;
const NOTIFY_EXPIRED: u32 = 1 << 8;
const NOTIFY_EVICTED: u32 = 1 << 9;
const NOTIFY_STREAM: u32 = 1 << 10;
const NOTIFY_KEY_MISS: u32 = 1 << 11;
const NOTIFY_MODULE: u32 = 1 << 13;
const NOTIFY_NEW: u32 = 1 << 14;
/// `A`: every class but key misses and new keys.
const NOTIFY_ALL: u32 = NOTIFY_GENERIC
    | NOTIFY_STRING
    | NOTIFY_LIST
    | NOTIFY_SET
    | NOTIFY_HASH
    | NOTIFY_ZSET
    | NOTIFY_EXPIRED
    | NOTIFY_EVICTED
    | NOTIFY_STREAM
    | NOTIFY_MODULE;

/// The letters in the order Redis prints them, after `A` (or the classes it stands for).
const CLASS_LETTERS: &[(u32, char)] = &[
    (NOTIFY_GENERIC, 'g'),
    (NOTIFY_STRING, '$'),
    (NOTIFY_LIST, 'l'),
    (NOTIFY_SET, 's'),
    (NOTIFY_HASH, 'h'),
    (NOTIFY_ZSET, 'z'),
    (NOTIFY_EXPIRED, 'x'),
    (NOTIFY_EVICTED, 'e'),
    (NOTIFY_STREAM, 't'),
    (NOTIFY_MODULE, 'd'),
    (NOTIFY_NEW, 'n'),
];

/// Reads `notify-keyspace-events` letters; `None` if one is not Redis's.
pub fn parse_notify_flags(text: &str) -> Option<u32> {
    text.chars().try_fold(0, |flags, c| {
        let bit = match c {
            'A' => NOTIFY_ALL,
            'K' => NOTIFY_KEYSPACE,
            'E' => NOTIFY_KEYEVENT,
            'm' => NOTIFY_KEY_MISS,
            _ => CLASS_LETTERS.iter().find(|(_, l)| *l == c)?.0,
        };
        Some(flags | bit)
    })
}

/// The letters of `flags`, as `CONFIG GET notify-keyspace-events` shows them.
pub fn notify_flags_text(flags: u32) -> String {
    let mut text = String::new();
    if flags & NOTIFY_ALL == NOTIFY_ALL {
        text.push('A');
        if flags & NOTIFY_NEW != 0 {
            text.push('n');
        }
    } else {
        for (bit, letter) in CLASS_LETTERS {
            if flags & bit != 0 {
                text.push(*letter);
            }
        }
    }
    for (bit, letter) in [
        (NOTIFY_KEYSPACE, 'K'),
        (NOTIFY_KEYEVENT, 'E'),
        (NOTIFY_KEY_MISS, 'm'),
    ] {
        if flags & bit != 0 {
            text.push(letter);
        }
    }
    text
}

/// Whether `flags` deliver anything at all: a class and at least one of `K` and `E`.
pub(crate) fn delivers(flags: u32) -> bool {
    flags & (NOTIFY_KEYSPACE | NOTIFY_KEYEVENT) != 0
        && flags & !(NOTIFY_KEYSPACE | NOTIFY_KEYEVENT) != 0
}

/// The class an event belongs to.
fn class_of(event: Event) -> u32 {
    match event {
        Event::New => NOTIFY_NEW,
        Event::Set
        | Event::Append
        | Event::Setrange
        | Event::Setbit
        | Event::Incrby
        | Event::Incrbyfloat => NOTIFY_STRING,
        Event::Del
        | Event::Expire
        | Event::Persist
        | Event::RenameFrom
        | Event::RenameTo
        | Event::CopyTo => NOTIFY_GENERIC,
        Event::Hashes(_) => NOTIFY_HASH,
        Event::Lists(_) => NOTIFY_LIST,
        Event::Sets(_) => NOTIFY_SET,
        Event::Sorted(_) => NOTIFY_ZSET,
        Event::Streams(_) => NOTIFY_STREAM,
        Event::Stored("sortstore") => NOTIFY_LIST,
        Event::Stored(name) if name.starts_with('z') => NOTIFY_ZSET,
        Event::Stored(_) => NOTIFY_SET,
    }
}

/// The keyspace events of one committed item, in order: each command's events, and an
/// `expired` or `evicted` event for each key the store removed for those reasons.
pub(crate) fn events_of(effects: &Effects) -> impl Iterator<Item = (u32, &'static str, &Bytes)> {
    let removals = effects.changes.iter().filter_map(|change| match change {
        Change::Remove(key, Removal::Expired) => Some((NOTIFY_EXPIRED, "expired", key)),
        Change::Remove(key, Removal::Evicted) => Some((NOTIFY_EVICTED, "evicted", key)),
        _ => None,
    });
    effects
        .events
        .iter()
        .map(|(event, key)| (class_of(*event), event.name(), key))
        .chain(removals)
}

/// Publishes the keyspace events of `effects` as `flags` select them.
fn publish_events(pubsub: &PubSub, flags: u32, effects: &Effects) {
    let mut wakes = Wakes::default();
    let mut channel = Vec::new();
    for (class, name, key) in events_of(effects) {
        if flags & class == 0 {
            continue;
        }
        if flags & NOTIFY_KEYSPACE != 0 {
            channel.clear();
            channel.extend_from_slice(b"__keyspace@0__:");
            channel.extend_from_slice(key);
            pubsub.publish(&channel, name.as_bytes(), &mut wakes);
        }
        if flags & NOTIFY_KEYEVENT != 0 {
            channel.clear();
            channel.extend_from_slice(b"__keyevent@0__:");
            channel.extend_from_slice(name.as_bytes());
            pubsub.publish(&channel, key, &mut wakes);
        }
    }
}

/// Publishes keyspace notifications from the change feed while `notify-keyspace-events` asks
/// for them, until `stop`. The feed is opened the first time they are asked for; from then on,
/// while they are on, writes note the events they raise.
pub(crate) async fn notify(engine: Arc<Engine>, stop: CancellationToken) {
    let pubsub = engine.pubsub().clone();
    // The flags in force at the position the notifier has reached.
    let mut flags = 0;
    loop {
        // Idle until notifications are turned on.
        let from = loop {
            let changed = pubsub.notify_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(&(from, _)) = pubsub.schedule.lock().front() {
                break from;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = changed => {}
            }
        };
        let mut feed = engine.subscribe(Start::At(from));
        pubsub.set_notified_upto(from);
        loop {
            // Flags changed at or before the next position apply from it on.
            {
                let mut schedule = pubsub.schedule.lock();
                while let Some(&(at, new)) = schedule.front()
                    && at <= feed.position()
                {
                    flags = new;
                    schedule.pop_front();
                }
                if !delivers(flags) && schedule.is_empty() {
                    pubsub.set_notified_upto(u64::MAX);
                    break;
                }
            }
            let changed = pubsub.notify_changed.notified();
            let item = tokio::select! {
                () = stop.cancelled() => {
                    pubsub.set_notified_upto(u64::MAX);
                    return;
                }
                () = changed => continue,
                item = feed.next() => item,
            };
            match item {
                Ok(item) => {
                    let mut schedule = pubsub.schedule.lock();
                    while let Some(&(at, new)) = schedule.front()
                        && at <= item.position
                    {
                        flags = new;
                        schedule.pop_front();
                    }
                    drop(schedule);
                    if delivers(flags) {
                        publish_events(&pubsub, flags, &item.effects);
                    }
                    pubsub.set_notified_upto(item.position + 1);
                }
                Err(FeedError::Closed) => {
                    pubsub.set_notified_upto(u64::MAX);
                    return;
                }
                Err(FeedError::Compacted { wanted, oldest }) => {
                    tracing::warn!(
                        "keyspace notifications fell behind the change feed: events from position {wanted} to {oldest} were not published"
                    );
                    feed = engine.subscribe(Start::At(oldest));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_and_print_as_redis_does() {
        for (given, shown) in [
            ("gKE", "gKE"),
            ("$lshzxeKE", "$lshzxeKE"),
            ("KA", "AK"),
            ("EA", "AE"),
            ("", ""),
            ("Kx", "xK"),
            ("AnKEm", "AnKEm"),
        ] {
            let flags = parse_notify_flags(given).expect(given);
            assert_eq!(notify_flags_text(flags), shown, "{given}");
        }
        assert_eq!(parse_notify_flags("Kq"), None);
        assert!(!delivers(parse_notify_flags("K").unwrap_or(0)));
        assert!(!delivers(parse_notify_flags("A").unwrap_or(0)));
        assert!(delivers(parse_notify_flags("Ex").unwrap_or(0)));
    }

    #[test]
    fn a_subscriber_past_the_hard_limit_is_cut_off_and_others_keep_receiving() {
        let pubsub = Arc::new(PubSub::new(OutputLimit {
            hard: 1000,
            soft: 0,
            soft_seconds: 0,
        }));
        let slow_kill = CancellationToken::new();
        let slow = Mailbox::new(1, Version::Resp2, slow_kill.clone());
        let fast = Mailbox::new(2, Version::Resp3, CancellationToken::new());
        let mut slow_subs = Subscriptions::new(pubsub.clone(), slow.clone());
        let mut fast_subs = Subscriptions::new(pubsub.clone(), fast.clone());
        slow_subs.add(Kind::Channel, &Bytes::from_static(b"news"));
        fast_subs.add(Kind::Pattern, &Bytes::from_static(b"n*"));
        let mut received = BytesMut::new();
        for _ in 0..100 {
            let mut wakes = Wakes::default();
            assert_eq!(pubsub.publish(b"news", &[b'x'; 50], &mut wakes), 2);
            wakes.wake_all();
            fast.drain_into(&mut received);
        }
        assert!(slow_kill.is_cancelled(), "the slow subscriber is cut off");
        assert_eq!(pubsub.disconnected(), 1, "and counted once");
        assert_eq!(slow.pending(), 0, "its messages are dropped");
        let one = b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$50\r\n".len() + 52;
        assert_eq!(
            received.len(),
            100 * one,
            "the other received every message"
        );
        drop(slow_subs);
        assert_eq!(pubsub.count(Kind::Channel, b"news"), 0);
        assert_eq!(pubsub.distinct(Kind::Pattern), 1);
    }

    #[test]
    fn a_subscriber_above_the_soft_limit_too_long_is_cut_off() {
        let mailbox = Mailbox::new(1, Version::Resp2, CancellationToken::new());
        let limit = OutputLimit {
            hard: 0,
            soft: 10,
            soft_seconds: 5,
        };
        let start = Instant::now();
        let queued = |d: Delivery| matches!(d, Delivery::Queued { .. });
        assert!(
            queued(mailbox.deliver(&[0; 20], limit, start)),
            "over: the clock starts"
        );
        assert!(queued(mailbox.deliver(
            &[0; 1],
            limit,
            start + Duration::from_secs(4)
        )));
        assert!(!queued(mailbox.deliver(
            &[0; 1],
            limit,
            start + Duration::from_secs(5)
        )));
        let drained = Mailbox::new(2, Version::Resp2, CancellationToken::new());
        assert!(queued(drained.deliver(&[0; 20], limit, start)));
        drained.drain_into(&mut BytesMut::new());
        assert!(
            queued(drained.deliver(&[0; 20], limit, start + Duration::from_secs(6))),
            "draining restarts the clock"
        );
    }

    #[test]
    fn output_limits_read_redis_units() {
        assert_eq!(
            OutputLimit::parse("32mb 8mb 60"),
            Ok(OutputLimit::default())
        );
        assert_eq!(
            OutputLimit::parse("0 0 0").map(|l| l.to_string()),
            Ok("0 0 0".into())
        );
        assert!(OutputLimit::parse("32mb 8mb").is_err());
        assert!(OutputLimit::parse("x 8mb 60").is_err());
    }
}
