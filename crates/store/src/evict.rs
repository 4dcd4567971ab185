//! Eviction: removing keys to bring memory back under its limit, chosen by the store's policy.
//!
//! The policies are Redis's and so is the method: an approximation by sampling. Each step looks
//! at `samples` entries of a random shard, scores them (idle time for LRU, the decayed LFU counter
//! for LFU, the expiry instant for `volatile-ttl`), keeps the best [`POOL_SIZE`] candidates seen
//! so far across steps, and evicts the best one that still exists. No list is kept in key order,
//! so reads never take a lock to record an access: they only update the entry's usage word (see
//! [`crate::usage`]).
//!
//! An eviction is a change like any other: it is removed under its shard's write lock and
//! submitted to the commit pipeline as [`Removal::Evicted`], so a restart does not bring the key
//! back, and every listener sees it in order with the writes around it. A sampled key that has
//! already expired goes first, as [`Removal::Expired`].
//!
//! The work is bounded by its caller: a number of keys per call. Candidates are shared by all
//! callers behind one short lock, which no shard lock is ever held while taking.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::effects::{Change, Effects, Removal};
use crate::entry::Millis;
use crate::keyspace::Store;
use crate::shard::Seen;
use crate::usage::{Policy, Tracking, decayed, idle_millis, random};

/// Candidates kept between eviction steps (Redis's `EVPOOL_SIZE`).
pub const POOL_SIZE: usize = 16;

/// A key worth evicting, with how much: a higher score is evicted first.
#[derive(Debug)]
struct Candidate {
    score: u64,
    shard: usize,
    key: Box<[u8]>,
}

/// The best candidates seen so far, lowest score first.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    entries: Vec<Candidate>,
    /// The policy the scores were computed under; a change of policy empties the pool.
    policy: Policy,
}

impl Pool {
    fn offer(&mut self, score: u64, shard: usize, key: &[u8]) {
        if let Some(same) = self.entries.iter().position(|c| &*c.key == key) {
            self.entries.remove(same);
        } else if self.entries.len() == POOL_SIZE {
            if self
                .entries
                .first()
                .is_some_and(|worst| worst.score >= score)
            {
                return;
            }
            self.entries.remove(0);
        }
        let at = self.entries.partition_point(|c| c.score <= score);
        self.entries.insert(
            at,
            Candidate {
                score,
                shard,
                key: Box::from(key),
            },
        );
    }

    fn best(&mut self) -> Option<Candidate> {
        self.entries.pop()
    }
}

/// What an eviction call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evicted {
    /// Keys removed (evicted, or found expired).
    pub keys: u64,
    /// Bytes they took.
    pub bytes: u64,
    /// Whether the policy found nothing it may evict (no keys, or no keys with an expiry for a
    /// `volatile-*` policy): the caller must refuse writes that need memory.
    pub exhausted: bool,
}

/// How strongly `seen` deserves eviction under `policy` at `now`; `None` when the policy may not
/// evict it. An expired entry always comes first.
fn score(policy: Policy, tracking: &Tracking, seen: &Seen<'_>, now: Millis) -> Option<u64> {
    if seen.expires_at.is_some_and(|at| at <= now) {
        return Some(u64::MAX);
    }
    if policy.volatile_only() && seen.expires_at.is_none() {
        return None;
    }
    let idle = idle_millis(seen.usage, now);
    Some(match policy {
        Policy::AllKeysLru | Policy::VolatileLru => idle,
        // The least frequent first; among equals, the longest idle.
        Policy::AllKeysLfu | Policy::VolatileLfu => {
            let counter = decayed(seen.usage, now, tracking.decay_minutes());
            (u64::from(u8::MAX - counter) << 40) | (idle / 10).min((1 << 40) - 1)
        }
        Policy::VolatileTtl => u64::MAX - 1 - seen.expires_at.unwrap_or(0),
        Policy::AllKeysRandom
        | Policy::VolatileRandom
        | Policy::NoEviction
        | Policy::AllKeysS3Fifo => 0,
    })
}

impl Store {
    /// The eviction policy, its parameters and the running footprint, shared by every shard.
    pub fn tracking(&self) -> &Tracking {
        &self.tracking
    }

    /// Keys evicted since the store was made (expired keys an eviction found are not counted).
    pub fn evicted_keys(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Bytes all entries take, as last reported by the shards: cheap, and behind by at most a few
    /// kilobytes per shard.
    pub fn footprint(&self) -> u64 {
        self.tracking.footprint()
    }

    /// Bytes all entries take, exactly: takes each shard's read lock in turn.
    pub fn footprint_exact(&self) -> u64 {
        (0..self.shard_count())
            .map(|i| self.shard_at(i).read().bytes() as u64)
            .sum()
    }

    /// Bytes the key `key` and its entry take (`MEMORY USAGE`), if it is live at `now`.
    pub fn usage_of(&self, key: &[u8], now: Millis) -> Option<u64> {
        let shard = self.shard_at(self.shard_index(key)).read();
        shard.peek(key, now)?;
        shard.cost_of(key).map(|b| (b + key.len()) as u64)
    }

    /// Evicts keys by the store's policy until `want` bytes are freed, `max_keys` keys are gone or
    /// nothing more may be evicted, looking at `samples` entries per step. Never evicts under
    /// `noeviction`.
    pub fn evict(&self, want: u64, max_keys: u64, samples: usize, now: Millis) -> Evicted {
        let policy = self.tracking.policy();
        let mut done = Evicted::default();
        if policy == Policy::NoEviction {
            done.exhausted = true;
            return done;
        }
        if policy == Policy::AllKeysS3Fifo {
            return self.evict_s3fifo(want, max_keys, now);
        }
        let samples = samples.max(1);
        let mut pool = self.pool.lock();
        if pool.policy != policy {
            *pool = Pool {
                entries: Vec::new(),
                policy,
            };
        }
        // Steps that found a candidate gone are retried, within bounds.
        let mut steps = 0;
        while done.bytes < want && done.keys < max_keys && steps < max_keys * 4 + 16 {
            steps += 1;
            let victim = match policy {
                Policy::AllKeysRandom | Policy::VolatileRandom => self.random_victim(policy, now),
                _ => {
                    self.populate(&mut pool, policy, samples, now);
                    pool.best().map(|c| (c.shard, c.key))
                }
            };
            let Some((shard, key)) = victim else {
                done.exhausted = true;
                break;
            };
            if let Some(bytes) = self.remove_victim(shard, &key, policy, now) {
                done.keys += 1;
                done.bytes += bytes;
            }
        }
        done
    }

    /// allkeys-s3fifo: each shard keeps its own queues; evictions go round the shards in turn, so
    /// each gives up keys in proportion to the evictions and the limit stays global.
    fn evict_s3fifo(&self, want: u64, max_keys: u64, now: Millis) -> Evicted {
        let mut done = Evicted::default();
        let n = self.shard_count();
        let mut empty_in_a_row = 0;
        while done.bytes < want && done.keys < max_keys {
            if empty_in_a_row == n {
                done.exhausted = true;
                break;
            }
            let index = self.evict_cursor.fetch_add(1, Ordering::Relaxed) % n;
            let mut shard = self.shard_at(index).write();
            let Some((key, why, bytes)) = shard.s3_evict(now) else {
                empty_in_a_row += 1;
                continue;
            };
            empty_in_a_row = 0;
            if self.noting() {
                let _ = self.submit(&Effects {
                    revision: self.revision(),
                    changes: vec![Change::Remove(Bytes::from(Vec::from(key)), why)],
                    events: Vec::new(),
                });
            }
            drop(shard);
            done.keys += 1;
            done.bytes += bytes as u64;
            if why == Removal::Evicted {
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        done
    }

    /// A random shard that holds something the policy may evict, starting the search at random.
    fn random_shard(&self, policy: Policy) -> Option<usize> {
        let n = self.shard_count();
        let start = random() as usize;
        (0..n).map(|i| (start + i) % n).find(|&i| {
            let shard = self.shard_at(i).read();
            if policy.volatile_only() {
                shard.expiring() > 0
            } else {
                shard.len() > 0
            }
        })
    }

    /// Adds the best of `samples` entries of a random shard to the pool.
    fn populate(&self, pool: &mut Pool, policy: Policy, samples: usize, now: Millis) {
        let Some(index) = self.random_shard(policy) else {
            return;
        };
        let shard = self.shard_at(index).read();
        let mut offer = |seen: Seen<'_>| {
            if let Some(score) = score(policy, &self.tracking, &seen, now) {
                pool.offer(score, index, seen.key);
            }
        };
        match policy {
            // The shard's soonest expiries are exactly its best candidates.
            Policy::VolatileTtl => shard.sample_expiring(None, samples, &mut offer),
            Policy::VolatileLru | Policy::VolatileLfu => {
                shard.sample_expiring(Some(random()), samples, &mut offer)
            }
            _ => shard.sample(random(), samples, &mut offer),
        }
    }

    /// One random key the policy may evict.
    fn random_victim(&self, policy: Policy, now: Millis) -> Option<(usize, Box<[u8]>)> {
        let index = self.random_shard(policy)?;
        let shard = self.shard_at(index).read();
        let mut found = None;
        let mut take = |seen: Seen<'_>| {
            if score(policy, &self.tracking, &seen, now).is_some() {
                found = Some(Box::from(seen.key));
            }
        };
        if policy.volatile_only() {
            shard.sample_expiring(Some(random()), 1, &mut take);
        } else {
            shard.sample(random(), 1, &mut take);
        }
        found.map(|key| (index, key))
    }

    /// Removes `key` from shard `index` if the policy may still evict it, as one change submitted
    /// under the shard's lock; returns the bytes it took.
    fn remove_victim(&self, index: usize, key: &[u8], policy: Policy, now: Millis) -> Option<u64> {
        let mut shard = self.shard_at(index).write();
        let expires_at = shard.find_expiry(key)?;
        let why = if expires_at.is_some_and(|at| at <= now) {
            Removal::Expired
        } else if policy.volatile_only() && expires_at.is_none() {
            return None;
        } else {
            Removal::Evicted
        };
        let before = shard.bytes();
        let removed = shard.remove(key);
        let bytes = before.saturating_sub(shard.bytes()) as u64;
        if self.noting() {
            // Nobody waits for these: the pipeline makes them durable in its own time.
            let _ = self.submit(&Effects {
                revision: self.revision(),
                changes: vec![Change::Remove(Bytes::copy_from_slice(key), why)],
                events: Vec::new(),
            });
        }
        drop(shard);
        drop(removed);
        if why == Removal::Evicted {
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_the_best_candidates_once_each() {
        let mut pool = Pool::default();
        for i in 0..40u64 {
            pool.offer(i % 20, 0, format!("k{i}").as_bytes());
        }
        assert_eq!(pool.entries.len(), POOL_SIZE);
        assert!(pool.entries.windows(2).all(|w| w[0].score <= w[1].score));
        assert_eq!(
            pool.entries.first().map(|c| c.score),
            Some(12),
            "the 16 highest of 0..20 twice"
        );
        pool.offer(100, 3, b"k1");
        pool.offer(101, 3, b"k1");
        assert_eq!(
            pool.entries.iter().filter(|c| &*c.key == b"k1").count(),
            1,
            "a key offered again is kept once, with its new score"
        );
        let best = pool.best().expect("a candidate");
        assert_eq!((best.score, &*best.key), (101, &b"k1"[..]));
    }
}
