//! The slow log: requests that took longer than `slowlog-log-slower-than` microseconds, newest
//! first, at most `slowlog-max-len` of them, from every door. Recorded as Redis records them: at
//! most 32 arguments and 128 bytes of each, passwords left out.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use super::Door;

/// Redis's defaults: 10 ms, 128 entries.
pub(crate) const DEFAULT_SLOWER_THAN_US: i64 = 10_000;
pub(crate) const DEFAULT_MAX_LEN: usize = 128;
/// Arguments and bytes per argument kept, as Redis keeps them.
const MAX_ARGS: usize = 32;
const MAX_ARG_BYTES: usize = 128;

/// One slow request.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) id: u64,
    /// When it ran, in unix seconds.
    pub(crate) time: u64,
    pub(crate) micros: u64,
    pub(crate) args: Vec<Bytes>,
    pub(crate) addr: String,
    pub(crate) name: String,
    pub(crate) door: Door,
}

#[derive(Debug)]
pub(crate) struct SlowLog {
    /// Microseconds; negative: the log is off; 0: every request is logged.
    slower_than: AtomicI64,
    max_len: AtomicUsize,
    next_id: AtomicU64,
    entries: Mutex<VecDeque<Entry>>,
}

impl Default for SlowLog {
    fn default() -> Self {
        Self {
            slower_than: AtomicI64::new(DEFAULT_SLOWER_THAN_US),
            max_len: AtomicUsize::new(DEFAULT_MAX_LEN),
            next_id: AtomicU64::new(0),
            entries: Mutex::new(VecDeque::new()),
        }
    }
}

impl SlowLog {
    pub(crate) fn slower_than(&self) -> i64 {
        self.slower_than.load(Ordering::Relaxed)
    }

    pub(crate) fn set_slower_than(&self, micros: i64) {
        self.slower_than.store(micros, Ordering::Relaxed);
    }

    pub(crate) fn max_len(&self) -> usize {
        self.max_len.load(Ordering::Relaxed)
    }

    pub(crate) fn set_max_len(&self, n: usize) {
        self.max_len.store(n, Ordering::Relaxed);
        let mut entries = self.entries.lock();
        entries.truncate(n);
    }

    /// Whether a request that took `took` belongs in the log: one atomic load for the rest.
    pub(crate) fn is_slow(&self, took: Duration) -> bool {
        let limit = self.slower_than();
        limit >= 0 && took.as_micros() >= limit as u128
    }

    /// Logs a request if it was slow. `args` is only called when it was.
    pub(crate) fn note(
        &self,
        took: Duration,
        door: Door,
        args: impl FnOnce() -> Vec<Bytes>,
        addr: impl FnOnce() -> (String, String),
    ) {
        if !self.is_slow(took) {
            return;
        }
        let (addr, name) = addr();
        let entry = Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time: crate::engine::now_millis() / 1000,
            micros: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            args: trimmed(redacted(args())),
            addr,
            name,
            door,
        };
        let max = self.max_len();
        let mut entries = self.entries.lock();
        entries.push_front(entry);
        entries.truncate(max);
    }

    /// The newest `count` entries (all of them for `None`), newest first.
    pub(crate) fn newest(&self, count: Option<usize>) -> Vec<Entry> {
        let entries = self.entries.lock();
        let n = count.unwrap_or(entries.len());
        entries.iter().take(n).cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub(crate) fn reset(&self) {
        self.entries.lock().clear();
    }
}

/// Passwords never reach the log: AUTH's arguments, HELLO's after AUTH, and the `>password`
/// and `#hash` rules of ACL SETUSER.
pub(crate) fn redacted(mut args: Vec<Bytes>) -> Vec<Bytes> {
    const HIDDEN: Bytes = Bytes::from_static(b"(redacted)");
    let name = args.first().map(|a| a.to_ascii_lowercase());
    match name.as_deref() {
        Some(b"auth") => args.iter_mut().skip(1).for_each(|a| *a = HIDDEN),
        Some(b"hello") => {
            if let Some(at) = args.iter().position(|a| a.eq_ignore_ascii_case(b"auth")) {
                args.iter_mut()
                    .skip(at + 1)
                    .take(2)
                    .for_each(|a| *a = HIDDEN);
            }
        }
        Some(b"acl")
            if args
                .get(1)
                .is_some_and(|a| a.eq_ignore_ascii_case(b"setuser")) =>
        {
            for a in args.iter_mut().skip(3) {
                if a.first()
                    .is_some_and(|c| matches!(c, b'>' | b'#' | b'<' | b'!'))
                {
                    *a = HIDDEN;
                }
            }
        }
        Some(b"config") if args.len() > 3 => {
            for pair in args[2..].chunks_mut(2) {
                if let [name, value] = pair
                    && (name.eq_ignore_ascii_case(b"requirepass")
                        || name.eq_ignore_ascii_case(b"masterauth"))
                {
                    *value = HIDDEN;
                }
            }
        }
        _ => {}
    }
    args
}

/// At most 32 arguments (the last saying how many more there were) of at most 128 bytes (each
/// saying how many more bytes it had).
fn trimmed(args: Vec<Bytes>) -> Vec<Bytes> {
    let total = args.len();
    let keep = if total > MAX_ARGS {
        MAX_ARGS - 1
    } else {
        total
    };
    let mut out: Vec<Bytes> = args
        .into_iter()
        .take(keep)
        .map(|a| {
            if a.len() > MAX_ARG_BYTES {
                let mut cut = a[..MAX_ARG_BYTES].to_vec();
                cut.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_ARG_BYTES).as_bytes(),
                );
                Bytes::from(cut)
            } else {
                a
            }
        })
        .collect();
    if total > MAX_ARGS {
        out.push(Bytes::from(format!(
            "... ({} more arguments)",
            total - MAX_ARGS + 1
        )));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|w| Bytes::from(w.to_owned())).collect()
    }

    #[test]
    fn only_requests_over_the_threshold_are_kept_newest_first_up_to_the_limit() {
        let log = SlowLog::default();
        let addr = || ("127.0.0.1:1".to_owned(), String::new());
        log.note(
            Duration::from_millis(1),
            Door::Resp,
            || words("GET a"),
            addr,
        );
        assert_eq!(log.len(), 0);
        log.set_slower_than(0);
        log.set_max_len(2);
        for key in ["a", "b", "c"] {
            log.note(
                Duration::ZERO,
                Door::Resp,
                || words(&format!("GET {key}")),
                addr,
            );
        }
        let got: Vec<Bytes> = log
            .newest(None)
            .into_iter()
            .map(|e| e.args[1].clone())
            .collect();
        assert_eq!(got, vec![Bytes::from("c"), Bytes::from("b")]);
        assert_eq!(log.newest(Some(1))[0].id, 2);
        log.set_slower_than(-1);
        log.note(Duration::from_secs(9), Door::Resp, || words("GET d"), addr);
        assert_eq!(log.len(), 2);
        log.reset();
        assert_eq!(log.len(), 0);
    }

    #[test]
    fn long_requests_are_trimmed_and_passwords_hidden() {
        let many: Vec<Bytes> = (0..40).map(|i| Bytes::from(i.to_string())).collect();
        let t = trimmed(many);
        assert_eq!(t.len(), 32);
        assert_eq!(t[31], Bytes::from("... (9 more arguments)"));
        let long = trimmed(vec![Bytes::from(vec![b'x'; 130])]);
        assert!(long[0].ends_with(b"x... (2 more bytes)"));
        assert_eq!(
            redacted(words("AUTH alice secret"))[2],
            Bytes::from("(redacted)")
        );
        let hello = redacted(words("HELLO 3 AUTH alice secret SETNAME x"));
        assert_eq!(hello[3..6], words("(redacted) (redacted) SETNAME")[..]);
        let acl = redacted(words("ACL SETUSER bob on >pw ~*"));
        assert_eq!(acl[3..], words("on (redacted) ~*")[..]);
    }
}
