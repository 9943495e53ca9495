//! teamkeys: team keys for LLM APIs, enforced at the edge.
pub mod error;
