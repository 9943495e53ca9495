//! What a key holder may read about its own key with the key itself (`GET /v1/key`): the state
//! of each limit of the key, of each of its model patterns and of the calling end user, and the
//! key's usage totals; and, for each budget above the key (project, organisation), only the
//! headroom that bounds this key ([`LevelQuota`]). Nothing about other keys.
//!
//! Freshness of a level: the key's object knows a budget's headroom only from its lease
//! replies, so it is as of the latest one (`as_of_ms`): at most the key's lease interval
//! ([`KEY_LEASE_MS`](crate::budget::KEY_LEASE_MS), 2 s) plus the flush delay
//! ([`FLUSH_MS`](crate::budget::FLUSH_MS)) old while the key makes calls under it; older when
//! the key is idle (no call, nothing to report: no reply); absent before its first lease.

use super::usage_book::UsageTotals;
use crate::budget::SliceLeft;
use crate::limits::{Headroom, Level, LimitUse};
use serde::{Deserialize, Serialize};

/// The key's quota, as its object holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyQuota {
    pub key: KeyLevelQuota,
    /// Each model pattern's limits, in the key's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<PatternQuota>,
    /// The calling end user's limits, when the key has end-user limits and the call names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<EndUserQuota>,
    /// Each budget the key lies under, in the key record's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<LevelQuota>,
}

/// The key's own limits and usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLevelQuota {
    /// Every limit of the key's own, in the order of [`crate::limits::Ledger::limit_uses`].
    pub limits: Vec<LimitUse>,
    pub usage: UsageTotals,
}

/// One model pattern's limits and their use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PatternQuota {
    pub pattern: String,
    pub limits: Vec<LimitUse>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndUserQuota {
    pub id: String,
    pub limits: Vec<LimitUse>,
}

/// What bounds the key at one level above it, as the key's own object knows it. The key may
/// admit up to `slice` more without asking, then up to what `headroom` had left when read
/// (shared with the budget's other keys, so possibly less by now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelQuota {
    /// `project` or `organisation`.
    pub level: Level,
    /// The budget's headroom at its latest reply to this key (every key's outstanding slices,
    /// this key's own included, counted as used); absent before the key's first lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headroom: Option<Headroom>,
    /// When that reply was taken (Unix ms): see the module doc for how old it may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of_ms: Option<u64>,
    /// What the key's current lease still holds (its limited dimensions), until `ends_at_ms`;
    /// absent when the key holds no lease that admits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<SliceLeft>,
}
