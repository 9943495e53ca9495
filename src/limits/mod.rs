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
//! `calendar` (UTC dates), `spend` (per-period totals and thresholds), `reservations` (requests
//! in flight), `expired` (expired reservations a late settle still corrects), `charge` (tokens
//! and cost), `denial` (refusals and their HTTP answer), `headroom` (what is left), `ledger`
//! (the atomic steps and their guarantees), `level` (key, model, end user, project, organisation), `newest` (which limits are in force: the newest
//! policy version seen).
pub(crate) mod calendar;
mod charge;
mod config;
mod denial;
mod expired;
mod headroom;
mod ledger;
mod level;
mod newest;
mod reservations;
mod scope;
mod spend;
mod window;

#[cfg(test)]
mod simulation;

pub use charge::{Actual, Ask, Charge};
pub use config::{CapMode, Limits, SpendCap, SpendPeriod};
pub use denial::LimitDenial;
pub use expired::{MAX_EXPIRED_REMEMBERED, SETTLE_DEADLINE_MS};
pub use headroom::{Headroom, LimitUse, Remaining, SpendHeadroom};
pub use ledger::{Admitted, Ledger, SettleOutcome};
pub use level::Level;
pub use newest::{NewestLimits, VersionedLimits};
pub use reservations::{MAX_OPEN_RESERVATIONS, RESERVATION_TTL_MS};
pub use scope::WindowScope;
pub use spend::{SpendEvent, SpendEventKind};
