//! `MONITOR`: every request from every door, as one line each, sent to the connections that
//! asked. A monitor's unsent lines are bounded like a subscriber's messages
//! (`client-output-buffer-limit pubsub`): one that cannot keep up is cut off, and the server
//! never waits for it. With no monitor, a request costs one atomic load here.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use super::Door;
use crate::pubsub::{Mailbox, OutputLimit};

#[derive(Debug, Default)]
pub(crate) struct Monitors {
    /// How many are registered (some may have closed since): the cheap check.
    count: AtomicUsize,
    list: Mutex<Vec<Weak<Mailbox>>>,
}

impl Monitors {
    /// Sends every request from now on to `mailbox`, until it is dropped.
    pub(crate) fn add(&self, mailbox: &Arc<Mailbox>) {
        let mut list = self.list.lock();
        if list
            .iter()
            .any(|m| std::ptr::eq(m.as_ptr(), Arc::as_ptr(mailbox)))
        {
            return;
        }
        list.push(Arc::downgrade(mailbox));
        self.count.store(list.len(), Ordering::Release);
    }

    /// Whether anyone may be monitoring.
    pub(crate) fn active(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Sends one request to every monitor: `args` as the client sent them (passwords are
    /// left out), from `addr` through `door`.
    pub(crate) fn feed(&self, door: Door, addr: &str, args: &[Bytes], limit: OutputLimit) {
        let line = format_line(door, addr, args);
        let mut list = self.list.lock();
        list.retain(|m| m.upgrade().is_some_and(|m| m.push_now(&line, limit)));
        self.count.store(list.len(), Ordering::Release);
    }
}

/// `+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"`, as Redis writes it; requests through
/// the HTTP and line doors name their door: `[0 http 127.0.0.1:60866]`.
fn format_line(door: Door, addr: &str, args: &[Bytes]) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut line = format!("+{}.{:06} [0 ", now.as_secs(), now.subsec_micros()).into_bytes();
    if door != Door::Resp {
        line.extend_from_slice(door.name().as_bytes());
        line.push(b' ');
    }
    line.extend_from_slice(addr.as_bytes());
    line.push(b']');
    for arg in super::slowlog::redacted(args.to_vec()) {
        line.extend_from_slice(b" \"");
        quote(&arg, &mut line);
        line.push(b'"');
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// Redis's quoting of a string (its `sdscatrepr`): escapes for `\\`, `"`, newlines, tabs and
/// bells, `\xHH` for any other byte that is not printable.
fn quote(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_quoted_as_redis_quotes_them() {
        let args = [Bytes::from("set"), Bytes::from_static(b"a \"b\"\n\x01")];
        let line = String::from_utf8(format_line(Door::Resp, "127.0.0.1:5", &args)).expect("text");
        assert!(line.starts_with('+') && line.ends_with("\r\n"), "{line:?}");
        assert!(
            line.contains(r#" [0 127.0.0.1:5] "set" "a \"b\"\n\x01""#),
            "{line:?}"
        );
        let http = String::from_utf8(format_line(
            Door::Http,
            "127.0.0.1:6",
            &[Bytes::from("GET")],
        ))
        .expect("text");
        assert!(http.contains(" [0 http 127.0.0.1:6] \"GET\""), "{http:?}");
        let auth = String::from_utf8(format_line(
            Door::Resp,
            "x",
            &[Bytes::from("auth"), Bytes::from("secret")],
        ))
        .expect("text");
        assert!(auth.ends_with("\"auth\" \"(redacted)\"\r\n"), "{auth:?}");
    }
}
