//! What a key's limits are: the validated configuration the ledger enforces.
//!
//! Every limit is optional; a present limit is never zero (`NonZeroU64`), so "0 means
//! unlimited" cannot be written by mistake. Spend is in integer micro-dollars.

use serde::{Deserialize, Serialize};
use std::num::NonZeroU64;

/// Request, token, in-flight and spend limits of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute / hour / day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<NonZeroU64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rph: Option<NonZeroU64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpd: Option<NonZeroU64>,
    /// Tokens (input + output) per minute / day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<NonZeroU64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpd: Option<NonZeroU64>,
    /// Requests admitted but not yet settled, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<NonZeroU64>,
    /// Output tokens reserved for a request that names no `max_tokens` (or its family's equivalent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_max_tokens: Option<NonZeroU64>,
    /// Spend caps; at most one per period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spend: Vec<SpendCap>,
}

impl Limits {
    /// Whether no limit is set (the value that clears a scope's limits).
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// The first period with more than one spend cap (a valid configuration has none).
    pub fn repeated_spend_period(&self) -> Option<SpendPeriod> {
        let spend = &self.spend;
        spend
            .iter()
            .enumerate()
            .find(|(i, cap)| spend[..*i].iter().any(|e| e.period == cap.period))
            .map(|(_, c)| c.period)
    }
}

/// A cap on money spent over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SpendCap {
    pub period: SpendPeriod,
    /// The cap in micro-dollars (1 USD = 1_000_000).
    pub limit_micros: NonZeroU64,
    /// `hard` refuses requests that would pass the cap; `warn` admits them and only warns.
    #[serde(default)]
    pub mode: CapMode,
    /// Percentages of the cap at which a `usage.alert` event is recorded, once per period.
    #[serde(default = "default_warn_at")]
    pub warn_at_percent: Vec<u8>,
}

fn default_warn_at() -> Vec<u8> {
    vec![50, 80, 100]
}

/// A spend period; daily and monthly reset on UTC calendar boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SpendPeriod {
    Total,
    Daily,
    Monthly,
}

impl SpendPeriod {
    /// As written in JSON: `total`, `daily`, `monthly`.
    pub fn name(self) -> &'static str {
        match self {
            SpendPeriod::Total => "total",
            SpendPeriod::Daily => "daily",
            SpendPeriod::Monthly => "monthly",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CapMode {
    #[default]
    Hard,
    Warn,
}
