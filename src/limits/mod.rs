//! Per-key limits and the pure ledger that enforces them.
//!
//! Flow: the edge estimates a request ([`Ask`]) and asks the key's Durable Object to
//! [`Ledger::admit`] it under the key's [`Limits`]; a [`LimitDenial`] becomes the answer via
//! [`LimitDenial::into_api_error`], an [`Admitted`] carries the reservation id and the
//! [`Headroom`] for response headers. After the upstream call the edge reports the [`Actual`]
//! usage ([`Ledger::settle`]) or the failure ([`Ledger::release`]); [`SpendEvent`]s that come back
//! are alert notifications to send.
//!
//! Modules, one concept each: `window` (a ring of 60 buckets), `scope` (the five windows),
//! `calendar` (UTC dates), `scopes` (model patterns and end users inside a key), `scoped` (admission
//! across them, atomic), `spend` (per-period totals and thresholds), `reservations` (requests
//! in flight), `expired` (expired reservations a late settle still corrects), `charge` (tokens
//! and cost), `counters` (the one admission check and headroom over any counters: a key's ledger
//! and a project's or organisation's budget), `denial` (refusals and their HTTP answer),
//! `headroom` (what is left), `ledger` (the atomic steps and their guarantees), `level` (key,
//! model, end user, project, organisation), `newest` (which limits are in force: the newest
//! policy version seen).
pub(crate) mod calendar;
mod charge;
mod config;
mod counters;
mod denial;
mod expired;
mod headroom;
mod ledger;
mod level;
mod newest;
mod reservations;
mod scope;
mod scoped;
mod scopes;
mod spend;
mod window;

#[cfg(test)]
mod scoped_simulation;
#[cfg(test)]
pub(crate) mod simulation;

pub use charge::{Actual, Ask, Charge};
pub use config::{CapMode, Limits, SpendCap, SpendPeriod};
pub(crate) use counters::{denial, headroom, limit_uses, Counters};
pub use denial::LimitDenial;
pub use expired::{MAX_EXPIRED_REMEMBERED, SETTLE_DEADLINE_MS};
pub use headroom::{Headroom, LimitUse, Remaining, SpendHeadroom};
pub(crate) use ledger::LedgerParts;
pub use ledger::{Admitted, Ledger, SettleOutcome};
pub use level::Level;
pub use newest::{NewestLimits, VersionedLimits};
pub(crate) use reservations::Reservation;
pub use reservations::{MAX_OPEN_RESERVATIONS, RESERVATION_TTL_MS};
pub use scope::WindowScope;
pub(crate) use scope::Windows;
pub use scoped::{CallScope, ScopeEvent, ScopeLedgers, ScopeRefusal, ScopedSettle, MAX_END_USERS};
pub use scopes::{KeyScope, ModelLimits, ScopeLimits, MAX_MODEL_PATTERNS, MAX_PATTERN_BYTES};
pub(crate) use spend::Spend;
pub use spend::{SpendEvent, SpendEventKind};
pub(crate) use window::Window;
