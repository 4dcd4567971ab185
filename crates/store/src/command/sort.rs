use std::cmp::Ordering;

use bytes::Bytes;

use super::Definition;
use super::coll::store_collection;
use super::parse::{Args, int, is};
use super::spec::{Access, Category, Flag, KeyAccess, KeySpec, Spec};
use crate::access::Keyspace;
use crate::collection::{Collection, Edit};
use crate::entry::Millis;
use crate::error::CommandError;
use crate::packed::EntryRef;
use crate::reply::Reply;

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
/// [STORE destination]` and `SORT_RO` (without STORE): the elements of a list, set or sorted
/// set, sorted as numbers (or as bytes with ALPHA), by themselves or by the keys a BY pattern
/// names, showing themselves or what GET patterns name. A pattern's first `*` is replaced by the
/// element; `key->field` reads a hash field; `#` is the element itself. A BY pattern without `*`
/// does not sort. STORE replaces the destination with the result as a list.
///
/// Patterns reach keys that cannot be known before the elements are read, so with BY or GET the
/// command holds every shard while it runs (and `keys()` says so).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sort {
    pub key: Bytes,
    pub by: Option<Bytes>,
    pub limit: Option<(i64, i64)>,
    pub get: Vec<Bytes>,
    pub desc: bool,
    pub alpha: bool,
    pub store: Option<Bytes>,
}

/// The string a pattern names for `element`: a string key's value, or a hash field with
/// `key->field`. `None` when the pattern has no `*`, or the key or field is missing or of another
/// type.
fn lookup<'a>(
    pattern: &[u8],
    element: &[u8],
    find: &impl Fn(&[u8]) -> Option<EntryRef<'a>>,
) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(Bytes::copy_from_slice(element));
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let arrow = pattern[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|p| star + 1 + p)
        .filter(|&p| p + 2 < pattern.len());
    let key_end = arrow.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(key_end + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    let entry = find(&key)?;
    match arrow {
        Some(p) => entry
            .hash()
            .ok()?
            .get(&pattern[p + 2..])
            .map(Bytes::copy_from_slice),
        None => entry.string().ok().map(Bytes::copy_from_slice),
    }
}

/// A number as SORT reads one (C's `strtod`, all of it, not NaN).
fn score(text: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(text).ok()?.trim_start();
    let v: f64 = match t.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

impl Sort {
    /// Whether BY or GET reach other keys.
    fn reaches_out(&self) -> bool {
        self.by.as_ref().is_some_and(|b| b.contains(&b'*'))
            || self.get.iter().any(|g| &g[..] != b"#")
    }

    /// The sorted result, as GET shows it.
    fn compute<'a>(
        &self,
        find: &impl Fn(&[u8]) -> Option<EntryRef<'a>>,
    ) -> Result<Vec<Option<Bytes>>, CommandError> {
        let entry = find(&self.key);
        let collection = match entry {
            None => None,
            Some(e) => match e.collection().map(|c| &**c) {
                Some(c @ (Collection::List(_) | Collection::Set(_) | Collection::ZSet(_))) => Some(c),
                _ => return Err(CommandError::WrongType),
            },
        };
        let mut dontsort = self.by.as_ref().is_some_and(|b| !b.contains(&b'*'));
        let mut alpha = self.alpha;
        if dontsort && self.store.is_some() && matches!(collection, Some(Collection::Set(_))) {
            // A set has no order of its own: a stored result is sorted so it is the same on
            // every replay.
            dontsort = false;
            alpha = true;
        }
        let b = Bytes::copy_from_slice;
        let mut elements: Vec<Bytes> = match collection {
            None => Vec::new(),
            Some(Collection::List(l)) => l.iter().map(b).collect(),
            Some(Collection::Set(s)) => s.iter().map(b).collect(),
            Some(Collection::ZSet(z)) => z.iter().map(|(m, _)| b(m)).collect(),
            Some(Collection::Hash(_) | Collection::Stream(_)) => Vec::new(),
        };
        if dontsort {
            if self.desc && matches!(collection, Some(Collection::ZSet(_))) {
                elements.reverse();
            }
        } else {
            let by = self.by.as_ref().filter(|p| p.contains(&b'*'));
            let keyed: Vec<Option<Bytes>> = match by {
                Some(p) => elements.iter().map(|e| lookup(p, e, find)).collect(),
                None => elements.iter().map(|e| Some(e.clone())).collect(),
            };
            let mut rows: Vec<(Bytes, Option<Bytes>, f64)> = Vec::with_capacity(elements.len());
            for (e, k) in elements.into_iter().zip(keyed) {
                let s = if alpha {
                    0.0
                } else {
                    match &k {
                        Some(k) => score(k).ok_or(CommandError::Invalid(
                            "One or more scores can't be converted into double",
                        ))?,
                        None => 0.0,
                    }
                };
                rows.push((e, k, s));
            }
            rows.sort_by(|x, y| {
                let cmp = if alpha {
                    if by.is_some() {
                        match (&x.1, &y.1) {
                            (Some(a), Some(b)) => a.cmp(b),
                            (None, None) => Ordering::Equal,
                            (None, _) => Ordering::Less,
                            (_, None) => Ordering::Greater,
                        }
                    } else {
                        x.0.cmp(&y.0)
                    }
                } else {
                    x.2.partial_cmp(&y.2)
                        .unwrap_or(Ordering::Equal)
                        .then_with(|| x.0.cmp(&y.0))
                };
                if self.desc { cmp.reverse() } else { cmp }
            });
            elements = rows.into_iter().map(|r| r.0).collect();
        }
        let len = elements.len() as i64;
        let (start, count) = self.limit.unwrap_or((0, -1));
        let start = start.max(0);
        let end = if count < 0 { len - 1 } else { start.saturating_add(count) - 1 };
        let (start, end) = if start >= len { (0, -1) } else { (start, end.min(len - 1)) };
        let picked = if end < start {
            &elements[..0]
        } else {
            &elements[start as usize..=end as usize]
        };
        Ok(if self.get.is_empty() {
            picked.iter().map(|e| Some(e.clone())).collect()
        } else {
            picked
                .iter()
                .flat_map(|e| self.get.iter().map(move |g| (e, g)))
                .map(|(e, g)| lookup(g, e, find))
                .collect()
        })
    }

    pub fn apply<K: Keyspace>(&self, ks: &K, now: Millis) -> Reply {
        let reply = |result: Result<Vec<Option<Bytes>>, CommandError>| match result {
            Err(e) => e.into(),
            Ok(items) => Reply::Array(items.into_iter().map(|i| i.map_or(Reply::Nil, Reply::Bulk)).collect()),
        };
        let store = ks.store();
        match (&self.store, self.reaches_out()) {
            (None, false) => ks.read(&self.key, |shard| reply(self.compute(&|k: &[u8]| shard.live(k, now)))),
            (None, true) => ks.read_every(|shards| {
                reply(self.compute(&|k: &[u8]| shards[store.shard_index(k)].live(k, now)))
            }),
            (Some(dest), reaches) => {
                let write = |result: Result<Vec<Option<Bytes>>, CommandError>,
                             w: &mut crate::access::Writer<'_>| match result {
                    Err(e) => e.into(),
                    Ok(items) => {
                        let items = items.into_iter().map(Option::unwrap_or_default).collect();
                        let edit = Edit::ListPush { front: false, items };
                        Reply::Integer(store_collection(ks, w, dest, edit, "sortstore", now) as i64)
                    }
                };
                if reaches {
                    ks.write_every(|shards| {
                        let result = {
                            let view: Vec<&crate::shard::Shard> = shards.iter().map(|w| &**w).collect();
                            self.compute(&|k: &[u8]| view[store.shard_index(k)].live(k, now))
                        };
                        write(result, &mut shards[store.shard_index(dest)])
                    })
                } else {
                    ks.write_keys(&[&self.key[..], &dest[..]], |locked| {
                        let result = match locked.shard(&self.key) {
                            Some(w) => {
                                let shard: &crate::shard::Shard = w;
                                self.compute(&|k: &[u8]| shard.live(k, now))
                            }
                            None => Ok(Vec::new()),
                        };
                        match locked.shard(dest) {
                            Some(w) => write(result, w),
                            None => Reply::Integer(0),
                        }
                    })
                }
            }
        }
    }
}

/// The key, and STORE's destination.
fn sort_keys(argv: &[Bytes]) -> Vec<usize> {
    // The last STORE wins, as in the command itself.
    let store = (2..argv.len().saturating_sub(1))
        .rev()
        .find(|&i| is(&argv[i], "store"))
        .map(|i| i + 1);
    std::iter::once(1).chain(store).collect()
}

impl Definition for Sort {
    const SPECS: &'static [Spec] = &[Spec {
        access: KeyAccess::FirstThenRest(Access::READ, Access::WRITE),
        ..Spec::data(
            "sort",
            -2,
            &[Flag::Write, Flag::Denyoom],
            &[Category::Write, Category::Set, Category::SortedSet, Category::List, Category::Slow, Category::Dangerous],
            KeySpec::Find {
                shown: (1, 1, 1),
                find: sort_keys,
            },
            Access::READ,
            "generic",
            "Sort the elements in a list, set or sorted set",
            "SORT k LIMIT 0 10 DESC ALPHA STORE d",
        )
    }];

    fn from_args(a: &Args<'_>) -> Result<Self, CommandError> {
        parse(a, false)
    }

    fn keys(&self) -> Option<Vec<&[u8]>> {
        if self.reaches_out() {
            return None;
        }
        let mut keys = vec![&self.key[..]];
        if let Some(d) = &self.store {
            keys.push(d);
        }
        Some(keys)
    }
}

/// SORT's and SORT_RO's options.
pub(crate) fn parse(a: &Args<'_>, readonly: bool) -> Result<Sort, CommandError> {
    let v = a.at_least(1)?;
    let mut sort = Sort {
        key: v[0].clone(),
        by: None,
        limit: None,
        get: Vec::new(),
        desc: false,
        alpha: false,
        store: None,
    };
    let mut i = 1;
    while i < v.len() {
        let o = &v[i];
        let left = v.len() - i - 1;
        if is(o, "asc") {
            sort.desc = false;
        } else if is(o, "desc") {
            sort.desc = true;
        } else if is(o, "alpha") {
            sort.alpha = true;
        } else if is(o, "limit") && left >= 2 {
            sort.limit = Some((int(&v[i + 1])?, int(&v[i + 2])?));
            i += 2;
        } else if is(o, "store") && left >= 1 && !readonly {
            sort.store = Some(v[i + 1].clone());
            i += 1;
        } else if is(o, "by") && left >= 1 {
            sort.by = Some(v[i + 1].clone());
            i += 1;
        } else if is(o, "get") && left >= 1 {
            sort.get.push(v[i + 1].clone());
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    Ok(sort)
}
