//! teamkeys: team keys for LLM APIs, enforced at the edge.
pub mod admin;
pub mod error;
pub mod events;
pub mod family;
pub mod forwarding;
pub mod glob;
pub mod key_hash;
pub mod key_object;
pub mod key_usage;
pub mod limit_headers;
pub mod limits;
pub mod metering;
pub mod models_list;
pub mod policy;
pub mod request;
pub mod revocation;
pub mod route;
pub mod usage;

#[cfg(target_arch = "wasm32")]
mod edge;
