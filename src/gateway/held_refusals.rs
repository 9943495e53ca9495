//! Refusals an isolate may repeat without asking the key's ledger again.
//!
//! A key whose request window is full is refused by its ledger until the window resets
//! ([`Reply::Refused::hold_until_ms`](crate::ledger::Reply), at most
//! [`REFUSAL_HOLD_MAX_MS`](crate::ledger::REFUSAL_HOLD_MAX_MS) ahead). Repeating that answer
//! at the edge keeps a flood of refused calls from queueing in front of the ledger, where it
//! would delay every admitted call of the same key. The edge keeps one [`HeldRefusals`] per
//! isolate; it is bounded.

use crate::error::ApiError;
use std::collections::HashMap;

/// Entries kept at most; past it, expired ones are dropped, then all if none had expired.
const MAX_HELD: usize = 1024;

/// A refusal of the ledger to repeat until `until_ms`, with its `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub until_ms: u64,
    pub error: ApiError,
}

/// The refusals held, by the name of the key's ledger object (which carries its organisation,
/// so keys of two organisations never share an entry).
#[derive(Debug, Default)]
pub struct HeldRefusals {
    held: HashMap<String, Held>,
}

impl HeldRefusals {
    /// The refusal held for the ledger `object` at `now_ms`, if any.
    pub fn get(&self, object: &str, now_ms: u64) -> Option<&Held> {
        self.held.get(object).filter(|held| now_ms < held.until_ms)
    }

    pub fn hold(&mut self, object: &str, refusal: Held, now_ms: u64) {
        if self.held.len() >= MAX_HELD {
            self.held.retain(|_, held| now_ms < held.until_ms);
            if self.held.len() >= MAX_HELD {
                self.held.clear();
            }
        }
        self.held.insert(object.to_owned(), refusal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    fn refusal(until_ms: u64) -> Held {
        Held { until_ms, error: ApiError::new(Code::RateLimitExceeded, "full").with_retry_after(1) }
    }

    #[test]
    fn a_refusal_is_held_until_its_deadline() {
        let mut held = HeldRefusals::default();
        held.hold("k1", refusal(2_000), 1_000);
        assert_eq!(held.get("k1", 1_999), Some(&refusal(2_000)));
        assert_eq!(held.get("k1", 2_000), None);
        assert_eq!(held.get("k2", 1_000), None);
    }

    #[test]
    fn the_map_stays_bounded() {
        let mut held = HeldRefusals::default();
        for i in 0..MAX_HELD {
            held.hold(&format!("k{i}"), refusal(if i == 0 { 10 } else { 5_000 }), 0);
        }
        held.hold("new", refusal(5_000), 100);
        assert_eq!(held.held.len(), MAX_HELD, "the expired entry made room");
        held.hold("newer", refusal(5_000), 100);
        assert_eq!(held.held.len(), 1, "nothing had expired: all were dropped");
        assert!(held.get("newer", 100).is_some());
    }
}
