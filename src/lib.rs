//! teamkeys: team keys for LLM APIs, enforced at the edge.
pub mod admin;
pub mod credentials;
pub mod error;
pub mod events;
pub mod family;
pub mod gateway;
pub mod ledger;
pub mod limits;
pub mod naming;
pub mod platform;
pub mod policy;
pub mod sql;
pub mod usage;
pub mod versioned;

#[cfg(target_arch = "wasm32")]
mod edge;
