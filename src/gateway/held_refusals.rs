//! Refusals an isolate may repeat without asking the key's ledger again.
//!
//! A key whose request window is full is refused by its ledger until the window resets
//! ([`Reply::Refused::hold_until_ms`](crate::ledger::Reply), at most
//! [`REFUSAL_HOLD_MAX_MS`](crate::ledger::REFUSAL_HOLD_MAX_MS) ahead). Repeating that answer
//! at the edge keeps a flood of refused calls from queueing in front of the ledger, where it
//! would delay every admitted call of the same key. The edge keeps one [`HeldRefusals`] per
//! isolate; it is bounded.
//!
//! Per scope: a refusal holds only the calls of the scope whose limit refused (read from the
//! refusal's `limit` details): a key-level refusal every call of the key, a model
//! pattern's the calls to models that pattern matches first, an end user's that end user's
//! calls. A pattern's or an end user's refusal never holds other models' or end users' calls.

use crate::error::{ApiError, LimitDetails};
use crate::limits::Level;
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

/// Where a call sits inside its key, beside the key itself: the model pattern its model matches
/// first and its end user, when the key has them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallScopes<'a> {
    pub pattern: Option<&'a str>,
    pub end_user: Option<&'a str>,
}

impl HeldRefusals {
    /// The refusal held at `now_ms` for a call of the ledger `object` (the key's own, or its
    /// model pattern's or end user's), if any.
    pub fn get(&self, object: &str, call: CallScopes, now_ms: u64) -> Option<&Held> {
        let scopes = [
            Some((Level::Key, "")),
            call.pattern.map(|p| (Level::Model, p)),
            call.end_user.map(|u| (Level::EndUser, u)),
        ];
        scopes.into_iter().flatten().find_map(|(level, name)| {
            self.held.get(entry(object, level, name).as_ref()).filter(|held| now_ms < held.until_ms)
        })
    }

    /// Holds `refusal` for the calls of the scope its limit details name; a refusal without
    /// them, or of a level above the key, is not held.
    pub fn hold(&mut self, object: &str, refusal: Held, now_ms: u64) {
        let Some(name) = refusal.error.limit().and_then(|details| entry_of(object, details)) else { return };
        if self.held.len() >= MAX_HELD {
            self.held.retain(|_, held| now_ms < held.until_ms);
            if self.held.len() >= MAX_HELD {
                self.held.clear();
            }
        }
        self.held.insert(name, refusal);
    }
}

/// The name of the entry of the ledger `object`'s scope at `level` named `name`: the object's
/// name for the key's own scope, else with the level and the pattern or end user appended after
/// a newline (which neither an object name nor a pattern or end user holds).
fn entry<'a>(object: &'a str, level: Level, name: &str) -> Cow<'a, str> {
    match level {
        Level::Key => Cow::Borrowed(object),
        level => Cow::Owned(format!("{object}\n{}\n{name}", level.name())),
    }
}

/// The entry a refusal with `details` is held under, if it is held.
fn entry_of(object: &str, details: &LimitDetails) -> Option<String> {
    let name = match (details.level, &details.pattern, &details.end_user) {
        (Level::Key, ..) => "",
        (Level::Model, Some(pattern), _) => pattern,
        (Level::EndUser, _, Some(id)) => id,
        _ => return None,
    };
    Some(entry(object, details.level, name).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use crate::limits::{KeyScope, LimitDenial, WindowScope};

    const KEY: CallScopes = CallScopes { pattern: None, end_user: None };

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
        let call = |pattern, end_user| CallScopes { pattern, end_user };
        assert_eq!(held.get("k1", call(Some("gpt*"), None), 1_000), None);
        assert_eq!(held.get("k1", call(None, Some("bob")), 1_000), None);
        assert_eq!(held.get("k1", call(Some("o3*"), None), 1_000).map(|h| h.until_ms), Some(2_000));
        assert_eq!(held.get("k1", call(Some("o3*"), Some("alice")), 2_500).map(|h| h.until_ms), Some(3_000));
        assert_eq!(held.get("k2", call(None, Some("alice")), 1_000), None, "another key's end user of that name");
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
