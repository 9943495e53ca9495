//! What a key holder may read about its own key with the key itself (`GET /v1/key`): the state
//! of each limit of the key, of each of its model patterns and of the calling end user, and the
//! key's usage totals. Nothing about other keys; the levels above the key (project,
//! organisation) join as the headroom that bounds this key only.

use super::usage_book::UsageTotals;
use crate::limits::LimitUse;
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
}

/// The key's own limits and usage. The levels above the key (project, organisation) belong
/// beside it in [`KeyQuota`], each as the headroom that bounds this key only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLevelQuota {
    /// Every limit of the key's own, in the order of [`crate::limits::Ledger::limit_uses`].
    pub limits: Vec<LimitUse>,
    pub usage: UsageTotals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternQuota {
    pub pattern: String,
    pub limits: Vec<LimitUse>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndUserQuota {
    pub id: String,
    pub limits: Vec<LimitUse>,
}
