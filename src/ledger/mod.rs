//! The key ledger: everything one key's Durable Object holds and does, as pure code. The
//! object's state machine ([`object`]: commands in, replies out, a refusal as a [`refusal`]),
//! which secrets it still honours ([`revocation`]), the usage totals it reports
//! ([`usage_book`]), its leases from the budgets above the key ([`budgets`]) and how one command
//! takes them ([`lease_rounds`]). The counters themselves are
//! [`crate::limits`].

pub mod budgets;
pub mod history;
pub mod lease_rounds;
pub mod object;
pub mod quota;
pub mod refusal;
pub mod revocation;
pub mod usage_book;

pub use object::{Command, Handled, KeyState, Reply, REFUSAL_HOLD_MAX_MS};
pub use quota::{EndUserQuota, KeyLevelQuota, KeyQuota, LevelQuota, PatternQuota};
pub use refusal::Refusal;
