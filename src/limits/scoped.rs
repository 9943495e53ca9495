//! Admission across the scopes of a key, atomic in its object (the one writer of all of them):
//! the key's own ledger, the ledger of the model pattern the call's model matches, and the ledger
//! of the call's end user ([`super::scopes`] says which a call counts in).
//!
//! Flow: [`ScopeLedgers::admit`] checks every ledger the call counts in ([`Ledger::check`]) and
//! only if none refuses records it in each ([`Ledger::record`]), remembering which pattern and
//! end user reservations it opened under the key's reservation id; otherwise it answers the
//! refusal that frees last ([`LimitDenial::outlasts`]; ties go to the key, then the pattern, then
//! the end user) and changes nothing. [`ScopeLedgers::settle`] and [`ScopeLedgers::release`]
//! apply to exactly the ledgers the admission recorded, each once. Admissions and settles answer
//! the spend thresholds each ledger reached ([`ScopeEvent`], naming its scope): every threshold
//! of every cap of every scope fires once per period, as a key's own.
//!
//! # Guarantees
//! Each ledger keeps the guarantees of [`Ledger`] for the calls it counts: every call counts in
//! the key's ledger, so the key's limits bound every call; a pattern's and an end user's limits
//! bound the calls of their models and of that end user as well.
//!
//! # End users and storage
//! A key tracks at most [`MAX_END_USERS`] end users, each with a ledger of its own from its first
//! admitted call; a new end user past the bound is refused ([`ScopeRefusal::TooManyEndUsers`]),
//! and no end user is ever evicted. The end users' ledgers are not part of the serialized state:
//! the object stores each in a row of its own, loads it before a command that needs it
//! ([`ScopeLedgers::needs_end_user`], [`ScopeLedgers::load_end_user`]) and writes back only the
//! one a command changed, so a call costs the same whatever the number of end users.
//!
//! # Changes of limits
//! A pattern removed from the key's limits takes its ledger with it (counted again from zero if
//! it comes back); an end user's ledger stays when end-user limits are removed.

use super::charge::{Actual, Ask};
use super::config::Limits;
use super::denial::LimitDenial;
use super::expired::{MAX_EXPIRED_REMEMBERED, SETTLE_DEADLINE_MS};
use super::headroom::LimitUse;
use super::ledger::{Admitted, Ledger, SettleOutcome};
use super::reservations::MAX_OPEN_RESERVATIONS;
use super::scopes::{KeyScope, ScopeLimits};
use super::spend::SpendEvent;
use crate::error::{ApiError, Code};
use crate::policy::end_user::missing_end_user;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The most end users one key tracks.
pub const MAX_END_USERS: usize = 1_000;

/// The admissions remembered with their scopes at most: as many as the key's ledger remembers.
const MAX_RECORDED: usize = MAX_OPEN_RESERVATIONS + MAX_EXPIRED_REMEMBERED;

/// Whom a call is for inside its key: its model (as the client named it) and its end user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallScope<'a> {
    pub model: Option<&'a str>,
    pub end_user: Option<&'a str>,
}

/// Why a call was refused across the scopes of its key. Denials are values: nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeRefusal {
    /// A limit of one scope (the one that frees last).
    Limit { scope: KeyScope, denial: LimitDenial },
    /// The key has end-user limits and the call names no end user.
    EndUserMissing,
    /// A new end user while the key tracks [`MAX_END_USERS`].
    TooManyEndUsers,
}

impl ScopeRefusal {
    /// The answer to send (see [`LimitDenial::into_api_error_in`]).
    pub fn into_api_error(self, now_ms: u64) -> ApiError {
        match self {
            ScopeRefusal::Limit { scope, denial } => denial.into_api_error_in(&scope, now_ms),
            ScopeRefusal::EndUserMissing => missing_end_user(),
            ScopeRefusal::TooManyEndUsers => ApiError::new(
                Code::TooManyEndUsers,
                format!(
                    "This key already tracks {MAX_END_USERS} end users, the most one key may; new end users are \
                     refused. Use another key for more end users."
                ),
            ),
        }
    }

    /// Until when every call of the refused scope is refused whatever else happens, if this
    /// refusal says so ([`LimitDenial::refuses_every_request_until`]).
    pub fn refuses_every_request_until(&self) -> Option<u64> {
        match self {
            ScopeRefusal::Limit { denial, .. } => denial.refuses_every_request_until(),
            _ => None,
        }
    }
}

/// A spend threshold reached in one ledger of a key (its own, a pattern's or an end user's),
/// for a `usage.alert` / `usage.limit_reached` webhook naming that scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeEvent {
    pub scope: KeyScope,
    pub spend: SpendEvent,
}

impl ScopeEvent {
    /// `events` of the key's own ledger.
    pub fn of_key(events: Vec<SpendEvent>) -> Vec<ScopeEvent> {
        scoped(&KeyScope::Key, events).collect()
    }
}

fn scoped(scope: &KeyScope, events: Vec<SpendEvent>) -> impl Iterator<Item = ScopeEvent> + '_ {
    events.into_iter().map(move |spend| ScopeEvent { scope: scope.clone(), spend })
}

/// What a settle did across the scopes of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedSettle {
    /// Whether the key's ledger knew the reservation (see [`SettleOutcome::settled`]).
    pub settled: bool,
    /// The thresholds newly reached, in the key's ledger and the scopes the admission recorded.
    pub events: Vec<ScopeEvent>,
}

/// Which ledgers beside the key's one admission opened reservations in, and their ids there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Recorded {
    admitted_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<(String, u64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_user: Option<(String, u64)>,
}

/// The ledgers of the scopes inside a key, beside the key's own (which its object keeps apart).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeLedgers {
    /// One per model pattern in force that has counted a call, by pattern.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    models: BTreeMap<String, Ledger>,
    /// How many end users have a ledger (stored or loaded).
    #[serde(default, skip_serializing_if = "is_zero")]
    end_users_tracked: usize,
    /// What each admission with a scope recorded, by the key's reservation id; forgotten when
    /// settled or released, or once the key's ledger would refuse its settle (after
    /// [`SETTLE_DEADLINE_MS`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    recorded: BTreeMap<u64, Recorded>,
    /// The end users' ledgers loaded so far; stored apart (see the module doc).
    #[serde(skip)]
    end_users: HashMap<String, Ledger>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ScopeLedgers {
    /// Whether nothing is kept (the state then leaves the member out).
    pub fn is_empty(&self) -> bool {
        self.models.is_empty() && self.end_users_tracked == 0 && self.recorded.is_empty()
    }

    /// Admits the call if the key's `limits` and every scope it counts in allow `ask` at
    /// `now_ms`, recording it in each; otherwise changes nothing (see the module doc). The
    /// spend events of every ledger it counted in come apart from the admission (whose own
    /// `events` are left empty).
    pub fn admit(
        &mut self,
        key: &mut Ledger,
        limits: &Limits,
        scopes: &ScopeLimits,
        call: CallScope,
        ask: Ask,
        now_ms: u64,
    ) -> Result<(Admitted, Vec<ScopeEvent>), ScopeRefusal> {
        let model = scopes.for_model(call.model);
        let end_user = match (scopes.tracks_end_users(), call.end_user) {
            (false, _) => None,
            (true, None) => return Err(ScopeRefusal::EndUserMissing),
            (true, Some(id)) => Some(id),
        };
        let known = end_user.is_some_and(|id| self.end_users.contains_key(id));
        if end_user.is_some() && !known && self.end_users_tracked >= MAX_END_USERS {
            return Err(ScopeRefusal::TooManyEndUsers);
        }
        let fresh = Ledger::new();
        let key_denial = key.check(limits, &ask, now_ms).map(|denial| (KeyScope::Key, denial));
        let model_denial = model.and_then(|m| {
            let ledger = self.models.get(&m.pattern).unwrap_or(&fresh);
            ledger.check(&m.limits, &ask, now_ms).map(|denial| (KeyScope::Model(m.pattern.clone()), denial))
        });
        let end_user_denial = end_user.and_then(|id| {
            let ledger = self.end_users.get(id).unwrap_or(&fresh);
            ledger.check(&scopes.end_user_limits, &ask, now_ms).map(|denial| (KeyScope::EndUser(id.to_owned()), denial))
        });
        let refused = [key_denial, model_denial, end_user_denial].into_iter().flatten().reduce(|kept, next| {
            if next.1.outlasts(&kept.1) {
                next
            } else {
                kept
            }
        });
        if let Some((scope, denial)) = refused {
            return Err(ScopeRefusal::Limit { scope, denial });
        }

        let mut admitted = key.record(limits, ask, now_ms);
        let mut events: Vec<ScopeEvent> = scoped(&KeyScope::Key, std::mem::take(&mut admitted.events)).collect();
        self.models.retain(|pattern, _| scopes.model_limits.iter().any(|m| &m.pattern == pattern));
        let model = model.map(|m| {
            let ledger = self.models.entry(m.pattern.clone()).or_default();
            let recorded = ledger.record(&m.limits, ask, now_ms);
            events.extend(scoped(&KeyScope::Model(m.pattern.clone()), recorded.events));
            (m.pattern.clone(), recorded.reservation_id)
        });
        let end_user = end_user.map(|id| {
            if !known {
                self.end_users_tracked += 1;
            }
            let ledger = self.end_users.entry(id.to_owned()).or_default();
            let recorded = ledger.record(&scopes.end_user_limits, ask, now_ms);
            events.extend(scoped(&KeyScope::EndUser(id.to_owned()), recorded.events));
            (id.to_owned(), recorded.reservation_id)
        });
        self.forget_old(now_ms);
        if model.is_some() || end_user.is_some() {
            self.recorded.insert(admitted.reservation_id, Recorded { admitted_ms: now_ms, model, end_user });
        }
        Ok((admitted, events))
    }

    /// Settles reservation `id` at `actual` in the key's ledger (under `limits`) and in the
    /// scopes its admission recorded (under their limits in `scopes`; a pattern since removed
    /// has no ledger left); answers whether the key's ledger knew it and every ledger's events.
    pub fn settle(
        &mut self,
        key: &mut Ledger,
        limits: &Limits,
        scopes: &ScopeLimits,
        id: u64,
        actual: Actual,
        now_ms: u64,
    ) -> ScopedSettle {
        let SettleOutcome { settled, events } = key.settle(limits, id, actual, now_ms);
        let mut events: Vec<ScopeEvent> = scoped(&KeyScope::Key, events).collect();
        events.extend(self.close(id, Some((actual, scopes)), now_ms));
        ScopedSettle { settled, events }
    }

    /// Releases reservation `id` in the key's ledger and in the scopes its admission recorded;
    /// answers whether the key's ledger knew it.
    pub fn release(&mut self, key: &mut Ledger, id: u64, now_ms: u64) -> bool {
        let released = key.release(id, now_ms);
        self.close(id, None, now_ms);
        released
    }

    /// The end user reservation `id` counted for, if any.
    pub fn end_user_of(&self, id: u64) -> Option<&str> {
        self.recorded.get(&id)?.end_user.as_ref().map(|(end_user, _)| end_user.as_str())
    }

    /// Whether the ledger of `end_user` must be loaded from its row before a command that
    /// reads it: it is not in memory.
    pub fn needs_end_user(&self, end_user: &str) -> bool {
        !self.end_users.contains_key(end_user)
    }

    /// Puts the stored ledger of `end_user` in memory (see the module doc).
    pub fn load_end_user(&mut self, end_user: &str, ledger: Ledger) {
        self.end_users.insert(end_user.to_owned(), ledger);
    }

    /// The ledger of `end_user`, if it has one in memory: what its row holds after a change.
    pub fn end_user(&self, end_user: &str) -> Option<&Ledger> {
        self.end_users.get(end_user)
    }

    /// The state of every limit of each pattern of `scopes`, in their order.
    pub fn model_uses(&self, scopes: &ScopeLimits, now_ms: u64) -> Vec<(String, Vec<LimitUse>)> {
        let fresh = Ledger::new();
        scopes
            .model_limits
            .iter()
            .map(|m| {
                let ledger = self.models.get(&m.pattern).unwrap_or(&fresh);
                (m.pattern.clone(), ledger.limit_uses(&m.limits, now_ms))
            })
            .collect()
    }

    /// The state of every end-user limit of `scopes` for `end_user` (loaded first), or `None`
    /// when the key has no end-user limits.
    pub fn end_user_uses(&self, scopes: &ScopeLimits, end_user: &str, now_ms: u64) -> Option<Vec<LimitUse>> {
        let fresh = Ledger::new();
        let ledger = self.end_users.get(end_user).unwrap_or(&fresh);
        scopes.tracks_end_users().then(|| ledger.limit_uses(&scopes.end_user_limits, now_ms))
    }

    /// Takes back what the admission of `id` recorded beside the key: at `actual` under the
    /// limits of `scopes`, or released; answers the spend events of the ledgers it settled.
    fn close(&mut self, id: u64, settle: Option<(Actual, &ScopeLimits)>, now_ms: u64) -> Vec<ScopeEvent> {
        let Some(recorded) = self.recorded.remove(&id) else { return Vec::new() };
        let close = |ledger: &mut Ledger, sub_id: u64, limits: &Limits, scope: KeyScope| match settle {
            Some((actual, _)) => scoped(&scope, ledger.settle(limits, sub_id, actual, now_ms).events).collect(),
            None => {
                ledger.release(sub_id, now_ms);
                Vec::new()
            }
        };
        let (unscoped, unlimited) = (ScopeLimits::default(), Limits::default());
        let scopes = settle.map_or(&unscoped, |(_, scopes)| scopes);
        let mut events = Vec::new();
        if let Some((pattern, sub_id)) = recorded.model {
            let limits = scopes.model_limits.iter().find(|m| m.pattern == pattern).map_or(&unlimited, |m| &m.limits);
            if let Some(ledger) = self.models.get_mut(&pattern) {
                events.extend(close(ledger, sub_id, limits, KeyScope::Model(pattern)));
            }
        }
        if let Some((end_user, sub_id)) = recorded.end_user {
            if let Some(ledger) = self.end_users.get_mut(&end_user) {
                events.extend(close(ledger, sub_id, &scopes.end_user_limits, KeyScope::EndUser(end_user)));
            }
        }
        events
    }

    /// Forgets admissions whose settle the key's ledger would no longer take, and the oldest
    /// past [`MAX_RECORDED`].
    fn forget_old(&mut self, now_ms: u64) {
        while let Some((_, oldest)) = self.recorded.first_key_value() {
            let past_deadline = oldest.admitted_ms.saturating_add(SETTLE_DEADLINE_MS) <= now_ms;
            if !past_deadline && self.recorded.len() < MAX_RECORDED {
                break;
            }
            self.recorded.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::scopes::ModelLimits;
    use super::*;
    use std::num::NonZeroU64;

    fn model_scopes() -> ScopeLimits {
        let limits = Limits { rpm: NonZeroU64::new(1_000), ..Limits::default() };
        ScopeLimits { model_limits: vec![ModelLimits { pattern: "m*".into(), limits }], ..ScopeLimits::default() }
    }

    #[test]
    fn what_admissions_recorded_is_forgotten_once_no_settle_can_count() {
        let (mut key, mut scopes, limits) = (Ledger::new(), ScopeLedgers::default(), Limits::default());
        let call = CallScope { model: Some("m1"), end_user: None };
        let lost = scopes.admit(&mut key, &limits, &model_scopes(), call, Ask::ZERO, 0).unwrap().0.reservation_id;
        assert_eq!(scopes.recorded.len(), 1);
        scopes.admit(&mut key, &limits, &model_scopes(), call, Ask::ZERO, SETTLE_DEADLINE_MS).unwrap();
        assert_eq!(scopes.recorded.keys().copied().collect::<Vec<_>>(), [lost + 1], "the lost settle's record is gone");
        let unscoped = CallScope { model: Some("other"), end_user: None };
        scopes.admit(&mut key, &limits, &model_scopes(), unscoped, Ask::ZERO, SETTLE_DEADLINE_MS).unwrap();
        assert_eq!(scopes.recorded.len(), 1, "a call in no scope records nothing");
    }

    #[test]
    fn a_removed_pattern_takes_its_ledger_with_it() {
        let (mut key, mut scopes, limits) = (Ledger::new(), ScopeLedgers::default(), Limits::default());
        let call = CallScope { model: Some("m1"), end_user: None };
        scopes.admit(&mut key, &limits, &model_scopes(), call, Ask::ZERO, 0).unwrap();
        assert_eq!(scopes.models.len(), 1);
        scopes.admit(&mut key, &limits, &ScopeLimits::default(), call, Ask::ZERO, 0).unwrap();
        assert!(scopes.models.is_empty());
        assert!(!scopes.is_empty(), "the first admission's record stays until settled");
    }
}
