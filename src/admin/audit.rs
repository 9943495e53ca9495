//! The audit log: every change made through the admin API, who made it, when, and the resource
//! before and after (as the API shows it: masked secrets, never a plaintext or a hash).
//!
//! Webhook endpoints live in the outbox, not the registry: their changes are recorded after the
//! outbox answered ([`webhook_change`]), so such an entry can be missing if the registry cannot be
//! reached at that moment (the change itself stands; the failure is logged).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One change, as it is listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct AuditEntry {
    /// Increasing with time; the log lists newest first.
    pub id: i64,
    pub at_ms: u64,
    /// The principal who made the change.
    pub actor: String,
    /// The permission used, e.g. `keys.rotate`.
    pub action: String,
    /// `key`, `project`, `principal`, `membership`, `org_policy` or `webhook`.
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

/// The audit entry of a successful webhook-endpoint change: `POST /admin/v1/webhooks` (its answer,
/// without the signing secret, is the `after`) or `DELETE /admin/v1/webhooks/{id}`.
pub fn webhook_change(method: &str, path: &str, mut answer: Value) -> Change {
    if let Value::Object(fields) = &mut answer {
        fields.remove("secret");
    }
    let (target_id, after) = match method {
        "POST" => (answer["id"].as_str().unwrap_or_default().to_owned(), Some(answer)),
        _ => (path.rsplit('/').next().unwrap_or_default().to_owned(), None),
    };
    Change { action: "webhooks.manage", target_type: "webhook", target_id, before: None, after }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn webhook_changes_never_carry_the_secret() {
        let created = json!({"id": "wh_1", "url": "https://x", "secret": "whsec_abc"});
        let change = webhook_change("POST", "/admin/v1/webhooks", created);
        assert_eq!((change.target_id.as_str(), change.target_type), ("wh_1", "webhook"));
        assert_eq!(change.after, Some(json!({"id": "wh_1", "url": "https://x"})));
        let deleted = webhook_change("DELETE", "/admin/v1/webhooks/wh_2", json!({"deleted": true}));
        assert_eq!((deleted.target_id.as_str(), deleted.after), ("wh_2", None));
    }

    #[test]
    fn changes_serialize_the_views() {
        let change = Change::new("keys.update", "key", "k", Some(&json!({"a": 1})), None);
        assert_eq!((change.before, change.after), (Some(json!({"a": 1})), None));
    }
}
