//! Webhook events, pure: what an event is, who receives it, how it is signed and when a failed
//! delivery is tried again. The edge (`edge::outbox`) stores and sends; it decides nothing.
//!
//! Flow: a producer (the admin API on a key change, a key's ledger object on a spend threshold)
//! builds an [`Event`] with a fresh [`EventId`] and its own clock → hands it to the outbox, which
//! stores it once (the id makes a repeated hand-off harmless) and creates one pending
//! [`Delivery`] per endpoint whose [`EventFilter`] matches → each due delivery is POSTed with
//! the body [`Event::body`], the id header and a fresh [`signature`] → [`Delivery::after`]
//! turns the answer into delivered, a retry at [`RetryPolicy::next_attempt`], or expired.
//!
//! Modules, one concept each: `kind` (event types), `ids` (random ids), `envelope` (the
//! delivered JSON and the producer→outbox batch), `usage` (spend events as webhook events),
//! `endpoint` (endpoint configuration), `signature`, `schedule` (backoff), `delivery` (the state
//! machine), `routes` (the admin routes), `outbox_store` (the outbox's tables and statements) and
//! `pending` (a producer's queue of events not yet handed over), both over [`crate::sql::Sql`].

mod delivery;
mod endpoint;
mod envelope;
mod ids;
mod kind;
pub mod outbox_store;
pub mod pending;
mod routes;
mod schedule;
mod signature;
mod text_enum;
mod usage;

pub use delivery::{Attempt, Delivery, DeliveryStatus};
pub use endpoint::{
    endpoint_id, parse_endpoint_request, signing_secret, EndpointRequest, EndpointView, EventFilter, NewEndpoint,
    MAX_ENDPOINTS,
};
pub use envelope::{read_batch, Batch, Event, EventId, EVENT_ID_RANDOM_BYTES};
pub use kind::EventType;
pub use routes::{webhook_route, WebhookRoute, WEBHOOKS_PATH};
pub use schedule::{RetryPolicy, DEFAULT_BASE_MS, DEFAULT_EXPIRE_AFTER_MS};
pub use signature::{signature, ID_HEADER, SIGNATURE_HEADER};
pub use usage::{budget_event, usage_event};
