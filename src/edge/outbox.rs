//! Durable webhook delivery: the `Outbox` Durable Object (one per organisation,
//! [`crate::naming::outbox_object`], in its jurisdiction) and the
//! ways into it. Every decision (ids, filters, signature, schedule, states) is made by
//! [`crate::events`], and its tables are [`crate::events::outbox_store`]; this module sends.
//!
//! Flow: a producer hands events over, either through [`PendingEvents`] (a Durable Object
//! keeps them in its own SQLite until the outbox acknowledges them, retried by its alarm) →
//! `POST https://outbox/enqueue` `{"events":[…]}` ([`client::enqueue`]) → the object
//! stores each event once and one pending delivery per endpoint that wants it, and sets its
//! alarm → the alarm POSTs every due delivery, signed, records each outcome, prunes old rows
//! and sets the alarm for the next due delivery. Nothing is dropped while a receiver is down:
//! a delivery stays pending until it is delivered or expires (24 h by default).
//!
//! Admin: `handle_admin` passes the webhook routes of the admin API to the object.
//!
//! A data-plane build (without the `control-plane` feature) keeps only the producers' side
//! ([`PendingEvents`], the enqueue client): the `Outbox` class is the control plane's.
//!
//! Vars: `WEBHOOK_BACKOFF_BASE_MS` (first retry wait, default 1000) and `WEBHOOK_EXPIRY_MS`
//! (how long a delivery is tried, default 86400000).

#[cfg(feature = "control-plane")]
mod admin;
mod client;
mod config;
#[cfg(feature = "control-plane")]
mod object;
mod pending;
mod random;
#[cfg(feature = "control-plane")]
mod send;

#[cfg(feature = "control-plane")]
pub use admin::handle_admin;
pub use pending::PendingEvents;
pub use random::new_event_id;
