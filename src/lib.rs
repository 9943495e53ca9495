//! teamkeys: team keys for LLM APIs, enforced at the edge.
pub mod error;
pub mod family;
pub mod limits;
pub mod policy;
pub mod usage;
