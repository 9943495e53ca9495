//! What the registry reaches outside its own storage, as two small ports: the KV records the
//! request path reads, and the keys' ledger objects. The edge implements them over KV and the
//! object stubs; the host tests over in-memory fakes that can be made to fail.
//!
//! `async fn` without a `Send` bound: the worker runs on one thread.
#![allow(async_fn_in_trait)]

use crate::error::ApiError;
use crate::ledger::{Command, Reply};

/// The KV namespace holding the keys' records (`key:<hash>`).
pub trait KeyRecords {
    /// Writes `record` under `name`; an error names what failed.
    async fn put(&self, name: &str, record: String) -> Result<(), String>;
    /// Deletes `name` (deleting a missing name succeeds).
    async fn delete(&self, name: &str) -> Result<(), String>;
}

/// The keys' ledger objects, one per key id.
pub trait LedgerObjects {
    /// The reply of `key_id`'s object to `command`; 503 `ledger_unavailable` if it cannot be
    /// reached or answers nonsense.
    async fn call(&self, key_id: &str, command: &Command) -> Result<Reply, ApiError>;
}
