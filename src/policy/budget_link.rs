//! The budgets above a key, as its KV record carries them ([`BudgetLink`]): for its project's
//! budget and its organisation's, where the budget object is (its name, which carries the
//! organisation: [`crate::naming::budget_object`]; created in the key's jurisdiction, at its
//! location hint) and the limits in force with their version, which the key's object passes on
//! when it leases, so a budget object enforces the newest limits it has seen, pushed by the
//! control plane or carried (as key ledgers do: [`crate::limits::NewestLimits`]).

use super::placement::LocationHint;
use super::Jurisdiction;
use crate::limits::{CapMode, Level, Limits};
use serde::{Deserialize, Serialize};

/// One budget a key's calls count against besides its own limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetLink {
    /// `project` or `organisation`.
    pub level: Level,
    /// The budget object's name.
    pub object: String,
    /// The budget's limits in force (an aggregate over every key below it).
    pub limits: Limits,
    /// Bumped by the registry on every change of `limits`.
    pub version: u64,
    /// The organisation's jurisdiction, where the object lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<Jurisdiction>,
    /// Where the object is created, if it does not exist yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_hint: Option<LocationHint>,
}

impl BudgetLink {
    /// Whether the budget has a hard spend cap: the key then counts as capped (a call whose
    /// bill the gateway cannot bound is refused, as for a key with a spend cap of its own).
    pub fn caps_spend(&self) -> bool {
        self.limits.spend.iter().any(|cap| cap.mode == CapMode::Hard)
    }
}
