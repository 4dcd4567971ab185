use bytes::Bytes;

use crate::access::Keyspace;
use crate::entry::Millis;
use crate::reply::Reply;
use super::spec::Spec;
use super::Definition;

/// One page of the live keys starting with `prefix`, in byte order, after `cursor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct List {
    pub prefix: Bytes,
    pub cursor: Option<Bytes>,
    pub limit: usize,
    /// Rolls keys with this after the prefix up into folders (see [`crate::Page::prefixes`]).
    pub delimiter: Option<Bytes>,
}

impl List {
    pub fn new(prefix: impl Into<Bytes>, cursor: Option<Bytes>, limit: usize) -> Self {
        Self {
            prefix: prefix.into(),
            cursor,
            limit,
            delimiter: None,
        }
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        Reply::Page(ks.read_every(|shards| match &self.delimiter {
            Some(d) => crate::listing::page_delimited(
                shards,
                &self.prefix,
                d,
                self.cursor.as_deref(),
                self.limit,
                now,
            ),
            None => crate::listing::page(
                shards,
                &self.prefix,
                self.cursor.as_deref(),
                self.limit,
                now,
            ),
        }))
    }
}

/// Built by the HTTP and line front doors only: no Redis name.
impl Definition for List {
    const SPECS: &'static [Spec] = &[];

    fn keys(&self) -> Option<Vec<&[u8]>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Set;
    use crate::keyspace::Store;

    fn keys(reply: &Reply) -> (Vec<String>, Option<Bytes>) {
        let Reply::Page(p) = reply else {
            panic!("expected a page, got {reply:?}");
        };
        let keys = p
            .keys
            .iter()
            .map(|k| String::from_utf8_lossy(&k.key).into_owned())
            .collect();
        (keys, p.next_cursor.clone())
    }

    #[test]
    fn a_delimiter_rolls_keys_up_into_folders_across_pages() {
        let store = Store::with_shards(4);
        for k in ["u/a/1", "u/a/2", "u/b", "u/c/x/y", "u/d", "u/\u{ff}/z", "v/1"] {
            Set::new(k, "v").apply(&store, 0);
        }
        let page = |cursor: Option<Bytes>, limit| {
            let mut l = List::new("u/", cursor, limit);
            l.delimiter = Some(Bytes::from_static(b"/"));
            match l.apply(&store, 0) {
                Reply::Page(p) => p,
                other => panic!("{other:?}"),
            }
        };
        let all = page(None, 100);
        let names = |v: &[Bytes]| -> Vec<String> {
            v.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
        };
        assert_eq!(names(&all.prefixes), ["u/a/", "u/c/", "u/\u{ff}/"]);
        let keys: Vec<Bytes> = all.keys.iter().map(|k| k.key.clone()).collect();
        assert_eq!(names(&keys), ["u/b", "u/d"]);
        assert_eq!(all.next_cursor, None);
        // Two at a time: folders and keys share the limit, and a cursor on a folder resumes
        // after everything in it.
        let first = page(None, 2);
        assert_eq!(names(&first.prefixes), ["u/a/"]);
        assert_eq!(first.next_cursor.as_deref(), Some(&b"u/b"[..]));
        let second = page(first.next_cursor, 2);
        assert_eq!(names(&second.prefixes), ["u/c/"]);
        assert_eq!(second.next_cursor.as_deref(), Some(&b"u/d"[..]));
        let third = page(second.next_cursor, 2);
        assert_eq!(names(&third.prefixes), ["u/\u{ff}/"]);
        assert!(third.keys.is_empty() && third.next_cursor.is_none());
        let after_folder = page(Some(Bytes::from_static(b"u/a/")), 1);
        assert_eq!(after_folder.keys[0].key, Bytes::from_static(b"u/b"));
    }

    #[test]
    fn lists_by_prefix_in_order_a_page_at_a_time() {
        let store = Store::with_shards(4);
        for k in ["b/2", "a", "b/1", "b/3", "c", "b"] {
            Set::new(k, "v").apply(&store, 0);
        }
        let (page, cursor) = keys(&List::new("b/", None, 2).apply(&store, 0));
        assert_eq!(page, ["b/1", "b/2"]);
        assert_eq!(cursor.as_deref(), Some(&b"b/2"[..]));
        let (page, cursor) = keys(&List::new("b/", cursor, 2).apply(&store, 0));
        assert_eq!(page, ["b/3"]);
        assert_eq!(cursor, None);
        let (all, _) = keys(&List::new("", None, 100).apply(&store, 0));
        assert_eq!(all, ["a", "b", "b/1", "b/2", "b/3", "c"]);
    }

    #[test]
    fn a_full_last_page_has_no_cursor() {
        let store = Store::new();
        Set::new("x1", "v").apply(&store, 0);
        Set::new("x2", "v").apply(&store, 0);
        assert_eq!(keys(&List::new("x", None, 2).apply(&store, 0)).1, None);
    }

    #[test]
    fn expired_keys_are_skipped() {
        let store = Store::new();
        Set::new("a", "v").expires_at(10).apply(&store, 0);
        Set::new("b", "v").apply(&store, 0);
        assert_eq!(keys(&List::new("", None, 10).apply(&store, 10)).0, ["b"]);
    }

    #[test]
    fn a_cursor_before_the_prefix_starts_at_the_prefix() {
        let store = Store::new();
        Set::new("m1", "v").apply(&store, 0);
        Set::new("z", "v").apply(&store, 0);
        let (page, _) = keys(&List::new("m", Some(Bytes::from("a")), 10).apply(&store, 0));
        assert_eq!(page, ["m1"]);
    }

    #[test]
    fn zero_limit_is_an_empty_page() {
        let store = Store::new();
        Set::new("a", "v").apply(&store, 0);
        assert_eq!(
            keys(&List::new("", None, 0).apply(&store, 0)),
            (vec![], None)
        );
    }
}
