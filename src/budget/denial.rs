//! A refusal of an upper level, naming the level and its scope, and the spend events of a level.
//!
//! Flow: the upper's ledger refuses with a [`LimitDenial`] exactly as a key's ledger does; the
//! upper's object wraps it with its [`Level`]; the edge renders it with
//! [`BudgetDenial::into_api_error`], the same 429 (or 400) as a key's, with
//! `{"limit":{"level":"project","scope":"spend_daily",…}}`.

use crate::error::ApiError;
use crate::limits::{Level, LimitDenial, SpendEvent};
use serde::{Deserialize, Serialize};

/// A refusal by the limits of `level`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetDenial {
    pub level: Level,
    pub denial: LimitDenial,
}

impl BudgetDenial {
    /// The answer to send: a key's answer to the same denial, with `limit.level` set and the
    /// message naming the level.
    pub fn into_api_error(self, now_ms: u64) -> ApiError {
        let _ = now_ms;
        todo!()
    }
}

/// A spend threshold reached at a level, for a `usage.alert` / `usage.limit_reached` webhook
/// naming the project or organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetEvent {
    pub level: Level,
    pub spend: SpendEvent,
}
