//! Per-key limits and the pure ledger that enforces them.
mod config;
pub use config::{CapMode, Limits, SpendCap, SpendPeriod};
