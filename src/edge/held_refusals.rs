//! Refusals this isolate may repeat without asking the key's object again.
//!
//! A key whose request window is full is refused by its object until the window resets
//! ([`Reply::Refused::hold_until_ms`](crate::ledger::Reply), at most
//! [`REFUSAL_HOLD_MAX_MS`](crate::ledger::REFUSAL_HOLD_MAX_MS) ahead). Repeating that answer
//! here keeps a flood of refused calls from queueing in front of the object, where it would
//! delay every admitted call of the same key. The map is per isolate and bounded.

use std::cell::RefCell;
use std::collections::HashMap;

/// Entries kept at most; past it, expired ones are dropped, then all if none had expired.
const MAX_HELD: usize = 1024;

/// A refusal to repeat until `until_ms`.
#[derive(Clone)]
pub struct Held {
    pub until_ms: u64,
    pub status: u16,
    pub retry_after_s: Option<u64>,
    pub body: String,
}

thread_local! {
    static HELD: RefCell<HashMap<String, Held>> = RefCell::new(HashMap::new());
}

/// The refusal held for `key_id` at `now_ms`, if any.
pub fn held(key_id: &str, now_ms: u64) -> Option<Held> {
    HELD.with(|held| held.borrow().get(key_id).filter(|h| now_ms < h.until_ms).cloned())
}

pub fn hold(key_id: &str, refusal: Held, now_ms: u64) {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        if held.len() >= MAX_HELD {
            held.retain(|_, h| now_ms < h.until_ms);
            if held.len() >= MAX_HELD {
                held.clear();
            }
        }
        held.insert(key_id.to_owned(), refusal);
    });
}
