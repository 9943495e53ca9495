//! The audit log: every change made through the admin API, who made it, when, and the resource
//! before and after (as the API shows it: masked secrets, never a plaintext or a hash).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One change, as it is listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Increasing with time; the log lists newest first.
    pub id: i64,
    pub at_ms: u64,
    /// The principal who made the change.
    pub actor: String,
    /// The permission used, e.g. `keys.rotate`.
    pub action: String,
    /// `key`, `project`, `principal`, `membership` or `org_policy`.
    pub target_type: String,
    pub target_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A change about to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl Change {
    /// A change of `target` from `before` to `after` (each `None` when the resource did not or
    /// no longer exists), serialized as the API shows them.
    pub fn new<T: Serialize>(
        action: &'static str,
        target_type: &'static str,
        target_id: &str,
        before: Option<&T>,
        after: Option<&T>,
    ) -> Change {
        let json = |v: Option<&T>| v.map(|v| serde_json::to_value(v).expect("views serialize"));
        Change { action, target_type, target_id: target_id.to_owned(), before: json(before), after: json(after) }
    }
}
