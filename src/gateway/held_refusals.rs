//! Refusals an isolate may repeat without asking the key's ledger again.
//!
//! A key whose request window is full is refused by its ledger until the window resets
//! ([`Reply::Refused::hold_until_ms`](crate::ledger::Reply), at most
//! [`REFUSAL_HOLD_MAX_MS`](crate::ledger::REFUSAL_HOLD_MAX_MS) ahead). Repeating that answer
//! at the edge keeps a flood of refused calls from queueing in front of the ledger, where it
//! would delay every admitted call of the same key. The edge keeps one [`HeldRefusals`] per
//! isolate; it is bounded.
//!
//! Per scope: a refusal holds only the calls of the scope whose limit refused ([`KeyScope`],
//! read from the refusal's `limit` details): a key-level refusal every call of the key, a model
//! pattern's the calls to models that pattern matches first, an end user's that end user's
//! calls. A pattern's or an end user's refusal never holds other models' or end users' calls.

use crate::error::{ApiError, LimitDetails};
use crate::limits::{KeyScope, Level};
use std::borrow::Cow;
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
/// so keys of two organisations never share an entry) and the scope inside the key.
#[derive(Debug, Default)]
pub struct HeldRefusals {
    held: HashMap<String, Held>,
}

impl HeldRefusals {
    /// The refusal held at `now_ms` for a call of the ledger `object` that counts in `scopes`
    /// (the key's own, and its model pattern's and end user's if it has them), if any.
    pub fn get(&self, object: &str, scopes: &[KeyScope], now_ms: u64) -> Option<&Held> {
        scopes
            .iter()
            .find_map(|scope| self.held.get(entry(object, scope).as_ref()).filter(|held| now_ms < held.until_ms))
    }

    /// Holds `refusal` for the calls of the scope its limit details name; a refusal without
    /// them, or of a level above the key, is not held.
    pub fn hold(&mut self, object: &str, refusal: Held, now_ms: u64) {
        let Some(scope) = refusal.error.limit().and_then(scope_of) else { return };
        if self.held.len() >= MAX_HELD {
            self.held.retain(|_, held| now_ms < held.until_ms);
            if self.held.len() >= MAX_HELD {
                self.held.clear();
            }
        }
        self.held.insert(entry(object, &scope).into_owned(), refusal);
    }
}

/// The name of the entry of `scope` of the ledger `object`: the object's name for the key's own
/// scope, else with the level and the pattern or end user appended after a newline (which
/// neither an object name nor a pattern or end user holds).
fn entry<'a>(object: &'a str, scope: &KeyScope) -> Cow<'a, str> {
    match scope {
        KeyScope::Key => Cow::Borrowed(object),
        KeyScope::Model(pattern) => Cow::Owned(format!("{object}\nmodel\n{pattern}")),
        KeyScope::EndUser(id) => Cow::Owned(format!("{object}\nend_user\n{id}")),
    }
}

/// The scope inside the key a refusal's limit belongs to.
fn scope_of(details: &LimitDetails) -> Option<KeyScope> {
    match (details.level, &details.pattern, &details.end_user) {
        (Level::Key, ..) => Some(KeyScope::Key),
        (Level::Model, Some(pattern), _) => Some(KeyScope::Model(pattern.clone())),
        (Level::EndUser, _, Some(id)) => Some(KeyScope::EndUser(id.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use crate::limits::{LimitDenial, WindowScope};

    const KEY: &[KeyScope] = &[KeyScope::Key];

    fn refusal_in(until_ms: u64, scope: &KeyScope) -> Held {
        let denial =
            LimitDenial::Window { scope: WindowScope::Rpm, limit: 1, used: 1, asked: 1, reset_at_ms: until_ms };
        Held { until_ms, error: denial.into_api_error_in(scope, 0) }
    }

    fn refusal(until_ms: u64) -> Held {
        refusal_in(until_ms, &KeyScope::Key)
    }

    #[test]
    fn a_refusal_is_held_until_its_deadline() {
        let mut held = HeldRefusals::default();
        held.hold("k1", refusal(2_000), 1_000);
        assert_eq!(held.get("k1", KEY, 1_999), Some(&refusal(2_000)));
        assert_eq!(held.get("k1", KEY, 2_000), None);
        assert_eq!(held.get("k2", KEY, 1_000), None);
        held.hold("k3", Held { until_ms: 2_000, error: ApiError::new(Code::KeyDisabled, "off") }, 1_000);
        assert_eq!(held.get("k3", KEY, 1_000), None, "only limit refusals name a scope to hold");
    }

    #[test]
    fn a_scopes_refusal_holds_only_that_scopes_calls() {
        let (o3, alice) = (KeyScope::Model("o3*".into()), KeyScope::EndUser("alice".into()));
        let mut held = HeldRefusals::default();
        held.hold("k1", refusal_in(2_000, &o3), 1_000);
        held.hold("k1", refusal_in(3_000, &alice), 1_000);
        assert_eq!(held.get("k1", KEY, 1_000), None, "the key's other calls pass");
        assert_eq!(held.get("k1", &[KeyScope::Key, KeyScope::Model("gpt*".into())], 1_000), None);
        assert_eq!(held.get("k1", &[KeyScope::Key, KeyScope::EndUser("bob".into())], 1_000), None);
        assert_eq!(held.get("k1", &[KeyScope::Key, o3.clone()], 1_000).map(|h| h.until_ms), Some(2_000));
        assert_eq!(held.get("k1", &[KeyScope::Key, o3, alice.clone()], 2_500).map(|h| h.until_ms), Some(3_000));
        assert_eq!(held.get("k2", &[KeyScope::Key, alice], 1_000), None, "another key's end user of that name");
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
        assert!(held.get("newer", KEY, 100).is_some());
    }
}
