//! `ACL LOG`: recent refusals, newest first, at most [`MAX_ENTRIES`]. A refusal like a recent
//! one (same reason, context, object and user, within a minute) adds to that entry's count
//! instead of taking a new one, as Redis groups them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Redis's `acl-log-max-len` default.
pub(crate) const MAX_ENTRIES: usize = 128;
/// Refusals this close together are grouped.
const GROUP_WITHIN: Duration = Duration::from_secs(60);

/// One line of the log.
#[derive(Clone, Debug)]
pub(crate) struct LogEntry {
    pub(crate) count: u64,
    /// `auth`, `command`, `key` or `channel`.
    pub(crate) reason: &'static str,
    /// `toplevel` or `multi`.
    pub(crate) context: &'static str,
    pub(crate) object: String,
    pub(crate) username: String,
    pub(crate) updated: Instant,
    /// The client, as a `CLIENT LIST` line shows it.
    pub(crate) client_info: String,
}

#[derive(Debug, Default)]
pub(crate) struct AclLog {
    entries: VecDeque<LogEntry>,
    /// Refusals by reason (`auth`, `command`, `key`, `channel`) since the last
    /// `CONFIG RESETSTAT`: INFO's `acl_access_denied_*`. `ACL LOG RESET` leaves them.
    denied: [u64; 4],
}

/// The reasons a refusal is logged under, in the order of [`AclLog::denied`].
pub(crate) const REASONS: [&str; 4] = ["auth", "command", "key", "channel"];

impl AclLog {
    /// Refusals for `reason` since the last reset of the counters.
    pub(crate) fn denied(&self, reason: &str) -> u64 {
        REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.denied[i])
    }

    /// `CONFIG RESETSTAT`.
    pub(crate) fn reset_counters(&mut self) {
        self.denied = [0; 4];
    }

    pub(crate) fn add(&mut self, entry: LogEntry) {
        if let Some(i) = REASONS.iter().position(|r| *r == entry.reason) {
            self.denied[i] += 1;
        }
        let similar = self.entries.iter().position(|e| {
            e.reason == entry.reason
                && e.context == entry.context
                && e.object == entry.object
                && e.username == entry.username
                && entry.updated.duration_since(e.updated) < GROUP_WITHIN
        });
        let entry = match similar.and_then(|i| self.entries.remove(i)) {
            Some(old) => LogEntry {
                count: old.count + 1,
                ..entry
            },
            None => entry,
        };
        self.entries.push_front(entry);
        self.entries.truncate(MAX_ENTRIES);
    }

    /// The newest `count` entries.
    pub(crate) fn newest(&self, count: usize) -> Vec<LogEntry> {
        self.entries.iter().take(count).cloned().collect()
    }

    pub(crate) fn reset(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(object: &str, at: Instant) -> LogEntry {
        LogEntry {
            count: 1,
            reason: "key",
            context: "toplevel",
            object: object.into(),
            username: "alice".into(),
            updated: at,
            client_info: String::new(),
        }
    }

    #[test]
    fn similar_refusals_are_grouped_and_the_log_is_bounded() {
        let mut log = AclLog::default();
        let now = Instant::now();
        log.add(entry("a", now));
        log.add(entry("b", now));
        log.add(entry("a", now));
        let newest = log.newest(10);
        assert_eq!(newest.len(), 2);
        assert_eq!((newest[0].object.as_str(), newest[0].count), ("a", 2));
        log.add(entry("a", now + GROUP_WITHIN));
        assert_eq!(log.newest(10).len(), 3, "a minute later it is a new entry");
        for i in 0..200 {
            log.add(entry(&i.to_string(), now));
        }
        assert_eq!(log.newest(usize::MAX).len(), MAX_ENTRIES);
        log.reset();
        assert!(log.newest(10).is_empty());
    }
}
