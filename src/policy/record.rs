//! A team key as stored in KV ([`KeyRecord`], JSON), and its validated form ([`KeyPolicy`]).
//!
//! Flow: the gateway reads the record, [`KeyPolicy::from_json`] parses and validates it once
//! (IP entries become networks), and the checks read only the [`KeyPolicy`]. A record that fails
//! validation is the gateway's fault, not the caller's: [`InvalidKeyRecord`] becomes a 500
//! naming the key id (never the key).
//!
//! Unknown fields are refused, so a misspelt policy field (`ip_alowlist`) can never silently
//! widen a key.

use super::ip::IpAllowlist;
use super::model_access::ModelAccess;
use crate::error::ApiError;
use crate::limits::Limits;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Whether a key may be used at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Disabled,
}

/// One team key's record. The secret itself is not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// Stable across secret rotation; names the key in logs, usage and errors.
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub creator: String,
    pub project: String,
    pub status: KeyStatus,
    /// Unix ms.
    pub created_at: u64,
    /// Unix ms; the key is refused from this instant on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Bumped on each rotation; starts at 1.
    #[serde(default = "first_secret_version")]
    pub secret_version: u32,
    #[serde(default, skip_serializing_if = "ModelAccess::is_all")]
    pub models: ModelAccess,
    /// The model rules of the boundaries above the key (its project's, its organisation's), as
    /// the control plane projects them: a model must pass each of them as well as `models`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boundary_models: Vec<ModelAccess>,
    /// Routing groups the key may use; empty means every group.
    #[serde(default)]
    pub routing_groups: Vec<String>,
    /// Addresses and CIDR ranges the key may be used from; empty means anywhere.
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    #[serde(default)]
    pub limits: Limits,
}

fn first_secret_version() -> u32 {
    1
}

/// A validated key record: every [`KeyPolicy`] has a non-empty id without whitespace, a
/// secret version of at least 1, valid model globs, non-empty routing group names and a parsed
/// IP allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicy {
    record: KeyRecord,
    ip_allowlist: IpAllowlist,
}

impl KeyPolicy {
    /// Parses and validates a stored record.
    pub fn from_json(json: &[u8]) -> Result<KeyPolicy, InvalidKeyRecord> {
        match serde_json::from_slice::<KeyRecord>(json) {
            Ok(record) => KeyPolicy::try_from(record),
            Err(error) => Err(InvalidKeyRecord { key_id: id_of_unparsable(json), reason: error.to_string() }),
        }
    }

    pub fn record(&self) -> &KeyRecord {
        &self.record
    }

    pub fn ip_allowlist(&self) -> &IpAllowlist {
        &self.ip_allowlist
    }
}

impl TryFrom<KeyRecord> for KeyPolicy {
    type Error = InvalidKeyRecord;

    fn try_from(record: KeyRecord) -> Result<KeyPolicy, InvalidKeyRecord> {
        let invalid = |reason: String| InvalidKeyRecord { key_id: record.id.clone(), reason };
        if record.id.is_empty() || record.id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("id is empty or holds whitespace".to_owned()));
        }
        if record.secret_version == 0 {
            return Err(invalid("secret_version is 0".to_owned()));
        }
        record.models.validate().map_err(invalid)?;
        for rule in &record.boundary_models {
            rule.validate().map_err(|reason| invalid(format!("boundary_models: {reason}")))?;
        }
        if record.routing_groups.iter().any(String::is_empty) {
            return Err(invalid("routing_groups holds an empty name".to_owned()));
        }
        let ip_allowlist = IpAllowlist::parse(record.ip_allowlist.iter().map(String::as_str))
            .map_err(|entry| invalid(format!("ip_allowlist entry '{entry}' is not an IP address or CIDR range")))?;
        Ok(KeyPolicy { record, ip_allowlist })
    }
}

/// The `id` of a record that does not parse as a [`KeyRecord`], if it has a readable one.
fn id_of_unparsable(json: &[u8]) -> String {
    #[derive(Deserialize)]
    struct IdOnly {
        id: String,
    }
    serde_json::from_slice::<IdOnly>(json).map_or_else(|_| "(unknown)".to_owned(), |record| record.id)
}

/// A stored key record that cannot be used. The gateway answers 500 `invalid_key_record`; the
/// reason is for logs and admins, not for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidKeyRecord {
    pub key_id: String,
    pub reason: String,
}

impl fmt::Display for InvalidKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key record '{}' is invalid: {}", self.key_id, self.reason)
    }
}

impl From<InvalidKeyRecord> for ApiError {
    fn from(invalid: InvalidKeyRecord) -> ApiError {
        ApiError::internal(
            "invalid_key_record",
            format!("The stored record of key '{}' is invalid; an admin must fix it.", invalid.key_id),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorType;

    const MINIMAL: &str =
        r#"{"id":"k1","name":"ci","creator":"ana","project":"search","status":"active","created_at":1000}"#;

    #[test]
    fn minimal_record_takes_defaults() {
        let policy = KeyPolicy::from_json(MINIMAL.as_bytes()).unwrap();
        let record = policy.record();
        assert_eq!(record.secret_version, 1);
        assert_eq!(record.models, ModelAccess::All);
        assert!(record.tags.is_empty() && record.routing_groups.is_empty() && record.ip_allowlist.is_empty());
        assert_eq!(record.expires_at, None);
        assert_eq!(record.limits, Limits::default());
        assert!(policy.ip_allowlist().is_empty());
    }

    #[test]
    fn full_record_round_trips() {
        let json = r#"{"id":"k2","name":"bot","description":"d","tags":["a"],"creator":"ana","project":"p",
            "status":"disabled","created_at":1,"expires_at":2,"secret_version":3,"models":{"block":["gpt-4*"]},
            "routing_groups":["eu"],"ip_allowlist":["10.0.0.0/8","2001:db8::1"],"limits":{"rpm":5}}"#;
        let policy = KeyPolicy::from_json(json.as_bytes()).unwrap();
        let record = policy.record();
        assert_eq!(record.status, KeyStatus::Disabled);
        assert_eq!(record.models, ModelAccess::Block(vec!["gpt-4*".into()]));
        assert_eq!(record.limits.rpm.map(|n| n.get()), Some(5));
        assert!(policy.ip_allowlist().permits(Some("10.1.2.3".parse().unwrap())));
        let again: KeyRecord = serde_json::from_str(&serde_json::to_string(record).unwrap()).unwrap();
        assert_eq!(&again, record);
    }

    /// (fields replacing or adding to MINIMAL's, reported key id, reason fragment)
    const INVALID: &[(&str, &str, &str)] = &[
        (r#""id":"""#, "", "id is empty"),
        (r#""id":"k 1""#, "k 1", "whitespace"),
        (r#""secret_version":0"#, "k1", "secret_version is 0"),
        (r#""models":{"allow":[]}"#, "k1", "models.allow is empty"),
        (r#""models":{"block":[""]}"#, "k1", "empty glob"),
        (r#""models":{"deny":["x"]}"#, "k1", "unknown variant"),
        (r#""boundary_models":[{"allow":[]}]"#, "k1", "boundary_models: models.allow is empty"),
        (r#""routing_groups":[""]"#, "k1", "routing_groups holds an empty name"),
        (r#""ip_allowlist":["10.0.0.1","10.0.0.0/33"]"#, "k1", "'10.0.0.0/33' is not an IP address"),
        (r#""ip_allowlist":["localhost"]"#, "k1", "'localhost'"),
        (r#""status":"paused""#, "k1", "unknown variant"),
        (r#""ip_alowlist":[]"#, "k1", "unknown field"),
        (r#""limits":{"rpm":0}"#, "k1", "nonzero"),
        (r#""limits":{"rpn":5}"#, "k1", "unknown field"),
        (r#""created_at":"yesterday""#, "k1", "invalid type"),
    ];

    #[test]
    fn invalid_records() {
        for &(field, key_id, reason) in INVALID {
            let name = field.split(':').next().unwrap();
            let json = if MINIMAL.contains(name) {
                let start = MINIMAL.find(name).unwrap();
                let end = start + MINIMAL[start..].find([',', '}']).unwrap();
                format!("{}{field}{}", &MINIMAL[..start], &MINIMAL[end..])
            } else {
                format!("{},{field}}}", &MINIMAL[..MINIMAL.len() - 1])
            };
            let err = KeyPolicy::from_json(json.as_bytes()).expect_err(&json);
            assert_eq!(err.key_id, key_id, "{json}");
            assert!(err.reason.contains(reason), "{json}: {}", err.reason);
        }
    }

    #[test]
    fn unreadable_record_without_id() {
        let err = KeyPolicy::from_json(b"not json").unwrap_err();
        assert_eq!(err.key_id, "(unknown)");
    }

    #[test]
    fn becomes_a_500_naming_the_key() {
        let e = ApiError::from(InvalidKeyRecord { key_id: "k9".into(), reason: "secret stuff".into() });
        assert_eq!((e.status, e.kind, e.code), (500, ErrorType::InternalError, "invalid_key_record"));
        assert!(e.message.contains("'k9'") && !e.message.contains("secret stuff"), "{}", e.message);
    }
}
