//! What the registry reaches outside its own storage, as two small ports: the KV records the
//! request path reads, and the ledger objects (the keys', and the budgets' of projects and the
//! organisation). The edge implements them over KV and the
//! object stubs; the host tests over in-memory fakes that can be made to fail.
//!
//! `async fn` without a `Send` bound: the worker runs on one thread.
#![allow(async_fn_in_trait)]

use crate::admin::key::Key;
use crate::error::ApiError;
use crate::ledger::{Command, Reply};
use crate::limits::{LimitUse, Limits};
use crate::naming::ledger_object;
use crate::policy::{Jurisdiction, LocationHint};

/// The KV namespace holding the keys' records (`key:<hash>`) and the organisations' records
/// (`org:<org_id>`).
pub trait KeyRecords {
    /// Writes `record` under `name`; an error names what failed.
    async fn put(&self, name: &str, record: String) -> Result<(), String>;
    /// Deletes `name` (deleting a missing name succeeds).
    async fn delete(&self, name: &str) -> Result<(), String>;
}

/// Where a key's ledger object is: its name and the jurisdiction it is created in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerAddress {
    pub object: String,
    pub jurisdiction: Option<Jurisdiction>,
}

impl LedgerAddress {
    pub fn of(key: &Key) -> LedgerAddress {
        LedgerAddress { object: ledger_object(key.org.as_deref(), &key.id), jurisdiction: key.jurisdiction }
    }
}

/// Where a budget's object is: its name ([`crate::naming::project_budget_object`],
/// [`crate::naming::org_budget_object`]), the organisation's jurisdiction and the location
/// hint it is created at if it does not exist yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetAddress {
    pub object: String,
    pub jurisdiction: Option<Jurisdiction>,
    pub location_hint: Option<LocationHint>,
}

/// The ledger objects: one per key, one per budget.
pub trait LedgerObjects {
    /// The reply of the object at `ledger` to `command`; 503 `ledger_unavailable` if it cannot
    /// be reached or answers nonsense.
    async fn call(&self, ledger: &LedgerAddress, command: &Command) -> Result<Reply, ApiError>;

    /// Tells the budget object at `budget` its limits of `version` (it keeps the newest version
    /// it has seen); 503 `ledger_unavailable` if it cannot be reached or does not acknowledge.
    async fn push_budget(&self, budget: &BudgetAddress, limits: &Limits, version: u64) -> Result<(), ApiError>;

    /// The state of each limit of the budget object at `budget` (read-only); 503
    /// `ledger_unavailable` if it cannot be reached.
    async fn budget_report(&self, budget: &BudgetAddress) -> Result<Vec<LimitUse>, ApiError>;
}
