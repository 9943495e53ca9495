//! What the registry reaches outside its own storage, as two small ports: the KV records the
//! request path reads, and the keys' ledger objects. The edge implements them over KV and the
//! object stubs; the host tests over in-memory fakes that can be made to fail.
//!
//! `async fn` without a `Send` bound: the worker runs on one thread.
#![allow(async_fn_in_trait)]

use crate::admin::key::Key;
use crate::error::ApiError;
use crate::ledger::{Command, Reply};
use crate::naming::ledger_object;
use crate::policy::Jurisdiction;

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

/// The keys' ledger objects, one per key.
pub trait LedgerObjects {
    /// The reply of the object at `ledger` to `command`; 503 `ledger_unavailable` if it cannot
    /// be reached or answers nonsense.
    async fn call(&self, ledger: &LedgerAddress, command: &Command) -> Result<Reply, ApiError>;
}
