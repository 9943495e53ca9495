//! The control plane's core: who may do what, what a change may set, and what it leaves
//! behind, and the use-cases that apply those rules ([`api`]) over the registry's storage
//! ([`store`], behind the [`crate::sql::Sql`] port). The edge (`edge::admin`) speaks HTTP and
//! holds the Durable Object; it decides nothing.
//!
//! Flow of an admin call: [`route::classify`] names the endpoint → the registry authenticates
//! the bearer token (its SHA-256 against `ADMIN_TOKEN`'s and the principals') → [`input`]
//! parses and checks the body → [`permission::check`] (or [`permission::Scope`] for lists)
//! decides with the caller's [`membership::Standing`] → [`boundary::check_key_within`] refuses
//! rules above the organisation's or project's boundary → the change is written with its
//! [`audit::Change`] and the work it leaves (KV projection of [`key::Key::record`], ledger
//! controls from [`lifecycle`], events) in one synchronous step → that work is applied.
//!
//! Modules, one concept each: `role` (principals and roles), `membership` (projects a principal
//! belongs to, standing), `permission` (the role × action table), `boundary` (policy
//! boundaries), `secret` (keys, tokens, ids, masks), `lifecycle` (status, secrets, rotation),
//! `key`, `project`, `principal` (what the registry holds and shows), `input` (request bodies),
//! `idempotency` (answers kept for retries), `retention` (what is kept how long),
//! `query` (filters and cursor pagination), `audit`, `report` (usage), `route` (endpoints),
//! `openapi` (the document generated from the types, host tests only),
//! `work` (what a change leaves for KV and the ledger objects), `store` (the registry's tables
//! and statements), `api` (the endpoints, the registry and the propagation of pending work).

pub mod api;
pub mod audit;
pub mod boundary;
pub mod idempotency;
pub mod input;
pub mod key;
pub mod lifecycle;
pub mod membership;
pub mod org;
pub mod permission;
pub mod principal;
pub mod project;
pub mod query;
pub mod report;
pub mod retention;
pub mod role;
pub mod route;
pub mod secret;
pub mod session;
pub mod sso;
pub mod store;
pub mod work;

/// The OpenAPI document of the admin API, served at `/admin/v1/openapi.json`: generated from
/// the types and the table of operations by the host tests of `openapi`, committed, and served
/// as it is.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

#[cfg(test)]
mod openapi;
