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
        self.denial.into_api_error_at(self.level, now_ms)
    }
}

/// A spend threshold reached at a level, for a `usage.alert` / `usage.limit_reached` webhook
/// naming the project or organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetEvent {
    pub level: Level,
    pub spend: SpendEvent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::SpendPeriod;

    #[test]
    fn a_project_refusal_renders_like_a_keys_with_its_level() {
        let denial = BudgetDenial {
            level: Level::Project,
            denial: LimitDenial::Spend {
                period: SpendPeriod::Daily,
                limit_micros: 100_000_000,
                committed_micros: 99_000_000,
                reserved_micros: 900_000,
                asked_micros: 200_000,
                reset_at_ms: Some(86_400_000),
            },
        };
        let error = denial.into_api_error(86_000_000);
        assert_eq!(
            (error.status(), error.code().as_str(), error.retry_after_s()),
            (429, "spend_limit_exceeded", Some(400))
        );
        let body: serde_json::Value = serde_json::from_str(&error.body()).unwrap();
        assert_eq!(
            body["error"]["limit"],
            serde_json::json!({"level": "project", "scope": "spend_daily", "limit": 100_000_000,
                               "used": 99_900_000, "reset_at_ms": 86_400_000})
        );
        assert!(
            error.message.starts_with("Daily spend limit reached for this key's project: $100.00"),
            "{}",
            error.message
        );
    }
}
