//! The isolate's memo of parsed records: a key's [`KeyPolicy`](crate::policy::KeyPolicy) and its
//! [`Organisation`](super::organisation::Organisation), kept for [`RECORD_MEMO_MS`] after they
//! were read from the key store, so that a key calling steadily pays neither a KV read nor a JSON
//! parse per call.
//!
//! Flow: look the record's name up ([`RecordMemo::get`]); a fresh entry is used as is; else the
//! store is read, the record parsed and validated, and the result remembered
//! ([`RecordMemo::remember`]). Only records that were found and valid are remembered: an unknown
//! key, an unreadable record and an unreachable store are asked again on the next call (a key
//! created a moment ago works at once).
//!
//! Bound: a record is served at most [`RECORD_MEMO_MS`] after this isolate read it; KV's edge
//! cache may have held it for its cache time before that ([`KV_CACHE_TTL_MS`], the `cacheTtl`
//! the edge's KV reads ask for), so a change to a record reaches every call within the sum of the two,
//! [`RECORD_STALENESS_MS`], plus KV's propagation. Revocation and limits do not wait for it (the
//! key's object refuses a revoked secret and enforces pushed limits).
//!
//! Memory: the memo holds at most [`MAX_RECORDS`] entries and [`MAX_MEMO_WEIGHT`] bytes of
//! records per kind, each weighed by [`record_weight`] (an upper estimate of its parsed form);
//! past either, expired entries are dropped, then all. A record heavier than a quarter of the
//! budget is not remembered (read on every call). So the two memos of an isolate hold at most
//! 2 × 8 MiB, whatever the records' sizes (admin bodies are ≤ 64 KiB).

use std::collections::HashMap;
use std::rc::Rc;

/// How long an isolate serves a record it read without reading it again.
pub const RECORD_MEMO_MS: u64 = 5_000;

/// How long KV's edge cache may serve a record (`cacheTtl`, KV's minimum).
pub const KV_CACHE_TTL_MS: u64 = 30_000;

/// The longest a call may be decided on a record older than the store's: KV's edge cache, then
/// this isolate's memo (KV's own propagation comes on top).
pub const RECORD_STALENESS_MS: u64 = KV_CACHE_TTL_MS + RECORD_MEMO_MS;

/// Entries kept at most, per kind of record.
pub const MAX_RECORDS: usize = 2_048;

/// The weight ([`record_weight`]) of the entries kept at most, per kind of record.
pub const MAX_MEMO_WEIGHT: usize = 8 << 20;

/// What a parsed record weighs at most, from the JSON it was read from: its bytes, plus for each
/// string (every JSON string is at most one `String` of the parsed form) a `String`'s header and
/// the allocator's rounding, plus a fixed part for the record's own structure. An estimate meant
/// to err high: the memo's bound is stated in these units.
pub fn record_weight(json: &[u8]) -> usize {
    const FIXED: usize = 2_048;
    const PER_STRING: usize = 48;
    let quotes = json.iter().filter(|&&byte| byte == b'"').count();
    FIXED + json.len() + quotes.div_ceil(2) * PER_STRING
}

struct Entry<T> {
    read_at_ms: u64,
    weight: usize,
    value: Rc<T>,
}

/// Parsed records by the name they are stored under, each with the time it was read and its
/// weight.
pub struct RecordMemo<T> {
    entries: HashMap<String, Entry<T>>,
    /// The sum of the entries' weights.
    weight: usize,
}

impl<T> Default for RecordMemo<T> {
    fn default() -> Self {
        RecordMemo { entries: HashMap::new(), weight: 0 }
    }
}

impl<T> RecordMemo<T> {
    /// The record stored as `name`, if this isolate read it less than [`RECORD_MEMO_MS`] ago
    /// (a clock that went back makes no entry fresh).
    pub fn get(&self, name: &str, now_ms: u64) -> Option<Rc<T>> {
        self.entries.get(name).filter(|entry| fresh(entry.read_at_ms, now_ms)).map(|entry| Rc::clone(&entry.value))
    }

    /// Remembers `value`, read from the store at `now_ms` as `name`, of `weight`
    /// ([`record_weight`]); a value heavier than a quarter of [`MAX_MEMO_WEIGHT`] is not kept.
    pub fn remember(&mut self, name: &str, value: Rc<T>, weight: usize, now_ms: u64) {
        if weight > MAX_MEMO_WEIGHT / 4 {
            return;
        }
        if let Some(old) = self.entries.remove(name) {
            self.weight -= old.weight;
        }
        if self.entries.len() >= MAX_RECORDS || self.weight + weight > MAX_MEMO_WEIGHT {
            self.entries.retain(|_, entry| fresh(entry.read_at_ms, now_ms));
            self.weight = self.entries.values().map(|entry| entry.weight).sum();
            if self.entries.len() >= MAX_RECORDS || self.weight + weight > MAX_MEMO_WEIGHT {
                self.entries.clear();
                self.weight = 0;
            }
        }
        self.weight += weight;
        self.entries.insert(name.to_owned(), Entry { read_at_ms: now_ms, weight, value });
    }

    /// The sum of the kept entries' weights.
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// How many entries are kept (fresh or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn fresh(read_at_ms: u64, now_ms: u64) -> bool {
    read_at_ms <= now_ms && now_ms - read_at_ms < RECORD_MEMO_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_served_for_the_memo_time_only() {
        let mut memo = RecordMemo::default();
        memo.remember("key:a", Rc::new(1), 1, 1_000);
        assert_eq!(memo.get("key:a", 1_000).as_deref(), Some(&1));
        assert_eq!(memo.get("key:a", 1_000 + RECORD_MEMO_MS - 1).as_deref(), Some(&1));
        assert_eq!(memo.get("key:a", 1_000 + RECORD_MEMO_MS), None);
        assert_eq!(memo.get("key:a", 999), None, "a clock that went back");
        assert_eq!(memo.get("key:b", 1_000), None);
    }

    #[test]
    fn the_memo_stays_bounded_in_entries() {
        let mut memo = RecordMemo::default();
        for i in 0..MAX_RECORDS {
            memo.remember(&format!("k{i}"), Rc::new(i), 1, if i == 0 { 0 } else { 10_000 });
        }
        memo.remember("new", Rc::new(0), 1, 10_000);
        assert_eq!(memo.len(), MAX_RECORDS, "the expired entry made room");
        memo.remember("k5", Rc::new(5), 1, 10_001);
        assert_eq!(memo.len(), MAX_RECORDS, "a known name is replaced in place");
        memo.remember("newer", Rc::new(0), 1, 10_001);
        assert_eq!(memo.len(), 1, "nothing had expired: all were dropped");
        assert!(memo.get("newer", 10_001).is_some());
    }

    #[test]
    fn the_memo_stays_bounded_in_weight() {
        let mut memo = RecordMemo::default();
        let quarter = MAX_MEMO_WEIGHT / 4;
        assert!(memo.is_empty());
        memo.remember("too heavy", Rc::new(0), quarter + 1, 0);
        assert!(memo.is_empty(), "a record heavier than a quarter of the budget is read every time");
        for i in 0..4 {
            memo.remember(&format!("k{i}"), Rc::new(i), quarter, if i == 0 { 0 } else { 10_000 });
        }
        assert_eq!((memo.len(), memo.weight()), (4, MAX_MEMO_WEIGHT));
        memo.remember("k1", Rc::new(1), quarter - 10, 10_000);
        assert_eq!((memo.len(), memo.weight()), (4, MAX_MEMO_WEIGHT - 10), "replaced in place, reweighed");
        memo.remember("new", Rc::new(0), quarter, 10_000);
        assert_eq!((memo.len(), memo.weight()), (4, MAX_MEMO_WEIGHT - 10), "the expired k0 made room");
        memo.remember("newer", Rc::new(0), 20, 10_001);
        assert_eq!((memo.len(), memo.weight()), (1, 20), "nothing had expired: all were dropped");
    }

    #[test]
    fn a_records_weight_errs_high_on_many_small_strings() {
        let small = br#"{"id":"k","models":{"allow":["a","b","c"]}}"#;
        assert_eq!(record_weight(small), 2_048 + small.len() + 7 * 48);
        let plain = vec![b'1'; 1_000];
        assert_eq!(record_weight(&plain), 2_048 + 1_000);
    }
}
