//! The platform level: the operator's directory of organisations, above their registries.
//!
//! Flow of an operator call (`/admin/v1/orgs…`, bearer = the deploy-time `ADMIN_TOKEN`): the
//! worker forwards it to the one `Platform` Durable Object ([`crate::naming::PLATFORM_OBJECT`])
//! → [`api::Platform::serve`] authenticates the operator, routes ([`route`]), checks the input
//! ([`directory`]) → for a change, sends the organisation's registry an [`order::Order`] through
//! the [`api::Registries`] port (at the edge: the registry object in the organisation's
//! jurisdiction, with its location hint) → records the result in its own table ([`store`]) →
//! answers.
//!
//! Create: the id is drawn ([`org_id`]), the registry is opened with the first Admin, then the
//! entry is stored; if the registry cannot be reached nothing is stored (the opened registry,
//! if it was opened, is never named again). Suspend, resume, settings, price overrides and
//! delete: the registry is told first, then the entry changes; a failure leaves the entry as it
//! was, and the same call can be repeated (each order is idempotent at the registry). Reseal
//! (the master-key rotation's job) changes no entry: the registry answers what it resealed.

pub mod api;
pub mod directory;
pub mod order;
pub mod org_id;
pub mod route;
pub mod store;
